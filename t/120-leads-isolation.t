#!/usr/bin/perl
# Isolation: another account's lead is answered exactly like a lead that
# does not exist, on every endpoint and with every filter, and is left
# untouched.  Admins too use /leads/ only for their own leads.

use strict;
use warnings;

use Test::More;
use CrmTest;

my $t = CrmTest->new->start;

my $NIL = '00000000-0000-4000-8000-000000000000';
my $P = $t->load_pipeline;
my ($FIRST, $FSUB) = ($P->[0]{stage}, $P->[0]{substages}[0]);
my $S1 = $P->[1];

sub esc { CrmTest::uri_escape($_[0]) }

my ($a_acc, $a_tok) = $t->member(full_name => 'Owner A');
my ($b_acc, $b_tok) = $t->member(full_name => 'Intruder B');
my ($adm, $adm_tok) = $t->admin;

my $lead = $t->create_lead($a_tok, name => 'Zyxwv Secret Prospect', email => 'secret.prospect@hidden.example',
    company => 'Qwertcorp', phone => '+14155552671', shop_domain => 'hidden.myshopify.com',
    stage => $S1->{stage}, value_cents => 999, notes => 'A only');
my $id = $lead->{id};
my $orig = $t->get("/leads/$id", token => $a_tok);
is($orig->{status}, 200, "A reads its lead");
my $orig_history = $t->get("/leads/$id/history", token => $a_tok)->{json};
my $orig_row = $t->psql("SELECT row_to_json(l)::text FROM crm.leads l WHERE id = '$id'");

# B's own lead, so B's lists are not empty
my $b_lead = $t->create_lead($b_tok, name => 'B own lead', company => 'Bcorp', stage => $S1->{stage});

# Compares the answer about A's lead with the answer about a lead that
# does not exist, for the same request: the same status and the same
# problem document (an id in the detail replaced by a placeholder).  A
# valid request is a 404; an invalid one (any_4xx) may be refused for its
# body before the lead is looked for, but then alike for both.
sub same_as_missing {
    my ($what, $tok, $method, $suffix, %opt) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $any = delete $opt{any_4xx};
    my $mine = $t->request($method, "/leads/$id$suffix", token => $tok, %opt);
    my $none = $t->request($method, "/leads/$NIL$suffix", token => $tok, %opt);
    if ($any) {
        is_problem($mine, ($mine->{status} >= 400 && $mine->{status} < 500 ? $mine->{status} : 404),
            "$what: a 4xx problem");
    } else {
        is_problem($mine, 404, "$what: 404");
    }
    (my $bm = sans_request_id($mine)->{content}) =~ s/\Q$id\E/<id>/g;
    (my $bn = sans_request_id($none)->{content}) =~ s/\Q$NIL\E/<id>/g;
    is("$mine->{status} $bm", "$none->{status} $bn", "$what: the same answer as for a missing lead");
    is($mine->{headers}{'content-type'}, $none->{headers}{'content-type'}, "$what: the same Content-Type");
    ok(!defined $mine->{headers}{etag}, "$what: no ETag");
    note("the 404 names the id it was asked for: $mine->{content}") if $mine->{content} =~ /\Q$id\E/;
    return $mine;
}

my %json = (headers => { 'Content-Type' => 'application/json' });
for my $who (['B', $b_tok], ['an admin', $adm_tok]) {
    my ($name, $tok) = @$who;
    same_as_missing("$name: GET /leads/{A's id}", $tok, 'GET', '');
    same_as_missing("$name: PUT /leads/{A's id}", $tok, 'PUT', '',
        content => json_encode({ name => 'Taken over' }), %json);
    same_as_missing("$name: PUT /leads/{A's id} with If-Match: *", $tok, 'PUT', '',
        content => json_encode({ name => 'Taken over' }),
        headers => { 'Content-Type' => 'application/json', 'If-Match' => '*' });
    same_as_missing("$name: PUT /leads/{A's id} with If-Match \"1\"", $tok, 'PUT', '',
        content => json_encode({ notes => 'x' }),
        headers => { 'Content-Type' => 'application/json', 'If-Match' => '"1"' });
    same_as_missing("$name: PUT /leads/{A's id} with an invalid body", $tok, 'PUT', '',
        content => json_encode({}), %json, any_4xx => 1);
    same_as_missing("$name: PUT /leads/{A's id} with an unknown field", $tok, 'PUT', '',
        content => json_encode({ owner_id => $b_acc->{id} }), %json, any_4xx => 1);
    same_as_missing("$name: DELETE /leads/{A's id}", $tok, 'DELETE', '');
    same_as_missing("$name: DELETE /leads/{A's id} with If-Match: *", $tok, 'DELETE', '',
        headers => { 'If-Match' => '*' });
    same_as_missing("$name: PUT /leads/{A's id}/stage", $tok, 'PUT', '/stage',
        content => json_encode({ stage => $FIRST, substage => $FSUB->{status} }), %json);
    same_as_missing("$name: PUT /leads/{A's id}/stage to its current stage", $tok, 'PUT', '/stage',
        content => json_encode({ stage => $lead->{stage}, substage => $lead->{substage} }), %json);
    same_as_missing("$name: PUT /leads/{A's id}/stage to an unknown stage", $tok, 'PUT', '/stage',
        content => json_encode({ stage => 'no_such_stage', substage => 'x' }), %json, any_4xx => 1);
    same_as_missing("$name: GET /leads/{A's id}/history", $tok, 'GET', '/history');
    same_as_missing("$name: GET /leads/{A's id}/history?limit=1", $tok, 'GET', '/history?limit=1');

    # the id in other spellings
    is_problem($t->get('/leads/' . uc $id, token => $tok), 404, "$name: GET /leads/{A's id in upper case}: 404");
    is_problem($t->get("/leads/$id/", token => $tok), 404, "$name: GET /leads/{A's id}/: 404");

    # lists never show it, whatever the filter
    for my $q ('', '?q=zyxwv', '?q=ZYXWV', '?q=secret.prospect', '?q=qwertcorp', '?q=' . esc('hidden.example'),
               "?stage=$S1->{stage}", "?stage=$S1->{stage}&q=secret", '?limit=200', '?q=' . esc('%'),
               '?q=' . esc('_')) {
        my ($items, $err) = $t->page_all("/leads/$q", token => $tok);
        ok(!$err, "$name: GET /leads/$q answers") or diag($err);
        ok(!grep({ $_->{id} eq $id || $_->{owner_id} ne ($name eq 'B' ? $b_acc->{id} : $adm->{id}) } @$items),
            "$name: GET /leads/$q shows none of A's leads");
    }
}

# B's list holds B's own lead, so the filters above did run against data
my ($b_items) = $t->page_all("/leads/?stage=$S1->{stage}", token => $b_tok);
is_deeply([map { $_->{id} } @$b_items], [$b_lead->{id}], "B's stage-filtered list shows B's own lead");

# A's cursor handed to B does not open A's list
my @a_more = map { $t->create_lead($a_tok, name => "A extra $_")->{id} } 1 .. 3;
my $a_page = $t->get('/leads/?limit=1', token => $a_tok);
my $a_cursor = $a_page->{json}{next_cursor};
ok(defined $a_cursor, "A's first page of one has a cursor");
my $r = $t->get('/leads/?limit=1&cursor=' . esc($a_cursor // ''), token => $b_tok);
ok($r->{status} == 200 || $r->{status} == 422, "B with A's cursor: 200 or 422 (got $r->{status})")
    or diag($r->{content});
if ($r->{status} == 200) {
    ok(!grep({ $_->{owner_id} ne $b_acc->{id} } @{ $r->{json}{items} || [] }), "... and only B's leads");
} else {
    is_problem($r, 422, '... a problem document', field => 'cursor');
}

# A, in turn, cannot reach B's lead
is_problem($t->get("/leads/$b_lead->{id}", token => $a_tok), 404, "A: GET /leads/{B's id}: 404");
is_problem($t->del("/leads/$b_lead->{id}", token => $a_tok), 404, "A: DELETE /leads/{B's id}: 404");
is($t->get("/leads/$b_lead->{id}", token => $b_tok)->{status}, 200, "B's lead is still there");

# --- A's lead is unchanged --------------------------------------------------------------

$r = $t->get("/leads/$id", token => $a_tok);
is($r->{status}, 200, "A still reads its lead: 200");
is_deeply($r->{json}, $orig->{json}, '... unchanged: same members, version and updated_at');
is($r->{headers}{etag}, $orig->{headers}{etag}, '... same ETag');
is_deeply($t->get("/leads/$id/history", token => $a_tok)->{json}, $orig_history, '... same history');
is($t->psql("SELECT row_to_json(l)::text FROM crm.leads l WHERE id = '$id'"), $orig_row,
    '... same row in crm.leads (not deleted, nothing touched)');
is($t->psql("SELECT count(*) FROM crm.audit_log WHERE actor_id IN ('$b_acc->{id}', '$adm->{id}')"
    . " AND object_id = '$id'"), 0, 'no audit row of B or the admin on the lead');
is($t->psql("SELECT count(*) FROM crm.audit_log WHERE actor_id IN ('$b_acc->{id}', '$adm->{id}')"
    . " AND object_type = 'lead' AND action <> 'lead.create'"), 0,
    'B and the admin changed no lead at all');
my ($a_items) = $t->page_all('/leads/', token => $a_tok);
is_deeply([sort map { $_->{id} } @$a_items], [sort $id, @a_more], "A's list: exactly A's four leads");

# the admin sees it through the admin endpoint only
$r = $t->get("/admin/leads?owner_id=$a_acc->{id}", token => $adm_tok);
is($r->{status}, 200, 'the admin lists A\'s leads through /admin/leads: 200');
ok(grep({ $_->{id} eq $id } @{ $r->{json}{items} || [] }), '... including the lead');

$t->done;

#!/usr/bin/perl
# The admin's view of leads (GET /admin/leads with owner_id, stage and q)
# and the audit log: every lead change writes one row in the transaction
# of the change (a failing audit insert undoes the change), and
# GET /admin/audit-logs lists and filters them.

use strict;
use warnings;

use Test::More;
use CrmTest;

my $t = CrmTest->new->start;

my $NIL = '00000000-0000-4000-8000-000000000000';
my $P = $t->load_pipeline;
my ($FIRST, $FSUB) = ($P->[0]{stage}, $P->[0]{substages}[0]);
my $S1 = $P->[1];
my $S2 = $P->[2];

sub esc { CrmTest::uri_escape($_[0]) }
sub ids { [map { $_->{id} } @{ $_[0] }] }

my ($adm, $adm_tok) = $t->admin;
my ($A, $a_tok) = $t->member(full_name => 'Member A');
my ($B, $b_tok) = $t->member(full_name => 'Member B');

# --- access -----------------------------------------------------------------------------

for my $path ('/admin/leads', "/admin/leads?owner_id=$A->{id}", '/admin/audit-logs') {
    my $r = $t->get($path);
    is_problem($r, 401, "GET $path without a token: 401");
    like($r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/, '... with WWW-Authenticate: Bearer');
    is_problem($t->get($path, token => $a_tok), 403, "GET $path as a member: 403");
}

# --- leads of three owners ----------------------------------------------------------------

my @created;      # every lead, in creation order
my %owner_of;
for my $i (1 .. 45) {
    my %f = (name => sprintf('A lead %02d', $i));
    $f{stage} = $S1->{stage} if $i % 4 == 0;
    $f{company} = 'Acme Holdings' if $i % 5 == 0;
    my $l = $t->create_lead($a_tok, %f);
    push @created, $l->{id};
    $owner_of{ $l->{id} } = $A->{id};
    next unless $i % 3 == 0;
    my %g = (name => sprintf('B lead %02d', $i));
    $g{stage} = $S1->{stage} if $i % 2 == 0;
    $g{email} = "b$i\@acme.example" if $i % 9 == 0;
    my $m = $t->create_lead($b_tok, %g);
    push @created, $m->{id};
    $owner_of{ $m->{id} } = $B->{id};
}
for my $i (1 .. 3) {
    my $l = $t->create_lead($adm_tok, name => "Admin lead $i");
    push @created, $l->{id};
    $owner_of{ $l->{id} } = $adm->{id};
}
my $gone = $created[4];
is($t->del("/leads/$gone", token => $a_tok)->{status}, 204, 'A deletes one of its leads');
my @live = grep { $_ ne $gone } reverse @created;     # newest first
my %token_of = ($A->{id} => $a_tok, $B->{id} => $b_tok, $adm->{id} => $adm_tok);
my %lead = map { $_ => $t->get("/leads/$_", token => $token_of{ $owner_of{$_} })->{json} } @live;

# --- GET /admin/leads -------------------------------------------------------------------------

my $r = $t->get('/admin/leads', token => $adm_tok);
my $page = is_json_response($r, 200, 'GET /admin/leads as admin: 200');
is(scalar @{ $page->{items} || [] }, 50, '... a first page of 50');
my @shape = grep { CrmTest::lead_shape_problems($_) } @{ json_decode($r->{content})->{items} || [] };
is(scalar @shape, 0, '... each item a lead');
my ($items, $err) = $t->page_all('/admin/leads', token => $adm_tok, limit => 200);
ok(!$err, '?limit=200: answered') or diag($err);
is_deeply(ids($items), \@live, "every account's non-deleted leads, newest first");
is_deeply([grep { $_->{id} eq $created[0] } @$items], [$lead{ $created[0] }], "a listed lead is the owner's view of it");

for my $limit (7, 50) {
    ($items, $err) = $t->page_all('/admin/leads', token => $adm_tok, limit => $limit);
    ok(!$err, "limit=$limit: every page answered") or diag($err);
    is_deeply(ids($items), \@live, "limit=$limit: each lead once, newest first");
}

sub owned { my ($l, $who) = @_; return $owner_of{ $l->{id} } eq $who->{id} }
sub acme { my ($l) = @_; return ($l->{company} // '') =~ /acme/i || ($l->{email} // '') =~ /acme/i }
my $ST = $S1->{stage};
my %filter = (
    "owner_id=$A->{id}"                 => sub { owned($_[0], $A) },
    "owner_id=$B->{id}"                 => sub { owned($_[0], $B) },
    "owner_id=$adm->{id}"               => sub { owned($_[0], $adm) },
    "owner_id=$NIL"                     => sub { 0 },
    "stage=$ST"                         => sub { $_[0]{stage} eq $ST },
    "owner_id=$B->{id}&stage=$ST"       => sub { owned($_[0], $B) && $_[0]{stage} eq $ST },
    'q=acme'                            => sub { acme($_[0]) },
    "owner_id=$A->{id}&q=ACME"          => sub { owned($_[0], $A) && acme($_[0]) },
    "owner_id=$A->{id}&stage=$ST&q=lead" => sub { owned($_[0], $A) && $_[0]{stage} eq $ST },
    'q=' . esc('A lead 1')              => sub { $_[0]{name} =~ /^A lead 1/ },
    'stage=no_such_stage'               => sub { 0 },
);
for my $f (sort keys %filter) {
    my @want = grep { $filter{$f}->($lead{$_}) } @live;
    ($items, $err) = $t->page_all("/admin/leads?$f", token => $adm_tok, limit => 5);
    ok(!$err, "?$f: every page answered") or diag($err);
    is_deeply(ids($items), \@want, "?$f: " . scalar(@want) . ' leads, newest first');
}
ok(!grep({ $_ eq $gone } @{ ids(($t->page_all("/admin/leads?owner_id=$A->{id}", token => $adm_tok))[0]) }),
    'the deleted lead is not listed');

is_problem($t->get('/admin/leads?owner_id=abc', token => $adm_tok), 422, 'owner_id=abc: 422', field => 'owner_id');
is_problem($t->get('/admin/leads?owner_id=', token => $adm_tok), 422, 'owner_id empty: 422', field => 'owner_id');
is_problem($t->get("/admin/leads?owner_id=$A->{id}x", token => $adm_tok), 422, 'owner_id with a trailing x: 422',
    field => 'owner_id');
is_problem($t->get('/admin/leads?owner_id=' . esc("' OR 1=1 --"), token => $adm_tok), 422, 'owner_id with SQL: 422',
    field => 'owner_id');
is_problem($t->get('/admin/leads?foo=1', token => $adm_tok), 422, '?foo=1: 422', field => 'foo');
is_problem($t->get('/admin/leads?limit=0', token => $adm_tok), 422, 'limit=0: 422', field => 'limit');
is_problem($t->get('/admin/leads?limit=201', token => $adm_tok), 422, 'limit=201: 422', field => 'limit');
is_problem($t->get('/admin/leads?cursor=garbage', token => $adm_tok), 422, 'cursor=garbage: 422', field => 'cursor');
is_problem($t->get('/admin/leads?q=' . ('q' x 101), token => $adm_tok), 422, 'q of 101 characters: 422', field => 'q');

# --- the audit log of one lead's life ---------------------------------------------------------

my $L = $t->create_lead($a_tok, name => 'Audited', email => 'audited@example.com');
my $lid = $L->{id};
is($t->put_json("/leads/$lid", { name => 'Audited, renamed' }, token => $a_tok)->{status}, 200, 'A updates it');
is($t->put_json("/leads/$lid", { notes => 'stale' }, token => $a_tok, headers => { 'If-Match' => '"1"' })->{status},
    412, 'a stale If-Match: 412 (no change)');
is($t->put_json("/leads/$lid", { email => 'not an email' }, token => $a_tok)->{status}, 422, 'an invalid update: 422');
is($t->put_json("/leads/$lid", { name => 'B was here' }, token => $b_tok)->{status}, 404, "B's update: 404");
is($t->put_json("/leads/$lid/stage", { stage => $S2->{stage}, substage => $S2->{substages}[0]{status} },
    token => $a_tok)->{status}, 200, 'A moves it');
is($t->put_json("/leads/$lid/stage", { stage => 'no_such_stage', substage => 'x' }, token => $a_tok)->{status}, 422,
    'a move to an unknown stage: 422');
is($t->del("/leads/$lid", token => $b_tok)->{status}, 404, "B's delete: 404");
is($t->del("/leads/$lid", token => $a_tok)->{status}, 204, 'A deletes it');

my @rows = $t->psql("SELECT actor_id || ' ' || action || ' ' || object_type FROM crm.audit_log"
    . " WHERE object_id = '$lid' ORDER BY id");
is_deeply(\@rows, [map { "$A->{id} $_ lead" } qw(lead.create lead.update lead.stage lead.delete)],
    'crm.audit_log: create, update, stage, delete by A, and nothing for the refused requests');
is($t->psql(q{SELECT count(*) FROM crm.audit_log WHERE action = 'lead.create'}),
    $t->psql('SELECT count(*) FROM crm.leads'), 'one lead.create row per lead');
is($t->psql(q{SELECT count(*) FROM crm.audit_log WHERE action = 'lead.delete'}), 2, 'one lead.delete row per delete');
is($t->psql(q{SELECT count(*) FROM crm.audit_log WHERE object_type = 'lead'}
    . q{ AND action NOT IN ('lead.create', 'lead.update', 'lead.stage', 'lead.delete')}), 0,
    'no other lead actions');

# --- GET /admin/audit-logs ---------------------------------------------------------------------

$r = $t->get("/admin/audit-logs?object_id=$lid", token => $adm_tok);
my $log = is_json_response($r, 200, 'GET /admin/audit-logs?object_id=: 200');
ok(exists $log->{next_cursor} && !defined $log->{next_cursor}, '... next_cursor null');
my @it = @{ $log->{items} || [] };
is_deeply([map { $_->{action} } @it], [qw(lead.delete lead.stage lead.update lead.create)], '... newest first');
is_deeply([map { [sort keys %$_] } @it],
    [map { [sort qw(id actor_id action object_type object_id details created_at)] } @it],
    '... each with the contract\'s members');
is_deeply([grep { $_->{actor_id} ne $A->{id} || $_->{object_type} ne 'lead' || $_->{object_id} ne $lid } @it], [],
    '... by A, on this lead');
is_deeply([grep { ref $_->{details} ne 'HASH' } @it], [], '... details an object');
is_deeply([grep { !is_rfc3339_utc($_->{created_at}) } @it], [], '... created_at RFC 3339');
my @db_ids = $t->psql("SELECT id FROM crm.audit_log WHERE object_id = '$lid' ORDER BY created_at DESC, id DESC");
is_deeply([map { "$_->{id}" } @it], \@db_ids, '... the ids of crm.audit_log');

# filters, each against the table
my %audit = (
    "actor_id=$A->{id}"                       => "actor_id = '$A->{id}'",
    "actor_id=$B->{id}"                       => "actor_id = '$B->{id}'",
    "actor_id=$NIL"                           => 'false',
    'object_type=lead'                        => "object_type = 'lead'",
    'action=lead.stage'                       => "action = 'lead.stage'",
    'action=lead.delete'                      => "action = 'lead.delete'",
    "actor_id=$A->{id}&action=lead.update"    => "actor_id = '$A->{id}' AND action = 'lead.update'",
    "object_type=lead&object_id=$created[0]"  => "object_type = 'lead' AND object_id = '$created[0]'",
    'object_type=nothing_of_that_kind'        => 'false',
    ''                                        => 'true',
);
for my $f (sort keys %audit) {
    my @want = $t->psql("SELECT id FROM crm.audit_log WHERE $audit{$f} ORDER BY created_at DESC, id DESC");
    my $path = '/admin/audit-logs' . (length $f ? "?$f" : '');
    for my $limit (7, 200) {
        my ($got, $e) = $t->page_all($path, token => $adm_tok, limit => $limit);
        ok(!$e, "audit-logs ?$f limit=$limit: every page answered") or diag($e);
        is_deeply([map { "$_->{id}" } @$got], \@want, "audit-logs ?$f limit=$limit: " . scalar(@want)
            . ' rows, each once, newest first');
    }
}
is_problem($t->get('/admin/audit-logs?actor_id=abc', token => $adm_tok), 422, 'audit-logs actor_id=abc: 422',
    field => 'actor_id');
is_problem($t->get('/admin/audit-logs?foo=1', token => $adm_tok), 422, 'audit-logs ?foo=1: 422', field => 'foo');
is_problem($t->get('/admin/audit-logs?limit=0', token => $adm_tok), 422, 'audit-logs limit=0: 422', field => 'limit');
is_problem($t->get('/admin/audit-logs?cursor=garbage', token => $adm_tok), 422, 'audit-logs cursor=garbage: 422',
    field => 'cursor');

# --- the audit row is written in the transaction of the change ----------------------------

$t->psql(<<'EOF');
CREATE FUNCTION public.refuse_lead_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit insert refused by the test';
END $$;
CREATE TRIGGER refuse_lead_audit BEFORE INSERT ON crm.audit_log
    FOR EACH ROW WHEN (NEW.action LIKE 'lead.%') EXECUTE FUNCTION public.refuse_lead_audit();
EOF

my $victim = $t->get("/leads/$created[0]", token => $a_tok)->{json};
my $leads_before = $t->psql('SELECT count(*) FROM crm.leads');
my $audit_before = $t->psql('SELECT count(*) FROM crm.audit_log');
my ($hist_before) = $t->page_all("/leads/$victim->{id}/history", token => $a_tok, limit => 200);

$r = $t->post_json('/leads/', { name => 'Never stored' }, token => $a_tok, allow_5xx => 1);
cmp_ok($r->{status}, '>=', 500, "create while the audit insert fails: a 5xx (got $r->{status})");
is($t->psql('SELECT count(*) FROM crm.leads'), $leads_before, '... and no lead was stored');
$r = $t->put_json("/leads/$victim->{id}", { name => 'Never renamed' }, token => $a_tok, allow_5xx => 1);
cmp_ok($r->{status}, '>=', 500, "update while the audit insert fails: a 5xx (got $r->{status})");
$r = $t->put_json("/leads/$victim->{id}/stage", { stage => $S2->{stage}, substage => $S2->{substages}[-1]{status} },
    token => $a_tok, allow_5xx => 1);
cmp_ok($r->{status}, '>=', 500, "stage move while the audit insert fails: a 5xx (got $r->{status})");
$r = $t->del("/leads/$victim->{id}", token => $a_tok, allow_5xx => 1);
cmp_ok($r->{status}, '>=', 500, "delete while the audit insert fails: a 5xx (got $r->{status})");
$r = $t->get("/leads/$victim->{id}", token => $a_tok);
is($r->{status}, 200, '... the lead is still there');
is_deeply($r->{json}, $victim, '... unchanged: not renamed, not moved, same version');
my ($hist_after) = $t->page_all("/leads/$victim->{id}/history", token => $a_tok, limit => 200);
is_deeply($hist_after, $hist_before, '... and no history item');
is($t->psql("SELECT count(*) FROM crm.leads WHERE id = '$victim->{id}' AND deleted_at IS NULL"), 1,
    '... deleted_at still null');
is($t->psql('SELECT count(*) FROM crm.audit_log'), $audit_before, 'no audit row either');

$t->psql('DROP TRIGGER refuse_lead_audit ON crm.audit_log; DROP FUNCTION public.refuse_lead_audit()');
$r = $t->put_json("/leads/$victim->{id}", { name => 'Renamed at last' }, token => $a_tok);
is($r->{status}, 200, 'with the audit insert working again, the update succeeds') or diag($r->{content});
is($r->{json}{version}, $victim->{version} + 1, '... version + 1 (the failed attempts left no trace)');
is($t->psql("SELECT count(*) FROM crm.audit_log WHERE object_id = '$victim->{id}' AND action = 'lead.update'"), 1,
    '... and one lead.update row');

# --- role and activity changes take effect at once ------------------------------------------

my $b_lead = (grep { $owner_of{$_} eq $B->{id} } @live)[0];
is($t->patch_json("/admin/users/$B->{id}", { is_active => JSON::PP::false }, token => $adm_tok)->{status}, 200,
    'the admin deactivates B');
my $SB = $S2->{substages}[0]{status};
for my $req (['GET', '/leads/'], ['GET', "/leads/$b_lead"], ['GET', "/leads/$b_lead/history"],
             ['POST', '/leads/', { name => 'After deactivation' }], ['PUT', "/leads/$b_lead", { name => 'x' }],
             ['PUT', "/leads/$b_lead/stage", { stage => $S2->{stage}, substage => $SB }],
             ['DELETE', "/leads/$b_lead"], ['GET', '/pipeline/stages']) {
    my ($method, $path, $body) = @$req;
    my $res = $t->request($method, $path, token => $b_tok, defined $body ? (json => $body) : ());
    is_problem($res, 401, "deactivated B: $method $path: 401");
}
$r = $t->get("/admin/leads?owner_id=$B->{id}", token => $adm_tok);
ok(grep({ $_->{id} eq $b_lead } @{ $r->{json}{items} || [] }), "B's leads are still there for the admin");
is($t->psql("SELECT count(*) FROM crm.audit_log WHERE actor_id = '$B->{id}'"
    . q{ AND action LIKE 'lead.%' AND action <> 'lead.create'}), 0, '... and B changed none of them');

my ($adm2, $adm2_tok) = $t->admin;
is($t->get('/admin/leads', token => $adm2_tok)->{status}, 200, 'a second admin lists leads');
is($t->patch_json("/admin/users/$adm2->{id}", { role => 'member' }, token => $adm_tok)->{status}, 200,
    'the first admin demotes it to member');
is_problem($t->get('/admin/leads', token => $adm2_tok), 403, 'the demoted admin: GET /admin/leads 403 at once');
is_problem($t->get('/admin/audit-logs', token => $adm2_tok), 403, 'the demoted admin: GET /admin/audit-logs 403');
is($t->get('/leads/', token => $adm2_tok)->{status}, 200, '... but its own /leads/ still answers');

$t->done;

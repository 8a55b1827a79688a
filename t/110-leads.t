#!/usr/bin/perl
# Leads: create with the pipeline's defaults and normalised identifiers,
# read with an ETag, partial update with If-Match, soft delete, the list
# with its stage and q filters, and keyset pagination through 120 leads.

use strict;
use warnings;

use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm);
use CrmTest;

my $t = CrmTest->new->start;

my $NIL = '00000000-0000-4000-8000-000000000000';
my $P = $t->load_pipeline;
cmp_ok(scalar @$P, '>=', 3, 'the pipeline has at least three stages');
my ($FIRST, $FSUB) = ($P->[0]{stage}, $P->[0]{substages}[0]);

sub esc { CrmTest::uri_escape($_[0]) }

# seconds since the epoch of an RFC 3339 UTC time, with its fraction
sub epoch {
    my ($s) = @_;
    my ($Y, $m, $d, $H, $M, $S, $f) = ($s // '')
        =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z$/ or return undef;
    return timegm($S, $M, $H, $d, $m - 1, $Y) + ($f // 0);
}

sub etag_of { my ($l) = @_; return qq{"$l->{version}"} }

sub names { [map { $_->{name} } @{ $_[0] }] }

# the ids of a list page, or of every page
sub list_ids {
    my ($path, $tok, %opt) = @_;
    my ($items, $err) = $t->page_all($path, token => $tok, %opt);
    return ([map { $_->{id} } @$items], $err);
}

my ($me, $tok) = $t->member(full_name => 'Lead Owner');

# --- authentication and role ------------------------------------------------------------

my $r = $t->post_json('/leads/', { name => 'No token' });
is_problem($r, 401, 'POST /leads/ without a token: 401');
like($r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/, '... with WWW-Authenticate: Bearer');
is_problem($t->get('/leads/'), 401, 'GET /leads/ without a token: 401');
is_problem($t->get("/leads/$NIL"), 401, 'GET /leads/{id} without a token: 401');
is_problem($t->put_json("/leads/$NIL", { name => 'x' }), 401, 'PUT /leads/{id} without a token: 401');
is_problem($t->del("/leads/$NIL"), 401, 'DELETE /leads/{id} without a token: 401');
is_problem($t->post_json('/leads/', { name => 'Bad token' }, token => 'not.a.token'), 401,
    'POST /leads/ with a garbage token: 401');

my ($adm, $adm_tok) = $t->admin;
my ($merchant, $merchant_tok) = $t->member;
is($t->patch_json("/admin/users/$merchant->{id}", { role => 'merchant' }, token => $adm_tok)->{status}, 200,
    'an account made a merchant');
# merchants own leads too: their lead events are what they sync to their CRMs
{
    my $r = $t->post_json('/leads/', { name => 'Merchant lead' }, token => $merchant_tok);
    is($r->{status}, 201, 'a merchant creates a lead of its own: 201');
    is($r->{json}{owner_id}, $merchant->{id}, '... owned by the merchant');
}
$r = $t->post_json('/leads/', { name => 'Admin own lead' }, token => $adm_tok);
is($r->{status}, 201, 'an admin creates a lead of its own: 201') or diag($r->{content});
is($r->{json}{owner_id}, $adm->{id}, '... owned by the admin');

# --- create: defaults -------------------------------------------------------------------

$r = $t->post_json('/leads/', { name => 'Acme Minimal' }, token => $tok);
my $min = is_json_response($r, 201, 'POST /leads/ with only a name: 201');
is_lead($r, '... a lead with the contract\'s members and types');
ok(is_uuid($min->{id}), '... id is a UUID');
is($r->{headers}{location}, "/leads/$min->{id}", '... Location: /leads/<id>');
is($r->{headers}{etag}, '"1"', '... ETag: "1"');
is($min->{owner_id}, $me->{id}, '... owned by the caller');
is($min->{name}, 'Acme Minimal', '... name');
is_deeply([@$min{qw(email phone company shop_domain affiliate_link_id)}], [undef, undef, undef, undef, undef],
    '... email, phone, company, shop_domain, affiliate_link_id null');
is($min->{source}, 'manual', '... source manual');
is($min->{stage}, $FIRST, "... stage is the pipeline's first ($FIRST)");
is($min->{substage}, $FSUB->{status}, "... substage is its first ($FSUB->{status})");
is($min->{score}, $FSUB->{score}, "... score is that substage's ($FSUB->{score})");
is($min->{value_cents}, 0, '... value_cents 0');
is($min->{currency}, 'USD', '... currency USD');
is($min->{notes}, '', '... notes empty');
is($min->{version}, 1, '... version 1');
ok(JSON::PP::is_bool($min->{stage_in_pipeline}) && $min->{stage_in_pipeline}, '... stage_in_pipeline true');
cmp_ok(abs(epoch($min->{created_at}) - time), '<', 120, '... created_at is now');

$r = $t->get("/leads/$min->{id}", token => $tok);
is_deeply(is_json_response($r, 200, 'GET the Location: 200'), $min, '... the same lead');
is($r->{headers}{etag}, '"1"', '... ETag: "1"');
is_lead($r, '... with the contract\'s shape');

# --- create: every field, normalised ----------------------------------------------------

my $S2 = $P->[2];
my %full_in = (
    name => 'Jane Doe', email => '  Jane.Doe@Example.COM ', phone => '+1 (415) 555-2671',
    company => 'Example Ltd', shop_domain => 'https://Foo.myshopify.com/admin', source => 'api',
    stage => $S2->{stage}, value_cents => 123456, currency => 'eur',
    notes => "first line\nsecond line\n\ttabbed \"quoted\" \\ back",
);
$r = $t->post_json('/leads/', \%full_in, token => $tok);
my $full = is_json_response($r, 201, 'POST /leads/ with every field: 201');
is_lead($r, '... shape');
my %want = (
    name => 'Jane Doe', email => 'jane.doe@example.com', phone => '+14155552671',
    company => 'Example Ltd', shop_domain => 'foo.myshopify.com', source => 'api',
    stage => $S2->{stage}, substage => $S2->{substages}[0]{status},
    score => $S2->{substages}[0]{score}, value_cents => 123456, currency => 'EUR',
    notes => $full_in{notes}, version => 1, owner_id => $me->{id},
);
is_deeply({ map { $_ => $full->{$_} } keys %want }, \%want,
    'email trimmed and lower-cased, phone E.164, shop domain a bare host, currency upper-cased, '
    . 'stage without substage: its first substage and score');

my ($fh0) = @{ $t->get("/leads/$full->{id}/history", token => $tok)->{json}{items} || [] };
is_deeply([@{ $fh0 // {} }{qw(from_stage to_stage to_substage score)}],
    [undef, $S2->{stage}, $S2->{substages}[0]{status}, $S2->{substages}[0]{score}],
    "the history of a lead created in $S2->{stage} starts there");

my @normal = (
    [phone => '0044 20 7946 0958', '+442079460958'],
    [phone => '+44 20 7946 0958', '+442079460958'],
    [phone => '+1.415.555.2671', '+14155552671'],
    [phone => '+14155552671', '+14155552671'],
    [shop_domain => 'foo.myshopify.com', 'foo.myshopify.com'],
    [shop_domain => 'HTTP://Shop.Example.COM:8443/path?x=1#frag', 'shop.example.com'],
    [shop_domain => 'https://Foo.MyShopify.com', 'foo.myshopify.com'],
    [shop_domain => 'Shop.Example.com.', 'shop.example.com'],
    [email => 'UPPER@EXAMPLE.COM', 'upper@example.com'],
    [currency => 'gbp', 'GBP'],
    [currency => 'Jpy', 'JPY'],
    [currency => 'CHF', 'CHF'],
);
for my $n (@normal) {
    my ($field, $in, $out) = @$n;
    $r = $t->post_json('/leads/', { name => "Normal $field", $field => $in }, token => $tok);
    is($r->{status} == 201 ? $r->{json}{$field} : "$r->{status} $r->{content}", $out, "$field '$in' is stored as '$out'");
}
for my $field (qw(email phone company shop_domain)) {
    $r = $t->post_json('/leads/', { name => "Null $field", $field => undef }, token => $tok);
    is($r->{status} == 201 ? ($r->{json}{$field} // 'null') : "$r->{status} $r->{content}", 'null',
        "$field null is accepted and stays null");
}

# stage and substage given
my $LAST = $P->[-1];
my $LSUB = $LAST->{substages}[-1];
$r = $t->post_json('/leads/', { name => 'Late stage', stage => $LAST->{stage}, substage => $LSUB->{status} },
    token => $tok);
is($r->{status}, 201, "stage $LAST->{stage} and substage $LSUB->{status}: 201") or diag($r->{content});
is("$r->{json}{stage}/$r->{json}{substage} $r->{json}{score}", "$LAST->{stage}/$LSUB->{status} $LSUB->{score}",
    '... stored with that substage\'s score');
ok(JSON::PP::is_bool($r->{json}{stage_in_pipeline}) && $r->{json}{stage_in_pipeline}, '... stage_in_pipeline true');

# boundaries that are accepted
my %edge = (
    'name of 1 character'         => { name => 'x' },
    'name of 200 characters'      => { name => 'n' x 200 },
    'name of 200 two-byte characters' => { name => "\x{e9}" x 200 },
    'company of 200 characters'   => { name => 'Company edge', company => 'c' x 200 },
    'notes of 5000 characters with newlines' => { name => 'Notes edge', notes => ("line\n" x 1000) },
    'notes of 5000 two-byte characters' => { name => 'Notes wide', notes => "\x{e9}" x 5000 },
    'company of 200 three-byte characters' => { name => 'Company wide', company => "\x{20ac}" x 200 },
    'name of 200 four-byte characters' => { name => "\x{1F600}" x 200 },
    'value_cents 0'               => { name => 'Zero value', value_cents => 0 },
    'value_cents 10^13'           => { name => 'Max value', value_cents => 10_000_000_000_000 },
    'source manual given'         => { name => 'Manual source', source => 'manual' },
);
for my $case (sort keys %edge) {
    $r = $t->post_json('/leads/', $edge{$case}, token => $tok);
    is($r->{status}, 201, "$case: 201") or diag(substr($r->{content}, 0, 300));
    my $in = $edge{$case};
    my @diff = grep { !defined $r->{json}{$_} || $r->{json}{$_} ne $in->{$_} } keys %$in;
    is_deeply(\@diff, [], "$case: stored as given");
}

# a character outside the BMP written as a JSON surrogate pair
$r = $t->post_raw('/leads/', '{"name":"smile \\ud83d\\ude00"}', 'application/json', token => $tok);
is($r->{status}, 201, 'a name with a surrogate-pair escape: 201') or diag($r->{content});
is($r->{json}{name}, "smile \x{1F600}", '... stored as the one character it stands for');

# refused by the contract (t/150 has the rest)
my $count = $t->psql('SELECT count(*) FROM crm.leads');
for my $src (qw(affiliate webhook)) {
    is_problem($t->post_json('/leads/', { name => "Src $src", source => $src }, token => $tok), 422,
        "source $src cannot be set by a client: 422", field => 'source');
}
$r = $t->post_json('/leads/', { name => 'Substage only', substage => $FSUB->{status} }, token => $tok);
is_problem($r, 422, 'substage without stage: 422');
ok(grep({ ($_->{field} // '') =~ /^(?:stage|substage)$/ } @{ $r->{json}{errors} || [] }),
    '... naming stage or substage') or diag($r->{content});
is_problem($t->post_json('/leads/', { name => 'Bad stage', stage => 'no_such_stage' }, token => $tok), 422,
    'an unknown stage: 422', field => 'stage');
is_problem($t->post_json('/leads/', { name => 'Bad sub', stage => $FIRST, substage => 'no_such_substage' },
    token => $tok), 422, 'an unknown substage: 422', field => 'substage');
my ($other_sub) = grep { my $s = $_; !grep { $_->{status} eq $s } @{ $P->[0]{substages} } }
    map { $_->{status} } map { @{ $_->{substages} } } @$P[1 .. $#$P];
SKIP: {
    skip 'every status of the other stages is also one of the first stage', 1 unless defined $other_sub;
    is_problem($t->post_json('/leads/', { name => 'Wrong sub', stage => $FIRST, substage => $other_sub },
        token => $tok), 422, "a substage of another stage ($other_sub) with $FIRST: 422", field => 'substage');
}
for my $ph ('415 555 2671', '(415) 555-2671', '+1 415 CALL NOW', 'phone') {
    is_problem($t->post_json('/leads/', { name => 'Bad phone', phone => $ph }, token => $tok), 422,
        "phone '$ph': 422", field => 'phone');
}
for my $dom ('a@b.com', 'localhost', '1.2.3.4', 'https://user@shop.example.com/') {
    is_problem($t->post_json('/leads/', { name => 'Bad domain', shop_domain => $dom }, token => $tok), 422,
        "shop_domain '$dom': 422", field => 'shop_domain');
}
is($t->psql('SELECT count(*) FROM crm.leads'), $count, 'none of the refused leads was stored');

# --- read ---------------------------------------------------------------------------------

for my $id ($NIL, 'not-a-uuid', "$min->{id}x", '1', substr($min->{id}, 0, 35)) {
    is_problem($t->get("/leads/$id", token => $tok), 404, "GET /leads/$id: 404");
}

# --- history of a new lead ------------------------------------------------------------------

$r = $t->get("/leads/$min->{id}/history", token => $tok);
my $h = is_json_response($r, 200, 'GET /leads/{id}/history: 200');
is(ref $h->{items}, 'ARRAY', '... items is an array');
ok(exists $h->{next_cursor} && !defined $h->{next_cursor}, '... next_cursor null');
is(scalar @{ $h->{items} || [] }, 1, '... one item: the creation');
my $h0 = $h->{items}[0] // {};
is_deeply([sort keys %$h0],
    [sort qw(id from_stage from_substage to_stage to_substage score actor_id created_at)],
    '... with the contract\'s members');
is_deeply([@$h0{qw(from_stage from_substage to_stage to_substage score actor_id)}],
    [undef, undef, $FIRST, $FSUB->{status}, $FSUB->{score}, $me->{id}],
    '... from null to the first stage and substage, with its score, by the owner');
ok(is_rfc3339_utc($h0->{created_at}), '... created_at RFC 3339');

# --- update ---------------------------------------------------------------------------------

sleep 1.1;   # updated_at must move even at a resolution of seconds
$r = $t->put_json("/leads/$full->{id}", { name => 'Jane Q. Doe' }, token => $tok);
my $u = is_json_response($r, 200, 'PUT /leads/{id} {name}: 200');
is_lead($r, '... shape');
is($u->{name}, 'Jane Q. Doe', '... name changed');
is($u->{version}, 2, '... version 2');
is($r->{headers}{etag}, '"2"', '... ETag: "2"');
cmp_ok(epoch($u->{updated_at}) // 0, '>', epoch($full->{updated_at}) // 0, '... updated_at advanced');
is($u->{created_at}, $full->{created_at}, '... created_at unchanged');
my @same = grep { !/^(?:name|version|updated_at)$/ } @CrmTest::LEAD_FIELDS;
is_deeply({ map { $_ => $u->{$_} } @same }, { map { $_ => $full->{$_} } @same }, '... every other member unchanged');
$r = $t->get("/leads/$full->{id}", token => $tok);
is_deeply($r->{json}, $u, 'GET shows the update');
is($r->{headers}{etag}, '"2"', '... and ETag "2"');

$r = $t->put_json("/leads/$full->{id}", {
    email => ' NEW@Example.org ', phone => '0044 20 7946 0958', shop_domain => 'https://Bar.Example.net/x',
    currency => 'cad', value_cents => 5, notes => "a\nb", company => 'New Co' }, token => $tok);
$u = is_json_response($r, 200, 'PUT with seven fields: 200');
is_deeply([@$u{qw(email phone shop_domain currency value_cents notes company version)}],
    ['new@example.org', '+442079460958', 'bar.example.net', 'CAD', 5, "a\nb", 'New Co', 3],
    '... normalised as on create, version 3');
is("$u->{stage}/$u->{substage} $u->{score}", "$full->{stage}/$full->{substage} $full->{score}",
    '... stage, substage and score unchanged');

$r = $t->put_json("/leads/$full->{id}", { email => undef, phone => undef, company => undef, shop_domain => undef },
    token => $tok);
$u = is_json_response($r, 200, 'PUT with email, phone, company and shop_domain null: 200');
is_deeply([@$u{qw(email phone company shop_domain version)}], [undef, undef, undef, undef, 4],
    '... all four cleared, version 4');

# refused updates change nothing
my $before = $t->get("/leads/$full->{id}", token => $tok)->{json};
is_problem($t->put_json("/leads/$full->{id}", {}, token => $tok), 422, 'PUT {}: 422');
is_problem($t->put_json("/leads/$full->{id}", { stage => $FIRST }, token => $tok), 422,
    'PUT with stage: 422 (stages move through /stage)', field => 'stage');
is_problem($t->put_json("/leads/$full->{id}", { substage => $FSUB->{status} }, token => $tok), 422,
    'PUT with substage: 422', field => 'substage');
is_problem($t->put_json("/leads/$full->{id}", { name => 'With stage', stage => $FIRST, substage => $FSUB->{status} },
    token => $tok), 422, 'PUT with name, stage and substage: 422');
is_problem($t->put_json("/leads/$full->{id}", { source => 'api' }, token => $tok), 422,
    'PUT with source: 422', field => 'source');
is_problem($t->put_json("/leads/$full->{id}", { name => 'x', bogus => 1 }, token => $tok), 422,
    'PUT with an unknown field: 422', field => 'bogus');
is_problem($t->put_json("/leads/$full->{id}", { name => '' }, token => $tok), 422,
    'PUT with an empty name: 422', field => 'name');
is_problem($t->put_json("/leads/$full->{id}", { phone => '415 555 2671' }, token => $tok), 422,
    'PUT with a national phone number: 422', field => 'phone');
is_problem($t->put_json("/leads/$NIL", { name => 'Nobody' }, token => $tok), 404, 'PUT on a missing id: 404');
is_problem($t->put_json('/leads/not-a-uuid', { name => 'Nobody' }, token => $tok), 404, 'PUT on a non-UUID: 404');
is_deeply($t->get("/leads/$full->{id}", token => $tok)->{json}, $before, 'the refused PUTs changed nothing');

# --- If-Match ---------------------------------------------------------------------------------

my $seen = $t->get("/leads/$full->{id}", token => $tok);
my $tag = $seen->{headers}{etag};
is($tag, etag_of($seen->{json}), 'the ETag is the quoted version');
$r = $t->put_json("/leads/$full->{id}", { notes => 'with the current ETag' }, token => $tok,
    headers => { 'If-Match' => $tag });
is($r->{status}, 200, 'If-Match with the current ETag: 200') or diag($r->{content});
is($r->{json}{version}, $seen->{json}{version} + 1, '... version + 1');
is($r->{headers}{etag}, etag_of($r->{json}), '... new ETag');

# two clients read the lead; one writes, the other's If-Match is stale
my $a_view = $t->get("/leads/$full->{id}", token => $tok);
my $b_view = $t->get("/leads/$full->{id}", token => $tok);
is($t->put_json("/leads/$full->{id}", { notes => 'client B wrote first' }, token => $tok,
    headers => { 'If-Match' => $b_view->{headers}{etag} })->{status}, 200, 'client B updates with its ETag');
$r = $t->put_json("/leads/$full->{id}", { notes => 'client A is stale' }, token => $tok,
    headers => { 'If-Match' => $a_view->{headers}{etag} });
is_problem($r, 412, "client A's If-Match is stale: 412");
my $now = $t->get("/leads/$full->{id}", token => $tok)->{json};
is($now->{notes}, 'client B wrote first', "... and client A's change was not applied");
is($now->{version}, $b_view->{json}{version} + 1, '... version unchanged by the refused PUT');
is_problem($t->put_json("/leads/$full->{id}", { notes => 'v1' }, token => $tok, headers => { 'If-Match' => '"1"' }),
    412, 'If-Match "1" long after: 412');
$r = $t->put_json("/leads/$full->{id}", { notes => 'star' }, token => $tok, headers => { 'If-Match' => '*' });
is($r->{status}, 200, 'If-Match: * always matches: 200') or diag($r->{content});
is($r->{json}{version}, $now->{version} + 1, '... version + 1');
$r = $t->put_json("/leads/$full->{id}", { notes => 'unconditional' }, token => $tok);
is($r->{status}, 200, 'no If-Match: unconditional 200');
my $cur = $r->{headers}{etag} // '"0"';
$r = $t->put_json("/leads/$full->{id}", { notes => 'listed' }, token => $tok,
    headers => { 'If-Match' => qq{"998", $cur} });
is($r->{status}, 200, 'If-Match with a list that holds the current ETag: 200') or diag($r->{content});
is_problem($t->put_json("/leads/$full->{id}", { notes => 'not listed' }, token => $tok,
    headers => { 'If-Match' => '"998", "999"' }), 412, 'If-Match with a list of stale ETags: 412');

# concurrent writers with the same If-Match: exactly one wins
my $race = $t->create_lead($tok, name => 'Race');
my $WRITERS = 8;
my $go = time + 0.5;
my @writers;
for my $i (1 .. $WRITERS) {
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $rd;
        $SIG{ALRM} = 'DEFAULT';
        alarm 20;
        my $ua = HTTP::Tiny->new(timeout => 10);
        sleep($go - time) if $go > time;
        my $res = $ua->request('PUT', $t->base_url . "/leads/$race->{id}", { headers => {
            Authorization => "Bearer $tok", 'Content-Type' => 'application/json', 'If-Match' => '"1"' },
            content => json_encode({ notes => "writer $i" }) });
        print $wr "$res->{status}\n";
        close $wr;
        POSIX::_exit(0);
    }
    close $wr;
    push @writers, [$pid, $rd];
}
my @statuses;
for my $w (@writers) {
    my ($pid, $rd) = @$w;
    my $line = <$rd>;
    waitpid $pid, 0;
    push @statuses, defined $line ? ($line =~ /(\d+)/)[0] : 'none';
}
is_deeply([sort @statuses], ['200', ('412') x ($WRITERS - 1)],
    "$WRITERS concurrent PUTs with If-Match \"1\": one 200, the others 412");
$r = $t->get("/leads/$race->{id}", token => $tok);
is($r->{json}{version}, 2, '... version 2');
like($r->{json}{notes} // '', qr/^writer \d+$/, "... with the winner's notes");
is($t->psql("SELECT count(*) FROM crm.audit_log WHERE object_id = '$race->{id}' AND action = 'lead.update'"), 1,
    '... and one lead.update audit row');

# --- a stage move (t/130 covers the pipeline) -----------------------------------------------

my $S1 = $P->[1];
$before = $t->get("/leads/$min->{id}", token => $tok)->{json};
$r = $t->put_json("/leads/$min->{id}/stage", { stage => $S1->{stage}, substage => $S1->{substages}[0]{status} },
    token => $tok);
$u = is_json_response($r, 200, "PUT /leads/{id}/stage to $S1->{stage}: 200");
is_lead($r, '... a lead');
is("$u->{stage}/$u->{substage} $u->{score} v$u->{version}",
    "$S1->{stage}/$S1->{substages}[0]{status} $S1->{substages}[0]{score} v" . ($before->{version} + 1),
    '... the new stage, substage and score, version + 1');
$h = $t->get("/leads/$min->{id}/history", token => $tok)->{json};
is(scalar @{ $h->{items} || [] }, 2, '... and a second history item');
is_deeply([@{ $h->{items}[1] // {} }{qw(from_stage from_substage to_stage to_substage)}],
    [$FIRST, $FSUB->{status}, $S1->{stage}, $S1->{substages}[0]{status}], '... from the first stage to the new one');

# --- delete -----------------------------------------------------------------------------------

my $del = $t->create_lead($tok, name => 'Doomed Lead', company => 'Doomed Co', email => 'doomed@example.com');
$r = $t->del("/leads/$del->{id}", token => $tok, headers => { 'If-Match' => '"9"' });
is_problem($r, 412, 'DELETE with a stale If-Match: 412');
is($t->get("/leads/$del->{id}", token => $tok)->{status}, 200, '... and the lead is still there');
$r = $t->del("/leads/$del->{id}", token => $tok, headers => { 'If-Match' => '"1"' });
is($r->{status}, 204, 'DELETE with the current If-Match: 204') or diag($r->{content});
is($r->{content}, '', '... no body');
is_problem($t->get("/leads/$del->{id}", token => $tok), 404, 'GET after DELETE: 404');
is_problem($t->put_json("/leads/$del->{id}", { name => 'Back' }, token => $tok), 404, 'PUT after DELETE: 404');
is_problem($t->put_json("/leads/$del->{id}", { name => 'Back' }, token => $tok, headers => { 'If-Match' => '*' }),
    404, 'PUT with If-Match: * after DELETE: 404');
is_problem($t->del("/leads/$del->{id}", token => $tok), 404, 'DELETE again: 404');
is_problem($t->put_json("/leads/$del->{id}/stage", { stage => $FIRST, substage => $FSUB->{status} }, token => $tok),
    404, 'PUT stage after DELETE: 404');
is_problem($t->get("/leads/$del->{id}/history", token => $tok), 404, 'GET history after DELETE: 404');
is($t->psql("SELECT count(*) FROM crm.leads WHERE id = '$del->{id}' AND deleted_at IS NOT NULL"), 1,
    'the row stays in crm.leads with deleted_at set');
my ($ids) = list_ids('/leads/', $tok, limit => 200);
ok(!grep({ $_ eq $del->{id} } @$ids), 'the deleted lead is not listed');
for my $q ('q=doomed', 'q=Doomed%20Co', "stage=$FIRST") {
    ($ids) = list_ids("/leads/?$q", $tok);
    ok(!grep({ $_ eq $del->{id} } @$ids), "... nor with ?$q");
}
for my $hdr ({}, { 'If-Match' => '*' }) {
    my $d = $t->create_lead($tok, name => 'Doomed too');
    $r = $t->del("/leads/$d->{id}", token => $tok, headers => $hdr);
    is($r->{status}, 204, 'DELETE ' . (%$hdr ? 'with If-Match: *' : 'without If-Match') . ': 204');
}
is_problem($t->del("/leads/$NIL", token => $tok), 404, 'DELETE of a missing id: 404');
is_problem($t->del('/leads/not-a-uuid', token => $tok), 404, 'DELETE of a non-UUID: 404');

# --- the list and its filters -------------------------------------------------------------

my ($m2, $tok2) = $t->member;
$r = $t->get('/leads/', token => $tok2);
is_deeply(is_json_response($r, 200, 'GET /leads/ of an account without leads: 200'),
    { items => [], next_cursor => undef }, '... {"items": [], "next_cursor": null}');

my $SX = $P->[1]{stage};
my @made;
for my $spec (
    [name => 'Alpha Widget', company => 'Globex', email => 'alpha@one.example'],
    [name => 'Beta', email => 'Bob@Widgets.example'],
    [name => 'Gamma', company => 'WIDGETCORP', stage => $SX],
    [name => 'Delta 100% real', stage => $SX],
    [name => 'Delta 100X real'],
    [name => 'Epsilon_under', stage => $SX],
    [name => 'EpsilonXunder'],
    [name => 'Back\\slash'],
    [name => 'Secretive', notes => 'secretnote widget'],
    [name => "Stra\x{df}e Shop"],
) {
    push @made, $t->create_lead($tok2, @$spec);
}
my @newest = reverse @made;

$r = $t->get('/leads/', token => $tok2);
is_json_response($r, 200, 'GET /leads/: 200');
is_deeply(names($r->{json}{items}), names(\@newest), "the caller's leads, newest first");
ok(exists $r->{json}{next_cursor} && !defined $r->{json}{next_cursor}, '... next_cursor null');
is_deeply($r->{json}{items}[0], $t->get("/leads/$newest[0]{id}", token => $tok2)->{json},
    '... a listed lead is the lead itself');
my $bad_shape = grep { CrmTest::lead_shape_problems($_) } @{ json_decode($r->{content})->{items} };
is($bad_shape, 0, '... every item has the contract\'s shape');

my %q = (
    'widget'     => ['Gamma', 'Beta', 'Alpha Widget'],
    'WIDGET'     => ['Gamma', 'Beta', 'Alpha Widget'],
    'globex'     => ['Alpha Widget'],
    'one.example' => ['Alpha Widget'],
    '100%'       => ['Delta 100% real'],
    '%'          => ['Delta 100% real'],
    'n_u'        => ['Epsilon_under'],
    '_'          => ['Epsilon_under'],
    'k\\s'       => ['Back\\slash'],
    '\\'         => ['Back\\slash'],
    'secretnote' => [],
    "stra\x{df}e" => ["Stra\x{df}e Shop"],
    'x' x 100    => [],
    "'; DROP TABLE crm.leads; --" => [],
);
for my $q (sort keys %q) {
    $r = $t->get('/leads/?q=' . esc($q), token => $tok2);
    my $shown = length $q > 20 ? substr($q, 0, 10) . '...' : $q;
    is($r->{status}, 200, "?q=$shown: 200") or diag($r->{content});
    is_deeply(names($r->{json}{items} || []), $q{$q}, "?q=$shown: " . (join(', ', @{ $q{$q} }) || 'nothing'));
}

$r = $t->get("/leads/?stage=$SX", token => $tok2);
is_deeply(names($r->{json}{items} || []), ['Epsilon_under', 'Delta 100% real', 'Gamma'],
    "?stage=$SX: the leads in that stage, newest first");
$r = $t->get("/leads/?stage=$SX&q=delta", token => $tok2);
is_deeply(names($r->{json}{items} || []), ['Delta 100% real'], "?stage=$SX&q=delta: both filters apply");
$r = $t->get('/leads/?stage=no_such_stage', token => $tok2);
is_deeply(is_json_response($r, 200, '?stage= a stage not in the pipeline: 200'),
    { items => [], next_cursor => undef }, '... and nothing');
is_problem($t->get('/leads/?foo=1', token => $tok2), 422, 'an unknown query parameter: 422', field => 'foo');
is_problem($t->get("/leads/?stage=$SX&owner_id=$me->{id}", token => $tok2), 422,
    'owner_id is not a filter of /leads/: 422', field => 'owner_id');

# --- pagination through 120 leads -------------------------------------------------------------

my ($m3, $tok3) = $t->member;
my (@all, %in_stage);
for my $i (1 .. 120) {
    my %f = (name => sprintf('Bulk %03d', $i));
    $f{stage} = $SX if $i % 3 == 0;
    my $l = $t->create_lead($tok3, %f);
    push @all, $l->{id};
    $in_stage{ $l->{id} } = 1 if $f{stage};
}
my @want = reverse @all;
my @want_stage = grep { $in_stage{$_} } @want;

$r = $t->get('/leads/', token => $tok3);
is(scalar @{ $r->{json}{items} || [] }, 50, 'default page size: 50');
ok(defined $r->{json}{next_cursor} && !ref $r->{json}{next_cursor} && length $r->{json}{next_cursor},
    '... with a next_cursor');
is_deeply([map { $_->{id} } @{ $r->{json}{items} || [] }], [@want[0 .. 49]], '... the 50 newest');
$r = $t->get('/leads/?limit=200', token => $tok3);
is_deeply([map { $_->{id} } @{ $r->{json}{items} || [] }], \@want, 'limit=200: all 120, newest first');
ok(exists $r->{json}{next_cursor} && !defined $r->{json}{next_cursor}, '... next_cursor null');

for my $limit (50, 7, 1, 120) {
    my ($got, $err, $pages) = $t->page_all('/leads/', token => $tok3, limit => $limit);
    ok(!$err, "limit=$limit: every page answered") or diag($err);
    my %dup;
    my @ids = map { $_->{id} } @$got;
    is_deeply([grep { $dup{$_}++ } @ids], [], "limit=$limit: no lead twice ($pages pages)");
    is_deeply(\@ids, \@want, "limit=$limit: every lead once, newest first");
}
for my $limit (50, 7) {
    my ($ids, $err) = list_ids("/leads/?stage=$SX", $tok3, limit => $limit);
    ok(!$err, "stage=$SX, limit=$limit: every page answered") or diag($err);
    is_deeply($ids, \@want_stage, "stage=$SX, limit=$limit: each of its 40 leads once, newest first");
}
my ($qids, $qerr) = list_ids('/leads/?q=' . esc('Bulk 1'), $tok3, limit => 4);
ok(!$qerr, 'q=Bulk 1, limit=4: every page answered') or diag($qerr);
is_deeply($qids, [grep { my $id = $_; grep { $_ eq $id } @all[99 .. 119] } @want],
    'q=Bulk 1, limit=4: Bulk 100..120, newest first');

# a lead deleted while a client pages does not make another appear twice
$r = $t->get('/leads/?limit=50', token => $tok3);
my $cursor = $r->{json}{next_cursor};
is($t->del("/leads/$want[10]", token => $tok3)->{status}, 204, 'delete a lead of the page already read');
is($t->del("/leads/$want[60]", token => $tok3)->{status}, 204, 'delete a lead of a page not yet read');
my @rest;
while (defined $cursor) {
    $r = $t->get('/leads/?limit=50&cursor=' . esc($cursor), token => $tok3);
    last unless $r->{status} == 200;
    push @rest, map { $_->{id} } @{ $r->{json}{items} };
    $cursor = $r->{json}{next_cursor};
    last if @rest > 200;
}
is_deeply(\@rest, [grep { $_ ne $want[60] } @want[50 .. 119]],
    'the following pages: the rest once, without the deleted lead');

# leads created in one instant: the id breaks the tie, still each once
my @tied = @all[30 .. 59];
$t->psql("UPDATE crm.leads SET created_at = '2026-01-01 00:00:00+00' WHERE id IN ("
    . join(',', map { "'$_'" } @tied) . ')');
my %created = map { split /\|/ } $t->psql(
    "SELECT id || '|' || extract(epoch FROM created_at) FROM crm.leads WHERE owner_id = '$m3->{id}' AND deleted_at IS NULL");
for my $limit (7, 50, 13) {
    my ($ids, $err) = list_ids('/leads/', $tok3, limit => $limit);
    ok(!$err, "30 leads with one created_at, limit=$limit: every page answered") or diag($err);
    my %dup;
    is_deeply([grep { $dup{$_}++ } @$ids], [], "... limit=$limit: no lead twice");
    is_deeply([sort @$ids], [sort keys %created], "... limit=$limit: every lead");
    my @ts = map { $created{$_} // 0 } @$ids;
    my @late = grep { $ts[$_] > $ts[$_ - 1] } 1 .. $#ts;
    is_deeply(\@late, [], "... limit=$limit: newest first");
}

$t->done;

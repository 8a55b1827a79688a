#!/usr/bin/perl
# Hostile and broken input to the lead endpoints: wrong types, over-long
# strings, invalid identifiers, unknown fields, bad query parameters.  Each
# gets a 4xx problem document, never a 5xx, and none of them writes
# anything (every table of the crm schema counted before and after).

use strict;
use warnings;

use Test::More;
use CrmTest;

my $t = CrmTest->new->start;

my $NIL = '00000000-0000-4000-8000-000000000000';
my $P = $t->load_pipeline;
my ($FIRST, $FSUB) = ($P->[0]{stage}, $P->[0]{substages}[0]);
my $S2 = $P->[2];

sub esc { CrmTest::uri_escape($_[0]) }

my ($me, $tok) = $t->member;
my $lead = $t->create_lead($tok, name => 'Target', email => 'target@example.com', company => 'Target Co');
my $id = $lead->{id};

# the row count of every table in the crm schema, and the leads' content
my @tables = $t->psql(q{SELECT table_name FROM information_schema.tables
                        WHERE table_schema = 'crm' AND table_type = 'BASE TABLE' ORDER BY 1});
ok(grep({ $_ eq 'leads' } @tables), 'crm.leads exists') or diag("tables: @tables");
# the performance counters are folded in the background: fold what is
# pending first, so that a snapshot shows what requests wrote, not when
# the folder last ran
sub snapshot {
    $t->psql('SELECT crm.stats_compact(1000000)');
    my %s = map { $_ => scalar $t->psql("SELECT count(*) FROM crm.\"$_\"") } @tables;
    $s{'leads content'} = $t->psql(q{SELECT md5(coalesce(string_agg(l::text, '|' ORDER BY l.id), ''))
                                     FROM crm.leads l});
    $s{'lead counters'} = $t->psql(q{SELECT md5(coalesce(string_agg(c::text, '|'
                                     ORDER BY c.account_id, c.stage, c.currency), '')) FROM crm.account_leads c});
    return \%s;
}
my $before = snapshot();

sub four_xx {
    my ($res, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ct = $res->{headers}{'content-type'} // '';
    ok($res->{status} >= 400 && $res->{status} < 500 && $ct =~ m{^application/problem\+json\b}
        && ref $res->{json} eq 'HASH' && defined $res->{json}{detail}, "$name: 4xx problem")
        or diag("got $res->{status} '$ct': " . substr($res->{content}, 0, 300));
}

# --- POST /leads/: wrong types, lengths, values, fields: 422 on the field -------------

my @post = (
    ['name: 5',                   { name => 5 },                         'name'],
    ['name: null',                { name => undef },                     'name'],
    ['name: true',                { name => JSON::PP::true },            'name'],
    ['name: []',                  { name => [] },                        'name'],
    ['name: {}',                  { name => {} },                        'name'],
    ['name: ""',                  { name => '' },                        'name'],
    ['no name',                   { company => 'Nameless' },             'name'],
    ['name of 201 characters',    { name => 'n' x 201 },                 'name'],
    ['name of 201 two-byte characters', { name => "\x{e9}" x 201 },      'name'],
    ['value_cents: "10"',         { name => 'v', value_cents => '10' },  'value_cents'],
    ['value_cents: 1.5',          { name => 'v', value_cents => 1.5 },   'value_cents'],
    ['value_cents: -1',           { name => 'v', value_cents => -1 },    'value_cents'],
    ['value_cents: 10^13 + 1',    { name => 'v', value_cents => 10_000_000_000_001 }, 'value_cents'],
    ['value_cents: true',         { name => 'v', value_cents => JSON::PP::true }, 'value_cents'],
    ['value_cents: null',         { name => 'v', value_cents => undef }, 'value_cents'],
    ['value_cents: []',           { name => 'v', value_cents => [] },    'value_cents'],
    ['email: []',                 { name => 'e', email => [] },          'email'],
    ['email: 5',                  { name => 'e', email => 5 },           'email'],
    ['email: not-an-email',       { name => 'e', email => 'not-an-email' }, 'email'],
    ['email: a@',                 { name => 'e', email => 'a@' },        'email'],
    ['email: @b.com',             { name => 'e', email => '@b.com' },    'email'],
    ['email: a b@c.com',          { name => 'e', email => 'a b@c.com' }, 'email'],
    ['email: two @',              { name => 'e', email => 'a@b@c.com' }, 'email'],
    ['email of 300 characters',   { name => 'e', email => ('a' x 288) . '@example.com' }, 'email'],
    ['email: ""',                 { name => 'e', email => '' },          'email'],
    ['notes: {}',                 { name => 'n', notes => {} },          'notes'],
    ['notes: 5',                  { name => 'n', notes => 5 },           'notes'],
    ['notes of 5001 characters',  { name => 'n', notes => 'x' x 5001 },  'notes'],
    ['notes of 5001 two-byte characters', { name => 'n', notes => "\x{e9}" x 5001 }, 'notes'],
    ['company of 201 three-byte characters', { name => 'c', company => "\x{20ac}" x 201 }, 'company'],
    ['notes null',                { name => 'n', notes => undef },       'notes'],
    ['phone: national',           { name => 'p', phone => '415 555 2671' }, 'phone'],
    ['phone: letters',            { name => 'p', phone => '+1 415 CALL NOW' }, 'phone'],
    ['phone: "+"',                { name => 'p', phone => '+' },         'phone'],
    ['phone: too short',          { name => 'p', phone => '+123' },      'phone'],
    ['phone: 16 digits',          { name => 'p', phone => '+1234567890123456' }, 'phone'],
    ['phone: an extension',       { name => 'p', phone => '+1 415 555 2671 ext. 12' }, 'phone'],
    ['phone: a number',           { name => 'p', phone => 14155552671 }, 'phone'],
    ['phone: ""',                 { name => 'p', phone => '' },          'phone'],
    ['shop_domain: a@b.com',      { name => 's', shop_domain => 'a@b.com' }, 'shop_domain'],
    ['shop_domain: localhost',    { name => 's', shop_domain => 'localhost' }, 'shop_domain'],
    ['shop_domain: 1.2.3.4',      { name => 's', shop_domain => '1.2.3.4' }, 'shop_domain'],
    ['shop_domain: [::1]',        { name => 's', shop_domain => 'http://[::1]/' }, 'shop_domain'],
    ['shop_domain: http://',      { name => 's', shop_domain => 'http://' }, 'shop_domain'],
    ['shop_domain: ""',           { name => 's', shop_domain => '' },    'shop_domain'],
    ['shop_domain: foo..com',     { name => 's', shop_domain => 'foo..com' }, 'shop_domain'],
    ['shop_domain: -foo.com',     { name => 's', shop_domain => '-foo.com' }, 'shop_domain'],
    ['shop_domain: 300 characters', { name => 's', shop_domain => join('.', ('a' x 60) x 5) . '.com' }, 'shop_domain'],
    ['shop_domain: 5',            { name => 's', shop_domain => 5 },     'shop_domain'],
    ['currency: US',              { name => 'c', currency => 'US' },     'currency'],
    ['currency: USDD',            { name => 'c', currency => 'USDD' },   'currency'],
    ['currency: U$D',             { name => 'c', currency => 'U$D' },    'currency'],
    ['currency: 123',             { name => 'c', currency => '123' },    'currency'],
    ['currency: ""',              { name => 'c', currency => '' },       'currency'],
    ['currency: 840',             { name => 'c', currency => 840 },      'currency'],
    ['currency: null',            { name => 'c', currency => undef },    'currency'],
    ['company of 201 characters', { name => 'c', company => 'c' x 201 }, 'company'],
    ['company: 5',                { name => 'c', company => 5 },         'company'],
    ['source: affiliate',         { name => 's', source => 'affiliate' }, 'source'],
    ['source: webhook',           { name => 's', source => 'webhook' },  'source'],
    ['source: other',             { name => 's', source => 'other' },    'source'],
    ['source: 5',                 { name => 's', source => 5 },          'source'],
    ['source: null',              { name => 's', source => undef },      'source'],
    ['stage: unknown',            { name => 's', stage => 'no_such_stage' }, 'stage'],
    ['stage: 5',                  { name => 's', stage => 5 },           'stage'],
    ['substage: unknown',         { name => 's', stage => $FIRST, substage => 'no_such_substage' }, 'substage'],
    ['unknown field bogus',       { name => 'u', bogus => 1 },           'bogus'],
    ['unknown field id',          { name => 'u', id => $NIL },           'id'],
    ['unknown field owner_id',    { name => 'u', owner_id => $NIL },     'owner_id'],
    ['unknown field score',       { name => 'u', score => 100 },         'score'],
    ['unknown field version',     { name => 'u', version => 7 },         'version'],
    ['unknown field deleted_at',  { name => 'u', deleted_at => '2026-01-01T00:00:00Z' }, 'deleted_at'],
    ['unknown field affiliate_link_id', { name => 'u', affiliate_link_id => 'abc' }, 'affiliate_link_id'],
    ['unknown field stage_in_pipeline', { name => 'u', stage_in_pipeline => JSON::PP::false }, 'stage_in_pipeline'],
    ['unknown field created_at',  { name => 'u', created_at => '2020-01-01T00:00:00Z' }, 'created_at'],
);
for my $case (@post) {
    my ($what, $body, $field) = @$case;
    is_problem($t->post_json('/leads/', $body, token => $tok), 422, "POST /leads/, $what: 422", field => $field);
}
my $r = $t->post_json('/leads/', { name => 'Substage only', substage => $FSUB->{status} }, token => $tok);
is_problem($r, 422, 'POST /leads/, substage without stage: 422');

# --- POST /leads/: bodies that are not a lead object ------------------------------------

my $JSON = 'application/json';
for my $case (['[]', '[]'], ['a string', '"lead"'], ['a number', '5'], ['null', 'null'], ['true', 'true'],
              ['an array of a lead', '[{"name":"in an array"}]']) {
    four_xx($t->post_raw('/leads/', $case->[1], $JSON, token => $tok), "POST /leads/ with $case->[0]");
}
is_problem($t->post_raw('/leads/', '{"name":', $JSON, token => $tok), 400, 'POST /leads/ malformed JSON: 400');
is_problem($t->post_raw('/leads/', '', $JSON, token => $tok), 400, 'POST /leads/ empty body: 400');
is_problem($t->post_raw('/leads/', qq({"name":"bad \xff utf-8"}), $JSON, token => $tok), 400,
    'POST /leads/ invalid UTF-8: 400');
is_problem($t->post_raw('/leads/', '{"name":"x"}', 'text/plain', token => $tok), 415,
    'POST /leads/ as text/plain: 415');
is_problem($t->post_raw('/leads/', 'name=x', 'application/x-www-form-urlencoded', token => $tok), 415,
    'POST /leads/ as a form: 415');
is_problem($t->post_raw('/leads/', json_encode({ name => 'big', notes => 'x' x 70_000 }), $JSON, token => $tok),
    413, 'POST /leads/ over crm_max_body_size (64k): 413');
is_problem($t->post_raw('/leads/', '{"name":' . ('[' x 40) . (']' x 40) . '}', $JSON, token => $tok), 400,
    'POST /leads/ nested 40 deep: 400');
four_xx($t->post_raw('/leads/', '{"name":"nul \u0000 inside"}', $JSON, token => $tok),
    'POST /leads/ with a NUL escape in the name');
four_xx($t->post_raw('/leads/', '{"name":"x","value_cents":1e999999}', $JSON, token => $tok),
    'POST /leads/ with value_cents 1e999999');
four_xx($t->post_raw('/leads/', '{"name":"x","value_cents":99999999999999999999999}', $JSON, token => $tok),
    'POST /leads/ with value_cents past 64 bits');
four_xx($t->post_raw('/leads/', '{"name":5,"name":[]}', $JSON, token => $tok),
    'POST /leads/ with a duplicate key, both values wrong');

# --- PUT /leads/{id} ----------------------------------------------------------------------

my @put = (
    ['{}',                        {},                                    undef],
    ['name: 5',                   { name => 5 },                         'name'],
    ['name: null',                { name => undef },                     'name'],
    ['name: ""',                  { name => '' },                        'name'],
    ['name of 201 characters',    { name => 'n' x 201 },                 'name'],
    ['value_cents: "10"',         { value_cents => '10' },               'value_cents'],
    ['value_cents: 1.5',          { value_cents => 1.5 },                'value_cents'],
    ['value_cents: -1',           { value_cents => -1 },                 'value_cents'],
    ['value_cents: null',         { value_cents => undef },              'value_cents'],
    ['email: []',                 { email => [] },                       'email'],
    ['email: not-an-email',       { email => 'not-an-email' },           'email'],
    ['notes: {}',                 { notes => {} },                       'notes'],
    ['notes of 5001 characters',  { notes => 'x' x 5001 },               'notes'],
    ['notes: null',               { notes => undef },                    'notes'],
    ['phone: national',           { phone => '020 7946 0958' },          'phone'],
    ['shop_domain: localhost',    { shop_domain => 'localhost' },        'shop_domain'],
    ['currency: EURO',            { currency => 'EURO' },                'currency'],
    ['currency: null',            { currency => undef },                 'currency'],
    ['company of 201 characters', { company => 'c' x 201 },              'company'],
    ['stage',                     { stage => $S2->{stage} },             'stage'],
    ['substage',                  { substage => $FSUB->{status} },       'substage'],
    ['source',                    { source => 'manual' },                'source'],
    ['score',                     { score => 100 },                      'score'],
    ['owner_id',                  { owner_id => $NIL },                  'owner_id'],
    ['version',                   { version => 99 },                     'version'],
    ['id',                        { id => $NIL },                        'id'],
    ['a valid name and a bad email', { name => 'Valid', email => 'bad' }, 'email'],
    ['a valid name and an unknown field', { name => 'Valid', bogus => 1 }, 'bogus'],
);
for my $case (@put) {
    my ($what, $body, $field) = @$case;
    is_problem($t->put_json("/leads/$id", $body, token => $tok), 422, "PUT /leads/{id}, $what: 422",
        defined $field ? (field => $field) : ());
}
is_problem($t->request('PUT', "/leads/$id", content => '{"name":', token => $tok,
    headers => { 'Content-Type' => $JSON }), 400, 'PUT malformed JSON: 400');
is_problem($t->request('PUT', "/leads/$id", content => '{"name":"x"}', token => $tok,
    headers => { 'Content-Type' => 'text/plain' }), 415, 'PUT as text/plain: 415');
four_xx($t->request('PUT', "/leads/$id", content => '[]', token => $tok, headers => { 'Content-Type' => $JSON }),
    'PUT with an array');
for my $tag ('"999"', '"0"', '"x"', '"-1"', 'W/"1"', '"99999999999999999999999"', '""') {
    four_xx($t->put_json("/leads/$id", { name => 'Conditional' }, token => $tok, headers => { 'If-Match' => $tag }),
        "PUT with If-Match $tag");
}
is_problem($t->put_json("/leads/$id", { name => 'Conditional' }, token => $tok, headers => { 'If-Match' => '"2"' }),
    412, 'PUT with If-Match "2" (version is 1): 412');
for my $tag ('"2"', '"x"', 'W/"1"') {
    four_xx($t->del("/leads/$id", token => $tok, headers => { 'If-Match' => $tag }), "DELETE with If-Match $tag");
}

# --- PUT /leads/{id}/stage ------------------------------------------------------------------

my @stage = (
    ['{}',                        {},                                    undef],
    ['stage only',                { stage => $S2->{stage} },             'substage'],
    ['substage only',             { substage => $FSUB->{status} },       'stage'],
    ['an unknown stage',          { stage => 'nope_stage', substage => $FSUB->{status} }, 'stage'],
    ['an unknown substage',       { stage => $S2->{stage}, substage => 'nope_substage' }, 'substage'],
    ['stage: 5',                  { stage => 5, substage => $FSUB->{status} }, 'stage'],
    ['stage: null',               { stage => undef, substage => $FSUB->{status} }, 'stage'],
    ['substage: {}',              { stage => $FIRST, substage => {} },   'substage'],
    ['stage of 300 characters',   { stage => 's' x 300, substage => 'x' }, 'stage'],
    ['an extra field',            { stage => $FIRST, substage => $FSUB->{status}, note => 'x' }, 'note'],
);
for my $case (@stage) {
    my ($what, $body, $field) = @$case;
    is_problem($t->put_json("/leads/$id/stage", $body, token => $tok), 422, "PUT /leads/{id}/stage, $what: 422",
        defined $field ? (field => $field) : ());
}
is_problem($t->request('PUT', "/leads/$id/stage", content => '{"stage":', token => $tok,
    headers => { 'Content-Type' => $JSON }), 400, 'PUT stage malformed JSON: 400');

# --- ids -------------------------------------------------------------------------------------

for my $bad ('not-a-uuid', "${id}x", substr($id, 1), '%27%20OR%201=1--', 'x' x 2000,
             '00000000-0000-0000-0000-00000000000g') {
    my $shown = length $bad > 20 ? substr($bad, 0, 10) . '...' : $bad;
    is_problem($t->get("/leads/$bad", token => $tok), 404, "GET /leads/$shown: 404");
    is_problem($t->put_json("/leads/$bad", { name => 'x' }, token => $tok), 404, "PUT /leads/$shown: 404");
    is_problem($t->del("/leads/$bad", token => $tok), 404, "DELETE /leads/$shown: 404");
    is_problem($t->get("/leads/$bad/history", token => $tok), 404, "GET /leads/$shown/history: 404");
    is_problem($t->put_json("/leads/$bad/stage", { stage => $FIRST, substage => $FSUB->{status} }, token => $tok),
        404, "PUT /leads/$shown/stage: 404");
}

# --- query parameters ----------------------------------------------------------------------

for my $list ('/leads/', "/leads/$id/history") {
    for my $limit ('0', '201', '10000', '-1', 'x', '1.5', '', '10abc', '99999999999999999999') {
        is_problem($t->get("$list?limit=$limit", token => $tok), 422, "$list?limit=$limit: 422", field => 'limit');
    }
    for my $cursor ('garbage', 'AAAA', 'x' x 500, esc(b64url('{"a":1}')), esc(b64url("1:$NIL' OR '1'='1"))) {
        my $shown = length $cursor > 20 ? substr($cursor, 0, 10) . '...' : $cursor;
        is_problem($t->get("$list?cursor=$cursor", token => $tok), 422, "$list?cursor=$shown: 422",
            field => 'cursor');
    }
    is_problem($t->get("$list?foo=1", token => $tok), 422, "$list?foo=1: 422", field => 'foo');
}
# a cursor of one list handed to another: refused or ignored, never a 5xx
my $other = $t->create_lead($tok, name => 'Second')->{id};
my $lc = $t->get('/leads/?limit=1', token => $tok)->{json}{next_cursor};
$t->put_json("/leads/$other/stage", { stage => $S2->{stage}, substage => $S2->{substages}[0]{status} },
    token => $tok);
my $hc = $t->get("/leads/$other/history?limit=1", token => $tok)->{json}{next_cursor};
ok(defined $lc && defined $hc, 'cursors of /leads/ and of a history');
for my $case (["/leads/$id/history", $lc, 'a /leads/ cursor'], ['/leads/', $hc, 'a history cursor'],
              ['/leads/?stage=' . $FIRST, $lc, 'a /leads/ cursor with a stage filter']) {
    my ($path, $c, $what) = @$case;
    $r = $t->get($path . ($path =~ /\?/ ? '&' : '?') . 'cursor=' . esc($c // ''), token => $tok);
    ok($r->{status} == 200 || $r->{status} == 422, "$path with $what: 200 or 422 (got $r->{status})")
        or diag($r->{content});
}
$before = snapshot();

is_problem($t->get('/leads/?q=' . ('q' x 101), token => $tok), 422, 'q of 101 characters: 422', field => 'q');
is_problem($t->get('/leads/?q=' . esc("\x{e9}" x 101), token => $tok), 422, 'q of 101 two-byte characters: 422',
    field => 'q');
is_problem($t->get('/leads/?q=', token => $tok), 422, 'q empty: 422', field => 'q');
four_xx($t->get('/leads/?q=%FF', token => $tok), 'q of invalid UTF-8');
is_problem($t->get('/leads/?owner_id=' . $me->{id}, token => $tok), 422, 'owner_id on /leads/: 422',
    field => 'owner_id');
is($t->get('/leads/?q=' . esc("\x{e9}" x 100), token => $tok)->{status}, 200, 'q of 100 two-byte characters: 200');
is($t->get('/leads/?q=' . esc("\x{1F600}" x 100), token => $tok)->{status}, 200, 'q of 100 four-byte characters: 200');
is($t->get('/leads/?q=' . esc(q{'%_\\;--}), token => $tok)->{status}, 200, q{q of '%_\;--: 200});

# --- methods -------------------------------------------------------------------------------

my %allowed = (
    "PATCH /leads/$id"          => 'PUT',
    "POST /leads/$id"           => 'PUT',
    'DELETE /leads/'            => 'POST',
    'PUT /leads/'               => 'POST',
    "POST /leads/$id/stage"     => 'PUT',
    "DELETE /leads/$id/history" => 'GET',
);
for my $req (sort keys %allowed) {
    my ($method, $path) = split / /, $req;
    $r = $t->request($method, $path, content => '{"name":"x"}', token => $tok,
        headers => { 'Content-Type' => $JSON });
    is_problem($r, 405, "$req: 405");
    like($r->{headers}{allow} // '', qr/\b$allowed{$req}\b/, "$req: Allow names $allowed{$req}");
}

# --- nothing was written -----------------------------------------------------------------

is_deeply(snapshot(), $before, 'no table of the crm schema changed, and crm.leads has the same content');
$r = $t->get("/leads/$id", token => $tok);
is("$r->{status} v$r->{json}{version} $r->{json}{name}", '200 v1 Target', 'the target lead is untouched');

# a lone surrogate may be refused or replaced, but must not upset the database
$r = $t->post_raw('/leads/', '{"name":"a\ud800b"}', $JSON, token => $tok);
ok($r->{status} == 201 || ($r->{status} >= 400 && $r->{status} < 500),
    "a lone surrogate escape in the name: 201 or 4xx (got $r->{status})");
is($t->get('/leads/', token => $tok)->{status}, 200, 'the list still answers');

$t->done;

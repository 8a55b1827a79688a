#!/usr/bin/perl
# Affiliate links: create with the configured commission or the caller's,
# the tracking URL, strict redirect targets, merchants, the owner-scoped
# list with keyset pagination, one link with its counters and ETag, and
# changes with If-Match; another account's link is a 404, admins included.

use strict;
use warnings;

use Test::More;
use CrmTest;

my $t = CrmTest->new->start;

my $ID = qr/^[0-9A-Za-z]{12}$/;

my ($me, $tok) = $t->member;
my ($other, $other_tok) = $t->member;
my ($adm, $adm_tok) = $t->admin;
my ($merchant) = $t->member;
is($t->patch_json("/admin/users/$merchant->{id}", { role => 'merchant' }, token => $adm_tok)->{status},
    200, 'an account made a merchant');

sub create {
    my ($body, $tk) = @_;
    return $t->post_json('/affiliate/links', $body, token => $tk // $tok);
}

# why a link object does not have the contract's shape
sub link_problems {
    my ($l) = @_;
    return ('not an object') unless ref $l eq 'HASH';
    my @want = qw(affiliate_link_id target_url tracking_url name owner_id merchant_id
        status disabled_by commission counters last_click_at created_at updated_at);
    my %want = map { $_ => 1 } @want;
    my @why;
    push @why, "no member '$_'" for grep { !exists $l->{$_} } @want;
    push @why, "unexpected member '$_'" for grep { !$want{$_} } sort keys %$l;
    push @why, 'affiliate_link_id' unless ($l->{affiliate_link_id} // '') =~ $ID;
    push @why, 'status' unless ($l->{status} // '') =~ /^(?:active|disabled)$/;
    push @why, 'owner_id' unless is_uuid($l->{owner_id});
    push @why, 'disabled_by' unless ($l->{status} // '') eq 'active'
        ? !defined $l->{disabled_by}
        : ($l->{disabled_by} // '') =~ /^(?:owner|admin|account)$/;
    push @why, 'commission' unless ref $l->{commission} eq 'HASH'
        && is_json_int($l->{commission}{install_cents})
        && is_json_int($l->{commission}{conversion_bps})
        && ($l->{commission}{currency} // '') =~ /^[A-Z]{3}$/;
    push @why, 'counters' unless ref $l->{counters} eq 'HASH'
        && 4 == grep { is_json_int($l->{counters}{$_}) }
            qw(clicks installs conversions earnings_cents);
    push @why, "$_ time" for grep { !is_rfc3339_utc($l->{$_}) } qw(created_at updated_at);
    return @why;
}

sub is_link {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $l = eval { json_decode($r->{content}) };
    my @why = link_problems($l);
    ok(!@why, $name) or diag(join('; ', @why) . "\n  $r->{content}");
}

# --- authentication ---------------------------------------------------------------------

is_problem($t->post_json('/affiliate/links', { target_url => 'https://a.example.com/' }), 401,
    'POST /affiliate/links without a token: 401');
is_problem($t->get('/affiliate/links'), 401, 'GET /affiliate/links without a token: 401');
is_problem($t->get('/affiliate/links/' . $t->make_link_id), 401, 'GET /affiliate/links/{id} without a token: 401');

# --- create: defaults -------------------------------------------------------------------

my $r = create({ target_url => 'https://shop.example.com/apps/crm?plan=pro' });
my $min = is_json_response($r, 201, 'POST /affiliate/links with only a target: 201');
is_link($r, '... a link with the contract\'s members and types');
like($min->{affiliate_link_id}, $ID, '... a 12-character base62 id');
is($min->{tracking_url}, $t->base_url . "/r/$min->{affiliate_link_id}",
    '... tracking_url is the public URL, /r/ and the id');
is($min->{target_url}, 'https://shop.example.com/apps/crm?plan=pro', '... target_url as sent');
is($min->{status}, 'active', '... status active');
is($min->{name}, '', '... name empty');
is($min->{merchant_id}, undef, '... merchant_id null');
is_deeply($min->{commission}, { install_cents => 500, conversion_bps => 1000, currency => 'USD' },
    '... the configured commission: 500 cents, 1000 bps, USD');
is_deeply($min->{counters}, { clicks => 0, installs => 0, conversions => 0, earnings_cents => 0 },
    '... counters all 0');
is($min->{last_click_at}, undef, '... last_click_at null');
is($r->{headers}{location}, "/affiliate/links/$min->{affiliate_link_id}", '... Location');
is($r->{headers}{etag}, '"1"', '... ETag "1"');
is($t->psql("SELECT count(*) FROM crm.affiliate_link_stats WHERE link_id = '$min->{affiliate_link_id}'"),
    1, '... its counters row exists');
is($t->psql("SELECT owner_id FROM crm.affiliate_links WHERE id = '$min->{affiliate_link_id}'"),
    $me->{id}, '... owned by the caller');
is($t->psql("SELECT count(*) FROM crm.audit_log WHERE action = 'link.create'"
        . " AND object_id = '$min->{affiliate_link_id}' AND actor_id = '$me->{id}'"),
    1, '... with its audit row');

# --- create: every field ----------------------------------------------------------------

$r = create({ target_url => 'HTTP://Shop.Example.com:8443/x#frag', name => 'Spring campaign',
    merchant_id => $merchant->{id}, commission => { install_cents => 1234, conversion_bps => 250 } });
my $full = is_json_response($r, 201, 'POST /affiliate/links with every field: 201');
is_link($r, '... shape');
is($full->{name}, 'Spring campaign', '... name');
is($full->{merchant_id}, $merchant->{id}, '... merchant_id');
is_deeply($full->{commission}, { install_cents => 1234, conversion_bps => 250, currency => 'USD' },
    '... the commission sent');

$r = create({ target_url => 'https://a.example.com/', commission => { conversion_bps => 0 } });
is_deeply(is_json_response($r, 201, 'a commission with one member: 201')->{commission},
    { install_cents => 500, conversion_bps => 0, currency => 'USD' }, '... the other from the configuration');

$r = create({ target_url => 'https://a.example.com/', name => undef, merchant_id => undef,
    commission => { install_cents => 0, conversion_bps => 10000 } });
is($r->{status}, 201, 'null name and merchant, and the bounds 0 and 10000: 201');
is($r->{json}{name}, '', '... null name is empty');

$r = create({ target_url => 'https://a.example.com/', commission => { install_cents => 100000000 } });
is($r->{status}, 201, 'install_cents 100000000 (the maximum): 201');

my $u2048 = 'https://a.example.com/' . ('p' x (2048 - length 'https://a.example.com/'));
is(create({ target_url => $u2048 })->{status}, 201, 'a 2048-character target: 201');

# --- create: validation -----------------------------------------------------------------

my @bad_targets = (
    ['javascript:alert(1)', 'a javascript: URL'],
    ['//evil.com', 'a scheme-relative URL'],
    ['//evil.com/path', 'a scheme-relative URL with a path'],
    ["https://a.example.com/\r\nLocation: https://evil.com", 'CR LF in the target'],
    ["https://a.example.com/\n", 'LF in the target'],
    ['https://user@evil.com/', 'user-info'],
    ['https://user:pass@evil.com/', 'user-info with a password'],
    ['https://a.example.com@evil.com/', 'a host that is user-info'],
    ['ftp://files.example.com/x', 'ftp'],
    ['file:///etc/passwd', 'file'],
    ['data:text/html,<script>alert(1)</script>', 'data'],
    ['http:/evil.com', 'one slash'],
    ['https://', 'no host'],
    ['https://a.example.com\\@evil.com/', 'a backslash'],
    ['https://exa mple.com/', 'a space'],
    ["https://a.example.com/\x{e9}", 'a raw non-ASCII character'],
    ['shop.example.com/app', 'no scheme'],
    ['https://a.example.com:0/', 'port 0'],
    ['https://a.example.com:65536/', 'port 65536'],
    ['https://a.example.com/' . ('p' x (2049 - length 'https://a.example.com/')), '2049 characters'],
    ['', 'empty'],
);
for my $c (@bad_targets) {
    is_problem(create({ target_url => $c->[0] }), 422, "target_url $c->[1]: 422", field => 'target_url');
}
is_problem(create({ name => 'x' }), 422, 'target_url missing: 422', field => 'target_url');
is_problem(create({ target_url => undef }), 422, 'target_url null: 422', field => 'target_url');
is_problem(create({ target_url => 5 }), 422, 'target_url a number: 422', field => 'target_url');
is_problem(create({ target_url => 'https://a.example.com/', name => 'n' x 201 }), 422,
    'a 201-character name: 422', field => 'name');
is_problem(create({ target_url => 'https://a.example.com/', status => 'disabled' }), 422,
    'status is not a create field: 422', field => 'status');
is_problem(create({ target_url => 'https://a.example.com/', owner_id => $other->{id} }), 422,
    'owner_id cannot be sent: 422', field => 'owner_id');

is_problem(create({ target_url => 'https://a.example.com/', merchant_id => $other->{id} }), 422,
    'merchant_id of a member: 422', field => 'merchant_id');
is_problem(create({ target_url => 'https://a.example.com/', merchant_id => '00000000-0000-4000-8000-000000000000' }),
    422, 'merchant_id of no account: 422', field => 'merchant_id');
is_problem(create({ target_url => 'https://a.example.com/', merchant_id => 'acme' }), 422,
    'merchant_id not a UUID: 422', field => 'merchant_id');

for my $c (
    [{ install_cents => -1 }, 'commission.install_cents', 'install_cents -1'],
    [{ install_cents => 100000001 }, 'commission.install_cents', 'install_cents over 10^8'],
    [{ install_cents => 1.5 }, 'commission.install_cents', 'install_cents 1.5'],
    [{ install_cents => '5' }, 'commission.install_cents', 'install_cents a string'],
    [{ conversion_bps => 10001 }, 'commission.conversion_bps', 'conversion_bps 10001'],
    [{ conversion_bps => -1 }, 'commission.conversion_bps', 'conversion_bps -1'],
    [{ currency => 'EUR' }, 'commission.currency', 'a currency in the commission'],
) {
    is_problem(create({ target_url => 'https://a.example.com/', commission => $c->[0] }), 422,
        "commission $c->[2]: 422", field => $c->[1]);
}
is_problem(create({ target_url => 'https://a.example.com/', commission => 500 }), 422,
    'commission not an object: 422', field => 'commission');
is_problem(create({ target_url => 'https://a.example.com/', commission => [500] }), 422,
    'commission an array: 422', field => 'commission');

is_problem($t->post_raw('/affiliate/links', '{"target_url":', 'application/json', token => $tok), 400,
    'malformed JSON: 400');
is_problem($t->post_raw('/affiliate/links', 'target_url=https://a.example.com/',
    'application/x-www-form-urlencoded', token => $tok), 415, 'a form body: 415');
is_problem($t->post_raw('/affiliate/links', '[]', 'application/json', token => $tok), 422,
    'a JSON array: 422', field => 'body');

is($t->psql("SELECT count(*) FROM crm.affiliate_links WHERE owner_id = '$other->{id}'"), 0,
    'nothing refused was stored');

# --- one link ---------------------------------------------------------------------------

my $id = $min->{affiliate_link_id};
$r = $t->get("/affiliate/links/$id", token => $tok);
is_deeply(is_json_response($r, 200, 'GET /affiliate/links/{id}: 200'), $min, '... the link as created');
is($r->{headers}{etag}, '"1"', '... ETag "1"');
is_link($r, '... shape');

$t->psql("UPDATE crm.affiliate_link_stats SET clicks = 7, installs = 2, conversions = 1,"
    . " earnings_cents = 1499, last_click_at = '2026-11-21 10:00:00+00' WHERE link_id = '$id'");
$r = $t->get("/affiliate/links/$id", token => $tok);
is_deeply($r->{json}{counters}, { clicks => 7, installs => 2, conversions => 1, earnings_cents => 1499 },
    '... its counters: clicks, installs, conversions, earnings_cents');
like($r->{json}{last_click_at} // '', qr/^2026-11-21T10:00:00(?:\.0+)?Z$/, '... and last_click_at');

# --- isolation --------------------------------------------------------------------------

is_problem($t->get("/affiliate/links/$id", token => $other_tok), 404, "another member's link: 404");
is_problem($t->get("/affiliate/links/$id", token => $adm_tok), 404, "... and for an admin: 404 (owner-scoped)");
is_problem($t->patch_json("/affiliate/links/$id", { name => 'mine now' }, token => $other_tok), 404,
    "PATCH another member's link: 404");
is($t->psql("SELECT name FROM crm.affiliate_links WHERE id = '$id'"), '', '... unchanged');
is_problem($t->get('/affiliate/links/' . $t->make_link_id, token => $tok), 404, 'a well-formed unknown id: 404');
is_problem($t->get('/affiliate/links/AAAAAAAAAAAA', token => $tok), 404, 'an id with wrong check characters: 404');
is_problem($t->get('/affiliate/links/nope', token => $tok), 404, 'a malformed id: 404');
my ($olist) = $t->page_all('/affiliate/links', token => $other_tok);
is_deeply($olist, [], "another member's list is empty");

# --- change -----------------------------------------------------------------------------

$r = $t->patch_json("/affiliate/links/$id", { name => 'Renamed' }, token => $tok);
my $p = is_json_response($r, 200, 'PATCH name: 200');
is($p->{name}, 'Renamed', '... renamed');
is($p->{target_url}, $min->{target_url}, '... target unchanged');
is($r->{headers}{etag}, '"2"', '... ETag "2"');
is_link($r, '... shape');

$r = $t->patch_json("/affiliate/links/$id", { target_url => 'https://other.example.com/landing' }, token => $tok);
is(is_json_response($r, 200, 'PATCH target_url: 200')->{target_url}, 'https://other.example.com/landing',
    '... the new target');
is($r->{json}{tracking_url}, $min->{tracking_url}, '... the tracking URL stays');

$r = $t->patch_json("/affiliate/links/$id", { status => 'disabled' }, token => $tok);
is(is_json_response($r, 200, 'PATCH status disabled: 200')->{status}, 'disabled', '... disabled');
$r = $t->get("/affiliate/links/$id", token => $tok);
is($r->{json}{status}, 'disabled', '... and GET says so');
is($t->patch_json("/affiliate/links/$id", { status => 'active' }, token => $tok)->{json}{status}, 'active',
    'PATCH status active: active again');

for my $c (
    [{ status => 'paused' }, 'status', 'status paused'],
    [{ status => 'ACTIVE' }, 'status', 'status ACTIVE'],
    [{ target_url => 'javascript:alert(1)' }, 'target_url', 'a javascript: target'],
    [{ target_url => "https://a.example.com/\r\nX: y" }, 'target_url', 'a CRLF target'],
    [{ target_url => 'https://u@a.example.com/' }, 'target_url', 'a user-info target'],
    [{ target_url => undef }, 'target_url', 'a null target'],
    [{ name => 'n' x 201 }, 'name', 'a 201-character name'],
    [{ commission => { install_cents => 1 } }, 'commission', 'the commission'],
    [{ merchant_id => $merchant->{id} }, 'merchant_id', 'the merchant'],
    [{}, 'body', 'an empty object'],
) {
    is_problem($t->patch_json("/affiliate/links/$id", $c->[0], token => $tok), 422,
        "PATCH $c->[2]: 422", field => $c->[1]);
}

$r = $t->get("/affiliate/links/$id", token => $tok);
my $etag = $r->{headers}{etag};
is($etag, '"5"', 'four changes: ETag "5"');
is_problem($t->patch_json("/affiliate/links/$id", { name => 'stale' }, token => $tok,
    headers => { 'If-Match' => '"1"' }), 412, 'PATCH with a stale If-Match: 412');
$r = $t->patch_json("/affiliate/links/$id", { name => 'fresh' }, token => $tok, headers => { 'If-Match' => $etag });
is($r->{status}, 200, 'PATCH with the current If-Match: 200');
is($r->{headers}{etag}, '"6"', '... ETag "6"');
is_problem($t->patch_json('/affiliate/links/' . $t->make_link_id, { name => 'x' }, token => $tok,
    headers => { 'If-Match' => '"1"' }), 404, 'PATCH an unknown link with If-Match: 404, not 412');
is($t->psql("SELECT count(*) FROM crm.audit_log WHERE action = 'link.update' AND object_id = '$id'"),
    5, 'every change has its audit row');
is($t->psql("SELECT details->>'fields' FROM crm.audit_log WHERE action = 'link.update'"
        . " AND object_id = '$id' ORDER BY id LIMIT 1"), '["name"]', '... naming the fields changed');

# --- list -------------------------------------------------------------------------------

my ($pager, $pager_tok) = $t->member;
my @made;
for my $i (1 .. 7) {
    my $c = create({ target_url => "https://p.example.com/$i", name => "page $i" }, $pager_tok);
    push @made, $c->{json}{affiliate_link_id};
}
# several links in one microsecond must still page without a loss
$t->psql("UPDATE crm.affiliate_links SET created_at = '2026-01-01 00:00:00+00'"
    . " WHERE id IN ('$made[2]', '$made[3]', '$made[4]')");

$r = $t->get('/affiliate/links', token => $pager_tok);
my $all = is_json_response($r, 200, 'GET /affiliate/links: 200');
is(scalar @{ $all->{items} }, 7, '... all 7 of the caller\'s links');
is($all->{next_cursor}, undef, '... one page');
is_link({ content => json_encode($all->{items}[0]) }, '... items are links');
my @want = map { $_->{affiliate_link_id} } @{ $all->{items} };
is_deeply([@want[0 .. 3]], [reverse @made[0, 1, 5, 6]], '... newest first');

for my $limit (1, 2, 3, 7) {
    my ($items, $err, $pages) = $t->page_all('/affiliate/links', token => $pager_tok, limit => $limit);
    is($err, undef, "limit=$limit: every page 200");
    is_deeply([map { $_->{affiliate_link_id} } @$items], \@want, "limit=$limit: the same links in the same order");
}

is_problem($t->get('/affiliate/links?limit=0', token => $pager_tok), 422, 'limit=0: 422', field => 'limit');
is_problem($t->get('/affiliate/links?limit=201', token => $pager_tok), 422, 'limit=201: 422', field => 'limit');
is_problem($t->get('/affiliate/links?cursor=garbage', token => $pager_tok), 422, 'a garbage cursor: 422',
    field => 'cursor');
my $uuid_cursor = b64url('1763712000123456:' . $me->{id});
is_problem($t->get("/affiliate/links?cursor=$uuid_cursor", token => $pager_tok), 422,
    'a cursor of a UUID-keyed list: 422', field => 'cursor');
is_problem($t->get('/affiliate/links?owner_id=' . $me->{id}, token => $pager_tok), 422,
    'an unknown query parameter: 422', field => 'owner_id');

$t->done;

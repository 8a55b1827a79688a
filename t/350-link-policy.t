#!/usr/bin/perl
# What the operator and the administrators decide about affiliate links:
# the hosts a target may name (crm_redirect_allow_hosts, checked when a
# link is made or its target changed, refused by nginx -t when malformed,
# changed by a reload at once); an administrator's block of any account's
# link (PATCH /admin/links/{id}), which the owner cannot lift and which
# stops the redirect and the commissions at once; a deactivated account,
# whose links answer 410 and earn nothing until it is active again; and
# at most N new links per account per period (crm_link_create_limit: 429
# with Retry-After, never exceeded however concurrent the creates).
#
# The link cache's TTL is far longer than the test (10 min): only the
# invalidation on this host can explain a redirect that changes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use CrmTest;

my $ALLOW = 'apps.shopify.com *.myshopify.com 127.0.0.1';

my $t = CrmTest->new;
$t->start_db;
$t->write_config(conf => { crm_redirect_allow_hosts => $ALLOW }, $t->edge_config(ttl => '10m'));
$t->start_nginx;
my %edge = $t->edge_config(ttl => '10m');

my $d = $t->dir;

# nginx -t below refuses configurations on purpose; its [emerg] lines
# name the directive
$t->allow_log(qr/\[emerg\].*"crm_(?:redirect_allow_hosts|link_create_limit)"/);

sub q1 { scalar $t->psql($_[0]) }

sub create {
    my ($tk, $url, %more) = @_;
    return $t->post_json('/affiliate/links', { target_url => $url, %more }, token => $tk);
}

sub make_link {
    my ($tk, $url) = @_;
    my $r = create($tk, $url // 'https://apps.shopify.com/crm');
    die "link: $r->{status} $r->{content}" unless $r->{status} == 201;
    return $r->{json}{affiliate_link_id};
}

# the redirect's status on $n fresh connections (either worker may answer)
sub r_status {
    my ($id, $n) = @_;
    return join ' ', map {
        $t->get("/r/$id", headers => { Connection => 'close' })->{status}
    } 1 .. ($n // 3);
}

sub want { join ' ', ($_[0]) x ($_[1] // 3) }

# nginx -t on the configuration as written now: (ok, its output alone)
sub nginx_t {
    unlink "$d/nginx-cmd.log";
    return $t->nginx_test_config;
}

sub install { $t->callback('/callbacks/install', @_) }
sub conversion { $t->callback('/callbacks/conversion', @_) }

sub ledger_rows { q1("SELECT count(*) FROM crm.wallet_transactions WHERE account_id = '$_[0]'") }
sub balance {
    q1("SELECT coalesce((SELECT balance_cents FROM crm.wallets WHERE account_id = '$_[0]'), 0)");
}

my ($adm, $adm_tok) = $t->admin;

# ===========================================================================
# 1. crm_redirect_allow_hosts
# ===========================================================================

my ($me, $tok) = $t->member;

for my $c (
    ['https://apps.shopify.com/crm?plan=pro', 'an exact name'],
    ['HTTP://Shop.MyShopify.com:8443/x', 'a *.myshopify.com name in upper case, with a port'],
    ['https://a.b.myshopify.com/', 'a deeper name under *.myshopify.com'],
    ['https://APPS.SHOPIFY.COM:443/', 'the exact name in upper case, with a port'],
    ['http://127.0.0.1:9/landing', 'an allowed address with a port'],
) {
    my $r = create($tok, $c->[0]);
    is($r->{status}, 201, "target on an allowed host ($c->[1]): 201") or diag($r->{content});
}

my $n_before = q1("SELECT count(*) FROM crm.affiliate_links WHERE owner_id = '$me->{id}'");
for my $c (
    ['https://evil.example/x', 'evil.example', 'a host not in the list'],
    ['HTTPS://EVIL.Example:8443/x', 'evil.example', 'a host not in the list, upper case and a port'],
    ['https://myshopify.com/', 'myshopify.com', 'the suffix of *.myshopify.com itself'],
    ['https://evilmyshopify.com/', 'evilmyshopify.com', 'a name ending in the suffix without its dot'],
    ['https://shop.myshopify.com.evil.example/', 'shop.myshopify.com.evil.example',
        'an allowed name followed by another domain'],
    ['https://sub.apps.shopify.com/', 'sub.apps.shopify.com', 'a name under an exact entry'],
    ['https://apps.shopify.co/', 'apps.shopify.co', 'a near miss of an exact entry'],
    ['http://127.0.0.2/', '127.0.0.2', 'another address'],
    ['http://[::1]:8080/', '[::1]', 'an IPv6 address not in the list'],
) {
    my ($url, $host, $what) = @$c;
    my $r = create($tok, $url);
    is_problem($r, 422, "target $url ($what): 422", field => 'target_url');
    like($r->{json}{detail} // '', qr/host "\Q$host\E" is not allowed for link targets/,
        "... the detail names the host $host") or diag($r->{content});
    is(($r->{json}{errors} || [])->[0]{field}, 'target_url', '... errors[0] is target_url');
}
is(q1("SELECT count(*) FROM crm.affiliate_links WHERE owner_id = '$me->{id}'"), $n_before,
    'no refused target was stored');

# PATCH target_url: the same rule
my $L = make_link($tok, 'https://apps.shopify.com/a');
my $r = $t->patch_json("/affiliate/links/$L", { target_url => 'https://evil.example/b' }, token => $tok);
is_problem($r, 422, 'PATCH target_url to a host not in the list: 422', field => 'target_url');
like($r->{json}{detail} // '', qr/host "evil\.example" is not allowed for link targets/, '... naming the host');
is(q1("SELECT target_url || ' ' || version FROM crm.affiliate_links WHERE id = '$L'"),
    'https://apps.shopify.com/a 1', '... the link is unchanged');
$r = $t->patch_json("/affiliate/links/$L", { name => 'x', target_url => 'https://myshopify.com/' }, token => $tok);
is_problem($r, 422, 'PATCH name and a target on the bare suffix: 422', field => 'target_url');
is(q1("SELECT name FROM crm.affiliate_links WHERE id = '$L'"), '', '... nothing of it applied');
$r = $t->patch_json("/affiliate/links/$L", { target_url => 'https://Other.MyShopify.com/c' }, token => $tok);
is($r->{status}, 200, 'PATCH target_url to an allowed host: 200') or diag($r->{content});
is(r_status($L, 1), 302, 'the link redirects');

# --- nginx -t ------------------------------------------------------------------------------

my ($ok, $out) = nginx_t();
ok($ok, 'nginx -t passes the configuration with the allow list') or diag($out);

for my $c (
    ['Apps.Shopify.com', 'lower case', 'an entry in upper case'],
    ['apps.shopify.com *.MyShopify.com', 'lower case', 'a pattern in upper case after a good entry'],
    ['https://apps.shopify.com/', undef, 'a URL'],
    ['apps.shopify.com:443', undef, 'a name with a port'],
    ['*.', undef, 'a bare "*."'],
    ['*.*.example.com', undef, 'two wildcards'],
    ['bad..example.com', undef, 'an empty label'],
    ['-bad.example.com', undef, 'a label starting with a hyphen'],
    ['off apps.shopify.com', undef, '"off" beside an entry ("off" goes alone)'],
) {
    my ($list, $why, $what) = @$c;
    $t->write_config(conf => { crm_redirect_allow_hosts => $list });
    ($ok, $out) = nginx_t();
    ok(!$ok, "nginx -t refuses crm_redirect_allow_hosts $list ($what)");
    my ($bad) = grep { !/^(?:apps\.shopify\.com)$/ } split ' ', $list;
    like($out, qr/invalid host "\Q$bad\E" of "crm_redirect_allow_hosts"/, '... naming the entry')
        or diag($out);
    like($out, qr/must be in lower case/, '... saying why') if defined $why;
}
$t->write_config(conf => { crm_redirect_allow_hosts => $ALLOW });
($ok, $out) = nginx_t();
ok($ok, 'nginx -t passes the good list again') or diag($out);

# --- a reload changes the list at once ---------------------------------------------------------

my $before_tightening = make_link($tok, 'https://apps.shopify.com/kept');
is(r_status($before_tightening), want(302), 'a link to apps.shopify.com redirects');

ok($t->reconfigure(conf => { crm_redirect_allow_hosts => 'evil.example [::1]' }),
    'reload with the list "evil.example [::1]"');
is_problem(create($tok, 'https://apps.shopify.com/new'), 422,
    '... apps.shopify.com is refused at once', field => 'target_url');
is_problem(create($tok, 'https://shop.myshopify.com/new'), 422,
    '... and *.myshopify.com', field => 'target_url');
is(create($tok, 'https://Evil.Example/ok')->{status}, 201, '... evil.example is allowed at once');
is(create($tok, 'http://[::1]:8080/ok')->{status}, 201, '... and the address [::1]');
is_problem($t->patch_json("/affiliate/links/$L", { target_url => 'https://other.myshopify.com/d' }, token => $tok),
    422, '... a PATCH to a host no longer allowed: 422', field => 'target_url');
# Links made before a tightening keep their target and keep redirecting:
# the list is checked when a target is written, never at the redirect.  An
# operator who wants one of them gone blocks it (PATCH /admin/links/{id},
# below).
is(r_status($before_tightening), want(302), 'a link made before the tightening still redirects');
is($t->patch_json("/affiliate/links/$before_tightening", { name => 'still here' }, token => $tok)->{status},
    200, '... and its owner can still rename it (the target is not checked again)');

# "off" at the server level under a list at the http level: any host
ok($t->reconfigure(server_extra => $edge{server_extra} . "        crm_redirect_allow_hosts off;\n"),
    'reload with "crm_redirect_allow_hosts off" in the server block');
is(create($tok, 'https://anything.example.org/')->{status}, 201, '... any host is allowed there');

# a list of one location: POST /affiliate/links there, PATCH in "location /"
ok($t->reconfigure(server_extra => $edge{server_extra}
        . "        location = /affiliate/links { crm_api; crm_redirect_allow_hosts only.example.com; }\n",
        conf => { crm_redirect_allow_hosts => $ALLOW }),
    "reload with \"$ALLOW\" at the http level and only.example.com in the location of POST /affiliate/links");
is(create($tok, 'https://only.example.com/x')->{status}, 201, '... POST to only.example.com: 201');
is_problem(create($tok, 'https://apps.shopify.com/x'), 422, '... POST to apps.shopify.com: 422 there',
    field => 'target_url');
is($t->patch_json("/affiliate/links/$L", { target_url => 'https://apps.shopify.com/e' }, token => $tok)->{status},
    200, '... PATCH (in location /) takes the http list: apps.shopify.com 200');
is_problem($t->patch_json("/affiliate/links/$L", { target_url => 'https://only.example.com/e' }, token => $tok),
    422, '... and refuses only.example.com', field => 'target_url');

# no list at all: any host
ok($t->reconfigure(server_extra => $edge{server_extra}, conf => { crm_redirect_allow_hosts => undef }),
    'reload without crm_redirect_allow_hosts');
is(create($tok, 'https://anything-else.example.org/')->{status}, 201, '... any host is allowed');

ok($t->reconfigure(conf => { crm_redirect_allow_hosts => $ALLOW }), "reload with \"$ALLOW\" again");
is_problem(create($tok, 'https://evil.example/again'), 422, '... evil.example is refused again',
    field => 'target_url');

# ===========================================================================
# 2. PATCH /admin/links/{id}
# ===========================================================================

my ($owner, $otok) = $t->member;
my ($other, $other_tok) = $t->member;
my $A = make_link($otok, 'https://apps.shopify.com/blocked');
is(r_status($A), want(302), 'the link redirects (and is in the cache now)');
my $v0 = $t->get("/affiliate/links/$A", token => $otok)->{headers}{etag};

is_problem($t->patch_json("/admin/links/$A", { status => 'disabled' }), 401,
    'PATCH /admin/links/{id} without a token: 401');
is_problem($t->patch_json("/admin/links/$A", { status => 'disabled' }, token => $otok), 403,
    '... by the owner (a member): 403');
is_problem($t->patch_json("/admin/links/$A", { status => 'disabled' }, token => $other_tok), 403,
    '... by another member: 403');
is_problem($t->patch_json('/admin/links/' . $t->make_link_id, { status => 'disabled' }, token => $adm_tok), 404,
    '... an unknown well-formed id: 404');
is_problem($t->patch_json('/admin/links/AAAAAAAAAAAA', { status => 'disabled' }, token => $adm_tok), 404,
    '... an id that fails its check characters: 404');
is_problem($t->patch_json('/admin/links/nope', { status => 'disabled' }, token => $adm_tok), 404,
    '... a malformed id: 404');
for my $c (
    [{ status => 'paused' }, 'status', 'status paused'],
    [{ status => 'DISABLED' }, 'status', 'status DISABLED'],
    [{ status => undef }, 'status', 'status null'],
    [{ status => 1 }, 'status', 'status a number'],
    [{}, 'status', 'no status'],
    [{ status => 'disabled', name => 'x' }, 'name', 'an unknown field (name)'],
    [{ status => 'disabled', target_url => 'https://apps.shopify.com/' }, 'target_url',
        'an unknown field (target_url)'],
) {
    is_problem($t->patch_json("/admin/links/$A", $c->[0], token => $adm_tok), 422,
        "admin PATCH with $c->[2]: 422", field => $c->[1]);
}
is(q1("SELECT admin_disabled::text || ' ' || version FROM crm.affiliate_links WHERE id = '$A'"), 'false 1',
    'nothing refused changed the link');
is(r_status($A), want(302), '... which still redirects');
is(q1("SELECT count(*) FROM crm.audit_log WHERE action = 'link.admin_update'"), 0,
    '... and no refused call wrote an audit row');

$r = $t->patch_json("/admin/links/$A", { status => 'disabled' }, token => $adm_tok);
my $j = is_json_response($r, 200, 'admin PATCH {"status":"disabled"} on a member\'s link: 200');
is($j->{affiliate_link_id}, $A, '... the link');
is($j->{owner_id}, $owner->{id}, '... of its owner');
is($j->{status}, 'disabled', '... status disabled');
is($j->{disabled_by}, 'admin', '... disabled_by admin');
isnt($r->{headers}{etag}, $v0, '... a new ETag') or diag("$v0 -> " . ($r->{headers}{etag} // 'none'));
my $v1 = $r->{headers}{etag};
is(r_status($A), want(410), 'the redirect answers 410 at once, on any connection');

$r = $t->get("/affiliate/links/$A", token => $otok);
is($r->{json}{status}, 'disabled', "the owner's GET: status disabled");
is($r->{json}{disabled_by}, 'admin', '... disabled_by admin');
is($r->{headers}{etag}, $v1, "... and its ETag is the admin reply's (changed)");
my ($item) = grep { $_->{affiliate_link_id} eq $A }
    @{ $t->get('/affiliate/links', token => $otok)->{json}{items} || [] };
is(($item // {})->{disabled_by}, 'admin', "... and the owner's list says so");

is(q1("SELECT count(*) FROM crm.audit_log WHERE action = 'link.admin_update'"
    . " AND object_id = '$A' AND actor_id = '$adm->{id}' AND object_type = 'affiliate_link'"), 1,
    'an audit row link.admin_update for the link, by the admin');
is(q1("SELECT details->>'status' FROM crm.audit_log WHERE action = 'link.admin_update' AND object_id = '$A'"),
    'disabled', '... with the status set');

# the owner cannot lift the block
my $vb = $t->get("/affiliate/links/$A", token => $otok)->{headers}{etag};
$r = $t->patch_json("/affiliate/links/$A", { status => 'active' }, token => $otok);
is_problem($r, 403, 'the owner\'s PATCH {"status":"active"}: 403', field => 'status');
is_problem($t->patch_json("/affiliate/links/$A", { status => 'active' }, token => $otok,
    headers => { 'If-Match' => $vb }), 403, '... with the current If-Match too', field => 'status');
is_problem($t->patch_json("/affiliate/links/$A", { status => 'active', name => 'sneaky' }, token => $otok), 403,
    '... with a name beside it too', field => 'status');
is(q1("SELECT admin_disabled::text || ' ' || status || ' ' || name FROM crm.affiliate_links WHERE id = '$A'"),
    'true active ', '... the block and the name stay as they were');
is($t->get("/affiliate/links/$A", token => $otok)->{headers}{etag}, $vb, '... and so does the version');
is(r_status($A), want(410), '... still 410');

# but may still rename it, or move its target
$r = $t->patch_json("/affiliate/links/$A", { name => 'Renamed while blocked' }, token => $otok);
is(is_json_response($r, 200, 'the owner may still rename it: 200')->{name}, 'Renamed while blocked', '... renamed');
is($r->{json}{disabled_by}, 'admin', '... still disabled by the admin');
$r = $t->patch_json("/affiliate/links/$A", { target_url => 'https://apps.shopify.com/moved' }, token => $otok);
is($r->{status}, 200, '... and change its target: 200') or diag($r->{content});
is($r->{json}{status}, 'disabled', '... still disabled');
is(r_status($A), want(410), '... and the redirect still 410');

# callbacks naming the blocked link: attributed, but not paid
my $bal0 = balance($owner->{id});
my $rows0 = ledger_rows($owner->{id});
$r = install({ shop_domain => 'blocked-shop.myshopify.com', affiliate_link_id => $A });
my $ins = is_json_response($r, 200, 'an install naming the blocked link: 200');
ok($ins->{created}, '... created (attributed)');
is(q1("SELECT link_id FROM crm.attributions WHERE id = '$ins->{attribution_id}'"), $A, '... to the blocked link');
is(q1("SELECT count(*) FROM crm.wallet_transactions WHERE source_id = '$ins->{attribution_id}'"), 0,
    '... no ledger row for it');
$r = install({ shop_domain => 'blocked-click.myshopify.com', click_id => $t->make_click_id($A) });
ok(is_json_response($r, 200, 'an install by a click id of the blocked link: 200')->{created}, '... created');
is(q1("SELECT count(*) FROM crm.wallet_transactions WHERE source_id = '$r->{json}{attribution_id}'"), 0,
    '... not paid either');
$r = conversion({ order_id => 'blocked-1', amount_cents => 10000, currency => 'USD', affiliate_link_id => $A });
my $cv = is_json_response($r, 200, 'a conversion naming the blocked link: 200');
ok($cv->{created}, '... created');
is($cv->{commission_cents}, 0, '... commission_cents 0');
is(q1("SELECT commission_cents FROM crm.conversions WHERE id = '$cv->{conversion_id}'"), 0,
    '... recorded with commission 0');
is(ledger_rows($owner->{id}), $rows0, "no new ledger row for the owner");
is(balance($owner->{id}), $bal0, '... the balance unchanged');
is_deeply($t->get('/wallet/transactions', token => $otok)->{json}{items}, [],
    '... GET /wallet/transactions: nothing');
my $c = $t->get("/affiliate/links/$A", token => $otok)->{json}{counters};
is_deeply([@$c{qw(installs conversions earnings_cents)}], [2, 1, 0], '... the link counts them, earning 0');

# the admin lifts the block
$r = $t->patch_json("/admin/links/$A", { status => 'active' }, token => $adm_tok);
$j = is_json_response($r, 200, 'admin PATCH {"status":"active"}: 200');
is($j->{status}, 'active', '... status active');
is($j->{disabled_by}, undef, '... disabled_by null');
is(r_status($A), want(302), 'the redirect answers 302 again at once');
like($t->get("/r/$A")->{headers}{location} // '', qr{^https://apps\.shopify\.com/moved\?ref=\Q$A\E&},
    '... to the target the owner set while it was blocked');
is(q1("SELECT count(*) FROM crm.audit_log WHERE action = 'link.admin_update' AND object_id = '$A'"), 2,
    'a second audit row');
$r = conversion({ order_id => 'unblocked-1', amount_cents => 10000, currency => 'USD', affiliate_link_id => $A });
is($r->{json}{commission_cents}, 1000, 'a conversion after the block is lifted is paid again (1000)');
is(balance($owner->{id}), $bal0 + 1000, '... and credited');

# the owner's own choice survives the admin's block and its lifting
is($t->patch_json("/affiliate/links/$A", { status => 'disabled' }, token => $otok)->{status}, 200,
    'the owner disables the link');
is(r_status($A), want(410), '... 410');
$r = $t->patch_json("/admin/links/$A", { status => 'disabled' }, token => $adm_tok);
is($r->{json}{disabled_by}, 'admin', 'the admin blocks it too: disabled_by admin');
$r = $t->patch_json("/admin/links/$A", { status => 'active' }, token => $adm_tok);
is(is_json_response($r, 200, 'the admin lifts the block: 200')->{status}, 'disabled',
    '... the link stays disabled');
is($r->{json}{disabled_by}, 'owner', '... disabled_by owner');
is(r_status($A), want(410), '... and the redirect stays 410');
is($t->patch_json("/affiliate/links/$A", { status => 'active' }, token => $otok)->{status}, 200,
    'the owner enables it');
is(r_status($A), want(302), '... 302 at once');

# the owner disabling a link an admin blocked is fine (no lift)
$t->patch_json("/admin/links/$A", { status => 'disabled' }, token => $adm_tok);
is($t->patch_json("/affiliate/links/$A", { status => 'disabled' }, token => $otok)->{status}, 200,
    "the owner's PATCH {\"status\":\"disabled\"} on a blocked link: 200");
is($t->patch_json("/admin/links/$A", { status => 'disabled' }, token => $adm_tok)->{status}, 200,
    'blocking a blocked link again: 200');

# any account's link, another admin's included
my $AA = make_link($adm_tok, 'https://apps.shopify.com/admins-own');
$r = $t->patch_json("/admin/links/$AA", { status => 'disabled' }, token => $adm_tok);
is($r->{json}{disabled_by}, 'admin', "an admin blocks its own link too");
is(r_status($AA, 1), 410, '... 410');

# ===========================================================================
# 3. a deactivated account
# ===========================================================================

my ($gone, $gtok) = $t->member;
my $B1 = make_link($gtok, 'https://apps.shopify.com/b1');
my $B2 = make_link($gtok, 'https://shop-b.myshopify.com/b2');
is(r_status($B1) . ' / ' . r_status($B2), want(302) . ' / ' . want(302),
    "the account's two links redirect (and are cached)");

$r = $t->patch_json("/admin/users/$gone->{id}", { is_active => JSON::PP::false }, token => $adm_tok);
is($r->{status}, 200, 'the account is deactivated') or diag($r->{content});
is(r_status($B1), want(410), 'its first link answers 410 at once');
is(r_status($B2), want(410), '... and its second');

$r = $t->patch_json("/admin/links/$B1", { status => 'active' }, token => $adm_tok);
$j = is_json_response($r, 200, "admin PATCH {\"status\":\"active\"} on the deactivated account's link: 200");
is($j->{status}, 'disabled', '... status disabled');
is($j->{disabled_by}, 'account', '... disabled_by account');
is(r_status($B1), want(410), '... still 410');
$r = $t->patch_json("/admin/links/$B2", { status => 'disabled' }, token => $adm_tok);
is($r->{json}{disabled_by}, 'account', 'an admin block of its other link: disabled_by still account');

my $grows = ledger_rows($gone->{id});
$r = install({ shop_domain => 'gone-shop.myshopify.com', affiliate_link_id => $B1 });
$ins = is_json_response($r, 200, "an install naming the deactivated account's link: 200");
ok($ins->{created}, '... created');
is(q1("SELECT count(*) FROM crm.wallet_transactions WHERE source_id = '$ins->{attribution_id}'"), 0,
    '... not paid');
$r = conversion({ order_id => 'gone-1', amount_cents => 10000, currency => 'USD', affiliate_link_id => $B1 });
is(is_json_response($r, 200, '... a conversion: 200')->{commission_cents}, 0, '... commission_cents 0');
is(ledger_rows($gone->{id}), $grows, '... no ledger row for the account');
is(balance($gone->{id}), 0, '... nothing credited');

$r = $t->patch_json("/admin/users/$gone->{id}", { is_active => JSON::PP::true }, token => $adm_tok);
is($r->{status}, 200, 'the account is reactivated') or diag($r->{content});
is(r_status($B1), want(302), 'its first link redirects again at once');
is(r_status($B2), want(410), '... its second stays blocked by the admin');
$r = $t->get("/affiliate/links/$B2", token => $gtok);
is($r->{json}{disabled_by}, 'admin', "... the owner's GET says disabled_by admin");
$t->patch_json("/admin/links/$B2", { status => 'active' }, token => $adm_tok);
is(r_status($B2), want(302), '... and redirects once the admin lifts that');
$r = conversion({ order_id => 'back-1', amount_cents => 10000, currency => 'USD', affiliate_link_id => $B1 });
is($r->{json}{commission_cents}, 1000, 'a conversion after the reactivation is paid (1000)');
is(balance($gone->{id}), 1000, '... and credited');

# ===========================================================================
# 4. crm_link_create_limit
# ===========================================================================

for my $c (['0 1h', 'links'], ['5 0s', 'period'], ['-1 1h', 'links'], ['x 1h', 'links'],
    ['5 367d', 'period'], ['5 nonsense', 'period'], ['1000001 1h', 'links'])
{
    $t->write_config(conf => { crm_link_create_limit => $c->[0] });
    ($ok, $out) = nginx_t();
    ok(!$ok, "nginx -t refuses crm_link_create_limit $c->[0]");
    like($out, qr/"crm_link_create_limit": the \Q$c->[1]\E must be between/, "... the $c->[1] named")
        or diag($out);
}

ok($t->reconfigure(conf => { crm_link_create_limit => '3 1h' }), 'reload with crm_link_create_limit 3 1h');

my ($lim, $ltok) = $t->member;
# refused creates make no link and do not count
is(create($ltok, 'https://evil.example/')->{status}, 422, 'a refused create (host) first');
my @st = map { create($ltok, "https://apps.shopify.com/q$_")->{status} } 1 .. 3;
is("@st", '201 201 201', 'three links in the hour: 201 each');
$r = create($ltok, 'https://apps.shopify.com/q4');
is_problem($r, 429, 'the fourth: 429');
my $ra = $r->{headers}{'retry-after'} // '';
like($ra, qr/^[1-9][0-9]*$/, "... with Retry-After in whole seconds ($ra)");
ok($ra =~ /^\d+$/ && $ra > 3590 && $ra <= 3600, '... about the hour the oldest of the three has left (<= 3600)')
    or diag("Retry-After: $ra");
is(q1("SELECT count(*) FROM crm.affiliate_links WHERE owner_id = '$lim->{id}'"), 3, '... three links stored');
is(q1("SELECT count(*) FROM crm.audit_log WHERE action = 'link.create' AND actor_id = '$lim->{id}'"), 3,
    '... three creation audit rows');
is_problem(create($ltok, 'https://apps.shopify.com/q5'), 429, 'a fifth: 429 as well');
is(create($otok, 'https://apps.shopify.com/unaffected')->{status}, 201,
    'another account (one link this hour) is not affected: 201');

my ($other2, $o2tok) = $t->member;
@st = map { create($o2tok, "https://apps.shopify.com/o$_")->{status} } 1 .. 3;
is("@st", '201 201 201', 'a fresh account makes its own three');

# concurrent creates never exceed the limit
my ($rush, $rtok) = $t->member;
my @res = $t->concurrently(10, sub { create($rtok, "https://apps.shopify.com/rush$_[0]") });
my %by = ();
$by{ $_->{status} }++ for @res;
is($by{201} // 0, 3, '10 concurrent creates: three 201') or diag(join ' ', map { $_->{status} } @res);
is($by{429} // 0, 7, '... and seven 429');
is(q1("SELECT count(*) FROM crm.affiliate_links WHERE owner_id = '$rush->{id}'"), 3,
    '... three links stored');
my @bad_ra = grep { ($_->{headers}{'retry-after'} // '') !~ /^\d+$/
    || $_->{headers}{'retry-after'} < 1 || $_->{headers}{'retry-after'} > 3600 }
    grep { $_->{status} == 429 } @res;
ok(!@bad_ra, '... every 429 with a Retry-After of 1..3600 s')
    or diag(join ', ', map { $_->{headers}{'retry-after'} // 'none' } @bad_ra);
ok(!grep({ $_->{status} == 429 && !($_->{json} && ($_->{headers}{'content-type'} // '')
    =~ m{^application/problem\+json}) } @res), '... each a problem document');

# a short period: the account may create again after Retry-After
ok($t->reconfigure(conf => { crm_link_create_limit => '2 3s' }), 'reload with crm_link_create_limit 2 3s');
my ($quick, $qtok) = $t->member;
@st = map { create($qtok, "https://apps.shopify.com/s$_")->{status} } 1 .. 2;
is("@st", '201 201', 'two links: 201');
$r = create($qtok, 'https://apps.shopify.com/s3');
is_problem($r, 429, 'the third within 3 s: 429');
$ra = $r->{headers}{'retry-after'} // '';
ok($ra =~ /^\d+$/ && $ra >= 1 && $ra <= 3, "... Retry-After 1..3 ($ra)");
sleep(($ra =~ /^\d+$/ ? $ra : 3) + 0.05);
$r = create($qtok, 'https://apps.shopify.com/s4');
is($r->{status}, 201, 'after Retry-After seconds: 201') or diag($r->{content});
is(q1("SELECT count(*) FROM crm.affiliate_links WHERE owner_id = '$quick->{id}'"), 3, '... three links in all');

$t->done;

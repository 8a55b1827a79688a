#!/usr/bin/perl
# Regressions from the review: client input that once made a 500 (odd login
# emails, crafted cursors), the Allow header, nginx's own 413 and 429 as
# problem documents.

use strict;
use warnings;

use Test::More;
use CrmTest;

my $t = CrmTest->new->start;

my $PW = 'correct horse battery';
my $FORM = 'application/x-www-form-urlencoded';

sub uri_escape { my $s = shift; $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge; $s }

# --- logins with malformed emails: 401/422, never 500, always logged -------------------

my $failed_before = $t->psql('SELECT count(*) FROM crm.login_log WHERE success = false');
my $attempts = 0;

my $r = $t->post_raw('/auth/login', 'username=%FF&password=whatever1', $FORM);
$attempts++;
is_problem($r, 401, 'form login, username=%FF (invalid UTF-8): 401');

$r = $t->post_raw('/auth/login', 'username=' . ('a' x 253) . '%C3%A9&password=whatever1', $FORM);
$attempts++;
is_problem($r, 401, 'form login, username of 253 ASCII bytes then e-acute: 401');

$r = $t->post_raw('/auth/login', 'username=a%01b%40example.com&password=whatever1', $FORM);
$attempts++;
is_problem($r, 401, 'form login, username with a control character: 401');

$r = $t->post_json('/auth/login', { email => ('a' x 253) . "\x{e9}", password => 'whatever1' });
$attempts++;
ok($r->{status} == 401 || $r->{status} == 422,
    "JSON login, email of 253 ASCII bytes then e-acute (split at a byte limit): 401 or 422 (got $r->{status})")
    or diag($r->{content});
like($r->{headers}{'content-type'} // '', qr{^application/problem\+json}, '... as a problem document');

$r = $t->post_json('/auth/login', { email => ("\x{e9}" x 200) . '@example.com', password => 'whatever1' });
$attempts++;
ok($r->{status} == 401 || $r->{status} == 422,
    "JSON login, email of 200 two-byte characters: 401 or 422 (got $r->{status})") or diag($r->{content});

my $failed_after = wait_until(5, sub {
    my $n = $t->psql('SELECT count(*) FROM crm.login_log WHERE success = false');
    return $n - $failed_before >= $attempts ? $n : 0;
}) || $t->psql('SELECT count(*) FROM crm.login_log WHERE success = false');
is($failed_after - $failed_before, $attempts, "each of the $attempts attempts is in login_log as a failure");

my @stored = eval {
    $t->psql("SELECT coalesce(email, '-') || ' ' || reason FROM crm.login_log"
        . " WHERE success = false ORDER BY id DESC LIMIT $attempts");
};
is_deeply(\@stored, [('- malformed_email') x $attempts],
    'what was typed is not kept (it may be a password): no email, reason malformed_email')
    or diag($@);

# --- crafted pagination cursors: 422 on the cursor, never 500 -----------------------------

my ($admin, $admin_tok) = $t->admin;
$t->member for 1 .. 3;
my $uuid = $admin->{id};

my %cursor = (
    'INT64_MAX'       => "9223372036854775807:$uuid",
    'INT64_MIN'       => "-9223372036854775808:$uuid",
    '2^53 + 1'        => "9007199254740993:$uuid",
    'INT64_MAX + 1'   => "9223372036854775808:$uuid",
    'INT64_MIN - 1'   => "-9223372036854775809:$uuid",
    '20 nines'        => "99999999999999999999:$uuid",
);
for my $case (sort keys %cursor) {
    is_problem($t->get('/admin/users?cursor=' . b64url($cursor{$case}), token => $admin_tok), 422,
        "cursor with timestamp $case: 422", field => 'cursor');
}

# odd but harmless forms: answered, never a 5xx (the harness checks that)
for my $raw ("0:$uuid", "-1:$uuid", "+1:$uuid", "01:$uuid", " 1:$uuid", "1:" . uc($uuid),
             "9007199254740991:$uuid", "-9007199254740991:$uuid", "1:$uuid:1", ":$uuid", "1:") {
    my $res = $t->get('/admin/users?cursor=' . b64url($raw), token => $admin_tok);
    ok($res->{status} == 200 || $res->{status} == 422, "cursor '$raw': 200 or 422 (got $res->{status})")
        or diag($res->{content});
}

$r = $t->get('/admin/users?limit=1', token => $admin_tok);
my $first = is_json_response($r, 200, 'GET /admin/users?limit=1: 200');
my $next = $first->{next_cursor};
ok(defined $next && length $next, '... with a next_cursor');
$r = $t->get('/admin/users?limit=1&cursor=' . uri_escape($next // ''), token => $admin_tok);
my $second = is_json_response($r, 200, 'the genuine next_cursor still works: 200');
is(scalar @{ $second->{items} || [] }, 1, '... one item');
isnt($second->{items}[0]{id}, $first->{items}[0]{id}, '... the next account, not the first again');

# --- 405 and Allow; HEAD ----------------------------------------------------------------

sub allow_set {
    my ($res) = @_;
    return { map { $_ => 1 } split /\s*,\s*/, $res->{headers}{allow} // '' };
}

for my $method ('OPTIONS', 'PUT', 'DELETE', 'POST') {
    $r = $t->request($method, '/auth/me', content => '{}', headers => { 'Content-Type' => 'application/json' });
    is_problem($r, 405, "$method /auth/me: 405");
    my $allow = allow_set($r);
    ok($allow->{GET} && $allow->{HEAD}, "$method /auth/me: Allow names GET and HEAD")
        or diag('Allow: ' . ($r->{headers}{allow} // '(none)'));
}
$r = $t->request('OPTIONS', '/admin/users', token => $admin_tok);
is_problem($r, 405, 'OPTIONS /admin/users: 405');
ok(allow_set($r)->{GET} && allow_set($r)->{HEAD}, 'OPTIONS /admin/users: Allow names GET and HEAD')
    or diag('Allow: ' . ($r->{headers}{allow} // '(none)'));

$r = $t->request('DELETE', '/auth/login');
is_problem($r, 405, 'DELETE /auth/login: 405');
is_deeply(allow_set($r), { POST => 1 }, 'DELETE /auth/login: Allow: POST, and no HEAD')
    or diag('Allow: ' . ($r->{headers}{allow} // '(none)'));
$r = $t->request('OPTIONS', '/auth/register');
is_problem($r, 405, 'OPTIONS /auth/register: 405');
is_deeply(allow_set($r), { POST => 1 }, 'OPTIONS /auth/register: Allow: POST, and no HEAD')
    or diag('Allow: ' . ($r->{headers}{allow} // '(none)'));
$r = $t->request('GET', "/admin/users/$uuid", token => $admin_tok);
is_problem($r, 405, 'GET /admin/users/{id}: 405');
is_deeply(allow_set($r), { PATCH => 1 }, 'GET /admin/users/{id}: Allow: PATCH, and no HEAD')
    or diag('Allow: ' . ($r->{headers}{allow} // '(none)'));

$r = $t->raw("HEAD /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", timeout => 5);
is($r->{status}, 200, 'HEAD /healthz: 200');
(my $after_head = $r->{raw}) =~ s/^.*?\r\n\r\n//s;
is($after_head, '', 'HEAD /healthz: no body on the wire');
like($r->{headers}{'content-type'} // '', qr{^application/json}, 'HEAD /healthz: the GET content type');

$r = $t->raw("HEAD /auth/me HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer $admin_tok\r\n"
    . "Connection: close\r\n\r\n", timeout => 5);
is($r->{status}, 200, 'HEAD /auth/me with a token: 200');
($after_head = $r->{raw}) =~ s/^.*?\r\n\r\n//s;
is($after_head, '', 'HEAD /auth/me: no body on the wire');

# --- bodies over crm_max_body_size (64k): nginx's 413 as a problem --------------------------

sub is_413 {
    my ($res, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_problem($res, 413, "$name: 413 problem");
    is($res->{headers}{'cache-control'}, 'no-store', "$name: Cache-Control: no-store");
    like($res->{json}{detail} // '', qr/\b65536 bytes\b/, "$name: the detail names the limit in bytes")
        or diag($res->{content});
}

is_413($t->raw("POST /auth/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    . "Content-Length: 104857600\r\nConnection: close\r\n\r\n{\"email\":", timeout => 5),
    'Content-Length 100 MB announced, little sent');
is_413($t->raw("POST /auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    . "Content-Length: 65537\r\nConnection: close\r\n\r\n{", timeout => 5),
    'Content-Length 65537 announced');

my $chunk = 'x' x 4096;
my $chunked = "POST /auth/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    . (sprintf("%x\r\n", length $chunk) . "$chunk\r\n") x 20 . "0\r\n\r\n";
is_413($t->raw($chunked, timeout => 5), 'a chunked body of 80 KiB');

is($t->get('/healthz')->{status}, 200, 'after the 413s: /healthz 200');

# --- nginx's 429 (limit_req) in an API location: a problem with Retry-After ----------------

ok($t->reconfigure(
    http_extra => "    limit_req_zone \$binary_remote_addr zone=t:1m rate=1r/m;\n",
    server_extra => "        location /auth/ { limit_req zone=t; limit_req_status 429; crm_api; }\n"),
    'reload with limit_req (1r/m) on /auth/');

my $ua = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
my $login = { email => $admin->{email}, password => 'wrong password' };
$r = $t->post_json('/auth/login', $login, ua => $ua);
is_problem($r, 401, 'the first login passes limit_req: 401 from the module');
$r = $t->post_json('/auth/login', $login, ua => $ua);
is_problem($r, 429, 'the second, at once: 429 problem');
is($r->{json}{status}, 429, '... body status 429');
like($r->{headers}{'retry-after'} // '', qr/^\d+$/, '... with Retry-After in seconds');
is($r->{headers}{'cache-control'}, 'no-store', '... and Cache-Control: no-store');
$r = $t->get('/auth/me', token => $admin_tok);
is_problem($r, 429, 'GET /auth/me in the limited location: 429 problem');
like($r->{headers}{'retry-after'} // '', qr/^\d+$/, '... with Retry-After');

# outside the limited location nothing changes
is($t->get('/healthz')->{status}, 200, 'outside the limited location: /healthz 200');
is($t->get('/baseline')->{status}, 200, 'nginx\'s own location: 200');

$t->done;

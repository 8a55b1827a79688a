#!/usr/bin/perl
# Hostile and broken requests: malformed, deep, oversized, mistyped,
# wrongly addressed.  Each gets a 4xx problem document, never a 5xx, never a
# crash, and none of them creates anything.

use strict;
use warnings;

use Test::More;
use CrmTest;

my $t = CrmTest->new->start;

my $PW = 'correct horse battery';
my $JSON = 'application/json';
my $accounts_before = $t->psql('SELECT count(*) FROM crm.accounts');
my $r0;

sub reg_raw { $t->post_raw('/auth/register', @_) }

sub four_xx {
    my ($res, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok($res->{status} >= 400 && $res->{status} < 500, "$name: 4xx")
        or diag("got $res->{status}: " . substr($res->{content}, 0, 300));
}

# --- malformed JSON: 400 -------------------------------------------------------------

my %malformed = (
    'empty body'            => '',
    'whitespace only'       => "  \n ",
    'open brace'            => '{',
    'missing value'         => '{"email":}',
    'trailing comma'        => '{"email":"bad-1@example.com","password":"12345678",}',
    'single quotes'         => q{{'email':'bad-2@example.com'}},
    'unquoted key'          => '{email:"bad-3@example.com"}',
    'NaN'                   => '{"email":"bad-4@example.com","password":NaN}',
    'garbage after value'   => '{"email":"bad-5@example.com","password":"12345678"} x',
    'two documents'         => '{"email":"bad-6@example.com","password":"12345678"}{}',
    'invalid UTF-8'         => qq{{"email":"bad-7\@example.com","password":"12345678","full_name":"\xff\xfe"}},
    'truncated UTF-8'       => qq{{"email":"bad-8\@example.com","password":"12345678","full_name":"\xc3"}},
    'control char in string' => qq{{"email":"bad-9\@example.com","password":"1234\x015678"}},
    'bad escape'            => '{"email":"bad-10@example.com","password":"\\q2345678"}',
    'comment'               => '{"email":"bad-11@example.com", /* hi */ "password":"12345678"}',
);
for my $case (sort keys %malformed) {
    is_problem(reg_raw($malformed{$case}, $JSON), 400, "malformed ($case): 400");
}

# --- strange but parseable: some 4xx, never a crash --------------------------------------

my %odd = (
    'NUL escape in email'   => '{"email":"bad-21\\u0000@example.com","password":"12345678"}',
    'huge number'           => '{"email":"bad-22@example.com","password":1e999999}',
    'duplicate keys'        => '{"email":"bad-23@example.com","email":"bad-23b@example.com","password":"short"}',
    'byte order mark'       => "\xef\xbb\xbf" . '{"email":"bad-24@example.com","password":"12345678","x":1}',
    '5000 unknown keys'     => '{' . join(',', map { qq{"k$_":$_} } 1 .. 5000) . '}',
    '60 KB email'           => '{"email":"' . ('a' x 60000) . '@example.com","password":"12345678"}',
    'many nested strings'   => '{"email":"bad-25@example.com","password":"12345678","x":' . ('["a",' x 20) . '1' . (']' x 20) . '}',
);
for my $case (sort keys %odd) {
    four_xx(reg_raw($odd{$case}, $JSON), "odd ($case)");
}

# a lone surrogate may be refused or replaced, but must not upset the database
$r0 = reg_raw('{"email":"odd-surrogate@example.com","password":"12345678","full_name":"a\\ud800b"}', $JSON);
ok($r0->{status} == 201 || ($r0->{status} >= 400 && $r0->{status} < 500),
    "odd (lone surrogate escape in full_name): 201 or 4xx (got $r0->{status})");

# --- depth -------------------------------------------------------------------------

is_problem(reg_raw(('[' x 10_000) . (']' x 10_000), $JSON), 400, 'arrays nested 10,000 deep: 400');
is_problem(reg_raw(('{"a":' x 10_000) . '1' . ('}' x 10_000), $JSON), 400, 'objects nested 10,000 deep: 400');
is_problem(reg_raw('{"email":"bad-30@example.com","password":"12345678","x":' . ('[' x 10_000), $JSON), 400,
    'unterminated nesting 10,000 deep: 400');
is_problem(reg_raw(('[' x 33) . (']' x 33), $JSON), 400, 'nested 33 deep (over crm_max_json_depth 32): 400');
is_problem(reg_raw('{"email":"bad-31@example.com","password":"12345678","x":' . ('[' x 40) . (']' x 40) . '}', $JSON),
    400, 'a field nested 40 deep: 400');
is_problem(reg_raw('{"email":"bad-32@example.com","password":"12345678","x":[[1]]}', $JSON), 422,
    'a shallow unknown field is a validation error: 422', field => 'x');

# --- body size: crm_max_body_size 64k ----------------------------------------------------

sub padded_register {
    my ($size, $email) = @_;
    my $head = qq({"email":"$email","password":"$PW");
    return $head . (' ' x ($size - length($head) - 1)) . '}';
}
my $edge_email = $t->unique_email('edge');
my $r = reg_raw(padded_register(65536, $edge_email), $JSON);
is($r->{status}, 201, 'a body of exactly 64 KiB is read: 201') or diag("$r->{status} $r->{content}");
is_problem(reg_raw(padded_register(65537, $t->unique_email('bad-over')), $JSON), 413, 'a body of 64 KiB + 1: 413');
is_problem(reg_raw(padded_register(1_000_000, $t->unique_email('bad-over')), $JSON), 413, 'a body of 1 MB: 413');

# a huge Content-Length is refused without waiting for the body
$r = $t->raw("POST /auth/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    . "Content-Length: 104857600\r\nConnection: close\r\n\r\n{\"email\":", timeout => 5);
is_problem($r, 413, 'Content-Length 100 MB announced, little sent: 413 at once');

# chunked bodies are capped as well, and read correctly when small
sub chunked {
    my ($body, $size) = @_;
    my $out = '';
    while (length $body) {
        my $c = substr($body, 0, $size, '');
        $out .= sprintf("%x\r\n", length $c) . "$c\r\n";
    }
    return "$out" . "0\r\n\r\n";
}
my $head = "POST /auth/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
my $chunked_email = $t->unique_email('chunked');
$r = $t->raw($head . chunked(json_encode({ email => $chunked_email, password => $PW }), 7));
is($r->{status}, 201, 'a small chunked body (7-byte chunks): 201') or diag("$r->{status} $r->{content}");
is($r->{json}{email}, $chunked_email, '... with the right account');
is_problem($t->raw($head . chunked(padded_register(70_000, $t->unique_email('bad-chunk')), 4096)), 413,
    'a chunked body over 64 KiB: 413');
is_problem($t->raw($head . chunked(padded_register(2_000_000, $t->unique_email('bad-chunk')), 65536)), 413,
    'a chunked body of 2 MB: 413');

# a body that arrives slowly, in pieces
my $slow_email = $t->unique_email('slow');
my $body = json_encode({ email => $slow_email, password => $PW });
$r = $t->raw(undef, delay => 0.3, chunks => [
    "POST /auth/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        . "Content-Length: " . length($body) . "\r\nConnection: close\r\n\r\n",
    substr($body, 0, 10), substr($body, 10, 15), substr($body, 25)]);
is($r->{status}, 201, 'a body sent in three pieces, 0.3 s apart: 201') or diag("$r->{status} $r->{content}");

# --- content type -------------------------------------------------------------------

my $good = json_encode({ email => $t->unique_email('bad-ct'), password => $PW });
is_problem(reg_raw($good, 'text/plain'), 415, 'Content-Type text/plain: 415');
is_problem(reg_raw($good, undef), 415, 'no Content-Type: 415');
is_problem(reg_raw($good, 'application/xml'), 415, 'Content-Type application/xml: 415');
is_problem(reg_raw($good, 'application/jsonx'), 415, 'Content-Type application/jsonx: 415');
is_problem(reg_raw("email=bad-ct2\@example.com&password=$PW", 'application/x-www-form-urlencoded'), 415,
    'register with a form body: 415');
is_problem(reg_raw($good, 'multipart/form-data; boundary=x'), 415, 'Content-Type multipart/form-data: 415');

# --- routing: 404 and 405 ------------------------------------------------------------

for my $path ('/nope', '/auth', '/auth/', '/auth/registerx', '/auth/register/extra', '/admin/users/a/b',
              '/Auth/Me', '/auth/me/x', '/' . ('x' x 3000)) {
    my $shown = length $path > 30 ? substr($path, 0, 20) . '...' : $path;
    is_problem($t->get($path), 404, "GET $shown: 404");
}

my %allowed = (
    'DELETE /auth/login'    => 'POST',
    'GET /auth/login'       => 'POST',
    'GET /auth/register'    => 'POST',
    'PUT /auth/me'          => 'GET',
    'POST /auth/me'         => 'GET',
    'POST /admin/users'     => 'GET',
    'DELETE /admin/users/00000000-0000-4000-8000-000000000000' => 'PATCH',
);
for my $req (sort keys %allowed) {
    my ($method, $path) = split / /, $req;
    my $res = $t->request($method, $path, content => '{}', headers => { 'Content-Type' => $JSON });
    is_problem($res, 405, "$req: 405");
    like($res->{headers}{allow} // '', qr/\b$allowed{$req}\b/, "$req: Allow names $allowed{$req}");
}

# --- garbage on the wire ---------------------------------------------------------------

my $noise = join '', map { chr int rand 256 } 1 .. 100_000;
$r = $t->raw($noise, timeout => 5);
ok($r->{status} == 0 || ($r->{status} >= 400 && $r->{status} < 500),
    "100 KB of random bytes: closed or 4xx (got $r->{status})");
$r = $t->raw("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " . ('a' x 100_000) . "\r\n\r\n", timeout => 5);
ok($r->{status} == 0 || ($r->{status} >= 400 && $r->{status} < 500),
    "a 100 KB header: closed or 4xx (got $r->{status})");
$r = $t->raw("POST /auth/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    . "Content-Length: 50\r\nConnection: close\r\n\r\n{\"email\":\"x\"", timeout => 3);
ok($r->{status} != 201 && ($r->{status} < 500 || $r->{status} == 0),
    "a body shorter than its Content-Length: not processed (got $r->{status})");
$r = $t->raw("POST /auth/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    . "Content-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n", timeout => 3);
ok($r->{status} == 0 || ($r->{status} >= 400 && $r->{status} < 500),
    "Content-Length and Transfer-Encoding together: closed or 4xx (got $r->{status})");

is($t->get('/baseline')->{status}, 200, 'nginx still serves after the garbage');
is($t->get('/healthz')->{status}, 200, 'and the module too');

# --- smaller limits from the configuration ---------------------------------------------

ok($t->reconfigure(conf => { crm_max_body_size => '1k', crm_max_json_depth => '4' }),
    'reload with crm_max_body_size 1k and crm_max_json_depth 4');
is_problem(reg_raw(padded_register(2048, $t->unique_email('bad-small')), $JSON), 413,
    'crm_max_body_size 1k: a 2 KiB body is 413');
my $small_email = $t->unique_email('small');
is(reg_raw(padded_register(1000, $small_email), $JSON)->{status}, 201,
    'crm_max_body_size 1k: a 1000-byte body is read');
is_problem(reg_raw('{"email":"bad-40@example.com","password":"12345678","x":[[[[[[[1]]]]]]]}', $JSON), 400,
    'crm_max_json_depth 4: nested 8 deep is 400');
is_problem(reg_raw('{"email":"bad-41@example.com","password":"12345678","x":[1]}', $JSON), 422,
    'crm_max_json_depth 4: nested 2 deep is read (unknown field: 422)', field => 'x');
ok($t->reconfigure(conf => { crm_max_body_size => '64k', crm_max_json_depth => '32' }), 'reload with the defaults');
is(reg_raw(padded_register(2048, $t->unique_email('big-again')), $JSON)->{status}, 201,
    'back at 64k: a 2 KiB body is read');

# --- nothing bad reached the database --------------------------------------------------

is($t->psql(q{SELECT count(*) FROM crm.accounts WHERE email LIKE 'bad-%'}), 0,
    'no account from any rejected request');
is($t->psql(q{SELECT count(*) FROM crm.accounts WHERE email <> 'odd-surrogate@example.com'}) - $accounts_before, 5,
    'exactly the five deliberate registrations were stored');

$t->done;

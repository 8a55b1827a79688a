#!/usr/bin/perl
# CORS (issue 12): crm_cors_origins and its companions.  A preflight
# (OPTIONS with Origin and Access-Control-Request-Method) needs no
# credential and is answered 204 with the configured lists when the origin,
# the method, every requested header and the route allow it, else 403
# (origin, method, header), 404 (no route) or 405 (route, not that
# method).  An actual request from an allowed origin gets
# Access-Control-Allow-Origin (the origin itself, or * when configured *),
# -Credentials and -Expose-Headers; from any other origin none of them, and
# it is processed all the same.  Every response where origins are set
# varies on Origin, nginx's own 413 and 429 too; where they are not set
# nothing changes (an OPTIONS is 405 with Allow).  nginx -t refuses
# malformed origins, * with credentials, unknown methods and header names
# that are not tokens.

use strict;
use warnings;

use Test::More;
use HTTP::Tiny;
use CrmTest;

my $t = CrmTest->new;
my $d = $t->dir;

# --- nginx -t ------------------------------------------------------------------------
#
# A harness object that is never started: its nginx.conf is rewritten for
# each check, with its own error log.

my $chk = CrmTest->new;
my $CHK_PORT = CrmTest::free_port($t->port, $t->pg_port, $chk->port, $chk->pg_port);

sub nginx_t { $chk->nginx_t(@_) }

# configuration options that put the directives at a level
sub at_level {
    my ($level, $lines) = @_;
    return (http_extra => "    $lines\n") if $level eq 'http';
    return (http_extra => "    server {\n        listen 127.0.0.1:$CHK_PORT;\n"
        . "        $lines\n        location / { crm_api; }\n    }\n") if $level eq 'server';
    return (server_extra => "        location /level/ { $lines crm_api; }\n");
}

my ($ok, $out) = nginx_t();
ok($ok, 'nginx -t passes the harness configuration without CORS') or diag($out);

my @ACCEPTED = (
    ['a lone * without credentials', 'crm_cors_origins *;'],
    ['exact origins and a pattern, credentials on',
        'crm_cors_origins http://localhost:3000 https://*.example.com https://App.Example.net:8443;'
        . ' crm_cors_credentials on;'],
    ['http://127.0.0.1:8080', 'crm_cors_origins http://127.0.0.1:8080;'],
    ['every allowed method', 'crm_cors_origins https://a.example; crm_cors_methods GET HEAD POST PUT PATCH DELETE;'],
    ['own headers, exposed headers, max age',
        'crm_cors_origins https://a.example; crm_cors_headers X-Trace-Id Authorization;'
        . ' crm_cors_expose_headers X-Request-Id; crm_cors_max_age 1h;'],
    ['crm_cors_credentials off with *', 'crm_cors_origins *; crm_cors_credentials off;'],
);
for my $c (@ACCEPTED) {
    for my $level (qw(http server location)) {
        ($ok, $out) = nginx_t(at_level($level, $c->[1]));
        ok($ok, "nginx -t accepts $c->[0] at the $level level") or diag($out);
    }
}

# [what, the directives, what the message must match]
my @REFUSED = (
    ['* with crm_cors_credentials on', 'crm_cors_origins *; crm_cors_credentials on;', qr/credentials/],
    ['* with other origins', 'crm_cors_origins * https://a.example;', qr/crm_cors_origins|\*/],
    ['other origins, then *', 'crm_cors_origins https://a.example *;', qr/crm_cors_origins|\*/],
    ['an origin with a path', 'crm_cors_origins https://a.example/path;', qr{crm_cors_origins|a\.example/path}],
    ['an origin with a trailing slash', 'crm_cors_origins https://a.example/;', qr{crm_cors_origins|a\.example/}],
    ['an origin with a query', 'crm_cors_origins https://a.example?x=1;', qr{crm_cors_origins|a\.example\?x=1}],
    ['an origin without a scheme', 'crm_cors_origins a.example;', qr{crm_cors_origins|a\.example}],
    ['scheme ftp', 'crm_cors_origins ftp://x;', qr{crm_cors_origins|ftp://x}],
    ['an empty host', 'crm_cors_origins https://;', qr{crm_cors_origins|https://}],
    ['port 99999', 'crm_cors_origins https://a.example:99999;', qr{crm_cors_origins|99999}],
    ['a port that is not a number', 'crm_cors_origins https://a.example:http;',
        qr{crm_cors_origins|a\.example:http}],
    ['a duplicate origin', 'crm_cors_origins https://a.example https://a.example;',
        qr{crm_cors_origins|duplicate|a\.example}],
    ['a duplicate origin in another case', 'crm_cors_origins https://a.example https://A.Example;',
        qr{crm_cors_origins|duplicate|a\.example}i],
    ['a pattern with a path', 'crm_cors_origins https://*.example.com/x;',
        qr{crm_cors_origins|example\.com/x}],
    ['an unknown method FOO', 'crm_cors_origins https://a.example; crm_cors_methods GET FOO;',
        qr/crm_cors_methods|FOO/],
    ['a header "Bad Header"', 'crm_cors_origins https://a.example; crm_cors_headers "Bad Header";',
        qr/crm_cors_headers|Bad Header/],
    ['a header "x(y)"', 'crm_cors_origins https://a.example; crm_cors_headers "x(y)";',
        qr/crm_cors_headers|x\(y\)/],
    ['an exposed header "a:b"', 'crm_cors_origins https://a.example; crm_cors_expose_headers "a:b";',
        qr/crm_cors_expose_headers|a:b/],
    ['crm_cors_credentials maybe', 'crm_cors_origins https://a.example; crm_cors_credentials maybe;',
        qr/crm_cors_credentials|maybe/],
    ['crm_cors_max_age soon', 'crm_cors_origins https://a.example; crm_cors_max_age soon;',
        qr/crm_cors_max_age|soon/],
);
for my $c (@REFUSED) {
    my ($what, $lines, $why) = @$c;
    for my $level (qw(http server location)) {
        ($ok, $out) = nginx_t(at_level($level, $lines));
        ok(!$ok, "nginx -t refuses $what at the $level level") or next;
        like($out, qr/\[emerg\]/, "... with an [emerg]: $what at the $level level");
        like($out, $why, "... saying why: $what at the $level level");
        unlike($out, qr/segfault|Sanitizer|signal/i, "... without crashing: $what at the $level level");
    }
}

# * and credentials meet only after the merge
for my $c (
    ['* at the http level, credentials on in a location',
        http_extra => "    crm_cors_origins *;\n",
        server_extra => "        location /level/ { crm_cors_credentials on; crm_api; }\n"],
    ['credentials on at the http level, * in a location',
        http_extra => "    crm_cors_credentials on;\n",
        server_extra => "        location /level/ { crm_cors_origins *; crm_api; }\n"],
    ['* in a server, credentials on in a nested location',
        server_extra => "        crm_cors_origins *;\n"
            . "        location /level/ { location /level/x/ { crm_cors_credentials on; crm_api; } }\n"],
) {
    my ($what, %opt) = @$c;
    ($ok, $out) = nginx_t(%opt);
    ok(!$ok, "nginx -t refuses $what");
    like($out, qr/\[emerg\].*credentials/, "... saying credentials: $what");
}

# --- the servers ---------------------------------------------------------------------

my %taken = map { $_ => 1 } ($t->port, $t->pg_port, $CHK_PORT);
sub next_port {
    my $p = CrmTest::free_port(keys %taken);
    $taken{$p} = 1;
    return $p;
}
my $NOCORS = next_port();
my $STAR = next_port();

my $ORIGINS = 'http://localhost:3000 https://*.example.com https://App.Example.net';
my $METHODS = 'GET, POST, PUT, PATCH, DELETE';
my $HEADERS = 'Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match';
my $EXPOSE = 'ETag, Location, Retry-After, X-Request-Id, WWW-Authenticate';
my $PRE_VARY = 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers';

$t->start_db;
$t->write_config(
    conf => { crm_max_body_size => '1k' },
    http_extra => <<"EOF",
    limit_req_zone \$binary_remote_addr zone=cors_test:1m rate=1r/m;

    server {
        listen 127.0.0.1:$NOCORS;
        location / { crm_api; }
    }
    server {
        listen 127.0.0.1:$STAR;
        crm_cors_origins *;
        location / { crm_api; }
    }
EOF
    server_extra => <<"EOF",
        crm_cors_origins $ORIGINS;
        crm_cors_credentials on;
        location /admin/ {
            crm_cors_methods GET POST;
            crm_api;
        }
        location /pipeline/ {
            crm_cors_headers X-Trace-Id Authorization;
            crm_cors_expose_headers X-Request-Id;
            crm_cors_max_age 1h;
            crm_cors_credentials off;
            crm_api;
        }
        location = /healthz {
            limit_req zone=cors_test nodelay;
            limit_req_status 429;
            crm_api;
        }
EOF
);
$t->start_nginx;

# a request to another server of this nginx, through the harness
sub at {
    my ($port, @req) = @_;
    local $t->{port} = $port;
    local $t->{ua} = HTTP::Tiny->new(max_redirect => 0, timeout => 10, agent => 'crm-test/1.0');
    return $t->request(@req);
}

# a header's value (repeated ones joined as one list)
sub hv {
    my ($r, $name) = @_;
    my $v = $r->{headers}{ lc $name };
    return ref $v ? join(', ', @$v) : $v;
}

sub cors_headers { sort grep { /^access-control-/ } keys %{ $_[0]{headers} } }

sub varies_on {
    my ($r, $what) = @_;
    return scalar grep { lc $_ eq lc $what } split /\s*,\s*/, hv($r, 'Vary') // '';
}

sub preflight {
    my ($path, $origin, $method, $req_headers, %o) = @_;
    my %h = ('Access-Control-Request-Method' => $method);
    $h{Origin} = $origin if defined $origin;
    $h{'Access-Control-Request-Headers'} = $req_headers if defined $req_headers;
    my $port = delete $o{port};
    return $port ? at($port, 'OPTIONS', $path, headers => \%h, %o)
                 : $t->request('OPTIONS', $path, headers => \%h, %o);
}

# a 204 preflight answer with exactly these CORS headers
sub preflight_ok {
    my ($r, $name, %want) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my %exp = (
        'access-control-allow-origin' => $want{origin},
        'access-control-allow-methods' => $want{methods} // $METHODS,
        'access-control-allow-headers' => $want{headers} // $HEADERS,
        'access-control-max-age' => $want{max_age} // '600',
    );
    $exp{'access-control-allow-credentials'} = 'true' if $want{credentials};
    is($r->{status}, 204, "$name: 204") or diag("$r->{status} $r->{content}");
    is($r->{content}, '', "$name: no body");
    my %got = map { $_ => hv($r, $_) } grep { $_ ne 'access-control-expose-headers' } cors_headers($r);
    is_deeply(\%got, \%exp, "$name: the Access-Control-* headers");
    is(hv($r, 'Vary'), $PRE_VARY, "$name: Vary: $PRE_VARY");
}

# a 403 preflight refusal, a problem naming $named; for a refused origin
# no Access-Control-Allow-Origin (a refused method or header of an allowed
# origin may have it: the origin is allowed)
sub preflight_refused {
    my ($r, $named, $name, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_problem($r, 403, "$name: 403");
    like(ref $r->{json} eq 'HASH' ? $r->{json}{detail} // '' : '', qr/\Q$named\E/i,
        "$name: the detail names $named");
    ok(!defined $r->{headers}{'access-control-allow-origin'}, "$name: no Access-Control-Allow-Origin")
        if $o{origin};
    ok(varies_on($r, 'Origin'), "$name: Vary names Origin");
}

my (undef, $tok) = $t->member;
my $lead = $t->create_lead($tok);
my $LID = $lead->{id};

# --- preflights ----------------------------------------------------------------------

my %creds = (credentials => 1);
preflight_ok(preflight('/leads/', 'http://localhost:3000', 'POST', 'content-type, authorization'),
    'preflight POST /leads/ from http://localhost:3000 asking for content-type, authorization',
    origin => 'http://localhost:3000', %creds);
preflight_ok(preflight("/leads/$LID", 'https://app.example.com', 'PUT', 'Authorization,Content-Type,If-Match'),
    'preflight PUT /leads/{id} from https://app.example.com (the pattern)',
    origin => 'https://app.example.com', %creds);
preflight_ok(preflight("/leads/$LID", 'https://a.b.example.com', 'DELETE', undef),
    'preflight DELETE /leads/{id} from https://a.b.example.com (two labels), no headers asked for',
    origin => 'https://a.b.example.com', %creds);
preflight_ok(preflight('/auth/me', 'https://app.example.net', 'GET', 'AUTHORIZATION, if-none-match'),
    'preflight GET /auth/me from https://app.example.net (configured in capitals), header names in any case',
    origin => 'https://app.example.net', %creds);
preflight_ok(preflight('/leads/', 'http://localhost:3000', 'POST', 'Idempotency-Key'),
    'preflight asking for Idempotency-Key', origin => 'http://localhost:3000', %creds);
preflight_ok(preflight('/leads/', 'http://localhost:3000', 'GET', 'authorization', token => 'not a token'),
    'preflight with a garbage Authorization header: no credential is checked',
    origin => 'http://localhost:3000', %creds);

for my $c (
    ['https://example.com', 'the pattern\'s own domain'],
    ['http://app.example.com', 'the pattern\'s subdomain over http'],
    ['https://app.example.com:8443', 'the pattern\'s subdomain on another port'],
    ['https://evilexample.com', 'a domain that ends like the pattern'],
    ['https://app.example.com.evil.test', 'the pattern as a prefix'],
    ['http://localhost:3001', 'the exact origin on another port'],
    ['http://localhost', 'the exact origin without its port'],
    ['https://localhost:3000', 'the exact origin over https'],
    ['null', 'the origin null'],
) {
    my ($origin, $what) = @$c;
    my $r = preflight('/leads/', $origin, 'POST', 'content-type');
    preflight_refused($r, $origin, "preflight from $origin ($what)", origin => 1);
    is(scalar(grep { $_ ne 'access-control-allow-origin' } cors_headers($r)), 0,
        "preflight from $origin: no Access-Control-* header at all")
        or diag(join ', ', cors_headers($r));
}

preflight_refused(preflight('/leads/', 'http://localhost:3000', 'POST', 'content-type, x-custom'), 'x-custom',
    'preflight asking for x-custom beside content-type');
preflight_refused(preflight('/leads/', 'http://localhost:3000', 'POST', 'X-Requested-With'), 'X-Requested-With',
    'preflight asking for X-Requested-With');
preflight_refused(preflight('/leads/', 'http://localhost:3000', 'POST', 'cookie'), 'cookie',
    'preflight asking for cookie');

my $r = preflight('/nowhere', 'http://localhost:3000', 'GET', undef);
is_problem($r, 404, 'preflight for an unrouted path: 404');
ok(varies_on($r, 'Origin'), '... Vary names Origin');
$r = preflight('/leads/', 'http://localhost:3000', 'DELETE', undef);
is_problem($r, 405, 'preflight DELETE /leads/ (routed for GET and POST only): 405');
$r = preflight("/leads/$LID", 'http://localhost:3000', 'POST', 'content-type');
is_problem($r, 405, 'preflight POST /leads/{id}: 405');

# an OPTIONS without Access-Control-Request-Method is no preflight
$r = $t->request('OPTIONS', '/leads/', headers => { Origin => 'http://localhost:3000' });
is($r->{status}, 405, 'OPTIONS with an Origin but no Access-Control-Request-Method: 405 as before');

# a location's own lists, the origins inherited from the server
preflight_ok(preflight('/admin/users', 'http://localhost:3000', 'GET', 'authorization'),
    'preflight GET /admin/users (crm_cors_methods GET POST in /admin/)',
    origin => 'http://localhost:3000', methods => 'GET, POST', %creds);
preflight_refused(preflight('/admin/users/' . $lead->{owner_id}, 'http://localhost:3000', 'PATCH', undef),
    'PATCH', 'preflight PATCH /admin/users/{id} where only GET and POST are allowed');
preflight_ok(preflight('/pipeline/stages', 'https://x.example.com', 'GET', 'x-trace-id'),
    'preflight GET /pipeline/stages (own headers, max age 1h, credentials off)',
    origin => 'https://x.example.com', headers => 'X-Trace-Id, Authorization', max_age => '3600');
preflight_refused(preflight('/pipeline/stages', 'https://x.example.com', 'GET', 'content-type'),
    'content-type', 'preflight asking /pipeline/ for content-type (not in its list)');

# --- actual requests -----------------------------------------------------------------

sub allowed {
    my ($r, $origin, $name, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is(hv($r, 'Access-Control-Allow-Origin'), $origin, "$name: Access-Control-Allow-Origin: $origin");
    my $cred = exists $o{credentials} ? $o{credentials} : 'true';
    is(hv($r, 'Access-Control-Allow-Credentials'), $cred,
        "$name: Access-Control-Allow-Credentials: " . ($cred // 'none'));
    is(hv($r, 'Access-Control-Expose-Headers'), $o{expose} // $EXPOSE, "$name: Access-Control-Expose-Headers");
    is(hv($r, 'Vary'), 'Origin', "$name: Vary: Origin");
}

sub not_allowed {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_deeply([cors_headers($r)], [], "$name: no Access-Control-* header");
    is(hv($r, 'Vary'), 'Origin', "$name: Vary: Origin all the same");
}

my $O = 'http://localhost:3000';
$r = $t->get('/auth/me', token => $tok, headers => { Origin => $O });
is($r->{status}, 200, "GET /auth/me with a token from $O: 200");
allowed($r, $O, 'GET /auth/me');

$r = $t->get('/auth/me', headers => { Origin => $O });
is_problem($r, 401, "GET /auth/me without a token from $O: 401");
allowed($r, $O, 'GET /auth/me, 401');
ok(defined $r->{headers}{'www-authenticate'}, '... with WWW-Authenticate, which it exposes');

$r = $t->post_json('/leads/', { name => 'From a browser' }, token => $tok,
    headers => { Origin => 'https://crm.example.com' });
is($r->{status}, 201, 'POST /leads/ from https://crm.example.com: 201') or diag($r->{content});
allowed($r, 'https://crm.example.com', 'POST /leads/');

$r = $t->get('/nowhere', token => $tok, headers => { Origin => $O });
is_problem($r, 404, "GET /nowhere from $O: 404");
allowed($r, $O, 'GET /nowhere, 404');

$r = $t->get('/pipeline/stages', token => $tok, headers => { Origin => $O });
is($r->{status}, 200, 'GET /pipeline/stages from an allowed origin: 200') or diag($r->{content});
allowed($r, $O, 'GET /pipeline/stages (credentials off, own exposed headers)',
    credentials => undef, expose => 'X-Request-Id');

my $EVIL = 'https://evil.test';
$r = $t->get('/auth/me', token => $tok, headers => { Origin => $EVIL });
is($r->{status}, 200, "GET /auth/me with a token from $EVIL: 200 (processed; the browser withholds it)");
not_allowed($r, "GET /auth/me from $EVIL");

$r = $t->post_json('/leads/', { name => 'From elsewhere' }, token => $tok, headers => { Origin => $EVIL });
is($r->{status}, 201, "POST /leads/ from $EVIL: 201, processed");
not_allowed($r, "POST /leads/ from $EVIL");
my $mine = $t->get("/leads/" . ($r->{json}{id} // 'none'), token => $tok);
is($mine->{status}, 200, '... the lead exists');

$r = $t->get('/auth/me', token => $tok);
is($r->{status}, 200, 'GET /auth/me without an Origin: 200');
not_allowed($r, 'GET /auth/me without an Origin');

$r = $t->request('OPTIONS', '/leads/', headers => { Origin => $EVIL });
is($r->{status}, 405, "OPTIONS /leads/ from $EVIL without Access-Control-Request-Method: 405");
not_allowed($r, "OPTIONS /leads/ from $EVIL");

# nginx's own answers
$r = $t->post_raw('/leads/', '{"name":"' . ('x' x 2000) . '"}', 'application/json', token => $tok,
    headers => { Origin => $O });
is_problem($r, 413, "POST /leads/ of 2 kB (crm_max_body_size 1k) from $O: nginx's 413");
is(hv($r, 'Access-Control-Allow-Origin'), $O, '... with Access-Control-Allow-Origin');
ok(varies_on($r, 'Origin'), '... and Vary: Origin');

$r = $t->post_raw('/leads/', '{"name":"' . ('x' x 2000) . '"}', 'application/json', token => $tok,
    headers => { Origin => $EVIL });
is_problem($r, 413, "the same from $EVIL: 413");
ok(!defined $r->{headers}{'access-control-allow-origin'}, '... without Access-Control-Allow-Origin');
ok(varies_on($r, 'Origin'), '... with Vary: Origin');

$r = $t->get('/healthz', headers => { Origin => $O });
is($r->{status}, 200, 'GET /healthz (limit_req 1r/m): the first 200');
$r = $t->get('/healthz', headers => { Origin => $O });
is_problem($r, 429, "GET /healthz again from $O: limit_req's 429");
is(hv($r, 'Access-Control-Allow-Origin'), $O, '... with Access-Control-Allow-Origin');
ok(varies_on($r, 'Origin'), '... and Vary: Origin');

# --- crm_cors_origins * --------------------------------------------------------------

preflight_ok(preflight('/leads/', 'https://anyone.test', 'POST', 'content-type', port => $STAR),
    'crm_cors_origins *: preflight from any origin', origin => '*');
$r = at($STAR, 'GET', '/auth/me', token => $tok, headers => { Origin => 'https://anyone.test' });
is($r->{status}, 200, 'crm_cors_origins *: GET /auth/me: 200');
is(hv($r, 'Access-Control-Allow-Origin'), '*', '... Access-Control-Allow-Origin: *');
ok(!defined $r->{headers}{'access-control-allow-credentials'}, '... no Access-Control-Allow-Credentials');
is(hv($r, 'Access-Control-Expose-Headers'), $EXPOSE, '... Access-Control-Expose-Headers');
ok(varies_on($r, 'Origin'), '... Vary: Origin');

# --- no CORS -------------------------------------------------------------------------

$r = preflight('/leads/', $O, 'POST', 'content-type', port => $NOCORS);
is_problem($r, 405, 'without crm_cors_origins: a preflight is a 405 as before');
like(hv($r, 'Allow') // '', qr/\bGET\b.*\bPOST\b|\bPOST\b.*\bGET\b/, '... with Allow: GET, POST');
is_deeply([cors_headers($r)], [], '... and no Access-Control-* header');
ok(!varies_on($r, 'Origin'), '... nor Vary: Origin');

$r = at($NOCORS, 'GET', '/auth/me', token => $tok, headers => { Origin => $O });
is($r->{status}, 200, 'without crm_cors_origins: GET /auth/me with an Origin: 200');
is_deeply([cors_headers($r)], [], '... no Access-Control-* header');
ok(!varies_on($r, 'Origin'), '... nor Vary: Origin');

$t->done;

#!/usr/bin/perl
# Configuration: what "nginx -t" refuses, with a message that says why, and
# how the API behaves in the locations nginx builds around it ("if",
# "limit_except") and with the operator's own conninfo options.

use strict;
use warnings;

use Test::More;
use CrmTest;

my $PW = 'correct horse battery';

# --- nginx -t ----------------------------------------------------------------------
#
# A harness object that is never started: its nginx.conf is rewritten for
# each case and checked with "nginx -t" (its own error log, so nothing of
# this reaches a running server's log).

my $chk = CrmTest->new;
my $cd = $chk->dir;

# (ok, what this run printed)
sub nginx_t {
    my $out = "$cd/nginx-t.out";
    unlink $out;
    my $rc = CrmTest::_run_logged($out, $CrmTest::NGINX, '-t', '-p', "$cd/",
        '-c', "$cd/nginx.conf", '-e', "$cd/nginx-t-error.log");
    return ($rc == 0, CrmTest::_slurp($out));
}

# writes the configuration (the harness's defaults plus %opt) and checks it
sub check_config {
    my (%opt) = @_;
    $chk->{conf} = {};
    $chk->{http_extra} = '';
    $chk->{server_extra} = '';
    $chk->write_config(%opt);
    return nginx_t();
}

sub refused {
    my ($name, $want, %opt) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($ok, $out) = check_config(%opt);
    ok(!$ok, "nginx -t fails: $name") or diag($out);
    like($out, $want, "... and says why: $name");
    unlike($out, qr/segfault|Sanitizer|signal/i, "... without crashing: $name");
}

my ($ok, $out) = check_config();
ok($ok, 'nginx -t passes the harness configuration') or diag($out);

($ok, $out) = check_config(conf => { crm_jwt_issuer => 'x' x 127 });
ok($ok, 'nginx -t passes a crm_jwt_issuer of 127 bytes') or diag($out);
($ok, $out) = check_config(conf => { crm_db_connect_timeout => '2s', crm_jwt_ttl => '1m',
    crm_max_body_size => '1k', crm_max_json_depth => 1 });
ok($ok, 'nginx -t passes the smallest allowed values') or diag($out);
($ok, $out) = check_config(conf => { crm_jwt_ttl => '7d', crm_max_body_size => '16m',
    crm_max_json_depth => 256 });
ok($ok, 'nginx -t passes the largest allowed values') or diag($out);

refused('crm_jwt_issuer of 128 bytes', qr/"crm_jwt_issuer"/,
    conf => { crm_jwt_issuer => 'x' x 128 });
refused('crm_jwt_issuer of 300 bytes', qr/"crm_jwt_issuer"/,
    conf => { crm_jwt_issuer => 'i' x 300 });
refused('crm_db_connect_timeout 1s', qr/"crm_db_connect_timeout".*2s/,
    conf => { crm_db_connect_timeout => '1s' });
refused('crm_db_connect_timeout 500ms', qr/"crm_db_connect_timeout"/,
    conf => { crm_db_connect_timeout => '500ms' });
refused('crm_db_statement_timeout 0', qr/"crm_db_statement_timeout"/,
    conf => { crm_db_statement_timeout => '0' });
refused('crm_jwt_ttl 30s', qr/"crm_jwt_ttl"/, conf => { crm_jwt_ttl => '30s' });
refused('crm_jwt_ttl 8d', qr/"crm_jwt_ttl"/, conf => { crm_jwt_ttl => '8d' });
refused('crm_max_body_size 512', qr/"crm_max_body_size"/, conf => { crm_max_body_size => '512' });
refused('crm_max_body_size 17m', qr/"crm_max_body_size"/, conf => { crm_max_body_size => '17m' });
refused('invalid conninfo in crm_database', qr/crm_database/,
    conf => { crm_database => '"host=127.0.0.1 port=x bogus_key=1"' });
refused('unterminated quote in crm_database', qr/crm_database/,
    conf => { crm_database => q{"host=127.0.0.1 options='-c work_mem=5MB"} });
refused('crm_api without crm_database', qr/"crm_api" requires "crm_database"/,
    conf => { crm_database => undef });
refused('crm_api without crm_jwt_secret_file', qr/"crm_api" requires "crm_jwt_secret_file"/,
    conf => { crm_jwt_secret_file => undef });
refused('crm_api without crm_credentials_key_file', qr/"crm_api" requires "crm_credentials_key_file"/,
    conf => { crm_credentials_key_file => undef });
CrmTest::_write_file("$cd/not-a-key", 'x' x 64);
refused('a previous credentials key that is not a key',
    qr/invalid "crm_credentials_key_file" file "\Q$cd\E\/not-a-key": a key is 64 hexadecimal digits/,
    conf => { crm_credentials_key_file => "$cd/credentials.key previous=$cd/not-a-key" });
refused('crm_api twice in one location', qr/"crm_api" directive is duplicate/,
    server_extra => "        location /twice { crm_api; crm_api; }\n");
refused('crm_thread_pool naming an undeclared thread_pool', qr/unknown thread pool "undeclared"/,
    conf => { crm_thread_pool => 'undeclared' });
refused('crm_slow_thread_pool naming an undeclared thread_pool',
    qr/unknown thread pool "undeclared"/,
    conf => { crm_slow_thread_pool => 'undeclared' });
refused('missing jwt secret file',
    qr/cannot open "crm_jwt_secret_file" "\Q$cd\E\/no-such\.secret".*No such file/,
    conf => { crm_jwt_secret_file => "$cd/no-such.secret" });

# crm_max_json_depth: out of range, named with its range
for my $depth (0, 300) {
    my ($ok, $out) = check_config(conf => { crm_max_json_depth => $depth });
    ok(!$ok, "nginx -t fails: crm_max_json_depth $depth") or diag($out);
    like($out, qr/"crm_max_json_depth" must be between 1 and 256/,
        "... naming the directive and its range: crm_max_json_depth $depth");
}

# the secret: 31 bytes (plus the newline the module strips) is too short
$chk->write_secret(secret => 'x' x 31, newline => 1);
refused('jwt secret file of 31 bytes', qr/crm_jwt_secret_file" file .* 31 bytes, at least 32/);
$chk->write_secret(secret => '', newline => 0);
refused('empty jwt secret file', qr/crm_jwt_secret_file" file .* 0 bytes, at least 32/);
$chk->write_secret(secret => 'k' x 32, newline => 1);
($ok, $out) = check_config();
ok($ok, 'nginx -t passes a jwt secret of exactly 32 bytes plus a newline') or diag($out);

# --- the running server ------------------------------------------------------------

my $t = CrmTest->new->start;

sub origin_headers { return (headers => { Origin => 'https://app.example' }) }

# --- an "if" inside the API location -------------------------------------------------

my $IF = <<'EOF';
        location /auth/ {
            crm_api;
            if ($http_origin) {
                add_header Access-Control-Allow-Origin $http_origin always;
            }
        }
        location = /healthz {
            crm_api;
            if ($http_origin) {
                add_header Access-Control-Allow-Origin $http_origin always;
            }
        }
EOF
ok($t->reconfigure(server_extra => $IF), 'reload: crm_api locations with an "if" block');

for my $with (0, 1) {
    my $what = $with ? 'with Origin (inside the "if")' : 'without Origin';
    my %h = $with ? origin_headers() : ();
    my $r = $t->get('/healthz', %h);
    is($r->{status}, 200, "$what: GET /healthz 200") or diag("$r->{status} $r->{content}");
    is($r->{json}{db}, 'ok', "$what: /healthz says db ok");

    my $email = $t->unique_email($with ? 'if-origin' : 'if-plain');
    $r = $t->post_json('/auth/register', { email => $email, password => $PW }, %h);
    is($r->{status}, 201, "$what: POST /auth/register 201") or diag("$r->{status} $r->{content}");
    $r = $t->post_json('/auth/login', { email => $email, password => $PW }, %h);
    is($r->{status}, 200, "$what: POST /auth/login 200") or diag("$r->{status} $r->{content}");
    my $tok = $r->{json}{access_token};
    $r = $t->get('/auth/me', token => $tok, %h);
    is($r->{status}, 200, "$what: GET /auth/me with the token 200") or diag("$r->{status} $r->{content}");
    is($r->{json}{email}, $email, "$what: ... the right account");
    $r = $t->get('/auth/me', %h);
    is_problem($r, 401, "$what: GET /auth/me without a token: 401 problem");
    if ($with) {
        is($r->{headers}{'access-control-allow-origin'}, 'https://app.example',
            "$what: the if block's add_header ... always is applied");
    } else {
        ok(!exists $r->{headers}{'access-control-allow-origin'}, "$what: no CORS header");
    }
}

# a body over crm_max_body_size (64k) inside the "if": nginx's 413, as a problem
my $big = json_encode({ email => $t->unique_email('if-big'), password => $PW, pad => 'p' x 70_000 });
for my $with (0, 1) {
    my $what = $with ? 'with Origin (inside the "if")' : 'without Origin';
    my %h = $with ? origin_headers() : ();
    is_problem($t->post_raw('/auth/register', $big, 'application/json', %h), 413,
        "$what: a 70 KB body: 413 problem");
    my $r = $t->raw("POST /auth/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        . ($with ? "Origin: https://app.example\r\n" : '')
        . "Content-Length: 104857600\r\nConnection: close\r\n\r\n{\"email\":", timeout => 5);
    is_problem($r, 413, "$what: Content-Length 100 MB announced: 413 problem");
}
is($t->get('/healthz', origin_headers())->{status}, 200, 'after the 413s: /healthz 200');

# --- limit_except inside the API location ----------------------------------------------

my $LE = <<'EOF';
        location /auth/ {
            crm_api;
            limit_except GET POST PATCH { deny all; }
        }
        location /admin/ {
            crm_api;
            limit_except GET PATCH { allow 127.0.0.1; deny all; }
        }
EOF
ok($t->reconfigure(server_extra => $LE), 'reload: crm_api locations with limit_except');

my $le_email = $t->unique_email('limit-except');
my $r = $t->post_json('/auth/register', { email => $le_email, password => $PW });
is($r->{status}, 201, 'limit_except GET POST PATCH: POST /auth/register reaches the module: 201')
    or diag("$r->{status} $r->{content}");
is($t->post_json('/auth/login', { email => $le_email, password => $PW })->{status}, 200,
    'limit_except: POST /auth/login 200');
is_problem($t->get('/auth/me'), 401, 'limit_except: GET /auth/me without a token: 401 problem');
$r = $t->request('HEAD', '/auth/me');
is($r->{status}, 401, 'limit_except: HEAD (implied by GET) /auth/me: 401 from the module');
is_problem($t->request('DELETE', '/auth/login'), 403,
    'limit_except: DELETE /auth/login is denied by nginx: 403 problem (not 404)');
is_problem($t->request('PUT', '/auth/me', content => '{}', headers => { 'Content-Type' => 'application/json' }),
    403, 'limit_except: PUT /auth/me: 403 problem');

# a method that limit_except allows through its own block still reaches the module
$r = $t->request('DELETE', '/admin/users/00000000-0000-4000-8000-000000000000');
is_problem($r, 405, 'limit_except with allow: DELETE /admin/users/{id} reaches the module: 405 problem');
like($r->{headers}{allow} // '', qr/\bPATCH\b/, '... with Allow: PATCH');
is_problem($t->get('/admin/users'), 401, 'limit_except with allow: GET /admin/users: 401 problem');

# --- the operator's own options in the conninfo -----------------------------------------

# a custom setting in "options" is observed server-side by a trigger: it
# reaches the module's sessions only if the module keeps the operator's
# options next to its own statement_timeout
$t->psql(<<'EOF');
CREATE TABLE public.seen_options (marker text, work_mem text, statement_timeout text, app text);
CREATE FUNCTION public.seen_options_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.seen_options VALUES (current_setting('opsapp.marker', true),
        current_setting('work_mem'), current_setting('statement_timeout'),
        current_setting('application_name'));
    RETURN NEW;
END $$;
CREATE TRIGGER seen_options AFTER INSERT ON crm.accounts
    FOR EACH ROW EXECUTE FUNCTION public.seen_options_note();
EOF

my $dsn = $t->dsn . q{ options='-c opsapp.marker=kept -c work_mem=5MB -c search_path=crm,public'};
ok($t->reconfigure(server_extra => '', conf => { crm_database => qq{"$dsn"} }),
    'reload: crm_database with the operator\'s options');
my $opt_email = $t->unique_email('options');
$r = $t->post_json('/auth/register', { email => $opt_email, password => $PW });
is($r->{status}, 201, 'with options: register 201') or diag("$r->{status} $r->{content}");
$r = $t->post_json('/auth/login', { email => $opt_email, password => $PW });
is($r->{status}, 200, 'with options: login 200') or diag("$r->{status} $r->{content}");
is($t->get('/auth/me', token => $r->{json}{access_token})->{status}, 200, 'with options: /auth/me 200');
is($t->get('/healthz')->{json}{db}, 'ok', 'with options: /healthz db ok');

my @seen = $t->psql(q{SELECT coalesce(marker, '-') || '|' || work_mem || '|' || statement_timeout || '|' || app
                      FROM public.seen_options});
is(scalar @seen, 1, 'the trigger saw the registration');
my ($marker, $work_mem, $stmt, $app) = split /\|/, $seen[0] // '';
is($marker, 'kept', "the operator's -c opsapp.marker reached the module's session");
is($work_mem, '5MB', "the operator's -c work_mem reached the module's session");
is($stmt, '5s', "the module's own statement_timeout (crm_db_statement_timeout 5s) is still set");
like($app, qr{^crm-gateway/\d+\z}, 'the module names its sessions crm-gateway/<worker pid>');
ok((grep { $_ == ($app =~ m{/(\d+)})[0] } $t->worker_pids),
    '... the pid of the worker that holds the connection');

$t->psql('DROP TRIGGER seen_options ON crm.accounts; DROP FUNCTION public.seen_options_note(); '
    . 'DROP TABLE public.seen_options');

$t->done;

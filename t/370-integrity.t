#!/usr/bin/perl
# Integrity: a COMMIT that PostgreSQL answers "ROLLBACK" is a failure (503
# with Retry-After, a warning in the log), shown through a fault-injecting
# proxy between nginx and PostgreSQL (t/lib/PgProxy.pm); the error log
# never holds PostgreSQL's DETAIL; the login log never keeps what was typed
# into the email field when it is not an address; ids in paths, filters and
# bodies are stored and found in their canonical lower-case form; a token
# is checked before the body or its headers are; the repository's
# conf/crm.conf limits only logins and registrations, and every 429 is a
# problem document with Retry-After.

use strict;
use warnings;

use Test::More;
use CrmTest;
use PgProxy;

my $t = CrmTest->new;

# nginx reaches PostgreSQL only through the proxy
my $proxy = PgProxy->start(upstream_port => $t->pg_port, dir => $t->dir);

# a second server block, on a port of its own, with the repository's
# conf/crm.conf as its locations (the harness's server already has a
# "location /"); crm.conf needs the edge's zones and the crm_auth zone
my $CONF_PORT = CrmTest::free_port($t->port, $t->pg_port, $proxy->port);
my %edge = $t->edge_config;

$t->start_db;
$t->write_config(
    conf => {
        crm_database          => '"' . $proxy->dsn . '"',
        crm_link_create_limit => '1 1h',
    },
    http_extra => $edge{http_extra}
        . "    limit_req_zone \$binary_remote_addr zone=crm_auth:1m rate=1r/s;\n"
        . "    limit_req_zone \$crm_account_id zone=crm_account:1m rate=50r/s;\n"
        . "    server {\n"
        . "        listen 127.0.0.1:$CONF_PORT;\n"
        . "        include $CrmTest::ROOT/conf/crm.conf;\n"
        . "    }\n",
);
$t->start_nginx;

my $PW = 'correct horse battery';

sub log_size { -s $t->dir . '/error.log' // 0 }
sub log_since { substr($t->error_log, $_[0]) }

# a UUID with its hex letters alternately upper and lower case
sub mixed {
    my ($id) = @_;
    my $i = 0;
    (my $m = $id) =~ s/([a-f])/$i++ % 2 ? $1 : uc $1/ge;
    diag("$id has too few letters to mix their case") if $m eq uc $m || $m eq lc $m;
    return $m;
}

sub retry_after_ok {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    like($r->{headers}{'retry-after'} // '', qr/^[1-9][0-9]*$/, "$name: Retry-After in seconds")
        or diag('Retry-After: ' . ($r->{headers}{'retry-after'} // '(none)'));
}

my ($A, $a_tok) = $t->member(full_name => 'Member A');
ok($proxy->connections >= 1, 'nginx reaches PostgreSQL through the proxy')
    or diag('proxy connections: ' . $proxy->connections);

# --- COMMIT answered ROLLBACK ----------------------------------------------------------------

my $victim = $t->create_lead($a_tok, name => 'Before the fault');
my $from = log_size();
my $rewrites = $proxy->rewrites;

$proxy->fault_on;
my $r = $t->post_json('/leads/', { name => 'Told ROLLBACK' }, token => $a_tok, allow_503 => 1);
is_problem($r, 503, 'COMMIT answered ROLLBACK: POST /leads/ answers 503 (not 201)');
retry_after_ok($r, 'POST /leads/');
ok(!defined $r->{headers}{location}, '... and no Location');
$r = $t->put_json("/leads/$victim->{id}", { name => 'Renamed, told ROLLBACK' }, token => $a_tok,
    allow_503 => 1);
is_problem($r, 503, 'COMMIT answered ROLLBACK: PUT /leads/{id} answers 503 (not 200)');
retry_after_ok($r, 'PUT /leads/{id}');
$proxy->fault_off;
my $rewritten = $proxy->rewrites;

cmp_ok($rewritten - $rewrites, '>=', 2, 'the proxy rewrote (at least) the two COMMIT answers');
my @said = log_since($from) =~ /^(.*COMMIT answered "ROLLBACK".*)$/mg;
cmp_ok(scalar @said, '>=', 2, 'error.log: the COMMIT answered "ROLLBACK", once per request');
is_deeply([grep { !/\[warn\]/ } @said], [], '... at level warn') or diag(join "\n", @said);

$r = $t->post_json('/leads/', { name => 'After the fault' }, token => $a_tok);
is($r->{status}, 201, 'the fault off: POST /leads/ answers 201') or diag($r->{content});
$r = $t->put_json("/leads/$victim->{id}", { name => 'Renamed after the fault' }, token => $a_tok);
is($r->{status}, 200, 'the fault off: PUT /leads/{id} answers 200') or diag($r->{content});
is($r->{json}{name}, 'Renamed after the fault', '... with the new name');
is($proxy->rewrites, $rewritten, 'no rewrite while the fault was off');

# --- the error log never holds DETAIL ---------------------------------------------------------

$t->psql(q{ALTER TABLE crm.accounts ADD CONSTRAINT t_no_evil CHECK (full_name <> 'evil name')});
my $evil = $t->unique_email('evil');
$from = log_size();
$r = $t->post_json('/auth/register', { email => $evil, password => 'evil password 123', full_name => 'evil name' },
    allow_5xx => 1);
is_problem($r, 500, 'a registration the database refuses (check constraint, 23514): 500 problem');
unlike($r->{content}, qr/Failing row|argon2|\Q$evil\E|t_no_evil|23514/i, '... that says nothing of the row');
my $log = log_since($from);
like($log, qr/\b23514\b/, 'error.log: the SQLSTATE 23514');
like($log, qr/violates check constraint/, 'error.log: the primary message');
like($log, qr/t_no_evil/, 'error.log: the constraint name');
unlike($log, qr/Failing row/, 'error.log: not "Failing row contains ..."');
unlike($log, qr/argon2/i, 'error.log: no password hash');
unlike($log, qr/\Q$evil\E/i, 'error.log: not the email');
unlike($log, qr/DETAIL/, 'error.log: no DETAIL at all');
is($t->psql("SELECT count(*) FROM crm.accounts WHERE email = '$evil'"), 0, 'no account was stored');
$t->psql('ALTER TABLE crm.accounts DROP CONSTRAINT t_no_evil');
$r = $t->post_json('/auth/register', { email => $evil, password => 'evil password 123', full_name => 'evil name' });
is($r->{status}, 201, 'without the constraint the same registration answers 201') or diag($r->{content});

# --- the login log keeps no malformed email ------------------------------------------------------

my $long = 'long-secret-' . join('', map { chr(ord('a') + $_ % 26) } 1 .. 288);
my @typed = ('hunter2-my-password', 'a b@c', $long);
my $n = 0;
for my $typed (@typed) {
    my $label = length $typed > 40 ? 'a 300-character string' : "'$typed'";
    for my $how ('JSON', 'form') {
        my $ua = 'crm-370 malformed ' . ++$n;
        $r = $how eq 'JSON'
            ? $t->post_json('/auth/login', { email => $typed, password => 'whatever1' }, headers => { 'User-Agent' => $ua })
            : $t->post_form('/auth/login', [username => $typed, password => 'whatever1'],
                headers => { 'User-Agent' => $ua });
        is_problem($r, 401, "$how login with $label as the email: 401");
        my @rows = $t->psql("SELECT coalesce(email, '<null>') || ' ' || reason || ' ' || success"
            . " FROM crm.login_log WHERE user_agent = '$ua'");
        is_deeply(\@rows, ['<null> malformed_email false'], "$how login with $label: one row, email NULL, malformed_email");
    }
}
for my $typed (@typed) {
    my $needle = substr($typed, 0, 40);
    is($t->psql("SELECT count(*) FROM crm.login_log l WHERE strpos(l::text, '$needle') > 0"), 0,
        "'$needle' is nowhere in crm.login_log");
    unlike($t->error_log, qr/\Q$needle\E/, "... nor in error.log");
}
my $ghost = $t->unique_email('ghost');
$r = $t->post_json('/auth/login', { email => $ghost, password => 'whatever1' }, headers => { 'User-Agent' => 'crm-370 ghost' });
is_problem($r, 401, 'a well-formed unknown email: 401');
is_deeply([$t->psql("SELECT coalesce(email, '<null>') || ' ' || reason FROM crm.login_log"
    . " WHERE user_agent = 'crm-370 ghost'")], ["$ghost unknown_email"], '... kept, as unknown_email');

# --- canonical lower-case ids -----------------------------------------------------------------

my ($adm, $adm_tok) = $t->admin;
my ($M1) = $t->member(full_name => 'Merchant One');
my ($M2) = $t->member(full_name => 'Merchant Two');

sub last_audit {
    my ($action) = @_;
    return scalar $t->psql("SELECT object_id FROM crm.audit_log WHERE action = '$action' ORDER BY id DESC LIMIT 1");
}

for my $c ([$M1, uc $M1->{id}, 'upper case'], [$M2, mixed($M2->{id}), 'mixed case']) {
    my ($who, $path_id, $case) = @$c;
    $r = $t->patch_json("/admin/users/$path_id", { role => 'merchant' }, token => $adm_tok);
    is_json_response($r, 200, "PATCH /admin/users/{id in $case}: 200");
    is($r->{json}{id}, $who->{id}, '... the account, its id in lower case');
    is($r->{json}{role}, 'merchant', '... now a merchant');
    is(last_audit('account.update'), $who->{id}, "... audit row's object_id in lower case");
}

my @L = map { $t->create_lead($a_tok, name => "Case lead $_")->{id} } 1 .. 3;
for my $c ([uc $L[0], 'upper case'], [mixed($L[0]), 'mixed case']) {
    my ($path_id, $case) = @$c;
    $r = $t->put_json("/leads/$path_id", { name => "Renamed by $case" }, token => $a_tok);
    is_json_response($r, 200, "PUT /leads/{id in $case}: 200");
    is($r->{json}{id}, $L[0], '... the lead, its id in lower case');
    $r = $t->get("/leads/$path_id", token => $a_tok);
    is($r->{status}, 200, "GET /leads/{id in $case}: 200");
    is($r->{json}{name}, "Renamed by $case", '... renamed');
}
is($t->del('/leads/' . uc $L[1], token => $a_tok)->{status}, 204, 'DELETE /leads/{id in upper case}: 204');
is($t->del('/leads/' . mixed($L[2]), token => $a_tok)->{status}, 204, 'DELETE /leads/{id in mixed case}: 204');
is($t->get("/leads/$L[$_]", token => $a_tok)->{status}, 404, "deleted lead $_ is gone") for 1, 2;

my %want = ($L[0] => [qw(lead.create lead.update lead.update)],
            $L[1] => [qw(lead.create lead.delete)],
            $L[2] => [qw(lead.create lead.delete)]);
for my $id (@L) {
    is_deeply([$t->psql("SELECT action FROM crm.audit_log WHERE object_id = '$id' ORDER BY id")], $want{$id},
        "crm.audit_log: lead $id, ${\ join ', ', @{ $want{$id} }}, under the lower-case id");
}
is($t->psql(q{SELECT count(*) FROM crm.audit_log WHERE object_type IN ('lead', 'account')}
    . q{ AND object_id <> lower(object_id)}), 0, 'crm.audit_log: no lead or account id in upper or mixed case');

for my $c ([$L[0], uc $L[0], 'upper'], [$L[1], mixed($L[1]), 'mixed'], [$L[2], uc $L[2], 'upper'],
           [$M1->{id}, mixed($M1->{id}), 'mixed']) {
    my ($id, $q, $case) = @$c;
    my ($items, $err) = $t->page_all("/admin/audit-logs?object_id=$q", token => $adm_tok, limit => 50);
    ok(!$err, "GET /admin/audit-logs?object_id=<$case case>: answered") or diag($err);
    my @db = $t->psql("SELECT id FROM crm.audit_log WHERE object_id = '$id' ORDER BY created_at DESC, id DESC");
    ok(@db >= 1, "... there are rows for $id");
    is_deeply([map { "$_->{id}" } @$items], \@db, '... finds exactly the lower-case rows');
}
{
    my ($items, $err) = $t->page_all('/admin/audit-logs?actor_id=' . uc $A->{id}, token => $adm_tok, limit => 200);
    ok(!$err, 'GET /admin/audit-logs?actor_id=<upper case>: answered') or diag($err);
    my @db = $t->psql("SELECT id FROM crm.audit_log WHERE actor_id = '$A->{id}' ORDER BY created_at DESC, id DESC");
    is_deeply([map { "$_->{id}" } @$items], \@db, "... finds A's " . scalar(@db) . ' rows');
    ($items, $err) = $t->page_all('/admin/leads?owner_id=' . mixed($A->{id}), token => $adm_tok, limit => 200);
    ok(!$err, 'GET /admin/leads?owner_id=<mixed case>: answered') or diag($err);
    is(scalar @$items, $t->psql("SELECT count(*) FROM crm.leads WHERE owner_id = '$A->{id}' AND deleted_at IS NULL"),
        "... A's leads");
}

for my $c ([$M1, uc $M1->{id}, 'upper case'], [$M2, mixed($M2->{id}), 'mixed case']) {
    my ($merchant, $sent, $case) = @$c;
    my (undef, $tok) = $t->member;      # one link per account and hour here
    $r = $t->post_json('/affiliate/links', { target_url => 'https://a.example.com/', merchant_id => $sent },
        token => $tok);
    is_json_response($r, 201, "POST /affiliate/links with merchant_id in $case: 201");
    is($r->{json}{merchant_id}, $merchant->{id}, '... merchant_id answered in lower case');
    my $link = $r->{json}{affiliate_link_id} // '';
    is($t->psql("SELECT merchant_id::text FROM crm.affiliate_links WHERE id = '$link'"), $merchant->{id},
        '... and stored in lower case');
}

# --- the token before the body ------------------------------------------------------------------

my $forged = $t->forge_token(claims => { sub => $A->{id}, role => 'admin' }, key => 'not the key');
my $expired = $t->forge_token(claims => { sub => $A->{id}, iat => time - 7200, exp => time - 3600 });
my $pay = json_encode({ amount_cents => 100, reference => 'PAY-370' });
for my $c ([undef, 'no token'], [$forged, 'a forged token'], [$expired, 'an expired token'],
           ['not-a-jwt', 'a token that is no JWT']) {
    my ($tok, $who) = @$c;
    my %o = (token => $tok);
    $r = $t->post_raw('/leads/', '{"name":', 'application/json', %o);
    is_problem($r, 401, "POST /leads/, $who, malformed JSON: 401 (not 400)");
    like($r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/, '... with WWW-Authenticate: Bearer');
    is_problem($t->post_raw('/leads/', 'name=x', 'text/plain', %o), 401,
        "POST /leads/, $who, Content-Type text/plain: 401 (not 415)");
    is_problem($t->post_raw('/leads/', '{"name":"x"}', 'application/json', %o,
        headers => { 'Idempotency-Key' => 'bad key' }), 401,
        "POST /leads/, $who, a malformed Idempotency-Key: 401 (not 422)");
    is_problem($t->post_raw("/admin/wallets/$A->{id}/payouts", $pay, 'application/json', %o,
        headers => { 'Idempotency-Key' => 'bad key' }), 401,
        "POST /admin/wallets/{id}/payouts, $who, Idempotency-Key with a space: 401 (not 422)");
    is_problem($t->post_raw("/admin/wallets/$A->{id}/payouts", '{"amount_cents":', 'application/json', %o,
        headers => { 'Idempotency-Key' => 'bad key' }), 401,
        "POST /admin/wallets/{id}/payouts, $who, bad key and malformed JSON: 401");
}
# the same requests with good tokens fail on the body or the header
is_problem($t->post_raw('/leads/', '{"name":', 'application/json', token => $a_tok), 400,
    'with a valid token, malformed JSON: 400');
is_problem($t->post_raw('/leads/', 'name=x', 'text/plain', token => $a_tok), 415,
    'with a valid token, text/plain: 415');
is_problem($t->post_raw("/admin/wallets/$A->{id}/payouts", $pay, 'application/json', token => $adm_tok,
    headers => { 'Idempotency-Key' => 'bad key' }), 422, "an admin's payout with Idempotency-Key 'bad key': 422",
    field => 'Idempotency-Key');

# --- conf/crm.conf: the rate limit covers login and registration only --------------------------

# a request to the server that includes conf/crm.conf
sub via_conf {
    my ($method, $path, %o) = @_;
    local $t->{port} = $CONF_PORT;
    return $t->request($method, $path, %o);
}

$r = via_conf('GET', '/auth/me', token => $a_tok);
is($r->{status}, 200, 'the crm.conf server answers GET /auth/me') or diag($r->{content});
my @me = map { via_conf('GET', '/auth/me', token => $a_tok)->{status} } 1 .. 40;
is_deeply([grep { $_ != 200 } @me], [], '40 quick GET /auth/me through crm.conf: all 200, never 429');

# forty at once, each from its own connection
my @logins = $t->concurrently(40, sub {
    via_conf('POST', '/auth/login', json => { email => $A->{email}, password => "wrong password $_[0]" })
});
my @s = map { $_->{status} } @logins;
my @limited = grep { $_->{status} == 429 } @logins;
ok(@limited >= 1, 'a burst of 40 logins with wrong passwords: some 429 (' . scalar(@limited) . ')')
    or diag("@s");
ok((grep { $_ == 401 } @s) >= 1, '... the first ones answered 401 by the module');
is_deeply([grep { $_ != 401 && $_ != 429 } @s], [], '... nothing but 401 and 429');
my @bad429 = grep { ($_->{headers}{'content-type'} // '') !~ m{^application/problem\+json}
    || ($_->{headers}{'retry-after'} // '') !~ /^\d+$/ || ref $_->{json} ne 'HASH'
    || ($_->{json}{status} // 0) != 429 } @limited;
is(scalar @bad429, 0, '... each 429 a problem document (status 429) with Retry-After');
if (@limited) {
    is_problem($limited[0], 429, '... the first 429 in full');
    retry_after_ok($limited[0], "nginx's 429");
}

my @reg = map { via_conf('POST', '/auth/register', json => { email => "r$_\@example.com", password => 'short' }) }
    1 .. 10;
ok((grep { $_->{status} == 429 } @reg) >= 1, 'POST /auth/register right after: limited too (429)')
    or diag(join ' ', map { $_->{status} } @reg);
@me = map { via_conf('GET', '/auth/me', token => $a_tok)->{status} } 1 .. 5;
is_deeply(\@me, [(200) x 5], 'GET /auth/me meanwhile: still 200');

# the gateway's own 429: crm_link_create_limit 1 1h
my ($Z, $z_tok) = $t->member;
$r = $t->post_json('/affiliate/links', { target_url => 'https://a.example.com/z1' }, token => $z_tok);
is($r->{status}, 201, 'the first link of the hour: 201') or diag($r->{content});
$r = $t->post_json('/affiliate/links', { target_url => 'https://a.example.com/z2' }, token => $z_tok);
is_problem($r, 429, 'the second (crm_link_create_limit 1 1h): 429 problem');
retry_after_ok($r, 'the link limit');
cmp_ok($r->{headers}{'retry-after'} // 0, '<=', 3600, '... at most the period');

ok($proxy->running, 'the proxy is still running');
cmp_ok($proxy->connections, '>', 1, 'the proxy served several connections (' . $proxy->connections . ')');

$t->done;

#!/usr/bin/perl
# PostgreSQL goes away and comes back: the gateway answers 503 with
# Retry-After meanwhile, nginx keeps serving, and the module recovers by
# itself, without a restart of nginx.

use strict;
use warnings;

use Test::More;
use CrmTest;

my $t = CrmTest->new->start;

my $PW = 'correct horse battery';
my ($acc, $token) = $t->member;

# warm every worker's connections
is($t->get('/auth/me', token => $token, ua => HTTP::Tiny->new(keep_alive => 0))->{status}, 200, 'up: /auth/me 200')
    for 1 .. 8;
is($t->get('/healthz')->{json}{db}, 'ok', 'up: /healthz says db ok');
my $nginx_pid = $t->{nginx_pid};

# --- down --------------------------------------------------------------------------

$t->stop_db;
ok(!$t->db_running, 'PostgreSQL stopped');

sub unavailable {
    my ($res, $what) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_problem($res, 503, "$what: 503");
    like($res->{headers}{'retry-after'} // '', qr/^\d+$/, "$what: Retry-After in seconds");
}

my $t0 = time;

# /healthz reads what each worker's probe found, once a second: down
# within the probe's interval, on every connection
my $r;
ok(wait_until(3, sub {
        my @h = map { $t->get('/healthz', ua => HTTP::Tiny->new(keep_alive => 0)) } 1 .. 4;
        $r = $h[-1];
        return !grep { $_->{status} != 503 } @h;
    }, 0.1), 'down: /healthz says so within the probes\' interval');
my $h = is_json_response($r, 503, 'down: /healthz is 503 JSON');
is($h->{status}, 'degraded', 'down: status degraded');
is($h->{db}, 'down', 'down: db down');
like($r->{headers}{'retry-after'} // '', qr/^\d+$/, 'down: /healthz has Retry-After');

# several times, so that every worker and thread notices
for my $i (1 .. 6) {
    my $ua = HTTP::Tiny->new(keep_alive => 0);
    unavailable($t->get('/auth/me', token => $token, ua => $ua), "down ($i): GET /auth/me with a valid token");
}
unavailable($t->post_json('/auth/login', { email => $acc->{email}, password => $PW }), 'down: POST /auth/login');
unavailable($t->post_json('/auth/register', { email => $t->unique_email, password => $PW }), 'down: POST /auth/register');
ok(time - $t0 < 20, 'down: answers come quickly (within the connect timeout), not after a hang');

# what does not need the database still works
is($t->get('/baseline')->{status}, 200, 'down: nginx still serves /baseline');
is_problem($t->get('/auth/me'), 401, 'down: no token is still 401');
is_problem($t->get('/auth/me', token => 'garbage'), 401, 'down: a garbage token is still 401');
is_problem($t->post_raw('/auth/register', '{', 'application/json'), 400, 'down: malformed JSON is still 400');
is_problem($t->get('/nope'), 404, 'down: unknown path is still 404');

# --- up again ---------------------------------------------------------------------

$t->start_db;
ok($t->db_running, 'PostgreSQL started again');

my $back = wait_until(15, sub {
    my $res = $t->get('/auth/me', token => $token, allow_503 => 1, ua => HTTP::Tiny->new(keep_alive => 0));
    return $res->{status} == 200;
}, 0.25);
ok($back, 'up: GET /auth/me answers 200 again within 15 s, without restarting nginx');
is($t->{nginx_pid}, $nginx_pid, 'the same nginx master');
ok(kill(0, $nginx_pid), '... still running');

# every worker thread must have recovered (stale connections are reconnected)
my @after = map { $t->get('/auth/me', token => $token, ua => HTTP::Tiny->new(keep_alive => 0))->{status} } 1 .. 40;
my @not200 = grep { $after[$_] != 200 } 0 .. $#after;
is_deeply([map { $after[$_] } @not200], [], 'up: 40 further requests on new connections all 200')
    or diag('not 200: requests ' . join(', ', map { ($_ + 1) . " ($after[$_])" } @not200));

ok(wait_until(3, sub { $t->get('/healthz', allow_503 => 1)->{status} == 200 }, 0.1),
    'up: /healthz 200 within the probes\' interval');
is($t->get('/healthz')->{json}{db}, 'ok', 'up: /healthz db ok');
is($t->post_json('/auth/login', { email => $acc->{email}, password => $PW })->{status}, 200, 'up: login works');
is($t->post_json('/auth/register', { email => $t->unique_email('after'), password => $PW })->{status}, 201,
    'up: register works');

# --- a second outage, shorter ----------------------------------------------------------

$t->stop_db;
unavailable($t->get('/auth/me', token => $token), 'down again: GET /auth/me');
$t->start_db;
ok(wait_until(15, sub {
    $t->get('/auth/me', token => $token, allow_503 => 1)->{status} == 200 }, 0.25),
    'up again: recovered a second time');

$t->done;

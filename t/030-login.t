#!/usr/bin/perl
# POST /auth/login: JSON or the OAuth2 password form, one answer for every
# kind of failure, and a login log row per attempt.

use strict;
use warnings;
use utf8;

use Test::More;
use CrmTest;

my $t = CrmTest->new->start;

my $PW = 'p&ss w+rd=1 %20 ü';
my $acc = $t->register(email => $t->unique_email('bob'), password => $PW, full_name => 'Bob');
my $UA = 'crm-test login-check/2.0';

sub log_count { $t->psql('SELECT count(*) FROM crm.login_log') }

sub last_log {
    my $row = $t->psql(q{SELECT coalesce(account_id::text, ''), email, success, reason, ip, user_agent
                         FROM crm.login_log ORDER BY id DESC LIMIT 1});
    my %l;
    @l{qw(account_id email success reason ip user_agent)} = split /\|/, $row, 6;
    return \%l;
}

sub check_token {
    my ($res, $what) = @_;
    my $j = is_json_response($res, 200, "$what: 200 JSON");
    return unless $j;
    is($j->{token_type}, 'bearer', "$what: token_type is bearer");
    is($j->{expires_in}, 3600, "$what: expires_in is the configured ttl (1h)");
    my $tok = $j->{access_token} // '';
    like($tok, qr/^[\w-]+\.[\w-]+\.[\w-]+$/, "$what: access_token is a compact JWT");
    ok($t->verify_hs256($tok), "$what: signed HS256 with the configured secret");
    my ($h, $c) = eval { $t->decode_jwt($tok) };
    is($h->{alg}, 'HS256', "$what: alg HS256");
    is($c->{iss}, 'crm-gateway', "$what: iss");
    my $aud = ref $c->{aud} ? $c->{aud}[0] : $c->{aud};
    is($aud, 'crm-api', "$what: aud");
    is($c->{sub}, $acc->{id}, "$what: sub is the account id");
    ok(abs($c->{iat} - time) < 60, "$what: iat is now");
    is($c->{exp} - $c->{iat}, 3600, "$what: exp = iat + ttl");
    my $me = $t->get('/auth/me', token => $tok);
    is($me->{status}, 200, "$what: the token opens /auth/me");
    is($me->{json}{id}, $acc->{id}, "$what: ... for the right account");
    return $tok;
}

# --- success, JSON and form ---------------------------------------------------

my $n = log_count();
check_token($t->post_json('/auth/login', { email => $acc->{email}, password => $PW },
    headers => { 'User-Agent' => $UA }), 'JSON login');
is(log_count(), $n + 1, 'one login_log row for the attempt');
my $l = last_log();
is($l->{account_id}, $acc->{id}, 'login_log: account_id');
is($l->{email}, $acc->{email}, 'login_log: email');
is($l->{success}, 't', 'login_log: success');
is($l->{ip}, '127.0.0.1', 'login_log: ip');
is($l->{user_agent}, $UA, 'login_log: user agent');

check_token($t->post_json('/auth/login', { email => '  ' . uc($acc->{email}) . ' ', password => $PW }),
    'JSON login with the email in other case and whitespace');

check_token($t->post_form('/auth/login', [username => $acc->{email}, password => $PW]),
    'form login (username, password)');
check_token($t->post_form('/auth/login', [grant_type => 'password', username => $acc->{email},
    password => $PW, scope => '', client_id => 'swagger', client_secret => '']),
    'form login with grant_type, scope, client_id, client_secret');
check_token($t->post_raw('/auth/login', 'username=' . $acc->{email} . '&password=' .
    join('', map { sprintf '%%%02X', ord } split //, do { my $p = $PW; utf8::encode($p); $p }),
    'application/x-www-form-urlencoded'), 'form login, every password byte percent-encoded');

# --- failures: one answer, one log row each ------------------------------------

$n = log_count();
my $wrong = $t->post_json('/auth/login', { email => $acc->{email}, password => 'wrong password' },
    headers => { 'User-Agent' => $UA });
is_problem($wrong, 401, 'wrong password: 401');
like($wrong->{headers}{'www-authenticate'} // '', qr/^Bearer\b/, 'wrong password: WWW-Authenticate: Bearer');
$l = last_log();
is(log_count(), $n + 1, 'wrong password: one login_log row');
is("$l->{account_id} $l->{success}", "$acc->{id} f", 'login_log: failed attempt on the account');
ok(length $l->{reason}, "login_log: reason recorded ($l->{reason})");
is($l->{user_agent}, $UA, 'login_log: user agent of the failed attempt');

my $ghost = $t->unique_email('ghost');
my $unknown = $t->post_json('/auth/login', { email => $ghost, password => 'wrong password' });
is_problem($unknown, 401, 'unknown email: 401');
like($unknown->{headers}{'www-authenticate'} // '', qr/^Bearer\b/, 'unknown email: WWW-Authenticate: Bearer');
# (each names its own request: the rest must be the same)
is(sans_request_id($unknown)->{content}, sans_request_id($wrong)->{content},
    'unknown email and wrong password: identical body');
is_deeply(sans_request_id($unknown)->{json}, sans_request_id($wrong)->{json},
    '... and identical problem document');
is(log_count(), $n + 2, 'unknown email: one login_log row');
$l = last_log();
is("$l->{account_id}|$l->{email}|$l->{success}", "|$ghost|f", 'login_log: unknown email, no account');

my $formwrong = $t->post_form('/auth/login', [username => $acc->{email}, password => 'nope nope']);
is_problem($formwrong, 401, 'form login, wrong password: 401');
is_deeply(sans_request_id($formwrong)->{json}, sans_request_id($wrong)->{json},
    '... with the same problem document');

# an account without a local password (created by an identity provider)
$t->psql(q{INSERT INTO crm.accounts (email) VALUES ('nopassword@example.com')});
my $nopw = $t->post_json('/auth/login', { email => 'nopassword@example.com', password => 'anything at all' });
is_problem($nopw, 401, 'account without a password: 401');
is_deeply(sans_request_id($nopw)->{json}, sans_request_id($wrong)->{json},
    '... with the same problem document');

# a deactivated account
my $carol_pw = 'carol password';
my $carol = $t->register(email => $t->unique_email('carol'), password => $carol_pw);
my $carol_tok = $t->login($carol->{email}, $carol_pw);
$t->psql("UPDATE crm.accounts SET is_active = false WHERE id = '$carol->{id}'");
$n = log_count();
my $off = $t->post_json('/auth/login', { email => $carol->{email}, password => $carol_pw });
is_problem($off, 401, 'deactivated account, right password: 401');
like($off->{headers}{'www-authenticate'} // '', qr/^Bearer\b/, '... with WWW-Authenticate: Bearer');
is(log_count(), $n + 1, '... and a login_log row');
is(last_log()->{success}, 'f', '... recorded as a failure');
is_problem($t->get('/auth/me', token => $carol_tok), 401, "deactivated account's earlier token: 401");

# --- malformed login requests ----------------------------------------------------

is_problem($t->post_json('/auth/login', { email => $acc->{email} }), 422,
    'JSON login without password: 422', field => 'password');
is_problem($t->post_json('/auth/login', { password => $PW }), 422,
    'JSON login without email: 422', field => 'email');
is_problem($t->post_json('/auth/login', { email => $acc->{email}, password => 12345678 }), 422,
    'JSON login with a numeric password: 422', field => 'password');
is_problem($t->post_raw('/auth/login', '{"email":', 'application/json'), 400,
    'JSON login, malformed: 400');
is_problem($t->post_raw('/auth/login', "username=$acc->{email}&password=x", 'text/plain'), 415,
    'login with text/plain: 415');

# --- no successful login from all the failures above -------------------------------

is($t->psql("SELECT count(*) FROM crm.login_log WHERE success AND account_id NOT IN ('$acc->{id}', '$carol->{id}')"), 0,
    'login_log: no successful login for any other account');
is($t->psql("SELECT count(*) FROM crm.login_log WHERE success AND account_id = '$carol->{id}'"), 1,
    'login_log: one successful login for the deactivated account (before deactivation)');

$t->done;

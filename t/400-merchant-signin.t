#!/usr/bin/perl
# Merchant sign-in with an identity provider's RS256 ID tokens: keys from
# a JWKS or a certificate map, checked by "nginx -t" and replaced by a
# reload; POST /auth/bootstrap creating one merchant per (iss, sub) however
# concurrent; GET /auth/me and PATCH /auth/profile; merchant tokens on
# member endpoints; every bad token a 401 with error="invalid_token"; the
# login log.  Tokens are signed by the openssl tool, not by our code.

use strict;
use warnings;

use Test::More;
use HTTP::Tiny;
use POSIX qw(_exit);
use CrmTest;

my $t = CrmTest->new;
my $d = $t->dir;
$t->start_db;
$t->write_config(conf => { $t->idp_conf('a', 'b') });
$t->start_nginx;

my $ISS = "https://securetoken.google.com/$CrmTest::IDP_PROJECT";

sub refused {
    my ($r, $what) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_problem($r, 401, "$what: 401");
    is($r->{headers}{'www-authenticate'} // '', 'Bearer error="invalid_token"',
        "$what: WWW-Authenticate names invalid_token");
}

sub login_log {
    my ($where) = @_;
    return $t->psql("SELECT count(*) FROM crm.login_log WHERE $where");
}

# --- bootstrap ---------------------------------------------------------------------

my $tok = $t->idp_token(subject => 'first-merchant', email => 'First.Merchant@Example.com',
    claims => { name => 'First Merchant' });

my $r = $t->get('/auth/me', token => $tok);
is_problem($r, 404, 'GET /auth/me before bootstrap: 404');
like($r->{json}{detail} // '', qr{POST /auth/bootstrap}, '... saying to call /auth/bootstrap');

$r = $t->post_raw('/auth/bootstrap', '', undef, token => $tok);
my $m = is_json_response($r, 201, 'POST /auth/bootstrap without a body: 201');
is_uuid($m->{id}, '... an account id');
is($m->{merchant_id}, $m->{id}, '... merchant_id is the account id');
is($m->{role}, 'merchant', '... role merchant');
is($m->{email}, 'first.merchant@example.com', '... the email, trimmed and lower-cased');
is($m->{full_name}, 'First Merchant', '... full_name from the name claim');
is_deeply($m->{identity}, { issuer => $ISS, subject => 'first-merchant' }, '... identity {issuer, subject}');
ok(!exists $m->{password_hash}, '... no password hash');

$r = $t->post_json('/auth/bootstrap', { display_name => 'Other', company => 'Other' }, token => $tok);
is($r->{status}, 200, 'the second bootstrap: 200');
is($r->{json}{id}, $m->{id}, '... the same merchant_id');
is($r->{json}{display_name}, 'First Merchant', '... the profile is not replaced by a later bootstrap');

$r = $t->get('/auth/me', token => $tok);
is_deeply(is_json_response($r, 200, 'GET /auth/me with the ID token: 200'), $m,
    '... the merchant as bootstrapped');

is(login_log("account_id = '$m->{id}' AND success AND reason = 'idp_token'"), 2,
    'each bootstrap is a successful sign-in in the login log');

my ($m2) = $t->merchant(body => { display_name => 'Shop Two', company => 'Two Ltd' });
is($m2->{display_name}, 'Shop Two', 'bootstrap with a body: display_name');
is($m2->{company}, 'Two Ltd', '... and company');

# what the provider says about the person that the profile cannot hold
$r = $t->post_json('/auth/bootstrap', {}, token => $t->idp_token(subject => 'odd-claims',
    claims => { name => 'n' x 300, email => 'not an address' }));
is($r->{status}, 201, 'a name of 300 characters and an email that is not one: 201');
is($r->{json}{full_name}, '', '... the name left out');
is($r->{json}{email}, undef, '... and the email');

# the same email as a password account: merchants are keyed by identity
my ($member, $member_tok) = $t->member(email => $t->unique_email('shared'));
my ($m3) = $t->merchant(email => $member->{email});
isnt($m3->{id}, $member->{id}, "a merchant with a member's email is an account of its own");

# bad bodies, with a good token
my $tok4 = $t->idp_token(subject => 'bad-bodies');
is_problem($t->post_json('/auth/bootstrap', { display_name => 'x', role => 'admin' }, token => $tok4),
    422, 'bootstrap with an unknown field: 422', field => 'role');
is_problem($t->post_json('/auth/bootstrap', { company => 'x' x 201 }, token => $tok4),
    422, 'bootstrap with a company of 201 characters: 422', field => 'company');
is_problem($t->post_raw('/auth/bootstrap', '{"display_name":', 'application/json', token => $tok4),
    400, 'bootstrap with malformed JSON: 400');
is_problem($t->post_raw('/auth/bootstrap', 'x=1', 'text/plain', token => $tok4),
    415, 'bootstrap with text/plain: 415');
is($t->psql("SELECT count(*) FROM crm.accounts WHERE idp_subject = 'bad-bodies'"), 0,
    '... and no account was made by any of them');

# --- concurrent first calls ----------------------------------------------------------

{
    my $ctok = $t->idp_token(subject => 'concurrent');
    my $n = 16;
    my @pids;
    for my $i (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $res = HTTP::Tiny->new(timeout => 20)->request('POST', $t->base_url . '/auth/bootstrap',
                { headers => { Authorization => "Bearer $ctok" } });
            my $id = $res->{content} =~ /"id":"([0-9a-f-]{36})"/ ? $1 : '-';
            CrmTest::_write_file("$d/concurrent-$i", "$res->{status} $id");
            _exit(0);
        }
        push @pids, $pid;
    }
    waitpid $_, 0 for @pids;
    my @res = map { CrmTest::_slurp("$d/concurrent-$_") } 1 .. $n;
    my %status;
    $status{(split / /)[0]}++ for @res;
    my %ids = map { (split / /)[1] => 1 } @res;
    is($status{201} // 0, 1, "$n concurrent first bootstraps: exactly one 201");
    is($status{200} // 0, $n - 1, '... the others 200');
    is(scalar keys %ids, 1, '... all with the same merchant_id');
    is($t->psql("SELECT count(*) FROM crm.accounts WHERE idp_subject = 'concurrent'"), 1,
        '... one account in the database');
}

# --- profile -----------------------------------------------------------------------

$r = $t->patch_json('/auth/profile', { display_name => 'The Shop', company => 'Shop Inc',
    phone => '+1 (415) 555-2671', full_name => 'Firstname Merchant' }, token => $tok);
my $p = is_json_response($r, 200, 'PATCH /auth/profile: 200');
is($p->{display_name}, 'The Shop', '... display_name');
is($p->{company}, 'Shop Inc', '... company');
is($p->{phone}, '+14155552671', '... phone in E.164');
is($p->{full_name}, 'Firstname Merchant', '... full_name');
is($t->get('/auth/me', token => $tok)->{json}{company}, 'Shop Inc', '... and GET /auth/me shows it');
is($t->psql("SELECT count(*) FROM crm.audit_log WHERE action = 'account.profile' AND object_id = '$m->{id}'"),
    1, '... audited');

$r = $t->patch_json('/auth/profile', { phone => undef }, token => $tok);
is($r->{json}{phone}, undef, 'phone null clears it');
is_problem($t->patch_json('/auth/profile', { phone => '555-2671' }, token => $tok),
    422, 'a national phone number: 422', field => 'phone');
is_problem($t->patch_json('/auth/profile', {}, token => $tok), 422, 'an empty PATCH: 422');
is_problem($t->patch_json('/auth/profile', { email => 'x@example.com' }, token => $tok),
    422, 'email cannot be patched: 422', field => 'email');
is_problem($t->patch_json('/auth/profile', { display_name => 'x' x 201 }, token => $tok),
    422, 'display_name of 201 characters: 422', field => 'display_name');
is_problem($t->patch_json('/auth/profile', { display_name => 'x' }), 401,
    'PATCH /auth/profile without a token: 401');

$r = $t->patch_json('/auth/profile', { company => 'Members Too' }, token => $member_tok);
is($r->{status}, 200, 'a member may PATCH its profile');
is($r->{json}{company}, 'Members Too', '... company');
ok(!exists $r->{json}{merchant_id}, '... a member has no merchant_id');

# --- merchant tokens on member endpoints --------------------------------------------

my $lead = $t->post_json('/leads/', { name => 'Merchant lead', email => 'l@example.com' }, token => $tok);
is($lead->{status}, 201, 'a merchant creates a lead');
$r = $t->get("/leads/$lead->{json}{id}", token => $tok);
is($r->{status}, 200, '... reads it (the hot read, caller checked in its query)');
is($r->{json}{owner_id} // $m->{id}, $m->{id}, '... as its owner');
my (undef, $tok2) = $t->merchant;
is($t->get("/leads/$lead->{json}{id}", token => $tok2)->{status}, 404, "another merchant: 404");
is($t->get("/leads/$lead->{json}{id}", token => $member_tok)->{status}, 404, '... a member: 404');
my $list = $t->get('/leads/', token => $tok2);
is_deeply($list->{json}{items}, [], "... and the other merchant's list is empty");
is($t->post_json('/affiliate/links', { target_url => 'https://apps.example.com/x' }, token => $tok)->{status},
    201, 'a merchant creates an affiliate link');
is($t->get('/wallet', token => $tok)->{status}, 200, '... reads its wallet');
is_problem($t->get('/admin/users', token => $tok), 403, 'admin endpoints: 403 for a merchant');

my $unknown = $t->idp_token(subject => 'never-bootstrapped');
is_problem($t->get('/leads/', token => $unknown), 404, 'a member endpoint before bootstrap: 404');
is_problem($t->get("/leads/$lead->{json}{id}", token => $unknown), 404,
    '... the hot read too');

# --- tokens refused ---------------------------------------------------------------

my $now = time;
my $hs = $t->forge_token(key => CrmTest::_slurp($t->idp_key('a')),
    claims => { iss => $ISS, aud => $CrmTest::IDP_PROJECT, sub => 'first-merchant' });
my $pub = `openssl pkey -in '@{[ $t->idp_key('a') ]}' -pubout`;
my %bad = (
    'alg none' => $t->idp_token(subject => 'first-merchant', header => { alg => 'none' }, sign => 'none'),
    'alg none with a signature' => $t->idp_token(subject => 'first-merchant', header => { alg => 'none' }),
    'HS256 with the private key as secret' => $hs,
    'HS256 with the public key as secret' => $t->forge_token(key => $pub,
        claims => { iss => $ISS, aud => $CrmTest::IDP_PROJECT, sub => 'first-merchant' }),
    'HS256 with the gateway secret but a provider subject' => $t->forge_token(
        claims => { iss => $ISS, aud => $CrmTest::IDP_PROJECT, sub => 'first-merchant' }),
    'RS512 header' => $t->idp_token(subject => 'first-merchant', header => { alg => 'RS512' }),
    'unknown kid' => $t->idp_token(subject => 'first-merchant', header => { kid => 'zzz' }),
    'no kid' => $t->idp_token(subject => 'first-merchant', header => { kid => undef }),
    'an untrusted key under a trusted kid' => $t->idp_token(key => 'c', subject => 'first-merchant',
        header => { kid => 'a' }),
    'wrong iss' => $t->idp_token(subject => 'first-merchant',
        claims => { iss => 'https://securetoken.google.com/other' }),
    'wrong aud' => $t->idp_token(subject => 'first-merchant', claims => { aud => 'other' }),
    'no iss' => $t->idp_token(subject => 'first-merchant', claims => { iss => undef }),
    'empty sub' => $t->idp_token(subject => ''),
    'sub of 129 bytes' => $t->idp_token(subject => 'x' x 129),
    'sub not a string' => $t->idp_token(claims => { sub => 12345 }),
    'expired 61 s ago' => $t->idp_token(subject => 'first-merchant', claims => { exp => $now - 61 }),
    'no exp' => $t->idp_token(subject => 'first-merchant', claims => { exp => undef }),
    'no iat' => $t->idp_token(subject => 'first-merchant', claims => { iat => undef }),
    'iat 2 min in the future' => $t->idp_token(subject => 'first-merchant', claims => { iat => $now + 120 }),
    'auth_time 2 min in the future' => $t->idp_token(subject => 'first-merchant',
        claims => { auth_time => $now + 120 }),
    'a tampered payload' => do {
        my ($h, $c, $s) = split /\./, $tok;
        my $claims = json_decode(b64url_decode($c));
        $claims->{sub} = 'someone-else';
        "$h." . b64url(json_encode($claims)) . ".$s";
    },
    'a truncated signature' => substr($tok, 0, -2),
);
for my $what (sort keys %bad) {
    refused($t->get('/auth/me', token => $bad{$what}), "GET /auth/me, $what");
}
my $before = login_log("NOT success AND reason LIKE 'idp_token_refused:%'");
for my $what ('alg none', 'unknown kid', 'expired 61 s ago', 'wrong aud') {
    refused($t->post_raw('/auth/bootstrap', '{"display_name":"x"}', 'application/json',
        token => $bad{$what}), "POST /auth/bootstrap, $what");
}
is(login_log("NOT success AND reason LIKE 'idp_token_refused:%'") - $before, 4,
    'each refused bootstrap is a failed sign-in in the login log');
like($t->psql("SELECT reason FROM crm.login_log WHERE reason LIKE 'idp_token_refused:%' ORDER BY id DESC LIMIT 1"),
    qr/audience/, '... with the reason');
is($t->psql("SELECT count(*) FROM crm.accounts WHERE idp_subject IN ('someone-else', '')"), 0,
    'no refused token made an account');
is_problem($t->post_json('/auth/bootstrap', {}, token => $member_tok), 401,
    "bootstrap with the gateway's own token: 401");
is_problem($t->post_json('/auth/bootstrap', {}), 401, 'bootstrap without a token: 401');

# within the leeway
for my $case ([iat => $now + 30], [auth_time => $now + 30], [exp => $now - 30]) {
    my $r2 = $t->get('/auth/me', token => $t->idp_token(subject => 'first-merchant',
        claims => { $case->[0] => $case->[1] }));
    is($r2->{status}, 200, "$case->[0] 30 s beyond now: within the 60 s leeway");
}
$r = $t->post_json('/auth/bootstrap', {}, token => $t->idp_token(subject => 'y' x 128));
is($r->{status}, 201, 'a subject of 128 bytes is accepted');
is($t->get('/auth/me', token => $t->idp_token(key => 'b', subject => 'first-merchant'))->{json}{id},
    $m->{id}, 'a token of the second trusted key names the same merchant');
$r = $t->get('/auth/me', token => $t->idp_token(subject => 'first-merchant',
    claims => { role => 'admin', email => 'someone@else.example' }));
is($r->{json}{role}, 'merchant', "a role claim in an ID token grants nothing");

# --- deactivated ------------------------------------------------------------------

my (undef, $admin_tok) = $t->admin;
my ($gone, $gone_tok) = $t->merchant;
is($t->patch_json("/admin/users/$gone->{id}", { is_active => JSON::PP::false }, token => $admin_tok)->{status},
    200, 'an admin deactivates a merchant');
is_problem($t->get('/auth/me', token => $gone_tok), 401, "... whose tokens stop working");
is_problem($t->post_json('/auth/bootstrap', {}, token => $gone_tok), 401, '... bootstrap too');
is(login_log("account_id = '$gone->{id}' AND NOT success AND reason = 'inactive_account'"), 1,
    '... which the login log records');

# --- keys: reload, certificate maps, nginx -t ---------------------------------------

$t->reconfigure(conf => { crm_idp_keys_file => $t->write_jwks("$d/idp-jwks-b.json", 'b') })
    or BAIL_OUT('reload with key b alone failed');
refused($t->get('/auth/me', token => $tok), 'after a reload without key a, its tokens');
is($t->get('/auth/me', token => $t->idp_token(key => 'b', subject => 'first-merchant'))->{status}, 200,
    '... while key b still works');

$t->reconfigure(conf => { crm_idp_keys_file => $t->write_idp_certs("$d/idp-certs.json", 'c', 'a') })
    or BAIL_OUT('reload with a certificate map failed');
is($t->get('/auth/me', token => $t->idp_token(key => 'c', subject => 'first-merchant'))->{status}, 200,
    "Google's certificate map format: a token of its key c works");
is($t->get('/auth/me', token => $tok)->{status}, 200, '... and a of the same map');
refused($t->get('/auth/me', token => $t->idp_token(key => 'b', subject => 'first-merchant')),
    '... b, no longer in the file');

$t->reconfigure(conf => { crm_idp_issuer => 'https://issuer.example/' })
    or BAIL_OUT('reload with crm_idp_issuer failed');
refused($t->get('/auth/me', token => $tok), 'with crm_idp_issuer set, Firebase\'s issuer');
is($t->get('/auth/me', token => $t->idp_token(subject => 'other-issuer',
    claims => { iss => 'https://issuer.example/' }))->{status}, 404,
    '... the configured one is accepted (and is another identity: 404 before its bootstrap)');
$t->reconfigure(conf => { crm_idp_issuer => undef }) or BAIL_OUT('reload failed');

# "nginx -t" writes its refusals to the running server's log too
$t->allow_log(qr/\[emerg\].*(?:crm_idp_keys_file|crm_idp_project_id)/);
my %bad_files = (
    'not JSON' => ['{"keys":', qr/not a JSON document/],
    'no key' => ['{"keys":[]}', qr/no RSA signature key/],
    'a 1024-bit key' => [json_encode({ keys => [ do {
        $t->idp_key('small', bits => 1024); $t->idp_jwk('small') } ] }), qr/key "small" has 1024 bits/],
    'a repeated kid' => [json_encode({ keys => [ $t->idp_jwk('a'), $t->idp_jwk('b', kid => 'a') ] }),
        qr/key id "a" appears twice/],
    'a map entry that is not a certificate' => ['{"k1":"-----BEGIN CERTIFICATE-----\nnope\n"}',
        qr/key "k1" is not a PEM certificate/],
);
for my $what (sort keys %bad_files) {
    my $file = "$d/bad-keys.json";
    CrmTest::_write_file($file, $bad_files{$what}[0]);
    $t->write_config(conf => { crm_idp_keys_file => $file });
    my ($ok, $out) = $t->nginx_test_config;
    ok(!$ok, "nginx -t refuses a keys file with $what");
    like($out, qr/invalid "crm_idp_keys_file" file "\Q$file\E": /, '... naming the directive and the file');
    like($out, $bad_files{$what}[1], '... and what is wrong');
}
$t->write_config(conf => { crm_idp_keys_file => "$d/no-such-file.json" });
my ($ok, $out) = $t->nginx_test_config;
like($out, qr/cannot open "crm_idp_keys_file" "\Q$d\E\/no-such-file\.json"/, 'nginx -t: a missing keys file, named');
$t->write_config(conf => { crm_idp_keys_file => $t->write_jwks("$d/idp-jwks.json", 'a'),
    crm_idp_project_id => undef });
($ok, $out) = $t->nginx_test_config;
like($out, qr/"crm_idp_project_id" needs "crm_idp_keys_file" or "crm_idp_keys_url", and the keys file needs the project/,
    'nginx -t: keys without a project');
$t->write_config(conf => { $t->idp_conf('a', 'b'), crm_idp_project_id => '"has space"' });
($ok, $out) = $t->nginx_test_config;
like($out, qr/"crm_idp_project_id" must be at most 64 printable characters/,
    'nginx -t: a project id with a space is refused');
$t->write_config(conf => { $t->idp_conf('a', 'b') });
ok(scalar $t->nginx_test_config, 'and the good configuration passes again');

# --- nothing secret in the log ----------------------------------------------------

my $sig = (split /\./, $tok)[2];
unlike($t->error_log, qr/\Q$sig\E/, 'no token signature in the error log');

$t->done;

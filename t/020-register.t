#!/usr/bin/perl
# POST /auth/register: who may sign up, with what, and what comes back.

use strict;
use warnings;
use utf8;

use Test::More;
use CrmTest;

my $t = CrmTest->new->start;

my $PW = 'correct horse battery';

# --- a member signs up ------------------------------------------------------

my $r = $t->post_json('/auth/register',
    { email => '  Alice.Smith@Example.COM ', password => $PW, full_name => 'Alice Smith' });
my $a = is_json_response($r, 201, 'register: 201 JSON');
ok(is_uuid($a->{id}), 'id is a UUID');
is($a->{email}, 'alice.smith@example.com', 'email is trimmed and lower-cased');
is($a->{full_name}, 'Alice Smith', 'full_name as sent');
is($a->{role}, 'member', 'a new account is a member');
ok(JSON::PP::is_bool($a->{is_active}) && $a->{is_active}, 'is_active is true');
ok(is_rfc3339_utc($a->{created_at}), "created_at is RFC 3339 UTC ($a->{created_at})");

sub secret_keys {
    my ($v) = @_;
    return () unless ref $v eq 'HASH';
    return grep { /pass|hash|secret|salt/i } keys %$v;
}
is_deeply([secret_keys($a)], [], 'no password or hash member in the account');
unlike($r->{content}, qr/\Q$PW\E|argon2|\$2b\$/, 'the body never echoes the password or a hash');

my $row = $t->psql("SELECT email, role, is_active, password_hash FROM crm.accounts WHERE id = '$a->{id}'");
my ($db_email, $db_role, $db_active, $db_hash) = split /\|/, $row, 4;
is($db_email, 'alice.smith@example.com', 'stored email is normalised');
is("$db_role $db_active", 'member t', 'stored as an active member');
like($db_hash, qr/^\$argon2id\$/, 'password stored as an argon2id hash');
unlike($db_hash, qr/\Q$PW\E/, 'the hash does not contain the password');

# --- duplicates -------------------------------------------------------------

is_problem($t->post_json('/auth/register', { email => 'alice.smith@example.com', password => $PW }),
    409, 'the same email again: 409');
is_problem($t->post_json('/auth/register', { email => "   ALICE.smith\@EXAMPLE.com  ", password => 'other password' }),
    409, 'the same email in other case and whitespace: 409');
is($t->psql(q{SELECT count(*) FROM crm.accounts WHERE email = 'alice.smith@example.com'}), 1,
    'still one account for that email');

# --- optional and unusual but valid input --------------------------------------

$r = $t->post_json('/auth/register', { email => $t->unique_email('noname'), password => $PW });
is($r->{status}, 201, 'full_name is optional');

my $name = 'Zoë 山田 — O\'Brien "the" \\ rep';
$r = $t->post_json('/auth/register', { email => $t->unique_email('utf8'), password => $PW, full_name => $name });
is($r->{status}, 201, 'UTF-8 full_name accepted');
is($r->{json}{full_name}, $name, 'UTF-8, quotes and backslashes round-trip');

$r = $t->post_raw('/auth/register',
    json_encode({ email => $t->unique_email('charset'), password => $PW }),
    'application/json; charset=utf-8');
is($r->{status}, 201, 'Content-Type with charset=utf-8 accepted');

my $e1 = $t->register(email => $t->unique_email('salt1'), password => 'same password 1');
my $e2 = $t->register(email => $t->unique_email('salt2'), password => 'same password 1');
my @h = $t->psql("SELECT password_hash FROM crm.accounts WHERE id IN ('$e1->{id}', '$e2->{id}')");
isnt($h[0], $h[1], 'the same password gives two different (salted) hashes');

# --- password length: 8..128 characters ----------------------------------------

is_problem($t->post_json('/auth/register', { email => $t->unique_email, password => 'x' x 7 }),
    422, 'password of 7 characters: 422', field => 'password');
is($t->post_json('/auth/register', { email => $t->unique_email, password => 'x' x 8 })->{status},
    201, 'password of 8 characters: 201');
is($t->post_json('/auth/register', { email => $t->unique_email, password => 'x' x 128 })->{status},
    201, 'password of 128 characters: 201');
is_problem($t->post_json('/auth/register', { email => $t->unique_email, password => 'x' x 129 }),
    422, 'password of 129 characters: 422', field => 'password');
is_problem($t->post_json('/auth/register', { email => $t->unique_email, password => '' }),
    422, 'empty password: 422', field => 'password');

# --- invalid email ------------------------------------------------------------------

for my $bad ('not-an-email', 'a@', '@example.com', 'a b@example.com', '', '   ',
             'a@@example.com', ('x' x 250) . '@example.com') {
    my $shown = length $bad > 30 ? substr($bad, 0, 20) . '...' : $bad;
    is_problem($t->post_json('/auth/register', { email => $bad, password => $PW }),
        422, "email '$shown': 422", field => 'email');
}

# --- wrong types, missing and unknown fields ----------------------------------

my %wrong = (
    'email is a number'     => [{ email => 123, password => $PW }, 'email'],
    'email is true'         => [{ email => JSON::PP::true, password => $PW }, 'email'],
    'email is null'         => [{ email => undef, password => $PW }, 'email'],
    'email is an object'    => [{ email => { a => 1 }, password => $PW }, 'email'],
    'email is an array'     => [{ email => ['a@example.com'], password => $PW }, 'email'],
    'password is a number'  => [{ email => $t->unique_email, password => 12345678 }, 'password'],
    'full_name is a number' => [{ email => $t->unique_email, password => $PW, full_name => 5 }, 'full_name'],
    'missing email'         => [{ password => $PW }, 'email'],
    'missing password'      => [{ email => $t->unique_email }, 'password'],
    'unknown field'         => [{ email => $t->unique_email, password => $PW, nickname => 'x' }, 'nickname'],
);
for my $case (sort keys %wrong) {
    my ($body, $field) = @{ $wrong{$case} };
    is_problem($t->post_json('/auth/register', $body), 422, "$case: 422", field => $field);
}

is_problem($t->post_raw('/auth/register', '{}', 'application/json'), 422, 'empty object: 422');

# a client can never make itself an admin, or anything else it chooses
for my $extra ([role => 'admin'], [is_active => JSON::PP::false], [id => '00000000-0000-4000-8000-000000000000']) {
    my $email = $t->unique_email('self-promote');
    my $r2 = $t->post_json('/auth/register', { email => $email, password => $PW, @$extra });
    is_problem($r2, 422, "register with \"$extra->[0]\": 422 unknown field", field => $extra->[0]);
    is($t->psql("SELECT count(*) FROM crm.accounts WHERE email = '$email'"), 0,
        "  ... and no account was created");
}

is_problem($t->post_raw('/auth/register', json_encode([{ email => $t->unique_email, password => $PW }]),
    'application/json'), 422, 'top-level array: 422');
is_problem($t->post_raw('/auth/register', '"a@example.com"', 'application/json'),
    422, 'top-level string: 422');

# --- transport-level problems (more in 060-bad-input.t) ---------------------------

is_problem($t->post_raw('/auth/register', '{"email": "a@example.com", "password": ', 'application/json'),
    400, 'malformed JSON: 400');
is_problem($t->post_raw('/auth/register', json_encode({ email => $t->unique_email, password => $PW }), 'text/plain'),
    415, 'Content-Type text/plain: 415');

# --- the account list has exactly what succeeded ---------------------------------

is($t->psql(q{SELECT count(*) FROM crm.accounts WHERE email !~ '^[a-z0-9._-]+@example\.com$'}), 0,
    'no account with an unnormalised email was stored');

$t->done;

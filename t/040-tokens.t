#!/usr/bin/perl
# Bearer tokens on GET /auth/me: only our own, unexpired, HS256 tokens for
# an existing active account open it; everything else is a 401 with
# WWW-Authenticate: Bearer.

use strict;
use warnings;

use Digest::SHA qw(hmac_sha256);
use Test::More;
use CrmTest;

my $t = CrmTest->new->start;

my ($acc, $token) = $t->member(full_name => 'Dana');
my $sub = $acc->{id};
my $now = time;

sub unauthorized {
    my ($res, $what) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_problem($res, 401, "$what: 401");
    like($res->{headers}{'www-authenticate'} // '', qr/^Bearer\b/, "$what: WWW-Authenticate: Bearer");
}

sub me { $t->request('GET', '/auth/me', headers => { Authorization => $_[0] }) }

# --- what works ---------------------------------------------------------------------

my $r = $t->get('/auth/me', token => $token);
my $me = is_json_response($r, 200, 'token from /auth/login: 200');
is_deeply($me, $acc, '/auth/me is the account as registered');

$r = $t->get('/auth/me', token => $t->forge_token(claims => { sub => $sub, role => 'member' }));
is($r->{status}, 200, 'a token we sign with the configured secret: 200');
is($r->{json}{id}, $sub, '... for the account in sub');

$r = $t->get('/auth/me', token => $t->forge_token(claims => { sub => $sub, exp => $now + 30 }));
is($r->{status}, 200, 'a token expiring in 30 s: 200');

$r = me("bearer $token");
is($r->{status}, 200, 'the scheme is case-insensitive ("bearer")');

# --- what does not ---------------------------------------------------------------------

unauthorized($t->get('/auth/me'), 'no Authorization header');
unauthorized(me(''), 'empty Authorization header');
unauthorized(me('Bearer'), 'Bearer without a token');
unauthorized(me('Bearer '), 'Bearer and a space');
unauthorized(me("Basic " . MIME::Base64::encode_base64("$acc->{email}:x", '')), 'Basic credentials');
unauthorized(me("Token $token"), 'another scheme with a good token');
unauthorized(me('Bearer garbage'), 'garbage token');
unauthorized(me('Bearer a.b.c'), 'three garbage parts');
unauthorized(me('Bearer ' . ('A' x 6000)), 'a 6000-byte token');
unauthorized(me("Bearer $token.x"), 'four parts');
unauthorized(me("Bearer $token $token"), 'two tokens');

my ($h64, $c64, $s64) = split /\./, $token;
my $flip = substr($s64, 0, 1) eq 'A' ? 'B' : 'A';
unauthorized(me("Bearer $h64.$c64." . $flip . substr($s64, 1)), 'signature tampered');
unauthorized(me("Bearer $h64.$c64."), 'signature removed');
{
    my (undef, $claims) = $t->decode_jwt($token);
    $claims->{role} = 'admin';
    unauthorized(me("Bearer $h64." . b64url(json_encode($claims)) . ".$s64"),
        'payload changed (role admin), old signature');
    $claims->{role} = 'member';
    $claims->{exp} += 86400;
    unauthorized(me("Bearer $h64." . b64url(json_encode($claims)) . ".$s64"),
        'payload changed (exp later), old signature');
}

my %c = (sub => $sub, role => 'member');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => { %c, exp => $now - 3600, iat => $now - 7200 })),
    'expired an hour ago');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => { %c, exp => undef })),
    'no exp');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => { %c, exp => "" . ($now + 3600) })),
    'exp as a string');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => { %c, iat => $now + 3600, exp => $now + 7200 })),
    'issued an hour in the future');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => { %c, nbf => $now + 3600 })),
    'not valid before an hour from now');

unauthorized($t->get('/auth/me', token => $t->forge_token(claims => \%c, header => { alg => 'none' })),
    'alg none, no signature');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => \%c, header => { alg => 'none' }, sign => 'HS256')),
    'alg none, with a valid HS256 signature');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => \%c, header => { alg => 'NONE' })),
    'alg NONE');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => \%c, header => { alg => 'HS512' })),
    'alg HS512 signed with the secret');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => \%c, header => { alg => 'HS512' }, sign => 'HS256')),
    'alg HS512 in the header, HS256 signature');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => \%c, header => { alg => 'RS256' }, sign => 'HS256')),
    'alg RS256 in the header, HS256 signature');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => \%c, header => { alg => undef }, sign => 'HS256')),
    'no alg');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => \%c, header => { crit => ['exp'] })),
    'crit header');

unauthorized($t->get('/auth/me', token => $t->forge_token(claims => { %c, iss => 'someone-else' })),
    'wrong iss');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => { %c, iss => undef })),
    'no iss');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => { %c, aud => 'other-api' })),
    'wrong aud');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => { %c, aud => undef })),
    'no aud');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => \%c, key => 'x' x 64)),
    'signed with another key');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => \%c, key => $t->jwt_secret . "\n")),
    'signed with the secret plus a newline');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => \%c, key => '')),
    'signed with an empty key');

unauthorized($t->get('/auth/me', token => $t->forge_token(claims => { %c, sub => '00000000-0000-4000-8000-000000000000' })),
    'sub of an account that does not exist');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => { %c, sub => 'not-a-uuid' })),
    'sub not a UUID');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => { %c, sub => "$sub' OR '1'='1" })),
    'sub with SQL in it');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => { %c, sub => undef })),
    'no sub');

# --- the role comes from the database, not from the token ------------------------------

my $fake_admin = $t->forge_token(claims => { sub => $sub, role => 'admin' });
is_problem($t->get('/admin/users', token => $fake_admin), 403,
    'a member with role "admin" in a validly signed token: /admin/users is 403');

# --- the secret file's trailing newline is not part of the key ---------------------------

$t->write_secret(newline => 1);
ok($t->reload, 'reload with the secret file ending in a newline');
$r = $t->get('/auth/me', token => $t->forge_token(claims => \%c));
is($r->{status}, 200, 'a token signed with the secret without the newline: 200');

# --- a new secret invalidates the old tokens -------------------------------------------

my $old_secret = $t->jwt_secret;
$t->write_secret(secret => join '', map { sprintf '%02x', int rand 256 } 1 .. 32);
ok($t->reload, 'reload with a new secret');
unauthorized($t->get('/auth/me', token => $token), 'after rotation, the old login token');
unauthorized($t->get('/auth/me', token => $t->forge_token(claims => \%c, key => $old_secret)),
    'after rotation, a token signed with the old secret');
is($t->get('/auth/me', token => $t->forge_token(claims => \%c))->{status}, 200,
    'after rotation, a token signed with the new secret: 200');
my $fresh = $t->login($acc->{email}, 'correct horse battery');
is($t->get('/auth/me', token => $fresh)->{status}, 200, 'after rotation, a fresh login works');

$t->done;

#!/usr/bin/perl
# The admin surface: crm-admin makes the first admin; GET /admin/users
# pages through accounts; PATCH /admin/users/{id} changes role and activity,
# with immediate effect on existing tokens.

use strict;
use warnings;

use Test::More;
use CrmTest;

my $t = CrmTest->new->start;

my $NIL = '00000000-0000-4000-8000-000000000000';

# --- crm-admin: the documented way to the first admin ---------------------------------

my $admin_email = $t->unique_email('root');
is($t->crm_admin($admin_email, 'admin password 123'), 0, 'crm-admin creates an admin')
    or diag($t->{admin_output});
my $admin_tok = $t->login($admin_email, 'admin password 123');
my $admin = $t->get('/auth/me', token => $admin_tok)->{json};
is($admin->{role}, 'admin', 'the new account is an admin');
ok($admin->{is_active}, '... and active');

# promote an existing, deactivated member
my ($m0, $m0_tok) = $t->member;
$t->psql("UPDATE crm.accounts SET is_active = false WHERE id = '$m0->{id}'");
is($t->crm_admin($m0->{email}), 0, 'crm-admin promotes an existing account')
    or diag($t->{admin_output});
my $r = $t->get('/auth/me', token => $m0_tok);
is($r->{status}, 200, 'the promoted account is active again');
is($r->{json}{role}, 'admin', '... and an admin');

# generated password: printed once, and it works
my $gen_email = $t->unique_email('generated');
is($t->crm_admin($gen_email), 0, 'crm-admin without CRM_ADMIN_PASSWORD generates a password');
my @words = grep { length >= 8 } split /[\s"':=,]+/, $t->{admin_output} // '';
splice @words, 30 if @words > 30;
my ($gen_tok) = grep { defined } map {
    my $res = $t->post_json('/auth/login', { email => $gen_email, password => $_ });
    $res->{status} == 200 ? $res->{json}{access_token} : undef;
} grep { $_ ne $gen_email && !/\Q$gen_email\E/ } @words;
ok($gen_tok, 'the printed password logs in') or diag($t->{admin_output});

# --- access ---------------------------------------------------------------------------

my ($mem, $mem_tok) = $t->member(full_name => 'Member One');

$r = $t->get('/admin/users');
is_problem($r, 401, 'GET /admin/users without a token: 401');
like($r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/, '... with WWW-Authenticate: Bearer');
is_problem($t->get('/admin/users', token => $mem_tok), 403, 'GET /admin/users as a member: 403');
is_problem($t->patch_json("/admin/users/$mem->{id}", { role => 'admin' }, token => $mem_tok), 403,
    'PATCH /admin/users/{id} as a member (on itself, to admin): 403');
is_problem($t->patch_json("/admin/users/$mem->{id}", { role => 'admin' }), 401,
    'PATCH /admin/users/{id} without a token: 401');
is($t->get('/auth/me', token => $mem_tok)->{json}{role}, 'member', 'the member is still a member');

# --- listing ------------------------------------------------------------------------

$r = $t->get('/admin/users', token => $admin_tok);
my $page = is_json_response($r, 200, 'GET /admin/users as admin: 200');
ok(ref $page->{items} eq 'ARRAY', 'items is an array');
ok(exists $page->{next_cursor}, 'next_cursor is present');
my ($listed) = grep { $_->{id} eq $mem->{id} } @{ $page->{items} || [] };
is_deeply($listed, $mem, 'a listed account looks like the account itself');
is_deeply([grep { /pass|hash/i } map { keys %$_ } @{ $page->{items} || [] }], [],
    'no password or hash member in any listed account');

# 60 more accounts in one transaction: equal created_at, so the id breaks ties
$t->psql(q{INSERT INTO crm.accounts (email, full_name)
           SELECT 'bulk' || g || '@example.com', 'Bulk ' || g FROM generate_series(1, 60) g});
my @all = $t->psql('SELECT id FROM crm.accounts ORDER BY created_at, id');
cmp_ok(scalar @all, '>', 60, scalar(@all) . ' accounts in the database');

$r = $t->get('/admin/users', token => $admin_tok);
is(scalar @{ $r->{json}{items} || [] }, 50, 'default page size is 50');
ok(defined $r->{json}{next_cursor} && !ref $r->{json}{next_cursor} && length $r->{json}{next_cursor},
    '... with a next_cursor');
is_deeply([map { $_->{id} } @{ $r->{json}{items} || [] }], [@all[0 .. 49]],
    'the first page is the 50 oldest accounts, oldest first');

$r = $t->get('/admin/users?limit=200', token => $admin_tok);
is_deeply([map { $_->{id} } @{ $r->{json}{items} || [] }], \@all, 'limit=200: every account in order');
ok(!defined $r->{json}{next_cursor} && exists $r->{json}{next_cursor}, '... and next_cursor null');

for my $limit (1, 7) {
    my (@seen, $cursor, $pages, $bad);
    for (1 .. 200) {
        my $q = "/admin/users?limit=$limit" . (defined $cursor ? '&cursor=' . uri_escape($cursor) : '');
        my $res = $t->get($q, token => $admin_tok);
        if ($res->{status} != 200) { $bad = "$q: $res->{status} $res->{content}"; last }
        my $items = $res->{json}{items};
        $pages++;
        if (@$items > $limit) { $bad = "$q: " . scalar(@$items) . " items"; last }
        push @seen, map { $_->{id} } @$items;
        $cursor = $res->{json}{next_cursor};
        last unless defined $cursor;
        if (!@$items) { $bad = "$q: empty page with a cursor"; last }
    }
    ok(!$bad, "limit=$limit: every page answered") or diag($bad);
    my %dup;
    is_deeply([grep { $dup{$_}++ } @seen], [], "limit=$limit: no account twice ($pages pages)");
    is_deeply(\@seen, \@all, "limit=$limit: every account once, oldest first");
}

sub uri_escape { my $s = shift; $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge; $s }

for my $limit ('0', '201', 'abc', '-1', '', '1.5', '10abc', '99999999999999999999') {
    is_problem($t->get("/admin/users?limit=$limit", token => $admin_tok), 422,
        "limit=$limit: 422", field => 'limit');
}
for my $cursor ('garbage', 'AAAA', ('x' x 500), uri_escape(MIME::Base64::encode_base64('{"a":1}', ''))) {
    my $shown = length $cursor > 20 ? substr($cursor, 0, 10) . '...' : $cursor;
    is_problem($t->get("/admin/users?cursor=$cursor", token => $admin_tok), 422,
        "cursor=$shown: 422", field => 'cursor');
}

$r = $t->get('/admin/users?cursor=%00', token => $admin_tok);
ok($r->{status} == 400 || $r->{status} == 422, 'cursor=%00 (a NUL byte): 400 or 422')
    or diag("$r->{status} $r->{content}");

# --- PATCH: role ---------------------------------------------------------------------

$r = $t->patch_json("/admin/users/$mem->{id}", { role => 'admin' }, token => $admin_tok);
my $u = is_json_response($r, 200, 'promote a member to admin: 200');
is($u->{id}, $mem->{id}, 'the updated account is returned');
is($u->{role}, 'admin', '... with role admin');
is($t->get('/admin/users', token => $mem_tok)->{status}, 200,
    "the promoted member's existing token opens /admin/users at once");

$r = $t->patch_json("/admin/users/$mem->{id}", { role => 'merchant' }, token => $admin_tok);
is($r->{status}, 200, 'role merchant: 200');
is($r->{json}{role}, 'merchant', '... and it is a merchant');
is_problem($t->get('/admin/users', token => $mem_tok), 403, 'the demoted account is refused at once: 403');
is($t->get('/auth/me', token => $mem_tok)->{json}{role}, 'merchant', '/auth/me shows the new role');

$r = $t->patch_json("/admin/users/$mem->{id}", { role => 'member' }, token => $admin_tok);
is($r->{json}{role}, 'member', 'back to member: 200');

for my $bad ('superuser', 'Admin', '', 'ADMIN') {
    is_problem($t->patch_json("/admin/users/$mem->{id}", { role => $bad }, token => $admin_tok), 422,
        "role '$bad': 422", field => 'role');
}
is_problem($t->patch_json("/admin/users/$mem->{id}", { role => 1 }, token => $admin_tok), 422,
    'role as a number: 422', field => 'role');
is_problem($t->patch_json("/admin/users/$mem->{id}", { role => undef }, token => $admin_tok), 422,
    'role null: 422', field => 'role');
is_problem($t->patch_json("/admin/users/$mem->{id}", { is_active => 'false' }, token => $admin_tok), 422,
    'is_active as a string: 422', field => 'is_active');
is_problem($t->patch_json("/admin/users/$mem->{id}", { is_active => 0 }, token => $admin_tok), 422,
    'is_active as a number: 422', field => 'is_active');
is_problem($t->patch_json("/admin/users/$mem->{id}", { email => 'x@example.com' }, token => $admin_tok), 422,
    'unknown field email: 422', field => 'email');
is_problem($t->patch_json("/admin/users/$mem->{id}", { password_hash => 'x' }, token => $admin_tok), 422,
    'unknown field password_hash: 422', field => 'password_hash');
is_problem($t->request('PATCH', "/admin/users/$mem->{id}", content => '{"role":', token => $admin_tok,
    headers => { 'Content-Type' => 'application/json' }), 400, 'malformed JSON: 400');
is($t->get('/auth/me', token => $mem_tok)->{json}{role}, 'member', 'none of the rejected PATCHes changed the role');

# --- PATCH: unknown targets ------------------------------------------------------------

is_problem($t->patch_json("/admin/users/$NIL", { role => 'admin' }, token => $admin_tok), 404,
    'unknown account id: 404');
is_problem($t->patch_json('/admin/users/not-a-uuid', { role => 'admin' }, token => $admin_tok), 404,
    'non-UUID id: 404');
is_problem($t->patch_json("/admin/users/$mem->{id}x", { role => 'admin' }, token => $admin_tok), 404,
    'UUID with a trailing character: 404');
is_problem($t->patch_json("/admin/users/%27%20OR%201=1--", { role => 'admin' }, token => $admin_tok), 404,
    'SQL in the id: 404');

# --- PATCH: the admin and itself ---------------------------------------------------------

is_problem($t->patch_json("/admin/users/$admin->{id}", { role => 'member' }, token => $admin_tok), 409,
    'an admin changing its own role: 409');
is_problem($t->patch_json("/admin/users/$admin->{id}", { is_active => JSON::PP::false }, token => $admin_tok), 409,
    'an admin deactivating itself: 409');
$r = $t->get('/auth/me', token => $admin_tok);
is("$r->{json}{role} " . ($r->{json}{is_active} ? 1 : 0), 'admin 1', 'the admin is unchanged');

# --- PATCH: is_active ---------------------------------------------------------------------

my $mem_pw = 'correct horse battery';
$r = $t->patch_json("/admin/users/$mem->{id}", { is_active => JSON::PP::false }, token => $admin_tok);
is($r->{status}, 200, 'deactivate a member: 200');
ok(JSON::PP::is_bool($r->{json}{is_active}) && !$r->{json}{is_active}, '... is_active false');
$r = $t->get('/auth/me', token => $mem_tok);
is_problem($r, 401, "the deactivated member's existing token: 401");
like($r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/, '... with WWW-Authenticate: Bearer');
is_problem($t->post_json('/auth/login', { email => $mem->{email}, password => $mem_pw }), 401,
    'the deactivated member cannot log in');

$r = $t->patch_json("/admin/users/$mem->{id}", { is_active => JSON::PP::true, role => 'merchant' }, token => $admin_tok);
is($r->{status}, 200, 'reactivate and change role in one PATCH: 200');
is(($r->{json}{is_active} ? 'active' : 'inactive') . " $r->{json}{role}", 'active merchant', '... both applied');
is($t->get('/auth/me', token => $t->login($mem->{email}, $mem_pw))->{status}, 200,
    'the reactivated account logs in again');

# the admin's own listing shows the state too
$r = $t->get('/admin/users?limit=200', token => $admin_tok);
($listed) = grep { $_->{id} eq $mem->{id} } @{ $r->{json}{items} || [] };
is($listed->{role}, 'merchant', 'the list shows the new role');

# a second admin can demote the first, and then the first is refused
my ($adm2, $adm2_tok) = $t->admin;
is($t->patch_json("/admin/users/$admin->{id}", { role => 'member' }, token => $adm2_tok)->{status}, 200,
    'a second admin demotes the first: 200');
is_problem($t->get('/admin/users', token => $admin_tok), 403, 'the demoted admin is refused at once: 403');

# --- the audit log records the changes ---------------------------------------------------

cmp_ok($t->psql("SELECT count(*) FROM crm.audit_log WHERE object_id = '$mem->{id}'"), '>=', 1,
    'audit_log has rows for the PATCHed account');

$t->done;

#!/usr/bin/perl
# Creatio integrations against a strict stand-in (t/lib/MockCrm.pm): the
# cookie session of AuthService.svc/Login (a wrong password answers 200
# with a non-zero Code), OData with the cookies and the BPMCSRF header,
# and the instance_url a user supplies: https only, no local names, and
# never a private address, checked where the call connects.

use strict;
use warnings;

use Test::More;
use CrmTest;
use MockCrm;

my $t = CrmTest->new;
my $mock = MockCrm->new(dir => $t->dir);

$t->start_db;
$t->write_config(conf => { crm_outbound_allow => '127.0.0.0/8', crm_outbound_connect_timeout => '1s',
    crm_outbound_timeout => '3s' });
$t->start_nginx;

my (undef, $tok) = $t->member;

sub creatio {
    my (%o) = @_;
    my %c = (instance_url => $mock->url, username => $mock->creatio_user,
        password => $mock->creatio_password, %{ $o{credentials} || {} });
    delete $c{$_} for grep { !defined $c{$_} } keys %c;
    return { crm_type => 'creatio', credentials => \%c, ($o{settings} ? (settings => $o{settings}) : ()) };
}

# --- validate ---------------------------------------------------------------------

my $r = $t->post_json('/crm/validate', creatio(), token => $tok);
my $v = is_json_response($r, 200, 'POST /crm/validate for Creatio: 200');
is_deeply($v->{account}, { instance_url => $mock->url, user_name => $mock->creatio_user },
    '... the instance and the user');

my ($login, $odata) = @{ $mock->requests }[-2, -1];
is("$login->{method} $login->{path}", 'POST /ServiceModel/AuthService.svc/Login', 'AuthService.svc/Login');
like($login->{headers}{'content-type'}, qr{^application/json; charset=utf-8$}, '... JSON, utf-8');
is($login->{headers}{forceusesession}, 'true', '... ForceUseSession: true');
is_deeply(json_decode($login->{body}), { UserName => $mock->creatio_user,
    UserPassword => $mock->creatio_password }, '... UserName and UserPassword, JSON-escaped');
is("$odata->{method} $odata->{path}", 'GET /0/odata/Contact', 'then OData 4 Contact');
like($odata->{headers}{cookie}, qr/\.ASPXAUTH=\w+/, '... with the session cookies');
like($odata->{headers}{cookie}, qr/BPMCSRF=(\w+)/, '... BPMCSRF among them');
my ($csrf) = $odata->{headers}{cookie} =~ /BPMCSRF=(\w+)/;
is($odata->{headers}{bpmcsrf}, $csrf, '... and as the BPMCSRF header');

$r = $t->post_json('/crm/validate', creatio(credentials => { password => 'wrong' }), token => $tok);
is_problem($r, 422, 'a wrong password (Creatio answers 200, Code 1): 422', field => 'credentials');
like($r->{json}{detail}, qr/Creatio refused the login: Invalid username or password/, '... with its message');

$r = $t->post_json('/crm/validate', creatio(settings => { odata_path => '/odata' }), token => $tok,
    allow_5xx => 1);
is_problem($r, 502, 'an odata_path where the instance has nothing: 502');

# --- the instance URL ---------------------------------------------------------------

my @bad = (
    [creatio(credentials => { instance_url => 'ftp://creatio.example' }), 'credentials.instance_url', 'ftp'],
    [creatio(credentials => { instance_url => 'https://creatio.example/?a=1' }), 'credentials.instance_url',
        'a query'],
    [creatio(credentials => { instance_url => 'https://localhost' }), 'credentials.instance_url',
        'localhost by name'],
    [creatio(credentials => { instance_url => 'https://crm.corp.internal' }), 'credentials.instance_url',
        'an .internal name'],
    [creatio(credentials => { instance_url => 'https://printer.local' }), 'credentials.instance_url',
        'a .local name'],
    [creatio(credentials => { instance_url => undef }), 'credentials.instance_url', 'no instance_url'],
    [creatio(credentials => { extra => 'x' }), 'credentials.extra', 'an unknown credential'],
    [creatio(settings => { odata_path => '../x' }), 'settings.odata_path', 'an odata_path that is not a path'],
);
for my $b (@bad) {
    is_problem($t->post_json('/crm/validate', $b->[0], token => $tok), 422, "instance $b->[2]: 422",
        field => $b->[1]);
}

# without the allow list: private addresses, and plain http, are refused
$t->reconfigure(conf => { crm_outbound_allow => undef }) or BAIL_OUT('reload failed');
my $port = $mock->port;
for my $case (["https://127.0.0.1:$port", 'https://127.0.0.1'], ["https://10.0.0.1", 'https://10.0.0.1'],
    ["https://[::1]:$port", 'https://[::1]'], ["https://169.254.169.254", 'the cloud metadata address'])
{
    $r = $t->post_json('/crm/validate', creatio(credentials => { instance_url => $case->[0] }), token => $tok);
    is_problem($r, 422, "instance_url $case->[1]: 422", field => 'credentials.instance_url');
    like($r->{json}{detail} // '', qr/not a public one/, '... not a public address');
}
$r = $t->post_json('/crm/validate', creatio(), token => $tok);
is_problem($r, 422, 'instance_url http://127.0.0.1 without the allow list: 422', field => 'credentials.instance_url');
SKIP: {
    my $host = `hostname`;
    chomp $host;
    my $addr = (split ' ', `getent hosts '$host'` // '')[0] // '';
    # a name with a dot (a single label is not a public name, refused
    # before any call) that the machine resolves itself, without DNS
    skip "this machine's name ($host) is not a dotted name that resolves to a private address", 2
        unless $host =~ /^[a-z0-9-]+(\.[a-z0-9-]+)+$/i && $host !~ /\.(local|internal|localhost)$/
            && $addr =~ /^(127\.|10\.|192\.168\.|::1$)/;
    $r = $t->post_json('/crm/validate', creatio(credentials => { instance_url => "https://$host:$port" }),
        token => $tok);
    is_problem($r, 422, "a name that resolves to $addr ($host): 422", field => 'credentials.instance_url');
    like($r->{json}{detail} // '', qr/not a public one/, '... refused where the call connects');
}
is(scalar(grep { $_->{path} =~ /AuthService/ } @{ $mock->requests }), 3,
    'none of the refused calls reached the stand-in');
$t->reconfigure(conf => { crm_outbound_allow => '127.0.0.0/8' }) or BAIL_OUT('reload failed');

# --- connect ----------------------------------------------------------------------

$r = $t->post_json('/crm/connect', creatio(), token => $tok);
is($r->{status}, 201, 'POST /crm/connect for Creatio: 201');
my $dump = $t->pg_dump;
my $pw = $mock->creatio_password;
unlike($dump, qr/\Q$pw\E|ASPXAUTH|BPMCSRF/, 'neither the password nor the session cookies are in the database');
unlike($t->error_log, qr/\Q$pw\E|ASPXAUTH=/, '... nor in the error log');

$t->done;
$mock->stop;

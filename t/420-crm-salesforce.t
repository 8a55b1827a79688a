#!/usr/bin/perl
# Salesforce integrations against a strict stand-in (t/lib/MockCrm.pm):
# the partner SOAP login() with the security token appended and the
# values XML-escaped, the REST session check, login faults as refused
# credentials, the hosts login_url and the returned instance may name.

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

sub sf {
    my (%o) = @_;
    my %c = (username => $mock->sf_user, password => $mock->sf_password,
        security_token => $mock->sf_token, %{ $o{credentials} || {} });
    delete $c{$_} for grep { !defined $c{$_} } keys %c;
    return { crm_type => 'salesforce', credentials => \%c,
        settings => { login_url => $mock->url, %{ $o{settings} || {} } } };
}

# --- validate ---------------------------------------------------------------------

my $r = $t->post_json('/crm/validate', sf(), token => $tok);
my $v = is_json_response($r, 200, 'POST /crm/validate for Salesforce: 200');
is_deeply($v->{account}, { user_id => '0055e000001MockAA', org_id => '00D5e000000MockEAA',
    user_name => $mock->sf_user, instance_url => $mock->url }, '... the user, org and instance');

my @seen = @{ $mock->requests };
my ($login, $rest) = @seen[-2, -1];
is("$login->{method} $login->{path}", 'POST /services/Soap/u/59.0', 'login() on the partner SOAP API 59.0');
is($login->{headers}{soapaction}, 'login', '... SOAPAction: login');
like($login->{headers}{'content-type'}, qr{^text/xml; charset=UTF-8$}, '... text/xml');
like($login->{body}, qr{<n1:password>S3cret&amp;&lt;pass&gt;TOKEN123</n1:password>},
    '... the password XML-escaped, the security token appended');
is("$rest->{method} $rest->{path}", 'GET /services/data/v59.0/', 'then the REST API with the session');
like($rest->{headers}{authorization}, qr/^Bearer SESSION!/, '... as a bearer token');
unlike($r->{content}, qr/SESSION!/, 'the session id is never in a response');

$r = $t->post_json('/crm/validate', sf(credentials => { security_token => undef }), token => $tok);
is_problem($r, 422, 'without the security token Salesforce refuses: 422', field => 'credentials');
like($r->{json}{detail}, qr/Salesforce refused the login \(INVALID_LOGIN\)/, '... naming the fault');
is($r->{json}{valid}, JSON::PP::false, '... valid: false');

# --- input ------------------------------------------------------------------------

my @bad = (
    [sf(credentials => { username => undef }), 'credentials.username', 'no username'],
    [sf(credentials => { api_key => 'x' }), 'credentials.api_key', "a Klaviyo field"],
    [sf(credentials => { password => 'p' x 129 }), 'credentials.password', 'a password of 129 characters'],
    [sf(settings => { login_url => 'https://evil.example.com' }), 'settings.login_url',
        'a login_url that is not Salesforce'],
    [sf(settings => { login_url => 'http://login.salesforce.com' }), 'settings.login_url',
        'plain http to Salesforce'],
    [sf(settings => { login_url => 'https://login.salesforce.com.evil.example' }), 'settings.login_url',
        'a look-alike host'],
    [sf(settings => { login_url => 'https://10.0.0.1' }), 'settings.login_url', 'a private address'],
    [sf(settings => { external_id_field => 'Shop; DROP' }), 'settings.external_id_field',
        'an external id field that is not an API name'],
    [sf(settings => { external_id_field => 'Shop_Domain' }), 'settings.external_id_field',
        'an external id field that is not custom (__c)'],
    [sf(settings => { region => 'eu' }), 'settings.region', 'an unknown setting'],
);
my $before = @{ $mock->requests };
for my $b (@bad) {
    is_problem($t->post_json('/crm/validate', $b->[0], token => $tok), 422, "$b->[2]: 422",
        field => $b->[1]);
}
is(scalar @{ $mock->requests }, $before, '... none of them reached Salesforce');

for my $url ('https://login.salesforce.com', 'https://test.salesforce.com', 'https://acme.my.salesforce.com') {
    # Salesforce's own hosts pass, seen from the next check failing (no
    # call leaves the machine)
    my $res = $t->post_json('/crm/validate', sf(settings => { login_url => $url,
        external_id_field => 'bad name' }), token => $tok);
    is_problem($res, 422, "login_url $url is accepted", field => 'settings.external_id_field');
}

# --- provider failures -------------------------------------------------------------

$mock->mode('garbage');
$r = $t->post_json('/crm/validate', sf(), token => $tok, allow_5xx => 1);
is_problem($r, 502, 'login() answering HTML: 502');
$mock->mode('500');
$r = $t->post_json('/crm/validate', sf(), token => $tok, allow_5xx => 1);
is_problem($r, 502, 'login() failing without a SOAP fault: 502');
$mock->mode('ok');

# --- connect ----------------------------------------------------------------------

$r = $t->post_json('/crm/connect', sf(), token => $tok);
is($r->{status}, 201, 'POST /crm/connect for Salesforce: 201');
is($t->get('/crm/salesforce/status', token => $tok)->{json}{status}, 'connected', '... connected');
my $dump = $t->pg_dump;
unlike($dump, qr/\Q${\ $mock->sf_password }\E|TOKEN123|SESSION!/,
    'neither the password, the token nor the session is in the database in clear');
unlike($t->error_log, qr/S3cret|TOKEN123|SESSION!/, '... nor in the error log');
my @ops = map { "$_->{operation} $_->{outcome}" } @{ $t->get('/crm/salesforce/logs', token => $tok)->{json}{items} };
is($ops[0], 'connect ok', 'the log has the connect');

$t->done;
$mock->stop;

#!/usr/bin/perl
# The CRM stand-in itself (t/lib/MockCrm.pm), without nginx: the writes
# the gateway makes to Klaviyo, Salesforce and Creatio answered as the
# real APIs answer them, each malformed request refused with the real
# status and body shape, the state it keeps, and the test controls
# (modes for N calls, 503 and 429 with Retry-After, hang, expired
# sessions).  A stand-in that accepted what a provider refuses would
# let the gateway's bugs through every other CRM test.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use POSIX qw(strftime);
use MockCrm;

my $mock = MockCrm->new(dir => tempdir(CLEANUP => 1));
my $URL = $mock->url;
my $http = HTTP::Tiny->new(timeout => 5);
my $J = JSON::PP->new->utf8->canonical;

# one request: json => a body to encode, body => raw bytes
sub call {
    my ($method, $path, %o) = @_;
    my $body = exists $o{json} ? $J->encode($o{json}) : $o{body};
    my $r = $http->request($method, "$URL$path",
        { headers => $o{headers} || {}, defined $body ? (content => $body) : () });
    $r->{json} = eval { $J->decode($r->{content}) } if length $r->{content};
    return $r;
}

# a query value, percent-encoded as a client does
sub enc {
    my ($s) = @_;
    utf8::encode($s);
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

sub iso { strftime('%Y-%m-%dT%H:%M:%S+00:00', gmtime $_[0]) }

# --- Klaviyo -------------------------------------------------------------------------

my %KL = (Authorization => 'Klaviyo-API-Key ' . $mock->klaviyo_key, revision => '2026-10-15',
    Accept => 'application/vnd.api+json', 'Content-Type' => 'application/vnd.api+json');

sub klaviyo {
    my ($method, $path, $doc, %h) = @_;
    return call($method, $path, (defined $doc ? (json => $doc) : ()), headers => { %KL, %h });
}

sub profile { { data => { type => 'profile', attributes => {@_} } } }

sub event {
    my (%o) = @_;
    my $who = delete $o{profile} // { external_id => 'u-1' };
    return { data => { type => 'event', attributes => { properties => { source => 'gateway' },
        metric => { data => { type => 'metric', attributes => { name => 'Lead Created' } } },
        profile => { data => { type => 'profile', attributes => $who } }, %o } } };
}

# a Klaviyo refusal: the status, the errors shape, where it points
sub klaviyo_refused {
    my ($r, $status, $where, $name) = @_;
    is($r->{status}, $status, "$name: $status");
    my $e = ref $r->{json} eq 'HASH' && ref $r->{json}{errors} eq 'ARRAY' ? $r->{json}{errors}[0] : {};
    ok(defined $e->{id} && defined $e->{code} && defined $e->{title} && defined $e->{detail},
        '... in the errors shape (id, code, title, detail)');
    is_deeply($e->{source}, $where, '... naming ' . join('', %$where)) if $where;
}

my $r = klaviyo(POST => '/api/profile-import', profile(external_id => 'u-1', email => 'ann@example.com',
    first_name => 'Ann', last_name => 'Lee', properties => { ref => 'r-1' }));
is($r->{status}, 201, 'profile-import of a new profile: 201');
my $p = $r->{json}{data};
is($p->{type}, 'profile', '... a profile resource');
like($p->{id}, qr/^01[0-9A-HJKMNP-TV-Z]{24}$/, '... with an id of 01 and 24 base32 characters');
is_deeply([ @{ $p->{attributes} }{qw(external_id email first_name last_name)} ],
    [ 'u-1', 'ann@example.com', 'Ann', 'Lee' ], '... and its attributes');
is_deeply($p->{attributes}{properties}, { ref => 'r-1' }, '... properties too');
is($p->{links}{self}, "$URL/api/profiles/$p->{id}/", '... and links.self');
my $ann = $p->{id};

$r = klaviyo(POST => '/api/profile-import', profile(external_id => 'u-1', first_name => undef,
    properties => { plan => 'pro' }));
is($r->{status}, 200, 'profile-import of the same external_id: 200');
$p = $r->{json}{data};
is($p->{id}, $ann, '... the same profile');
is($p->{attributes}{first_name}, undef, '... a field sent as null is cleared');
is($p->{attributes}{last_name}, 'Lee', '... an omitted one is kept');
is($p->{attributes}{email}, 'ann@example.com', '... the email too');
is_deeply($p->{attributes}{properties}, { ref => 'r-1', plan => 'pro' }, '... properties merge key by key');

$r = klaviyo(POST => '/api/profile-import/', profile(email => 'ann@example.com', title => 'CTO'),
    'Content-Type' => 'application/json');
is($r->{status}, 200, 'by email, with a trailing slash and application/json: 200');
is($r->{json}{data}{id}, $ann, '... matched by email');

$r = klaviyo(POST => '/api/profile-import', profile(phone_number => '+15005550006'));
is($r->{status}, 201, 'a profile with only a phone number: 201');
my $bob = $r->{json}{data}{id};
isnt($bob, $ann, '... a new id');

klaviyo_refused(klaviyo(POST => '/api/profile-import', profile(email => 'a@b.co'),
    'Content-Type' => 'text/plain'), 415, undef, 'profile-import as text/plain');
klaviyo_refused(klaviyo(POST => '/api/profile-import',
    profile(email => 'a@b.co', properties => { blob => 'x' x (100 * 1024) })), 413, undef,
    'a body over 100 KB');
klaviyo_refused(klaviyo(POST => '/api/profile-import', profile(email => 'a@b.co', nickname => 'A')), 400,
    { pointer => '/data/attributes/nickname' }, 'an unknown attribute');
klaviyo_refused(klaviyo(POST => '/api/profile-import', profile(first_name => 'A', email => undef)), 400,
    { pointer => '/data/attributes' }, 'no identifier');
klaviyo_refused(klaviyo(POST => '/api/profile-import', profile(email => 'not-an-address')), 400,
    { pointer => '/data/attributes/email' }, 'a malformed email');
klaviyo_refused(klaviyo(POST => '/api/profile-import', profile(phone_number => '5005550006')), 400,
    { pointer => '/data/attributes/phone_number' }, 'a phone number not in E.164');
klaviyo_refused(klaviyo(POST => '/api/profile-import', profile(external_id => 42)), 400,
    { pointer => '/data/attributes/external_id' }, 'a number as external_id');
klaviyo_refused(klaviyo(POST => '/api/profile-import', { data => { type => 'event', attributes => {} } }),
    400, { pointer => '/data' }, 'another resource type');
klaviyo_refused(klaviyo(GET => '/api/profile-import'), 405, undef, 'GET on profile-import');

$r = klaviyo(GET => '/api/profiles?filter=' . enc('equals(external_id,"u-1")'));
is($r->{status}, 200, 'profiles by external_id: 200');
is_deeply([ map { $_->{id} } @{ $r->{json}{data} } ], [$ann], '... the one profile');
is($r->{json}{data}[0]{attributes}{title}, 'CTO', '... as stored');
ok(exists $r->{json}{links}{self}, '... with links');
$r = klaviyo(GET => '/api/profiles/?filter=' . enc('equals(email,"ann@example.com")'));
is_deeply([ map { $_->{id} } @{ $r->{json}{data} } ], [$ann], 'profiles by email');
$r = klaviyo(GET => '/api/profiles?filter=' . enc('equals(email,"nobody@example.com")'));
is($r->{status}, 200, 'profiles by an unknown email: 200');
is_deeply($r->{json}{data}, [], '... an empty list');
klaviyo_refused(klaviyo(GET => '/api/profiles?filter=' . enc('equals(first_name,"Ann")')), 400,
    { parameter => 'filter' }, 'a filter on another field');

my $soon = time - 3600;
$r = klaviyo(POST => '/api/events', event(time => iso($soon), value => 12.5, value_currency => 'USD',
    unique_id => 'c4a7f3e0-1111-4222-8333-944455556666', profile => { external_id => 'u-1',
    email => 'ann@example.com' }));
is($r->{status}, 202, 'an event: 202');
is($r->{content}, '', '... with no body');
$r = klaviyo(POST => '/api/events', event(time => iso($soon), value => 12.5, value_currency => 'USD',
    unique_id => 'c4a7f3e0-1111-4222-8333-944455556666'));
is($r->{status}, 202, 'the same event again: still 202');
(my $z = iso($soon)) =~ s/\+00:00$/Z/;
$r = klaviyo(POST => '/api/events/', event(time => $z, unique_id => 'other',
    profile => { email => 'x@y.co' }), 'Content-Type' => 'application/json');
is($r->{status}, 202, 'another event, a Z time, application/json, a trailing slash: 202');

my @bad_events = (
    [event(color => 'red'), '/data/attributes/color', 'an unknown attribute'],
    [event(properties => undef), '/data/attributes/properties', 'no properties'],
    [{ data => { type => 'event', attributes => { %{ event()->{data}{attributes} },
        metric => { data => { type => 'metric', attributes => { name => 'x' x 128 } } } } } },
        '/data/attributes/metric/data/attributes/name', 'a metric name of 128 characters'],
    [event(profile => { first_name => 'A' }), '/data/attributes/profile/data/attributes',
        'a profile without an identifier'],
    [event(time => '1989-12-31T23:59:59+00:00'), '/data/attributes/time', 'a time before 1990'],
    [event(time => iso(time + 400 * 86400)), '/data/attributes/time', 'a time over a year ahead'],
    [event(time => '2026-12-05 10:00:00'), '/data/attributes/time', 'a time that is not ISO 8601'],
    [event(value => '12.5'), '/data/attributes/value', 'a value as a string'],
    [event(value_currency => 'usd'), '/data/attributes/value_currency', 'a currency in lower case'],
    [event(unique_id => 'u' x 256), '/data/attributes/unique_id', 'a unique_id of 256 characters'],
);
for my $b (@bad_events) {
    klaviyo_refused(klaviyo(POST => '/api/events', $b->[0]), 400, { pointer => $b->[1] }, "event: $b->[2]");
}
klaviyo_refused(klaviyo(POST => '/api/events', event(), 'Content-Type' => 'text/plain'), 415, undef,
    'an event as text/plain');

my $kl = $mock->state->{klaviyo};
is_deeply([ map { $_->{id} } @{ $kl->{profiles} } ], [ $ann, $bob ], 'state: the profiles, in order');
is($kl->{profiles}[0]{title}, 'CTO', '... with their fields');
is(scalar @{ $kl->{events} }, 3, 'state: the three accepted events');
is_deeply([ map { $_->{duplicate} ? 1 : 0 } @{ $kl->{events} } ], [ 0, 1, 0 ],
    '... the repeat of profile, metric and unique_id marked duplicate');
is_deeply($kl->{events}[0], { metric => 'Lead Created', unique_id => 'c4a7f3e0-1111-4222-8333-944455556666',
    profile => { external_id => 'u-1', email => 'ann@example.com' }, properties => { source => 'gateway' },
    time => iso($soon), value => 12.5, value_currency => 'USD', duplicate => JSON::PP::false },
    '... each with its metric, identifiers, properties, time, value and currency');

# --- Salesforce -------------------------------------------------------------------

my $SF = '/services/data/v59.0';

sub xml_escape {
    my ($s) = @_;
    $s =~ s/&/&amp;/g; $s =~ s/</&lt;/g; $s =~ s/>/&gt;/g;
    return $s;
}

# login() as the gateway sends it: the session id
sub sf_login {
    my $envelope = '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>'
        . '<n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>' . xml_escape($mock->sf_user)
        . '</n1:username><n1:password>' . xml_escape($mock->sf_password . $mock->sf_token)
        . '</n1:password></n1:login></env:Body></env:Envelope>';
    my $r = call(POST => '/services/Soap/u/59.0', body => $envelope,
        headers => { 'Content-Type' => 'text/xml; charset=UTF-8', SOAPAction => 'login' });
    my ($sid) = $r->{content} =~ m{<sessionId>([^<]+)</sessionId>};
    return $sid;
}

my $sid = sf_login();
ok($sid, 'Salesforce login() gives a session');

sub sf {
    my ($method, $path, $json, %h) = @_;
    return call($method, "$SF$path", (defined $json ? (json => $json) : ()), headers => {
        Authorization => "Bearer $sid", 'Content-Type' => 'application/json', Accept => 'application/json',
        %h });
}

# a Salesforce refusal: the status, an array of {message, errorCode}
sub sf_refused {
    my ($r, $status, $code, $name, $fields) = @_;
    is($r->{status}, $status, "$name: $status");
    my $e = ref $r->{json} eq 'ARRAY' ? $r->{json}[0] : {};
    is($e->{errorCode}, $code, "... $code");
    ok(defined $e->{message}, '... with a message');
    is_deeply($e->{fields}, $fields, '... naming ' . join(', ', @$fields)) if $fields;
    return $e;
}

sub soql { '/query?q=' . join '+', map { enc($_) } split / /, $_[0] }

$r = sf(POST => '/sobjects/Lead', { LastName => 'Lee', FirstName => 'Ann', Company => 'Acme',
    Email => "o'brien\\x\@example.com", Phone => '+1 500 555 0006', LeadSource => 'Referral',
    Gateway_Ref__c => 'r-1' });
is($r->{status}, 201, 'a lead: 201');
like($r->{json}{id}, qr/^00Q\w{15}$/, '... an 18-character 00Q id');
is_deeply([ @{ $r->{json} }{qw(success errors)} ], [ JSON::PP::true, [] ], '... success, no errors');
is($r->{headers}{'sforce-limit-info'}, 'api-usage=18/5000', '... and Sforce-Limit-Info');
my $lead = $r->{json}{id};
$r = sf(POST => '/sobjects/Lead/', { LastName => 'Kim', Company => 'Initech' },
    'Content-Type' => 'application/json; charset=UTF-8');
is($r->{status}, 201, 'a lead with a trailing slash and a charset: 201');
my $lead2 = $r->{json}{id};

$r = sf(GET => soql("SELECT Id FROM Lead WHERE Email = 'O\\'Brien\\\\x\@example.com' LIMIT 1"));
is($r->{status}, 200, 'the lead query, quote and backslash escaped: 200');
is_deeply($r->{json}, { totalSize => 1, done => JSON::PP::true, records => [ { Id => $lead,
    attributes => { type => 'Lead', url => "$SF/sobjects/Lead/$lead" } } ] },
    '... the lead (email compared without case), as Salesforce shapes records');
$r = sf(GET => soql("SELECT Id FROM Lead WHERE Email = 'nobody\@example.com' LIMIT 1"));
is_deeply([ $r->{json}{totalSize}, $r->{json}{records} ], [ 0, [] ], 'no such email: totalSize 0');
sf_refused(sf(GET => soql("SELECT Id, Name FROM Lead WHERE Email = 'a\@b.co' LIMIT 1")), 400,
    'MALFORMED_QUERY', 'another query');
sf_refused(sf(GET => soql("SELECT Id FROM Lead WHERE Email = 'o'brien\@example.com' LIMIT 1")), 400,
    'MALFORMED_QUERY', 'an unescaped quote');

$r = sf(PATCH => "/sobjects/Lead/$lead", { FirstName => 'Anne', Phone => undef, Website => 'acme.example' });
is($r->{status}, 204, 'PATCH of a lead: 204');
is($r->{content} // '', '', '... no body');
sf_refused(sf(PATCH => '/sobjects/Lead/00Q5e000009999999AAA', { FirstName => 'X' }), 404, 'NOT_FOUND',
    'PATCH of no such lead');
sf_refused(sf(PATCH => "/sobjects/Lead/$lead", { LastName => undef }), 400, 'REQUIRED_FIELD_MISSING',
    'clearing LastName', ['LastName']);
sf_refused(sf(PATCH => "/sobjects/Lead/$lead", { Company => '' }), 400, 'REQUIRED_FIELD_MISSING',
    'emptying Company', ['Company']);

sf_refused(sf(POST => '/sobjects/Lead', { LastName => 'Lee' }), 400, 'REQUIRED_FIELD_MISSING',
    'a lead without Company', ['Company']);
my $e = sf_refused(sf(POST => '/sobjects/Lead', { LastName => 'Lee', Company => 'A', Shoe_Size => 9 }), 400,
    'INVALID_FIELD', 'an unknown field');
is($e->{message}, "No such column 'Shoe_Size' on sobject of type Lead", '... no such column');
sf_refused(sf(POST => '/sobjects/Lead', { LastName => 'L' x 81, Company => 'A' }), 400, 'STRING_TOO_LONG',
    'a LastName of 81 characters', ['LastName']);
sf_refused(sf(POST => '/sobjects/Lead', { LastName => 'Lee', Company => 'A', Email => 'ann@' }), 400,
    'INVALID_EMAIL_ADDRESS', 'a malformed email', ['Email']);
sf_refused(sf(POST => '/sobjects/Lead', { Id => $lead, LastName => 'Lee', Company => 'A' }), 400,
    'INVALID_FIELD_FOR_INSERT_UPDATE', 'an Id in the body', ['Id']);
sf_refused(sf(POST => '/sobjects/Lead', { LastName => 'Lee', Company => 'A' },
    'Content-Type' => 'text/plain'), 415, 'UNSUPPORTED_MEDIA_TYPE', 'a lead as text/plain');
sf_refused(call(POST => "$SF/sobjects/Lead", body => '[1]', headers => { Authorization => "Bearer $sid",
    'Content-Type' => 'application/json' }), 400, 'JSON_PARSER_ERROR', 'a body that is not an object');

$r = sf(PATCH => '/sobjects/Lead/Gateway_Id__c/ref%2F1', { LastName => 'Park', Company => 'Globex' });
is($r->{status}, 201, 'upsert of a new lead by an external id: 201');
is_deeply([ @{ $r->{json} }{qw(success created errors)} ], [ JSON::PP::true, JSON::PP::true, [] ],
    '... created: true');
my $lead3 = $r->{json}{id};
$r = sf(PATCH => '/sobjects/Lead/Gateway_Id__c/ref%2F1', { Email => 'park@globex.example' });
is($r->{status}, 200, 'upsert of the same external id: 200');
is_deeply([ @{ $r->{json} }{qw(id created)} ], [ $lead3, JSON::PP::false ],
    '... the same lead, created: false');
sf_refused(sf(PATCH => '/sobjects/Lead/Gateway_Id__c/ref-2', { LastName => 'P', Company => 'G',
    Gateway_Id__c => 'ref-2' }), 400, 'INVALID_FIELD', 'the external id field in the body too');
$r = sf(GET => '/sobjects/Lead/Gateway_Id__c/ref%2F1');
is($r->{status}, 200, 'GET by the external id: 200');
is_deeply($r->{json}{attributes}, { type => 'Lead', url => "$SF/sobjects/Lead/$lead3" },
    '... its attributes');
is_deeply([ @{ $r->{json} }{qw(Id LastName Email Gateway_Id__c FirstName)} ],
    [ $lead3, 'Park', 'park@globex.example', 'ref/1', undef ], '... its fields, null when unset');
$e = sf_refused(sf(GET => '/sobjects/Lead/Gateway_Id__c/nope'), 404, 'NOT_FOUND',
    'GET of no such external id');
is($e->{message}, 'Provided external ID field does not exist or is not accessible: nope', '... saying so');

$r = sf(POST => '/sobjects/Task', { Subject => 'Call Ann', WhoId => $lead, Status => 'Not Started',
    ActivityDate => '2026-12-07', Description => 'About the demo', TaskSubtype => 'Call' });
is($r->{status}, 201, 'a task: 201');
like($r->{json}{id}, qr/^00T\w{15}$/, '... a 00T id');
my $task = $r->{json}{id};
$r = sf(PATCH => '/sobjects/Task/Gateway_Id__c/t-1', { Subject => 'Email Kim', Status => 'Completed',
    WhoId => substr($lead2, 0, 15) });
is($r->{status}, 201, 'upsert of a new task (WhoId in its 15-character form): 201');
my $task2 = $r->{json}{id};
$r = sf(PATCH => '/sobjects/Task/Gateway_Id__c/t-1', { Status => 'In Progress' });
is_deeply([ $r->{status}, $r->{json}{created} ], [ 200, JSON::PP::false ], '... again: 200, created: false');
sf_refused(sf(POST => '/sobjects/Task', { Subject => 'S', Status => 'Completed', WhoId => $task }), 400,
    'INVALID_CROSS_REFERENCE_KEY', 'a WhoId that is not a lead', ['WhoId']);
sf_refused(sf(POST => '/sobjects/Task', { Subject => 'S', Status => 'Open' }), 400,
    'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', 'a Status not in the picklist', ['Status']);
sf_refused(sf(POST => '/sobjects/Task', { Subject => 'S', Status => 'Completed',
    ActivityDate => '2026-02-30' }), 400, 'JSON_PARSER_ERROR', 'an ActivityDate that is no date');
sf_refused(sf(POST => '/sobjects/Task', { Status => 'Completed' }), 400, 'REQUIRED_FIELD_MISSING',
    'a task without Subject', ['Subject']);

my $sfs = $mock->state->{salesforce};
is_deeply([ map { $_->{Id} } @{ $sfs->{leads} } ], [ $lead, $lead2, $lead3 ], 'state: the leads, in order');
is_deeply([ @{ $sfs->{leads}[0] }{qw(FirstName Website Gateway_Ref__c)} ], [ 'Anne', 'acme.example', 'r-1' ],
    '... with the updates');
ok(!exists $sfs->{leads}[0]{Phone}, '... a field set to null cleared');
is_deeply([ map { "$_->{Id} $_->{Status}" } @{ $sfs->{tasks} } ],
    [ "$task Not Started", "$task2 In Progress" ], 'state: the tasks, in order');

$mock->expire_sessions;
$r = sf(GET => soql("SELECT Id FROM Lead WHERE Email = 'a\@b.co' LIMIT 1"));
sf_refused($r, 401, 'INVALID_SESSION_ID', 'an expired session');
is($r->{headers}{'www-authenticate'}, 'Token', '... with WWW-Authenticate: Token');
$sid = sf_login();
is(sf(GET => soql("SELECT Id FROM Lead WHERE Email = 'a\@b.co' LIMIT 1"))->{status}, 200,
    '... and a new login() works');

# --- Creatio ------------------------------------------------------------------------

my ($cookie, $csrf);

sub creatio_login {
    my $r = call(POST => '/ServiceModel/AuthService.svc/Login',
        json => { UserName => $mock->creatio_user, UserPassword => $mock->creatio_password },
        headers => { 'Content-Type' => 'application/json; charset=utf-8', ForceUseSession => 'true' });
    my $set = $r->{headers}{'set-cookie'};
    $cookie = join '; ', map { /^([^;]+)/ } ref $set ? @$set : $set;
    ($csrf) = $cookie =~ /BPMCSRF=(\w+)/;
    return $r->{json}{Code};
}

sub creatio {
    my ($method, $path, $json, %h) = @_;
    return call($method, "/0/odata$path", (defined $json ? (json => $json) : ()), headers => {
        Cookie => $cookie, BPMCSRF => $csrf, Accept => 'application/json',
        'Content-Type' => 'application/json; charset=utf-8; IEEE754Compatible=true', %h });
}

sub odata_refused {
    my ($r, $status, $name) = @_;
    is($r->{status}, $status, "$name: $status");
    ok(ref $r->{json} eq 'HASH' && defined $r->{json}{error}{message} && exists $r->{json}{error}{code},
        '... an OData error');
    return $r->{json}{error}{message} // '';
}

my $GUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
is(creatio_login(), 0, 'Creatio login: Code 0');

$r = creatio(GET => '/Contact?$top=1&$select=Id');
is($r->{status}, 200, 'the validate read still answers 200');
is_deeply($r->{json}{value}, [ { Id => '410006e1-ca4e-4502-a9ec-e54d922d2c00' } ],
    '... with its one contact');

$r = creatio(POST => '/Contact', { Name => 'Ann Lee', Email => "o'neil\@example.com",
    MobilePhone => '+15005550006' });
is($r->{status}, 201, 'a contact: 201');
my $c = $r->{json};
like($c->{Id}, $GUID, '... with a new Id');
is_deeply([ @$c{qw(Name Email MobilePhone Notes)} ], [ 'Ann Lee', "o'neil\@example.com", '+15005550006', '' ],
    '... the created object, an empty text column as ""');
like($c->{'@odata.context'}, qr{/0/odata/\$metadata#Contact}, '... with @odata.context');
is($r->{headers}{location}, "$URL/0/odata/Contact($c->{Id})", '... and its Location');
my $given = '5b7b1a52-3f6a-4c59-9a5e-0a1b2c3d4e5f';
$r = creatio(POST => '/Contact', { Id => $given, Name => 'Kim' });
is_deeply([ $r->{status}, $r->{json}{Id} ], [ 201, $given ], 'a contact with its Id given: 201, that Id');
odata_refused(creatio(POST => '/Contact', { Id => $given, Name => 'Kim' }), 400, 'an Id that exists');

$r = creatio(GET => "/Contact($c->{Id})");
is($r->{status}, 200, 'GET Contact(<guid>): 200');
is_deeply([ @{ $r->{json} }{qw(Id Name Email MobilePhone)} ], [ $c->{Id}, 'Ann Lee', "o'neil\@example.com",
    '+15005550006' ], '... Id, Name, Email, MobilePhone');
ok($r->{json}{'@odata.context'}, '... @odata.context');
my $NONE = '00000000-0000-4000-8000-000000000001';
odata_refused(creatio(GET => "/Contact($NONE)"), 404, 'GET of no such contact');
is(creatio(GET => "/Contact($c->{Id})", undef, Accept => 'text/html')->{status}, 406,
    'GET without Accept: application/json: 406');

$r = creatio(GET => '/Contact?$filter=' . enc("Email eq 'o''neil\@example.com'") . '&$select=Id&$top=1');
is($r->{status}, 200, 'contacts by email (quote doubled, percent-encoded): 200');
is_deeply($r->{json}{value}, [ { Id => $c->{Id} } ], '... the contact');
$r = creatio(GET => '/Contact?$filter=Email+eq+%27nobody%40example.com%27&$select=Id&$top=1');
is_deeply($r->{json}{value}, [], '... none for an unknown email (+ as a space)');
odata_refused(creatio(GET => '/Contact?$filter=' . enc("Name eq 'Kim'") . '&$select=Id&$top=1'), 400,
    'another filter');

$r = creatio(PATCH => "/Contact($c->{Id})", { MobilePhone => '', Notes => 'met at the fair' });
is($r->{status}, 204, 'PATCH Contact(<guid>): 204');
is_deeply([ @{ creatio(GET => "/Contact($c->{Id})")->{json} }{qw(MobilePhone Notes Name)} ],
    [ '', 'met at the fair', 'Ann Lee' ], '... "" empties a column, the others kept');
odata_refused(creatio(PATCH => "/Contact($NONE)", { Notes => 'x' }), 404, 'PATCH of no such contact');
like(odata_refused(creatio(PATCH => "/Contact($c->{Id})", { Email => undef }), 400, 'a null text column'),
    qr/null value/, '... a null value');
odata_refused(creatio(PATCH => "/Contact($c->{Id})", { Id => $given }), 400, 'an Id in a PATCH');
like(odata_refused(creatio(POST => '/Contact', { Name => 'A', Twitter => '@a' }), 400, 'an unknown property'),
    qr/The property 'Twitter' does not exist on type 'Terrasoft\.Configuration\.Contact'/, '... named');
odata_refused(creatio(POST => '/Contact', { Email => 'a@b.co' }), 400, 'a contact without Name');
odata_refused(creatio(POST => '/Contact', { Name => 'N' x 251 }), 400, 'a Name of 251 characters');
odata_refused(creatio(POST => '/Contact', { Name => 'A' }, 'Content-Type' => 'text/plain'), 415,
    'a contact as text/plain');

my %activity = (Id => 'a1b2c3d4-0000-4000-8000-00000000000a', Title => 'Lead from the gateway',
    StartDate => '2026-12-05T10:00:00Z', DueDate => '2026-12-05T11:00:00.000Z', ContactId => $c->{Id},
    Notes => 'ref r-1', TypeId => 'fbe0acdc-cfc0-df11-b00f-001d60e938c6');
$r = creatio(POST => '/Activity', \%activity);
is($r->{status}, 201, 'an activity: 201');
is_deeply({ map { $_ => $r->{json}{$_} } keys %activity }, \%activity, '... the created object');
is($r->{json}{OwnerId}, '00000000-0000-0000-0000-000000000000', '... an empty lookup as the empty GUID');
is(creatio(GET => "/Activity($activity{Id})")->{json}{Title}, $activity{Title}, 'GET Activity(<guid>): it');
odata_refused(creatio(GET => "/Activity($NONE)"), 404, 'GET of no such activity');
my %new = (%activity, Id => 'a1b2c3d4-0000-4000-8000-00000000000b');
odata_refused(creatio(POST => '/Activity', \%activity), 400, 'an activity Id that exists');
odata_refused(creatio(POST => '/Activity', { %new, ContactId => $NONE }), 400,
    'a ContactId that is no contact');
odata_refused(creatio(POST => '/Activity', { %new, StartDate => '2026-12-05 10:00' }), 400,
    'a StartDate that is not ISO 8601 UTC');
odata_refused(creatio(POST => '/Activity', { %new, Title => undef }), 400, 'a null Title');
delete $new{Title};
odata_refused(creatio(POST => '/Activity', \%new), 400, 'an activity without Title');
odata_refused(creatio(POST => '/Activity', { %activity, Priority => 'High' }), 400,
    'an unknown activity property');

my $cr = $mock->state->{creatio};
is_deeply([ map { $_->{Id} } @{ $cr->{contacts} } ], [ $c->{Id}, $given ], 'state: the contacts, in order');
is_deeply([ map { $_->{Id} } @{ $cr->{activities} } ], [ $activity{Id} ], 'state: the activity');

$mock->expire_sessions;
is(creatio(GET => "/Contact($c->{Id})")->{status}, 401, 'an expired Creatio session: 401');
creatio_login();
is(creatio(GET => "/Contact($c->{Id})")->{status}, 200, '... and a new login works');

# --- modes and controls -------------------------------------------------------------

$mock->mode('429', times => 2, retry_after => 3);
for my $n (1, 2) {
    $r = klaviyo(GET => '/api/accounts');
    is($r->{status}, 429, "429 for 2 calls: call $n is 429");
    is($r->{headers}{'retry-after'}, 3, '... Retry-After from retry_after');
}
is(klaviyo(GET => '/api/accounts')->{status}, 200, '... the third is answered as ok');

$mock->mode('503');
$r = klaviyo(GET => '/api/accounts');
klaviyo_refused($r, 503, undef, 'mode 503');
is($r->{headers}{'retry-after'}, 7, '... Retry-After 7 by default');
$r = klaviyo(GET => '/api/accounts');
is($r->{status}, 503, '... until changed');
$mock->mode('ok');

$mock->mode('hang', times => 1);
my $t0 = time;
$r = HTTP::Tiny->new(timeout => 1)->get("$URL/api/accounts", { headers => \%KL });
is($r->{status}, 599, 'mode hang: no answer (the client times out)');
is(klaviyo(GET => '/api/accounts')->{status}, 200, '... once, then ok');

$mock->jwks('{"keys":[]}', 9);
$r = call(GET => '/jwks');
is_deeply([ $r->{status}, $r->{content} ], [ 200, '{"keys":[]}' ], '/jwks still served');
like($r->{headers}{'cache-control'}, qr/max-age=9\b/, '... with its max-age');
is($mock->requests->[-1]{path}, '/jwks', 'requests still recorded');

$mock->stop;
done_testing();

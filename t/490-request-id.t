#!/usr/bin/perl
# Every answer of an API location names its request: X-Request-Id is
# nginx's $request_id, every problem document carries it as "request_id",
# and the JSON access log that conf/nginx.conf ships writes it on the
# request's line.  The log format is read from conf/nginx.conf itself, so
# the shipped one is what is tested.

use strict;
use warnings;

use JSON::PP;
use Test::More;
use CrmTest;

my $ROOT = $CrmTest::ROOT;
my $conf = do { local (@ARGV, $/) = ("$ROOT/conf/nginx.conf"); <> };
my ($format) = $conf =~ /^(\s*log_format crm_json\b.*?;)\s*$/ms;
ok($format, 'conf/nginx.conf ships the log_format crm_json') or BAIL_OUT('no crm_json format');

my $t = CrmTest->new;
my $log = $t->dir . '/access.json';
$t->write_config(http_extra => $format, server_extra => "access_log $log crm_json;");
$t->start;

my (undef, $tok) = $t->member(full_name => 'Request Ids');
my %seen;
my @asked;

# a request; its X-Request-Id must be new and well formed, and a problem
# document must carry the same id
sub asked {
    my ($name, $r, $status, $uri) = @_;
    my $id = $r->{headers}{'x-request-id'} // '';
    is($r->{status}, $status, "$name: $status");
    like($id, qr/^[0-9a-f]{32}\z/, "... X-Request-Id is 32 hex digits");
    ok(!$seen{$id}++, '... and no other request had it');
    if (($r->{headers}{'content-type'} // '') =~ m{^application/problem\+json}) {
        is(ref $r->{json} eq 'HASH' ? $r->{json}{request_id} : undef, $id,
            '... the problem document names the same id');
    }
    push @asked, { id => $id, status => $status, uri => $uri, name => $name };
}

asked('GET /healthz', $t->get('/healthz'), 200, '/healthz');
asked('GET /auth/me with a token', $t->get('/auth/me', token => $tok), 200, '/auth/me');
asked('GET /leads/ without a token', $t->get('/leads/'), 401, '/leads/');
asked('GET /nowhere', $t->get('/nowhere', token => $tok), 404, '/nowhere');
asked('POST /leads/ without a name', $t->post_json('/leads/', { email => 'x@example.com' }, token => $tok),
    422, '/leads/');
asked('POST /integrations/webhooks/unknown', $t->request('POST', '/integrations/webhooks/unknown',
    content => '{}', headers => { 'Content-Type' => 'application/json' }), 404, '/integrations/webhooks/unknown');
# nginx answers this one itself, before the module: the error filter's
# problem document carries the id too
asked('POST /auth/login, 70 kB', $t->request('POST', '/auth/login', content => 'a' x 70000,
    headers => { 'Content-Type' => 'application/json' }), 413, '/auth/login');

my $r1 = $t->get('/healthz');
my $r2 = $t->get('/healthz');
isnt($r1->{headers}{'x-request-id'}, $r2->{headers}{'x-request-id'}, 'two requests, two ids');
push @asked, map { { id => $_->{headers}{'x-request-id'}, status => 200, uri => '/healthz',
    name => 'GET /healthz again' } } $r1, $r2;

# the log's lines: one JSON object each, and one per request asked
my %line;
ok(CrmTest::wait_until(10, sub {
    open my $fh, '<', $log or return 0;
    %line = ();
    while (my $l = <$fh>) {
        my $o = eval { decode_json($l) };
        $line{ $o->{request_id} } = $o if ref $o eq 'HASH' && defined $o->{request_id};
    }
    return !grep { !$line{ $_->{id} } } @asked;
}, 0.1), 'every request has its line in the access log');

open my $fh, '<', $log or die "$log: $!";
my @lines = <$fh>;
is(scalar(grep { !eval { decode_json($_); 1 } } @lines), 0,
    'every line of the access log (' . scalar(@lines) . ') is a JSON object');
for my $a (@asked) {
    my $l = $line{ $a->{id} } // {};
    is_deeply([$l->{status}, $l->{uri}], [$a->{status}, $a->{uri}],
        "$a->{name}: its line has the status and the URI");
}
like($line{ $asked[0]{id} }{time} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/, 'times are ISO 8601');

$t->done;

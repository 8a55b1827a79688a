#!/usr/bin/perl
# GET /healthz: the gateway and its database answer.

use strict;
use warnings;

use Test::More;
use CrmTest;

my $t = CrmTest->new->start;

my $r = $t->get('/healthz');
my $h = is_json_response($r, 200, 'GET /healthz is 200 JSON');
is($h->{status}, 'ok', 'status is "ok"');
is($h->{db}, 'ok', 'db is "ok"');
ok(defined $h->{version} && !ref $h->{version} && length $h->{version},
    'version is a non-empty string');

# both workers, several threads: every one of them reaches the database
my @statuses = map { $t->get('/healthz', ua => HTTP::Tiny->new(keep_alive => 0))->{status} } 1 .. 20;
is_deeply([grep { $_ != 200 } @statuses], [], '20 fresh connections: all 200');

is($t->get('/baseline')->{status}, 200, 'nginx serves its own locations beside the module');

$r = $t->request('POST', '/healthz', content => '{}',
    headers => { 'Content-Type' => 'application/json' });
is_problem($r, 405, 'POST /healthz is 405');
like($r->{headers}{allow} // '', qr/\bGET\b/, 'Allow names GET');

$t->done;

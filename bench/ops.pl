#!/usr/bin/env perl
#
# What the operator's features cost an API read: GET /leads/{id} (200
# leads, round robin, one member's token) answered by three servers of one
# nginx: plain "crm_api", the same with the shipped per-account
# limit_req (keyed by $crm_account_id, a rate it never reaches: every
# request takes the zone's lock for the one hot key), and one with CORS on
# and every request from an allowed origin.  nginx's own "return 200" in
# the same nginx is the baseline.  Alternating rounds; medians replace the
# section "Operations" of bench/RESULTS.md.
#
# Run through "./build.sh bench ops" (which builds first).  Environment:
# BENCH_ROUNDS (5), BENCH_SECONDS (5), BENCH_CONNECTIONS (32).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib", "$FindBin::Bin/lib";

BEGIN { $ENV{CRM_TEST_TIMEOUT} = 3600 }

use BenchWrk qw(wrk median write_section);
use CrmTest;
use POSIX qw(strftime);

my $ROUNDS = $ENV{BENCH_ROUNDS} || 5;
my $SECONDS = $ENV{BENCH_SECONDS} || 5;
my $CONNS = $ENV{BENCH_CONNECTIONS} || 32;
my $ORIGIN = 'https://app.example';
my $RESULTS = "$CrmTest::ROOT/bench/RESULTS.md";

my $t = CrmTest->new(workers => 2, pool_threads => 2);
my $limited = CrmTest::free_port($t->port, $t->pg_port);
my $cors = CrmTest::free_port($t->port, $t->pg_port, $limited);

$t->start_db;
$t->write_config(http_extra => <<"EOF");
    limit_req_zone \$crm_account_id zone=bench_account:10m rate=1000000r/s;
    server {
        listen 127.0.0.1:$limited;
        location / {
            limit_req zone=bench_account burst=1000000 nodelay;
            limit_req_status 429;
            crm_api;
        }
    }
    server {
        listen 127.0.0.1:$cors;
        crm_cors_origins $ORIGIN;
        location / { crm_api; }
    }
EOF
$t->start_nginx;

my (undef, $token) = $t->member;
my @ids = map { $t->create_lead($token, name => "Bench shop $_")->{id} } 1 .. 200;

$ENV{BENCH_PATH} = '/leads/';
$ENV{BENCH_IDS} = join ',', @ids;

my %variant = (
    baseline => [ 'http://127.0.0.1:' . $t->port . '/baseline' ],
    plain    => [ '-H', "Authorization: Bearer $token",
                  '-s', "$FindBin::Bin/get_each.lua", 'http://127.0.0.1:' . $t->port ],
    limited  => [ '-H', "Authorization: Bearer $token",
                  '-s', "$FindBin::Bin/get_each.lua", "http://127.0.0.1:$limited" ],
    cors     => [ '-H', "Authorization: Bearer $token", '-H', "Origin: $ORIGIN",
                  '-s', "$FindBin::Bin/get_each.lua", "http://127.0.0.1:$cors" ],
);
my @ORDER = qw(baseline plain limited cors);

# (req/s, p99 ms, errors) of one run of a variant
sub measure {
    my ($name) = @_;
    return (wrk('-t2', "-c$CONNS", "-d${SECONDS}s", '--latency', @{ $variant{$name} }))[0 .. 2];
}

measure($_) for qw(plain limited cors);    # every pool thread connects

my (%rps, %p99, %errors);
for my $round (1 .. $ROUNDS) {
    for my $name (@ORDER) {
        my ($rps, $p99, $errors) = measure($name);
        push @{ $rps{$name} }, $rps;
        push @{ $p99{$name} }, $p99;
        $errors{$name} += $errors;
        printf STDERR "round %d %-8s %8.0f req/s  p99 %6.2f ms  errors %d\n",
            $round, $name, $rps, $p99, $errors;
    }
}

my %m = map { $_ => median(@{ $rps{$_} }) } @ORDER;
my @rows = (
    [ baseline => '`return 200` (baseline, same nginx)' ],
    [ plain    => '`GET /leads/{id}`, `crm_api` alone' ],
    [ limited  => '... with `limit_req zone=crm_account` (`$crm_account_id`, one hot key)' ],
    [ cors     => '... with `crm_cors_origins`, every request from an allowed origin' ],
);

my $section = join '', "## Operations: per-account limits and CORS on an API read\n\n",
    "Produced by `./build.sh bench ops` (`bench/ops.pl`) on ",
    strftime('%Y-%m-%dT%H:%M:%SZ', gmtime), ": the same machine and nginx,\n",
    "2 workers, `thread_pool crm threads=2`, wrk -t2 -c$CONNS, $ROUNDS alternating rounds of\n",
    "$SECONDS s; medians. Every request of every row is also counted by route, status\n",
    "and latency in `/metrics` (the log phase), which no row can turn off.\n\n",
    "| variant | req/s (median) | p99 ms (median) | errors (all rounds) | ratio to `return 200` | ratio to `crm_api` alone |\n",
    "|---|---|---|---|---|---|\n",
    map {
        my ($name, $label) = @$_;
        sprintf "| %s | %.0f | %.2f | %d | %.3f | %.3f |\n", $label, $m{$name},
            median(@{ $p99{$name} }), $errors{$name}, $m{$name} / $m{baseline},
            $m{$name} / $m{plain};
    } @rows;

write_section($RESULTS, '## Operations: ', $section);

$t->teardown;

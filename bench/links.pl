#!/usr/bin/env perl
#
# A million active links in the link cache: the zone size that holds them
# all, and redirect throughput over a million distinct links hit
# uniformly against one hot link and nginx's own "return 302" in the same
# nginx.  The links are written before nginx starts (one COPY), with
# targets of a realistic length (https://apps.shopify.com/ and a 16-letter
# app handle, 41 bytes; an entry's size grows with its target's).  For
# each zone size: one pass over every link fills the cache, a second pass
# counts what it missed (evicted); the first size with no miss holds them
# (when none does, the largest is measured all the same).
# Medians replace the section "A million links" of bench/RESULTS.md.
#
# Run through "./build.sh bench links" (which builds first).  Environment:
# BENCH_LINKS (1000000), BENCH_ROUNDS (5), BENCH_SECONDS (5),
# BENCH_CONNECTIONS (64), BENCH_ZONES ("160m 256m"; the first that holds
# them all ends the search).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib", "$FindBin::Bin/lib";

BEGIN { $ENV{CRM_TEST_TIMEOUT} = 7200 }

use BenchWrk qw(wrk median write_section);
use CrmTest;
use POSIX qw(strftime);

my $LINKS = $ENV{BENCH_LINKS} || 1_000_000;
my $ROUNDS = $ENV{BENCH_ROUNDS} || 5;
my $SECONDS = $ENV{BENCH_SECONDS} || 5;
my $CONNS = $ENV{BENCH_CONNECTIONS} || 64;
my @ZONES = split ' ', $ENV{BENCH_ZONES} || '160m 256m';
my $RESULTS = "$CrmTest::ROOT/bench/RESULTS.md";
my $TARGET = 'https://apps.shopify.com/';

# 8 threads: the first pass loads every link from PostgreSQL
my $t = CrmTest->new(workers => 2, pool_threads => 8);
my $d = $t->dir;
$t->start_db;
$t->write_config;
$t->start_nginx;
my ($acc) = $t->register;
$t->stop_nginx;

# the links, with check characters the gateway accepts, and a target each
printf STDERR "writing %d links\n", $LINKS;
my @ids;
open my $copy, '>', "$d/links.tsv" or die "$d/links.tsv: $!";
for my $i (1 .. $LINKS) {
    my $id = CrmTest::link_id();
    push @ids, $id;
    printf $copy "%s\t%s\t%s%016x\t500\t1000\tUSD\n", $id, $acc->{id}, $TARGET, $i;
}
close $copy;
open my $list, '>', "$d/ids.txt" or die "$d/ids.txt: $!";
print $list join(',', @ids);
close $list;
$t->psql("\\copy crm.affiliate_links (id, owner_id, target_url, install_cents,"
    . " conversion_bps, currency) FROM '$d/links.tsv'");
$t->psql("INSERT INTO crm.affiliate_link_stats (link_id) SELECT id FROM crm.affiliate_links"
    . " ON CONFLICT DO NOTHING");

# wrk over the ids, round robin: each thread from its own first one (and
# BENCH_START), "step" apart
my $lua = "$d/each.lua";
open my $fh, '>', $lua or die "$lua: $!";
print $fh <<'EOF';
local ids = {}
local f = io.open(os.getenv("BENCH_IDS_FILE"))
for id in string.gmatch(f:read("*a"), "[^,]+") do ids[#ids + 1] = id end
f:close()
local threads, n, step = 0, 0, 1
setup = function(thread)
    thread:set("first", threads)
    threads = threads + 1
end
init = function()
    n = (first or 0) + tonumber(os.getenv("BENCH_START") or "0")
    step = tonumber(os.getenv("BENCH_STEP"))
end
request = function()
    local id = ids[n % #ids + 1]
    n = n + step
    return wrk.format("GET", "/r/" .. id)
end
EOF
close $fh;
$ENV{BENCH_IDS_FILE} = "$d/ids.txt";

# one pass over every id, in order, by one wrk thread in runs of 20 s,
# each run starting where the last one's answers ended (requests still in
# flight then are asked again: overlap, never a gap)
sub pass {
    my ($start, $errors) = (0, 0);
    while ($start < $LINKS) {
        local $ENV{BENCH_STEP} = 1;
        local $ENV{BENCH_START} = $start;
        my (undef, undef, $e, $total) = wrk('-t1', '-c32', '-d20s', '-s', $lua,
            'http://127.0.0.1:' . $t->port);
        die "a run of a pass answered nothing\n" unless $total;
        $errors += $e;
        $start += $total;
    }
    return ($errors);
}

sub configure {
    my ($zone) = @_;
    my %edge = $t->edge_config(cache => $zone, queue => '256m', ttl => '1h',
        negative_ttl => '1h');
    $edge{server_extra} .= "        location = /baseline302 { return 302 \"$TARGET"
        . "0000000000000000?ref=x&click_id=y\"; }\n";
    $t->write_config(%edge);
    $t->start_nginx;
}

my (@sizes, $fits);
for my $zone (@ZONES) {
    configure($zone);
    my $m0 = $t->metrics;
    my ($e1) = pass();
    my $m1 = $t->metrics;
    my ($e2) = pass();
    my $m2 = $t->metrics;
    my $miss = $m2->{'crm_link_cache_lookups_total{result="miss"}'}
        - $m1->{'crm_link_cache_lookups_total{result="miss"}'};
    my $loads = $m1->{crm_link_loads_total} - $m0->{crm_link_loads_total};
    printf STDERR "zone %s: first pass %d loads, second pass %d misses, errors %d\n",
        $zone, $loads, $miss, $e1 + $e2;
    push @sizes, [ $zone, $loads, $miss, $e1 + $e2 ];
    if ($miss == 0) {
        $fits = $zone;
        last;
    }
    last if $zone eq $ZONES[-1];
    $t->stop_nginx;
}
# none held them: the largest is measured, and the table says so
my $held = defined $fits;
$fits //= $ZONES[-1];

# throughput in the zone that holds them, alternating rounds
my $url = 'http://127.0.0.1:' . $t->port;
my $hot = $ids[0];
my %variant = (
    baseline => sub { wrk('-t2', "-c$CONNS", "-d${SECONDS}s", '--latency', "$url/baseline302") },
    hot      => sub { wrk('-t2', "-c$CONNS", "-d${SECONDS}s", '--latency', "$url/r/$hot") },
    uniform  => sub {
        local $ENV{BENCH_STEP} = 7919;    # a prime: every id, spread out
        wrk('-t2', "-c$CONNS", "-d${SECONDS}s", '--latency', '-s', $lua, $url);
    },
);
my @ORDER = qw(baseline hot uniform);
my (%rps, %p99, %errors);
for my $round (1 .. $ROUNDS) {
    for my $name (@ORDER) {
        my ($rps, $p99, $errors) = $variant{$name}->();
        push @{ $rps{$name} }, $rps;
        push @{ $p99{$name} }, $p99;
        $errors{$name} += $errors;
        printf STDERR "round %d %-8s %8.0f req/s  p99 %6.2f ms  errors %d\n",
            $round, $name, $rps, $p99, $errors;
    }
}
my $m = $t->metrics;

my %med = map { $_ => median(@{ $rps{$_} }) } @ORDER;

my $section = join '', "## A million links in the link cache\n\n",
    "Produced by `./build.sh bench links` (`bench/links.pl`) on ",
    strftime('%Y-%m-%dT%H:%M:%SZ', gmtime), ": the same machine; 2 workers; ",
    "$LINKS active links\nwith 41-byte targets, written before nginx starts. ",
    "A pass requests every link once;\nthe second pass's misses are ",
    "entries the zone could not keep.\n\n",
    "| `crm_link_cache` zone | loads in the first pass | misses in the second | errors |\n",
    "|---|---|---|---|\n",
    (map { sprintf "| %s | %d | %d | %d |\n", @$_ } @sizes),
    ($held ? '' : "\nNo zone tried held every link: the figures below are the largest's.\n"),
    "\nIn the ${fits} zone (wrk -t2 -c$CONNS, $ROUNDS alternating rounds of ",
    "$SECONDS s, medians; every\nredirect also queues its click):\n\n",
    "| redirect | req/s (median) | p99 ms (median) | errors | ratio to `return 302` |\n",
    "|---|---|---|---|---|\n",
    map {
        my ($name, $label) = @$_;
        sprintf "| %s | %.0f | %.2f | %d | %.3f |\n", $label, $med{$name},
            median(@{ $p99{$name} }), $errors{$name}, $med{$name} / $med{baseline};
    } [ baseline => '`return 302` (same nginx, as long a Location)' ],
      [ hot => 'one hot link' ],
      [ uniform => "$LINKS links, uniformly" ];
$section .= sprintf "\nClicks queued %d, dropped %d.\n",
    $m->{crm_clicks_queued_total}, $m->{crm_clicks_dropped_total};

write_section($RESULTS, '## A million links in the link cache', $section);

$t->teardown;

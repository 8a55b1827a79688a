#!/usr/bin/perl
# The affiliate edge's configuration: what "nginx -t" refuses in
# crm_link_cache, crm_click_queue, crm_click_spool and crm_redirect, and
# what a reload does to the shared zones: with the same zones the link
# cache and the click queue (and the counters of /metrics, which live in
# the queue's zone) carry on; with a zone's size changed nginx makes new
# zones, the counters start again from zero, and the clicks the old zone
# still held reach the database all the same.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use CrmTest;

# --- nginx -t -----------------------------------------------------------------
#
# A harness object that is never started: its nginx.conf is rewritten for
# each case and checked with "nginx -t" (its own error log, so nothing of
# this reaches the running server's log).

my $chk = CrmTest->new;
my $cd = $chk->dir;

sub nginx_t {
    my $out = "$cd/nginx-t.out";
    unlink $out;
    my $rc = CrmTest::_run_logged($out, $CrmTest::NGINX, '-t', '-p', "$cd/",
        '-c', "$cd/nginx.conf", '-e', "$cd/nginx-t-error.log");
    return ($rc == 0, CrmTest::_slurp($out));
}

# the edge's directives as edge_config() writes them, with $http replacing
# the http-level part when given, and $server the locations
sub check_edge {
    my (%o) = @_;
    my %e = $chk->edge_config(%{ $o{edge} || {} });
    $chk->{conf} = {};
    $chk->write_config(
        http_extra   => $o{http} // $e{http_extra},
        server_extra => $o{server} // $e{server_extra},
    );
    return nginx_t();
}

sub accepted {
    my ($name, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($ok, $out) = check_edge(%o);
    ok($ok, "nginx -t passes: $name") or diag($out);
}

sub refused {
    my ($name, $want, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($ok, $out) = check_edge(%o);
    ok(!$ok, "nginx -t fails: $name") or diag($out);
    like($out, $want, "... and says why: $name");
    unlike($out, qr/segfault|Sanitizer|signal/i, "... without crashing: $name");
}

my $Q = "    crm_click_queue zone=crm_clicks:8m;\n";
my $L = "    crm_link_cache zone=crm_links:4m;\n";
my $RLOC = "        location /r/ { crm_redirect; }\n";

accepted('the harness edge configuration');
accepted('the smallest values', edge => { cache => '32k', queue => '1m', ttl => '1s',
    negative_ttl => '1s', flush => '1ms', batch => '16k', spool_max => '1m' });
accepted('the largest values', edge => { ttl => '1d', negative_ttl => '86400s',
    flush => '10s', batch => '64m' });
accepted('no crm_click_spool', edge => { spool => '' });
accepted('only the zone parameters (the defaults for the rest)', http => $L . $Q);
accepted('crm_metrics without crm_redirect', http => $L . $Q,
    server => "        location = /metrics { crm_metrics; }\n");

refused('crm_redirect without crm_link_cache', qr/"crm_redirect" requires "crm_link_cache"/,
    http => $Q);
refused('crm_redirect without crm_click_queue', qr/"crm_redirect" requires .*"crm_click_queue"/,
    http => $L);
refused('crm_redirect without either', qr/"crm_redirect" requires/, http => '');

refused('a link cache of 16k', qr/link cache "zone=crm_links:16k" is too small/,
    edge => { cache => '16k' });
refused('a link cache of 0', qr/link cache "zone=crm_links:0" is too small/, edge => { cache => '0' });
refused('a click queue of 512k', qr/click queue "zone=crm_clicks:512k" must be at least 1m/,
    edge => { queue => '512k' });
refused('a click queue of 1048575 bytes', qr/must be at least 1m/, edge => { queue => '1048575' });
refused('a zone size that is not a size', qr/invalid parameter "zone=crm_links:lots"/,
    edge => { cache => 'lots' });

for my $ttl ('0', '0s', '500ms', '2d', '86401s', 'abc', '-1s', '') {
    refused("ttl=$ttl", qr/"ttl=\Q$ttl\E": must be between 1s and 1d/, edge => { ttl => $ttl });
}
for my $ttl ('0', '25h', 'x') {
    refused("negative_ttl=$ttl", qr/"negative_ttl=\Q$ttl\E": must be between 1s and 1d/,
        edge => { negative_ttl => $ttl });
}
for my $flush ('0', '0ms', '11s', '10001ms', '1m', 'soon', '') {
    refused("flush=$flush", qr/"flush=\Q$flush\E": must be between 1ms and 10s/,
        edge => { flush => $flush });
}
for my $batch ('1k', '16383', '65m', '1g', 'big', '') {
    refused("batch=$batch", qr/"batch=\Q$batch\E": batch must be between 16k and 64m/,
        edge => { batch => $batch });
}

refused('an unknown crm_link_cache parameter', qr/invalid parameter "size=2"/,
    http => "    crm_link_cache zone=crm_links:4m size=2;\n$Q");
refused('an unknown crm_click_queue parameter', qr/invalid parameter "spool=\/tmp"/,
    http => "$L    crm_click_queue zone=crm_clicks:8m spool=/tmp;\n");
refused('a crm_link_cache parameter without "="', qr/invalid parameter "ttl"/,
    http => "    crm_link_cache zone=crm_links:4m ttl;\n$Q");
refused('an unknown crm_click_spool parameter', qr/invalid parameter "max=1g"/,
    http => "$L$Q    crm_click_spool $cd/spool max=1g;\n");
refused('crm_click_spool max_size=100k', qr/max_size must be at least 1m/,
    edge => { spool_max => '100k' });
refused('crm_click_spool max_size=lots', qr/max_size must be at least 1m/,
    edge => { spool_max => 'lots' });
refused('crm_link_cache without zone=', qr/"crm_link_cache" must have the "zone" parameter/,
    http => "    crm_link_cache ttl=60s;\n$Q");
refused('crm_click_queue without zone=', qr/"crm_click_queue" must have the "zone" parameter/,
    http => "$L    crm_click_queue flush=50ms;\n");
refused('zone= without a size', qr/invalid parameter "zone=crm_links"/,
    http => "    crm_link_cache zone=crm_links;\n$Q");
refused('zone= without a name', qr/invalid parameter "zone=:4m"/,
    http => "    crm_link_cache zone=:4m;\n$Q");
refused('crm_link_cache twice', qr/"crm_link_cache" directive is duplicate/,
    http => "$L    crm_link_cache zone=other:4m;\n$Q");
refused('crm_click_queue twice', qr/"crm_click_queue" directive is duplicate/,
    http => "$L$Q    crm_click_queue zone=other:8m;\n");
refused('one zone for both the cache and the queue', qr/zone "crm_shared" is already in use/,
    http => "    crm_link_cache zone=crm_shared:4m;\n    crm_click_queue zone=crm_shared:4m;\n");
refused('crm_link_cache inside a server', qr/"crm_link_cache" directive is not allowed here/,
    http => $Q, server => "        crm_link_cache zone=crm_links:4m;\n$RLOC");
refused('crm_redirect with arguments', qr/invalid number of arguments in "crm_redirect"/,
    server => "        location /r/ { crm_redirect on; }\n");
refused('crm_redirect and crm_metrics in one location', qr/is duplicate/,
    server => "        location /r/ { crm_redirect; crm_metrics; }\n");


# --- a running server ---------------------------------------------------------------

my $t = CrmTest->new;
$t->start_db;
$t->write_config($t->edge_config);
$t->start_nginx;

my ($acc) = $t->member;
my $OWNER = $acc->{id};

sub add_link {
    my $id = link_id();
    $t->psql("INSERT INTO crm.affiliate_links (id, owner_id, target_url, install_cents,"
        . " conversion_bps, currency) VALUES ('$id', '$OWNER', 'https://shop.example.com/$id',"
        . " 500, 1000, 'USD'); INSERT INTO crm.affiliate_link_stats (link_id) VALUES ('$id')");
    return $id;
}

sub clicks_of {
    my ($id) = @_;
    return $t->psql("SELECT count(*) FROM crm.clicks WHERE link_id = '$id'") + 0;
}

my @TOTALS;    # the counter names, from the first /metrics
sub totals {
    my ($m) = @_;
    return { map { $_ => $m->{$_} } @TOTALS };
}

my $LOADS = 'crm_link_loads_total';
my $HIT = 'crm_link_cache_lookups_total{result="hit"}';
my $NEG = 'crm_link_cache_lookups_total{result="negative_hit"}';
my $R302 = 'crm_redirects_total{status="302"}';

my $link = add_link();
my $unknown = link_id();
is($t->get("/r/$link")->{status}, 302, 'a link: 302') for 1 .. 20;
is($t->get("/r/$unknown")->{status}, 404, 'an unknown id: 404') for 1 .. 3;
is($t->get('/r/nope')->{status}, 404, 'a malformed id: 404');
ok(wait_until(10, sub { clicks_of($link) == 20 }), 'the 20 clicks are written');
ok(wait_until(5, sub { my $m = $t->metrics; $m->{crm_clicks_flushed_total} == 20 }),
    'crm_clicks_flushed_total 20');

# new workers move these themselves (their probes are pool tasks, their
# threads connect, they listen for link changes): across a reload they
# must grow or stay, not be equal
my $BY_WORKERS = qr/^crm_(?:thread_pool_tasks_total|db_connections_total|link_listens_total)\b/;

sub kept_or_grown {
    my ($new, $old) = @_;
    return [ grep { $new->{$_} < $old->{$_} } grep { /$BY_WORKERS/ } keys %$old ];
}

my $m0 = $t->metrics;
@TOTALS = sort grep { /_total/ && !/$BY_WORKERS/ } keys %$m0;
cmp_ok(scalar(@TOTALS), '>=', 15, scalar(@TOTALS) . ' counters in /metrics');
is($m0->{$R302}, 20, 'before the reload: 20 redirects counted');
is($m0->{$LOADS}, 2, 'before the reload: 2 link loads');

# --- reload, same zones ---
ok($t->reload, 'nginx -s reload with the same zones');
my $m1 = $t->metrics;
is_deeply(totals($m1), totals($m0), 'every counter survives the reload (they live in the shared zone)');
is_deeply(kept_or_grown($m1, $m0), [], '... the thread pools\' and connections\' too, grown by the new workers');
cmp_ok($m1->{crm_config_generation}, '>', $m0->{crm_config_generation},
    'crm_config_generation: the new workers run the new configuration');
is($m1->{crm_click_queue_size_bytes}, $m0->{crm_click_queue_size_bytes}, 'the same queue');

is($t->get("/r/$link")->{status}, 302, 'after the reload: the link, 302');
is($t->get("/r/$unknown")->{status}, 404, 'after the reload: the unknown id, 404');
my $m2 = $t->metrics;
is($m2->{$LOADS} - $m1->{$LOADS}, 0, 'after the reload: no load, both come from the kept cache');
is($m2->{$HIT} - $m1->{$HIT}, 1, '... a cache hit for the link');
is($m2->{$NEG} - $m1->{$NEG}, 1, '... a negative hit for the unknown id');
ok(wait_until(10, sub { clicks_of($link) == 21 }), 'after the reload: the click is written');
ok(wait_until(5, sub { ($m2 = $t->metrics)->{crm_clicks_flushed_total} == 21 }),
    'crm_clicks_flushed_total 21');

# --- reload with another ttl, same zones: the entries and counters stay ---
ok($t->reconfigure($t->edge_config(ttl => '30s', negative_ttl => '30s', flush => '20ms')),
    'nginx -s reload with other ttl, negative_ttl and flush, the same zone sizes');
my $m3 = $t->metrics;
is_deeply(totals($m3), totals($m2), 'every counter survives that reload too');
is_deeply(kept_or_grown($m3, $m2), [], '... the thread pools\' and connections\' too');
is($t->get("/r/$link")->{status}, 302, 'the link, 302');
is($t->metrics->{$LOADS}, $m3->{$LOADS}, '... still from the cache');
ok(wait_until(10, sub { clicks_of($link) == 22 }), '... and its click is written');

# --- reload with the zone sizes changed ---
#
# nginx reuses a zone only when its name, owner and size are unchanged;
# with another size it creates a new zone, so the new workers start with
# an empty cache and an empty queue.  The counters are the module's own
# zone's, which the operator does not size: they go on.  What the old
# queue still holds must not be lost: PostgreSQL is down here, so the old
# queue holds clicks when the old workers exit (they spool them), and once
# PostgreSQL is back they must all arrive.

ok(wait_until(5, sub { $t->metrics->{crm_click_queue_bytes} == 0 }), 'the queue is empty');
$t->stop_db;
my $held = 0;
for (1 .. 30) {
    $held++ if $t->get("/r/$link")->{status} == 302;
}
is($held, 30, 'PostgreSQL down: the cached link still answers 302 (30 times)');
my $m4 = $t->metrics;
cmp_ok($m4->{crm_click_queue_bytes}, '>', 0, "PostgreSQL down: the queue holds the clicks ($m4->{crm_click_queue_bytes} bytes)");

ok($t->reconfigure($t->edge_config(cache => '8m', queue => '16m', ttl => '30s')),
    'nginx -s reload with the cache 4m -> 8m and the queue 8m -> 16m: the reload happens');
my $m5 = $t->metrics;
cmp_ok($m5->{crm_click_queue_size_bytes}, '>', $m4->{crm_click_queue_size_bytes},
    "the new queue is larger ($m4->{crm_click_queue_size_bytes} -> $m5->{crm_click_queue_size_bytes} bytes)");
is($m5->{$R302}, $m4->{$R302}, 'new edge zones: the counters go on, in the module\'s own zone');
is($m5->{crm_click_queue_bytes}, 0, 'a new zone: the new queue is empty');
my @spool = glob($t->dir . '/spool/clicks-*');
ok(@spool, 'the old workers spooled what the old queue held: ' . join(' ', map { s{.*/}{}r } @spool));
note('spool: ' . join(' ', map { (s{.*/}{}r) . ' (' . (-s $_) . ' bytes)' } @spool));

$t->start_db;
my $want = 22 + 30;
my $got = 0;
ok(wait_until(30, sub { ($got = clicks_of($link)) >= $want }, 0.25),
    "PostgreSQL back: the $held clicks the old queue held arrive (within 30 s)")
    or diag("rows: $got, want $want; spool folder: "
        . join(' ', map { (s{.*/}{}r) . ' (' . (-s $_) . ' bytes)' } glob($t->dir . '/spool/*'))
        . '; metrics: ' . join(' ', map { "$_=" . $t->metrics->{$_} } qw(crm_click_spool_bytes crm_clicks_replayed_total)));
is(clicks_of($link), $want, "exactly $want click rows for the link");
is($t->psql("SELECT clicks FROM crm.affiliate_link_stats WHERE link_id = '$link'"), $want,
    "affiliate_link_stats.clicks == $want");
ok(wait_until(10, sub { my @f = glob($t->dir . '/spool/clicks-*'); !@f }), 'the spool folder empties');

my $rows = clicks_of($link);
my $loads = $t->metrics->{$LOADS};
is($t->get("/r/$link")->{status}, 302, 'the new zones: the link, 302');
my $m6 = $t->metrics;
is($m6->{$LOADS}, $loads + 1, 'the new zones: an empty cache, so one load');
is($m6->{crm_clicks_dropped_total}, 0, 'crm_clicks_dropped_total 0');
ok(wait_until(10, sub { clicks_of($link) == $rows + 1 }), '... and its click is written');

# --- the click flush with the database timeouts left to their defaults ---
#
# the flush takes the http level's crm_database, which no merge completes:
# unset timeouts must still be the defaults, not nginx's "unset" marker

my $failures = $t->metrics->{crm_click_flush_failures_total};
ok($t->reconfigure(conf => { crm_db_connect_timeout => undef, crm_db_statement_timeout => undef }),
    'reload without crm_db_connect_timeout and crm_db_statement_timeout');
$rows = clicks_of($link);
is($t->get("/r/$link")->{status}, 302, 'defaults: the link, 302');
ok(wait_until(10, sub { clicks_of($link) == $rows + 1 }), 'defaults: its click is written');
is($t->metrics->{crm_click_flush_failures_total}, $failures, 'defaults: no flush failed');
unlike($t->error_log, qr/statement_timeout.*exceeds/, 'defaults: no impossible statement_timeout');

$t->done;

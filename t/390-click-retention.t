#!/usr/bin/perl
# Retention of raw clicks: crm.clicks_retain(n) (./build.sh retain-clicks
# n) detaches and drops the monthly partitions older than the current
# month and the n before it, and nothing else: the kept months' rows, the
# performance counters and the attributions stay as they were; n below 1
# is refused; a second run drops nothing.

use strict;
use warnings;

use Test::More;
use CrmTest;

my $t = CrmTest->new;
$t->start_db;
$t->write_config;
$t->start_nginx;

sub q1 { scalar $t->psql($_[0]) }

my ($acc) = $t->register;
my $link = CrmTest::link_id();
$t->psql("INSERT INTO crm.affiliate_links (id, owner_id, target_url, install_cents,"
    . " conversion_bps, currency) VALUES ('$link', '$acc->{id}', 'https://shop.example.com/',"
    . " 500, 1000, 'USD'); INSERT INTO crm.affiliate_link_stats (link_id) VALUES ('$link')");

# months 0 (now) to 14 back, 3 clicks each, at the 15th of the month
my $MONTHS = 14;
for my $k (0 .. $MONTHS) {
    my $at = "date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        . " - interval '$k months' + interval '14 days'";
    $t->psql("SELECT crm.click_partition_ensure($at);"
        . " INSERT INTO crm.clicks (click_id, link_id, clicked_at, ip, user_agent, referer,"
        . " is_bot, is_head) SELECT 'c$k-' || g, '$link', $at, '127.0.0.1', 'test', '',"
        . " false, false FROM generate_series(1, 3) g");
}

sub months_held {
    return [ $t->psql("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        . " WHERE i.inhparent = 'crm.clicks'::regclass ORDER BY c.relname") ];
}
sub month_name {
    my ($k) = @_;
    return q1("SELECT 'clicks_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC')"
        . " - interval '$k months', 'YYYYMM')");
}

my $held = months_held();
my %held = map { $_ => 1 } @$held;
ok(!grep({ !$held{ month_name($_) } } 0 .. $MONTHS), "a partition for each of the $MONTHS months back");
is(q1("SELECT count(*) FROM crm.clicks"), 3 * ($MONTHS + 1), '3 clicks in each');
# the link's clicks as the performance views count them: the rollup and
# what is not folded into it yet
my $COUNTED = "SELECT coalesce((SELECT sum(clicks) FROM crm.link_daily WHERE link_id = '$link'), 0)"
    . " + coalesce((SELECT sum(clicks) FROM crm.stat_deltas WHERE link_id = '$link'), 0)";
my $deltas = q1($COUNTED);
is($deltas, 3 * ($MONTHS + 1), 'the counters counted every click as it was written');

# refused
my $out = `psql -X -q -tA -h 127.0.0.1 -p ${\ $t->pg_port } -U crm -d crm -c 'SELECT crm.clicks_retain(0)' 2>&1`;
isnt($?, 0, 'crm.clicks_retain(0): refused');
like($out, qr/months must be at least 1/, '... saying why');
is_deeply(months_held(), $held, '... and nothing dropped');

# keep the current month and the 3 before it
my @dropped = $t->psql("SELECT crm.clicks_retain(3)");
my @want = reverse map { month_name($_) } 4 .. $MONTHS;
is_deeply([sort @dropped], [sort @want], 'crm.clicks_retain(3) drops the months 4 and more back, by name');
my %now = map { $_ => 1 } @{ months_held() };
ok(!grep({ !$now{ month_name($_) } } 0 .. 3), '... keeps the current month and the 3 before it');
ok(!grep({ $now{$_} } @want), '... and holds none of the others');
is(q1("SELECT count(*) FROM crm.clicks"), 3 * 4, '... their 12 clicks all there');
is(q1($COUNTED), $deltas,
    '... the counters unchanged');
for my $name (@want) {
    is(q1("SELECT to_regclass('crm.$name') IS NULL"), 't', "$name: dropped, not only detached");
}

# the command: the private cluster's
ok($t->_build_sh('retain-clicks', '2'), './build.sh retain-clicks 2');
like(CrmTest::_slurp($t->dir . '/build-sh.log'), qr/dropped crm\.\Q${\ month_name(3)}\E/,
    '... names the month it dropped');
ok(!$t->_build_sh('retain-clicks', '0'), './build.sh retain-clicks 0: refused');
is(q1("SELECT count(*) FROM crm.clicks"), 3 * 3, '3 months kept');
is_deeply([ $t->psql("SELECT crm.clicks_retain(2)") ], [], 'a second run drops nothing');

# new clicks still go where they belong
$t->psql("INSERT INTO crm.clicks (click_id, link_id, clicked_at, ip, user_agent, referer,"
    . " is_bot, is_head) VALUES ('c-new', '$link', now(), '127.0.0.1', 'test', '', false, false)");
is(q1("SELECT count(*) FROM crm.clicks"), 3 * 3 + 1, 'a click written after the retention is stored');

$t->done;

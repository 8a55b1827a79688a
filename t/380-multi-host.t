#!/usr/bin/perl
# Two gateway hosts on one PostgreSQL: separate nginx prefixes, ports and
# shared zones (each host its own link cache), the same secrets.  A link
# changed through one host's API applies on the other within a second, by
# PostgreSQL's LISTEN/NOTIFY on crm_links, not at the end of the 60 s
# cache TTL: disabled, enabled, retargeted, its owner deactivated and back.
# When every listener of a host is lost, a change made meanwhile is not
# heard: the host empties its cache when it listens again.  Redirects sent
# to both hosts at once are each stored once; one install callback sent to
# both hosts at once has one effect.

use strict;
use warnings;

use Test::More;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep time);
use CrmTest;

my $A = CrmTest->new;
$A->start_db;

# host B: its own nginx, A's database and secrets
my $B = CrmTest->new(jwt_secret => $A->jwt_secret,
    callback_secret => $A->callback_secret,
    credentials_key => $A->credentials_key);
$B->{pg_port} = $A->pg_port;

my %edge_a = $A->edge_config(ttl => '60s', negative_ttl => '60s');
my %edge_b = $B->edge_config(ttl => '60s', negative_ttl => '60s');
$A->write_config(%edge_a);
$B->write_config(%edge_b, conf => { crm_database => '"' . $A->dsn . '"' });
$A->start_nginx;
$B->start_nginx;

my ($admin, $admin_tok) = $A->admin;
my ($acc, $tok) = $A->member;
my $r = $B->get('/auth/me', token => $tok);
is($r->{status}, 200, "host B accepts host A's token (one database, one secret)");

sub link_of {
    my (%f) = @_;
    my $r = $A->post_json('/affiliate/links', { target_url => 'https://shop.example.com/one', %f },
        token => $tok);
    is($r->{status}, 201, 'a link made on host A') or diag($r->{content});
    return $r->{json}{affiliate_link_id};
}

# how long (s) until host B's redirect of $id says what $ok accepts
sub b_sees {
    my ($id, $ok) = @_;
    my $t0 = time;
    my $seen = CrmTest::wait_until(5, sub { $ok->($B->get("/r/$id")) }, 0.02);
    return $seen ? time - $t0 : undef;
}

sub within_a_second {
    my ($secs, $name) = @_;
    ok(defined $secs && $secs < 1, sprintf '%s: on host B within a second (%s)', $name,
        defined $secs ? sprintf('%.3f s', $secs) : 'not in 5 s');
}

my $link = link_of();
$r = $B->get("/r/$link");
is($r->{status}, 302, 'host B redirects the link (and caches it for 60 s)');
is($B->get("/r/$link")->{status}, 302, '... from its cache');

$r = $A->patch_json("/affiliate/links/$link", { status => 'disabled' }, token => $tok);
is($r->{status}, 200, 'the owner disables the link on host A') or diag($r->{content});
within_a_second(b_sees($link, sub { $_[0]{status} == 410 }), 'disabled');

$r = $A->patch_json("/affiliate/links/$link", { status => 'active' }, token => $tok);
is($r->{status}, 200, '... and enables it again');
within_a_second(b_sees($link, sub { $_[0]{status} == 302 }), 'enabled');

$r = $A->patch_json("/affiliate/links/$link", { target_url => 'https://shop.example.com/two' },
    token => $tok);
is($r->{status}, 200, '... and points it elsewhere') or diag($r->{content});
within_a_second(b_sees($link, sub {
    $_[0]{status} == 302 && ($_[0]{headers}{location} // '') =~ m{^https://shop\.example\.com/two} }),
    'retargeted');

$r = $A->patch_json("/admin/users/$acc->{id}", { is_active => JSON::PP::false() },
    token => $admin_tok);
is($r->{status}, 200, 'an admin deactivates the owner on host A') or diag($r->{content});
within_a_second(b_sees($link, sub { $_[0]{status} == 410 }), "the owner's deactivation");
$r = $A->patch_json("/admin/users/$acc->{id}", { is_active => JSON::PP::true() },
    token => $admin_tok);
is($r->{status}, 200, '... and activates it again');
within_a_second(b_sees($link, sub { $_[0]{status} == 302 }), "the owner's return");

$r = $A->patch_json("/admin/links/$link", { status => 'disabled' }, token => $admin_tok);
is($r->{status}, 200, 'an admin disables the link on host A') or diag($r->{content});
within_a_second(b_sees($link, sub { $_[0]{status} == 410 }), "the admin's block");
$A->patch_json("/admin/links/$link", { status => 'active' }, token => $admin_tok);
within_a_second(b_sees($link, sub { $_[0]{status} == 302 }), "the admin's unblock");

# a link made after its id was looked up (and cached as unknown) on B is
# a change too; ids are random, so the id is written by hand
my $later = CrmTest::link_id();
is($B->get("/r/$later")->{status}, 404, 'an id nobody has: 404 on host B (cached as unknown)');
$A->psql("INSERT INTO crm.affiliate_links (id, owner_id, target_url, install_cents,"
    . " conversion_bps, currency) VALUES ('$later', '$acc->{id}', 'https://shop.example.com/later',"
    . " 500, 1000, 'USD'); INSERT INTO crm.affiliate_link_stats (link_id) VALUES ('$later')");
within_a_second(b_sees($later, sub { $_[0]{status} == 302 }), 'a link made after its id was cached as unknown');

my $mb = $B->metrics;
cmp_ok($mb->{crm_link_notifications_total} // 0, '>=', 8, 'host B heard the changes (crm_link_notifications_total)');
is($mb->{crm_link_listeners}, 2, 'both of host B\'s workers listen (crm_link_listeners)');

# --- every listener of host B lost: what changed meanwhile is not heard ----------------

is($B->get("/r/$link")->{status}, 302, 'host B caches the link again');
# one transaction: the listeners are terminated (and waited for), the
# link disabled, and the host's listeners counted; the notification goes
# out at its commit, a few milliseconds later, while host B waits 0.5 s
# before it connects again
my $B_LISTENERS = "application_name IN ("
    . join(',', map { "'crm-gateway-listen/$_'" } $B->worker_pids) . ")";
is($A->psql("SELECT count(*) FROM pg_stat_activity WHERE $B_LISTENERS"), 2,
    'host B has its two listener connections');
# psql prints each statement's rows: the last line is the count
my $left = ($A->psql(
    "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE $B_LISTENERS;"
    . " UPDATE crm.affiliate_links SET status = 'disabled' WHERE id = '$link';"
    . " SELECT pg_stat_clear_snapshot();"
    . " SELECT count(*) FROM pg_stat_activity WHERE $B_LISTENERS"))[-1];
is($left, 0, '... terminated, and the link disabled while host B had none');
my $secs = b_sees($link, sub { $_[0]{status} == 410 });
ok(defined $secs && $secs < 3, sprintf 'host B answers 410 once it listens again, its cache emptied (%s)',
    defined $secs ? sprintf('%.3f s', $secs) : 'not in 5 s');
ok(CrmTest::wait_until(5, sub { ($B->metrics->{crm_link_listeners} // 0) == 2 }),
    'both workers listen again');
cmp_ok($B->metrics->{crm_link_listens_lost_total}, '>=', 2, 'crm_link_listens_lost_total counts the losses');
like($B->error_log, qr/link cache emptied/, "host B's error log says why its cache was emptied");
$B->allow_log(qr/link change listener lost/);
$A->psql("UPDATE crm.affiliate_links SET status = 'active' WHERE id = '$link'");
within_a_second(b_sees($link, sub { $_[0]{status} == 302 }), 'heard again after the reconnect');

# --- both hosts at once -------------------------------------------------------------------

# redirects through both hosts from two processes: every click stored once
my $N = 400;
my @kids;
for my $host ($A, $B) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        delete $host->{ua};    # the parent's keep-alive connection is its own
        my $bad = 0;
        for (1 .. $N) {
            my $s = $host->get("/r/$link")->{status};
            $bad++ unless $s == 302;
        }
        POSIX::_exit($bad ? 1 : 0);
    }
    push @kids, $pid;
}
my $failed = 0;
for (@kids) { waitpid $_, 0; $failed++ if $? }
is($failed, 0, "$N redirects on each host at once: all 302");
ok(CrmTest::wait_until(15, sub {
    $A->psql("SELECT count(*) FROM crm.clicks WHERE link_id = '$link'") >= 2 * $N + 6 }),
    'the clicks are written');
sleep 0.5;
my ($clicks, $distinct) = split /\|/, $A->psql(
    "SELECT count(*), count(DISTINCT click_id) FROM crm.clicks WHERE link_id = '$link'");
cmp_ok($clicks, '>=', 2 * $N, "the link's clicks: $clicks, the 2 x $N among them");
is($distinct, $clicks, '... each click id once');
is($A->psql("SELECT clicks FROM crm.affiliate_link_stats WHERE link_id = '$link'"), $clicks,
    "... and the link's counter says as many");

# one install, sent to both hosts at once, 10 times each: one effect
my %install = (shop_domain => 'both-hosts.myshopify.com', affiliate_link_id => $link);
@kids = ();
for my $host ($A, $B) {
    for (1 .. 10) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            delete $host->{ua};
            my $s = $host->callback('/callbacks/install', \%install)->{status};
            POSIX::_exit($s == 200 ? 0 : 1);
        }
        push @kids, $pid;
    }
}
$failed = 0;
for (@kids) { waitpid $_, 0; $failed++ if $? }
is($failed, 0, 'the same install callback, 10 times on each host at once: all 200');
is($A->psql("SELECT count(*) FROM crm.attributions a JOIN crm.leads l ON l.id = a.lead_id"
    . " WHERE l.shop_domain = 'both-hosts.myshopify.com'"), 1, '... one attribution');
is($A->psql("SELECT count(*) FROM crm.leads WHERE shop_domain = 'both-hosts.myshopify.com'"), 1,
    '... one lead');
is($A->psql("SELECT count(*) FROM crm.wallet_transactions WHERE account_id = '$acc->{id}'"
    . " AND kind = 'commission_install'"), 1, '... one commission');

$B->finish;
$A->done;

#!/usr/bin/perl
# Two gateway hosts on one PostgreSQL: separate nginx prefixes, ports and
# shared zones (each host its own link cache), the same secrets.  A link
# changed through one host's API applies on the other within a second, by
# PostgreSQL's LISTEN/NOTIFY on crm_links, not at the end of the 60 s
# cache TTL: disabled, enabled, retargeted, its owner deactivated and back.
# When every listener of a host is lost, a change made meanwhile is not
# heard: the host empties its cache when it listens again.  Redirects sent
# to both hosts at once are each stored once; one install callback sent to
# both hosts at once has one effect.  Then both hosts' workers run the CRM
# sync of one member's Klaviyo (the strict stand-in, t/lib/MockCrm.pm)
# from the one queue while processes on both hosts create, update, move
# and delete the member's leads, report installs and conversions to both
# hosts and redirect: every job is delivered once, at its first attempt,
# each lead's events in the order of its jobs; both hosts deliver some
# (crm_sync_jobs_total); each repeated callback has one effect; every
# click is stored once.

use strict;
use warnings;

use Test::More;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep time);
use CrmTest;
use MockCrm;

my $A = CrmTest->new;
my $mock = MockCrm->new(dir => $A->dir);
$A->start_db;

# host B: its own nginx, A's database and secrets
my $B = CrmTest->new(jwt_secret => $A->jwt_secret,
    callback_secret => $A->callback_secret,
    credentials_key => $A->credentials_key);
$B->{pg_port} = $A->pg_port;

my %edge_a = $A->edge_config(ttl => '60s', negative_ttl => '60s');
my %edge_b = $B->edge_config(ttl => '60s', negative_ttl => '60s');
# both hosts sync to the one stand-in CRM, from the one queue; a lease a
# worker, so that the four workers share an integration's four
# (crm_sync_concurrency): no worker can hold them all while others wait
my %sync = (crm_klaviyo_url => $mock->url, crm_outbound_allow => '127.0.0.0/8',
    crm_outbound_connect_timeout => '1s', crm_outbound_timeout => '3s',
    crm_sync_interval => '100ms', crm_sync_leases => 1);
$A->write_config(%edge_a, conf => \%sync);
$B->write_config(%edge_b, conf => { %sync, crm_database => '"' . $A->dsn . '"' });
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

# --- the CRM sync through both hosts at once ----------------------------------------------

# A member with Klaviyo connected: $WRITERS processes on each host give
# $LEADS leads each a life (created, updated, moved, deleted; every third
# installed through the member's link and converted before it is deleted,
# each callback sent to both hosts), while two more processes redirect
# through the link, one on each host.
my $WRITERS = 3;
my $LEADS = 15;
my $CLICKS = 200;
my @FREE = qw(created updated stage_changed deleted);
my @PAID = qw(created updated stage_changed install conversion deleted);

my ($sacc, $stok) = $A->member;
$sacc = $sacc->{id};
$r = $A->post_json('/crm/connect', { crm_type => 'klaviyo',
    credentials => { api_key => $mock->klaviyo_key } }, token => $stok);
is($r->{status}, 201, 'a member connects Klaviyo through host A') or diag($r->{content});
$r = $A->post_json('/affiliate/links', { target_url => 'https://shop.example.com/sync' },
    token => $stok);
is($r->{status}, 201, '... and makes a link') or diag($r->{content});
my $slink = $r->{json}{affiliate_link_id};

# runs each sub in a process of its own, all released together; a sub
# returns what went wrong ('' for nothing); the number of processes failed
sub at_once {
    my (@work) = @_;
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    my @pids;
    for my $work (@work) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $go_w;
            delete $_->{ua} for $A, $B;
            sysread $go_r, my $byte, 1;    # end of file: go
            my $wrong = eval { $work->() } // "died: $@";
            print STDERR "# $wrong\n" if $wrong;
            POSIX::_exit($wrong ? 1 : 0);
        }
        push @pids, $pid;
    }
    close $go_r;
    close $go_w;
    my $n = 0;
    for (@pids) { waitpid $_, 0; $n++ if $? }
    return $n;
}

# $LEADS leads' lives through $host, the repeated callbacks through
# $other; what went wrong
sub lead_lives {
    my ($host, $other, $tag) = @_;
    for my $i (1 .. $LEADS) {
        my $shop = ($i % 3 ? 'free' : 'paid') . "-$tag-$i.myshopify.com";
        my $r = $host->post_json('/leads/', { name => "Sync $tag $i",
            email => "sync-$tag-$i\@example.com", shop_domain => $shop }, token => $stok);
        return "$shop: create: $r->{status} $r->{content}" unless $r->{status} == 201;
        my $lead = "/leads/$r->{json}{id}";
        my %install = (shop_domain => $shop, affiliate_link_id => $slink);
        my %order = (%install, order_id => "order-$tag-$i", amount_cents => 1999,
            currency => 'USD');
        # [what, the status (and for a callback, whether it made something), response]
        my @steps = (
            ['update', '200', $host->put_json($lead, { company => "Company $i" }, token => $stok)],
            ['move', '200', $host->put_json("$lead/stage",
                { stage => 'demo', substage => 'demo_scheduled' }, token => $stok)],
            $i % 3 ? () : (
                ['install', '200 new', $host->callback('/callbacks/install', \%install)],
                ['install again', '200 again', $other->callback('/callbacks/install', \%install)],
                ['conversion', '200 new', $other->callback('/callbacks/conversion', \%order)],
                ['conversion again', '200 again',
                    $host->callback('/callbacks/conversion', \%order)],
            ),
            ['delete', '204', $host->del($lead, token => $stok)],
        );
        for (@steps) {
            my ($what, $want, $r) = @$_;
            my $made = ref $r->{json} eq 'HASH' && exists $r->{json}{created};
            my $got = join ' ', $r->{status}, $made ? ($r->{json}{created} ? 'new' : 'again') : ();
            return "$shop: $what: $r->{status} $r->{content}" unless $got eq $want;
        }
    }
    return '';
}

sub redirects {
    my ($host) = @_;
    my $bad = grep { $host->get("/r/$slink")->{status} != 302 } 1 .. $CLICKS;
    return $bad ? "$bad of $CLICKS redirects on port " . $host->port . " not 302" : '';
}

my $t0 = time;
my @work = map { my $host = $_; sub { redirects($host) } } $A, $B;
for my $w (1 .. $WRITERS) {
    push @work, sub { lead_lives($A, $B, "a$w") }, sub { lead_lives($B, $A, "b$w") };
}
$failed = at_once(@work);
is($failed, 0, sprintf '%d processes of lead writes and callbacks on each host, and redirects,'
    . ' at once: all answered as they should (%.1f s)', $WRITERS, time - $t0);
my $leads = 2 * $WRITERS * $LEADS;
my $paid = 2 * $WRITERS * int($LEADS / 3);
my $jobs = @FREE * ($leads - $paid) + @PAID * $paid;

sub waiting_jobs {
    $A->psql("SELECT count(*) FROM crm.sync_jobs WHERE account_id = '$sacc'"
        . " AND state IN ('pending', 'failed')");
}
ok(CrmTest::wait_until(150, sub { waiting_jobs() == 0 }, 0.2),
    sprintf 'every sync job sent (%.1f s after the writes began)', time - $t0);
my %states = map { split /\|/ } $A->psql("SELECT state, count(*) FROM crm.sync_jobs"
    . " WHERE account_id = '$sacc' GROUP BY state");
is_deeply(\%states, { ok => $jobs }, "$jobs jobs, all ok");

my %shop_of = map { split /\|/ } $A->psql("SELECT id, shop_domain FROM crm.leads"
    . " WHERE owner_id = '$sacc'");
is(scalar(keys %shop_of), $leads, "$leads leads");
my (%kinds, %ids);
for ($A->psql("SELECT lead_id, event, event_id FROM crm.sync_jobs WHERE account_id = '$sacc'"
    . " ORDER BY id")) {
    my ($lead, $kind, $id) = split /\|/;
    push @{ $kinds{$lead} }, $kind;
    push @{ $ids{$lead} }, $id;
}
my @odd = grep { "@{ $kinds{$_} || [] }" ne "@{ $shop_of{$_} =~ /^paid/ ? \@PAID : \@FREE }" }
    keys %shop_of;
is_deeply([map { "$shop_of{$_}: @{ $kinds{$_} || [] }" } @odd], [],
    "each lead's jobs: one per change, one install and one conversion however often reported");

my @events = grep { $shop_of{ $_->{profile}{external_id} // '' } }
    @{ $mock->state->{klaviyo}{events} };
is(scalar(@events), $jobs, 'the CRM received as many events as there are jobs');
my %times;
$times{ $_->{unique_id} }++ for @events;
is_deeply([grep { $times{$_} > 1 } sort keys %times], [], '... no event id twice');
is_deeply([sort keys %times], [sort map { @$_ } values %ids], "... the jobs' event ids");
my %got;
push @{ $got{ $_->{profile}{external_id} } }, $_->{unique_id} for @events;
is_deeply(\%got, \%ids, "... each lead's in the order of its jobs");
is($A->psql("SELECT count(*) FROM crm.sync_jobs WHERE account_id = '$sacc' AND attempts <> 1"),
    0, 'each job sent at its first attempt');
is($A->psql("SELECT count(*) || ' ' || count(*) FILTER (WHERE outcome = 'ok' AND attempt = 1)"
    . " FROM crm.sync_log WHERE account_id = '$sacc' AND entity = 'lead'"), "$jobs $jobs",
    '... the sync log has one row a job, ok at the first attempt');
$r = $B->get('/crm/klaviyo/status', token => $stok);
is_deeply($r->{json}{counts}, { pending => 0, ok => $jobs, failed => 0, dead => 0 },
    "host B's /crm/klaviyo/status counts them");

my $OK = 'crm_sync_jobs_total{provider="klaviyo",outcome="ok"}';
my @sent;
CrmTest::wait_until(5, sub { @sent = map { $_->metrics->{$OK} // 0 } $A, $B;
    $sent[0] + $sent[1] >= $jobs });
ok($sent[0] > 0 && $sent[1] > 0, "both hosts sent jobs ($OK: A $sent[0], B $sent[1])");
is($sent[0] + $sent[1], $jobs, '... as many as there are jobs between them');

is($A->psql("SELECT count(*) FROM crm.attributions WHERE owner_id = '$sacc'") . ' '
    . $A->psql("SELECT count(*) FROM crm.conversions WHERE owner_id = '$sacc'"), "$paid $paid",
    'every install and conversion reported to both hosts: one attribution and one conversion');
is($A->psql("SELECT count(*) FILTER (WHERE kind = 'commission_install') || ' '"
    . " || count(*) FILTER (WHERE kind = 'commission_conversion')"
    . " FROM crm.wallet_transactions WHERE account_id = '$sacc'"), "$paid $paid",
    '... and one commission each');

ok(CrmTest::wait_until(15, sub {
    $A->psql("SELECT count(*) FROM crm.clicks WHERE link_id = '$slink'") >= 2 * $CLICKS }),
    "the sync link's clicks are written");
sleep 0.5;
is($A->psql("SELECT count(*) || ' ' || count(DISTINCT click_id) FROM crm.clicks"
    . " WHERE link_id = '$slink'"), 2 * $CLICKS . ' ' . 2 * $CLICKS,
    "... $CLICKS from each host, each click id once");
is($A->psql("SELECT clicks FROM crm.affiliate_link_stats WHERE link_id = '$slink'"), 2 * $CLICKS,
    "... and the link's counter says as many");

$B->finish;
$A->done;

#!/usr/bin/env perl
#
# A mixed soak (issue 13): one gateway (2 workers) with the affiliate edge,
# the CRM sync to a Klaviyo stand-in (t/lib/MockCrm.pm) and /metrics,
# under a steady load for --minutes (60): redirects, API reads and writes,
# signed install and conversion callbacks (some sent again).  nginx is
# reloaded at 1/3 and 2/3 of the run and PostgreSQL restarted at 1/2.
# Every SOAK_SAMPLE_SECONDS (10) a sampler records the workers' and the
# master's RSS (VmRSS), each shared zone's use (crm_zone_used_bytes), the
# open file descriptors of master and workers and PostgreSQL's client
# connections to the database; they go to soak.tsv, with the events, and
# are plotted to soak.png.
#
# The load: SOAK_LOADERS (6) forked clients, each paced to its share of
# SOAK_RATE (150) requests/s on a fixed schedule (a client that falls more
# than 2 s behind skips ahead rather than bursting), each request one of:
# 60% GET /r/{id} over 20 links (a browser's User-Agent), 20% API reads,
# 12% lead writes of the Klaviyo-connected account (create, update, move,
# delete: each makes one sync job), 8% callbacks (installs for new shops,
# conversions of installed shops, 30% of them sent again).  A request that
# fails on a kept-alive connection (closed by a reload) is sent once more
# on a new one, as browsers do.  While PostgreSQL is down (and 10 s
# after), API calls may answer 503; redirects must still be 302.
#
# The run fails when, after the load stopped and the click queue and the
# sync queue drained:
#   (a) a sampled series trends upward after the warm-up (below);
#   (b) a click was lost or stored twice: the clicks of the soak's links
#       are not the redirects answered 302 (plus at most the requests that
#       got no answer), or a click id repeats, or clicks were dropped;
#   (c) a sync job was lost or doubled: a job is not ok, the Klaviyo
#       stand-in did not get exactly one event per ok job (by unique_id),
#       or the jobs of an event kind are not the writes that made them;
#   (d) a repeated callback had a second effect: more than one
#       attribution or install commission per shop and link, more than one
#       conversion or conversion commission per order, or none for one
#       answered 200;
#   (e) error.log has an [alert], an [emerg] after startup, a crash or a
#       worker "exited on signal", nginx does not stop gracefully, an API
#       call answered other than expected outside the outage, or a reload
#       failed.
#
# The trend rule, per series.  Samples of the warm-up (10% of the run, 30
# s to 5 min) and of each event and the settling time after it (5% of the
# run, 20 s to 3 min: a new worker's heap grows for its first minutes,
# and it opens its connections as it needs them) are left out; the rest
# fall into segments between events.  A reload replaces the workers and a
# restart of PostgreSQL their connections, so a leak shows as growth
# within segments, or as a level that steps up from event to event:
#   drift = the least-squares slope fitted within the segments (one line
#           per segment, one common slope) x the time the segments span
#           (growth seen within them, not extrapolated over the gaps);
#   step  = the median of the last segment - the median of the one after
#           the first reload.  The first reload counts as warm-up for
#           levels: there nginx's master builds its second configuration
#           cycle (+5 MiB, once), and the first workers are the ones that
#           ran the setup (registrations, first connections).
# Either above max(pct x the series' median, floor) fails the run:
#   worker RSS - shared, sum  5%, 4 MiB   worker RSS - shared, max  5%, 3 MiB
#   master RSS                5%, 2 MiB   open fds                  5%, 4
#   PG connections           10%, 3       each zone's use           2%, 64 KiB
# A worker's RSS counts every page of the shared zones it has touched,
# which grows after each reload until the click queue's ring (8 MiB) has
# gone round once, minutes later: the workers' RSS is sampled and plotted
# whole, but judged less its shared memory (RssShmem), and the zones by
# their own gauges.  In the default 60-minute run the segments span about
# 45 min (5 to 60 less the three events and 3 min after each): it detects
# a steady growth of 4 MiB / 45 min = 91 KiB/min (1.5 KiB/s, about 10
# bytes a request at 150 requests/s) in the workers' private memory, 45
# KiB/min in the master's, 4 fds or 3 connections in 45 min (one fd per
# 11 min), 64 KiB of a zone; a leak that comes with the events only when
# the restart and the second reload together add that much.  The
# summary prints each series' own threshold (tolerance / span).  The
# 3-minute run (t/600) applies the same floors to about a minute of
# segments: gross leaks only.
#
# Usage: bench/soak.pl [--minutes N] [--out DIR].  The default run (60
# minutes, no --out) writes bench/soak.tsv and bench/soak.png and the
# section "Soak" of bench/RESULTS.md; others write soak.tsv and soak.png
# into DIR (default: a new directory under TMPDIR).  Run it through
# "./build.sh soak [MINUTES]" (which builds first).  Environment:
# SOAK_RATE (150), SOAK_LOADERS (6), SOAK_SAMPLE_SECONDS (10),
# SOAK_WARMUP_SECONDS, SOAK_SETTLE_SECONDS, SOAK_PG_DOWN_SECONDS (5),
# CRM_TEST_TIMEOUT (default: the run plus 30 min).  Exits 0 when the soak
# passes, 1 when it fails, saying why; a failed run keeps its directory.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib", "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use Getopt::Long qw(GetOptions);
use HTTP::Tiny;
use POSIX qw(strftime WNOHANG);
use Time::HiRes qw(time sleep);

use BenchWrk qw(median write_section);
use CrmTest;
use MockCrm;
use SoakPlot qw(plot_panels);

my $MINUTES = 60;
my $OUT;
GetOptions('minutes=f' => \$MINUTES, 'out=s' => \$OUT)
    && $MINUTES > 0 && !@ARGV
    or die "usage: bench/soak.pl [--minutes N] [--out DIR]\n";
my $DEFAULT_RUN = $MINUTES == 60 && !defined $OUT;
$OUT //= $DEFAULT_RUN ? $FindBin::Bin : tempdir('crm-soak-XXXXXX', TMPDIR => 1, CLEANUP => 0);
-d $OUT or mkdir $OUT or die "$OUT: $!\n";
my $RESULTS = "$FindBin::Bin/RESULTS.md";

sub clamp { my ($v, $lo, $hi) = @_; $v < $lo ? $lo : $v > $hi ? $hi : $v }

my $DURATION = $MINUTES * 60;
my $RATE = $ENV{SOAK_RATE} || 150;
my $LOADERS = $ENV{SOAK_LOADERS} || 6;
my $SAMPLE = $ENV{SOAK_SAMPLE_SECONDS} || 10;
my $WARMUP = $ENV{SOAK_WARMUP_SECONDS} // clamp($DURATION * 0.1, 30, 300);
my $SETTLE = $ENV{SOAK_SETTLE_SECONDS} // clamp($DURATION * 0.05, 20, 180);
my $PG_DOWN = $ENV{SOAK_PG_DOWN_SECONDS} || 5;
my $OUTAGE_GRACE = 10;      # s after PostgreSQL is back that a 503 is still fine
my $BROWSER = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)'
    . ' Chrome/120.0.0.0 Safari/537.36';

# what each request is, in percent, and how the reads, writes and
# callbacks split
my @MIX = ([redirect => 60], [read => 20], [write => 12], [callback => 8]);
my @WRITES = ([create => 25], [update => 30], [move => 25], [delete => 20]);
my $AGAIN = 0.3;            # share of callbacks sent again
my ($LIVE_MIN, $LIVE_MAX) = (5, 40);    # leads each client keeps

# the sampled series the verdict judges: column, name, tolerance
# (percent of the median, absolute floor).  A worker's RSS counts the
# pages of the shared zones it has touched, which grows after each reload
# until the click queue's ring has gone round once (8 MiB, minutes):
# the workers' RSS is judged without its shared memory (RssShmem), and
# the zones by their own gauges.
my @SERIES = (
    { col => 'private_workers_kib', name => 'worker RSS - shared, sum (KiB)', pct => 5, floor => 4096 },
    { col => 'private_worker_max_kib', name => 'worker RSS - shared, max (KiB)', pct => 5, floor => 3072 },
    { col => 'rss_master_kib', name => 'master RSS (KiB)', pct => 5, floor => 2048 },
    { col => 'fds', name => 'open fds, master + workers', pct => 5, floor => 4 },
    { col => 'pg_connections', name => 'PostgreSQL connections', pct => 10, floor => 3 },
);
my %ZONE_TOLERANCE = (pct => 2, floor => 64 * 1024);
# sampled, shown in the summary, not judged
my @SHOWN = (
    { col => 'rss_workers_kib', name => 'worker RSS, sum (KiB)', pct => 5, floor => 4096, shown => 1 },
    { col => 'rss_worker_max_kib', name => 'worker RSS, max (KiB)', pct => 5, floor => 3072, shown => 1 },
);

$ENV{CRM_TEST_TIMEOUT} ||= int($DURATION + 1800);

my $PARENT = $$;
my %KIDS;                   # pid => what, of the processes this run forked
my @FAILURES;               # why the run fails

sub fail { push @FAILURES, join '', @_ }

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    return scalar(<$fh>) // '';
}

sub spew {
    my ($file, $text) = @_;
    open my $fh, '>', $file or die "$file: $!";
    print $fh $text;
    close $fh or die "$file: $!";
}

sub say_progress { printf STDERR "soak: %s\n", join '', @_ }


# ---------------------------------------------------------------------------
# the gateway, the stand-in and the accounts

my $t = CrmTest->new(workers => 2);
my $W = $t->dir;
my $STOP = "$W/stop";
my $mock = MockCrm->new(dir => $W, record => 0);
$mock->jwks(json_encode({ keys => [ $t->idp_jwk('soak') ] }), 10);

$t->start_db;
my %edge = $t->edge_config;
$t->write_config(
    http_extra => $edge{http_extra} . '    crm_idp_keys_url ' . $mock->url . "/jwks;\n",
    server_extra => $edge{server_extra},
    conf => {
        crm_klaviyo_url => $mock->url,
        crm_outbound_allow => '127.0.0.0/8',
        crm_outbound_connect_timeout => '1s',
        crm_outbound_timeout => '3s',
        crm_sync_interval => '100ms',
        # Klaviyo's own default, 10 calls/s, is less than the writes make
        crm_sync_rate => 100,
        # tokens outlive the run
        crm_jwt_ttl => '7d',
    });
$t->start_nginx;

my @ZONES = zones_of(metrics_text());
unless (@ZONES) {
    fail('no crm_zone_used_bytes in /metrics: the shared zones cannot be sampled');
    finish_early();
}
say_progress('shared zones: ', join ', ', @ZONES);

# the account every write goes to, with Klaviyo connected, and three more
my ($kacc, $KTOK) = $t->member;
my $K = $kacc->{id};
my $r = $t->post_json('/crm/connect', { crm_type => 'klaviyo',
    credentials => { api_key => $mock->klaviyo_key }, settings => {} }, token => $KTOK);
die "klaviyo connect: $r->{status} $r->{content}\n" unless $r->{status} == 201 || $r->{status} == 200;
my @MEMBERS = ({ id => $K, token => $KTOK });
for (1 .. 3) {
    my ($acc, $tok) = $t->member;
    push @MEMBERS, { id => $acc->{id}, token => $tok };
}
# five links each: the redirects' and the callbacks'
my @LINKS;
for my $m (@MEMBERS) {
    for my $n (1 .. 5) {
        $r = $t->post_json('/affiliate/links', { target_url => "https://shop.example.com/soak/$n" },
            token => $m->{token});
        die "link: $r->{status} $r->{content}\n" unless $r->{status} == 201;
        push @LINKS, { id => $r->{json}{affiliate_link_id}, owner => $m->{id}, token => $m->{token} };
    }
}
# a merchant signed in with a key from crm_idp_keys_url, its token good
# for the whole run
my $MTOK = $t->idp_token(key => 'soak', subject => 'soak-merchant', email => 'soak-merchant@example.com',
    claims => { exp => int(time + $DURATION + 3600) });
wait_until(15, sub { $t->get('/auth/me', token => $MTOK)->{status} == 404 })
    or die "the identity provider's keys from crm_idp_keys_url were not fetched\n";
$r = $t->post_json('/auth/bootstrap', {}, token => $MTOK);
die "bootstrap: $r->{status} $r->{content}\n" unless $r->{status} == 201;

my @PAIRS = map { my $s = $_; map { [ $s->{stage}, $_->{status} ] } @{ $s->{substages} } }
    @{ $t->load_pipeline };
my $PG_VERSION = $t->psql('SHOW server_version');
(my $NGINX_VERSION = `$CrmTest::NGINX -v 2>&1`) =~ s{^.*?/(\S+).*}{$1}s;
my $CORES = () = slurp('/proc/cpuinfo') =~ /^processor\s*:/mg;


# ---------------------------------------------------------------------------
# the sampler

sub metrics_text {
    my $r = HTTP::Tiny->new(timeout => 5, keep_alive => 0)->get($t->base_url . '/metrics');
    return $r->{status} == 200 ? $r->{content} : undef;
}

# the zones that /metrics reports, by name
sub zones_of {
    my ($text) = @_;
    my %z;
    $z{$1} = 1 while ($text // '') =~ /^crm_zone_used_bytes\{(?:[^}]*,)?zone="([^"]+)"[^}]*\} \d+$/mg;
    return sort keys %z;
}

sub zone_gauge {
    my ($text, $name, $zone) = @_;
    return 'NA' unless defined $text;
    return $text =~ /^\Q$name\E\{(?:[^}]*,)?zone="\Q$zone\E"[^}]*\} (\d+)$/m ? $1 : 'NA';
}

sub gauge {
    my ($text, $name) = @_;
    return 'NA' unless defined $text;
    return $text =~ /^\Q$name\E (\d+)$/m ? $1 : 'NA';
}

sub proc_status {
    my ($pid, $field) = @_;
    return slurp("/proc/$pid/status") =~ /^\Q$field\E:\s+(\d+) kB$/m ? $1 : undef;
}

sub fd_count {
    my ($pid) = @_;
    opendir my $dh, "/proc/$pid/fd" or return 0;
    my $n = grep { !/^\.\.?\z/ } readdir $dh;
    closedir $dh;
    return $n;
}

# the workers of the current generation, and how many old ones are
# still shutting down (nginx retitles those)
sub current_workers {
    my (@now, $old);
    $old = 0;
    for my $pid ($t->worker_pids) {
        my $title = slurp("/proc/$pid/cmdline");
        next unless length $title;
        if ($title =~ /shutting down/) { $old++ } else { push @now, $pid }
    }
    return (\@now, $old);
}

my @COLUMNS = (qw(t workers old_workers rss_workers_kib rss_worker_max_kib rss_master_kib
    shared_workers_kib private_workers_kib private_worker_max_kib anon_workers_kib fds
    pg_connections click_queue_bytes sync_due redirects_302),
    (map { "zone_used_$_" } @ZONES), (map { "zone_size_$_" } @ZONES));

sub take_sample {
    my ($t0) = @_;
    my %s = (t => sprintf('%.1f', time - $t0));
    my $master = $t->{nginx_pid};
    my ($workers, $old) = current_workers();
    my (@rss, @private, %sum);
    for my $pid (@$workers) {
        my %v = map { $_ => proc_status($pid, $_) // 0 } qw(VmRSS RssShmem RssAnon);
        push @rss, $v{VmRSS};
        push @private, $v{VmRSS} - $v{RssShmem};
        $sum{$_} += $v{$_} for keys %v;
    }
    $s{workers} = @$workers;
    $s{old_workers} = $old;
    $s{rss_workers_kib} = @rss ? $sum{VmRSS} : 'NA';
    $s{rss_worker_max_kib} = @rss ? (sort { $b <=> $a } @rss)[0] : 'NA';
    $s{shared_workers_kib} = @rss ? $sum{RssShmem} : 'NA';
    $s{private_workers_kib} = @rss ? $sum{VmRSS} - $sum{RssShmem} : 'NA';
    $s{private_worker_max_kib} = @rss ? (sort { $b <=> $a } @private)[0] : 'NA';
    $s{anon_workers_kib} = @rss ? $sum{RssAnon} : 'NA';
    $s{rss_master_kib} = proc_status($master, 'VmRSS') // 'NA';
    my $fds = fd_count($master);
    $fds += fd_count($_) for @$workers;
    $s{fds} = $fds;
    $s{pg_connections} = eval {
        $t->psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'crm'"
            . " AND backend_type = 'client backend' AND pid <> pg_backend_pid()") + 0;
    } // 'NA';
    my $m = metrics_text();
    $s{click_queue_bytes} = gauge($m, 'crm_click_queue_bytes');
    $s{sync_due} = gauge($m, 'crm_sync_queue_due');
    $s{redirects_302} = defined $m && $m =~ /^crm_redirects_total\{status="302"\} (\d+)$/m ? $1 : 'NA';
    for my $z (@ZONES) {
        $s{"zone_used_$z"} = zone_gauge($m, 'crm_zone_used_bytes', $z);
        $s{"zone_size_$z"} = zone_gauge($m, 'crm_zone_size_bytes', $z);
    }
    return \%s;
}

sub run_sampler {
    my ($t0) = @_;
    delete $t->{ua};
    open my $fh, '>', "$W/samples.tsv" or POSIX::_exit(1);
    $fh->autoflush(1);
    print $fh join("\t", @COLUMNS), "\n";
    # from the load's start to its end, the last one included
    for (my $k = 0; $k * $SAMPLE <= $DURATION; $k++) {
        my $due = $t0 + $k * $SAMPLE;
        sleep $due - time if $due > time;
        my $s = take_sample($t0);
        print $fh join("\t", map { $s->{$_} } @COLUMNS), "\n";
        say_progress(sprintf '%6ds  workers %d%s  RSS %s MiB (max %s, without shared %s, master %s)'
            . '  fds %s  pg %s  %s',
            $s->{t}, $s->{workers}, $s->{old_workers} ? "+$s->{old_workers} old" : '',
            map({ $_ eq 'NA' ? $_ : sprintf '%.1f', $_ / 1024 }
                @$s{qw(rss_workers_kib rss_worker_max_kib private_workers_kib rss_master_kib)}),
            $s->{fds}, $s->{pg_connections},
            join ' ', map { sprintf '%s %s', $_, $s->{"zone_used_$_"} } @ZONES);
    }
    close $fh;
    POSIX::_exit(0);
}


# ---------------------------------------------------------------------------
# the load: one forked client

sub new_ua {
    return HTTP::Tiny->new(max_redirect => 0, keep_alive => 1, timeout => 10, agent => $BROWSER);
}

sub pick {
    my ($choices) = @_;
    my $sum = 0;
    $sum += $_->[1] for @$choices;
    my $x = rand $sum;
    for (@$choices) {
        return $_->[0] if ($x -= $_->[1]) < 0;
    }
    return $choices->[-1][0];
}

# one request; a 599 (no answer: a connection a reload closed) is sent
# again once on a new connection
sub call {
    my ($L, $method, $path, %o) = @_;
    my %h;
    $h{Authorization} = "Bearer $o{token}" if defined $o{token};
    my $content = $o{raw};
    $content = json_encode($o{json}) if exists $o{json};
    $h{'Content-Type'} = 'application/json' if defined $content;
    $h{'X-CRM-Signature'} = $t->sign_callback($content) if $o{signed};
    my %req = (headers => \%h, defined $content ? (content => $content) : ());
    my $r = $L->{ua}->request($method, $t->base_url . $path, \%req);
    if ($r->{status} == 599) {
        $L->{retried}++;
        $L->{ua} = new_ua();
        $r = $L->{ua}->request($method, $t->base_url . $path, \%req);
    }
    $r->{json} = eval { json_decode($r->{content}) }
        if ($r->{headers}{'content-type'} // '') =~ m{^application/(?:problem\+)?json}i;
    return $r;
}

# counts an answer; true when it is the one expected, else it is kept
# (with its time) for the verdict
sub tally {
    my ($L, $op, $r, $want) = @_;
    $L->{n}{$op}{ $r->{status} }++;
    return 1 if $r->{status} == $want;
    if (@{ $L->{odd} } < 5000) {
        (my $body = substr($r->{content} // '', 0, 160)) =~ s/\s+/ /g;
        push @{ $L->{odd} }, [ sprintf('%.1f', time - $L->{t0}), $op, $r->{status}, $body ];
    }
    return 0;
}

sub op_redirect {
    my ($L) = @_;
    my $link = $LINKS[rand @LINKS];
    tally($L, 'redirect', call($L, 'GET', "/r/$link->{id}"), 302);
}

sub op_read {
    my ($L) = @_;
    my $live = $L->{live};
    my $m = $MEMBERS[rand @MEMBERS];
    my $link = $LINKS[rand @LINKS];
    my @reads = (
        [ '/leads/?limit=20', $KTOK ],
        (@$live ? [ '/leads/' . $live->[rand @$live]{id}, $KTOK ] : ()),
        [ '/performance/me', $m->{token} ],
        [ '/wallet', $m->{token} ],
        [ "/affiliate/links/$link->{id}/stats", $link->{token} ],
        [ '/auth/me', $MTOK ],
        [ '/crm/klaviyo/status', $KTOK ],
    );
    my ($path, $tok) = @{ $reads[rand @reads] };
    tally($L, 'read', call($L, 'GET', $path, token => $tok), 200);
}

# a write; each one that succeeds makes exactly one sync job of its kind
# (jobs{kind}{ok}); one answered otherwise may or may not have (unsure)
sub op_write {
    my ($L) = @_;
    my $live = $L->{live};
    my $what = @$live < $LIVE_MIN ? 'create' : @$live >= $LIVE_MAX ? 'delete' : pick(\@WRITES);
    my $n = ++$L->{seq};
    my $tag = "$L->{i}-$n";
    if ($what eq 'create') {
        my $r = call($L, 'POST', '/leads/', token => $KTOK, json => { name => "Soak Lead $tag",
            email => "soak-lead-$tag\@example.com", company => "Soak Co $tag" });
        if (tally($L, 'create', $r, 201)) {
            push @$live, { id => $r->{json}{id}, at => "$r->{json}{stage}/$r->{json}{substage}" };
            $L->{jobs}{created}{ok}++;
        } else {
            $L->{jobs}{created}{unsure}++;
        }
        return;
    }
    my $k = int rand @$live;
    my $lead = $live->[$k];
    if ($what eq 'update') {
        my $r = call($L, 'PUT', "/leads/$lead->{id}", token => $KTOK,
            json => { company => "Soak Co $tag" });
        $L->{jobs}{updated}{ tally($L, 'update', $r, 200) ? 'ok' : 'unsure' }++;
    } elsif ($what eq 'move') {
        my @to = grep { "$_->[0]/$_->[1]" ne $lead->{at} } @PAIRS;
        my $to = $to[rand @to];
        my $r = call($L, 'PUT', "/leads/$lead->{id}/stage", token => $KTOK,
            json => { stage => $to->[0], substage => $to->[1] });
        if (tally($L, 'move', $r, 200)) {
            $lead->{at} = "$to->[0]/$to->[1]";
            $L->{jobs}{stage_changed}{ok}++;
        } else {
            # where it stands is unknown: not moved again
            $L->{jobs}{stage_changed}{unsure}++;
            splice @$live, $k, 1;
        }
    } else {
        my $r = call($L, 'DELETE', "/leads/$lead->{id}", token => $KTOK);
        $L->{jobs}{deleted}{ tally($L, 'delete', $r, 204) ? 'ok' : 'unsure' }++;
        splice @$live, $k, 1;
    }
}

# installs of new shops through any link, conversions of installed shops;
# some of each sent again, byte for byte
sub op_callback {
    my ($L) = @_;
    my $n = ++$L->{seq};
    if (!@{ $L->{installed} } || rand() < 0.5) {
        my @keys = keys %{ $L->{installs} };
        my ($key, $again);
        if (@keys && rand() < $AGAIN) {
            ($key, $again) = ($keys[rand @keys], 1);
        } else {
            my $link = $LINKS[rand @LINKS];
            $key = "$link->{id} s$L->{i}-$n.soak.example.com";
            $L->{installs}{$key} = { klaviyo => $link->{owner} eq $K ? 1 : 0, tries => 0, ok => 0,
                created => 0, unsure => 0 };
        }
        my ($link, $shop) = split / /, $key;
        my $rec = $L->{installs}{$key};
        my $r = call($L, 'POST', '/callbacks/install', signed => 1,
            raw => json_encode({ shop_domain => $shop, affiliate_link_id => $link }));
        $rec->{tries}++;
        if (tally($L, $again ? 'install again' : 'install', $r, 200)) {
            push @{ $L->{installed} }, $key unless $rec->{ok}++;
            $rec->{created}++ if $r->{json} && $r->{json}{created};
        } else {
            $rec->{unsure}++;
        }
        return;
    }
    my @orders = keys %{ $L->{orders} };
    my ($order, $again);
    if (@orders && rand() < $AGAIN) {
        ($order, $again) = ($orders[rand @orders], 1);
    } else {
        my ($link, $shop) = split / /, $L->{installed}[rand @{ $L->{installed} }];
        $order = "soak-$L->{i}-$n";
        $L->{orders}{$order} = { klaviyo => $L->{installs}{"$link $shop"}{klaviyo}, tries => 0, ok => 0,
            created => 0, unsure => 0, body => json_encode({ order_id => $order,
                amount_cents => 100 + int rand 9900, currency => 'USD',
                affiliate_link_id => $link, shop_domain => $shop }) };
    }
    my $rec = $L->{orders}{$order};
    my $r = call($L, 'POST', '/callbacks/conversion', signed => 1, raw => $rec->{body});
    $rec->{tries}++;
    if (tally($L, $again ? 'conversion again' : 'conversion', $r, 200)) {
        $rec->{ok}++;
        $rec->{created}++ if $r->{json} && $r->{json}{created};
    } else {
        $rec->{unsure}++;
    }
}

my %OPS = (redirect => \&op_redirect, read => \&op_read, write => \&op_write,
    callback => \&op_callback);

sub run_loader {
    my ($i, $t0) = @_;
    srand($$ ^ int(time * 1000));
    my $L = { i => $i, t0 => $t0, ua => new_ua(), n => {}, odd => [], retried => 0, late => 0,
        live => [], seq => 0, jobs => {}, installs => {}, installed => [], orders => {} };
    my $period = $LOADERS / $RATE;
    my $end = $t0 + $DURATION;
    my $next = $t0 + $period * ($i - 1) / $LOADERS;
    while (!-e $STOP) {
        my $wait = $next - time;
        if ($wait > 0) {
            sleep $wait;
        } elsif ($wait < -2) {
            $L->{late} += int(-$wait / $period);
            $next = time;
        }
        last if time >= $end;
        $next += $period;
        $OPS{ pick(\@MIX) }->($L);
    }
    delete @{ $_ }{qw(body)} for values %{ $L->{orders} };
    delete @$L{qw(ua live installed)};
    spew("$W/loader-$i.json", json_encode($L));
    POSIX::_exit(0);
}


# ---------------------------------------------------------------------------
# the run: sampler and clients forked, the events on time

sub start_kid {
    my ($what, $code) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $SIG{ALRM} = 'DEFAULT';
        alarm 0;
        delete $t->{ua};    # the parent's connection is its own
        $code->();
        POSIX::_exit(0);
    }
    $KIDS{$pid} = $what;
    return $pid;
}

# children that ended before their time
sub reap {
    my ($expected) = @_;
    for my $pid (keys %KIDS) {
        next unless waitpid($pid, WNOHANG) == $pid;
        my $what = delete $KIDS{$pid};
        fail("$what ended early (status $?)") unless $expected && $? == 0;
    }
}

sub sleep_until {
    my ($when) = @_;
    while ((my $left = $when - time) > 0) {
        reap(0);
        sleep($left < 1 ? $left : 1);
    }
}

END {
    my $rc = $?;
    if ($$ == $PARENT) {
        # the clients and the sampler of a run that died
        kill 'TERM', keys %KIDS;
        waitpid $_, 0 for keys %KIDS;
        # now: the stand-in's waitpid in a destructor would change the
        # exit status
        $mock->stop if $mock;
    }
    $? = $rc;
}

my $T0 = time + 1;
start_kid('the sampler', sub { run_sampler($T0) });
start_kid("client $_", do { my $i = $_; sub { run_loader($i, $T0) } }) for 1 .. $LOADERS;
say_progress(sprintf '%s min at %d requests/s from %d clients, sampled every %d s;'
    . ' warm-up %d s, settling %d s after each event; in %s',
    $MINUTES, $RATE, $LOADERS, $SAMPLE, $WARMUP, $SETTLE, $W);

my @EVENTS;                 # {name, start, end} in seconds from T0
for my $e ([reload1 => $DURATION / 3], [restart => $DURATION / 2], [reload2 => 2 * $DURATION / 3]) {
    my ($name, $at) = @$e;
    sleep_until($T0 + $at);
    my $start = time - $T0;
    if ($name =~ /^reload(\d)/) {
        my $ok = $t->reload;
        fail("reload $1 failed (see error.log)") unless $ok;
        push @EVENTS, { name => "reload $1", start => $start, end => time - $T0 };
    } else {
        $t->stop_db;
        my $down = time;
        sleep $PG_DOWN;
        my $up = time;
        eval { $t->start_db; 1 } or fail("PostgreSQL did not start again: $@");
        push @EVENTS, { name => 'PostgreSQL restart', start => $start, end => time - $T0,
            stop => $down - $T0 - $start, down => $up - $down, up => time - $up };
    }
    say_progress(sprintf '%s at %.0f s, %.1f s', $EVENTS[-1]{name}, $start, $EVENTS[-1]{end} - $start);
}
sleep_until($T0 + $DURATION);
spew($STOP, '');
say_progress('load stopped; waiting for the clients');
my $deadline = time + 60;
while (%KIDS && time < $deadline) {
    reap(1);
    sleep 0.2;
}
fail('did not stop: ' . join ', ', values %KIDS) if %KIDS;


# ---------------------------------------------------------------------------
# what the clients saw

my (%N, @ODD, %JOBS, %INSTALLS, %ORDERS);
my ($RETRIED, $LATE) = (0, 0);
for my $i (1 .. $LOADERS) {
    my $L = eval { json_decode(slurp("$W/loader-$i.json")) };
    unless ($L) {
        fail("client $i left no results");
        next;
    }
    for my $op (keys %{ $L->{n} }) {
        $N{$op}{$_} += $L->{n}{$op}{$_} for keys %{ $L->{n}{$op} };
    }
    push @ODD, @{ $L->{odd} };
    $RETRIED += $L->{retried};
    $LATE += $L->{late};
    for my $kind (keys %{ $L->{jobs} }) {
        $JOBS{$kind}{$_} += $L->{jobs}{$kind}{$_} for keys %{ $L->{jobs}{$kind} };
    }
    %INSTALLS = (%INSTALLS, %{ $L->{installs} });
    %ORDERS = (%ORDERS, %{ $L->{orders} });
}

my %CLASS = (redirect => 'redirect', read => 'read', create => 'write', update => 'write',
    move => 'write', delete => 'write', install => 'callback', 'install again' => 'callback',
    conversion => 'callback', 'conversion again' => 'callback');
my (%BY_CLASS, $TOTAL);
for my $op (keys %N) {
    for my $status (keys %{ $N{$op} }) {
        $BY_CLASS{ $CLASS{$op} }{total} += $N{$op}{$status};
        $BY_CLASS{ $CLASS{$op} }{$status} += $N{$op}{$status};
        $TOTAL += $N{$op}{$status};
    }
}
$TOTAL //= 0;
my $ANSWERED_302 = $N{redirect}{302} // 0;

# answers other than the expected one: a 503 or no answer from the API
# while PostgreSQL was down (and just after) is fine; nothing else is
my ($pg) = grep { $_->{name} =~ /PostgreSQL/ } @EVENTS;
my ($OUTAGE_503, @OUTAGE, @BAD) = (0);
for my $o (sort { $a->[0] <=> $b->[0] } @ODD) {
    my ($at, $op, $status) = @$o;
    if ($op ne 'redirect' && ($status == 503 || $status == 599) && $pg
        && $at >= $pg->{start} - 1 && $at <= $pg->{end} + $OUTAGE_GRACE)
    {
        $OUTAGE_503++;
        @OUTAGE = ($OUTAGE[0] // $at, $at);
        next;
    }
    push @BAD, $o;
}
if (@BAD) {
    fail(scalar(@BAD) . ' answers other than expected outside the outage, first: '
        . join '; ', map { "at $_->[0] s $_->[1] $_->[2] $_->[3]" } @BAD[0 .. ($#BAD < 4 ? $#BAD : 4)]);
}


# ---------------------------------------------------------------------------
# drain: the click queue and spool, the sync queue

sub q1 { scalar $t->psql($_[0]) }

my $LINK_LIST = join ', ', map { "'$_->{id}'" } @LINKS;
sub clicks_stored {
    return split /\|/, q1("SELECT count(*), count(DISTINCT click_id) FROM crm.clicks"
        . " WHERE link_id IN ($LINK_LIST)");
}

say_progress("draining: $ANSWERED_302 clicks answered");
my $stable = 0;
my $last = -1;
wait_until(180, sub {
    my $m = $t->metrics;
    my ($rows) = clicks_stored();
    $stable = $rows == $last && ($m->{crm_click_queue_bytes} // 1) == 0
        && ($m->{crm_click_spool_bytes} // 0) == 0 ? $stable + 1 : 0;
    $last = $rows;
    return $rows >= $ANSWERED_302 && $stable >= 2 || $stable >= 10;
}, 0.5);
my $M = $t->metrics;
my ($CLICKS, $CLICKS_DISTINCT) = clicks_stored();

sub jobs_waiting {
    q1("SELECT count(*) FROM crm.sync_jobs WHERE account_id = '$K' AND state IN ('pending', 'failed')");
}
my $waiting = jobs_waiting();
my $drain_start = time;
my ($progress_at, $progress) = (time, $waiting);
while ($waiting > 0 && time - $progress_at < 90 && time - $drain_start < 900) {
    sleep 2;
    $waiting = jobs_waiting();
    ($progress_at, $progress) = (time, $waiting) if $waiting < $progress;
    say_progress("sync jobs still waiting: $waiting") if int(time - $drain_start) % 20 < 2;
}
my $SYNC_DRAIN = time - $drain_start;


# ---------------------------------------------------------------------------
# the verdict: (b) clicks

my $DROPPED = $M->{crm_clicks_dropped_total} // 'NA';
my $click_ok = $CLICKS >= $ANSWERED_302 && $CLICKS <= $ANSWERED_302 + $RETRIED
    && $CLICKS_DISTINCT == $CLICKS && $DROPPED eq '0';
fail("clicks: $ANSWERED_302 redirects answered 302, $CLICKS clicks stored ($CLICKS_DISTINCT distinct,"
    . " $RETRIED requests sent again), crm_clicks_dropped_total $DROPPED") unless $click_ok;
fail('the click queue did not drain: crm_click_queue_bytes ' . ($M->{crm_click_queue_bytes} // 'NA')
    . ', crm_click_spool_bytes ' . ($M->{crm_click_spool_bytes} // 'NA'))
    if ($M->{crm_click_queue_bytes} // 1) != 0 || ($M->{crm_click_spool_bytes} // 0) != 0;


# (c) sync jobs

my %STATE = map { split /\|/ } $t->psql("SELECT state, count(*) FROM crm.sync_jobs"
    . " WHERE account_id = '$K' GROUP BY state");
my %EVENT = map { split /\|/ } $t->psql("SELECT event, count(*) FROM crm.sync_jobs"
    . " WHERE account_id = '$K' GROUP BY event");
my %OK_IDS = map { $_ => 0 } $t->psql("SELECT event_id FROM crm.sync_jobs"
    . " WHERE account_id = '$K' AND state = 'ok'");
my $JOBS_TOTAL = 0;
$JOBS_TOTAL += $_ for values %STATE;
my $events = $mock->state->{klaviyo}{events};
my %SENT;
$SENT{ $_->{unique_id} // 'none' }++ for @$events;
my @doubled = grep { $SENT{$_} > 1 } sort keys %SENT;
my @lost = grep { !$SENT{$_} } sort keys %OK_IDS;
my @stray = grep { !exists $OK_IDS{$_} } sort keys %SENT;
my @not_ok = map { "$_ $STATE{$_}" } grep { $_ ne 'ok' } sort keys %STATE;
fail('sync jobs not ok after the drain (' . sprintf('%.0f', $SYNC_DRAIN) . ' s): ' . join ', ', @not_ok)
    if @not_ok;
fail(sprintf 'sync: %d jobs ok, %d events at the stand-in', scalar(keys %OK_IDS), scalar(@$events))
    if keys(%OK_IDS) != @$events;
fail(scalar(@lost) . " ok jobs never reached the stand-in, e.g. $lost[0]") if @lost;
fail(scalar(@doubled) . " events sent more than once, e.g. $doubled[0] ($SENT{$doubled[0]} times)")
    if @doubled;
fail(scalar(@stray) . " events at the stand-in of no ok job, e.g. $stray[0]") if @stray;

# the jobs of each kind are the writes that made them: those answered
# as expected, and at most those answered otherwise
for my $rec (values %INSTALLS) {
    next unless $rec->{klaviyo};
    my $kind = $rec->{created} ? 'ok' : $rec->{unsure} ? 'unsure' : next;
    $JOBS{$_}{$kind}++ for qw(install created);    # a new shop: a new lead, then its install
}
for my $rec (values %ORDERS) {
    next unless $rec->{klaviyo};
    $JOBS{conversion}{ok}++ if $rec->{created};
    $JOBS{conversion}{unsure}++ if $rec->{unsure} && !$rec->{created};
}
my @JOB_KINDS = qw(created updated stage_changed deleted install conversion);
for my $kind (@JOB_KINDS) {
    my ($ok, $unsure, $have) = ($JOBS{$kind}{ok} // 0, $JOBS{$kind}{unsure} // 0, $EVENT{$kind} // 0);
    fail("sync: $have '$kind' jobs for $ok writes that made one"
        . ($unsure ? " and $unsure that may have" : ''))
        unless $have >= $ok && $have <= $ok + $unsure;
}


# (d) callbacks: one effect each

my %ATTR = map { my ($k, $n, $c) = split /\|/; ($k => [$n, $c]) } $t->psql(
    "SELECT a.link_id || ' ' || a.shop_domain, count(DISTINCT a.id), count(w.id)"
    . " FROM crm.attributions a LEFT JOIN crm.wallet_transactions w"
    . " ON w.source_id = a.id AND w.kind = 'commission_install'"
    . " WHERE a.shop_domain LIKE '%.soak.example.com' GROUP BY 1");
my @install_bad;
for my $key (sort keys %INSTALLS) {
    my $rec = $INSTALLS{$key};
    my ($n, $c) = @{ $ATTR{$key} // [0, 0] };
    push @install_bad, "$key: $n attributions, $c commissions after $rec->{ok} answers 200"
        . " ($rec->{created} created)"
        if $n > 1 || $c != $n || ($rec->{ok} && $n != 1) || $rec->{created} > 1
            || ($rec->{ok} && !$rec->{unsure} && $rec->{created} != 1);
}
push @install_bad, "$_: an attribution no client asked for" for grep { !$INSTALLS{$_} } sort keys %ATTR;
fail(scalar(@install_bad) . " installs without exactly one effect, e.g. $install_bad[0]") if @install_bad;

my %CONV = map { my ($k, $n, $c, $cents) = split /\|/; ($k => [$n, $c, $cents]) } $t->psql(
    "SELECT c.order_id, count(DISTINCT c.id), count(w.id), max(c.commission_cents)"
    . " FROM crm.conversions c LEFT JOIN crm.wallet_transactions w"
    . " ON w.source_id = c.id AND w.kind = 'commission_conversion'"
    . " WHERE c.order_id LIKE 'soak-%' GROUP BY 1");
my @conv_bad;
for my $order (sort keys %ORDERS) {
    my $rec = $ORDERS{$order};
    my ($n, $c, $cents) = @{ $CONV{$order} // [0, 0, 0] };
    push @conv_bad, "$order: $n conversions, $c commissions after $rec->{ok} answers 200"
        . " ($rec->{created} created)"
        if $n > 1 || $c != ($cents ? $n : 0) || ($rec->{ok} && $n != 1) || $rec->{created} > 1
            || ($rec->{ok} && !$rec->{unsure} && $rec->{created} != 1);
}
push @conv_bad, "$_: a conversion no client asked for" for grep { !$ORDERS{$_} } sort keys %CONV;
fail(scalar(@conv_bad) . " conversions without exactly one effect, e.g. $conv_bad[0]") if @conv_bad;
my $INSTALLS_ANSWERED = grep { $_->{ok} } values %INSTALLS;
my $ORDERS_ANSWERED = grep { $_->{ok} } values %ORDERS;


# (e) the error log, after a graceful stop

$t->stop_nginx or fail('nginx did not stop gracefully');
my @LOG_BAD = $t->error_log_problems;
fail(scalar(@LOG_BAD) . " error.log lines with an alert, emerg, crash or signal, first: $LOG_BAD[0]")
    if @LOG_BAD;
my %ERRORS;
for (split /\n/, $t->error_log) {
    next unless /\[(error|crit|warn)\] \d+#\d+: (?:\*\d+ )?(.*?)(?:, client: .*)?$/;
    (my $msg = "[$1] $2") =~ s/\d+/N/g;
    $ERRORS{ substr $msg, 0, 110 }++;
}
$t->teardown;


# ---------------------------------------------------------------------------
# (a) the trends

my @ROWS;
{
    my ($head, @lines) = split /\n/, slurp("$W/samples.tsv");
    my @cols = split /\t/, $head // '';
    for (@lines) {
        my %row;
        @row{@cols} = split /\t/;
        push @ROWS, \%row;
    }
}
fail('only ' . scalar(@ROWS) . ' samples') if @ROWS < 8;

# the segment of a sample: how many events began before it; undef for a
# sample of the warm-up or of an event (from 2 s before it: the sample
# taken as it starts) and its settling time
sub segment_of {
    my ($at) = @_;
    return undef if $at < $WARMUP || $at > $DURATION;
    my $seg = 0;
    for my $e (@EVENTS) {
        return undef if $at >= $e->{start} - 2 && $at <= $e->{end} + $SETTLE;
        $seg++ if $at > $e->{start};
    }
    return $seg;
}

# drift (common slope within segments x their span), step (the last
# segment's median - the median of the segment after the first event),
# tolerance, first, last, min, max, median, samples
sub trend {
    my ($col, $pct, $floor) = @_;
    my (%seg, @all);
    for my $row (@ROWS) {
        my $v = $row->{$col};
        next unless defined $v && $v ne 'NA';
        my $s = segment_of($row->{t});
        next unless defined $s;
        push @{ $seg{$s} }, [ $row->{t}, $v ];
        push @all, [ $row->{t}, $v ];
    }
    my %r = (n => scalar @all);
    return \%r if @all < 3;
    my ($sxy, $sxx, $span) = (0, 0, 0);
    for my $pts (values %seg) {
        next if @$pts < 2;
        my ($mx, $my) = (0, 0);
        $mx += $_->[0] / @$pts, $my += $_->[1] / @$pts for @$pts;
        $sxy += ($_->[0] - $mx) * ($_->[1] - $my) for @$pts;
        $sxx += ($_->[0] - $mx) ** 2 for @$pts;
        $span += $pts->[-1][0] - $pts->[0][0];
    }
    return \%r unless $span;
    my @segs = sort { $a <=> $b } keys %seg;
    my @v = map { $_->[1] } @all;
    $r{slope} = $sxy / $sxx;
    $r{span} = $span;
    $r{drift} = $r{slope} * $span;
    my $from = $seg{1} ? 1 : $segs[0];
    $r{step} = median(map { $_->[1] } @{ $seg{ $segs[-1] } }) - median(map { $_->[1] } @{ $seg{$from} });
    $r{median} = median(@v);
    $r{tol} = $pct * $r{median} / 100 > $floor ? $pct * $r{median} / 100 : $floor;
    @r{qw(first last)} = ($v[0], $v[-1]);
    @r{qw(min max)} = (sort { $a <=> $b } @v)[0, -1];
    return \%r;
}

my @TRENDS;
for my $s (@SHOWN, @SERIES,
    map { { col => "zone_used_$_", name => "zone \"$_\" used (bytes)", %ZONE_TOLERANCE } } @ZONES)
{
    my $tr = trend($s->{col}, $s->{pct}, $s->{floor});
    push @TRENDS, [ $s, $tr ];
    next if $s->{shown};
    if (!defined $tr->{drift}) {
        fail("$s->{name}: only $tr->{n} samples after the warm-up, too few to judge");
    } elsif ($tr->{drift} > $tr->{tol} || $tr->{step} > $tr->{tol}) {
        fail(sprintf '%s trends upward: drift %+.1f over %.0f s of segments, step %+.1f; tolerance %.1f',
            $s->{name}, $tr->{drift}, $tr->{span}, $tr->{step}, $tr->{tol});
    }
}


# ---------------------------------------------------------------------------
# soak.tsv, soak.png, the summary

sub fmt_t {
    my ($s) = @_;
    return sprintf '%d:%02d', int($s / 60), int($s) % 60;
}

my $EVENT_TEXT = join ', ', map {
    sprintf '%s at %s (%.1f s%s)', $_->{name}, fmt_t($_->{start}), $_->{end} - $_->{start},
        $_->{down} ? sprintf(': stopped in %.1f s, down %.1f s, started in %.1f s',
            @$_{qw(stop down up)}) : '';
} @EVENTS;

{
    my $head = join '', "# crm-gateway soak, " . strftime('%Y-%m-%dT%H:%M:%SZ', gmtime)
        . ": $MINUTES min at $RATE requests/s, sampled every $SAMPLE s, t in s from the load's start\n",
        "# warm-up $WARMUP s, settling $SETTLE s after each event\n",
        map { sprintf "# event\t%.1f\t%.1f\t%s\n", $_->{start}, $_->{end}, $_->{name} } @EVENTS;
    spew("$OUT/soak.tsv", $head . slurp("$W/samples.tsv"));
}

my $PNG = "$OUT/soak.png";
my $plotted = eval {
    my $zone_expr = sub {
        my ($z) = @_;
        return @ROWS && ($ROWS[0]{"zone_size_$z"} // 'NA') ne 'NA'
            ? [ sprintf('100.0 * column("zone_used_%s") / column("zone_size_%s")', $z, $z), $z ]
            : [ sprintf('column("zone_used_%s") / 1024.0', $z), "$z (KiB)" ];
    };
    my $percent = @ZONES && @ROWS && ($ROWS[0]{"zone_size_$ZONES[0]"} // 'NA') ne 'NA';
    plot_panels(tsv => "$OUT/soak.tsv", png => $PNG, x => 'column("t") / 60.0', xlabel => 'minutes',
        title => sprintf('crm-gateway soak: %s min at %d requests/s, %s', $MINUTES, $RATE,
            @FAILURES ? 'FAILED' : 'passed'),
        bands => [ [ 0, $WARMUP / 60, '#eeeeee', 'warm-up' ],
            map { [ $_->{start} / 60, $_->{end} / 60, '#fdd0c8', 'PostgreSQL restart' ] }
                grep { $_->{name} =~ /PostgreSQL/ } @EVENTS ],
        marks => [ map { [ $_->{start} / 60, $_->{name} ] } grep { $_->{name} =~ /reload/ } @EVENTS ],
        panels => [
            { title => 'RSS (MiB)', series => [
                [ 'column("rss_workers_kib") / 1024.0', 'workers, sum' ],
                [ 'column("rss_worker_max_kib") / 1024.0', 'largest worker' ],
                [ 'column("private_workers_kib") / 1024.0', 'workers less shared memory, sum' ],
                [ 'column("rss_master_kib") / 1024.0', 'master' ] ] },
            { title => $percent ? 'shared zones used (% of size)' : 'shared zones used (KiB)',
              series => [ map { $zone_expr->($_) } @ZONES ] },
            { title => 'open file descriptors (master + workers)',
              series => [ [ 'column("fds")', 'fds' ] ] },
            { title => 'PostgreSQL connections (client backends of "crm")',
              series => [ [ 'column("pg_connections")', 'connections' ] ] },
        ]);
    1;
};
fail("the plot: $@") unless $plotted;

my $rate_got = $TOTAL / $DURATION;
my @series_rows = map {
    my ($s, $tr) = @$_;
    defined $tr->{drift}
        ? sprintf('| %s | %.0f | %.0f | %.0f | %.0f | %+.1f/min | %+.0f | %+.0f | %.0f | %.1f/min | %s |',
            $s->{name}, @$tr{qw(first last min max)}, $tr->{slope} * 60, $tr->{drift}, $tr->{step},
            $tr->{tol}, $tr->{tol} * 60 / $tr->{span},
            $s->{shown} ? 'not judged: counts shared pages'
            : $tr->{drift} > $tr->{tol} || $tr->{step} > $tr->{tol} ? '**up**' : 'flat')
        : "| $s->{name} | - | - | - | - | - | - | - | - | - | too few samples |";
} @TRENDS;

sub sum0 {
    my $n = 0;
    $n += $_ for @_;
    return $n;
}

sub statuses {
    my ($h) = @_;
    return join ', ', map { "$_ $h->{$_}" } sort grep { $_ ne 'total' } keys %$h;
}

my $summary = join "\n",
    sprintf('%s min at %d requests/s (%.1f achieved, %d slots skipped by clients behind), %d clients,'
        . ' 2 workers, %d cores, nginx %s, PostgreSQL %s.', $MINUTES, $RATE, $rate_got, $LATE, $LOADERS,
        $CORES, $NGINX_VERSION, $PG_VERSION),
    "Events: $EVENT_TEXT." . (@OUTAGE ? sprintf(' The API answered 503 from %s to %s.',
        fmt_t($OUTAGE[0]), fmt_t($OUTAGE[1])) : ''),
    sprintf('Sampled every %d s; the trend skips the first %d s and %d s after each event;'
        . ' its segments span %.0f s.', $SAMPLE, $WARMUP, $SETTLE,
        (map { $_->[1]{span} // 0 } grep { $_->[0]{col} eq 'fds' } @TRENDS)[0] // 0),
    '',
    '| requests | total | answers |',
    '|---|---|---|',
    (map { sprintf '| %s | %d | %s |', $_, $BY_CLASS{$_}{total} // 0, statuses($BY_CLASS{$_} // {}) }
        qw(redirect read write callback)),
    sprintf('| all | %d | %d sent again after no answer; %d API answers 503 or none during the outage |',
        $TOTAL, $RETRIED, $OUTAGE_503),
    '',
    'Each series over the samples the trend judges (after the warm-up, outside the events and their'
        . ' settling): slope and drift (slope x span) within the segments between events, step from the'
        . ' segment after'
        . ' the first reload to the last (the first workers ran the setup, and the'
        . ' master builds its second configuration cycle at the first reload); "detects" is the'
        . ' smallest steady growth that fails the run.',
    '',
    '| series | first | last | min | max | slope | drift | step | tolerance | detects | trend |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    @series_rows,
    '',
    sprintf('Clicks: %d redirects answered 302, %d stored (%d distinct), %s dropped.',
        $ANSWERED_302, $CLICKS, $CLICKS_DISTINCT, $DROPPED),
    sprintf('Sync: %d jobs (%s), %d events at the Klaviyo stand-in, %d unique ids; by kind: %s;'
        . ' drained %.0f s after the load.', $JOBS_TOTAL,
        join(', ', map { "$_ $STATE{$_}" } sort keys %STATE), scalar(@$events), scalar(keys %SENT),
        join(', ', map { "$_ " . ($EVENT{$_} // 0) } @JOB_KINDS), $SYNC_DRAIN),
    sprintf('Callbacks: installs of %d shops answered 200 (%d of them again): %d attributions, %d'
        . ' install commissions; %d orders answered 200 (%d of them again): %d conversions, %d'
        . ' commissions.', $INSTALLS_ANSWERED, $N{'install again'}{200} // 0, scalar(keys %ATTR),
        sum0(map { $_->[1] } values %ATTR), $ORDERS_ANSWERED, $N{'conversion again'}{200} // 0,
        scalar(keys %CONV), sum0(map { $_->[1] } values %CONV)),
    '';

print "\n$summary\n";
if (%ERRORS) {
    print "error.log lines of level error, crit and warn, by message:\n";
    my @top = sort { $ERRORS{$b} <=> $ERRORS{$a} || $a cmp $b } keys %ERRORS;
    printf "  %5d  %s\n", $ERRORS{$_}, $_ for @top[0 .. ($#top < 9 ? $#top : 9)];
}
print "\nsamples: $OUT/soak.tsv\nplot: $PNG\n" if $plotted;

if ($DEFAULT_RUN) {
    write_section($RESULTS, '## Soak', join '', "## Soak\n\n",
        'Produced by `./build.sh soak` (`bench/soak.pl`) on ', strftime('%Y-%m-%dT%H:%M:%SZ', gmtime),
        ': ', @FAILURES ? '**failed**: ' . join('; ', @FAILURES) : 'passed', ".\n",
        "A mixed load (60% redirects over 20 links, 20% API reads, 12% lead writes of an account\n",
        "with Klaviyo connected to a stand-in, 8% signed callbacks, 30% of them sent again) from\n",
        "forked clients at a steady rate.\n\n",
        $summary, "\n![worker RSS, shared zones, file descriptors and PostgreSQL connections over",
        " the soak](soak.png)\n");
}

finish_early() if @FAILURES;
print "verdict: PASS\n";
exit 0;

# prints why the run fails, keeps its directory and exits 1
sub finish_early {
    print "verdict: FAIL\n", map { "  - $_\n" } @FAILURES;
    $t->teardown;
    $ENV{CRM_TEST_KEEP} = 1;
    print "kept $W\n";
    exit 1;
}

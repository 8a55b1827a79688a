#!/usr/bin/perl
# Clicks survive what the edge must survive: PostgreSQL stopped under a
# redirect load (the queue holds them; with a small queue the spool takes
# the rest), nginx -s reload under load, a worker killed with SIGKILL, and
# nginx stopped and started again.  In every case each 302 served becomes
# exactly one row in crm.clicks (no click lost, none twice), cached links
# keep answering 302 whatever PostgreSQL does, and nothing is dropped.
#
# Links are inserted with psql; the load comes from forked clients, each
# with its own keep-alive HTTP::Tiny that never follows a redirect.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use HTTP::Tiny;
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use CrmTest;

my $t = CrmTest->new;
my $DIR = $t->dir;
my $SPOOL = "$DIR/spool";
$t->start_db;
# a long TTL: the links warmed below must stay cached through every outage
$t->write_config($t->edge_config(ttl => '10m', negative_ttl => '10m'));
$t->start_nginx;

my ($acc) = $t->member;
my $OWNER = $acc->{id};

my $CLICK_RE = qr/[0-9A-Za-z]{26}/;
my $R302 = 'crm_redirects_total{status="302"}';

sub add_link {
    my $id = link_id();
    $t->psql("INSERT INTO crm.affiliate_links (id, owner_id, target_url, install_cents,"
        . " conversion_bps, currency) VALUES ('$id', '$OWNER', 'https://shop.example.com/l/$id?x=1',"
        . " 500, 1000, 'USD'); INSERT INTO crm.affiliate_link_stats (link_id) VALUES ('$id')");
    return $id;
}

sub in_list { join ', ', map { "'$_'" } @{ $_[0] } }

sub rows_of {
    my ($links) = @_;
    return $t->psql('SELECT count(*) FROM crm.clicks WHERE link_id IN (' . in_list($links) . ')') + 0;
}

sub spool_files {
    opendir my $dh, $SPOOL or return ();
    my @f = sort grep { /^clicks-/ } readdir $dh;
    closedir $dh;
    return @f;    # in scalar context, how many
}

sub delta {
    my ($before, $after, $name) = @_;
    return ($after->{$name} // 0) - ($before->{$name} // 0);
}

# n links, each requested once (so cached), their clicks written
sub warm_links {
    my ($n, $name) = @_;
    my @links = map { add_link() } 1 .. $n;
    for my $id (@links) {
        is($t->get("/r/$id")->{status}, 302, "$name: link $id warmed into the cache");
    }
    ok(wait_until(15, sub { rows_of(\@links) == $n }, 0.1), "$name: the warm-up clicks are written");
    return @links;
}

# Starts forked clients that request /r/{id} of the links in turn until
# stop_load().  A request that fails on a kept-alive connection the server
# closed or lost (a reload, a killed worker) is sent once more on a new
# connection, as browsers do; the first attempt is counted as "retried".
my $LOADS = 0;
sub start_load {
    my (%o) = @_;
    my $tag = ++$LOADS;
    my $stop = "$DIR/load-$tag.stop";
    my $url = $t->base_url;
    my @links = @{ $o{links} };
    my %headers = %{ $o{headers} || {} };
    my @kids;
    for my $i (1 .. ($o{clients} // 3)) {
        my $out = "$DIR/load-$tag-$i.out";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            $SIG{ALRM} = 'DEFAULT';
            alarm 150;
            my $new_ua = sub {
                HTTP::Tiny->new(max_redirect => 0, keep_alive => 1, timeout => 10,
                    agent => $o{agent} // 'crm-load/1.0')
            };
            my $ua = $new_ua->();
            my (%n, @cids, @samples);
            my $k = $i;
            until (-e $stop) {
                my $path = "$url/r/" . $links[$k++ % @links] . "?shop=c$i.example.com";
                my $r = $ua->get($path, { headers => \%headers });
                if ($r->{status} == 599) {
                    $n{retried}++;
                    push @samples, "retried after: " . substr($r->{content} // '', 0, 120) if @samples < 8;
                    $ua = $new_ua->();
                    $r = $ua->get($path, { headers => \%headers });
                }
                $n{ $r->{status} }++;
                if ($r->{status} == 302) {
                    my ($c) = ($r->{headers}{location} // '') =~ /[?&]click_id=($CLICK_RE)/;
                    push @cids, $c // 'none';
                } elsif (@samples < 8) {
                    (my $s = "$r->{status} " . substr($r->{content} // '', 0, 160)) =~ s/\s+/ /g;
                    push @samples, $s;
                }
                sleep $o{pause} if $o{pause};
            }
            open my $fh, '>', $out or POSIX::_exit(1);
            print $fh "n $_ $n{$_}\n" for sort keys %n;
            print $fh "c $_\n" for @cids;
            print $fh "s $_\n" for @samples;
            close $fh;
            POSIX::_exit(0);
        }
        push @kids, [$pid, $out];
    }
    return { stop => $stop, kids => \@kids, started => time };
}

# stops the clients; returns {n => {status => count}, cids => [...],
# samples => [...], seconds}
sub stop_load {
    my ($load) = @_;
    open my $fh, '>', $load->{stop} or die "$load->{stop}: $!";
    close $fh;
    my (%n, @cids, @samples);
    for my $k (@{ $load->{kids} }) {
        my ($pid, $out) = @$k;
        unless (wait_until(30, sub { waitpid($pid, POSIX::WNOHANG()) == $pid })) {
            kill 'KILL', $pid;
            waitpid $pid, 0;
            push @samples, "client $pid did not stop";
        }
        open my $in, '<', $out or do { push @samples, "client $pid left no result"; next };
        while (my $line = <$in>) {
            chomp $line;
            if ($line =~ /^n (\S+) (\d+)$/) { $n{$1} += $2 }
            elsif ($line =~ /^c (.*)$/) { push @cids, $1 }
            elsif ($line =~ /^s (.*)$/) { push @samples, $1 }
        }
        close $in;
    }
    my $retried = delete $n{retried} // 0;
    return { n => \%n, cids => \@cids, samples => \@samples, retried => $retried,
             seconds => time - $load->{started} };
}

# every request of the load was answered 302
sub all_302 {
    my ($name, $res) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok302 = $res->{n}{302} // 0;
    note(sprintf "%s: %d redirects in %.1f s, %d retried on a new connection",
        $name, $ok302, $res->{seconds}, $res->{retried});
    cmp_ok($ok302, '>', 500, "$name: the load got $ok302 redirects");
    my %other = map { $_ => $res->{n}{$_} } grep { $_ != 302 } keys %{ $res->{n} };
    is_deeply(\%other, {}, "$name: every request answered 302, none failed")
        or diag(explain(\%other), join("\n", @{ $res->{samples} }));
    is(scalar(grep { $_ eq 'none' } @{ $res->{cids} }), 0, "$name: every 302 carries a click id");
}

# The clicks of the links reach the database: exactly $rows0 + $served
# rows (polling up to $within seconds), no click id twice, every click id
# a client received among them, and the stats count them.
sub check_clicks {
    my ($name, $links, $rows0, $served, $res, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $want = $rows0 + $served;
    my $got = 0;
    my $t0 = time;
    ok(wait_until($o{within} // 30, sub { ($got = rows_of($links)) >= $want }, 0.25),
        "$name: all $served clicks of the redirects served arrive")
        or diag("rows: $got of $want; spool: " . join(' ', spool_files())
            . '; metrics: ' . join(' ', map { my $m = $t->metrics; "$_=" . ($m->{$_} // '?') }
                qw(crm_click_queue_bytes crm_click_spool_bytes crm_clicks_replayed_total crm_clicks_dropped_total)));
    note(sprintf "%s: the clicks were all written %.1f s after the load ended", $name, time - $t0);
    sleep 0.5;    # and no more come
    is(rows_of($links), $want, "$name: exactly $want rows, one per 302 served");

    my $in = in_list($links);
    is($t->psql("SELECT count(*) - count(DISTINCT click_id) FROM crm.clicks WHERE link_id IN ($in)"), 0,
        "$name: no click id twice");
    my %db = map { $_ => 1 } $t->psql("SELECT click_id FROM crm.clicks WHERE link_id IN ($in)");
    my @missing = grep { !$db{$_} } @{ $res->{cids} };
    is(scalar(@missing), 0, "$name: every click id a client received is stored")
        or diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]");
    is($t->psql("SELECT sum(clicks) FROM crm.affiliate_link_stats WHERE link_id IN ($in)"), $want,
        "$name: affiliate_link_stats.clicks add up to $want");
}


# --- (a) PostgreSQL stopped under load: the queue holds the clicks -----------------

{
    my $name = 'db down';
    my @links = warm_links(3, $name);
    my $rows0 = rows_of(\@links);
    my $m0 = $t->metrics;

    my $load = start_load(links => \@links, pause => 0.001);
    sleep 1.5;
    $t->stop_db;
    my $down = time;
    sleep 4;
    my $md = $t->metrics;
    cmp_ok(delta($m0, $md, 'crm_click_flush_failures_total'), '>', 0,
        "$name: flushes fail while PostgreSQL is down");
    cmp_ok($md->{crm_click_queue_bytes}, '>', 0, "$name: the queue holds the clicks ($md->{crm_click_queue_bytes} bytes)");
    $t->start_db;
    note(sprintf '%s: PostgreSQL was down for %.1f s', $name, time - $down);
    sleep 1.5;
    my $res = stop_load($load);
    my $m1 = $t->metrics;

    all_302($name, $res);
    my $served = delta($m0, $m1, $R302);
    is($served, $res->{n}{302} // 0, "$name: crm_redirects_total{status=\"302\"} counts the redirects the clients got");
    is(delta($m0, $m1, 'crm_redirects_total{status="503"}'), 0, "$name: no 503");
    check_clicks($name, \@links, $rows0, $served, $res);
    my $m2 = $t->metrics;
    is(delta($m0, $m2, 'crm_clicks_dropped_total'), 0, "$name: crm_clicks_dropped_total did not grow");
    is(delta($m0, $m2, 'crm_clicks_queued_total'), $served, "$name: every click went into the queue");
    is(delta($m0, $m2, 'crm_clicks_spooled_total'), 0, "$name: the 8m queue held them all, nothing spooled");
}


# --- (c) nginx -s reload under load ---------------------------------------------------

{
    my $name = 'reloads';
    my @links = warm_links(3, $name);
    my $rows0 = rows_of(\@links);
    my $m0 = $t->metrics;

    my $load = start_load(links => \@links, pause => 0.001);
    sleep 1;
    my $reloaded = 0;
    for (1 .. 4) {
        $reloaded++ if $t->reload;
        sleep 0.7;
    }
    is($reloaded, 4, "$name: 4 reloads under load, each with new workers");
    my $res = stop_load($load);
    my $m1 = $t->metrics;

    all_302($name, $res);
    my $served = delta($m0, $m1, $R302);
    is($served, $res->{n}{302} // 0, "$name: the counters survive the reloads and count every redirect");
    check_clicks($name, \@links, $rows0, $served, $res);
    is(delta($m0, $t->metrics, 'crm_clicks_dropped_total'), 0, "$name: crm_clicks_dropped_total did not grow");
    ok(wait_until(10, sub { !spool_files() }, 0.2), "$name: the spool is empty")
        or diag('spool: ' . join(' ', spool_files()));
}


{
    # the same with PostgreSQL down: the queue stays in the shared zone,
    # which the reload keeps, for the new workers to flush; the exiting
    # workers leave it to them instead of spooling it
    my $name = 'reloads with PostgreSQL down';
    my @links = warm_links(3, $name);
    my $rows0 = rows_of(\@links);
    my $m0 = $t->metrics;

    my $load = start_load(links => \@links, pause => 0.001);
    sleep 0.5;
    $t->stop_db;
    sleep 1;
    my $reloaded = 0;
    for (1 .. 2) {
        $reloaded++ if $t->reload;
        sleep 1;
    }
    is($reloaded, 2, "$name: 2 reloads under load, each with new workers");
    my @files = spool_files();
    ok(!@files, "$name: the exiting workers left the queue to the new ones")
        or diag("spool: @files");
    $t->start_db;
    sleep 1;
    my $res = stop_load($load);
    my $m1 = $t->metrics;

    all_302($name, $res);
    my $served = delta($m0, $m1, $R302);
    is($served, $res->{n}{302} // 0, "$name: the counters survive the reloads and count every redirect");
    check_clicks($name, \@links, $rows0, $served, $res);
    is(delta($m0, $t->metrics, 'crm_clicks_dropped_total'), 0, "$name: crm_clicks_dropped_total did not grow");
    ok(wait_until(10, sub { !spool_files() }, 0.2), "$name: the spool is empty")
        or diag('spool: ' . join(' ', spool_files()));
}


# --- (d) a worker killed with SIGKILL under load ----------------------------------------

{
    my $name = 'SIGKILL';
    $t->allow_log(qr/worker process \d+ exited on signal 9/);
    $t->allow_log(qr/shared memory zone "[^"]*" was locked by \d+/);

    my @links = warm_links(3, $name);
    my $rows0 = rows_of(\@links);
    my $m0 = $t->metrics;

    my $load = start_load(links => \@links, pause => 0.001);
    my @killed;
    for my $round (1 .. 3) {
        sleep 1;
        my @w = $t->worker_pids;
        my $victim = $w[$round % @w];
        push @killed, $victim if kill 'KILL', $victim;
        ok(wait_until(10, sub { my @n = $t->worker_pids; @n == 2 && !grep { $_ == $victim } @n }),
            "$name: worker $victim killed and replaced");
    }
    sleep 1;
    my $res = stop_load($load);
    my $m1 = $t->metrics;
    is(scalar(@killed), 3, "$name: 3 workers killed during the load (@killed)");

    all_302($name, $res);
    # a request the killed worker had taken may have been recorded and
    # counted without its answer leaving; the client then asked again
    my $served = delta($m0, $m1, $R302);
    cmp_ok($served, '>=', $res->{n}{302} // 0, "$name: the 302 counter has every redirect the clients got");
    cmp_ok($served - ($res->{n}{302} // 0), '<=', 3 * @killed,
        "$name: ... and at most one more per client and kill (a request cut off)");
    check_clicks($name, \@links, $rows0, $served, $res);
    is(delta($m0, $t->metrics, 'crm_clicks_dropped_total'), 0, "$name: crm_clicks_dropped_total did not grow");
    note("$name: batches recovered from killed workers: "
        . delta($m0, $t->metrics, 'crm_click_batches_recovered_total'));
    ok(wait_until(10, sub { !spool_files() }, 0.2), "$name: the spool is empty")
        or diag('spool: ' . join(' ', spool_files()));
}


# --- (e) nginx stopped (quit) and started again --------------------------------------------

{
    my $name = 'quit and start';
    my @links = warm_links(3, $name);
    my $rows0 = rows_of(\@links);
    my $m0 = $t->metrics;

    my $load = start_load(links => \@links, pause => 0.001);
    sleep 3;
    my $res = stop_load($load);
    my $m1 = $t->metrics;
    ok($t->stop_nginx, "$name: nginx stops gracefully right after the load");
    $t->start_nginx;

    all_302($name, $res);
    my $served = delta($m0, $m1, $R302);
    is($served, $res->{n}{302} // 0, "$name: the 302 counter counts every redirect");
    is(delta($m0, $m1, 'crm_clicks_dropped_total'), 0, "$name: crm_clicks_dropped_total did not grow");
    check_clicks($name, \@links, $rows0, $served, $res);
}

{
    # the same with PostgreSQL down: the queue still holds the clicks
    # when nginx stops, so the exiting workers must spool them, and the
    # next start must replay them
    my $name = 'quit with PostgreSQL down';
    my @links = warm_links(3, $name);
    my $rows0 = rows_of(\@links);
    my $m0 = $t->metrics;

    $t->stop_db;
    my $load = start_load(links => \@links, pause => 0.001);
    sleep 2.5;
    my $res = stop_load($load);
    my $m1 = $t->metrics;
    cmp_ok($m1->{crm_click_queue_bytes}, '>', 0, "$name: the queue holds the clicks ($m1->{crm_click_queue_bytes} bytes)");
    ok($t->stop_nginx, "$name: nginx stops gracefully");
    my @files = spool_files();
    ok(@files, "$name: the exiting workers spooled the queue: @files");
    # sealed: ".ready", or ".replay" for one a worker had started to
    # replay (it failed with the database down; the next start replays it
    # from its start, skipping what is stored); never ".open"
    ok(!grep({ !/\.(ready|replay)\z/ } @files), "$name: ... in sealed files (.ready, .replay)");

    $t->start_db;
    $t->start_nginx;

    all_302($name, $res);
    my $served = delta($m0, $m1, $R302);
    is($served, $res->{n}{302} // 0, "$name: the 302 counter counts every redirect");
    is(delta($m0, $m1, 'crm_clicks_dropped_total'), 0, "$name: crm_clicks_dropped_total did not grow");
    check_clicks($name, \@links, $rows0, $served, $res);
    my $m2 = $t->metrics;
    is($m2->{crm_clicks_replayed_total}, $served, "$name: the new start replayed all $served of them");
    is($m2->{crm_clicks_dropped_total}, 0, "$name: the new start dropped nothing");
    ok(wait_until(10, sub { !spool_files() }, 0.2), "$name: the spool is empty")
        or diag('spool: ' . join(' ', spool_files()));
}


# --- (b) a small queue: many laps, then an overflow into the spool ---------------------------

# long User-Agents and Referers: about 1.6 KB a click, so the 1m queue
# holds only about 550 and its ring wraps around every few hundred
# milliseconds under load
my %LONG = (headers => { Referer => 'https://blog.example/' . ('r' x 1000) },
            agent => 'Mozilla/5.0 (X11; Linux x86_64) ' . ('x' x 470));

{
    # PostgreSQL up: the ring goes round and round; every batch must be
    # whole lines of this lap, however the laps and the batches fall
    my $name = 'small queue, many laps';
    ok($t->stop_nginx, "$name: nginx stopped to change the queue's size");
    $t->write_config($t->edge_config(queue => '1m', ttl => '10m', negative_ttl => '10m'));
    $t->start_nginx;

    my @links = warm_links(3, $name);
    my $rows0 = rows_of(\@links);
    my $m0 = $t->metrics;
    my $log0 = -s "$DIR/error.log";

    my $load = start_load(links => \@links, pause => 0.0005, %LONG);
    sleep 5;
    my $res = stop_load($load);
    my $m1 = $t->metrics;
    my $laps = int(delta($m0, $m1, $R302) * 1600 / $m0->{crm_click_queue_size_bytes});
    note("$name: about $laps laps of the ring");

    all_302($name, $res);
    my $served = delta($m0, $m1, $R302);
    is($served, $res->{n}{302} // 0, "$name: the 302 counter counts every redirect");
    check_clicks($name, \@links, $rows0, $served, $res, within => 20);
    my $m2 = $t->metrics;
    is(delta($m0, $m2, 'crm_click_flush_failures_total'), 0, "$name: no flush failed (PostgreSQL was up)");
    is(delta($m0, $m2, 'crm_clicks_dropped_total'), 0, "$name: crm_clicks_dropped_total did not grow");
    my $log = substr(CrmTest::_slurp("$DIR/error.log"), $log0);
    my @refused = $log =~ /(click flush failed.*(?:sqlstate|internal error).*)/g;
    is(scalar(@refused), 0, "$name: PostgreSQL refused no batch (a batch is whole click lines)")
        or diag(join "\n", (@refused)[0 .. ($#refused < 4 ? $#refused : 4)]);
    ok(wait_until(10, sub { $t->metrics->{crm_click_queue_bytes} == 0 }, 0.2), "$name: the queue drains")
        or diag('queue bytes: ' . $t->metrics->{crm_click_queue_bytes});
}

{
    my $name = 'spool';
    # a fresh queue, whatever the laps above left in it
    ok($t->stop_nginx, "$name: nginx stopped");
    $t->start_nginx;

    my @links = warm_links(3, $name);
    my $rows0 = rows_of(\@links);
    my $m0 = $t->metrics;
    note("$name: the queue holds $m0->{crm_click_queue_size_bytes} bytes");
    cmp_ok($m0->{crm_click_queue_size_bytes}, '<', 1024 * 1024, "$name: a queue of less than 1m");

    my $load = start_load(links => \@links, pause => 0.001, %LONG);
    sleep 1;
    $t->stop_db;
    sleep 5;
    my $md = $t->metrics;
    my @files = spool_files();
    cmp_ok(delta($m0, $md, 'crm_clicks_spooled_total'), '>', 0,
        "$name: PostgreSQL down, the queue full: clicks go to the spool (" . delta($m0, $md, 'crm_clicks_spooled_total') . ')');
    cmp_ok($md->{crm_click_spool_bytes}, '>', 0, "$name: crm_click_spool_bytes $md->{crm_click_spool_bytes}");
    cmp_ok($md->{crm_click_queue_bytes}, '>', $md->{crm_click_queue_size_bytes} * 0.9,
        "$name: the queue is full ($md->{crm_click_queue_bytes} of $md->{crm_click_queue_size_bytes} bytes)");
    ok(@files, "$name: spool files in <dir>/spool: @files");
    is(delta($m0, $md, 'crm_clicks_dropped_total'), 0, "$name: nothing dropped");

    $t->start_db;
    sleep 1.5;
    my $res = stop_load($load);
    my $m1 = $t->metrics;

    all_302($name, $res);
    my $served = delta($m0, $m1, $R302);
    is($served, $res->{n}{302} // 0, "$name: the 302 counter counts every redirect");
    check_clicks($name, \@links, $rows0, $served, $res);
    my $m2 = $t->metrics;
    cmp_ok(delta($m0, $m2, 'crm_clicks_replayed_total'), '>', 0,
        "$name: the spooled clicks were replayed (" . delta($m0, $m2, 'crm_clicks_replayed_total') . ')');
    is(delta($m0, $m2, 'crm_clicks_queued_total') + delta($m0, $m2, 'crm_clicks_spooled_total'), $served,
        "$name: every click was queued or spooled");
    is(delta($m0, $m2, 'crm_clicks_flushed_total') + delta($m0, $m2, 'crm_clicks_replayed_total'), $served,
        "$name: every click was flushed or replayed, once");
    is(delta($m0, $m2, 'crm_clicks_dropped_total'), 0, "$name: crm_clicks_dropped_total did not grow");
    ok(wait_until(10, sub { !spool_files() }, 0.2), "$name: the spool folder empties")
        or diag('spool: ' . join(' ', spool_files()));
    ok(wait_until(10, sub { $t->metrics->{crm_click_spool_bytes} == 0 }, 0.2),
        "$name: crm_click_spool_bytes back to 0");
}

{
    # a worker killed while it writes its spool file: the file of a dead
    # worker is replayed by the others
    my $name = 'SIGKILL while spooling';
    my @links = warm_links(3, $name);
    my $rows0 = rows_of(\@links);
    my $m0 = $t->metrics;

    my $load = start_load(links => \@links, pause => 0.001, %LONG);
    sleep 0.5;
    $t->stop_db;
    sleep 2.5;
    my @open = grep { /\.open\z/ } spool_files();
    ok(@open, "$name: workers are spooling: @open");
    my @w = $t->worker_pids;
    my ($victim) = grep { my $p = $_; grep { /^clicks-$p-/ } @open } @w;
    $victim //= $w[0];
    ok(kill('KILL', $victim), "$name: worker $victim killed");
    ok(wait_until(10, sub { my @n = $t->worker_pids; @n == 2 && !grep { $_ == $victim } @n }),
        "$name: ... and replaced");
    sleep 1.5;
    ok(scalar(grep { /^clicks-$victim-/ } spool_files()), "$name: the dead worker's spool file is there")
        or diag('spool: ' . join(' ', spool_files()));
    $t->start_db;
    sleep 1;
    my $res = stop_load($load);
    my $m1 = $t->metrics;

    all_302($name, $res);
    my $served = delta($m0, $m1, $R302);
    cmp_ok($served, '>=', $res->{n}{302} // 0, "$name: the 302 counter has every redirect the clients got");
    cmp_ok($served - ($res->{n}{302} // 0), '<=', 3, "$name: ... and at most one more per client");
    check_clicks($name, \@links, $rows0, $served, $res);
    is(delta($m0, $t->metrics, 'crm_clicks_dropped_total'), 0, "$name: crm_clicks_dropped_total did not grow");
    ok(wait_until(10, sub { !spool_files() }, 0.2), "$name: the spool folder empties, the dead worker's file too")
        or diag('spool: ' . join(' ', spool_files()));
}

my $m = $t->metrics;
is($m->{crm_clicks_dropped_total}, 0, 'crm_clicks_dropped_total 0 at the end');
# two workers' flushes run at once: they must not deadlock on the link
# counters (each would wait for the other's row; PostgreSQL kills one)
my @deadlocks = $t->error_log =~ /(click flush failed.*deadlock detected.*)/g;
is(scalar(@deadlocks), 0, 'no flush died in a deadlock with another')
    or diag($deadlocks[0]);
is($t->psql('SELECT count(*) FROM crm.clicks') + 0,
    $t->psql('SELECT sum(clicks) FROM crm.affiliate_link_stats') + 0,
    'the stats count every click row');

$t->done;

#!/usr/bin/perl
# The edge's resources, each apart from the API's:
#
#   1. link loads, click flushes and the database probes run on the edge's
#      own pool (crm_edge_thread_pool): with the API's only thread blocked
#      on a row lock, cached links still redirect at once, their clicks
#      reach crm.clicks within a second, an uncached link is loaded, and
#      /healthz answers 200 from the probes' state;
#   2. crm_queue_timeout: a call that waited longer than that in the pool's
#      queue answers 503 (problem+json, Retry-After) without running, and
#      crm_thread_queue_timeouts_total counts it; a redirect whose link load
#      waited too long on the edge's pool answers 503 as well;
#   3. one set of connections per distinct crm_database, however many
#      server blocks name it: at most workers x (pool threads) backends,
#      each named after a current worker;
#   4. only a batch's own content sets it aside: a column added to
#      crm.clicks under load, or crm.clicks renamed away for seconds, loses
#      no click and sets nothing aside; a CHECK that rejects a click sets
#      its batch aside after three refusals;
#   5. leases: the batch of a worker stopped (SIGSTOP) in the middle of a
#      flush is taken over by the other worker once its lease runs out,
#      while the first is still stopped; in the end every 302 is exactly
#      one row.
#
# Links are inserted with psql; the load comes from forked clients, each
# with its own keep-alive HTTP::Tiny that never follows a redirect.  Locks
# are held by psql sessions in forked children, named with PGAPPNAME.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use HTTP::Tiny;
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use CrmTest;

my $t = CrmTest->new(
    workers      => 1,
    pool_threads => 1,
    main_extra   => 'thread_pool edge threads=2;',
);
my $DIR = $t->dir;
my $SPOOL = "$DIR/spool";
my $CLICK_RE = qr/[0-9A-Za-z]{26}/;
my $R302 = 'crm_redirects_total{status="302"}';
my $EDGE_THREADS = 2;

$t->start_db;

# a long TTL (links stay cached through every scene), a 2 s lease
my %EDGE = $t->edge_config(ttl => '10m', negative_ttl => '10m', lease => '2s');
$t->write_config(%EDGE, conf => {
    crm_edge_thread_pool => 'edge',
    crm_queue_timeout    => '300ms',
});
$t->start_nginx;

my ($acc, $token) = $t->member;
my $OWNER = $acc->{id};


# --- helpers --------------------------------------------------------------------

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

sub click_stored {
    my ($cid) = @_;
    return $t->psql("SELECT count(*) FROM crm.clicks WHERE click_id = '$cid'") + 0;
}

sub click_of {
    my ($r) = @_;
    my ($c) = ($r->{headers}{location} // '') =~ /[?&]click_id=($CLICK_RE)/;
    return $c;
}

sub delta {
    my ($before, $after, $name) = @_;
    return ($after->{$name} // 0) - ($before->{$name} // 0);
}

sub bad_files {
    opendir my $dh, $SPOOL or return ();
    my @f = sort grep { /\.bad\z/ } readdir $dh;
    closedir $dh;
    return @f;
}

# a new connection each time: a kept-alive one may belong to a stopped worker
sub fresh_ua { HTTP::Tiny->new(max_redirect => 0, keep_alive => 0, timeout => $_[0] // 5) }

# /metrics on a new connection
sub fresh_metrics {
    my $r = $t->get('/metrics', ua => fresh_ua(3));
    my %m;
    for (split /\n/, $r->{content}) {
        $m{$1} = $2 if /^(\S+) (\d+)$/;
    }
    return \%m;
}

# a request with its own connection, timed: (response, seconds)
sub timed {
    my ($method, $path, %o) = @_;
    my $t0 = time;
    my $r = $t->request($method, $path, ua => fresh_ua(10), %o);
    return ($r, time - $t0);
}

# A psql session in a forked child, named $app in pg_stat_activity; its
# errors (a session terminated on purpose) are its own.  Returns the pid.
sub psql_bg {
    my ($app, $sql) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $ENV{PGAPPNAME} = $app;
        eval { $t->psql($sql) };
        POSIX::_exit(0);
    }
    return $pid;
}

sub reap {
    my ($pid, $seconds) = @_;
    return 1 if wait_until($seconds // 15, sub { waitpid($pid, POSIX::WNOHANG()) == $pid });
    kill 'KILL', $pid;
    waitpid $pid, 0;
    return 0;
}

# Requests in forked children, each on its own connection, in the
# background.  Returns a handle for collect().
my $BG = 0;
sub bg_requests {
    my (@reqs) = @_;    # [method, path, %opt]
    my $tag = ++$BG;
    my @kids;
    for my $i (0 .. $#reqs) {
        my ($method, $path, %o) = @{ $reqs[$i] };
        my $out = "$DIR/bg-$tag-$i.json";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            $SIG{ALRM} = 'DEFAULT';
            my $t0 = time;
            my $r = $t->request($method, $path, ua => fresh_ua(20), allow_5xx => 1, %o);
            CrmTest::_write_file($out, CrmTest::json_encode({ status => $r->{status},
                headers => $r->{headers}, content => $r->{content}, seconds => time - $t0 }));
            POSIX::_exit(0);
        }
        push @kids, [$pid, $out, "$method $path"];
    }
    return \@kids;
}

# the responses of bg_requests(), in order; a 5xx other than 503 fails the
# file as any other would
sub collect {
    my ($kids) = @_;
    my @res;
    for my $k (@$kids) {
        my ($pid, $out, $what) = @$k;
        reap($pid, 30);
        my $r = eval { CrmTest::json_decode(CrmTest::_slurp($out)) }
            // { status => 0, headers => {}, content => "no response", seconds => 0 };
        $r->{json} = CrmTest::_try_decode($r);
        $t->_note_status($r, "background $what", 1);
        push @res, $r;
    }
    return @res;
}

# backends of the gateway that wait on a lock: { worker pid => query }
sub waiting_on_lock {
    my %w;
    for ($t->psql("SELECT application_name, left(regexp_replace(query, '\\s+', ' ', 'g'), 60)"
            . " FROM pg_stat_activity WHERE application_name LIKE 'crm-gateway/%'"
            . " AND wait_event_type = 'Lock'")) {
        my ($app, $q) = split /\|/, $_, 2;
        $w{$1} = $q if $app =~ m{^crm-gateway/(\d+)$};
    }
    return \%w;
}

# how many backends of the gateway wait on a lock
sub lock_waits {
    return $t->psql("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'crm-gateway/%'"
        . " AND wait_event_type = 'Lock'") + 0;
}

sub session_waits {
    my ($app, $event) = @_;
    return $t->psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = '$app'"
        . " AND wait_event = '$event'") + 0;
}

sub terminate_session {
    my ($app) = @_;
    $t->psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '$app'");
}

sub process_state {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return '';
    my $s = <$fh> // '';
    return $s =~ /^\d+ \(.*\) (\S)/s ? $1 : '';
}

# Forked clients that request /r/{id} of the links in turn until
# stop_load(); a request that fails on a connection the server closed is
# sent once more on a new one.
my $LOADS = 0;
sub start_load {
    my (%o) = @_;
    my $tag = ++$LOADS;
    my $stop = "$DIR/load-$tag.stop";
    my $url = $t->base_url;
    my @links = @{ $o{links} };
    my @kids;
    for my $i (1 .. ($o{clients} // 3)) {
        my $out = "$DIR/load-$tag-$i.out";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            $SIG{ALRM} = 'DEFAULT';
            alarm 120;
            my $new_ua = sub { HTTP::Tiny->new(max_redirect => 0, keep_alive => 1, timeout => 10,
                agent => 'crm-load/1.0') };
            my $ua = $new_ua->();
            my (%n, @cids, @samples);
            my $k = $i;
            until (-e $stop) {
                my $path = "$url/r/" . $links[$k++ % @links] . "?shop=c$i.example.com";
                my $r = $ua->get($path);
                if ($r->{status} == 599) {
                    $n{retried}++;
                    push @samples, 'retried after: ' . substr($r->{content} // '', 0, 120) if @samples < 8;
                    $ua = $new_ua->();
                    $r = $ua->get($path);
                }
                $n{ $r->{status} }++;
                if ($r->{status} == 302) {
                    my ($c) = ($r->{headers}{location} // '') =~ /[?&]click_id=($CLICK_RE)/;
                    push @cids, $c // 'none';
                } elsif (@samples < 8) {
                    (my $s = "$r->{status} " . substr($r->{content} // '', 0, 160)) =~ s/\s+/ /g;
                    push @samples, $s;
                }
                sleep $o{pause} // 0.002;
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

sub stop_load {
    my ($load) = @_;
    open my $fh, '>', $load->{stop} or die "$load->{stop}: $!";
    close $fh;
    my (%n, @cids, @samples);
    for my $k (@{ $load->{kids} }) {
        my ($pid, $out) = @$k;
        push @samples, "client $pid did not stop" unless reap($pid, 30);
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

sub all_302 {
    my ($name, $res) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok302 = $res->{n}{302} // 0;
    note(sprintf "%s: %d redirects in %.1f s, %d retried on a new connection",
        $name, $ok302, $res->{seconds}, $res->{retried});
    cmp_ok($ok302, '>', 100, "$name: the load got $ok302 redirects");
    my %other = map { $_ => $res->{n}{$_} } grep { $_ != 302 } keys %{ $res->{n} };
    is_deeply(\%other, {}, "$name: every request answered 302")
        or diag(explain(\%other), join("\n", @{ $res->{samples} }));
}

# every 302 a client got is exactly one row, and no row is a click no
# client got
sub check_clicks {
    my ($name, $links, $rows0, $res, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $served = scalar @{ $res->{cids} };
    my $want = $rows0 + $served;
    my $got = 0;
    ok(wait_until($o{within} // 20, sub { ($got = rows_of($links)) >= $want }, 0.2),
        "$name: all $served clicks of the redirects served arrive")
        or diag("rows: $got of $want");
    sleep 0.3;
    is(rows_of($links), $want, "$name: exactly $want rows, one per 302 served");
    my $in = in_list($links);
    is($t->psql("SELECT count(*) - count(DISTINCT click_id) FROM crm.clicks WHERE link_id IN ($in)"), 0,
        "$name: no click id twice");
    my %db = map { $_ => 1 } $t->psql("SELECT click_id FROM crm.clicks WHERE link_id IN ($in)");
    my @missing = grep { !$db{$_} } @{ $res->{cids} };
    is(scalar(@missing), 0, "$name: every click id a client received is stored")
        or diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]");
    if ($o{seen}) {
        my @extra = grep { !$o{seen}{$_} } keys %db;
        is(scalar(@extra), 0, "$name: no stored click that no client saw")
            or diag("not seen: @extra[0 .. ($#extra < 9 ? $#extra : 9)]");
    }
}

# n links, each requested once (so cached), their clicks written; the
# click ids of those warm-up requests
sub warm_links {
    my ($n, $name) = @_;
    my @links = map { add_link() } 1 .. $n;
    my @cids;
    for my $id (@links) {
        my $r = $t->get("/r/$id");
        is($r->{status}, 302, "$name: link $id warmed into the cache");
        push @cids, click_of($r) // 'none';
    }
    ok(wait_until(10, sub { rows_of(\@links) == $n }, 0.1), "$name: the warm-up clicks are written");
    return (\@links, \@cids);
}


# --- 1 and 2: the API's only thread blocked ----------------------------------------
#
# One worker, one thread in the "crm" pool, two in "edge".  A psql session
# holds a lead's row lock; a PUT of that lead waits on it on the API's
# thread until the statement timeout (5 s), and more PUTs queue behind it.

{
    my $name = 'API pool blocked';
    my $lead = $t->create_lead($token, name => 'Locked lead');
    my ($warm) = warm_links(1, $name);
    my $A = $warm->[0];
    my $B = add_link();     # not cached yet: its redirect is a link load
    my $m0 = $t->metrics;

    my $holder = psql_bg('crm-test-row-lock', "BEGIN; SELECT id FROM crm.leads WHERE id = '$lead->{id}'"
        . " FOR UPDATE; SELECT pg_sleep(30); COMMIT;");
    ok(wait_until(5, sub { session_waits('crm-test-row-lock', 'PgSleep') }),
        "$name: a psql session holds the lead's row lock");
    my $blockers = bg_requests(map { ['PUT', "/leads/$lead->{id}",
        json => { name => "Blocked $_" }, token => $token] } 1 .. 3);
    my $blocked_at = time;
    my $w;
    ok(wait_until(3, sub { $w = waiting_on_lock(); scalar keys %$w }),
        "$name: a PUT waits on the row lock on the API's only thread")
        or diag('pg_stat_activity: ' . join("\n", $t->psql('SELECT application_name, state,'
            . ' wait_event_type, wait_event, left(query, 60) FROM pg_stat_activity')));
    note("$name: waiting: " . join('; ', map { "$_: $w->{$_}" } sort keys %$w));

    # a cached link: 302 at once, the clicks stored within a second
    my ($r, $s, @cids, @slow);
    for (1 .. 5) {
        ($r, $s) = timed('GET', "/r/$A");
        push @slow, sprintf('%d in %.3f s', $r->{status}, $s) if $r->{status} != 302 || $s >= 0.5;
        push @cids, click_of($r) // 'none';
    }
    is(join(', ', @slow), '', "$name: 5 redirects of a cached link answer 302 at once (< 0.5 s each)");
    ok(!grep({ $_ eq 'none' } @cids), "$name: ... each with a click id");
    my $cin = join ', ', map { "'$_'" } @cids;
    my $t0 = time;
    ok(wait_until(1, sub { $t->psql("SELECT count(*) FROM crm.clicks WHERE click_id IN ($cin)") == 5 }, 0.05),
        "$name: their clicks reach crm.clicks within 1 s (the flush runs on the edge's pool)");
    note(sprintf "%s: the clicks were stored %.2f s after the last 302", $name, time - $t0);

    # an uncached link: loaded on the edge's pool
    ($r, $s) = timed('GET', "/r/$B");
    is($r->{status}, 302, "$name: an uncached link answers 302 (its load runs on the edge's pool)");
    cmp_ok($s, '<', 1, sprintf("$name: ... within 1 s (%.3f s)", $s));
    my $cidb = click_of($r);
    ok(wait_until(1, sub { click_stored($cidb // 'none') }, 0.05),
        "$name: ... and its click reaches crm.clicks within 1 s");

    # /healthz: the probes' state, no task on the blocked pool
    ($r, $s) = timed('GET', '/healthz');
    is($r->{status}, 200, "$name: /healthz answers 200");
    is(ref $r->{json} eq 'HASH' ? $r->{json}{status} : undef, 'ok', "$name: ... status ok");
    cmp_ok($s, '<', 0.5, sprintf("$name: ... at once (%.3f s)", $s));

    ok(scalar keys %{ waiting_on_lock() }, "$name: the PUT still waits on the lock after these checks")
        or diag(sprintf 'checks took %.2f s', time - $blocked_at);

    # 2: a call queued behind the blocked one, longer than crm_queue_timeout
    my $lead_name = "Queued lead $$ " . int(rand 1e9);
    ($r, $s) = timed('POST', '/leads/', json => { name => $lead_name }, token => $token, allow_503 => 1);
    is_problem($r, 503, "$name: POST /leads/ queued behind the blocked thread answers 503");
    ok(defined $r->{headers}{'retry-after'}, "$name: ... with Retry-After")
        or diag(explain($r->{headers}));
    note(sprintf "%s: the POST answered after %.2f s: %s", $name, $s, $r->{content});

    my @put = collect($blockers);
    terminate_session('crm-test-row-lock');
    reap($holder, 10);
    is(join(' ', map { $_->{status} } @put), '503 503 503',
        "$name: the PUTs answered 503 (one on the statement timeout, the rest on the queue timeout)")
        or diag(join "\n", map { "$_->{status} $_->{content}" } @put);
    is($t->psql("SELECT name FROM crm.leads WHERE id = '$lead->{id}'"), 'Locked lead',
        "$name: none of the PUTs changed the lead (the queued ones never ran)");

    sleep 0.5;
    is($t->psql("SELECT count(*) FROM crm.leads WHERE name = '$lead_name'"), 0,
        "$name: the timed-out POST did not create the lead");
    my $m1 = $t->metrics;
    is(delta($m0, $m1, 'crm_thread_queue_timeouts_total'), 3,
        "$name: crm_thread_queue_timeouts_total grew by 3: two PUTs and the POST");

    # the pool is free again: the same POST now runs
    $r = $t->post_json('/leads/', { name => $lead_name }, token => $token);
    is($r->{status}, 201, "$name: with the thread free again the POST creates the lead");
    is($t->psql("SELECT count(*) FROM crm.leads WHERE name = '$lead_name'"), 1,
        "$name: ... once");
    is($t->get('/healthz')->{status}, 200, "$name: /healthz 200 afterwards");
}

{
    # 2, the edge's side: a link load that waited longer than
    # crm_queue_timeout behind two loads held by a lock answers 503
    my $name = 'edge pool blocked';
    my @links = map { add_link() } 1 .. 3;
    my $m0 = $t->metrics;
    my $holder = psql_bg('crm-test-links-lock', 'BEGIN; LOCK TABLE crm.affiliate_links IN ACCESS EXCLUSIVE MODE;'
        . ' SELECT pg_sleep(30); COMMIT;');
    ok(wait_until(5, sub { session_waits('crm-test-links-lock', 'PgSleep') }),
        "$name: a psql session holds crm.affiliate_links");
    my $kids = bg_requests(map { ['GET', "/r/$_", allow_503 => 1] } @links);
    ok(wait_until(5, sub { lock_waits() == $EDGE_THREADS }),
        "$name: two link loads wait on the lock, one on each of the edge's threads");
    sleep 1;    # the third load waits in the queue meanwhile
    terminate_session('crm-test-links-lock');
    my @res = collect($kids);
    reap($holder, 10);
    my @st = sort map { $_->{status} } @res;
    is("@st", '302 302 503', "$name: of three uncached links, two loads ran, the third waited too long: 503")
        or diag(join "\n", map { "$_->{status} $_->{content}" } @res);
    my ($busy) = grep { $_->{status} == 503 } @res;
    if ($busy) {
        is_problem($busy, 503, "$name: the 503 is a problem document");
        ok(defined $busy->{headers}{'retry-after'}, "$name: ... with Retry-After");
        cmp_ok($busy->{seconds}, '>', 1, sprintf "$name: ... sent once a thread took the load (%.2f s)", $busy->{seconds});
    }
    my $m1 = $t->metrics;
    is(delta($m0, $m1, 'crm_redirects_total{status="503"}'), 1, "$name: crm_redirects_total{status=\"503\"} grew by 1");
    note("$name: crm_thread_queue_timeouts_total grew by " . delta($m0, $m1, 'crm_thread_queue_timeouts_total')
        . ', crm_link_load_failures_total by ' . delta($m0, $m1, 'crm_link_load_failures_total'));
    is($t->get("/r/$links[0]")->{status}, 302, "$name: the links redirect afterwards");
}


# --- from here: two workers, two threads in each pool, three servers ---------------

ok($t->stop_nginx, 'nginx stopped to change the workers and the servers');

my @PORTS = ($t->port);
my $servers = '';
for (1 .. 2) {
    my $p = CrmTest::free_port($t->pg_port, @PORTS);
    push @PORTS, $p;
    $servers .= "    server {\n        listen 127.0.0.1:$p;\n        crm_database \"" . $t->dsn . "\";\n"
        . "        location / { crm_api; }\n    }\n";
}
my $CRM_THREADS = 2;
$t->write_config(workers => 2, pool_threads => $CRM_THREADS,
    http_extra => $EDGE{http_extra} . $servers, server_extra => $EDGE{server_extra});
$t->start_nginx;


# --- 3: one set of connections for the three servers ---------------------------------

{
    my $name = 'three servers';
    my @workers = $t->worker_pids;
    is(scalar(@workers), 2, "$name: two workers (@workers)");
    my %current = map { $_ => 1 } @workers;

    # the stopped nginx's backends are gone
    wait_until(5, sub { !grep { !$current{$_} } map { m{^crm-gateway/(\d+)$} ? $1 : () }
        $t->psql("SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'crm-gateway/%'") });

    my %bad;
    for my $round (1 .. 4) {
        my @res = $t->concurrently(30, sub {
            my ($i) = @_;
            my $port = $PORTS[$i % 3];
            my $r = HTTP::Tiny->new(timeout => 10)->get("http://127.0.0.1:$port/auth/me",
                { headers => { Authorization => "Bearer $token" } });
            return { status => $r->{status}, headers => $r->{headers},
                     content => "$port: " . ($r->{content} // '') };
        });
        $bad{"$_->{status} " . substr($_->{content}, 0, 80)}++ for grep { $_->{status} != 200 } @res;
    }
    is_deeply(\%bad, {}, "$name: 120 concurrent GET /auth/me over the three servers all answer 200");
    for my $p (@PORTS) {
        my $r = HTTP::Tiny->new(timeout => 5)->get("http://127.0.0.1:$p/auth/me",
            { headers => { Authorization => "Bearer $token" } });
        is($r->{status}, 200, "$name: the server on port $p answers");
    }

    my @apps = $t->psql("SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'crm-gateway/%'");
    my %per;
    $per{ m{^crm-gateway/(\d+)$} ? $1 : $_ }++ for @apps;
    my $n = @apps;
    my $max = @workers * ($CRM_THREADS + $EDGE_THREADS);
    note("$name: backends per worker: " . join(', ', map { "$_: $per{$_}" } sort keys %per));
    cmp_ok($n, '>', 0, "$name: the gateway holds connections ($n)");
    cmp_ok($n, '<=', $max, "$name: at most workers x (crm + edge threads) = $max backends, not one set per server");
    for my $pid (sort keys %per) {
        ok($current{$pid}, "$name: application_name crm-gateway/$pid names a current worker");
        cmp_ok($per{$pid}, '<=', $CRM_THREADS + $EDGE_THREADS,
            "$name: worker $pid holds at most one connection per thread ($per{$pid})");
    }
}


# --- 4: only the content of a batch sets it aside -------------------------------------

{
    my $name = 'column added under load';
    my ($links) = warm_links(3, $name);
    my $rows0 = rows_of($links);
    my $m0 = $t->metrics;

    my $load = start_load(links => $links);
    sleep 1;
    $t->psql('ALTER TABLE crm.clicks ADD COLUMN note text');
    sleep 1.5;
    my $res = stop_load($load);

    all_302($name, $res);
    check_clicks($name, $links, $rows0, $res);
    my $m1 = $t->metrics;
    is(delta($m0, $m1, $R302), scalar @{ $res->{cids} }, "$name: the 302 counter counts the redirects");
    is(delta($m0, $m1, 'crm_click_batches_set_aside_total'), 0, "$name: no batch set aside");
    is(delta($m0, $m1, 'crm_clicks_dropped_total'), 0, "$name: no click dropped");
    is(join(' ', bad_files()), '', "$name: no .bad file in the spool");
    is($t->psql('SELECT count(note) FROM crm.clicks'), 0, "$name: the new column is left to its default");
    $t->psql('ALTER TABLE crm.clicks DROP COLUMN note');
}

{
    my $name = 'crm.clicks renamed away';
    my ($links) = warm_links(3, $name);
    my $rows0 = rows_of($links);
    my $m0 = $t->metrics;
    my $log0 = -s "$DIR/error.log";

    my $load = start_load(links => $links);
    sleep 1;
    $t->psql('ALTER TABLE crm.clicks RENAME TO clicks_x');
    sleep 3;
    my $md = $t->metrics;
    $t->psql('ALTER TABLE crm.clicks_x RENAME TO clicks');
    sleep 1;
    my $res = stop_load($load);

    cmp_ok(delta($m0, $md, 'crm_click_flush_failures_total'), '>=', 3,
        "$name: flushes failed while the table was away (" . delta($m0, $md, 'crm_click_flush_failures_total') . ')');
    like(substr($t->error_log, $log0), qr/click flush failed.*42P01/,
        "$name: error.log names the undefined table (42P01)");
    all_302($name, $res);
    check_clicks($name, $links, $rows0, $res);
    my $m1 = $t->metrics;
    is(delta($m0, $m1, 'crm_click_batches_set_aside_total'), 0, "$name: no batch set aside");
    is(delta($m0, $m1, 'crm_clicks_dropped_total'), 0, "$name: no click dropped");
    is(join(' ', bad_files()), '', "$name: no .bad file in the spool");
}

{
    # the content: a CHECK that this click breaks (23514), three times
    my $name = 'a click PostgreSQL refuses';
    my ($links) = warm_links(1, $name);
    my $L = $links->[0];
    my $m0 = $t->metrics;
    $t->psql(q{ALTER TABLE crm.clicks ADD CONSTRAINT t_no_evil CHECK (referer <> 'evil')});
    my $r = $t->get("/r/$L", headers => { Referer => 'evil' });
    is($r->{status}, 302, "$name: the redirect answers 302 all the same");
    my $cid = click_of($r) // 'none';
    my $m1;
    ok(wait_until(10, sub { $m1 = $t->metrics; delta($m0, $m1, 'crm_click_batches_set_aside_total') >= 1 }, 0.1),
        "$name: its batch is set aside");
    is(delta($m0, $m1, 'crm_click_batches_set_aside_total'), 1, "$name: ... one batch");
    is(delta($m0, $m1, 'crm_click_flush_failures_total'), 3, "$name: ... after 3 refusals");
    is(delta($m0, $m1, 'crm_clicks_dropped_total'), 1, "$name: ... its click counted as dropped");
    my @bad = bad_files();
    is(scalar(@bad), 1, "$name: one .bad file in the spool: @bad");
    like(join('', map { CrmTest::_slurp("$SPOOL/$_") } @bad), qr/^\Q$cid\E\t/m,
        "$name: ... holding the click");
    is(click_stored($cid), 0, "$name: the click is not in crm.clicks");
    $t->psql('ALTER TABLE crm.clicks DROP CONSTRAINT t_no_evil');
    unlink map { "$SPOOL/$_" } @bad;

    $r = $t->get("/r/$L");
    my $ok = click_of($r) // 'none';
    ok(wait_until(5, sub { click_stored($ok) }, 0.1), "$name: the next click is stored");
}


# --- 5: a stopped worker's batch is taken over when its lease runs out -------------

{
    my $name = 'lease';
    my ($links, $warm) = warm_links(3, $name);
    my %seen = map { $_ => 1 } @$warm;
    my $rows0 = rows_of($links);
    my @workers = $t->worker_pids;
    my %current = map { $_ => 1 } @workers;
    my $m0 = fresh_metrics();

    my $load = start_load(links => $links);
    sleep 0.5;
    my $holder = psql_bg('crm-test-clicks-lock',
        'BEGIN; LOCK TABLE crm.clicks IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(30); COMMIT;');
    ok(wait_until(5, sub { session_waits('crm-test-clicks-lock', 'PgSleep') }),
        "$name: a psql session holds crm.clicks");
    # both workers' flushes end up waiting, each with a batch
    my $w = {};
    wait_until(5, sub { $w = waiting_on_lock(); 2 <= grep { $current{$_} } keys %$w });
    note("$name: waiting on the lock: " . join('; ', map { "$_: $w->{$_}" } sort keys %$w));
    my ($victim) = grep { $current{$_} } sort keys %$w;
    ok($victim, "$name: a worker's flush waits on the lock (worker " . ($victim // 'none') . ')');
    my $res = stop_load($load);
    $seen{$_} = 1 for @{ $res->{cids} };
    all_302($name, $res);
    my $want = $rows0 + @{ $res->{cids} };

    SKIP: {
        skip "$name: no flush waits on the lock", 4 unless $victim;
        ok(kill('STOP', $victim), "$name: worker $victim stopped (SIGSTOP)");
        ok(wait_until(2, sub { process_state($victim) eq 'T' }), "$name: ... it is stopped");
        delete $t->{ua};    # its connection may be the stopped worker's
        terminate_session('crm-test-clicks-lock');
        my $released = time;
        reap($holder, 10);

        my $got = 0;
        ok(wait_until(2 + 4, sub { ($got = rows_of($links)) >= $want }, 0.1),
            "$name: the other worker stores every click within lease + 4 s, the stopped one's batch too")
            or diag("rows: $got of $want");
        note(sprintf "%s: all stored %.1f s after the lock went", $name, time - $released);
        is(process_state($victim), 'T', "$name: ... while worker $victim is still stopped");
        my $m1 = fresh_metrics();
        cmp_ok(delta($m0, $m1, 'crm_click_batches_recovered_total'), '>=', 1,
            "$name: crm_click_batches_recovered_total grew by " . delta($m0, $m1, 'crm_click_batches_recovered_total'));
        ok(kill('CONT', $victim), "$name: worker $victim continued (SIGCONT)");
    }
    kill 'CONT', $victim if $victim;    # whatever happened above
    reap($holder, 10);

    ok(wait_until(5, sub { process_state($victim // 0) ne 'T' }), "$name: the worker runs again");
    sleep 1.5;    # the continued worker's flush ends, however it ends
    check_clicks($name, $links, $rows0, $res, seen => \%seen);
    my $m2 = $t->metrics;
    is(delta($m0, $m2, 'crm_clicks_dropped_total'), 0, "$name: nothing dropped");
    is(delta($m0, $m2, 'crm_click_batches_set_aside_total'), 0, "$name: nothing set aside");
    is(join(' ', bad_files()), '', "$name: no .bad file in the spool");
    is(join(' ', sort $t->worker_pids), join(' ', sort @workers), "$name: the same two workers run");
    is($t->psql('SELECT sum(clicks) FROM crm.affiliate_link_stats WHERE link_id IN (' . in_list($links) . ')'),
        $want, "$name: affiliate_link_stats count each click once");
}

is($t->metrics->{crm_clicks_dropped_total}, 1, 'crm_clicks_dropped_total at the end: the refused click alone');

$t->done;

#!/usr/bin/perl
# The link cache, judged by its counters (crm_link_loads_total and the
# lookups' results), on what its second design changed:
#
# 1. Keyed link ids.  The check characters are an HMAC under
#    crm_link_id_secret_file: ids with the old unkeyed FNV-1a check (even
#    one the database holds) or an HMAC under another key are refused 404
#    without a load, on /r/ and in the API; ids under the right key that
#    nobody has cost one load each, then hit the negative cache.
# 2. Stale-if-error is bounded: with PostgreSQL stopped, an expired link
#    answers 302 until ttl + stale_if_error after it was stored, then 503.
#    (Early in the file: with little written yet, PostgreSQL stops fast.)
# 3. Per-link invalidation.  With a 1 s TTL, redirects of 100 links reload
#    each link about once a second.  A member looping PATCH of a link's
#    name meanwhile changes nothing of that (no more loads, none
#    discarded); looping PATCH of one link's target adds at most one load
#    per change, and each change shows on the very next redirect.  No 503.
# 4. Negative entries are bounded: in a small zone, a flood of unknown ids
#    evicts older negative entries, never a cached link.
#
# Links are inserted with psql (the API limits how many an account makes);
# the member owns them, so it may PATCH them through the API.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use CrmTest;

# stale_if_error a few seconds: long enough that the window is still open
# once PostgreSQL has stopped (which takes a second or two here)
my $TTL = 1;
my $STALE = 4;

my $t = CrmTest->new;
$t->start_db;
$t->write_config($t->edge_config(ttl => "${TTL}s", stale => "${STALE}s"));
$t->start_nginx;

my ($acc, $TOKEN) = $t->member;
my $OWNER = $acc->{id};
my $BASE = $t->base_url;

my $B62 = join '', '0' .. '9', 'A' .. 'Z', 'a' .. 'z';

my $LOADS = 'crm_link_loads_total';
my $DISCARDED = 'crm_link_loads_discarded_total';
my $FAILED = 'crm_link_load_failures_total';
my $HIT = 'crm_link_cache_lookups_total{result="hit"}';
my $MISS = 'crm_link_cache_lookups_total{result="miss"}';
my $NEG = 'crm_link_cache_lookups_total{result="negative_hit"}';
my $REFUSED = 'crm_link_cache_lookups_total{result="refused"}';
my $R503 = 'crm_redirects_total{status="503"}';

# the counters of the second design: a count the file reads must exist
{
    my $m = $t->metrics;
    ok(defined $m->{$_}, "/metrics has $_") for $DISCARDED, $REFUSED;
}


# --- helpers -------------------------------------------------------------------

# undef when /metrics does not have the counter at all
sub delta {
    my ($before, $after, $name) = @_;
    return undef unless defined $after->{$name};
    return $after->{$name} - ($before->{$name} // 0);
}

sub rand10 { join '', map { substr $B62, int rand 62, 1 } 1 .. 10 }

# two base62 check characters for a value below 62^2
sub check_chars {
    my $h = $_[0] % (62 * 62);
    return substr($B62, int($h / 62), 1) . substr($B62, $h % 62, 1);
}

# an id with the previous design's unkeyed check: FNV-1a (32 bits) of the
# ten characters; never one that passes the keyed check by chance
sub fnv_id {
    while (1) {
        my $ten = rand10();
        my $h = 2166136261;
        for my $b (unpack 'C*', $ten) {
            $h ^= $b;
            $h = ($h * 16777619) & 0xFFFFFFFF;
        }
        my $id = $ten . check_chars($h);
        return $id if $t->make_link_id($ten) ne $id;
    }
}

# an id under another key; again never one valid by chance
sub other_key_id {
    while (1) {
        my $id = $t->make_link_id(undef, 'another key of 32 bytes or more..');
        return $id if $t->make_link_id(substr $id, 0, 10) ne $id;
    }
}

# link rows (and their stats rows) owned by the member, in one statement;
# $links: [[id, target], ...]
sub add_links {
    my ($links) = @_;
    my $values = join ', ', map {
        (my $q = $_->[1]) =~ s/'/''/g;
        "('$_->[0]', '$OWNER', '$q', 'active', 500, 1000, 'USD')"
    } @$links;
    my $ids = join ', ', map { "('$_->[0]')" } @$links;
    $t->psql("INSERT INTO crm.affiliate_links (id, owner_id, target_url,"
        . " status, install_cents, conversion_bps, currency) VALUES $values;"
        . " INSERT INTO crm.affiliate_link_stats (link_id) VALUES $ids");
    return map { $_->[0] } @$links;
}

# n new links under the right key, with targets short enough that each
# entry takes the same 128-byte slot as a negative one
sub new_links {
    my ($n, $tag) = @_;
    my @l = map { [link_id(), "https://shop.example.com/$tag/$_"] } 1 .. $n;
    return add_links(\@l);
}

# each path once, in order, on the harness's connection: {status => count}
sub get_all {
    my %n;
    $n{ $t->get($_)->{status} }++ for @_;
    return \%n;
}

sub new_ua {
    return HTTP::Tiny->new(max_redirect => 0, keep_alive => 1, timeout => 10,
        agent => 'crm-test-340/1.0');
}

# $cb in a child process (its own connections, never the harness's); the
# hash it returns comes back through collect()
sub spawn {
    my ($cb) = @_;
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $rd;
        $SIG{ALRM} = 'DEFAULT';
        alarm 60;
        delete $t->{ua};
        my $res = eval { $cb->() } // { error => "died: $@" };
        print $wr json_encode($res);
        close $wr;
        POSIX::_exit(0);
    }
    close $wr;
    return [$pid, $rd];
}

sub collect {
    my ($pid, $rd) = @{ $_[0] };
    my $out = do { local $/; <$rd> };
    close $rd;
    waitpid $pid, 0;
    return (eval { json_decode($out) } // { error => "child $pid: no result ($?)" });
}

# adds the status counts of several children's results
sub sum_counts {
    my %n;
    for my $r (@_) {
        $n{$_} += $r->{n}{$_} for keys %{ $r->{n} || {} };
    }
    return \%n;
}

sub oddities { return grep { defined } map { ($_->{error}, @{ $_->{odd} || [] }) } @_ }

# GETs the paths, round and round from a random start, until $until;
# counts the statuses and keeps a few answers that are not $want
sub get_loop {
    my ($paths, $until, $want) = @_;
    my $ua = new_ua();
    my (%n, @odd);
    my $i = int rand @$paths;
    while (time < $until) {
        my $p = $paths->[$i++ % @$paths];
        my $r = $ua->get("$BASE$p");
        $n{ $r->{status} }++;
        push @odd, "GET $p -> $r->{status} " . substr($r->{content} // '', 0, 200)
            if $r->{status} != $want && @odd < 5;
    }
    return { n => \%n, odd => \@odd };
}

# GETs each path once; returns the status counts
sub get_list {
    my ($paths) = @_;
    my $ua = new_ua();
    my %n;
    $n{ $ua->get("$BASE$_")->{status} }++ for @$paths;
    return { n => \%n };
}

# One keep-alive connection that sends each request in a single write.
# HTTP::Tiny writes a body apart from its header, and Nagle's algorithm
# waiting for the server's delayed ACK (40 ms) would hold a PATCH loop to
# 20 a second.  Returns {status, headers, content}; reconnects when nginx
# closes the connection (keepalive_requests).
sub raw_request {
    my ($conn, $method, $path, $json) = @_;
    my $body = defined $json ? json_encode($json) : '';
    my $req = "$method $path HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        . "Authorization: Bearer $TOKEN\r\n"
        . (length $body ? "Content-Type: application/json\r\n"
            . 'Content-Length: ' . length($body) . "\r\n" : '')
        . "\r\n$body";
    $$conn //= IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $t->port, Proto => 'tcp', Timeout => 5)
        or return { status => 0, headers => {}, content => "connect: $!" };
    my ($raw, $deadline) = ('', time + 10);
    local $SIG{PIPE} = 'IGNORE';
    my $wrote = syswrite($$conn, $req);
    if (defined $wrote && $wrote == length $req) {
        my $sel = IO::Select->new($$conn);
        until (CrmTest::_complete_response($raw) || time > $deadline) {
            next unless $sel->can_read(0.5);
            sysread($$conn, my $buf, 65536) or last;
            $raw .= $buf;
        }
    }
    my $res = CrmTest::_parse_response($raw);
    undef $$conn if !$res->{complete} || ($res->{headers}{connection} // '') =~ /close/i;
    return $res;
}

# PATCHes one field of a link, over and over until $until.  For the
# target, every 200 is followed by a redirect of the link, which must go
# to the target just set: the change shows at once on this host.
sub patch_loop {
    my ($id, $field, $until) = @_;
    my $conn;
    my (%n, @odd);
    my ($k, $checked, $stale) = (0, 0, 0);
    while (time < $until) {
        $k++;
        my $value = $field eq 'name' ? "name $$ $k"
                                     : "https://shop.example.com/t/$$/$k";
        my $r = raw_request(\$conn, 'PATCH', "/affiliate/links/$id", { $field => $value });
        $n{ $r->{status} }++;
        if ($r->{status} != 200) {
            push @odd, "PATCH $field -> $r->{status} $r->{content}" if @odd < 5;
            next;
        }
        next unless $field eq 'target_url';
        my $g = raw_request(\$conn, 'GET', "/r/$id");
        $checked++;
        next if $g->{status} == 302
            && index($g->{headers}{location} // '', "$value?ref=$id&") == 0;
        $stale++;
        push @odd, "after PATCH to $value: $g->{status} "
            . ($g->{headers}{location} // $g->{content}) if @odd < 5;
    }
    return { n => \%n, odd => \@odd, checked => $checked, stale => $stale };
}

# sleeps until the next half second: expiry is in whole seconds (an entry
# stored during second S expires when S + ttl begins), so runs of the same
# length that start at x.5 cross the same number of expiries
sub align_half_second {
    my $now = time;
    my $next = int($now) + 0.5;
    $next += 1 if $next - $now < 0.05;
    sleep($next - $now);
}


# --- 1. keyed link ids ---------------------------------------------------------

{
    # a link the database holds under an id of the old design: the check
    # refuses it before any load, so it no longer redirects
    my $fnv_row = fnv_id();
    add_links([[$fnv_row, 'https://shop.example.com/old-design']]);
    my ($good) = new_links(1, 'keyed');

    my @fnv = map { fnv_id() } 1 .. 200;
    my @other = map { other_key_id() } 1 .. 200;

    my $m0 = $t->metrics;
    my $n = get_all(map { ("/r/$_") x 2 } @fnv, $fnv_row);
    is_deeply($n, { 404 => 402 },
        'ids with the old FNV-1a check (200 unknown, 1 in the database), twice each: all 404')
        or diag(explain($n));
    my $m1 = $t->metrics;
    is(delta($m0, $m1, $LOADS), 0, 'FNV-1a ids: no link load');
    is(delta($m0, $m1, $REFUSED), 402, 'FNV-1a ids: each request counted as a refused lookup');
    is(delta($m0, $m1, $MISS), 0, 'FNV-1a ids: none counted as a miss');

    $n = get_all(map { ("/r/$_") x 2 } @other);
    is_deeply($n, { 404 => 400 }, 'ids with an HMAC under another key, twice each: all 404')
        or diag(explain($n));
    my $m2 = $t->metrics;
    is(delta($m1, $m2, $LOADS), 0, 'another key: no link load');
    is(delta($m1, $m2, $REFUSED), 400, 'another key: each request counted as a refused lookup');

    # the API checks the same way: the member's own link under the old id
    # is not found, the one under the keyed id is
    is_problem($t->get("/affiliate/links/$fnv_row", token => $TOKEN), 404,
        'GET /affiliate/links/{FNV-1a id} of the member\'s own link: 404');
    is($t->get("/affiliate/links/$good", token => $TOKEN)->{status}, 200,
        'GET /affiliate/links/{keyed id} of the member\'s own link: 200');
    is($t->get("/r/$good")->{status}, 302, 'the keyed link redirects');

    # valid ids that nobody has: one load each, then the negative cache
    my @unknown = map { link_id() } 1 .. 100;
    my $m3 = $t->metrics;
    $n = get_all(map { ("/r/$_") x 3 } @unknown);
    is_deeply($n, { 404 => 300 }, '100 unknown ids under the right key, 3 times each: all 404')
        or diag(explain($n));
    my $m4 = $t->metrics;
    is(delta($m3, $m4, $LOADS), 100, 'unknown keyed ids: exactly one load each');
    is(delta($m3, $m4, $NEG), 200, 'unknown keyed ids: then negative hits');
    is(delta($m3, $m4, $REFUSED), 0, 'unknown keyed ids: none refused');
}


# --- 2. stale-if-error is bounded ------------------------------------------------

{
    my ($id) = new_links(1, 'stale');
    my $m0 = $t->metrics;
    my $r = $t->get("/r/$id");
    my $stored = time;    # the load that just answered stored the entry
    is($r->{status}, 302, 'stale: a link, loaded and cached');
    is(delta($m0, $t->metrics, $LOADS), 1, 'stale: ... by one load');

    $t->stop_db;
    my $down = time - $stored;
    note(sprintf 'PostgreSQL stopped %.1f s after the link was stored', $down);
    ok($down < $TTL + $STALE - 1, 'stale: PostgreSQL stopped well within ttl + stale_if_error')
        or diag('too slow to stop: the checks below cannot see the stale window');

    # every 0.1 s until 3 s past the bound: [seconds since stored, answer],
    # the time taken when the request left for a 302 and when the answer
    # came for the others, so that both bounds below err on the safe side
    my @seen;
    my $end = $stored + $TTL + $STALE + 3;
    while (time < $end) {
        my $sent = time;
        my $res = $t->get("/r/$id");
        push @seen, [($res->{status} == 302 ? $sent : time) - $stored, $res];
        sleep 0.1;
    }
    my @s302 = grep { $_->[1]{status} == 302 } @seen;
    my ($first503) = grep { $_->[1]{status} == 503 } @seen;
    my @other = grep { $_->[1]{status} != 302 && $_->[1]{status} != 503 } @seen;
    is(scalar(@other), 0, 'stale: only 302 and 503 answers')
        or diag(join "\n", map { sprintf '%.1f s: %s %s', $_->[0], $_->[1]{status},
            $_->[1]{content} } @other[0 .. ($#other < 4 ? $#other : 4)]);

    # past the TTL, with the database gone, only the stale entry can answer
    # (an entry stored during second S expires when S + ttl begins)
    ok(@s302 && $s302[-1][0] >= $TTL + 0.5,
        sprintf('stale: still 302 %.1f s after it was stored (ttl %d s), from the expired entry',
            @s302 ? $s302[-1][0] : 0, $TTL));
    ok(delta($m0, $t->metrics, $FAILED) > 0, 'stale: the reloads meanwhile failed');

    ok($first503, 'stale: then 503')
        or diag('no 503 within ' . ($TTL + $STALE + 3) . ' s of the store');
    if ($first503) {
        my ($at, $res) = @$first503;
        # expiry is in whole seconds: the bound is reached within the
        # second before ttl + stale_if_error
        ok($at >= $TTL + $STALE - 1.2 && $at <= $TTL + $STALE + 1.5,
            sprintf('stale: the first 503 came %.1f s after the store'
                . ' (ttl + stale_if_error = %d s)',
                $at, $TTL + $STALE));
        is_problem($res, 503, 'stale: the 503 is a problem+json');
        like($res->{headers}{'retry-after'} // '', qr/^\d+$/, 'stale: the 503 has Retry-After');
        my @late302 = grep { $_->[0] > $at } @s302;
        is(scalar(@late302), 0,
            'stale: no 302 after the first 503 (the entry is not used for ever)')
            or diag(sprintf '302 at %.1f s', $late302[0][0]);
    }

    # back: on new connections, so that both workers have reconnected
    # before the loads below count
    $t->start_db;
    ok(wait_until(15, sub {
            !grep { $t->get("/r/$id", ua => new_ua())->{status} != 302 } 1 .. 8 }, 0.2),
        'stale: PostgreSQL back, the link redirects again');
}


# --- 3. per-link invalidation --------------------------------------------------

{
    my $N = 100;
    my $SECONDS = 4;
    my $CLIENTS = 4;
    my @ids = new_links($N, 'inv');
    my @paths = map { "/r/$_" } @ids;
    # the member renames three of them (one loop each: PATCHes of one row
    # would wait for each other's lock) and retargets a fourth; the
    # redirects request all of them
    my @renamed = @ids[0 .. 2];
    my $retargeted = $ids[3];

    # $CLIENTS redirect loops over the links for $SECONDS, with the given
    # PATCH loops ([id, field], ...) beside them
    my $run = sub {
        my (@patches) = @_;
        my $m0 = $t->metrics;
        align_half_second();
        my $until = time + $SECONDS;
        my @kids = map { spawn(sub { get_loop(\@paths, $until, 302) }) } 1 .. $CLIENTS;
        my @pk = map { my ($id, $f) = @$_; spawn(sub { patch_loop($id, $f, $until) }) } @patches;
        my @r = map { collect($_) } @kids;
        my @p = map { collect($_) } @pk;
        my $m1 = $t->metrics;
        my %run = (
            redirects => sum_counts(@r),
            patches   => sum_counts(@p),
            checked   => 0, stale => 0,
            odd       => [oddities(@r, @p)],
            map { $_ => delta($m0, $m1, $_) } $LOADS, $DISCARDED, $R503, $HIT, $MISS,
        );
        for (@p) { $run{checked} += $_->{checked} // 0; $run{stale} += $_->{stale} // 0 }
        $run{patched} = $run{patches}{200} // 0;
        note(sprintf '%s: %s redirects, %d PATCHes (200), %s loads,'
                . ' %s discarded, %s hits, %s misses',
            @patches ? join(' + ', map { "PATCH $_->[1]" } @patches) : 'no PATCH',
            join(' ', map { "$_:$run{redirects}{$_}" } sort keys %{ $run{redirects} }),
            $run{patched}, map { $_ // 'no counter' } @run{$LOADS, $DISCARDED, $HIT, $MISS});
        return \%run;
    };

    # no 503, and every answer a 302, whatever runs beside
    my $all_302 = sub {
        my ($run, $what) = @_;
        my @st = keys %{ $run->{redirects} };
        ok(@st == 1 && $st[0] == 302, "$what: every redirect a 302 (no 503)")
            or diag(explain($run->{redirects}), join("\n", @{ $run->{odd} }));
        is($run->{$R503}, 0, "$what: crm_redirects_total{status=\"503\"} did not grow");
    };

    # --- without PATCH: the loads that the TTL alone explains.  Starting at
    # x.5, a run loads each link at once and again after each of the
    # $SECONDS expiries it crosses; a client the machine stalls past an
    # expiry makes fewer, so the PATCH runs are held to the larger of the
    # two
    my $base = $run->();
    my $expected = $N * ($SECONDS + 1) / $TTL;
    ok($base->{$LOADS} >= $N * ($SECONDS - 1) / $TTL,
        "without PATCH: the 1 s TTL makes the links reload"
        . " ($base->{$LOADS} loads, $expected expected)");
    $all_302->($base, 'without PATCH');
    my $without = $base->{$LOADS} > $expected ? $base->{$LOADS} : $expected;

    # --- a member renaming its links as fast as it can
    my $name = $run->(map { [$_, 'name'] } @renamed);
    my @pst = keys %{ $name->{patches} };
    ok(@pst == 1 && $pst[0] == 200 && $name->{patched} >= 50 * $SECONDS,
        "the name loops ran: $name->{patched} PATCHes of a name, all 200")
        or diag(explain($name->{patches}), join("\n", @{ $name->{odd} }));
    cmp_ok($name->{$LOADS}, '<=', int(1.3 * $without),
        "renames: loads stay those of the TTL ($name->{$LOADS} against $without without PATCH)");
    is($name->{$DISCARDED}, 0, 'renames: no link load discarded');
    $all_302->($name, 'renames');

    # --- and retargeting one link over and over: that link's loads alone
    my $target = $run->([$retargeted, 'target_url']);
    @pst = keys %{ $target->{patches} };
    ok(@pst == 1 && $pst[0] == 200 && $target->{patched} >= 25 * $SECONDS,
        "the target loop ran: $target->{patched} PATCHes of a target, all 200")
        or diag(explain($target->{patches}), join("\n", @{ $target->{odd} }));
    cmp_ok($target->{$LOADS}, '<=', int(1.3 * $without) + $target->{patched},
        "retargets: loads stay those of the TTL plus one per change"
        . " ($target->{$LOADS} against $without + $target->{patched})");
    ok(defined $target->{$DISCARDED} && $target->{$DISCARDED} <= $target->{patched},
        'retargets: at most one discarded load per change (the changed link\'s own): '
        . ($target->{$DISCARDED} // 'no counter'));
    is($target->{checked}, $target->{patched}, 'every retarget was followed by a redirect');
    is($target->{stale}, 0, 'each new target showed on the very next redirect')
        or diag(join "\n", @{ $target->{odd} });
    $all_302->($target, 'retargets');
}


# --- 4. negative entries are bounded -------------------------------------------

# A small zone (64 KB: a few hundred 128-byte entries) with a tenth of it
# for negative entries, and TTLs longer than the rest of the file, so that
# only eviction can make an entry go.
ok($t->reconfigure($t->edge_config(cache => '64k', negative_share => 10,
        ttl => '10m', negative_ttl => '10m', stale => '10m')),
    'reload with a 64 KB link cache, negative_share=10%');

{
    my $M = 200;
    my $FLOOD = 3000;
    my @real = map { "/r/$_" } new_links($M, 'neg');

    my $m0 = $t->metrics;
    my $n = get_all(@real);
    is_deeply($n, { 302 => $M }, "$M links: all 302") or diag(explain($n));
    my $m1 = $t->metrics;
    is(delta($m0, $m1, $LOADS), $M, "$M links: one load each");
    $n = get_all(@real);
    my $m2 = $t->metrics;
    is(delta($m1, $m2, $LOADS), 0, "$M links: all cached (a second pass causes no load)");

    # a flood of distinct unknown ids under the right key, from 4 clients
    my @flood = map { '/r/' . link_id() } 1 .. $FLOOD;
    my @kids = map {
        my $k = $_;
        spawn(sub { get_list([@flood[grep { $_ % 4 == $k } 0 .. $#flood]]) })
    } 0 .. 3;
    $n = sum_counts(map { collect($_) } @kids);
    is_deeply($n, { 404 => $FLOOD }, "$FLOOD unknown keyed ids: all 404") or diag(explain($n));
    my $m3 = $t->metrics;
    is(delta($m2, $m3, $LOADS), $FLOOD, "$FLOOD unknown keyed ids: one load each");
    is(delta($m2, $m3, $R503), 0, "$FLOOD unknown keyed ids: no 503");

    # the links survived the flood
    $n = get_all(@real);
    is_deeply($n, { 302 => $M }, "after the flood, the $M links: all 302") or diag(explain($n));
    my $m4 = $t->metrics;
    is(delta($m3, $m4, $LOADS), 0, "after the flood, the $M links: still all cached (no load)");
    is(delta($m3, $m4, $HIT), $M, "... $M cache hits");

    # negative entries still work in the small zone...
    my @fresh = map { '/r/' . link_id() } 1 .. 20;
    get_all(@fresh);
    my $m5 = $t->metrics;
    $n = get_all(@fresh);
    my $m6 = $t->metrics;
    is(delta($m5, $m6, $LOADS), 0, '20 new unknown ids, again: no load');
    is(delta($m5, $m6, $NEG), 20, '... negative hits');

    # ...but the flood's first ones are gone: the bound is real
    my @early = @flood[0 .. 49];
    $n = get_all(@early);
    is_deeply($n, { 404 => 50 }, 'the flood\'s first 50 ids again: 404') or diag(explain($n));
    my $m7 = $t->metrics;
    is(delta($m6, $m7, $LOADS), 50, '... each loaded again (their negative entries were evicted)');
}

$t->done;

#!/usr/bin/perl
# The affiliate redirect, GET /r/{id}: the Location it builds, the click id,
# 404 for malformed ids without a database lookup and for unknown ids
# through the negative cache, 410 for a disabled link, 405 for other
# methods (with the request body discarded), HEAD and bot flags, the shop,
# referer and User-Agent recorded with each click, the cache's TTL, and
# exactly one click row (and one count in the link's stats) per 302.
#
# Links are inserted with psql: the link API is not used here.

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

my $t = CrmTest->new;
$t->start_db;
# a short positive TTL for the expiry test below; negative entries keep
# the default 60 s, longer than this file's negative-cache checks
$t->write_config($t->edge_config(ttl => '3s'));
$t->start_nginx;

my ($acc) = $t->member;
my $OWNER = $acc->{id};
ok(is_uuid($OWNER), 'a member owns the links');

my $B62 = join '', '0' .. '9', 'A' .. 'Z', 'a' .. 'z';
my $CLICK_RE = qr/[0-9A-Za-z]{26}/;

# a link row and its stats row, as the link API would create them
sub add_link {
    my ($target, %o) = @_;
    my $id = $o{id} // link_id();
    my $status = $o{status} // 'active';
    (my $q = $target) =~ s/'/''/g;
    $t->psql("INSERT INTO crm.affiliate_links (id, owner_id, target_url,"
        . " status, install_cents, conversion_bps, currency) VALUES ('$id',"
        . " '$OWNER', '$q', '$status', 500, 1000, 'USD');"
        . " INSERT INTO crm.affiliate_link_stats (link_id) VALUES ('$id')");
    return $id;
}

sub b62_value {
    my $n = 0;
    $n = $n * 62 + index($B62, $_) for split //, $_[0];
    return $n;
}

sub click_id_of {
    my ($r) = @_;
    return ($r->{headers}{location} // '') =~ /[?&]click_id=($CLICK_RE)(?:#|\z)/
        ? $1 : undef;
}

# the click's row as a hash, once the flush has written it (undef if it
# does not arrive within 10 s)
sub click_row {
    my ($cid) = @_;
    my $row;
    wait_until(10, sub {
        my $j = $t->psql("SELECT row_to_json(c) FROM crm.clicks c WHERE click_id = '$cid'");
        $row = json_decode($j) if length $j;
        return $row;
    }, 0.05);
    return $row;
}

# waits until every click queued so far has been written (the database
# is up throughout this file)
sub settle {
    return wait_until(10, sub {
        my $m = $t->metrics;
        $m->{crm_clicks_queued_total} == $m->{crm_clicks_flushed_total}
            && $m->{crm_click_queue_bytes} == 0;
    }, 0.05);
}

sub delta {
    my ($before, $after, $name) = @_;
    return ($after->{$name} // 0) - ($before->{$name} // 0);
}

my $LOADS = 'crm_link_loads_total';
my $MISS = 'crm_link_cache_lookups_total{result="miss"}';
my $NEG = 'crm_link_cache_lookups_total{result="negative_hit"}';
my $HIT = 'crm_link_cache_lookups_total{result="hit"}';
my $R302 = 'crm_redirects_total{status="302"}';
my $R404 = 'crm_redirects_total{status="404"}';
my $R410 = 'crm_redirects_total{status="410"}';

# Forked clients, each with its own keep-alive HTTP::Tiny that never
# follows a redirect.  $lists: one list of requests per client, each
# "PATH" (a GET) or "HEAD PATH".  Returns ({status => count}, [click ids
# of the 302s], [samples of other answers]).
sub parallel {
    my ($lists) = @_;
    my $url = $t->base_url;
    my @kids;
    for my $list (@$lists) {
        pipe(my $rd, my $wr) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $rd;
            $SIG{ALRM} = 'DEFAULT';
            alarm 120;
            my $ua = HTTP::Tiny->new(max_redirect => 0, keep_alive => 1,
                timeout => 10, agent => 'crm-test-load/1.0');
            my (%n, @cids, @samples);
            for my $req (@$list) {
                my ($method, $path) = $req =~ /^(HEAD) (.*)$/ ? ($1, $2) : ('GET', $req);
                my $r = $ua->request($method, "$url$path");
                $n{ $r->{status} }++;
                if ($r->{status} == 302) {
                    my ($c) = ($r->{headers}{location} // '') =~ /click_id=($CLICK_RE)/;
                    push @cids, $c // 'none';
                } elsif ($r->{status} != 404 && @samples < 5) {
                    (my $s = "$method $path -> $r->{status} " . substr($r->{content} // '', 0, 200)) =~ s/\s+/ /g;
                    push @samples, $s;
                }
            }
            print $wr "n $_ $n{$_}\n" for sort keys %n;
            print $wr "c $_\n" for @cids;
            print $wr "s $_\n" for @samples;
            close $wr;
            POSIX::_exit(0);
        }
        close $wr;
        push @kids, [$pid, $rd];
    }
    my (%n, @cids, @samples);
    for my $k (@kids) {
        my ($pid, $rd) = @$k;
        while (my $line = <$rd>) {
            chomp $line;
            if ($line =~ /^n (\d+) (\d+)$/) { $n{$1} += $2 }
            elsif ($line =~ /^c (.*)$/) { push @cids, $1 }
            elsif ($line =~ /^s (.*)$/) { push @samples, $1 }
        }
        close $rd;
        waitpid $pid, 0;
        push @samples, "client $pid exited with $?" if $?;
    }
    return (\%n, \@cids, \@samples);
}


# --- the Location ------------------------------------------------------------

# target => [what precedes our parameters, what follows them]
my @targets = (
    ['https://shop.example.com/land'              => 'https://shop.example.com/land?',              ''],
    ['https://shop.example.com/land?a=1'          => 'https://shop.example.com/land?a=1&',          ''],
    ['https://shop.example.com/land#top'          => 'https://shop.example.com/land?',              '#top'],
    ['https://shop.example.com/land?a=1&b=x%20y#top' => 'https://shop.example.com/land?a=1&b=x%20y&', '#top'],
    ['https://shop.example.com'                   => 'https://shop.example.com?',                   ''],
    ['https://shop.example.com/p?'                => 'https://shop.example.com/p?',                 ''],
    ['https://shop.example.com/p#'                => 'https://shop.example.com/p?',                 '#'],
    ['http://127.0.0.1:8080/x?a=1&'               => 'http://127.0.0.1:8080/x?a=1&',                ''],
    # ours replace any ref= and click_id= already there, and empty
    # parameters go; a look-alike name stays, and so does a "?ref=" in
    # the fragment, which is not the query
    ['https://shop.example.com/p?ref=evil&a=1&click_id=forged&&b=2'
        => 'https://shop.example.com/p?a=1&b=2&', ''],
    ['https://shop.example.com/p?ref&click_id=&refx=1&xref=2&REF=3&ref=a#f?ref=1'
        => 'https://shop.example.com/p?refx=1&xref=2&REF=3&', '#f?ref=1'],
    ['https://shop.example.com/p?q=%26ref%3D1'    => 'https://shop.example.com/p?q=%26ref%3D1&',    ''],
);

my %seen_click;
for my $c (@targets) {
    my ($target, $pre, $post) = @$c;
    my $id = add_link($target);
    my $t0 = time;
    my $r = $t->get("/r/$id");
    is($r->{status}, 302, "$target: 302");
    my $loc = $r->{headers}{location} // '';
    like($loc, qr/^\Q${pre}ref=$id&click_id=\E($CLICK_RE)\Q$post\E\z/, "$target: Location $loc");
    my $cid = click_id_of($r) // '';
    is(substr($cid, 0, 12), $id, "$target: the click id starts with the link id");
    my $ts = b62_value(substr($cid, 12, 6));
    ok($ts >= int($t0) - 2 && $ts <= time + 2, "$target: the click id holds the time of the click ($ts)");
    ok(!$seen_click{$cid}++, "$target: a click id not seen before");
    is($r->{headers}{'cache-control'}, 'private, no-store', "$target: Cache-Control: private, no-store");
    is($r->{content}, '', "$target: empty body");
}

# the query of the request changes nothing about where the client goes
{
    my $id = add_link('https://shop.example.com/fixed?x=1');
    my $r = $t->get("/r/$id?ref=evil&click_id=AAAAAAAAAAAAAAAAAAAAAAAAAA&url=https://evil.example/&target_url=https://evil.example/");
    is($r->{status}, 302, 'a request query: 302');
    like($r->{headers}{location} // '', qr{^\Qhttps://shop.example.com/fixed?x=1&ref=$id&click_id=$id\E[0-9A-Za-z]{14}\z},
        'a request query: the Location is the stored target with our ids only');

    my @ids = map { click_id_of($t->get("/r/$id")) // '' } 1 .. 50;
    my %u = map { $_ => 1 } @ids;
    is(scalar(keys %u), 50, '50 redirects of one link: 50 distinct click ids');
    is(scalar(grep { /^\Q$id\E[0-9A-Za-z]{14}\z/ } @ids), 50, '... each 26 base62 characters starting with the link id');
}


# --- 404: malformed and unknown ids -----------------------------------------

my $good = add_link('https://shop.example.com/good');
(my $bad_check = $good) =~ s/(.)\z/$1 eq 'a' ? 'b' : 'a'/e;
my $swapped = substr($good, 0, 10) . substr($good, 11, 1) . substr($good, 10, 1);
my @malformed = (
    substr($good, 0, 11),             # too short
    "${good}x",                       # too long
    $bad_check,                       # wrong check character
    substr($good, 0, 9) . '-' . substr($good, 10),   # outside base62
    substr($good, 0, 9) . '_' . substr($good, 10),
    '%C3%A9' . substr($good, 2),      # non-ASCII
    '',                               # /r/ alone
    "$good/",                         # a trailing slash: the id is empty
    "$good;x",
    ('A' x 12),
);
push @malformed, $swapped;
# none of the 12-character ones may pass the check by chance
@malformed = grep { length($_) != 12 || link_id(substr($_, 0, 10)) ne $_ } @malformed;

my $m0 = $t->metrics;
for my $bad (@malformed) {
    is_problem($t->get("/r/$bad"), 404, "malformed id '/r/$bad': 404");
}
# nginx resolves dot segments before any location matches: these are not
# redirects at all, and still 404
for my $path ('/r/../x', "/r/../$good", '/r/%2e%2e/x', "/r/..%2F$good") {
    is($t->get($path)->{status}, 404, "path traversal '$path': 404");
}
# and refuses to go above the root
is($t->get("/r/%2E%2E/%2E%2E/$good")->{status}, 400, "path traversal above the root: 400");
my $m1 = $t->metrics;
is(delta($m0, $m1, $LOADS), 0, 'malformed ids: no link load');
is(delta($m0, $m1, $MISS), 0, 'malformed ids: not even a cache lookup');
is(delta($m0, $m1, $R404), scalar(@malformed), 'malformed ids: each counted as a 404 redirect');
is(delta($m0, $m1, $R302), 0, 'malformed ids: no 302');

# a well-formed id nobody has: one load, then the negative cache
my $unknown = link_id();
is_problem($t->get("/r/$unknown"), 404, 'an unknown well-formed id: 404');
my $m2 = $t->metrics;
is(delta($m1, $m2, $LOADS), 1, 'an unknown well-formed id: one load');
is_problem($t->get("/r/$unknown"), 404, 'the same unknown id again: 404') for 1 .. 3;
my $m3 = $t->metrics;
is(delta($m2, $m3, $LOADS), 0, 'the same unknown id again: no load');
is(delta($m2, $m3, $NEG), 3, 'the same unknown id again: negative cache hits');


# --- 410, 405 ----------------------------------------------------------------

my $disabled = add_link('https://shop.example.com/off', status => 'disabled');
my $r = $t->get("/r/$disabled");
is_problem($r, 410, 'a disabled link: 410');
ok(!defined $r->{headers}{location}, 'a disabled link: no Location');
is_problem($t->get("/r/$disabled"), 410, 'a disabled link, from the cache: 410');
is($t->request('HEAD', "/r/$disabled")->{status}, 410, 'a disabled link, HEAD: 410');

# each on its own connection: what a refused body does to the next
# request on the same connection is checked separately below
my $live = add_link('https://shop.example.com/live');
for my $method (qw(POST PUT DELETE PATCH OPTIONS)) {
    my $res = $t->request($method, "/r/$live", content => '{"a":1}',
        headers => { 'Content-Type' => 'application/json' },
        ua => HTTP::Tiny->new(max_redirect => 0, keep_alive => 0));
    is_problem($res, 405, "$method /r/{id}: 405");
    is($res->{headers}{allow}, 'GET, HEAD', "$method /r/{id}: Allow: GET, HEAD");
    ok(!defined $res->{headers}{location}, "$method /r/{id}: no Location");
}
is_problem($t->request('POST', "/r/$unknown", ua => HTTP::Tiny->new(max_redirect => 0, keep_alive => 0)),
    405, 'POST to an unknown id: 405 too');

# The body of a refused POST is the client's, not a request: after the
# 405 the connection must carry on with the client's next request.  Here
# the body looks like a request for /baseline; only the 405 and then the
# 404 of the real second request may come back.
{
    my $body = "GET /baseline HTTP/1.1\r\nHost: smuggled\r\n\r\n";
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port,
        Proto => 'tcp', Timeout => 5) or die "connect: $!";
    print $s "POST /r/$live HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        . "Content-Length: " . length($body) . "\r\n\r\n$body"
        . "GET /r/$unknown HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    my $all = '';
    my $deadline = time + 5;
    my $sel = IO::Select->new($s);
    while (time < $deadline) {
        next unless $sel->can_read(0.2);
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $all .= $buf;
    }
    close $s;
    # a status line may follow the previous body on the same line
    my @statuses = $all =~ m{HTTP/1\.1 (\d{3}) }g;
    is_deeply(\@statuses, [405, 404],
        'POST /r/{id} with a body, then a GET on the same connection: 405, then 404 (the body is discarded, not run as a request)')
        or diag("responses: @statuses\n" . substr($all, 0, 1500));
}


# --- what a click records ----------------------------------------------------

my $rec = add_link('https://shop.example.com/rec');

$r = $t->request('HEAD', "/r/$rec");
is($r->{status}, 302, 'HEAD: 302');
like($r->{headers}{location} // '', qr/\Q$rec&click_id=$rec\E/, 'HEAD: with a Location');
my $row = click_row(click_id_of($r) // 'none');
ok($row, 'HEAD: the click is recorded');
ok($row && $row->{is_head}, 'HEAD: is_head true');
ok($row && !$row->{is_bot}, 'HEAD: is_bot false');

my $browser = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
$r = $t->get("/r/$rec", headers => { 'User-Agent' => $browser, Referer => 'https://blog.example/post?id=7' });
$row = click_row(click_id_of($r) // 'none');
ok($row, 'a browser: the click is recorded');
is($row->{link_id}, $rec, 'a browser: link_id');
ok(!$row->{is_head}, 'a browser: is_head false');
ok(!$row->{is_bot}, 'a browser: is_bot false');
is($row->{user_agent}, $browser, 'a browser: the User-Agent as sent');
is($row->{referer}, 'https://blog.example/post?id=7', 'a browser: the Referer as sent');
is($row->{ip}, '127.0.0.1', 'a browser: the client address');
ok(!defined $row->{shop_domain}, 'no shop argument: shop_domain NULL');
like($row->{clicked_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/, 'clicked_at is a time');

for my $bot ('Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
             'curl/8.5.0', 'facebookexternalhit/1.1') {
    $r = $t->get("/r/$rec", headers => { 'User-Agent' => $bot });
    is($r->{status}, 302, "bot '$bot': still 302");
    $row = click_row(click_id_of($r) // 'none');
    ok($row && $row->{is_bot}, "bot '$bot': is_bot true");
}

# no User-Agent or Referer at all: empty strings (the columns are NOT NULL)
{
    my $raw = $t->raw("GET /r/$rec HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    is($raw->{status}, 302, 'no User-Agent, no Referer: 302');
    $row = click_row(click_id_of($raw) // 'none');
    ok($row && $row->{user_agent} eq '' && $row->{referer} eq '',
        'no User-Agent, no Referer: both stored empty');
}

# what COPY would misread is stored as sent (a backslash) or made
# printable (a tab, non-ASCII bytes, DEL); overlong values are cut
{
    my $raw = $t->raw("GET /r/$rec HTTP/1.1\r\nHost: x\r\n"
        . "User-Agent: a\tb \xc3\xa9 c\\d\\N\x7f\r\n"
        . "Referer: http://r.example/\xff\\t\r\nConnection: close\r\n\r\n");
    is($raw->{status}, 302, 'odd bytes in User-Agent and Referer: 302');
    $row = click_row(click_id_of($raw) // 'none');
    is($row && $row->{user_agent}, "a?b ?? c\\d\\N?", 'User-Agent: backslashes kept, a tab and non-ASCII bytes become "?"');
    is($row && $row->{referer}, "http://r.example/?\\t", 'Referer: the same');

    my $long_ua = 'L' x 2000;
    my $long_ref = 'https://r.example/' . ('p' x 3000);
    $r = $t->get("/r/$rec", headers => { 'User-Agent' => $long_ua, Referer => $long_ref });
    is($r->{status}, 302, 'a 2000-byte User-Agent and a 3000-byte Referer: 302');
    $row = click_row(click_id_of($r) // 'none');
    is(length($row ? $row->{user_agent} : ''), 512, 'the User-Agent is cut to 512 bytes');
    is(length($row ? $row->{referer} : ''), 1024, 'the Referer is cut to 1024 bytes');
    is($row && $row->{referer}, substr($long_ref, 0, 1024), '... keeping its start');
}

# shop=: normalised to a lower-case domain, else NULL
my @shops = (
    ['shop=Foo.MyShopify.com'                               => 'foo.myshopify.com'],
    ['shop=foo.myshopify.com.'                              => 'foo.myshopify.com'],
    ['shop=https%3A%2F%2FBar.MyShopify.com%2Fadmin%3Fx%3D1' => 'bar.myshopify.com'],
    ['a=1&shop=BAZ.example.COM&b=2'                         => 'baz.example.com'],
    ['shop=first.example.com&shop=second.example.com'       => 'first.example.com'],
    ['shop=not%20a%20domain'                                => undef],
    ['shop='                                                => undef],
    ['shop=foo..com'                                        => undef],
    ['shop=127.0.0.1'                                       => undef],
    ['shop=%E2%98%83.com'                                   => undef],
    ['shop=' . ('a' x 300) . '.com'                         => undef],
    ['shop=%27%3B%20DROP%20TABLE%20crm.clicks%3B--'         => undef],
    ['shopx=foo.example.com'                                => undef],
);
for my $s (@shops) {
    my ($q, $want) = @$s;
    $r = $t->get("/r/$rec?$q");
    is($r->{status}, 302, "?$q: 302");
    like($r->{headers}{location} // '', qr{^\Qhttps://shop.example.com/rec?ref=$rec&click_id=\E$CLICK_RE\z},
        "?$q: the Location does not carry the request's query");
    $row = click_row(click_id_of($r) // 'none');
    ok($row, "?$q: recorded");
    is($row && $row->{shop_domain}, $want, "?$q: shop_domain " . ($want // 'NULL'));
}


# --- random ids cost no lookup ------------------------------------------------

# 10,000 strings of 12 base62 characters, not made by link_id(): about 1
# in 3,844 passes the check characters by chance, and only those may
# cause a load
my @random = map { join '', map { substr $B62, int rand 62, 1 } 1 .. 12 } 1 .. 10_000;
my %passing = map { $_ => 1 } grep { link_id(substr($_, 0, 10)) eq $_ } @random;
note(scalar(keys %passing) . ' of the random ids pass the check by chance');

$m0 = $t->metrics;
my $t0 = time;
my @lists = map { my $k = $_; [map { "/r/$random[$_]" } grep { $_ % 4 == $k } 0 .. $#random] } 0 .. 3;
my ($n, undef, $samples) = parallel(\@lists);
note(sprintf '10,000 random ids in %.1f s', time - $t0);
is_deeply($n, { 404 => 10_000 }, '10,000 random well-formed-looking ids: all 404')
    or diag(explain($n), join("\n", @$samples));
$m1 = $t->metrics;
is(delta($m0, $m1, $LOADS), scalar(keys %passing),
    'random ids: a load only for the ' . scalar(keys %passing) . ' that pass the check by chance');
cmp_ok(delta($m0, $m1, $LOADS), '<=', 15, 'random ids: at most a few loads');
is(delta($m0, $m1, $R404), 10_000, 'random ids: 10,000 counted 404s');

# 200 valid but unknown ids, 5 times each: one load per id, the other
# four answered from the negative cache
my @unknown = map { link_id() } 1 .. 200;
@lists = map { my $k = $_; [map { ("/r/$unknown[$_]") x 5 } grep { $_ % 4 == $k } 0 .. $#unknown] } 0 .. 3;
$m0 = $t->metrics;
($n, undef, $samples) = parallel(\@lists);
is_deeply($n, { 404 => 1000 }, '200 unknown valid ids x 5: all 404')
    or diag(explain($n), join("\n", @$samples));
$m1 = $t->metrics;
is(delta($m0, $m1, $LOADS), 200, '200 unknown valid ids x 5: 200 loads, one per id (not 1000)');
is(delta($m0, $m1, $MISS), 200, '... 200 cache misses');
is(delta($m0, $m1, $NEG), 800, '... 800 negative cache hits');


# --- changes heard, and the cache's TTL (3 s here) for those that are not ------

# a change in its own transaction with the link's notify triggers off:
# what a change looks like to a host whose listeners missed it
sub unheard {
    my ($sql) = @_;
    $t->psql("BEGIN; ALTER TABLE crm.affiliate_links DISABLE TRIGGER USER; $sql;"
        . " ALTER TABLE crm.affiliate_links ENABLE TRIGGER USER; COMMIT");
}

{
    my $id = add_link('https://shop.example.com/ttl');
    is($t->get("/r/$id")->{status}, 302, 'TTL: an active link, 302 (now cached)');
    $t->psql("UPDATE crm.affiliate_links SET status = 'disabled' WHERE id = '$id'");
    ok(wait_until(1, sub { $t->get("/r/$id")->{status} == 410 }, 0.02),
        'disabled in the database: heard (crm_links), 410 within a second');

    unheard("UPDATE crm.affiliate_links SET status = 'active' WHERE id = '$id'");
    my $t1 = time;
    is($t->get("/r/$id")->{status}, 410, 'TTL: enabled unheard, still 410 from the cache at once');
    my $status;
    ok(wait_until(8, sub { ($status = $t->get("/r/$id")->{status}) == 302 }, 0.2),
        'TTL: 302 once the entry has expired');
    my $took = time - $t1;
    note(sprintf 'the change took %.1f s to show', $took);
    ok($took <= 3 + 2, sprintf('TTL: within the 3 s TTL, plus a second (%.1f s)', $took));

    unheard("UPDATE crm.affiliate_links SET target_url = 'https://other.example/new' WHERE id = '$id'");
    ok(wait_until(8, sub { ($t->get("/r/$id")->{headers}{location} // '') =~ m{^https://other\.example/new\?ref=} }, 0.2),
        'TTL: a new target, unheard, is used once the entry has expired');
}


# --- one row per 302 ------------------------------------------------------------

{
    my $id = add_link('https://shop.example.com/count?c=1');
    my $N = 1000;
    # 4 clients, every fifth request a HEAD
    my @l = map { my $k = $_; [map { ($_ % 5 ? '' : 'HEAD ') . "/r/$id?shop=s$k.example.com" } 1 .. $N / 4] } 0 .. 3;
    ok(settle(), 'the clicks of the tests above are all written');
    $m0 = $t->metrics;
    my ($cnt, $cids, $smp) = parallel(\@l);
    is_deeply($cnt, { 302 => $N }, "$N redirects of one link: all 302")
        or diag(explain($cnt), join("\n", @$smp));
    my %u = map { $_ => 1 } @$cids;
    is(scalar(keys %u), $N, "$N distinct click ids");

    my $rows = 0;
    wait_until(20, sub { ($rows = $t->psql("SELECT count(*) FROM crm.clicks WHERE link_id = '$id'")) >= $N }, 0.1);
    sleep 0.5;    # nothing more may come
    is($t->psql("SELECT count(*) FROM crm.clicks WHERE link_id = '$id'"), $N, "exactly $N click rows");
    is($t->psql("SELECT count(DISTINCT click_id) FROM crm.clicks WHERE link_id = '$id'"), $N, '... with distinct click ids');
    is($t->psql("SELECT count(*) FROM crm.clicks WHERE link_id = '$id' AND is_head"), $N / 5, '... a fifth of them HEAD');
    is($t->psql("SELECT count(*) FROM crm.clicks WHERE link_id = '$id' AND shop_domain = 's2.example.com'"), $N / 4,
        '... a quarter from the client that sent shop=s2.example.com');
    my @db = $t->psql("SELECT click_id FROM crm.clicks WHERE link_id = '$id'");
    my @missing = grep { !$u{$_} } @db;
    is(scalar(@missing), 0, 'every stored click id is one a client received');
    is($t->psql("SELECT clicks FROM crm.affiliate_link_stats WHERE link_id = '$id'"), $N, "affiliate_link_stats.clicks == $N");
    is($t->psql("SELECT s.last_click_at = (SELECT max(clicked_at) FROM crm.clicks c WHERE c.link_id = s.link_id)"
        . " FROM crm.affiliate_link_stats s WHERE link_id = '$id'"), 't', 'last_click_at is the newest click');

    $m1 = $t->metrics;
    is(delta($m0, $m1, $R302), $N, "crm_redirects_total{status=\"302\"} grew by $N");
    is(delta($m0, $m1, 'crm_clicks_queued_total'), $N, "crm_clicks_queued_total grew by $N");
    my $flushed = 0;
    ok(wait_until(5, sub { ($flushed = delta($m0, $t->metrics, 'crm_clicks_flushed_total')) == $N }),
        "crm_clicks_flushed_total grew by $N") or diag("it grew by $flushed");
}

# links that answered only 404 or 410 have no clicks
is($t->psql("SELECT count(*) FROM crm.clicks WHERE link_id IN ('$disabled', '$unknown')"), 0,
    'no click rows for 404 and 410 answers');

my $m = $t->metrics;
is($m->{crm_clicks_dropped_total}, 0, 'crm_clicks_dropped_total 0');
is($m->{crm_clicks_spooled_total}, 0, 'crm_clicks_spooled_total 0 (the database was up)');
is($m->{'crm_redirects_total{status="503"}'}, 0, 'no 503 redirects');
is($t->psql('SELECT count(*) FROM crm.clicks') + 0,
    $t->psql('SELECT sum(clicks) FROM crm.affiliate_link_stats') + 0,
    'the stats count every click row');
ok(wait_until(5, sub { $t->metrics->{crm_click_queue_bytes} == 0 }), 'the queue drains to 0 bytes');

$t->done;

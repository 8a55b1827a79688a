#!/usr/bin/perl
# /metrics (issue 12): the Prometheus text format line by line (HELP and
# TYPE before their series, each family in one group, no series twice),
# then the counters against a known set of requests: every call of a
# crm_api location by route, method and status, the latency histogram
# (cumulative buckets, +Inf equal to the count, the count equal to the
# route's requests), callbacks and webhooks by outcome, thread-pool tasks,
# the shared zones' use, and PostgreSQL connections across a restart of
# the database.  Requests outside crm_api locations (/metrics itself, /r/)
# count in none of them.
# Last, the Grafana dashboard in conf/grafana/ parses and uses only series
# that /metrics prints.

use strict;
use warnings;

use Test::More;
use Digest::SHA qw(hmac_sha256);
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(sleep time);
use CrmTest;

my $ROOT = $CrmTest::ROOT;
my $NIL = '00000000-0000-4000-8000-000000000000';

my $t = CrmTest->new;
my $d = $t->dir;
my %edge = $t->edge_config;

my $WH_KEY = join '', map { chr int rand 256 } 1 .. 32;
my $WH_FILE = "$d/wh-std.secret";
CrmTest::_write_file($WH_FILE, 'whsec_' . encode_base64($WH_KEY, '') . "\n");

$t->start_db;
$t->write_config(
    conf => { crm_sync_interval => '500ms' },
    http_extra => $edge{http_extra} . "    crm_webhook_source std standard $WH_FILE;\n"
        . "    limit_req_zone \$binary_remote_addr zone=metrics_test:1m rate=1r/m;\n",
    server_extra => $edge{server_extra}
        . "        location = /pipeline/stages {\n"
        . "            limit_req zone=metrics_test nodelay;\n"
        . "            limit_req_status 429;\n"
        . "            crm_api;\n"
        . "        }\n",
);
$t->start_nginx;

# --- the text format -------------------------------------------------------------------

my $NAME = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
my $LABEL = qr/[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*"/;
my $SERIES = qr/^($NAME)(\{$LABEL(?:,$LABEL)*\})? (-?[0-9.eE+]+)$/;

sub unescape { my $v = shift; $v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge; return $v }

# a series' key: its name and its labels sorted
sub key {
    my ($name, %l) = @_;
    return $name unless %l;
    return $name . '{' . join(',', map { "$_=\"$l{$_}\"" } sort keys %l) . '}';
}

# Reads a scrape: {status, text, value => {key => number}, series =>
# [{name, labels, value}] in order, types => {family => type}, names =>
# {series name => 1}, problems => [...]}
sub parse_metrics {
    my ($text) = @_;
    my (%value, @series, %types, %help, %names, @problems, %done, %seen);
    my $current = '';
    my @lines = split /\n/, $text, -1;
    pop @lines if @lines && $lines[-1] eq '';
    push @problems, 'the text does not end with a newline' unless $text =~ /\n\z/;
    for my $i (0 .. $#lines) {
        my $l = $lines[$i];
        my $at = 'line ' . ($i + 1) . ": '$l'";
        if ($l =~ /^# (HELP|TYPE) ($NAME)(?: (.*))?$/) {
            my ($what, $fam, $rest) = ($1, $2, $3 // '');
            if ($what eq 'TYPE') {
                push @problems, "$at: unknown type" unless $rest =~ /^(?:counter|gauge|histogram|summary|untyped)$/;
                push @problems, "$at: a second TYPE for $fam" if $types{$fam};
                push @problems, "$at: TYPE after series of $fam" if $done{$fam} || $current eq $fam && $seen{$fam};
                $types{$fam} = $rest;
            } else {
                push @problems, "$at: a second HELP for $fam" if $help{$fam}++;
            }
            if ($fam ne $current) {
                push @problems, "$at: $fam again after other families" if $done{$fam};
                $done{$current} = 1 if length $current;
                $current = $fam;
            }
            next;
        }
        my ($name, $labels, $v) = $l =~ $SERIES;
        unless (defined $name) {
            push @problems, "$at: neither # HELP, # TYPE nor a series";
            next;
        }
        my %l;
        if ($labels) {
            while ($labels =~ /([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"/g) {
                push @problems, "$at: label $1 twice" if exists $l{$1};
                $l{$1} = unescape($2);
            }
        }
        my $fam = $name;
        if (!$types{$name} && $name =~ /^(.+)_(?:bucket|sum|count)$/ && ($types{$1} // '') eq 'histogram') {
            $fam = $1;
        }
        push @problems, "$at: no TYPE line before it" unless $types{$fam};
        if ($fam ne $current) {
            push @problems, "$at: $fam again after other families" if $done{$fam};
            $done{$current} = 1 if length $current;
            $current = $fam;
        }
        $seen{$fam} = 1;
        my $k = key($name, %l);
        push @problems, "$at: the series $k twice" if exists $value{$k};
        $value{$k} = $v + 0;
        $names{$name} = 1;
        push @series, { name => $name, labels => \%l, value => $v, family => $fam };
    }
    return { text => $text, value => \%value, series => \@series, types => \%types,
        names => \%names, problems => \@problems };
}

sub scrape {
    my $r = $t->get('/metrics');
    my $m = parse_metrics($r->{content});
    $m->{status} = $r->{status};
    $m->{content_type} = $r->{headers}{'content-type'};
    return $m;
}

# a series' value in a scrape (0 when it is not printed)
sub v {
    my ($m, $name, %l) = @_;
    return $m->{value}{ key($name, %l) } // 0;
}

# the sum of a family's series whose labels include %l
sub sum_of {
    my ($m, $name, %l) = @_;
    my $s = 0;
    for my $x (@{ $m->{series} }) {
        next unless $x->{name} eq $name;
        next if grep { ($x->{labels}{$_} // "\0") ne $l{$_} } keys %l;
        $s += $x->{value};
    }
    return $s;
}

my $m = scrape();
is($m->{status}, 200, 'GET /metrics: 200');
like($m->{content_type} // '', qr{^text/plain}, '... text/plain');
is_deeply($m->{problems}, [], '... every line is # HELP, # TYPE or a series; TYPE first; families grouped; '
    . 'no series twice');
ok(@{ $m->{series} } > 20, '... ' . scalar(@{ $m->{series} }) . ' series');
my %fam_help = map { $_ => 1 } $m->{text} =~ /^# HELP ($NAME) /mg;
is_deeply([grep { !$fam_help{$_} } sort keys %{ $m->{types} }], [], '... every family has a HELP line');
for my $f (qw(crm_http_requests_total crm_callbacks_total crm_webhooks_total crm_db_connections_total
    crm_thread_pool_tasks_total crm_redirects_total crm_sync_jobs_total)) {
    is($m->{types}{$f}, 'counter', "$f is a counter");
}
is($m->{types}{crm_http_request_duration_seconds}, 'histogram', 'crm_http_request_duration_seconds is a histogram');
is($m->{types}{$_}, 'gauge', "$_ is a gauge") for qw(crm_thread_pool_queue crm_config_generation
    crm_click_queue_bytes);

my @pools = sort { $a cmp $b } keys %{ { map { $_->{labels}{pool} // '?' => 1 }
    grep { $_->{name} eq 'crm_thread_pool_tasks_total' } @{ $m->{series} } } };
ok((grep { $_ eq 'api' } @pools), 'crm_thread_pool_tasks_total has the pool "api"');
is_deeply([grep { !/^(?:api|slow|edge|sync)$/ } @pools], [], '... and no pool other than api, slow, edge, sync')
    or diag("@pools");

# the shared zones: slab pages in use, never more than the zone; the size
# is the configured one
is($m->{types}{$_}, 'gauge', "$_ is a gauge") for qw(crm_zone_used_bytes crm_zone_size_bytes);
my %zone_size = (links => 4 * 1024 * 1024, clicks => 8 * 1024 * 1024);
for my $zone (qw(state links clicks)) {
    my ($used, $size) = map { v($m, $_, zone => $zone) } qw(crm_zone_used_bytes crm_zone_size_bytes);
    ok($used > 0 && $used <= $size, "zone $zone: $used of $size bytes in use");
    is($size, $zone_size{$zone}, "... its size is the configured one") if $zone_size{$zone};
}

# --- a known set of requests -----------------------------------------------------------

my (undef, $tok) = $t->member;
my $lead = $t->create_lead($tok, email => 'metrics-lead@example.com');
my $r = $t->post_json('/affiliate/links', { target_url => 'https://apps.example.com/m' }, token => $tok);
die "link: $r->{status} $r->{content}" unless $r->{status} == 201;
my $link = $r->{json}{affiliate_link_id};

sub idle_api_pool { wait_until(10, sub { v(scrape(), 'crm_thread_pool_queue', pool => 'api') == 0 }) }
ok(idle_api_pool(), 'crm_thread_pool_queue{pool="api"} is 0 when idle');

# the counters settle (each request is counted after its answer)
my $before;
wait_until(5, sub {
    my $a = scrape();
    sleep 0.3;
    $before = scrape();
    return sum_of($a, 'crm_http_requests_total') == sum_of($before, 'crm_http_requests_total');
});

my ($N, $M, $K) = (5, 3, 2);
my @asked;      # [route, method, status] of each API call
sub asked {
    my ($r, $route, $method, $status, $name) = @_;
    is($r->{status}, $status, "$name: $status") or diag($r->{content});
    push @asked, [$route, $method, $status];
}

asked($t->get("/leads/$lead->{id}", token => $tok), '/leads/{id}', 'GET', 200, "GET /leads/{id} ($_)")
    for 1 .. $N;
asked($t->get("/leads/$NIL", token => $tok), '/leads/{id}', 'GET', 404, "GET /leads/{unknown} ($_)")
    for 1 .. $M;
asked($t->post_json('/leads/', { email => 'nameless@example.com' }, token => $tok), '/leads/', 'POST', 422,
    "POST /leads/ without a name ($_)") for 1 .. $K;
asked($t->get('/nowhere', token => $tok), 'none', 'other', 404, 'GET /nowhere');
asked($t->request('DELETE', '/no/such/route'), 'none', 'other', 404, 'DELETE /no/such/route');

# nginx's own answers in an API location
asked($t->post_raw('/leads/', '{"name":"' . ('x' x 70000) . '"}', 'application/json', token => $tok),
    '/leads/', 'POST', 413, "POST /leads/ of 70 kB: nginx's 413");
asked($t->get('/pipeline/stages', token => $tok), '/pipeline/stages', 'GET', 200,
    'GET /pipeline/stages (limit_req 1r/m): the first');
asked($t->get('/pipeline/stages', token => $tok), '/pipeline/stages', 'GET', 429,
    "GET /pipeline/stages again: limit_req's 429");

my %install = (shop_domain => 'metrics-shop.example.com', affiliate_link_id => $link);
asked($t->callback('/callbacks/install', \%install), '/callbacks/install', 'POST', 200, 'an install: created');
asked($t->callback('/callbacks/install', \%install), '/callbacks/install', 'POST', 200, 'again: duplicate');
asked($t->callback('/callbacks/install', \%install, secret => 'wrong'), '/callbacks/install', 'POST', 401,
    'an install signed with another secret: refused');
asked($t->callback('/callbacks/conversion', { amount_cents => 100, currency => 'USD' }),
    '/callbacks/conversion', 'POST', 422, 'a conversion without an order_id: invalid');

my $SEQ = 0;
sub webhook {
    my ($body, %o) = @_;
    $body = json_encode($body) if ref $body;
    my $id = $o{id} // 'msg_metrics_' . ++$SEQ;
    my $ts = int time;
    my $sig = 'v1,' . encode_base64(hmac_sha256("$id.$ts.$body", $o{key} // $WH_KEY), '');
    return $t->request('POST', '/integrations/webhooks/' . ($o{source} // 'std'), content => $body,
        headers => { 'Content-Type' => 'application/json', 'webhook-id' => $id,
            'webhook-timestamp' => $ts, 'webhook-signature' => $sig });
}
my $WH = '/integrations/webhooks/{source}';
$r = webhook({ type => 'contact.updated', data => { email => 'METRICS-lead@example.com' } });
asked($r, $WH, 'POST', 202, 'a webhook naming the lead');
is($r->{json}{status}, 'attributed', '... attributed');
$r = webhook({ type => 'contact.updated', data => { email => 'nobody-metrics@example.com' } }, id => 'msg_m_once');
asked($r, $WH, 'POST', 202, 'a webhook naming nobody');
is($r->{json}{status}, 'unmatched', '... unmatched');
$r = webhook({ type => 'contact.updated', data => { email => 'nobody-metrics@example.com' } }, id => 'msg_m_once');
asked($r, $WH, 'POST', 202, 'the same webhook again');
is($r->{json}{status}, 'duplicate', '... duplicate');
asked(webhook({ type => 'contact.updated', data => {} }, key => 'another key'), $WH, 'POST', 401,
    'a webhook signed with another key: refused');
asked(webhook({ data => {} }), $WH, 'POST', 422, 'a signed webhook without a type: invalid');
asked(webhook({ type => 'x', data => {} }, source => 'nope'), $WH, 'POST', 404, 'a webhook of an unknown source');

# outside crm_api locations: counted nowhere among the API's requests
$r = $t->get("/r/$link");
is($r->{status}, 302, 'GET /r/{id}: 302 (the edge, not an API location)');
$t->get('/metrics') for 1 .. 3;

my %want;
$want{ join ' ', @$_ }++ for @asked;
my $n_asked = @asked;

# the deltas of crm_http_requests_total, by route, method and status
sub request_deltas {
    my ($after) = @_;
    my %delta;
    for my $x (grep { $_->{name} eq 'crm_http_requests_total' } @{ $after->{series} }) {
        my %l = %{ $x->{labels} };
        my $dv = $x->{value} - v($before, 'crm_http_requests_total', %l);
        $delta{"$l{route} $l{method} $l{status}"} = $dv if $dv;
    }
    return \%delta;
}

my $after;
wait_until(10, sub {
    $after = scrape();
    return sum_of($after, 'crm_http_requests_total') - sum_of($before, 'crm_http_requests_total') >= $n_asked;
});
is_deeply(request_deltas($after), \%want,
    "crm_http_requests_total moved by exactly the $n_asked API calls (by route, method, status)");
sleep 0.5;
my $later = scrape();
is(sum_of($later, 'crm_http_requests_total'), sum_of($after, 'crm_http_requests_total'),
    '... and no further: /metrics and /r/ are not counted');
is_deeply([grep { /metrics|\/r\// } map { $_->{labels}{route} // '' }
    grep { $_->{name} =~ /^crm_http_/ } @{ $later->{series} }], [], '... no route of /metrics or /r/');
is_deeply($later->{problems}, [], 'the scrape after the traffic is well formed too');
ok(v($later, 'crm_redirects_total', status => '302') - v($before, 'crm_redirects_total', status => '302') == 1,
    'crm_redirects_total{status="302"} moved by the one redirect');

# the histogram
my @LE = qw(0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 +Inf);
my $H = 'crm_http_request_duration_seconds';
is(v($later, "${H}_count", route => '/leads/{id}', method => 'GET')
    - v($before, "${H}_count", route => '/leads/{id}', method => 'GET'), $N + $M,
    "${H}_count{route=\"/leads/{id}\",method=\"GET\"} moved by N + M = " . ($N + $M));
is(v($later, "${H}_count", route => '/leads/', method => 'POST')
    - v($before, "${H}_count", route => '/leads/', method => 'POST'), $K + 1,
    "${H}_count{route=\"/leads/\",method=\"POST\"} moved by K + 1 (the 413) = " . ($K + 1));

my %hist;
for my $x (grep { $_->{family} eq $H } @{ $later->{series} }) {
    my %l = %{ $x->{labels} };
    my $rm = "$l{route} $l{method}";
    if ($x->{name} eq "${H}_bucket") {
        push @{ $hist{$rm}{le} }, $l{le};
        push @{ $hist{$rm}{buckets} }, $x->{value};
    } elsif ($x->{name} eq "${H}_sum") {
        $hist{$rm}{sum} = $x->{value};
    } elsif ($x->{name} eq "${H}_count") {
        $hist{$rm}{count} = $x->{value};
    }
}
ok($hist{'/leads/{id} GET'}, 'a histogram for GET /leads/{id}');
my @hist_bad;
for my $rm (sort keys %hist) {
    my $h = $hist{$rm};
    my ($route, $method) = split / /, $rm;
    push @hist_bad, "$rm: le " . join(' ', @{ $h->{le} || [] })
        unless join(' ', @{ $h->{le} || [] }) eq join(' ', @LE);
    my @b = @{ $h->{buckets} || [] };
    push @hist_bad, "$rm: buckets not cumulative: @b" if grep { $b[$_] < $b[$_ - 1] } 1 .. $#b;
    push @hist_bad, "$rm: +Inf " . ($b[-1] // 'none') . ', count ' . ($h->{count} // 'none')
        unless defined $h->{count} && @b && $b[-1] == $h->{count};
    my $requests = sum_of($later, 'crm_http_requests_total', route => $route, method => $method);
    push @hist_bad, "$rm: count $h->{count}, requests $requests" unless ($h->{count} // -1) == $requests;
    push @hist_bad, "$rm: no _sum" unless defined $h->{sum};
}
is_deeply(\@hist_bad, [], 'every histogram: the buckets of the spec in order, cumulative, +Inf equal to _count, '
    . '_count equal to the route\'s requests, a _sum');
my ($sum_line) = $later->{text} =~ /^\Q${H}_sum\E\{[^}]*\} (\S+)$/m;
like($sum_line // '', qr/^\d+\.\d{3}$/, '_sum in seconds with 3 decimals');
my @routes_without = grep { my $x = $_; !$hist{"$x->{labels}{route} $x->{labels}{method}"} }
    grep { $_->{name} eq 'crm_http_requests_total' } @{ $later->{series} };
is_deeply([map { key($_->{name}, %{ $_->{labels} }) } @routes_without], [],
    'every route with requests has a histogram');
is_deeply([grep { $_->{value} == 0 } grep { $_->{name} eq 'crm_http_requests_total' } @{ $later->{series} }], [],
    'no crm_http_requests_total series of 0');

# callbacks and webhooks by outcome
sub delta { my ($name, %l) = @_; v($later, $name, %l) - v($before, $name, %l) }
my %cb;
for my $x (grep { $_->{name} eq 'crm_callbacks_total' } @{ $later->{series} }) {
    my $dv = $x->{value} - v($before, 'crm_callbacks_total', %{ $x->{labels} });
    $cb{"$x->{labels}{kind} $x->{labels}{outcome}"} = $dv if $dv;
}
is_deeply(\%cb, { 'install created' => 1, 'install duplicate' => 1, 'install refused' => 1,
    'conversion invalid' => 1 }, 'crm_callbacks_total moved by exactly the callbacks, by kind and outcome');
my %wh;
for my $x (grep { $_->{name} eq 'crm_webhooks_total' } @{ $later->{series} }) {
    my $dv = $x->{value} - v($before, 'crm_webhooks_total', %{ $x->{labels} });
    $wh{"$x->{labels}{source} $x->{labels}{outcome}"} = $dv if $dv;
}
is_deeply(\%wh, { 'std attributed' => 1, 'std unmatched' => 1, 'std duplicate' => 1, 'std refused' => 1,
    'std invalid' => 1 }, 'crm_webhooks_total moved by exactly the webhooks, by source and outcome');
is_deeply([grep { ($_->{labels}{source} // '') eq 'nope' } @{ $later->{series} }], [],
    'an unknown source has no series of its own');

# thread pools
ok(idle_api_pool(), 'crm_thread_pool_queue{pool="api"} is 0 again when idle');
my $posted = delta('crm_thread_pool_tasks_total', pool => 'api');
ok($posted >= $N + $M + 2 + 3, "crm_thread_pool_tasks_total{pool=\"api\"} grew by at least the "
    . ($N + $M + 5) . " calls that ran a task ($posted)");

# --- PostgreSQL restarted --------------------------------------------------------------

my $ok_before = v($later, 'crm_db_connections_total', result => 'ok');
ok($ok_before >= 1, 'crm_db_connections_total{result="ok"} is at least 1 once calls ran ('
    . $ok_before . ')');
my $failed_before = v($later, 'crm_db_connections_total', result => 'failed');
$t->stop_db;
my $down = wait_until(15, sub {
    $t->get('/auth/me', token => $tok, ua => HTTP::Tiny->new(keep_alive => 0));
    return v(scrape(), 'crm_db_connections_total', result => 'failed') > $failed_before;
}, 0.25);
ok($down, 'PostgreSQL down: crm_db_connections_total{result="failed"} grows');
$t->start_db;
ok(wait_until(20, sub {
    $t->get('/auth/me', token => $tok, allow_503 => 1, ua => HTTP::Tiny->new(keep_alive => 0))->{status} == 200;
}, 0.25), 'PostgreSQL back: GET /auth/me 200 again');
ok(wait_until(10, sub { v(scrape(), 'crm_db_connections_total', result => 'ok') > $ok_before }),
    'crm_db_connections_total{result="ok"} grew (reconnects)');

# --- webhook counters across a reload -------------------------------------------------
#
# The counters are kept in the state zone, which a reload keeps: a source
# added before "std" must not take std's counts, nor std lose them.

my @WH_OUTCOMES = qw(attributed unmatched duplicate refused invalid conflict failed);
sub wh_counts {
    my ($m, $source) = @_;
    return { map { $_ => v($m, 'crm_webhooks_total', source => $source, outcome => $_) } @WH_OUTCOMES };
}
my $std_before = wh_counts(scrape(), 'std');
ok($std_before->{attributed} >= 1, 'std has counts before the reload');
$t->write_config(http_extra => "    crm_webhook_source aaa standard $WH_FILE;\n"
    . ($t->{http_extra} =~ s/^\s*crm_webhook_source aaa[^\n]*\n//mr));
ok($t->reload, 'reload with a source "aaa" declared before "std"');
my $m2 = scrape();
is_deeply(wh_counts($m2, 'std'), $std_before, '... std keeps its counts');
is_deeply(wh_counts($m2, 'aaa'), { map { $_ => 0 } @WH_OUTCOMES }, '... and aaa starts at 0');
$r = webhook({ type => 'contact.updated', data => { email => 'nobody-aaa@example.com' } }, source => 'aaa');
is($r->{status}, 202, 'a webhook to aaa: 202');
ok(wait_until(10, sub { wh_counts(scrape(), 'aaa')->{unmatched} == 1 }), '... counted as aaa\'s');
is_deeply(wh_counts(scrape(), 'std'), $std_before, '... not as std\'s');

# --- the Grafana dashboard -------------------------------------------------------------

my $file = "$ROOT/conf/grafana/crm-gateway.json";
my $dash = eval { JSON::PP->new->utf8->decode(do { local (@ARGV, $/) = ($file); <> }) };
ok(ref $dash eq 'HASH', 'conf/grafana/crm-gateway.json is a JSON object') or diag($@);
$dash = {} unless ref $dash eq 'HASH';
is($dash->{schemaVersion}, 39, '... schemaVersion 39');
ok((grep { ($_->{name} // '') eq 'DS_PROMETHEUS' && ($_->{type} // '') eq 'datasource'
    && ($_->{pluginId} // '') eq 'prometheus' } @{ $dash->{__inputs} || [] }),
    '... an input DS_PROMETHEUS, a Prometheus data source');

# every string under an "expr", "query" or "definition" key, and every
# panel (rows' own panels too)
my (@exprs, @panels, @ds);
sub walk {
    my ($x, $key) = @_;
    if (ref $x eq 'HASH') {
        push @panels, $x if exists $x->{gridPos} && exists $x->{type};
        push @ds, $x->{datasource} if exists $x->{datasource} && ($key // '') ne 'annotations';
        walk($x->{$_}, $_) for grep { $_ ne 'annotations' } keys %$x;
    } elsif (ref $x eq 'ARRAY') {
        walk($_, $key) for @$x;
    } elsif (defined $x && defined $key && $key =~ /^(?:expr|query|definition)$/) {
        push @exprs, $x;
    }
}
walk($dash);
ok(@exprs >= 20, '... ' . scalar(@exprs) . ' expressions');
my @graphs = grep { $_->{type} ne 'row' } @panels;
ok(@graphs >= 15, '... ' . scalar(@graphs) . ' panels');
my %ids;
is_deeply([grep { $ids{ $_->{id} // 'none' }++ } @panels], [], '... each panel with an id of its own');
is_deeply([grep { !ref $_ || ($_->{uid} // '') ne '${DS_PROMETHEUS}' } grep { !ref $_ || $_->{type} ne 'grafana' } @ds],
    [], '... every data source is ${DS_PROMETHEUS}');

my %used;
$used{$_}++ for map { /\b(crm_[a-z0-9_]+)/g } @exprs;
my @missing;
for my $name (sort keys %used) {
    next if $later->{names}{$name};
    push @missing, $name;
}
# series that appear only once something happened are in the scrape after
# the traffic; the sync gauges after the sync's first look at its queue
wait_until(10, sub { scrape()->{names}{crm_sync_queue_due} });
my $final = scrape();
@missing = grep { !$final->{names}{$_} } @missing;
is_deeply(\@missing, [], 'every metric the dashboard uses is in /metrics')
    or diag("in /metrics: " . join ' ', sort keys %{ $final->{names} });
for my $x (grep { /_(?:bucket|sum|count)$/ } sort keys %used) {
    (my $base = $x) =~ s/_(?:bucket|sum|count)$//;
    next unless $final->{types}{$base};
    is($final->{types}{$base}, 'histogram', "$x: a series of the histogram $base");
}

my @should = qw(crm_http_requests_total crm_http_request_duration_seconds_bucket crm_redirects_total
    crm_link_cache_lookups_total crm_clicks_queued_total crm_clicks_flushed_total crm_clicks_spooled_total
    crm_clicks_dropped_total crm_click_queue_bytes crm_sync_jobs_total crm_sync_queue_due
    crm_sync_oldest_due_seconds crm_callbacks_total crm_webhooks_total crm_thread_pool_queue
    crm_thread_pool_tasks_total crm_db_connections_total crm_db_probes_failed_total
    crm_idp_key_refreshes_total crm_config_generation);
is_deeply([grep { !$used{$_} } @should], [], 'the dashboard shows each of the series it is for');
ok((grep { /histogram_quantile\(0\.5,.*crm_http_request_duration_seconds_bucket.*\[5m\]/ } @exprs)
    && (grep { /histogram_quantile\(0\.95,/ } @exprs) && (grep { /histogram_quantile\(0\.99,/ } @exprs),
    '... p50, p95 and p99 from the histogram over 5 minutes');

$t->done;

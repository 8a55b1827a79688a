#!/usr/bin/perl
# The CRM sync under faults (issue 10), against the strict stand-ins
# (t/lib/MockCrm.pm): a 429 storm with Retry-After, a Salesforce session
# that expires mid-lease, a provider down for a while, a hung provider, a
# job that keeps failing until it is dead and the retry endpoint, revoked
# Klaviyo credentials and a new connect, one merchant's slow Creatio next
# to another's, one integration's backlog against crm_sync_concurrency,
# several leads of one Creatio integration at once, then kill -9 of the
# workers holding leases, nginx -s reload and a PostgreSQL restart, each
# during a sync load.  Whatever
# happens, every job ends ok, each lead's events reach the provider in
# the order of its jobs, each with its job's own id (a repeat of the same
# id after a lost record is allowed and counted), nothing is left leased
# or waiting, and one account's leads never reach another's CRM.
#
# The outbound timeout is short (400ms) so that a lease, which lasts
# (20 * 2 + 6) * crm_outbound_timeout = 18.4 s, runs out by itself within
# the test when its worker dies.  Measured figures go out with diag.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);
use CrmTest;
use MockCrm;

my $t = CrmTest->new;
my $mock = MockCrm->new(dir => $t->dir);

my $TIMEOUT_MS = 400;
my $LEASE_S = (20 * 2 + 6) * $TIMEOUT_MS / 1000;
my $MAX_ATTEMPTS = 4;
my $CONCURRENCY = 4;        # crm_sync_concurrency's default

$t->start_db;
$t->write_config(server_extra => "        location = /metrics { crm_metrics; }\n", conf => {
    crm_klaviyo_url => $mock->url,
    crm_outbound_allow => '127.0.0.0/8',
    crm_outbound_connect_timeout => "${TIMEOUT_MS}ms",
    crm_outbound_timeout => "${TIMEOUT_MS}ms",
    crm_sync_interval => '100ms',
    crm_sync_max_attempts => $MAX_ATTEMPTS,
});
$t->start_nginx;

sub q1 { $t->psql($_[0]) }

# waits until $cond returns true ($secs, default 10, at most); returns its
# last value
sub wait_for {
    my ($cond, $secs, $step) = @_;
    my $deadline = time + ($secs // 10);
    my $v;
    while (1) {
        $v = $cond->();
        return $v if $v || time > $deadline;
        sleep($step // 0.1);
    }
}

sub waiting_jobs {
    my ($acc) = @_;
    q1("SELECT count(*) FROM crm.sync_jobs WHERE account_id = '$acc' AND state IN ('pending', 'failed')");
}

sub all_waiting { q1("SELECT count(*) FROM crm.sync_jobs WHERE state IN ('pending', 'failed')") }

# the account's jobs by state: {ok => n, ...}
sub job_states {
    my ($acc) = @_;
    return { map { split /\|/ } q1("SELECT state, count(*) FROM crm.sync_jobs"
        . " WHERE account_id = '$acc' GROUP BY state") };
}

sub creds {
    my ($type, $m) = @_;
    $m //= $mock;
    return { api_key => $m->klaviyo_key } if $type eq 'klaviyo';
    return { username => $m->sf_user, password => $m->sf_password, security_token => $m->sf_token }
        if $type eq 'salesforce';
    return { instance_url => $m->url, username => $m->creatio_user, password => $m->creatio_password };
}

sub settings {
    my ($type, $m) = @_;
    return { login_url => ($m // $mock)->url } if $type eq 'salesforce';
    return {};
}

sub connect_crm {
    my ($tok, $type, $m) = @_;
    my $r = $t->post_json('/crm/connect', { crm_type => $type, credentials => creds($type, $m),
        settings => settings($type, $m) }, token => $tok);
    ok($r->{status} == 201 || $r->{status} == 200, "$type connected") or diag($r->{content});
    return $r;
}

# a new member with a connected CRM: (account id, token)
sub account_with {
    my ($type, $m) = @_;
    my ($acc, $tok) = $t->member;
    connect_crm($tok, $type, $m);
    return ($acc->{id}, $tok);
}

# $n leads, then an update of each, then a stage change of each: three
# jobs a lead, interleaved between leads; the leads' ids
sub lead_burst {
    my ($tok, $n, $tag) = @_;
    my @ids = map {
        $t->create_lead($tok, name => "Ada $tag$_", email => "$tag$_\@example.com", company => 'First Co')->{id}
    } 1 .. $n;
    for my $id (@ids) {
        my $r = $t->put_json("/leads/$id", { company => "Second Co" }, token => $tok);
        die "update: $r->{status} $r->{content}" unless $r->{status} == 200;
    }
    for my $id (@ids) {
        my $r = $t->put_json("/leads/$id/stage", { stage => 'demo', substage => 'demo_scheduled' }, token => $tok);
        die "stage: $r->{status} $r->{content}" unless $r->{status} == 200;
    }
    return @ids;
}

sub in_list { join ', ', map { "'$_'" } @_ }

# Why a lead's events as the provider stored them (their ids, in arrival
# order) are not its jobs' events (@$want, in job order): an id of no
# job, an event that arrived before the one before it had, a job never
# delivered.  Repeats of an id already delivered are not problems.
sub order_problems {
    my ($got, $want) = @_;
    my %pos;
    @pos{@$want} = 0 .. $#$want;
    my (%seen, @why);
    for my $i (0 .. $#$got) {
        my $p = $pos{ $got->[$i] };
        if (!defined $p) {
            push @why, "event $i has unique_id $got->[$i], no job's";
            next;
        }
        push @why, "event $i (job $p) arrived before job " . ($p - 1) . "'s"
            if $p > 0 && !$seen{ $want->[ $p - 1 ] };
        $seen{ $got->[$i] }++;
    }
    push @why, map { "job $_ never delivered" } grep { !$seen{ $want->[$_] } } 0 .. $#$want;
    return @why;
}

# Every job of the leads ok, and their Klaviyo events in job order with
# the jobs' ids; returns the number of repeats (same id delivered again)
sub check_klaviyo {
    my ($name, $acc, @leads) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my %by_lead;
    for my $ev (@{ $mock->state->{klaviyo}{events} }) {
        push @{ $by_lead{ $ev->{profile}{external_id} // '' } }, $ev;
    }
    my (@why, $repeats, $flagged);
    for my $lead (@leads) {
        my @want = q1("SELECT event_id FROM crm.sync_jobs WHERE account_id = '$acc' AND lead_id = '$lead'"
            . " ORDER BY id");
        my @got = map { $_->{unique_id} // 'none' } @{ $by_lead{$lead} || [] };
        push @why, map { "lead $lead: $_" } order_problems(\@got, \@want);
        my %n;
        $repeats += grep { $n{$_}++ } @got;
        $flagged += grep { $_->{duplicate} } @{ $by_lead{$lead} || [] };
    }
    is_deeply(\@why, [], "$name: each lead's events delivered in its jobs' order, each with its job's unique_id")
        or diag(join "\n", @why[0 .. ($#why < 15 ? $#why : 14)]);
    is($flagged, $repeats, "$name: ... Klaviyo saw every repeat as one (same unique_id)");
    my $states = job_states($acc);
    is_deeply([grep { $_ ne 'ok' } sort keys %$states], [], "$name: every job ok")
        or diag(explain($states));
    is(q1("SELECT count(*) FROM crm.sync_queue WHERE account_id = '$acc'"), 0,
        "$name: nothing left in the queue, leased or not");
    return $repeats;
}

# the sync log rows of an account, oldest first: [{id, lead, op, outcome,
# http, attempt, at (epoch), ms, error}]
sub log_rows {
    my ($acc, $where) = @_;
    my @rows;
    for (q1("SELECT id, entity_id, operation, outcome, coalesce(http_status, 0), attempt,"
        . " extract(epoch FROM created_at), duration_ms, coalesce(error, '') FROM crm.sync_log"
        . " WHERE account_id = '$acc' AND entity = 'lead'" . ($where // '') . " ORDER BY id"))
    {
        my %r;
        @r{qw(id lead op outcome http attempt at ms error)} = split /\|/, $_, 9;
        push @rows, \%r;
    }
    return @rows;
}

# Why the attempts of each job (a lead's operation) in the log are not
# 1, 2, ... n with every one but the last failed (or timed out) and the
# last ok, n being the job's attempts
sub attempt_problems {
    my ($acc, @rows) = @_;
    my %per;
    push @{ $per{"$_->{lead} $_->{op}"} }, $_ for @rows;
    my @why;
    for my $k (sort keys %per) {
        my @r = @{ $per{$k} };
        my ($lead, $op) = split / /, $k;
        my $attempts = q1("SELECT attempts FROM crm.sync_jobs WHERE account_id = '$acc'"
            . " AND lead_id = '$lead' AND event = '$op'");
        my $seq = join ',', map { $_->{attempt} } @r;
        my $want = join ',', 1 .. $attempts;
        push @why, "$k: attempts $seq in the log, the job says $attempts" if $seq ne $want;
        push @why, "$k: the last attempt is $r[-1]{outcome}" if $r[-1]{outcome} ne 'ok';
        push @why, "$k: an attempt before the last is $_->{outcome}"
            for grep { $_->{outcome} !~ /^(?:failed|timeout)\z/ } @r[0 .. $#r - 1];
    }
    return @why;
}

sub percentile {
    my ($p, @v) = @_;
    @v = sort { $a <=> $b } @v;
    my $i = int($p / 100 * @v + 0.999999) - 1;
    return $v[ $i < 0 ? 0 : $i ];
}

# the workers with a connection to 127.0.0.1:$port open (a provider call
# under way, or kept alive)
sub workers_connected_to {
    my ($port) = @_;
    my %inode;
    open my $fh, '<', '/proc/net/tcp' or return ();
    while (<$fh>) {
        my @c = split ' ';
        next unless @c > 9 && $c[2] =~ /:([0-9A-F]{4})$/ && hex($1) == $port && $c[3] eq '01';
        $inode{ $c[9] } = 1;
    }
    my @pids;
    for my $pid ($t->worker_pids) {
        opendir my $dh, "/proc/$pid/fd" or next;
        my $found = grep { (readlink("/proc/$pid/fd/$_") // '') =~ /^socket:\[(\d+)\]$/ && $inode{$1} }
            readdir $dh;
        push @pids, $pid if $found;
    }
    return @pids;
}

# the active leases of an account: {lead => [token, lease_until epoch]}
sub leases_of {
    my ($acc) = @_;
    return { map { my ($l, $tok, $u) = split /\|/; ($l => [ $tok, $u ]) }
        q1("SELECT lead_id, lease_token, extract(epoch FROM lease_until) FROM crm.sync_queue"
            . " WHERE account_id = '$acc' AND lease_until > now()") };
}

sub quiet {
    my ($what) = @_;
    ok(wait_for(sub { all_waiting() == 0 }, 15), "$what: the queue is drained before the next fault")
        or diag(q1("SELECT account_id, crm_type, state, count(*) FROM crm.sync_jobs"
            . " WHERE state IN ('pending', 'failed') GROUP BY 1, 2, 3"));
}

my %FIG;    # measured figures, summed up at the end


# --- 429 storm with Retry-After ------------------------------------------------------
#
# Three calls answered 429 with Retry-After: 2.  Each pauses the job and
# the whole integration: the next call to it comes no earlier than 2 s
# after the 429.  Lead A takes the three; lead B, made right after the
# third, waits for the pause too.  The call times come from polling the
# stand-in's request log (it has no clock of its own), the log rows' from
# the database.

{
    my $name = '429 storm';
    my $RETRY = 2;
    my ($acc, $tok) = account_with('klaviyo');
    my $base = @{ $mock->requests };
    my @calls;      # [seen at, request]
    my $poll = sub {
        my $r = $mock->requests;
        push @calls, map { [ time, $r->[$_] ] } $base + @calls .. $#$r;
    };
    $mock->mode('429', times => 3, retry_after => $RETRY);
    my $la = $t->create_lead($tok, name => 'Rate Limited A', email => 'ratea@example.com');
    my $deadline = time + 15;
    while (@calls < 3 && time < $deadline) {
        $poll->();
        sleep 0.02;
    }
    is(scalar(@calls), 3, "$name: three calls answered 429");
    my $lb = $t->create_lead($tok, name => 'Rate Limited B', email => 'rateb@example.com');
    my $b_made = time;
    my $i = 0;
    while (time < $deadline) {
        $poll->();
        last if ++$i % 10 == 0 && waiting_jobs($acc) == 0;
        sleep 0.02;
    }
    $poll->();
    is(waiting_jobs($acc), 0, "$name: both leads' jobs sent in the end");

    my @gaps = map { $calls[ $_ + 1 ][0] - $calls[$_][0] } 0 .. 2;
    diag(sprintf "%s: gaps between each 429 and the next call: %s s (Retry-After %d)", $name,
        join(', ', map { sprintf '%.3f', $_ } @gaps), $RETRY);
    $FIG{'429 gaps'} = join ', ', map { sprintf '%.2f s', $_ } @gaps;
    ok(!(grep { $_ < $RETRY - 0.1 } @gaps), "$name: no call within Retry-After of a 429");
    ok(!(grep { $_ > $RETRY + 1.5 } @gaps), "$name: ... nor much later than it");
    my ($b_first) = grep { $_->[1]{body} =~ /\Q$lb->{id}\E/ } @calls;
    my $b_wait = $b_first ? $b_first->[0] - $calls[2][0] : 0;
    diag(sprintf "%s: lead B, made %.3f s after the third 429, first called %.3f s after it",
        $name, $b_made - $calls[2][0], $b_wait);
    $FIG{'429 other lead held'} = sprintf '%.2f s', $b_wait;
    cmp_ok($b_wait, '>=', $RETRY - 0.1,
        "$name: a lead made during the pause waits for it too (the integration pauses)");

    my @rows = log_rows($acc, " AND entity_id = '$la->{id}'");
    is_deeply([map { "$_->{outcome} $_->{http} $_->{attempt}" } @rows],
        ['failed 429 1', 'failed 429 2', 'failed 429 3', 'ok 202 4'],
        "$name: lead A's log: three 429s failed, then ok at the fourth attempt")
        or diag(explain(\@rows));
    like($rows[0]{error} // '', qr/limiting the rate/, "$name: ... the 429 said in the error");
    my @lgaps = map { $rows[ $_ + 1 ]{at} - $rows[$_]{at} } 0 .. ($#rows < 3 ? $#rows - 1 : 2);
    diag(sprintf "%s: gaps between the log rows of A's attempts: %s s", $name,
        join(', ', map { sprintf '%.3f', $_ } @lgaps));
    ok(@lgaps == 3 && !(grep { $_ < $RETRY - 0.1 } @lgaps),
        "$name: ... each attempt at least Retry-After after the one before");
    my $took = q1("SELECT extract(epoch FROM finished_at - created_at) FROM crm.sync_jobs"
        . " WHERE lead_id = '$la->{id}'");
    diag(sprintf "%s: lead A's job took %.3f s from its event to ok", $name, $took);
    cmp_ok($took, '>=', 3 * $RETRY - 0.1, "$name: ... in all no less than three Retry-Afters");
    check_klaviyo($name, $acc, $la->{id}, $lb->{id});
}
quiet('429 storm');


# --- Salesforce: the session expires in the middle of a lease -------------------------

{
    my $name = 'salesforce expiry';
    my ($acc, $tok) = account_with('salesforce');
    my $base = @{ $mock->requests };
    $mock->mode('slow', delay_ms => 150);
    my $lead = $t->create_lead($tok, name => 'Grace Hopper', email => 'grace.sf@example.com',
        company => 'Navy');
    my $r = $t->put_json("/leads/$lead->{id}/stage", { stage => 'demo', substage => 'demo_scheduled' },
        token => $tok);
    is($r->{status}, 200, "$name: lead moved");
    # the first call of the lease (the log-in, or a call with a kept
    # session): the session it gives or uses is forgotten at once
    ok(wait_for(sub { @{ $mock->requests } > $base }, 5, 0.02), "$name: the sync calls Salesforce");
    $mock->expire_sessions;
    $mock->mode('ok');
    ok(wait_for(sub { waiting_jobs($acc) == 0 }, 10), "$name: every job sent");
    my @calls = @{ $mock->requests }[ $base .. $#{ $mock->requests } ];
    my $login = qr{^/services/Soap/};
    my $again = 0;
    for my $i (0 .. $#calls) {
        next if $calls[$i]{path} =~ $login;
        my $key = "$calls[$i]{method} $calls[$i]{path}?$calls[$i]{query} $calls[$i]{body}";
        my ($l) = grep { $calls[$_]{path} =~ $login } $i + 1 .. $#calls;
        next unless defined $l;
        $again ||= grep { "$calls[$_]{method} $calls[$_]{path}?$calls[$_]{query} $calls[$_]{body}" eq $key
            && ($calls[$_]{headers}{authorization} // '') ne ($calls[$i]{headers}{authorization} // '') }
            $l + 1 .. $#calls;
    }
    ok($again, "$name: the call refused for the expired session is made again after a new log-in");
    my $logins = grep { $_->{path} =~ $login } @calls;
    diag("$name: " . scalar(@calls) . " calls, $logins log-ins");
    my $st = $t->get('/crm/salesforce/status', token => $tok)->{json};
    is($st->{status}, 'connected', "$name: the integration stays connected");
    is($st->{last_error}, undef, "$name: ... with no last_error");
    is(q1("SELECT string_agg(state || ':' || attempts, ',' ORDER BY id) FROM crm.sync_jobs"
        . " WHERE account_id = '$acc'"), 'ok:1,ok:1', "$name: both jobs ok at their first attempt");
    my $state = $mock->state->{salesforce};
    my @leads = grep { ($_->{Email} // '') eq 'grace.sf@example.com' } @{ $state->{leads} };
    is(scalar(@leads), 1, "$name: one Lead");
    my @tasks = grep { ($_->{WhoId} // '') eq ($leads[0]{Id} // '-') } @{ $state->{tasks} };
    is_deeply([map { $_->{Subject} } @tasks], ['Lead Created', 'Lead Stage Changed'],
        "$name: ... and its two Tasks, in order");
}
quiet('salesforce expiry');


# --- the provider down for a while, then back ---------------------------------------

{
    my $name = 'provider down';
    my $DOWN = 3;
    my ($acc, $tok) = account_with('klaviyo');
    $mock->mode('500', times => $DOWN);
    my @leads = lead_burst($tok, 4, 'down');
    ok(wait_for(sub { waiting_jobs($acc) == 0 }, 20), "$name: every job sent once it is back");
    check_klaviyo($name, $acc, @leads);
    my @rows = log_rows($acc);
    my @failed = grep { $_->{outcome} eq 'failed' } @rows;
    is(scalar(@failed), $DOWN, "$name: one failed attempt in the log per 500 answered");
    ok(!(grep { $_->{http} != 500 } @failed), "$name: ... each with the 500");
    my @why = attempt_problems($acc, @rows);
    is_deeply(\@why, [], "$name: each job's attempts in the log: failed ones, then ok, numbered 1 to its attempts")
        or diag(join "\n", @why);
    my $api = $t->get('/crm/klaviyo/logs?limit=100', token => $tok)->{json}{items} || [];
    my @api_rows = reverse grep { ($_->{entity} // '') eq 'lead' } @$api;
    is_deeply([map { "$_->{entity_id} $_->{operation} $_->{outcome} $_->{attempt}" } @api_rows],
        [map { "$_->{lead} $_->{op} $_->{outcome} $_->{attempt}" } @rows],
        "$name: GET /crm/klaviyo/logs has every attempt");
    my @retried = grep { $_->{outcome} eq 'ok' && $_->{attempt} > 1 } @$api;
    ok(@retried >= 1, "$name: ... jobs ok at a later attempt among them (" . scalar(@retried) . ')');
    is(q1("SELECT sum(attempts) FROM crm.sync_jobs WHERE account_id = '$acc'"), 12 + $DOWN,
        "$name: attempts recorded: one per job, and one more per 500");
    my $st = $t->get('/crm/klaviyo/status', token => $tok)->{json};
    my $db = job_states($acc);
    is_deeply($st->{counts}, { pending => $db->{pending} // 0, ok => $db->{ok} // 0,
        failed => $db->{failed} // 0, dead => $db->{dead} // 0 }, "$name: the status counts are the database's");
    is_deeply($st->{counts}, { pending => 0, ok => 12, failed => 0, dead => 0 }, "$name: ... twelve ok");
}
quiet('provider down');


# --- a hung provider ---------------------------------------------------------------------
#
# Calls time out at crm_outbound_timeout and go again later; the API is
# not slowed meanwhile.  The leads are made 130 ms apart, so that a worker
# starts a call while another of its calls is still hanging (each must
# still be cut off at its own timeout).  The stand-in answers again before
# any job could have had its fourth attempt (4 * 400ms timeouts + 3 *
# 250ms backoff at the least), so none goes dead.

{
    my $name = 'hung provider';
    my ($acc, $tok) = account_with('klaviyo');
    my $warm = $t->create_lead($tok, name => 'Before The Hang', email => 'beforehang@example.com')->{id};
    my @before = map { my $s = time; $t->get("/leads/$warm", token => $tok); time - $s } 1 .. 20;
    ok(wait_for(sub { waiting_jobs($acc) == 0 }, 5), "$name: a lead sent before the provider hangs");
    $mock->mode('hang');
    my $h0 = time;
    my @leads = map {
        sleep 0.13 if $_ > 1;
        $t->create_lead($tok, name => "Hung $_", email => "hung$_\@example.com")->{id}
    } 1 .. 5;
    my @lat;
    for my $i (1 .. 50) {
        my $s = time;
        my $r = $t->get("/leads/$leads[$i % @leads]", token => $tok);
        push @lat, time - $s;
        die "GET /leads: $r->{status}" unless $r->{status} == 200;
    }
    my $p99 = percentile(99, @lat);
    diag(sprintf "%s: GET /leads/{id} while the provider hangs: p50 %.1f ms, p99 %.1f ms"
        . " (before: p99 %.1f ms)", $name, 1000 * percentile(50, @lat), 1000 * $p99, 1000 * percentile(99, @before));
    $FIG{'hung: API p99'} = sprintf '%.1f ms', 1000 * $p99;
    cmp_ok($p99, '<', 0.25, "$name: the API answers meanwhile (p99 of 50 GET /leads/{id} under 250 ms)");
    ok(wait_for(sub {
        q1("SELECT count(*) FROM crm.sync_log WHERE account_id = '$acc' AND outcome = 'timeout'") }, 3, 0.05),
        "$name: a call timed out");
    sleep 0.05 while time < $h0 + 1.5;
    $mock->mode('ok');
    my $back = time;
    ok(wait_for(sub { waiting_jobs($acc) == 0 }, 10), "$name: every job sent once the provider answers");
    diag(sprintf "%s: hung for %.2f s; all sent %.2f s after", $name, $back - $h0, time - $back);
    check_klaviyo($name, $acc, $warm, @leads);
    my @rows = log_rows($acc);
    my @to = grep { $_->{outcome} eq 'timeout' } @rows;
    ok(@to >= @leads, "$name: each lead's first call timed out (" . scalar(@to) . ' timeouts logged)');
    ok(!(grep { $_->{http} != 0 || $_->{error} !~ /did not answer in time/ } @to),
        "$name: ... logged as timeouts, without a status, saying so");
    my @ms = map { $_->{ms} } @to;
    diag("$name: the timed-out attempts took " . join(', ', @ms) . ' ms');
    $FIG{'hung: timed-out calls took'} = join(', ', @ms) . " ms (crm_outbound_timeout $TIMEOUT_MS ms)";
    ok(!(grep { $_ < $TIMEOUT_MS - 20 || $_ > $TIMEOUT_MS + 100 } @ms),
        "$name: ... each cut off at crm_outbound_timeout ($TIMEOUT_MS ms, with 100 ms to spare),"
        . " also when it starts while another call of its worker hangs");
    my @why = attempt_problems($acc, @rows);
    is_deeply(\@why, [], "$name: each job: timed-out attempts, then ok") or diag(join "\n", @why);
    is(q1("SELECT count(*) FROM crm.sync_jobs WHERE lead_id IN (" . in_list(@leads) . ") AND attempts < 2"), 0,
        "$name: ... each sent again after its timeout");
    # no worker is stuck on a call that never came back
    my $n0 = time;
    my $new = $t->create_lead($tok, name => 'After The Hang', email => 'afterhang@example.com');
    ok(wait_for(sub { waiting_jobs($acc) == 0 }, 3, 0.05), "$name: a new lead's job is claimed and sent at once");
    diag(sprintf "%s: a new lead after it sent in %.3f s", $name, time - $n0);
    check_klaviyo("$name (new lead)", $acc, $new->{id});
}
quiet('hung provider');


# --- a provider that keeps failing: dead after crm_sync_max_attempts, then retry ------

{
    my $name = 'max attempts';
    my ($acc, $tok) = account_with('klaviyo');
    $mock->mode('500');
    my $d0 = time;
    my $lead = $t->create_lead($tok, name => 'Doomed Lead', email => 'doomed460@example.com');
    my $state = sub { q1("SELECT state || ':' || attempts FROM crm.sync_jobs WHERE lead_id = '$lead->{id}'") };
    ok(wait_for(sub { $state->() =~ /^dead/ }, 12), "$name: a job whose provider keeps failing goes dead");
    my $dead_in = time - $d0;
    is($state->(), "dead:$MAX_ATTEMPTS", "$name: ... after crm_sync_max_attempts ($MAX_ATTEMPTS) attempts");
    sleep 0.5;
    my @rows = log_rows($acc);
    is_deeply([map { "$_->{outcome} $_->{http} $_->{attempt}" } @rows],
        [map { "failed 500 $_" } 1 .. $MAX_ATTEMPTS], "$name: ... each logged, and none after");
    my @gaps = map { $rows[ $_ + 1 ]{at} - $rows[$_]{at} } 0 .. $#rows - 1;
    diag(sprintf "%s: dead after %.2f s; gaps between attempts %s s (backoff caps 1, 2, 4 s)", $name, $dead_in,
        join(', ', map { sprintf '%.3f', $_ } @gaps));
    $FIG{'backoff gaps'} = join ', ', map { sprintf '%.2f s', $_ } @gaps;
    ok(!(grep { $gaps[$_] < 0.25 || $gaps[$_] > 2**$_ + 0.5 } 0 .. $#gaps),
        "$name: ... the backoff between them at least 250 ms and at most 1 s, 2 s, 4 s (plus a tick)");
    is_deeply($t->get('/crm/klaviyo/status', token => $tok)->{json}{counts},
        { pending => 0, ok => 0, failed => 0, dead => 1 }, "$name: the status counts one dead job");
    ok(!(grep { ($_->{profile}{external_id} // '') eq $lead->{id} } @{ $mock->state->{klaviyo}{events} }),
        "$name: nothing reached Klaviyo");
    $mock->mode('ok');
    my $r = $t->post_json('/crm/klaviyo/retry', undef, token => $tok);
    is($r->{status}, 202, "$name: POST /crm/klaviyo/retry: 202");
    is($r->{json}{requeued}, 1, "$name: ... the dead job requeued");
    ok(wait_for(sub { $state->() eq 'ok:1' }, 5), "$name: ... and delivered at its first attempt since");
    check_klaviyo($name, $acc, $lead->{id});
}
quiet('max attempts');


# --- revoked Klaviyo credentials, then a new connect -----------------------------------

{
    my $name = 'revoked key';
    my ($acc, $tok) = account_with('klaviyo');
    $mock->mode('401');
    my $first = $t->create_lead($tok, name => 'Revoked One', email => 'revoked1@example.com');
    ok(wait_for(sub { q1("SELECT status FROM crm.integrations WHERE account_id = '$acc'") eq 'error' }, 5),
        "$name: a 401 puts the integration in error");
    my $st = $t->get('/crm/klaviyo/status', token => $tok)->{json};
    is($st->{status}, 'error', "$name: GET /crm/klaviyo/status says error");
    like($st->{last_error} // '', qr/refused the credentials \(HTTP 401\)/,
        "$name: ... with the refusal as last_error");
    my @rows = log_rows($acc);
    is_deeply([map { "$_->{outcome} $_->{http}" } @rows], ['refused 401'], "$name: the attempt is logged as refused");
    is(q1("SELECT state || ':' || attempts FROM crm.sync_jobs WHERE lead_id = '$first->{id}'"), 'pending:0',
        "$name: the job waits, no attempt counted");
    # new events of the account still queue, and wait
    my $second = $t->create_lead($tok, name => 'Revoked Two', email => 'revoked2@example.com');
    is($t->put_json("/leads/$first->{id}", { company => 'Later Co' }, token => $tok)->{status}, 200,
        "$name: the first lead updated meanwhile");
    $mock->mode('ok');
    sleep 1;
    is_deeply(job_states($acc), { pending => 3 }, "$name: new events queue while in error, and wait");
    is(scalar(log_rows($acc)), 1,
        "$name: ... with no call made for them (the provider answers again, but the key was refused)");
    is(q1("SELECT count(*) FROM crm.sync_queue WHERE account_id = '$acc' AND lease_until > now()"), 0,
        "$name: ... and no lease taken");
    my $c0 = time;
    my $r = connect_crm($tok, 'klaviyo');
    is($r->{status}, 200, "$name: POST /crm/connect again: 200");
    $st = $t->get('/crm/klaviyo/status', token => $tok)->{json};
    is($st->{status}, 'connected', "$name: the status is connected");
    is($st->{last_error}, undef, "$name: ... last_error cleared");
    ok(wait_for(sub { waiting_jobs($acc) == 0 }, 5), "$name: the waiting jobs drain");
    diag(sprintf "%s: drained %.2f s after the connect", $name, time - $c0);
    check_klaviyo($name, $acc, $first->{id}, $second->{id});
}
quiet('revoked key');


# --- isolation: one merchant's slow Creatio, another's fast one -----------------------
#
# Merchant A's Creatio is a second stand-in that answers every call after
# 250 ms; merchant B's the usual one.  A's lead and eight updates are
# lined up (its integration paused while they are made, as a Retry-After
# would leave it) so that one lease sends them one after another, for
# seconds.  B makes a lead while A is paused (the baseline), then another
# while A's lease is busy: the second is delivered as promptly as the
# first, and no lead reaches the other's CRM.  (One lease a merchant at a
# time: leads of a Creatio integration side by side are the subject of
# their own section below.)

{
    my $name = 'isolation';
    my $slow = MockCrm->new(dir => $t->dir, delay_ms => 250);
    my ($acc_a, $tok_a) = account_with('creatio', $slow);
    my ($acc_b, $tok_b) = account_with('creatio', $mock);
    q1("UPDATE crm.integrations SET paused_until = now() + interval '1 hour' WHERE account_id = '$acc_a'");
    my $la = $t->create_lead($tok_a, name => 'Slow Merchant Lead', email => 'iso-a@example.com')->{id};
    for my $i (1 .. 8) {
        my $r = $t->put_json("/leads/$la", { company => "Slow Co $i" }, token => $tok_a);
        die "update: $r->{status}" unless $r->{status} == 200;
    }
    # B's lead: the time from its creation until its job is sent
    my @lb;
    my $b_round = sub {
        my $b0 = time;
        push @lb, $t->create_lead($tok_b, name => 'Fast Merchant Lead ' . (@lb + 1),
            email => 'iso-b' . (@lb + 1) . '@example.com')->{id};
        return wait_for(sub { waiting_jobs($acc_b) == 0 }, 10, 0.02) ? time - $b0 : 99;
    };
    my $b_alone = $b_round->();
    q1("UPDATE crm.integrations SET paused_until = NULL WHERE account_id = '$acc_a'");
    my $a0 = time;
    ok(wait_for(sub { q1("SELECT count(*) FROM crm.sync_queue WHERE account_id = '$acc_a' AND lease_until > now()") },
        5, 0.02), "$name: A's jobs are being sent");
    sleep 1;    # B's calls a second are back to a full burst
    my $b_busy = $b_round->();
    my $a_left = waiting_jobs($acc_a);
    ok(wait_for(sub { waiting_jobs($acc_a) == 0 }, 15), "$name: A's jobs sent too");
    my $a_took = time - $a0;
    diag(sprintf "%s: B's lead sent in %.3f s alone, in %.3f s while A was busy (A still had %d of 9 waiting);"
        . " A's took %.2f s", $name, $b_alone, $b_busy, $a_left, $a_took);
    $FIG{'isolation: fast merchant alone / next to a slow one'} = sprintf '%.2f s / %.2f s (slow one: %.2f s)',
        $b_alone, $b_busy, $a_took;
    ok($a_left > 0, "$name: A was still busy when B's second lead was sent");
    cmp_ok($b_busy, '<', 1, "$name: the fast merchant's job is delivered promptly next to the slow one (under 1 s)");
    cmp_ok($b_busy, q{<}, $b_alone + 0.3, "$name: ... about as fast as with the slow one idle (0.3 s to spare)");
    is_deeply(job_states($acc_a), { ok => 9 }, "$name: A's jobs all ok");
    is_deeply(job_states($acc_b), { ok => 2 }, "$name: B's jobs all ok");
    my $sa = $slow->state->{creatio};
    my $sb = $mock->state->{creatio};
    is_deeply([map { "$_->{Id} $_->{Email}" } @{ $sa->{contacts} }], ["$la iso-a\@example.com"],
        "$name: A's Creatio has A's contact, and only it");
    is_deeply([map { $_->{Title} } grep { $_->{ContactId} eq $la } @{ $sa->{activities} }],
        ['Lead Created', ('Lead Updated') x 8], "$name: ... A's activities, in order");
    is(scalar(@{ $sa->{activities} }), 9, "$name: ... and no other");
    my %mine = map { $_ => 1 } @lb;
    is_deeply([sort map { $_->{Email} } grep { $mine{ $_->{Id} } } @{ $sb->{contacts} }],
        ['iso-b1@example.com', 'iso-b2@example.com'], "$name: B's Creatio has B's contacts");
    is(scalar(grep { $mine{ $_->{ContactId} } } @{ $sb->{activities} }), 2, "$name: ... and B's activities");
    ok(!(grep { $_->{Id} eq $la || ($_->{Email} // '') eq 'iso-a@example.com' } @{ $sb->{contacts} }),
        "$name: none of A's contacts in B's Creatio");
    ok(!(grep { $_->{ContactId} eq $la } @{ $sb->{activities} }), "$name: ... nor an activity of A's");
    $slow->stop;
}
quiet('isolation');


# --- crm_sync_concurrency: the leases one integration holds at once ---------------------
#
# Sixteen leads of one Klaviyo integration due at once (lined up by a
# pause, as above), calls slowed to 150 ms: no more than
# crm_sync_concurrency (default 4) of them may be leased at any moment,
# whatever the workers' free room.

{
    my $name = 'concurrency cap';
    my ($acc, $tok) = account_with('klaviyo');
    $mock->mode('slow', delay_ms => 150);
    q1("UPDATE crm.integrations SET paused_until = now() + interval '1 hour' WHERE account_id = '$acc'");
    my @leads = map { $t->create_lead($tok, name => "Capped $_", email => "cap$_\@example.com")->{id} } 1 .. 16;
    q1("UPDATE crm.integrations SET paused_until = NULL WHERE account_id = '$acc'");
    my $max = 0;
    ok(wait_for(sub {
        my ($leases, $waiting) = split /\|/, q1("SELECT"
            . " (SELECT count(*) FROM crm.sync_queue WHERE account_id = '$acc' AND lease_until > now()),"
            . " (SELECT count(*) FROM crm.sync_jobs WHERE account_id = '$acc' AND state IN ('pending', 'failed'))");
        $max = $leases if $leases > $max;
        $waiting == 0 }, 15, 0.02), "$name: every job sent");
    $mock->mode('ok');
    diag("$name: at most $max of the integration's 16 leads leased at once");
    $FIG{'concurrency cap: most leases held by one integration'} = "$max (crm_sync_concurrency $CONCURRENCY)";
    cmp_ok($max, '<=', $CONCURRENCY,
        "$name: one integration never holds more leases than crm_sync_concurrency ($CONCURRENCY)");
    check_klaviyo($name, $acc, @leads);
}
quiet('concurrency cap');


# --- several leads of one Creatio integration at once -----------------------------------
#
# Leases of one integration that start together, with no session kept
# yet, each log in to Creatio; the stand-in, like a provider that keeps
# one session per user, forgets a session when the user logs in again.
# Four leads due at once must still all be delivered, with the
# integration connected.  Should it go to error anyway, it is
# disconnected at the end (its jobs cancelled) so that the sections after
# this one start from a drained queue.

my $race_acc;
{
    my $name = 'creatio side by side';
    my ($acc, $tok) = account_with('creatio', $mock);
    $race_acc = $acc;
    q1("UPDATE crm.integrations SET paused_until = now() + interval '1 hour' WHERE account_id = '$acc'");
    my @leads = map { $t->create_lead($tok, name => "Side $_", email => "side$_\@example.com")->{id} } 1 .. 4;
    q1("UPDATE crm.integrations SET paused_until = NULL WHERE account_id = '$acc'");
    # a lease whose session the stand-in dropped fails and waits out its
    # backoff (full jitter, up to 1, 2, 4, 8 s for attempts 1 to 4): time
    # for a few such retries before the jobs are counted
    wait_for(sub { waiting_jobs($acc) == 0
        || q1("SELECT status FROM crm.integrations WHERE account_id = '$acc'") ne 'connected' }, 30);
    sleep 0.3;
    my $st = $t->get('/crm/creatio/status', token => $tok)->{json};
    is($st->{status}, 'connected', "$name: four leads due at once: the integration stays connected")
        or diag("last_error: " . ($st->{last_error} // 'null') . "\n" . join "\n",
            map { "$_->{outcome} $_->{http} $_->{error}" } log_rows($acc));
    is_deeply(job_states($acc), { ok => 4 }, "$name: ... and every job is delivered");
    my $sb = $mock->state->{creatio};
    my %mine = map { $_ => 1 } @leads;
    is(scalar(grep { $mine{ $_->{ContactId} } } @{ $sb->{activities} }), job_states($acc)->{ok} // 0,
        "$name: one activity per delivered job");
    if (waiting_jobs($acc)) {
        is($t->del('/crm/creatio/disconnect', token => $tok)->{status}, 200,
            "$name: (cleanup) the integration in error disconnected, its jobs cancelled");
    }
}
quiet('creatio side by side');


# --- kill -9 of the workers holding leases -------------------------------------------
#
# Calls are slowed (150 ms each) so that leases are out when the workers
# talking to the provider are killed.  Their leases are nobody's now: they
# run out (18.4 s) and are claimed again; what the dead worker had sent
# but not recorded is sent again, with the same ids.

{
    my $name = 'kill -9';
    my ($acc, $tok) = account_with('klaviyo');
    $mock->mode('slow', delay_ms => 150);
    my @leads = lead_burst($tok, 8, 'kill');
    ok(wait_for(sub { q1("SELECT count(*) FROM crm.sync_queue WHERE account_id = '$acc' AND lease_until > now()")
        >= 2 }, 5, 0.02), "$name: leases out");
    my @victims = workers_connected_to($mock->port);
    @victims = $t->worker_pids unless @victims;
    $t->allow_log(qr/worker process (?:${\ join '|', @victims}) exited on signal 9/);
    my $k0 = time;
    is(kill('KILL', @victims), scalar(@victims), "$name: workers killed (" . scalar(@victims) . ')');
    my $leases = leases_of($acc);
    ok(wait_for(sub { my @w = $t->worker_pids; @w == 2 && !grep { my $w = $_; grep { $_ == $w } @victims } @w }),
        "$name: ... and replaced");
    $mock->mode('ok');
    # a live worker's lease ends within a few seconds here (at most four
    # calls, paced at 5 a second); one still out with the same token after
    # 4.5 s was a dead worker's
    sleep 4.5;
    my $now = leases_of($acc);
    my @orphans = grep { $now->{$_} && $now->{$_}[0] eq $leases->{$_}[0] } keys %$leases;
    ok(@orphans >= 1, "$name: the dead workers left leases behind (" . scalar(@orphans) . ')');
    my %held = map {
        $_ => [ q1("SELECT id FROM crm.sync_jobs WHERE lead_id = '$_' AND state IN ('pending', 'failed')") ]
    } @orphans;
    ok(wait_for(sub { waiting_jobs($acc) == 0 }, $LEASE_S + 12, 0.2), "$name: every job sent in the end");
    my $took = time - $k0;
    diag(sprintf "%s: %d worker(s) killed, %d lease(s) orphaned; all sent %.2f s after the kill (lease %.1f s)",
        $name, scalar(@victims), scalar(@orphans), $took, $LEASE_S);
    my @early;
    for my $lead (@orphans) {
        for my $job (@{ $held{$lead} }) {
            my $done = q1("SELECT extract(epoch FROM finished_at) FROM crm.sync_jobs WHERE id = $job");
            push @early, "job $job done at $done, its lease ran to $leases->{$lead}[1]"
                if $done eq '' || $done < $leases->{$lead}[1] - 0.05;
        }
    }
    is_deeply(\@early, [], "$name: an orphaned lead's jobs are sent again only once its lease ran out");
    my $repeats = check_klaviyo($name, $acc, @leads);
    diag("$name: $repeats event(s) sent again with the same id");
    $FIG{'kill -9'} = sprintf '%d orphaned, drained in %.1f s, %d repeats', scalar(@orphans), $took, $repeats;
}
quiet('kill -9');


# --- nginx -s reload during a sync load ------------------------------------------------

{
    my $name = 'reload';
    my ($acc, $tok) = account_with('klaviyo');
    $mock->mode('slow', delay_ms => 150);
    my @leads = lead_burst($tok, 8, 'reload');
    ok(wait_for(sub { q1("SELECT count(*) FROM crm.sync_queue WHERE account_id = '$acc' AND lease_until > now()")
        >= 2 }, 5, 0.02), "$name: leases out");
    my $r0 = time;
    ok($t->reload, "$name: nginx -s reload; the old workers finish and exit");
    my $reloaded = time - $r0;
    $mock->mode('ok');
    # the old workers record what they sent: nothing waits for a lease to run out
    ok(wait_for(sub { waiting_jobs($acc) == 0 }, 8), "$name: every job sent, well before a lease could run out");
    my $drained = time - $r0;
    diag(sprintf "%s: the reload took %.2f s; all sent %.2f s after it began", $name, $reloaded, $drained);
    my $repeats = check_klaviyo($name, $acc, @leads);
    is($repeats, 0, "$name: no event sent twice");
    $FIG{reload} = sprintf '%.1f s to reload, %.1f s to drain, %d repeats', $reloaded, $drained, $repeats;
}
quiet('reload');


# --- PostgreSQL restarted during a sync load -------------------------------------------
#
# What is sent while the database is away cannot be recorded: those leases
# run out and their jobs go again (same ids).

{
    my $name = 'PostgreSQL restart';
    my ($acc, $tok) = account_with('klaviyo');
    $mock->mode('slow', delay_ms => 150);
    my @leads = lead_burst($tok, 8, 'pg');
    ok(wait_for(sub { q1("SELECT count(*) FROM crm.sync_queue WHERE account_id = '$acc' AND lease_until > now()")
        >= 2 }, 5, 0.02), "$name: leases out");
    my $p0 = time;
    $t->stop_db;
    sleep 1;
    $t->start_db;
    my $down = time - $p0;
    $mock->mode('ok');
    ok(wait_for(sub { waiting_jobs($acc) == 0 }, $LEASE_S + 15, 0.2), "$name: every job sent in the end");
    my $took = time - $p0;
    my $unrecorded = () = $t->error_log =~ /recording (?:a )?sync results? failed|sync results? could not be recorded/g;
    diag(sprintf "%s: down %.2f s; %d result(s) could not be recorded; all sent %.2f s after the stop",
        $name, $down, $unrecorded, $took);
    my $repeats = check_klaviyo($name, $acc, @leads);
    diag("$name: $repeats event(s) sent again with the same id");
    $FIG{'PostgreSQL restart'} = sprintf '%d unrecorded, drained in %.1f s, %d repeats', $unrecorded, $took, $repeats;
    $t->create_lead($tok, name => 'After Restart', email => 'afterpg@example.com');
    ok(wait_for(sub { waiting_jobs($acc) == 0 }, 3), "$name: a new lead's job is sent at once afterwards");
}


# --- in the end ----------------------------------------------------------------------------

is(all_waiting(), 0, 'no job waits anywhere');
is(q1("SELECT count(*) FROM crm.sync_queue"), 0, 'the queue is empty: no lease left, none stuck');
is(q1("SELECT count(*) FROM crm.sync_jobs WHERE state <> 'ok'"
    . " AND NOT (state = 'cancelled' AND account_id = '$race_acc')"), 0,
    'every job of the file ended ok (but those cancelled by the cleanup above)');
my $m = $t->metrics;
ok(($m->{'crm_sync_jobs_total{provider="klaviyo",outcome="failed"}'} // 0) > 0, 'metrics: failed attempts counted');
diag(join "\n", 'figures:', map { "  $_: $FIG{$_}" } sort keys %FIG);

$t->done;

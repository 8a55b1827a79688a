#!/usr/bin/perl
# The CRM sync end to end, per provider, against the strict stand-ins
# (t/lib/MockCrm.pm): a lead created, updated, moved, installed through
# an affiliate link, converted and deleted reaches the merchant's CRM as
# one contact with its latest fields and one event per change, in order,
# each with its own stable id; every attempt is in the log and the
# status counts come from the queue.  Also: a rolled-back change syncs
# nothing, an account without a CRM makes no jobs, pending updates of one
# lead collapse into one contact upsert, another account's leads never
# reach this CRM, the retry and disconnect endpoints, the metrics, and
# the sync directives' limits under nginx -t.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);
use CrmTest;
use MockCrm;

my $t = CrmTest->new;
my $mock = MockCrm->new(dir => $t->dir);

$t->start_db;
$t->write_config(server_extra => "        location = /metrics { crm_metrics; }\n", conf => {
    crm_klaviyo_url => $mock->url,
    crm_outbound_allow => '127.0.0.0/8',
    crm_outbound_connect_timeout => '1s',
    crm_outbound_timeout => '3s',
    crm_sync_interval => '100ms',
});
$t->start_nginx;

my @KINDS = qw(created updated stage_changed install conversion deleted);
my %NAME = (created => 'Lead Created', updated => 'Lead Updated', stage_changed => 'Lead Stage Changed',
    install => 'App Installed', conversion => 'Order Converted', deleted => 'Lead Deleted');

sub q1 { $t->psql($_[0]) }

# waits until $cond returns true (10 s at most); returns its last value
sub wait_for {
    my ($cond, $secs) = @_;
    my $deadline = time + ($secs // 10);
    my $v;
    while (1) {
        $v = $cond->();
        return $v if $v || time > $deadline;
        sleep 0.1;
    }
}

sub waiting_jobs {
    my ($acc) = @_;
    q1("SELECT count(*) FROM crm.sync_jobs WHERE account_id = '$acc' AND state IN ('pending', 'failed')");
}

sub creds {
    my ($type) = @_;
    return { api_key => $mock->klaviyo_key } if $type eq 'klaviyo';
    return { username => $mock->sf_user, password => $mock->sf_password, security_token => $mock->sf_token }
        if $type eq 'salesforce';
    return { instance_url => $mock->url, username => $mock->creatio_user, password => $mock->creatio_password };
}

sub settings {
    my ($type) = @_;
    return { login_url => $mock->url } if $type eq 'salesforce';
    return {};
}

sub connect_crm {
    my ($tok, $type) = @_;
    my $r = $t->post_json('/crm/connect', { crm_type => $type, credentials => creds($type),
        settings => settings($type) }, token => $tok);
    ok($r->{status} == 201 || $r->{status} == 200, "$type connected") or diag($r->{content});
}

sub link_of {
    my ($tok) = @_;
    my $r = $t->post_json('/affiliate/links', { target_url => 'https://apps.example.com/crm' }, token => $tok);
    die "link: $r->{status} $r->{content}" unless $r->{status} == 201;
    return $r->{json}{affiliate_link_id};
}

# one lead through its whole life; the ids of its jobs' events in order
sub lead_life {
    my ($type, $tok) = @_;
    my $shop = "ada-$type.myshopify.com";
    my $link = link_of($tok);
    my $lead = $t->create_lead($tok, name => 'Ada Lovelace', email => "ada.$type\@example.com",
        phone => '+14155550100', company => 'Analytical Engines', shop_domain => $shop);
    my $r = $t->put_json("/leads/$lead->{id}", { company => 'Analytical Engines Ltd' }, token => $tok);
    is($r->{status}, 200, "$type: lead updated") or diag($r->{content});
    $r = $t->put_json("/leads/$lead->{id}/stage", { stage => 'demo', substage => 'demo_scheduled' },
        token => $tok);
    is($r->{status}, 200, "$type: lead moved") or diag($r->{content});
    $r = $t->callback('/callbacks/install', { shop_domain => $shop, affiliate_link_id => $link });
    ok($r->{json}{created}, "$type: install attributed") or diag($r->{content});
    is($r->{json}{lead_id}, $lead->{id}, "$type: ... to the lead");
    $r = $t->callback('/callbacks/conversion', { order_id => "order-$type", amount_cents => 1999,
        currency => 'USD', affiliate_link_id => $link, shop_domain => $shop });
    is($r->{status}, 200, "$type: conversion") or diag($r->{content});
    $r = $t->del("/leads/$lead->{id}", token => $tok);
    is($r->{status}, 204, "$type: lead deleted") or diag($r->{content});
    return $lead;
}

sub check_log_and_status {
    my ($type, $tok, $lead) = @_;
    my $r = $t->get("/crm/$type/logs?limit=50", token => $tok);
    is($r->{status}, 200, "$type: GET /crm/$type/logs");
    my @sync = grep { ($_->{entity} // '') eq 'lead' } @{ $r->{json}{items} || [] };
    is_deeply([map { $_->{operation} } reverse @sync], \@KINDS,
        "$type: the log has one row per event, newest first");
    is_deeply([grep { $_->{outcome} ne 'ok' || $_->{attempt} != 1 || $_->{entity_id} ne $lead->{id} } @sync], [],
        "$type: ... each ok at the first attempt, for the lead");
    ok(!(grep { !defined $_->{http_status} || $_->{http_status} < 200 || $_->{http_status} > 299 } @sync),
        "$type: ... each with the provider's 2xx");
    $r = $t->get("/crm/$type/status", token => $tok);
    is_deeply($r->{json}{counts}, { pending => 0, ok => 6, failed => 0, dead => 0 },
        "$type: status counts six ok jobs");
    ok($r->{json}{last_sync_at}, "$type: ... and a last_sync_at");
}

# --- Klaviyo -------------------------------------------------------------------------

my ($kacc, $ktok) = $t->member;
$kacc = $kacc->{id};
connect_crm($ktok, 'klaviyo');
my $klead = lead_life('klaviyo', $ktok);
ok(wait_for(sub { waiting_jobs($kacc) == 0 }), 'klaviyo: every job sent');

my $state = $mock->state->{klaviyo};
my @events = grep { $_->{profile}{external_id} eq $klead->{id} } @{ $state->{events} };
is_deeply([map { $_->{metric} } @events], [map { $NAME{$_} } @KINDS], 'klaviyo: the events, in order');
my %ids = map { $_->{unique_id} => 1 } @events;
is(scalar(keys %ids), 6, 'klaviyo: ... each with its own unique_id');
is_deeply([map { $_->{unique_id} } @events],
    [split /\n/, q1("SELECT event_id FROM crm.sync_jobs WHERE lead_id = '$klead->{id}' ORDER BY id")],
    "klaviyo: ... the jobs' event ids");
ok(!(grep { $_->{duplicate} } @events), 'klaviyo: ... none sent twice');
my ($conv) = grep { $_->{metric} eq 'Order Converted' } @events;
is($conv->{value}, 19.99, 'klaviyo: the conversion carries its value');
is($conv->{value_currency}, 'USD', 'klaviyo: ... and currency');
is($events[2]{properties}{stage}, 'demo', 'klaviyo: the stage event carries the new stage');
is($events[0]{properties}{stage}, 'new_account', 'klaviyo: ... the created event the first');
my @profiles = grep { ($_->{external_id} // '') eq $klead->{id} } @{ $state->{profiles} };
is(scalar(@profiles), 1, 'klaviyo: one profile for the lead');
is($profiles[0]{email}, 'ada.klaviyo@example.com', 'klaviyo: ... its email');
is($profiles[0]{phone_number}, '+14155550100', 'klaviyo: ... its phone');
is($profiles[0]{first_name}, 'Ada', 'klaviyo: ... first name');
is($profiles[0]{last_name}, 'Lovelace', 'klaviyo: ... last name');
is($profiles[0]{organization}, 'Analytical Engines Ltd', 'klaviyo: ... the company as updated');
is($profiles[0]{properties}{shop_domain}, 'ada-klaviyo.myshopify.com', 'klaviyo: ... the shop domain');
check_log_and_status('klaviyo', $ktok, $klead);

# --- Salesforce ----------------------------------------------------------------------

my ($sacc, $stok) = $t->member;
$sacc = $sacc->{id};
connect_crm($stok, 'salesforce');
my $calls_before = @{ $mock->requests };
my $slead = lead_life('salesforce', $stok);
ok(wait_for(sub { waiting_jobs($sacc) == 0 }), 'salesforce: every job sent');
my @logins = grep { $_->{path} =~ m{^/services/Soap/} } @{ $mock->requests }[$calls_before .. $#{ $mock->requests }];
ok(@logins >= 1 && @logins <= 2, 'salesforce: the session is kept between leases: '
    . scalar(@logins) . ' login(s) for six jobs, at most one a worker');

$state = $mock->state->{salesforce};
my @leads = grep { ($_->{Email} // '') eq 'ada.salesforce@example.com' } @{ $state->{leads} };
is(scalar(@leads), 1, 'salesforce: one Lead, found again by email');
is($leads[0]{LastName}, 'Lovelace', 'salesforce: ... LastName');
is($leads[0]{FirstName}, 'Ada', 'salesforce: ... FirstName');
is($leads[0]{Company}, 'Analytical Engines Ltd', 'salesforce: ... Company as updated');
is($leads[0]{Website}, 'ada-salesforce.myshopify.com', 'salesforce: ... Website, the shop');
is($leads[0]{Phone}, '+14155550100', 'salesforce: ... Phone');
my @tasks = grep { ($_->{WhoId} // '') eq $leads[0]{Id} } @{ $state->{tasks} };
is_deeply([map { $_->{Subject} } @tasks], [map { $NAME{$_} } @KINDS], 'salesforce: a Task per event, in order');
ok(!(grep { $_->{Status} ne 'Completed' } @tasks), 'salesforce: ... each Completed');
like($tasks[4]{Description} // '', qr/amount 19\.99 USD/, 'salesforce: ... the conversion with its amount');
check_log_and_status('salesforce', $stok, $slead);

# --- Creatio -------------------------------------------------------------------------

my ($cacc, $ctok) = $t->member;
$cacc = $cacc->{id};
connect_crm($ctok, 'creatio');
$calls_before = @{ $mock->requests };
my $clead = lead_life('creatio', $ctok);
ok(wait_for(sub { waiting_jobs($cacc) == 0 }), 'creatio: every job sent');
@logins = grep { $_->{path} =~ m{/AuthService\.svc/Login$} } @{ $mock->requests }[$calls_before .. $#{ $mock->requests }];
# the stand-in keeps one session per user, as a provider may: a worker's
# login can end the other's session, which then logs in again once
ok(@logins >= 1 && @logins <= 3, 'creatio: the session is kept between leases: '
    . scalar(@logins) . ' login(s) for six jobs');

$state = $mock->state->{creatio};
my @contacts = grep { $_->{Id} eq $clead->{id} } @{ $state->{contacts} };
is(scalar(@contacts), 1, "creatio: one Contact, keyed by the lead's id");
is($contacts[0]{Name}, 'Ada Lovelace', 'creatio: ... Name');
is($contacts[0]{Email}, 'ada.creatio@example.com', 'creatio: ... Email');
is($contacts[0]{MobilePhone}, '+14155550100', 'creatio: ... MobilePhone');
my @acts = grep { $_->{ContactId} eq $clead->{id} } @{ $state->{activities} };
is_deeply([map { $_->{Title} } @acts], [map { $NAME{$_} } @KINDS], 'creatio: an Activity per event, in order');
is_deeply([map { $_->{Id} } @acts],
    [split /\n/, q1("SELECT event_id FROM crm.sync_jobs WHERE lead_id = '$clead->{id}' ORDER BY id")],
    "creatio: ... keyed by the events' ids");
check_log_and_status('creatio', $ctok, $clead);

# --- what makes no jobs --------------------------------------------------------------

my ($nacc, $ntok) = $t->member;
$nacc = $nacc->{id};
$t->create_lead($ntok, name => 'Nobody Synced');
is(q1("SELECT count(*) FROM crm.sync_jobs WHERE account_id = '$nacc'"), 0,
    'an account without a CRM makes no jobs');

my $before = q1("SELECT count(*) FROM crm.sync_jobs");
my $lid = $t->create_lead($ktok, name => 'Rolled Back')->{id};
my $after_create = q1("SELECT count(*) FROM crm.sync_jobs");
$t->psql("BEGIN; UPDATE crm.leads SET name = 'Never Seen' WHERE id = '$lid'; ROLLBACK;");
is(q1("SELECT count(*) FROM crm.sync_jobs"), $after_create, 'a rolled-back change makes no job');
is($after_create, $before + 1, '... a committed one makes exactly one');
is(q1("SELECT count(*) FROM crm.sync_jobs WHERE lead_id = '$lid' AND account_id <> '$kacc'"), 0,
    "... for the owner's integration only");
wait_for(sub { waiting_jobs($kacc) == 0 });

# another account's leads never reach this CRM
my %mine = map { $_ => 1 } split /\n/, q1("SELECT id FROM crm.leads WHERE owner_id = '$kacc'");
my @strays = grep { !$mine{ $_->{profile}{external_id} // '' } } @{ $mock->state->{klaviyo}{events} };
is_deeply(\@strays, [], "no other account's lead reached the Klaviyo account");

# --- pending updates collapse into one upsert ---------------------------------------

$t->psql("UPDATE crm.integrations SET paused_until = now() + interval '2 seconds'"
    . " WHERE account_id = '$kacc'");
my $burst = $t->create_lead($ktok, name => 'Burst Lead', email => 'burst@example.com');
for my $i (1 .. 4) {
    $t->put_json("/leads/$burst->{id}", { company => "Company $i" }, token => $ktok);
}
my $seen_before = @{ $mock->requests };
ok(wait_for(sub { waiting_jobs($kacc) == 0 }, 15), 'the paused burst is sent when the pause ends');
my @calls = @{ $mock->requests }[$seen_before .. $#{ $mock->requests }];
my @imports = grep { $_->{path} =~ m{^/api/profile-import} } @calls;
my @evs = grep { $_->{path} =~ m{^/api/events} } @calls;
is(scalar(@imports), 1, 'five pending jobs of one lead: one profile import');
like($imports[0]{body} // '', qr/"organization":"Company 4"/, '... with the latest state');
is(scalar(@evs), 5, '... and each event sent once');

# --- dead jobs, retry, disconnect ---------------------------------------------------

$mock->mode('400', times => 2);
my $doomed = $t->create_lead($ktok, name => 'Doomed Lead', email => 'doomed@example.com');
ok(wait_for(sub { q1("SELECT state FROM crm.sync_jobs WHERE lead_id = '$doomed->{id}'") eq 'dead' }),
    'a 4xx refusal of the data makes the job dead at once');
my $log = $t->get('/crm/klaviyo/logs?limit=1', token => $ktok)->{json}{items}[0];
is($log->{outcome}, 'refused', '... logged as refused');
is($log->{http_status}, 400, '... with the status');
like($log->{error} // '', qr/refused the data \(HTTP 400\)/, "... and the provider's words");
$mock->mode('ok');
my $r = $t->post_json('/crm/klaviyo/retry', undef, token => $ktok);
is($r->{status}, 202, 'POST /crm/klaviyo/retry: 202');
is($r->{json}{requeued}, 1, '... one job requeued');
ok(wait_for(sub { q1("SELECT state FROM crm.sync_jobs WHERE lead_id = '$doomed->{id}'") eq 'ok' }),
    '... and then delivered');
is($t->post_json('/crm/salesforce/retry', undef, token => $ktok)->{status}, 404,
    'retry of a type not connected: 404');
is($t->post_json('/crm/hubspot/retry', undef, token => $ktok)->{status}, 404, 'retry of an unknown type: 404');

$t->psql("UPDATE crm.integrations SET paused_until = now() + interval '1 hour'"
    . " WHERE account_id = '$sacc'");
my $orphan = $t->create_lead($stok, name => 'Never Sent', email => 'never@example.com');
is($t->del('/crm/salesforce/disconnect', token => $stok)->{status}, 200, 'disconnect');
is(q1("SELECT state FROM crm.sync_jobs WHERE lead_id = '$orphan->{id}'"), 'cancelled',
    '... cancels the pending job');
is(q1("SELECT count(*) FROM crm.sync_queue WHERE account_id = '$sacc'"), 0, '... and empties its queue');
connect_crm($stok, 'salesforce');
sleep 0.5;
is(q1("SELECT state FROM crm.sync_jobs WHERE lead_id = '$orphan->{id}'"), 'cancelled',
    '... and a later connect does not replay it');

# --- metrics -------------------------------------------------------------------------

my $m = $t->metrics;
ok(($m->{'crm_sync_jobs_total{provider="klaviyo",outcome="ok"}'} // 0) >= 6 + 1 + 5 + 1,
    'metrics: klaviyo jobs ok counted');
ok(($m->{'crm_sync_jobs_total{provider="klaviyo",outcome="dead"}'} // 0) >= 1, 'metrics: ... a dead one');
ok(($m->{'crm_sync_jobs_total{provider="creatio",outcome="ok"}'} // 0) >= 6, 'metrics: creatio jobs ok');
ok(defined wait_for(sub { $t->metrics->{crm_sync_queue_due} }, 8), 'metrics: the queue depth is sampled');

# --- the directives' limits ----------------------------------------------------------

for my $bad (['crm_sync_leases', 1025], ['crm_sync_max_attempts', 0], ['crm_sync_interval', 0],
    ['crm_sync_concurrency', 0], ['crm_sync_rate', 0], ['crm_outbound_host_connections', 0])
{
    my $chk = CrmTest->new->allow_log(qr/\Q"$bad->[0]"\E must be/);
    $chk->write_config(conf => { $bad->[0] => $bad->[1] });
    my ($ok, $out) = $chk->nginx_test_config;
    ok(!$ok, "nginx -t refuses $bad->[0] $bad->[1]");
    like($out, qr/"\Q$bad->[0]\E" must be/, '... naming it');
}

{
    my $chk = CrmTest->new->allow_log(qr/unknown thread pool "crm_nowhere"/);
    $chk->write_config(conf => { crm_sync_thread_pool => 'crm_nowhere' });
    my ($ok, $out) = $chk->nginx_test_config;
    ok(!$ok, 'nginx -t refuses crm_sync_thread_pool naming no declared pool');
    like($out, qr/unknown thread pool "crm_nowhere"/, '... naming the pool');
    $chk->write_config(main_extra => 'thread_pool crm_sync threads=1;',
        conf => { crm_sync_thread_pool => 'crm_sync' });
    ($ok, $out) = $chk->nginx_test_config;
    ok($ok, '... and takes a declared one') or diag($out);
}

$t->done;

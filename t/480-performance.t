#!/usr/bin/perl
# Performance views: GET /performance/me, /performance/users/{id},
# /performance/leaderboard and /leads/{id}/compatibility, and the
# substages' "outcome" in GET /pipeline/stages.
#
# A fixture with known numbers over several UTC days and five accounts
# (members A, B, C with events, member E with none until the end, and an
# admin): clicks (with HEAD requests and bot user agents, which do not
# count), installs, conversions with their commissions, a payout (which
# is no commission), leads created, moved into won / lost / churned
# substages (and from one outcome to another), deleted, with values in
# USD and in other currencies.
#
# Today's events go through the real API (redirects, signed callbacks,
# POST/PUT/DELETE /leads).  Events of past days are written straight into
# the base tables with explicit past timestamps: crm.clicks rows with a
# past clicked_at, crm.leads rows with a past created_at (and UPDATEs of
# stage/substage/score/outcome/updated_at for past moves, deleted_at for
# past deletions), crm.attributions / crm.conversions /
# crm.wallet_transactions rows with a past created_at.  The schema's
# triggers (schema/009-webhooks-performance.sql) turn those rows into
# counters exactly as they do for the rows live events write, so the
# past days count as if the events had happened then.
#
# Every expected figure comes from a model the test keeps while it makes
# the events (a ledger of per-account, per-UTC-day counts, and the live
# leads with their stage, score, value and currency), and a few are also
# written out literally to check the model.  Every figure is checked
# before and after SELECT crm.stats_compact(1000000) folds the pending
# deltas into the rollups: reads are exact either way.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use B ();
use JSON::PP;
use POSIX qw(strftime floor);
use Test::More;
use Time::HiRes qw(time sleep);
use CrmTest;

# The events of "today" must all fall on one UTC day: a run that would
# straddle midnight waits for the new day first.
{
    my $to_midnight = 86400 - (int(time) % 86400);
    if ($to_midnight < 200) {
        diag("waiting ${to_midnight}s for the UTC day to change");
        sleep($to_midnight + 2);
    }
}

my $t = CrmTest->new;
$t->start_db;
$t->write_config($t->edge_config);
$t->start_nginx;

my $NIL = '00000000-0000-4000-8000-000000000000';
my $P = $t->load_pipeline;
my @STAGES = map { $_->{stage} } @$P;
my %POS = map { $P->[$_]{stage} => $_ } 0 .. $#$P;
my %SCORE;
for my $st (@$P) {
    $SCORE{"$st->{stage}/$_->{status}"} = $_->{score} for @{ $st->{substages} };
}
my ($FIRST, $FSUB) = ($P->[0]{stage}, $P->[0]{substages}[0]{status});

# the shipped pipeline's outcomes (the contract, "Performance")
my %OUTCOME = ('closed/won' => 'won', 'closed/lost' => 'lost',
    'closed/no_decision' => 'lost', 'closed/churned' => 'churned');

sub esc { CrmTest::uri_escape($_[0]) }
sub q1 { scalar $t->psql($_[0]) }

# --- days -------------------------------------------------------------------------------

my $NOW = int time;
sub day_ago { strftime('%Y-%m-%d', gmtime($NOW - $_[0] * 86400)) }
my $T = day_ago(0);
is(q1("SELECT to_char((now() AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')"), $T,
    "the database's UTC day is the test's ($T)");
my %D = map { $_ => day_ago($_) } (1, 2, 3, 4, 10, 29, 30, 40, 100, 200, 365, 366);

# --- accounts and links -----------------------------------------------------------------

my ($ADM, $ADM_TOK) = $t->admin;
my ($A, $A_TOK) = $t->member(full_name => 'Alice Perf');
my ($BB, $B_TOK) = $t->member(full_name => 'Bob Perf');
my ($C, $C_TOK) = $t->member(full_name => 'Carol Perf');
my ($E, $E_TOK) = $t->member(full_name => 'Erin Idle');
my %ACC = map { $_->{id} => $_ } ($ADM, $A, $BB, $C, $E);
my @ALL = map { $_->{id} } ($ADM, $A, $BB, $C, $E);

my %LINK;     # id => {owner, install, bps}
sub make_link {
    my ($acc, $tok, $install, $bps) = @_;
    my $r = $t->post_json('/affiliate/links', { target_url => 'https://apps.example.com/crm',
        commission => { install_cents => $install, conversion_bps => $bps } }, token => $tok);
    die "link: $r->{status} $r->{content}" unless $r->{status} == 201;
    my $id = $r->{json}{affiliate_link_id};
    $LINK{$id} = { owner => $acc->{id}, install => $install, bps => $bps };
    return $id;
}
my $LA1 = make_link($A, $A_TOK, 500, 1000);
my $LA2 = make_link($A, $A_TOK, 300, 2000);
my $LB1 = make_link($BB, $B_TOK, 500, 1000);
my $LC1 = make_link($C, $C_TOK, 250, 1000);

# --- the model --------------------------------------------------------------------------

my %EV;       # account => day => metric => n
my %LEAD;     # id => {owner, stage, sub, score, value, cur, deleted}

sub ev { my ($acc, $day, $m, $n) = @_; $EV{$acc}{$day}{$m} += $n // 1 }

sub model_add_lead {
    my ($id, $owner, $stage, $sub, $value, $cur, $day) = @_;
    die "lead $id twice" if $LEAD{$id};
    $LEAD{$id} = { owner => $owner, stage => $stage, sub => $sub,
        score => $SCORE{"$stage/$sub"}, value => $value, cur => $cur, deleted => 0 };
    ev($owner, $day, 'created');
    my $o = $OUTCOME{"$stage/$sub"};
    ev($owner, $day, $o) if $o;
}

sub model_move {
    my ($id, $stage, $sub, $day) = @_;
    my $l = $LEAD{$id};
    my $old = $OUTCOME{"$l->{stage}/$l->{sub}"};
    my $new = $OUTCOME{"$stage/$sub"};
    ev($l->{owner}, $day, $new) if defined $new && (!defined $old || $old ne $new);
    @$l{qw(stage sub score)} = ($stage, $sub, $SCORE{"$stage/$sub"});
}

sub round_to { my ($x, $n) = @_; return 0 + sprintf("%.${n}f", $x) }
sub n6 { defined $_[0] && !ref $_[0] ? sprintf('%.6f', $_[0]) : $_[0] }

sub range_sum {
    my ($acc, $from, $to, $m) = @_;
    my $n = 0;
    for my $day (keys %{ $EV{$acc} || {} }) {
        $n += $EV{$acc}{$day}{$m} // 0 if $day ge $from && $day le $to;
    }
    return $n;
}

# the summary the contract gives for an account and a range, with the
# rates and the average as '%.6f' strings (see norm())
sub expect {
    my ($acc, $from, $to) = @_;
    my @live = grep { $_->{owner} eq $acc && !$_->{deleted} } values %LEAD;
    my %by = map { $_ => 0 } @STAGES;
    $by{ $_->{stage} }++ for @live;
    my ($score, $value) = (0, 0);
    for (@live) {
        $score += $_->{score};
        $value += $_->{value} if $_->{cur} eq 'USD' && !$OUTCOME{"$_->{stage}/$_->{sub}"};
    }
    my %s = map { $_ => range_sum($acc, $from, $to, $_) }
        qw(created won lost churned clicks installs conversions commission);
    return {
        account_id => $acc, from => $from, to => $to, currency => 'USD',
        leads => { total => scalar @live, created => $s{created}, by_stage => \%by },
        pipeline_value_cents => $value,
        average_score => @live ? n6(round_to($score / @live, 2)) : undef,
        won => $s{won}, lost => $s{lost}, churned => $s{churned},
        win_rate => $s{won} + $s{lost} ? n6(round_to($s{won} / ($s{won} + $s{lost}), 4)) : undef,
        clicks => $s{clicks}, installs => $s{installs}, conversions => $s{conversions},
        click_to_install_rate => $s{clicks} ? n6(round_to($s{installs} / $s{clicks}, 4)) : undef,
        commission_cents => $s{commission},
    };
}

sub norm {
    my ($j) = @_;
    return $j unless ref $j eq 'HASH';
    my %c = %$j;
    $c{$_} = n6($c{$_}) for grep { exists $c{$_} } qw(average_score win_rate click_to_install_rate);
    return \%c;
}

# --- the JSON types, read from the body afresh ------------------------------------------

my $JS = JSON::PP->new->utf8;

sub jint {
    my ($v) = @_;
    return 0 unless defined $v && !ref $v;
    my $f = B::svref_2object(\$v)->FLAGS;
    return !($f & B::SVp_POK) && ($f & B::SVp_IOK) ? 1 : 0;
}

sub jnum {
    my ($v) = @_;
    return 0 unless defined $v && !ref $v;
    my $f = B::svref_2object(\$v)->FLAGS;
    return !($f & B::SVp_POK) && ($f & (B::SVp_IOK | B::SVp_NOK)) ? 1 : 0;
}

sub jstr { my ($v) = @_; return defined $v && !ref $v && !jnum($v) }

sub summary_shape {
    my ($content) = @_;
    my $j = eval { $JS->decode($content) };
    return ('not JSON') unless ref $j eq 'HASH';
    my @why;
    my @keys = qw(account_id from to currency leads pipeline_value_cents average_score won lost
        churned win_rate clicks installs conversions click_to_install_rate commission_cents);
    my %k = map { $_ => 1 } @keys;
    push @why, "no '$_'" for grep { !exists $j->{$_} } @keys;
    push @why, "unexpected '$_'" for grep { !$k{$_} } sort keys %$j;
    push @why, "$_ not an integer" for grep { !jint($j->{$_}) }
        qw(pipeline_value_cents won lost churned clicks installs conversions commission_cents);
    push @why, "$_ neither null nor a number" for grep { defined $j->{$_} && !jnum($j->{$_}) }
        qw(average_score win_rate click_to_install_rate);
    push @why, "$_ not a date" for grep { !jstr($j->{$_}) || $j->{$_} !~ /^\d{4}-\d\d-\d\d\z/ } qw(from to);
    push @why, 'account_id not a UUID' unless is_uuid($j->{account_id});
    my $l = $j->{leads};
    if (ref $l ne 'HASH') {
        push @why, 'leads not an object';
    } else {
        push @why, "leads.$_ not an integer" for grep { !jint($l->{$_}) } qw(total created);
        my $by = $l->{by_stage};
        if (ref $by ne 'HASH') {
            push @why, 'leads.by_stage not an object';
        } else {
            push @why, "by_stage.$_ not an integer" for grep { !jint($by->{$_}) } sort keys %$by;
        }
        my %lk = map { $_ => 1 } qw(total created by_stage);
        push @why, "unexpected leads.$_" for grep { !$lk{$_} } sort keys %$l;
    }
    return @why;
}

# GET a summary and compare it with the model
sub summary_is {
    my ($path, $tok, $acc, $from, $to, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $r = $t->get($path, token => $tok);
    my $ok = is_json_response($r, 200, "$name: 200");
    my @why = $r->{status} == 200 ? summary_shape($r->{content}) : ("status $r->{status}");
    ok(!@why, "$name: the summary's members and types") or diag(join('; ', @why) . "\n  $r->{content}");
    is_deeply(norm($r->{json}), expect($acc, $from, $to), "$name: every figure")
        or diag("got: $r->{content}");
    return $r->{json};
}

sub perf_path {
    my (%q) = @_;
    my $base = delete $q{base} // '/performance/me';
    my @p = map { "$_=" . esc($q{$_}) } sort keys %q;
    return @p ? "$base?" . join('&', @p) : $base;
}

# --- GET /pipeline/stages shows each substage's outcome ---------------------------------

{
    my $r = $t->get('/pipeline/stages', token => $A_TOK);
    my $j = is_json_response($r, 200, 'GET /pipeline/stages: 200') || [];
    my (@bad, $n);
    for my $st (@$j) {
        for my $sub (@{ $st->{substages} || [] }) {
            $n++;
            my $key = "$st->{stage}/$sub->{status}";
            my $want = $OUTCOME{$key};
            push @bad, "$key: " . (exists $sub->{outcome} ? $sub->{outcome} // 'null' : 'no outcome member')
                . ', want ' . ($want // 'null')
                unless exists $sub->{outcome} && ($sub->{outcome} // '') eq ($want // '');
        }
    }
    ok($n && !@bad, "GET /pipeline/stages: outcome won/lost/lost/churned on closed's won/lost/no_decision/churned, "
        . "null on every other substage ($n substages)") or diag(join "\n", @bad);
}

# --- past days, written to the base tables ------------------------------------------------
#
# The triggers count these rows as they count live ones: a lead's
# creation on the UTC day of created_at, an outcome it enters on the day
# of updated_at, a click on the day of clicked_at (neither HEAD nor bot),
# an attribution or conversion on its created_at, a commission on the day
# of its ledger row.

sub ts { my ($day, $time) = @_; return "'$day $time+00'" }

sub past_lead {
    my ($owner, $day, $time, $stage, $sub, $value, $cur) = @_;
    my $o = $OUTCOME{"$stage/$sub"};
    my $id = q1("INSERT INTO crm.leads (owner_id, name, stage, substage, score, value_cents, currency,"
        . " outcome, created_at, updated_at) VALUES ('$owner', 'Past $stage $sub $day', '$stage', '$sub', "
        . $SCORE{"$stage/$sub"} . ", $value, '$cur', " . ($o ? "'$o'" : 'NULL') . ', '
        . ts($day, $time) . ', ' . ts($day, $time) . ') RETURNING id');
    model_add_lead($id, $owner, $stage, $sub, $value, $cur, $day);
    return $id;
}

sub past_move {
    my ($id, $day, $time, $stage, $sub) = @_;
    my $o = $OUTCOME{"$stage/$sub"};
    $t->psql("UPDATE crm.leads SET stage = '$stage', substage = '$sub', score = " . $SCORE{"$stage/$sub"}
        . ', outcome = ' . ($o ? "'$o'" : 'NULL') . ', version = version + 1, updated_at = '
        . ts($day, $time) . " WHERE id = '$id'");
    model_move($id, $stage, $sub, $day);
}

sub past_delete {
    my ($id, $day, $time) = @_;
    $t->psql('UPDATE crm.leads SET deleted_at = ' . ts($day, $time) . ', updated_at = '
        . ts($day, $time) . " WHERE id = '$id'");
    $LEAD{$id}{deleted} = 1;
}

my $CLICK_SEQ = 0;
sub past_clicks {
    my ($link, $day, $time, $n, %o) = @_;
    my $head = $o{head} ? 'true' : 'false';
    my $bot = $o{bot} ? 'true' : 'false';
    my $seq = ++$CLICK_SEQ;
    $t->psql('SELECT crm.click_partition_ensure(' . ts($day, $time) . ')');
    $t->psql("INSERT INTO crm.clicks (click_id, link_id, clicked_at, ip, user_agent, referer, is_bot, is_head)"
        . " SELECT '$link' || 'p$seq' || g, '$link', " . ts($day, $time) . ", '127.0.0.1', 'Mozilla/5.0', '',"
        . " $bot, $head FROM generate_series(1, $n) g");
    ev($LINK{$link}{owner}, $day, 'clicks', $n) unless $o{head} || $o{bot};
}

# a commission credited on a past day, with the wallet kept consistent
sub past_credit {
    my ($owner, $kind, $cents, $source, $day, $time) = @_;
    $t->psql("INSERT INTO crm.wallets AS w (account_id, currency, balance_cents, lifetime_earnings_cents)"
        . " VALUES ('$owner', 'USD', $cents, $cents) ON CONFLICT (account_id) DO UPDATE"
        . " SET balance_cents = w.balance_cents + EXCLUDED.balance_cents,"
        . " lifetime_earnings_cents = w.lifetime_earnings_cents + EXCLUDED.lifetime_earnings_cents;"
        . " INSERT INTO crm.wallet_transactions (account_id, kind, amount_cents, balance_after_cents,"
        . " reference, source_id, created_at) SELECT account_id, '$kind', $cents, balance_cents, 'past',"
        . " '$source', " . ts($day, $time) . " FROM crm.wallets WHERE account_id = '$owner'");
    ev($owner, $day, 'commission', $cents);
}

sub past_install {
    my ($link, $lead, $shop, $day, $time) = @_;
    my $owner = $LINK{$link}{owner};
    my $id = q1("INSERT INTO crm.attributions (link_id, owner_id, lead_id, shop_domain, created_at)"
        . " VALUES ('$link', '$owner', '$lead', '$shop', " . ts($day, $time) . ') RETURNING id');
    ev($owner, $day, 'installs');
    past_credit($owner, 'commission_install', $LINK{$link}{install}, $id, $day, $time);
}

sub past_conversion {
    my ($link, $order, $amount, $day, $time) = @_;
    my $owner = $LINK{$link}{owner};
    my $cents = floor($amount * $LINK{$link}{bps} / 10000);
    my $id = q1("INSERT INTO crm.conversions (order_id, link_id, owner_id, amount_cents, currency,"
        . " commission_cents, created_at) VALUES ('$order', '$link', '$owner', $amount, 'USD', $cents, "
        . ts($day, $time) . ') RETURNING id');
    ev($owner, $day, 'conversions');
    past_credit($owner, 'commission_conversion', $cents, $id, $day, $time);
}

my $Aid = $A->{id};
my $Bid = $BB->{id};
my $Cid = $C->{id};
my $Eid = $E->{id};

# A, past
my $pA1 = past_lead($Aid, $D{3}, '10:00:00', 'contract', 'contract_drafted', 30000, 'USD');
past_install($LA1, $pA1, 'pa1.example.com', $D{3}, '11:00:00');
my $pA2 = past_lead($Aid, $D{10}, '08:00:00', 'customer', 'live', 8000, 'USD');
past_move($pA2, $D{10}, '13:00:00', 'closed', 'churned');
past_conversion($LA2, 'pA-10', 2000, $D{10}, '14:00:00');
my $pA3 = past_lead($Aid, $D{40}, '09:00:00', 'lead', 'qualified', 0, 'USD');
past_install($LA2, $pA3, 'pa3.example.com', $D{40}, '09:30:00');
past_move($pA3, $D{3}, '16:00:00', 'closed', 'won');
my $pA4 = past_lead($Aid, $D{3}, '12:00:00', 'closed', 'lost', 0, 'USD');
my $pA5 = past_lead($Aid, $D{10}, '09:00:00', $FIRST, $FSUB, 777, 'USD');
past_delete($pA5, $D{1}, '10:00:00');
past_clicks($LA1, $D{3}, '00:00:00', 3);
past_clicks($LA1, $D{3}, '23:59:59.5', 2);
past_clicks($LA1, $D{3}, '12:00:00', 1, head => 1);
past_clicks($LA1, $D{3}, '12:00:01', 1, bot => 1);
past_clicks($LA1, $D{4}, '23:59:59.999', 1);
past_clicks($LA2, $D{10}, '06:00:00', 2);
past_clicks($LA1, $D{29}, '00:00:01', 1);
past_clicks($LA1, $D{30}, '23:59:59', 1);
past_clicks($LA1, $D{40}, '10:00:00', 7);
past_clicks($LA1, $D{40}, '10:00:00', 1, head => 1);

# B, past
my $pB1 = past_lead($Bid, $D{1}, '15:00:00', 'demo', 'demo_completed', 6000, 'JPY');
past_clicks($LB1, $D{1}, '15:00:00', 3);
past_clicks($LB1, $D{1}, '15:00:00', 2, bot => 1);

# C, past
my $pC1 = past_lead($Cid, $D{3}, '08:00:00', 'closed', 'churned', 0, 'USD');
past_conversion($LC1, 'pC-3', 30000, $D{3}, '09:00:00');

# --- today, through the API ---------------------------------------------------------------

my $BROWSER = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
my @BOTS = ('Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
    'curl/8.5.0', 'facebookexternalhit/1.1');
my $REDIRECTS = 0;

# a redirect: GET or HEAD, with a browser's or a bot's User-Agent;
# returns the click id
sub click {
    my ($link, %o) = @_;
    my $method = $o{head} ? 'HEAD' : 'GET';
    my $r = $t->request($method, "/r/$link", headers => { 'User-Agent' => $o{ua} // $BROWSER });
    die "redirect $link: $r->{status}" unless $r->{status} == 302;
    $REDIRECTS++;
    my $bot = defined $o{ua} && $o{ua} ne $BROWSER;
    ev($LINK{$link}{owner}, $T, 'clicks') unless $o{head} || $bot;
    return ($r->{headers}{location} // '') =~ /[?&]click_id=([0-9A-Za-z]+)/ ? $1 : undef;
}

# an install callback that creates the link owner's lead for a new shop
sub install {
    my ($link, $shop, %body) = @_;
    my $r = $t->callback('/callbacks/install', { shop_domain => $shop,
        ($body{click_id} ? () : (affiliate_link_id => $link)), %body });
    die "install $shop: $r->{status} $r->{content}" unless $r->{status} == 200 && $r->{json}{created};
    my $owner = $LINK{$link}{owner};
    model_add_lead($r->{json}{lead_id}, $owner, $FIRST, $FSUB, 0, 'USD', $T);
    ev($owner, $T, 'installs');
    ev($owner, $T, 'commission', $LINK{$link}{install});
    return $r->{json}{lead_id};
}

sub conversion {
    my ($link, $order, $amount) = @_;
    my $r = $t->callback('/callbacks/conversion', { order_id => $order, amount_cents => $amount,
        currency => 'USD', affiliate_link_id => $link });
    die "conversion $order: $r->{status} $r->{content}" unless $r->{status} == 200 && $r->{json}{created};
    my $owner = $LINK{$link}{owner};
    my $cents = floor($amount * $LINK{$link}{bps} / 10000);
    die "conversion $order: commission $r->{json}{commission_cents}, want $cents"
        unless $r->{json}{commission_cents} == $cents;
    ev($owner, $T, 'conversions');
    ev($owner, $T, 'commission', $cents);
}

sub new_lead {
    my ($acc, $tok, %f) = @_;
    $f{name} //= 'Perf lead ' . int(rand 1e9);
    my $r = $t->post_json('/leads/', \%f, token => $tok);
    die "POST /leads/: $r->{status} $r->{content}" unless $r->{status} == 201;
    my $l = $r->{json};
    model_add_lead($l->{id}, $acc->{id}, $l->{stage}, $l->{substage}, $l->{value_cents}, $l->{currency}, $T);
    return $l->{id};
}

sub move {
    my ($tok, $id, $stage, $sub) = @_;
    my $r = $t->put_json("/leads/$id/stage", { stage => $stage, substage => $sub }, token => $tok);
    die "move $id to $stage/$sub: $r->{status} $r->{content}" unless $r->{status} == 200;
    model_move($id, $stage, $sub, $T);
}

sub remove {
    my ($tok, $id) = @_;
    my $r = $t->del("/leads/$id", token => $tok);
    die "DELETE $id: $r->{status} $r->{content}" unless $r->{status} == 204;
    $LEAD{$id}{deleted} = 1;
}

# A, today
my $cid = click($LA1);
click($LA1);
click($LA1);
click($LA1, head => 1);
click($LA1, ua => $BOTS[0]);
click($LA1, ua => $BOTS[1]);
click($LA2);
my $a1 = install($LA1, 'a1.example.com', click_id => $cid, shop_name => 'A One',
    email => 'owner@a1.example.com');
my $a2 = install($LA2, 'a2.example.com');
conversion($LA1, 'A-ord-1', 10000);
my $a_open = new_lead($A, $A_TOK, stage => 'proposal', value_cents => 50000, currency => 'USD',
    email => 'buyer@open.example.com', phone => '+14155552671', company => 'Open Co');
my $a_eur = new_lead($A, $A_TOK, stage => 'demo', value_cents => 70000, currency => 'EUR');
my $a_won = new_lead($A, $A_TOK, stage => 'lead', value_cents => 20000);
move($A_TOK, $a_won, 'closed', 'won');
my $a_nodec = new_lead($A, $A_TOK, value_cents => 1000);
move($A_TOK, $a_nodec, 'closed', 'no_decision');
my $a_lost = new_lead($A, $A_TOK, stage => 'closed', substage => 'lost', value_cents => 500);
my $a_del = new_lead($A, $A_TOK, value_cents => 99999);
remove($A_TOK, $a_del);
my $a_flip = new_lead($A, $A_TOK, value_cents => 4000);
move($A_TOK, $a_flip, 'closed', 'lost');           # lost + 1
move($A_TOK, $a_flip, 'closed', 'no_decision');    # still lost: nothing
move($A_TOK, $a_flip, 'closed', 'won');            # won + 1
move($A_TOK, $a_flip, 'customer', 'live');         # open again: nothing
{
    my $r = $t->post_json("/admin/wallets/$Aid/payouts", { amount_cents => 100, reference => 'PAY-PERF' },
        token => $ADM_TOK, headers => { 'Idempotency-Key' => 'perf-1' });
    is($r->{status}, 201, 'a payout of 100 to A (a ledger row that is no commission)') or diag($r->{content});
}

# B, today
click($LB1);
click($LB1);
click($LB1, head => 1);
my $b1 = install($LB1, 'b1.example.com');
my $b2 = install($LB1, 'b2.example.com');
my $b_open = new_lead($BB, $B_TOK, stage => 'lead', substage => 'qualified', value_cents => 12345);
my $b_won1 = new_lead($BB, $B_TOK, stage => 'closed', substage => 'won', value_cents => 5000);
my $b_won2 = new_lead($BB, $B_TOK);
move($B_TOK, $b_won2, 'closed', 'won');

# C, today
click($LC1);
click($LC1, head => 1);
click($LC1, head => 1);
click($LC1, ua => $BOTS[2]);
my $c1 = install($LC1, 'c1.example.com');
my $c2 = install($LC1, 'c2.example.com');
conversion($LC1, 'C-ord-1', 5000);

# the redirects reach crm.clicks a little later
{
    my $links = join ', ', map { "'$_'" } ($LA1, $LA2, $LB1, $LC1);
    my $sql = "SELECT count(*) FROM crm.clicks WHERE link_id IN ($links) AND clicked_at >= '$T 00:00:00+00'";
    ok(wait_until(15, sub { q1($sql) >= $REDIRECTS }, 0.05), "today's $REDIRECTS redirects are in crm.clicks")
        or diag('only ' . q1($sql));
    is(q1("SELECT count(*) FROM crm.clicks WHERE link_id IN ($links) AND clicked_at >= '$T 00:00:00+00'"
        . ' AND (is_head OR is_bot)'), 7, '... 7 of them HEAD or bot');
}

# the model, checked against figures worked out by hand
{
    my $ma = expect($Aid, $T, $T);
    is_deeply([@$ma{qw(won lost churned clicks installs conversions commission_cents win_rate)},
        $ma->{leads}{created}], [2, 3, 0, 4, 2, 1, 1800, n6(0.4), 9], "model: A today");
    $ma = expect($Aid, $D{10}, $T);
    is_deeply([@$ma{qw(won lost churned clicks installs conversions commission_cents win_rate)},
        $ma->{leads}{created}], [3, 4, 1, 12, 3, 2, 2700, n6(0.4286), 13], "model: A over the last 11 days");
    is_deeply([@$ma{qw(pipeline_value_cents average_score)}, $ma->{leads}{total}], [84000, n6(39.75), 12],
        'model: A now');
    my $b = expect($Bid, $T, $T);
    is_deeply([@$b{qw(pipeline_value_cents average_score won lost clicks installs commission_cents)}],
        [12345, n6(48.33), 2, 0, 2, 2, 1000], 'model: B');
    my $c = expect($Cid, $T, $T);
    is_deeply([@$c{qw(click_to_install_rate average_score commission_cents)}], [n6(2), n6(3.33), 1000], 'model: C');
}

# --- the checks, run before and after folding the deltas ------------------------------------

sub check_all {
    my ($when) = @_;

    # A: single days, several days, the default range, an empty range
    summary_is(perf_path(from => $T, to => $T), $A_TOK, $Aid, $T, $T, "$when: A, today");
    summary_is(perf_path(from => $D{3}, to => $D{3}), $A_TOK, $Aid, $D{3}, $D{3}, "$when: A, $D{3} (3 days ago)");
    summary_is(perf_path(from => $D{4}, to => $D{4}), $A_TOK, $Aid, $D{4}, $D{4},
        "$when: A, $D{4} (a click at 23:59:59.999)");
    summary_is(perf_path(from => $D{10}, to => $T), $A_TOK, $Aid, $D{10}, $T, "$when: A, the last 11 days");
    summary_is(perf_path(from => $D{40}, to => $D{40}), $A_TOK, $Aid, $D{40}, $D{40}, "$when: A, 40 days ago");
    summary_is(perf_path(from => $D{30}, to => $D{30}), $A_TOK, $Aid, $D{30}, $D{30}, "$when: A, 30 days ago");
    summary_is(perf_path(from => $D{365}, to => $T), $A_TOK, $Aid, $D{365}, $T, "$when: A, 366 days");
    my $s = summary_is(perf_path(from => $D{1}, to => $D{1}), $A_TOK, $Aid, $D{1}, $D{1},
        "$when: A, yesterday (only a deletion: nothing counts)");
    ok($s && !defined $s->{win_rate} && !defined $s->{click_to_install_rate}
        && exists $s->{win_rate} && exists $s->{click_to_install_rate},
        "$when: ... win_rate and click_to_install_rate null");
    summary_is(perf_path(from => $D{200}, to => $D{100}), $A_TOK, $Aid, $D{200}, $D{100},
        "$when: A, a range with no events");
    $s = summary_is('/performance/me', $A_TOK, $Aid, $D{29}, $T, "$when: A, the default range (today and the 29 days before)");
    is_deeply([$s->{from}, $s->{to}], [$D{29}, $T], "$when: ... from and to echoed");
    my $lit = expect($Aid, $D{29}, $T);
    is_deeply([@$lit{qw(clicks installs click_to_install_rate commission_cents)}], [13, 3, n6(0.2308), 2700],
        "$when: (model: A's default range)");

    # RFC 3339 times stand for their UTC day
    summary_is(perf_path(from => "$D{3}T23:30:00-02:00", to => "$D{1}T01:00:00+02:00"), $A_TOK, $Aid, $D{2}, $D{2},
        "$when: A, from $D{3}T23:30:00-02:00 to $D{1}T01:00:00+02:00 (both $D{2} in UTC)");
    summary_is(perf_path(from => "$D{4}T22:00:00-03:00", to => "$D{3}T23:59:59.999Z"), $A_TOK, $Aid, $D{3}, $D{3},
        "$when: A, from $D{4}T22:00:00-03:00 to $D{3}T23:59:59.999Z (both $D{3})");
    summary_is(perf_path(from => "$D{3}T00:30:00+01:00", to => "$D{4}T12:00:00Z"), $A_TOK, $Aid, $D{4}, $D{4},
        "$when: A, from $D{3}T00:30:00+01:00 to $D{4}T12:00:00Z (both $D{4})");
    # (colons as sent by hand, not percent-encoded)
    summary_is("/performance/me?from=$D{10}T00:00:00Z&to=${T}T23:59:59Z", $A_TOK, $Aid, $D{10}, $T,
        "$when: A, from $D{10}T00:00:00Z to ${T}T23:59:59Z");
    summary_is("/performance/me?from=$D{4}T22:00:00%2B05:00&to=$D{4}T23:00:00%2B00:00", $A_TOK, $Aid, $D{4}, $D{4},
        "$when: A, from $D{4}T22:00:00+05:00 to $D{4}T23:00:00+00:00 (both $D{4})");

    # B, C, E
    summary_is(perf_path(from => $T, to => $T), $B_TOK, $Bid, $T, $T, "$when: B, today (win_rate 1)");
    summary_is(perf_path(from => $D{1}, to => $D{1}), $B_TOK, $Bid, $D{1}, $D{1},
        "$when: B, yesterday (clicks, no install: rate 0)");
    summary_is('/performance/me', $B_TOK, $Bid, $D{29}, $T, "$when: B, the default range");
    summary_is(perf_path(from => $T, to => $T), $C_TOK, $Cid, $T, $T,
        "$when: C, today (2 installs on 1 click: rate 2)");
    summary_is(perf_path(from => $D{3}, to => $D{3}), $C_TOK, $Cid, $D{3}, $D{3},
        "$when: C, $D{3} (a churn, a conversion, no click)");
    summary_is('/performance/me', $C_TOK, $Cid, $D{29}, $T, "$when: C, the default range");
    $s = summary_is('/performance/me', $E_TOK, $Eid, $D{29}, $T, "$when: E (nothing at all)");
    ok($s && exists $s->{average_score} && !defined $s->{average_score}, "$when: ... average_score null");
    summary_is('/performance/me', $ADM_TOK, $ADM->{id}, $D{29}, $T, "$when: the admin's own summary");

    # /performance/users/{id}
    for my $acc ($A, $BB, $C, $E) {
        summary_is(perf_path(base => "/performance/users/$acc->{id}", from => $D{10}, to => $T), $ADM_TOK,
            $acc->{id}, $D{10}, $T, "$when: the admin reads $acc->{full_name}'s summary");
    }
    summary_is("/performance/users/$Aid", $ADM_TOK, $Aid, $D{29}, $T,
        "$when: the admin reads A's summary, default range");
    summary_is(perf_path(base => "/performance/users/$Aid", from => $D{3}, to => $D{3}), $A_TOK, $Aid, $D{3},
        $D{3}, "$when: A reads its own summary by id");

    # the leaderboard
    for my $m (qw(commission installs conversions clicks won)) {
        leaderboard_is($m, $T, $T, undef, "$when: leaderboard $m, today");
        leaderboard_is($m, $D{29}, $T, undef, "$when: leaderboard $m, the last 30 days");
    }
    leaderboard_is('clicks', $D{40}, $D{40}, undef, "$when: leaderboard clicks, 40 days ago");
    leaderboard_is('commission', $D{40}, $D{40}, undef, "$when: leaderboard commission, 40 days ago");
    leaderboard_is('conversions', $D{40}, $D{40}, undef, "$when: leaderboard conversions, 40 days ago (nobody)");
    leaderboard_is('won', $D{200}, $D{100}, undef, "$when: leaderboard won, a range with no events");
    leaderboard_is('pipeline_value', $T, $T, undef, "$when: leaderboard pipeline_value");
    leaderboard_is('pipeline_value', $D{200}, $D{100}, undef, "$when: leaderboard pipeline_value, an old range (now)");
    leaderboard_is('installs', $T, $T, 2, "$when: leaderboard installs, today, limit=2");
    leaderboard_is('commission', $D{29}, $T, 1, "$when: leaderboard commission, limit=1");
    leaderboard_is(undef, undef, undef, undef, "$when: leaderboard with no parameters (commission, 30 days)");
}

# the leaderboard the contract gives for a metric and a range
sub expect_board {
    my ($metric, $from, $to, $limit) = @_;
    my %val;
    for my $acc (@ALL) {
        if ($metric eq 'pipeline_value') {
            $val{$acc} = expect($acc, $T, $T)->{pipeline_value_cents};
        } else {
            my $k = $metric eq 'commission' ? 'commission_cents' : $metric;
            $val{$acc} = expect($acc, $from, $to)->{$k};
        }
    }
    my @ids = sort { $val{$b} <=> $val{$a} || $a cmp $b } grep { $val{$_} > 0 } @ALL;
    splice @ids, $limit if defined $limit && @ids > $limit;
    my $rank = 0;
    return [map { { rank => ++$rank, account_id => $_, email => $ACC{$_}{email},
        full_name => $ACC{$_}{full_name}, value => $val{$_} } } @ids];
}

sub leaderboard_is {
    my ($metric, $from, $to, $limit, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my %q = (base => '/performance/leaderboard');
    $q{metric} = $metric if defined $metric;
    $q{from} = $from if defined $from;
    $q{to} = $to if defined $to;
    $q{limit} = $limit if defined $limit;
    my $r = $t->get(perf_path(%q), token => $ADM_TOK);
    my $j = is_json_response($r, 200, "$name: 200") || {};
    my $want_metric = $metric // 'commission';
    my ($wf, $wt) = ($from // $D{29}, $to // $T);
    my $fresh = eval { $JS->decode($r->{content}) } || {};
    my @why;
    push @why, 'items not an array' unless ref $fresh->{items} eq 'ARRAY';
    for my $it (ref $fresh->{items} eq 'ARRAY' ? @{ $fresh->{items} } : ()) {
        push @why, 'an item not an object' unless ref $it eq 'HASH';
        next unless ref $it eq 'HASH';
        push @why, "item $_ not an integer" for grep { !jint($it->{$_}) } qw(rank value);
    }
    ok(!@why, "$name: the types") or diag(join('; ', @why) . "\n  $r->{content}");
    my %got = %$j;
    my %want = (metric => $want_metric, from => $wf, to => $wt,
        items => expect_board($want_metric, $wf, $wt, $limit));
    if ($want_metric eq 'pipeline_value') {
        # the range does not apply: the members other than items are
        # checked only for being there
        ok(exists $got{from} && exists $got{to}, "$name: from and to") or diag($r->{content});
        delete @got{qw(from to)};
        delete @want{qw(from to)};
    }
    is_deeply(\%got, \%want, "$name: metric, range and items") or diag("got: $r->{content}");
}

check_all('before folding');

# --- refusals ------------------------------------------------------------------------------

for my $path ('/performance/me', "/performance/users/$Aid", '/performance/leaderboard',
    "/leads/$a_open/compatibility") {
    is_problem($t->get($path), 401, "GET $path without a token: 401");
}

my @range_errors = (
    [{ from => $T, to => $D{1} }, 'from after to'],
    [{ from => "${T}T00:00:00Z", to => "$D{1}T23:59:59Z" }, 'from after to (RFC 3339)'],
    [{ from => $D{366}, to => $T }, 'a range of 367 days'],
    [{ from => '2020-01-01', to => '2022-01-01' }, 'a range of two years'],
    [{ from => 'garbage', to => $T }, 'from=garbage'],
    [{ from => $T, to => 'yesterday' }, 'to=yesterday'],
    [{ from => '2026-13-01', to => '2026-13-02' }, 'month 13'],
    [{ from => '2025-02-29', to => '2025-03-01' }, 'February 29th of a common year'],
    [{ from => '2026-1-05', to => '2026-01-06' }, 'a one-digit month'],
    [{ from => "$D{1}T25:00:00Z", to => $T }, 'hour 25'],
    [{ from => "$D{1}T10:00:00+25:00", to => $T }, 'an offset of 25 hours'],
    [{ from => '12345', to => $T }, 'a number'],
    [{ from => "$D{1}x", to => $T }, 'a date with a trailing character'],
);
for my $c (@range_errors) {
    my ($q, $what) = @$c;
    is_problem($t->get(perf_path(%$q), token => $A_TOK), 422, "GET /performance/me with $what: 422");
    is_problem($t->get(perf_path(%$q, base => "/performance/users/$Aid"), token => $ADM_TOK), 422,
        "GET /performance/users/{id} with $what: 422");
    is_problem($t->get(perf_path(%$q, base => '/performance/leaderboard'), token => $ADM_TOK), 422,
        "GET /performance/leaderboard with $what: 422");
}
summary_is(perf_path(from => $D{365}, to => $T), $B_TOK, $Bid, $D{365}, $T, 'a range of exactly 366 days: 200');

is_problem($t->get("/performance/users/$Bid", token => $A_TOK), 404, "A asks for B's summary: 404");
is_problem($t->get("/performance/users/$ADM->{id}", token => $A_TOK), 404, "A asks for the admin's summary: 404");
is_problem($t->get("/performance/users/$NIL", token => $A_TOK), 404, 'A asks for an unknown id: 404');
is_problem($t->get("/performance/users/$NIL", token => $ADM_TOK), 404, 'the admin asks for an unknown id: 404');
is_problem($t->get('/performance/users/not-a-uuid', token => $ADM_TOK), 404, 'the admin asks for a malformed id: 404');

is_problem($t->get('/performance/leaderboard', token => $A_TOK), 403, 'a member asks for the leaderboard: 403');
is_problem($t->get('/performance/leaderboard?metric=clicks', token => $E_TOK), 403,
    'another member asks for the leaderboard: 403');
for my $c (['metric=revenue', 'an unknown metric'],
    ['metric=Clicks', 'a metric in the wrong case'], ['limit=0', 'limit=0'], ['limit=201', 'limit=201'],
    ['limit=-1', 'limit=-1'], ['limit=abc', 'limit=abc'], ['limit=1.5', 'limit=1.5']) {
    is_problem($t->get("/performance/leaderboard?$c->[0]", token => $ADM_TOK), 422,
        "GET /performance/leaderboard?$c->[0] ($c->[1]): 422");
}
leaderboard_is('clicks', $D{29}, $T, 200, 'leaderboard clicks, limit=200');

# --- compatibility ---------------------------------------------------------------------------

# The shipped weights, in the file's order.  A lead updated just now has
# recency 1; one updated 45 days ago 0.5; one updated 200 days ago 0.
# Setting updated_at alone counts nothing (the stats trigger ignores it).
$t->psql("UPDATE crm.leads SET updated_at = now() - interval '45 days' WHERE id IN ('$a1', '$pA2')");
$t->psql("UPDATE crm.leads SET updated_at = now() - interval '200 days' WHERE id = '$pA3'");

my @W = ([stage => 30], [score => 25], [contact => 15], [company => 10], [affiliate => 10], [recency => 10]);

sub compat_is {
    my ($id, $tok, $values, $points, $score, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $r = $t->get("/leads/$id/compatibility", token => $tok);
    my $j = is_json_response($r, 200, "$name: 200") || {};
    my $fresh = eval { $JS->decode($r->{content}) } || {};
    my @why;
    push @why, 'score not an integer' unless jint($fresh->{score});
    for my $p (ref $fresh->{parts} eq 'ARRAY' ? @{ $fresh->{parts} } : ()) {
        push @why, "$p->{name}: weight not an integer" unless jint($p->{weight});
        push @why, "$p->{name}: value not a number" unless jnum($p->{value});
        push @why, "$p->{name}: points not a number" unless jnum($p->{points});
    }
    ok(!@why, "$name: the types") or diag(join('; ', @why) . "\n  $r->{content}");
    my %got = %$j;
    $got{parts} = [map { { %$_, value => n6($_->{value}), points => n6($_->{points}) } }
        @{ ref $j->{parts} eq 'ARRAY' ? $j->{parts} : [] }];
    my $want = { lead_id => $id, score => $score, parts => [map { { name => $W[$_][0], weight => $W[$_][1],
        value => n6($values->[$_]), points => n6($points->[$_]) } } 0 .. $#W] };
    is_deeply(\%got, $want, "$name: score and parts") or diag("got: $r->{content}");
}

# proposal is stage 3 of 0..7: 3/7 = 0.4286, 30 x 3/7 = 12.86; score 55;
# email and phone; a company; no link; updated just now
compat_is($a_open, $A_TOK, [0.4286, 0.55, 1, 1, 0, 1], [12.86, 13.75, 15, 10, 0, 10], 62,
    'compatibility of an open proposal-stage lead with every contact field');
# the first stage; score 5; an email, no phone; a shop domain; a link;
# updated 45 days ago: 0 + 1.25 + 7.5 + 10 + 10 + 5 = 33.75
compat_is($a1, $A_TOK, [0, 0.05, 0.5, 1, 1, 0.5], [0, 1.25, 7.5, 10, 10, 5], 34,
    'compatibility of an affiliate lead updated 45 days ago');
# closed/won: the last stage counts in full
compat_is($a_won, $A_TOK, [1, 1, 0, 0, 0, 1], [30, 25, 0, 0, 0, 10], 65, 'compatibility of a won lead');
# closed/no_decision (lost): the stage counts 0
compat_is($a_nodec, $A_TOK, [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 10], 10, 'compatibility of a lost (no_decision) lead');
# closed/churned, updated 45 days ago
compat_is($pA2, $A_TOK, [0, 0, 0, 0, 0, 0.5], [0, 0, 0, 0, 0, 5], 5, 'compatibility of a churned lead');
# won, updated 200 days ago: recency max(0, 1 - 200/90) = 0
compat_is($pA3, $A_TOK, [1, 1, 0, 0, 0, 0], [30, 25, 0, 0, 0, 0], 55, 'compatibility of a lead updated 200 days ago');

is_problem($t->get("/leads/$a_open/compatibility", token => $B_TOK), 404, "B asks for A's lead's compatibility: 404");
is_problem($t->get("/leads/$a_open/compatibility", token => $ADM_TOK), 404,
    "the admin asks for A's lead's compatibility: 404 (not the caller's)");
is_problem($t->get("/leads/$a_del/compatibility", token => $A_TOK), 404, 'a deleted lead: 404');
is_problem($t->get("/leads/$NIL/compatibility", token => $A_TOK), 404, 'an unknown lead: 404');
is_problem($t->get('/leads/not-a-uuid/compatibility', token => $A_TOK), 404, 'a malformed id: 404');

# --- folding the deltas changes no figure ----------------------------------------------------

my @SNAP = (
    map({ [perf_path(from => $_->[0], to => $_->[1]), $A_TOK] }
        [$T, $T], [$D{3}, $D{3}], [$D{10}, $T], [$D{365}, $T], [$D{40}, $D{40}]),
    ['/performance/me', $B_TOK], ['/performance/me', $C_TOK], ['/performance/me', $E_TOK],
    (map { ["/performance/users/$_", $ADM_TOK] } @ALL),
    (map { ["/performance/leaderboard?metric=$_", $ADM_TOK],
           [perf_path(base => '/performance/leaderboard', metric => $_, from => $T, to => $T), $ADM_TOK] }
        qw(commission installs conversions clicks won pipeline_value)),
);
sub snapshot { return [map { my $r = $t->get($_->[0], token => $_->[1]); "$r->{status} $r->{content}" } @SNAP] }

my $before = snapshot();
my $folded = q1('SELECT crm.stats_compact(1000000)');
like($folded, qr/^\d+$/, "SELECT crm.stats_compact(1000000): $folded deltas folded");
is(q1('SELECT count(*) FROM crm.stat_deltas'), 0, '... none left');
my $after = snapshot();
is_deeply($after, $before, 'every summary and leaderboard reads the same after folding ('
    . scalar(@SNAP) . ' requests)');

check_all('after folding');

# --- events after folding count at once -------------------------------------------------------

{
    my $id = new_lead($E, $E_TOK, value_cents => 2500);
    summary_is('/performance/me', $E_TOK, $Eid, $D{29}, $T, 'E creates a lead of 2500 USD: counted at once');
    my $r = $t->put_json("/leads/$id", { value_cents => 3000 }, token => $E_TOK);
    is($r->{status}, 200, 'E changes its value to 3000') or diag($r->{content});
    $LEAD{$id}{value} = 3000;
    summary_is('/performance/me', $E_TOK, $Eid, $D{29}, $T, '... pipeline_value_cents 3000');
    $r = $t->put_json("/leads/$id", { currency => 'EUR' }, token => $E_TOK);
    is($r->{status}, 200, '... and its currency to EUR') or diag($r->{content});
    $LEAD{$id}{cur} = 'EUR';
    summary_is('/performance/me', $E_TOK, $Eid, $D{29}, $T, '... pipeline_value_cents 0 (not USD)');
    move($E_TOK, $id, 'closed', 'won');
    summary_is('/performance/me', $E_TOK, $Eid, $D{29}, $T, '... moved to closed/won: won 1, average 100');
    q1('SELECT crm.stats_compact(1000000)');
    remove($E_TOK, $id);
    my $s = summary_is('/performance/me', $E_TOK, $Eid, $D{29}, $T,
        '... deleted: no lead now, created and won still 1');
    ok($s && $s->{leads}{created} == 1 && $s->{won} == 1 && $s->{leads}{total} == 0, '... (created 1, won 1, total 0)');
    leaderboard_is('won', $T, $T, undef, 'leaderboard won, today, with E');

    # a live click after folding
    click($LB1);
    my $sql = "SELECT count(*) FROM crm.clicks WHERE link_id = '$LB1' AND clicked_at >= '$T 00:00:00+00'";
    ok(wait_until(15, sub { q1($sql) >= 4 }, 0.05), 'one more click of B reaches crm.clicks');
    summary_is(perf_path(from => $T, to => $T), $B_TOK, $Bid, $T, $T, '... and counts at once');
}

# --- a link's days: GET /affiliate/links/{id}/stats against the base tables -----------------

# each day of the range from crm.clicks, crm.attributions, crm.conversions
# and the commission ledger, computed here apart from the counters
sub link_days_sql {
    my ($link, $from, $to) = @_;
    return "SELECT to_char(d, 'YYYY-MM-DD'),"
        . " (SELECT count(*) FROM crm.clicks WHERE link_id = '$link' AND NOT is_bot AND NOT is_head"
        . "  AND (clicked_at AT TIME ZONE 'UTC')::date = d),"
        . " (SELECT count(*) FROM crm.attributions WHERE link_id = '$link'"
        . "  AND (created_at AT TIME ZONE 'UTC')::date = d),"
        . " (SELECT count(*) FROM crm.conversions WHERE link_id = '$link'"
        . "  AND (created_at AT TIME ZONE 'UTC')::date = d),"
        . " (SELECT coalesce(sum(w.amount_cents), 0) FROM crm.wallet_transactions w"
        . "  LEFT JOIN crm.attributions a ON w.kind = 'commission_install' AND a.id = w.source_id"
        . "  LEFT JOIN crm.conversions c ON w.kind = 'commission_conversion' AND c.id = w.source_id"
        . "  WHERE coalesce(a.link_id, c.link_id) = '$link' AND (w.created_at AT TIME ZONE 'UTC')::date = d)"
        . " FROM generate_series('$from'::date, '$to'::date, interval '1 day') d ORDER BY d";
}

my %TOK = ($Aid => $A_TOK, $BB->{id} => $B_TOK, $C->{id} => $C_TOK);
my @M = qw(clicks installs conversions commission_cents);
for my $link ($LA1, $LA2, $LB1, $LC1) {
    my $tok = $TOK{ $LINK{$link}{owner} };
    my $r = $t->get("/affiliate/links/$link/stats?from=$D{40}&to=$T", token => $tok);
    is($r->{status}, 200, "GET /affiliate/links/$link/stats, 41 days") or diag($r->{content});
    my @want = map { my @f = split /\|/; +{ day => $f[0], map { ($M[$_] => 0 + $f[$_ + 1]) } 0 .. 3 } }
        $t->psql(link_days_sql($link, $D{40}, $T));
    my %sum = map { my $m = $_; ($m => 0 + eval { my $n = 0; $n += $_->{$m} for @want; $n }) } @M;
    is_deeply($r->{json}, { affiliate_link_id => $link, from => $D{40}, to => $T, days => \@want,
        totals => \%sum }, "... every day as the base tables have it, zeros included (41 days)");
}
{
    my $r = $t->get("/affiliate/links/$LA1/stats?from=$D{40}&to=$T", token => $A_TOK);
    ok($r->{json} && $r->{json}{totals}{clicks} > 0 && $r->{json}{totals}{installs} > 0
        && $r->{json}{totals}{commission_cents} > 0, "... $LA1 has clicks, installs and commission to count");
    is($t->get("/affiliate/links/$LA1/stats", token => $B_TOK)->{status}, 404,
        "... another account's link: 404");
    is($t->get("/affiliate/links/$LA1/stats", token => $ADM_TOK)->{status}, 404,
        "... an admin's view of another's link: 404, as GET /affiliate/links/{id}");
    is($t->get('/affiliate/links/AAAAAAAAAAAA/stats', token => $A_TOK)->{status}, 404, '... a made-up id: 404');
    $r = $t->get("/affiliate/links/$LA1/stats", token => $A_TOK);
    is(scalar @{ $r->{json}{days} || [] }, 30, '... no range: today and the 29 days before');
    is($t->get("/affiliate/links/$LA1/stats?from=$T&to=$D{1}", token => $A_TOK)->{status}, 422,
        '... from after to: 422');
    is($t->get("/affiliate/links/$LA1/stats?from=$D{366}&to=$T", token => $A_TOK)->{status}, 422,
        '... 367 days: 422');
}

# --- a deactivated account's token reads nothing ---------------------------------------------

{
    my ($X, $X_TOK) = $t->member(full_name => 'Xena Gone');
    is($t->get('/performance/me', token => $X_TOK)->{status}, 200, 'a new member reads its summary');
    my $r = $t->patch_json("/admin/users/$X->{id}", { is_active => JSON::PP::false }, token => $ADM_TOK);
    is($r->{status}, 200, '... an admin deactivates it') or diag($r->{content});
    $r = $t->get('/performance/me', token => $X_TOK);
    is($r->{status}, 401, '... then GET /performance/me with its token: 401 (checked in the summary\'s own statement)');
    is($t->get("/performance/users/$X->{id}", token => $X_TOK)->{status}, 401,
        '... and GET /performance/users/{itself}: 401');
    is($t->get("/performance/users/$X->{id}", token => $ADM_TOK)->{status}, 200,
        '... an admin still reads its figures');
}

$t->done;

#!/usr/bin/perl
# Signed install and conversion callbacks: signatures that are missing,
# wrong, stale, from the future or malformed are refused with nothing
# written; bodies are checked; an install finds or creates the owner's
# lead, attributes it and credits the install commission once, however
# often and however concurrently it is repeated; a conversion is recorded
# once per order and pays amount * bps / 10000 rounded down.  After every
# part, each wallet's balance is the sum of its ledger and its lifetime
# earnings the sum of its commissions.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time);
use CrmTest;

my $t = CrmTest->new->start;

my $P = $t->load_pipeline;
my ($FIRST, $FSUB) = ($P->[0]{stage}, $P->[0]{substages}[0]);

my ($owner, $tok) = $t->member;
my ($rival, $rival_tok) = $t->member;

sub link_of {
    my ($tk, %commission) = @_;
    my $r = $t->post_json('/affiliate/links', { target_url => 'https://apps.example.com/crm',
        (%commission ? (commission => \%commission) : ()) }, token => $tk);
    die "link: $r->{status} $r->{content}" unless $r->{status} == 201;
    return $r->{json}{affiliate_link_id};
}

my $L1 = link_of($tok);                                          # 500 cents, 1000 bps
my $L0 = link_of($tok, install_cents => 0, conversion_bps => 0);
my $L3 = link_of($tok, install_cents => 700, conversion_bps => 333);
my $LR = link_of($rival_tok);

sub install { $t->callback('/callbacks/install', @_) }
sub conversion { $t->callback('/callbacks/conversion', @_) }

sub q1 { scalar $t->psql($_[0]) }

# the rows a callback can write, counted
sub counts {
    return { map { $_ => q1("SELECT count(*) FROM crm.$_") }
        qw(leads lead_stage_events attributions conversions wallets wallet_transactions audit_log) };
}

sub ledger_holds {
    my ($name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @bad = $t->psql(
        "SELECT w.account_id || ' balance ' || w.balance_cents || ' lifetime '"
        . " || w.lifetime_earnings_cents || ' ledger ' || coalesce(sum(t.amount_cents), 0)"
        . " || ' commissions ' || coalesce(sum(t.amount_cents) FILTER"
        . " (WHERE t.kind IN ('commission_install', 'commission_conversion')), 0)"
        . " FROM crm.wallets w LEFT JOIN crm.wallet_transactions t ON t.account_id = w.account_id"
        . " GROUP BY w.account_id"
        . " HAVING w.balance_cents <> coalesce(sum(t.amount_cents), 0)"
        . " OR w.lifetime_earnings_cents <> coalesce(sum(t.amount_cents) FILTER"
        . " (WHERE t.kind IN ('commission_install', 'commission_conversion')), 0)"
        . " OR w.balance_cents <> coalesce((SELECT balance_after_cents FROM crm.wallet_transactions l"
        . " WHERE l.account_id = w.account_id ORDER BY id DESC LIMIT 1), 0)");
    ok(!@bad, "$name: every balance is the sum of its ledger, lifetime the sum of its commissions")
        or diag(join "\n", @bad);
}

sub balance { q1("SELECT coalesce((SELECT balance_cents FROM crm.wallets WHERE account_id = '$_[0]'), 0)") }

my $shop = 'https://Cool-Shop.myshopify.com/admin';
my %good = (shop_domain => $shop, affiliate_link_id => $L1);
my $good = json_encode(\%good);
my $now = int time;

# --- signatures: refused, nothing written ----------------------------------------------

my $before = counts();
my $r = install(\%good, signature => undef);
is_problem($r, 401, 'no X-CRM-Signature: 401');
is($r->{headers}{'www-authenticate'}, 'CRM-Signature', '... WWW-Authenticate: CRM-Signature');
is_problem(install(\%good, secret => 'not the secret'), 401, 'signed with another secret: 401');
is_problem(install(undef, raw => $good, signature => $t->sign_callback(json_encode({ %good, shop_domain => 'other.example.com' }))),
    401, 'a signature of another body: 401');
is_problem(install(undef, raw => "$good ", signature => $t->sign_callback($good)), 401,
    'a body with one byte added: 401');
# the exact boundary (300 s, inclusive) is checked by t/unit/check_sig.c with
# a fixed clock; here a second may pass between the test's clock and nginx's
is_problem(install(\%good, t => int(time) - 305), 401, 'signed 305 s ago (stale): 401');
is_problem(install(\%good, t => int(time) + 305), 401, 'signed 305 s ahead (future): 401');
is_problem(install(\%good, t => 0), 401, 'signed at 0: 401');
my $sig = $t->sign_callback($good);
my ($hex) = $sig =~ /v1=([0-9a-f]+)/;
for my $c (
    ['', 'empty'],
    ['garbage', 'garbage'],
    ["v1=$hex", 'no t'],
    ["t=$now", 'no v1'],
    ["t=abc,v1=$hex", 't not a number'],
    ["t=$now,v1=" . substr($hex, 0, 63), 'v1 of 63 digits'],
    ["t=$now,v1=" . ('z' x 64), 'v1 not hex'],
    ["t=$now,t=$now,v1=$hex", 't twice'],
    ["t=$now,v1=$hex,", 'a trailing comma'],
    ["t=$now, v0=$hex", 'only an unknown scheme'],
    ['t=' . ('9' x 13) . ",v1=$hex", 'a 13-digit t'],
) {
    is_problem(install(undef, raw => $good, signature => $c->[0]), 401,
        "malformed signature ($c->[1]): 401");
}
is_problem(conversion({ order_id => 'o-unsigned', amount_cents => 100, currency => 'USD',
    affiliate_link_id => $L1 }, signature => undef), 401, 'a conversion without a signature: 401');
is_problem(conversion({ order_id => 'o-stale', amount_cents => 100, currency => 'USD',
    affiliate_link_id => $L1 }, t => $now - 3600), 401, 'a conversion signed an hour ago: 401');
is_deeply(counts(), $before, 'no refused callback wrote anything');

# --- bodies -----------------------------------------------------------------------------

is_problem(install(\%good, headers => { 'Content-Type' => 'text/plain' }), 415,
    'a signed body as text/plain: 415');
is_problem(install(\%good, headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }), 415,
    '... as a form: 415');
is_problem(install(undef, raw => '{"shop_domain":', ), 400, 'signed malformed JSON: 400');
is_problem(install(undef, raw => '[]'), 422, 'a JSON array: 422', field => 'body');
is_problem(install(undef, raw => ''), 400, 'an empty body: 400');
is_problem(install(undef, raw => json_encode({ %good, pad => 'x' x (70 * 1024) })), 413,
    'a 70 KB body (over crm_max_body_size): 413');
is_problem(install(undef, raw => ('[' x 100) . (']' x 100)), 400, 'nested 100 deep: 400');

my $unknown = $t->make_link_id;
for my $c (
    [{ affiliate_link_id => $L1 }, 'shop_domain', 'no shop_domain'],
    [{ %good, shop_domain => 'not a domain' }, 'shop_domain', 'a shop_domain that is no domain'],
    [{ %good, shop_domain => '10.0.0.1' }, 'shop_domain', 'an IP address as shop_domain'],
    [{ %good, shop_domain => 'https://u@shop.example.com' }, 'shop_domain', 'a shop_domain with user-info'],
    [{ shop_domain => $shop }, 'click_id', 'neither click_id nor affiliate_link_id'],
    [{ shop_domain => $shop, click_id => undef, affiliate_link_id => undef }, 'click_id', 'both null'],
    [{ shop_domain => $shop, click_id => 'nonsense' }, 'click_id', 'an unparsable click_id'],
    [{ shop_domain => $shop, click_id => $t->make_click_id($L1) . 'x' }, 'click_id', 'a click_id too long'],
    [{ shop_domain => $shop, click_id => ('A' x 12) . '000001abcdefgh' }, 'click_id',
        'a click_id whose link id fails its check'],
    [{ shop_domain => $shop, affiliate_link_id => 'AAAAAAAAAAAA' }, 'affiliate_link_id',
        'an affiliate_link_id that fails its check'],
    [{ shop_domain => $shop, click_id => $t->make_click_id($L1), affiliate_link_id => $L3 }, 'affiliate_link_id',
        'a click_id and an affiliate_link_id of two links'],
    [{ %good, email => 'not-an-email' }, 'email', 'a bad email'],
    [{ %good, event_id => '' }, 'event_id', 'an empty event_id'],
    [{ %good, event_id => 'e' x 201 }, 'event_id', 'a 201-character event_id'],
    [{ %good, event_id => "a\nb" }, 'event_id', 'a control character in event_id'],
    [{ %good, shop_name => 'n' x 201 }, 'shop_name', 'a 201-character shop_name'],
    [{ %good, owner_id => $rival->{id} }, 'owner_id', 'an unknown member'],
    [{ %good, affiliate_link_id => 5 }, 'affiliate_link_id', 'a number as affiliate_link_id'],
) {
    is_problem(install($c->[0]), 422, "install with $c->[2]: 422", field => $c->[1]);
}
is_problem(install({ shop_domain => $shop, affiliate_link_id => $unknown }), 404, 'an unknown link: 404');
is_problem(install({ shop_domain => $shop, click_id => $t->make_click_id($unknown) }), 404,
    'a click id of an unknown link: 404');
is_deeply(counts(), $before, 'no refused body wrote anything');
ledger_holds('after the refusals');

# --- install ----------------------------------------------------------------------------

my $click = $t->make_click_id($L1);
$r = install({ shop_domain => $shop, click_id => $click, shop_name => 'Cool Shop',
    email => ' Owner@Cool-Shop.COM ' });
my $first = is_json_response($r, 200, 'an install by click_id: 200');
ok(is_uuid($first->{lead_id}) && is_uuid($first->{attribution_id}), '... lead_id and attribution_id');
ok(JSON::PP::is_bool($first->{created}) && $first->{created}, '... created: true');

$r = $t->get("/leads/$first->{lead_id}", token => $tok);
my $lead = is_json_response($r, 200, "... the lead is the link owner's");
is_lead($r, '... a lead');
is_deeply({ map { $_ => $lead->{$_} } qw(source name shop_domain email affiliate_link_id stage substage score owner_id) },
    { source => 'affiliate', name => 'Cool Shop', shop_domain => 'cool-shop.myshopify.com',
      email => 'owner@cool-shop.com', affiliate_link_id => $L1, stage => $FIRST,
      substage => $FSUB->{status}, score => $FSUB->{score}, owner_id => $owner->{id} },
    '... source affiliate, named after the shop, normalised domain and email, the first stage');
$r = $t->get("/leads/$first->{lead_id}/history", token => $tok);
is(scalar @{ $r->{json}{items} }, 1, '... with its creation in the history');
is($r->{json}{items}[0]{actor_id}, undef, '... by the system');

is(q1("SELECT link_id || ' ' || click_id || ' ' || shop_domain || ' ' || lead_id FROM crm.attributions"
    . " WHERE id = '$first->{attribution_id}'"), "$L1 $click cool-shop.myshopify.com $first->{lead_id}",
    '... the attribution: link, click, shop, lead');
is(q1("SELECT kind || ' ' || amount_cents || ' ' || balance_after_cents || ' ' || source_id"
    . " FROM crm.wallet_transactions WHERE account_id = '$owner->{id}'"),
    "commission_install 500 500 $first->{attribution_id}", '... one ledger row: 500 for the install');
my $w = $t->get('/wallet', token => $tok)->{json};
is_deeply([@$w{qw(currency balance_cents lifetime_earnings_cents)}], ['USD', 500, 500],
    '... GET /wallet: 500 USD, 500 earned');
my $c = $t->get("/affiliate/links/$L1", token => $tok)->{json}{counters};
is_deeply([@$c{qw(installs conversions earnings_cents)}], [1, 0, 500], '... link counters: 1 install, 500 earned');
ledger_holds('after an install');

$before = counts();
$r = install({ shop_domain => $shop, click_id => $click, shop_name => 'Cool Shop' });
is_deeply(is_json_response($r, 200, 'the same install again: 200'),
    { %$first, created => JSON::PP::false }, '... created: false, the same ids');
$r = install({ shop_domain => 'cool-shop.myshopify.com', affiliate_link_id => $L1 });
is_deeply($r->{json}, { %$first, created => JSON::PP::false },
    '... by affiliate_link_id and the bare domain: created false, the same ids');
$r = install({ shop_domain => $shop, click_id => $t->make_click_id($L1) });
is_deeply($r->{json}, { %$first, created => JSON::PP::false }, '... with another click of the link: the same');
is_deeply(counts(), $before, 'repeats wrote nothing');
is(balance($owner->{id}), 500, '... the balance is still 500');

# the same shop through another link of the owner: the same lead
$r = install({ shop_domain => $shop, affiliate_link_id => $L0 });
my $via0 = is_json_response($r, 200, 'the same shop through a second link of the owner: 200');
ok($via0->{created}, '... created: true (a new attribution)');
is($via0->{lead_id}, $first->{lead_id}, '... the same lead');
is(q1("SELECT count(*) FROM crm.wallet_transactions WHERE source_id = '$via0->{attribution_id}'"), 0,
    '... no ledger row for a 0-cent install commission');
is(q1("SELECT installs || ' ' || earnings_cents FROM crm.affiliate_link_stats WHERE link_id = '$L0'"), '1 0',
    '... the link counts the install');

# a lead the rep entered by hand is the one attributed
my $manual = $t->create_lead($tok, name => 'Hand made', shop_domain => 'hand.example.com');
$r = install({ shop_domain => 'HAND.example.com', affiliate_link_id => $L1 });
is(is_json_response($r, 200, 'an install for a shop the owner already has a lead for')->{lead_id},
    $manual->{id}, '... attributes that lead');
is($t->get("/leads/$manual->{id}", token => $tok)->{json}{source}, 'manual', '... which stays as it was');

# no shop name: the domain names the lead
$r = install({ shop_domain => 'nameless.example.com', affiliate_link_id => $L1 });
is($t->get("/leads/$r->{json}{lead_id}", token => $tok)->{json}{name}, 'nameless.example.com',
    'no shop_name: the lead is named after the domain');

# another owner's link: another owner's lead for the same shop
$r = install({ shop_domain => $shop, affiliate_link_id => $LR });
my $rv = is_json_response($r, 200, "the same shop through another owner's link: 200");
ok($rv->{created} && $rv->{lead_id} ne $first->{lead_id}, '... a lead of its own');
is_problem($t->get("/leads/$rv->{lead_id}", token => $tok), 404, '... not visible to the first owner');
is(balance($rival->{id}), 500, '... and a commission for its owner');

# an event id names its install
$r = install({ shop_domain => 'evt-a.example.com', affiliate_link_id => $L1, event_id => 'evt-1' });
my $evt = is_json_response($r, 200, 'an install with event_id: 200');
ok($evt->{created}, '... created');
$before = counts();
$r = install({ shop_domain => 'evt-b.example.com', affiliate_link_id => $L3, event_id => 'evt-1' });
is_deeply(is_json_response($r, 200, 'the event id again, for another shop and link: 200'),
    { %$evt, created => JSON::PP::false }, '... created: false, the first install\'s ids');
is_deeply(counts(), $before, '... and nothing written: no lead for the other shop');

# a disabled link still attributes
is($t->patch_json("/affiliate/links/$L3", { status => 'disabled' }, token => $tok)->{status}, 200,
    'a link disabled');
$r = install({ shop_domain => 'late.example.com', affiliate_link_id => $L3 });
ok(is_json_response($r, 200, 'an install through the disabled link: 200')->{created}, '... attributed');
is(q1("SELECT amount_cents FROM crm.wallet_transactions WHERE source_id = '$r->{json}{attribution_id}'"), 700,
    '... and paid (700 cents)');

# a signature at the edge of the tolerance is fine
$r = install({ shop_domain => 'edge.example.com', affiliate_link_id => $L1 }, t => int(time) - 290);
ok(is_json_response($r, 200, 'signed 290 s ago: 200')->{created}, '... created');
ledger_holds('after the installs');

# --- concurrent installs ----------------------------------------------------------------

my $cbody = json_encode({ shop_domain => 'rush.example.com', affiliate_link_id => $L1, shop_name => 'Rush' });
$before = counts();
my $bal = balance($owner->{id});
my @res = $t->concurrently(100, sub { install(undef, raw => $cbody) });
is(scalar(grep { $_->{status} == 200 } @res), 100, '100 concurrent copies of one install: all 200')
    or diag(join "\n", map { "$_->{status} $_->{content}" } grep { $_->{status} != 200 } @res);
is(scalar(grep { $_->{json} && $_->{json}{created} } @res), 1, '... exactly one says created');
my %ids = map { ($_->{json}{attribution_id} // '') . ' ' . ($_->{json}{lead_id} // '') => 1 } @res;
is(scalar keys %ids, 1, '... all name the same lead and attribution');
is(q1("SELECT count(*) FROM crm.leads WHERE shop_domain = 'rush.example.com'"), 1, '... one lead');
is(q1("SELECT count(*) FROM crm.attributions WHERE shop_domain = 'rush.example.com'"), 1, '... one attribution');
is(q1("SELECT count(*) FROM crm.wallet_transactions t JOIN crm.attributions a ON a.id = t.source_id"
    . " WHERE a.shop_domain = 'rush.example.com'"), 1, '... one ledger row');
is(balance($owner->{id}), $bal + 500, '... 500 more, once');
my $after = counts();
is_deeply({ map { $_ => $after->{$_} - $before->{$_} } keys %$after },
    { leads => 1, lead_stage_events => 1, attributions => 1, conversions => 0, wallets => 0,
      wallet_transactions => 1, audit_log => 0 }, '... and nothing else');

# the same shop through two links at once: one lead, two attributions
@res = $t->concurrently(40, sub {
    install({ shop_domain => 'twin.example.com', affiliate_link_id => $_[0] % 2 ? $L1 : $L0 });
});
is(scalar(grep { $_->{status} == 200 } @res), 40, '40 concurrent installs of one shop through two links: all 200');
is(scalar(grep { $_->{json}{created} } @res), 2, '... two created');
is(q1("SELECT count(*) FROM crm.leads WHERE shop_domain = 'twin.example.com'"), 1, '... one lead');
is(q1("SELECT count(DISTINCT lead_id) || ' ' || count(*) FROM crm.attributions"
    . " WHERE shop_domain = 'twin.example.com'"), '1 2', '... two attributions of that lead');

# one event id for many shops at once: one install
@res = $t->concurrently(30, sub {
    install({ shop_domain => "evt-rush-$_[0].example.com", affiliate_link_id => $L1, event_id => 'evt-rush' });
});
is(scalar(grep { $_->{status} == 200 } @res), 30, '30 concurrent installs with one event id, 30 shops: all 200');
is(scalar(grep { $_->{json}{created} } @res), 1, '... one created');
is(q1("SELECT count(*) FROM crm.leads WHERE shop_domain LIKE 'evt-rush-%'"), 1,
    '... one lead: the others\' were rolled back');
ledger_holds('after the concurrent installs');

# --- conversions ------------------------------------------------------------------------

is_problem(conversion({ amount_cents => 100, currency => 'USD', affiliate_link_id => $L1 }), 422,
    'no order_id: 422', field => 'order_id');
for my $cv (
    [{ order_id => '' }, 'order_id', 'an empty order_id'],
    [{ order_id => 'o' x 201 }, 'order_id', 'a 201-character order_id'],
    [{ amount_cents => -1 }, 'amount_cents', 'a negative amount'],
    [{ amount_cents => 1_000_000_000_001 }, 'amount_cents', 'an amount over 10^12'],
    [{ amount_cents => 10.5 }, 'amount_cents', 'a fractional amount'],
    [{ amount_cents => '100' }, 'amount_cents', 'an amount as a string'],
    [{ amount_cents => undef }, 'amount_cents', 'a null amount'],
    [{ currency => 'US' }, 'currency', 'a two-letter currency'],
    [{ currency => 'EUR' }, 'currency', "another currency than the link's"],
    [{ currency => undef }, 'currency', 'a null currency'],
    [{ affiliate_link_id => undef }, 'click_id', 'no link, click or shop'],
    [{ affiliate_link_id => undef, click_id => 'x' }, 'click_id', 'an unparsable click_id'],
    [{ shop_domain => 'not a domain' }, 'shop_domain', 'a bad shop_domain'],
) {
    is_problem(conversion({ order_id => 'o-bad', amount_cents => 100, currency => 'USD',
        affiliate_link_id => $L1, %{ $cv->[0] } }), 422, "a conversion with $cv->[2]: 422", field => $cv->[1]);
}
is_problem(conversion({ order_id => 'o-404', amount_cents => 100, currency => 'USD', affiliate_link_id => $unknown }),
    404, 'a conversion for an unknown link: 404');
is_problem(conversion({ order_id => 'o-404', amount_cents => 100, currency => 'USD',
    shop_domain => 'never-installed.example.com' }), 404, 'a conversion for a shop with no install: 404');
is(q1("SELECT count(*) FROM crm.conversions"), 0, 'no refused conversion was recorded');

$bal = balance($owner->{id});
$r = conversion({ order_id => 'o-1', amount_cents => 1999, currency => 'usd', click_id => $t->make_click_id($L1) });
my $conv = is_json_response($r, 200, 'a conversion of 1999 cents at 1000 bps: 200');
ok(is_uuid($conv->{conversion_id}), '... a conversion_id');
ok($conv->{created}, '... created');
is($conv->{commission_cents}, 199, '... commission 199 (199.9 rounded down)');
ok(is_json_int($conv->{commission_cents}), '... an integer');
is(balance($owner->{id}), $bal + 199, '... credited to the owner');
is(q1("SELECT kind || ' ' || amount_cents || ' ' || reference FROM crm.wallet_transactions"
    . " WHERE source_id = '$conv->{conversion_id}'"), 'commission_conversion 199 o-1', '... its ledger row');
is(q1("SELECT amount_cents || ' ' || currency || ' ' || commission_cents FROM crm.conversions"
    . " WHERE id = '$conv->{conversion_id}'"), '1999 USD 199', '... the conversion as recorded');
$c = $t->get("/affiliate/links/$L1", token => $tok)->{json}{counters};
is($c->{conversions}, 1, '... the link counts it');

$before = counts();
$r = conversion({ order_id => 'o-1', amount_cents => 500000, currency => 'USD', affiliate_link_id => $L1 });
is_deeply(is_json_response($r, 200, 'the same order again, with another amount: 200'),
    { %$conv, created => JSON::PP::false }, '... created false: the first answer, its commission');
$r = conversion({ order_id => 'o-1', amount_cents => 1999, currency => 'EUR', affiliate_link_id => $L0 });
is_deeply($r->{json}, { %$conv, created => JSON::PP::false }, '... even for another link and currency');
is_deeply(counts(), $before, '... nothing written');

my $rival_bal = balance($rival->{id});
$r = conversion({ order_id => 'o-shop', amount_cents => 1000, currency => 'USD', shop_domain => 'Cool-Shop.myshopify.com' });
is(is_json_response($r, 200, 'a conversion by shop_domain: 200')->{commission_cents}, 100,
    "... paid by the shop's most recent attribution (the other owner's link, 1000 bps): 100");
is(q1("SELECT link_id || ' ' || attribution_id || ' ' || owner_id FROM crm.conversions WHERE order_id = 'o-shop'"),
    "$LR $rv->{attribution_id} $rival->{id}", '... that link, attribution and owner');
is(balance($rival->{id}), $rival_bal + 100, '... credited to that owner');

$r = conversion({ order_id => 'o-free', amount_cents => 1000, currency => 'USD', affiliate_link_id => $L0 });
is(is_json_response($r, 200, 'a conversion through the 0 bps link: 200')->{commission_cents}, 0,
    '... commission 0');
is(q1("SELECT count(*) FROM crm.wallet_transactions WHERE source_id = '$r->{json}{conversion_id}'"), 0,
    '... and no ledger row');
is(q1("SELECT conversions || ' ' || earnings_cents FROM crm.affiliate_link_stats WHERE link_id = '$L0'"), '1 0',
    '... the link counts the conversion');

$r = conversion({ order_id => 'o-att', amount_cents => 1000, currency => 'USD', affiliate_link_id => $L1,
    shop_domain => 'cool-shop.myshopify.com' });
is(q1("SELECT attribution_id FROM crm.conversions WHERE order_id = 'o-att'"), $first->{attribution_id},
    'a conversion naming link and shop records their attribution');

for my $case ([1, 0], [30, 0], [31, 1], [1000, 33], [999_999, 33_299], [1_000_000_000_000, 33_300_000_000]) {
    my ($amount, $want) = @$case;
    $r = conversion({ order_id => "o-333-$amount", amount_cents => $amount, currency => 'USD',
        affiliate_link_id => $L3 });
    is($r->{json}{commission_cents}, $want, "$amount cents at 333 bps: $want (rounded down)");
}
$r = conversion({ order_id => 'o-zero', amount_cents => 0, currency => 'USD', affiliate_link_id => $L1 });
is($r->{json}{commission_cents}, 0, 'a 0-cent order: commission 0');
ledger_holds('after the conversions');

# --- concurrent conversions -------------------------------------------------------------

$before = counts();
$bal = balance($owner->{id});
my $obody = json_encode({ order_id => 'o-rush', amount_cents => 12345, currency => 'USD', affiliate_link_id => $L1 });
@res = $t->concurrently(100, sub { conversion(undef, raw => $obody) });
is(scalar(grep { $_->{status} == 200 } @res), 100, '100 concurrent copies of one conversion: all 200')
    or diag(join "\n", map { "$_->{status} $_->{content}" } grep { $_->{status} != 200 } @res);
is(scalar(grep { $_->{json} && $_->{json}{created} } @res), 1, '... exactly one created');
is(scalar(keys %{ { map { ($_->{json}{conversion_id} // '') => 1 } @res } }), 1, '... one conversion id');
is(scalar(grep { ($_->{json}{commission_cents} // -1) == 1234 } @res), 100, '... all say 1234 cents');
is(q1("SELECT count(*) FROM crm.conversions WHERE order_id = 'o-rush'"), 1, '... one conversion');
is(q1("SELECT count(*) FROM crm.wallet_transactions t JOIN crm.conversions c ON c.id = t.source_id"
    . " WHERE c.order_id = 'o-rush'"), 1, '... one ledger row');
is(balance($owner->{id}), $bal + 1234, '... 1234 more, once');
$after = counts();
is($after->{wallet_transactions} - $before->{wallet_transactions}, 1, '... no other ledger row');
ledger_holds('after the concurrent conversions');

my $st = $t->get("/affiliate/links/$L1", token => $tok)->{json}{counters};
is($st->{earnings_cents}, q1("SELECT coalesce(sum(t.amount_cents), 0) FROM crm.wallet_transactions t"
    . " LEFT JOIN crm.attributions a ON a.id = t.source_id LEFT JOIN crm.conversions c ON c.id = t.source_id"
    . " WHERE coalesce(a.link_id, c.link_id) = '$L1'"), "the link's earnings are the sum of its ledger rows");

$t->done;

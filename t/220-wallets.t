#!/usr/bin/perl
# Wallets: zeros before the first commission, the ledger newest first with
# keyset pagination, and admin payouts with a required Idempotency-Key -
# the same request replays the first answer byte for byte (201, 404 or
# 409), a different one under the same key is refused, concurrent copies
# pay once, concurrent payouts never overdraw.  The ledger cannot be
# changed, and every balance is the sum of its ledger.

use strict;
use warnings;

use Test::More;
use CrmTest;

my $t = CrmTest->new->start;

my ($owner, $tok) = $t->member;
my ($poor, $poor_tok) = $t->member;
my ($adm, $adm_tok) = $t->admin;
my ($adm2, $adm2_tok) = $t->admin;

sub q1 { scalar $t->psql($_[0]) }

sub ledger_holds {
    my ($name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @bad = $t->psql(
        "SELECT w.account_id FROM crm.wallets w"
        . " LEFT JOIN crm.wallet_transactions t ON t.account_id = w.account_id GROUP BY w.account_id"
        . " HAVING w.balance_cents <> coalesce(sum(t.amount_cents), 0)"
        . " OR w.lifetime_earnings_cents <> coalesce(sum(t.amount_cents) FILTER"
        . " (WHERE t.kind LIKE 'commission%'), 0)");
    ok(!@bad, "$name: every balance is the sum of its ledger") or diag("@bad");
}

sub payout {
    my ($account, $body, %o) = @_;
    my %h = (defined $o{key} ? ('Idempotency-Key' => $o{key}) : ());
    my $raw = $o{raw} // json_encode($body);
    return $t->post_raw("/admin/wallets/$account/payouts", $raw, 'application/json',
        token => $o{token} // $adm_tok, headers => \%h);
}

sub ledger_rows { q1("SELECT count(*) FROM crm.wallet_transactions WHERE account_id = '$_[0]'") }

# --- an empty wallet --------------------------------------------------------------------

is_problem($t->get('/wallet'), 401, 'GET /wallet without a token: 401');
is_problem($t->get('/wallet/transactions'), 401, 'GET /wallet/transactions without a token: 401');

my $r = $t->get('/wallet', token => $tok);
is_deeply(is_json_response($r, 200, 'GET /wallet before any commission: 200'),
    { currency => 'USD', balance_cents => 0, lifetime_earnings_cents => 0, updated_at => undef },
    '... zeros in the configured currency');
ok(is_json_int($r->{json}{balance_cents}), '... integers');
$r = $t->get('/wallet/transactions', token => $tok);
is_deeply(is_json_response($r, 200, 'GET /wallet/transactions before any: 200'),
    { items => [], next_cursor => undef }, '... an empty list');

# --- commissions: twelve installs of 1000 -------------------------------------------------

my $L = $t->post_json('/affiliate/links', { target_url => 'https://apps.example.com/',
    commission => { install_cents => 1000, conversion_bps => 500 } }, token => $tok)->{json}{affiliate_link_id};
for my $i (1 .. 12) {
    $r = $t->callback('/callbacks/install', { shop_domain => "shop$i.example.com", affiliate_link_id => $L });
    die "install $i: $r->{status} $r->{content}" unless $r->{status} == 200;
}
$r = $t->callback('/callbacks/conversion', { order_id => 'w-1', amount_cents => 3333, currency => 'USD',
    affiliate_link_id => $L });
is($r->{json}{commission_cents}, 166, 'a conversion of 3333 at 500 bps: 166');

$r = $t->get('/wallet', token => $tok);
my $w = is_json_response($r, 200, 'GET /wallet after commissions: 200');
is_deeply([@$w{qw(currency balance_cents lifetime_earnings_cents)}], ['USD', 12166, 12166],
    '... 12166 USD, all of it earned');
ok(is_rfc3339_utc($w->{updated_at}), '... updated_at');

$r = $t->get('/wallet/transactions', token => $tok);
my $txs = is_json_response($r, 200, 'GET /wallet/transactions: 200')->{items};
is(scalar @$txs, 13, '... 13 rows');
is_deeply([sort keys %{ $txs->[0] }], [sort qw(id kind amount_cents balance_after_cents reference created_at)],
    '... each {id, kind, amount_cents, balance_after_cents, reference, created_at}');
is_deeply([@{ $txs->[0] }{qw(kind amount_cents balance_after_cents reference)}],
    ['commission_conversion', 166, 12166, 'w-1'], '... newest first: the conversion');
is_deeply([@{ $txs->[-1] }{qw(kind amount_cents balance_after_cents reference)}],
    ['commission_install', 1000, 1000, 'shop1.example.com'], '... oldest last: the first install');
my @ids = map { $_->{id} } @$txs;
is_deeply(\@ids, [sort { $b <=> $a } @ids], '... ids descending');

for my $limit (1, 4, 5, 13) {
    my ($items, $err) = $t->page_all('/wallet/transactions', token => $tok, limit => $limit);
    is($err, undef, "limit=$limit: every page 200");
    is_deeply([map { $_->{id} } @$items], \@ids, "limit=$limit: the same rows in the same order");
}
is_problem($t->get('/wallet/transactions?cursor=abc', token => $tok), 422, 'a garbage cursor: 422', field => 'cursor');
my $uuid_cursor = b64url('1763712000123456:' . $owner->{id});
is_problem($t->get("/wallet/transactions?cursor=$uuid_cursor", token => $tok), 422,
    'a UUID cursor on the numeric ledger: 422', field => 'cursor');
is_problem($t->get('/wallet/transactions?kind=payout', token => $tok), 422, 'an unknown parameter: 422',
    field => 'kind');
$r = $t->get('/wallet/transactions', token => $poor_tok);
is_deeply($r->{json}{items}, [], "another member sees none of it");
ledger_holds('after the commissions');

# --- payouts: refused before they start ---------------------------------------------------

my $keys_before = q1('SELECT count(*) FROM crm.idempotency_keys');
my $rows_before = ledger_rows($owner->{id});
my %pay = (amount_cents => 2500, reference => 'PAY-1');

is_problem(payout($owner->{id}, \%pay, key => 'k-0', token => $tok), 403, 'a member paying out: 403');
is_problem($t->post_json("/admin/wallets/$owner->{id}/payouts", \%pay, headers => { 'Idempotency-Key' => 'k-0' }),
    401, 'no token: 401');
is_problem(payout($owner->{id}, \%pay), 422, 'no Idempotency-Key: 422', field => 'Idempotency-Key');
is_problem(payout($owner->{id}, \%pay, key => 'k' x 256), 422, 'a 256-character Idempotency-Key: 422',
    field => 'Idempotency-Key');
is_problem(payout($owner->{id}, \%pay, key => 'k 1'), 422, 'a space in the Idempotency-Key: 422',
    field => 'Idempotency-Key');
for my $c (
    [{ amount_cents => 0, reference => 'x' }, 'amount_cents', 'amount 0'],
    [{ amount_cents => -5, reference => 'x' }, 'amount_cents', 'a negative amount'],
    [{ amount_cents => 1.5, reference => 'x' }, 'amount_cents', 'a fractional amount'],
    [{ amount_cents => '100', reference => 'x' }, 'amount_cents', 'an amount as a string'],
    [{ reference => 'x' }, 'amount_cents', 'no amount'],
    [{ amount_cents => 100 }, 'reference', 'no reference'],
    [{ amount_cents => 100, reference => '' }, 'reference', 'an empty reference'],
    [{ amount_cents => 100, reference => 'r' x 201 }, 'reference', 'a 201-character reference'],
    [{ amount_cents => 100, reference => "a\r\nb" }, 'reference', 'CR LF in the reference'],
    [{ amount_cents => 100, reference => 'x', currency => 'USD' }, 'currency', 'an unknown field'],
) {
    is_problem(payout($owner->{id}, $c->[0], key => 'k-bad'), 422, "a payout with $c->[2]: 422", field => $c->[1]);
}
is_problem(payout($owner->{id}, undef, key => 'k-bad', raw => '{"amount_cents":'), 400, 'malformed JSON: 400');
is_problem(payout('not-a-uuid', \%pay, key => 'k-bad'), 404, 'an account id that is no UUID: 404');
is(q1('SELECT count(*) FROM crm.idempotency_keys'), $keys_before, 'nothing refused before it started was stored');
is(ledger_rows($owner->{id}), $rows_before, '... or paid');

# --- payouts --------------------------------------------------------------------------------

$r = payout($owner->{id}, \%pay, key => 'k-1');
my $paid = is_json_response($r, 201, 'a payout of 2500: 201');
is_deeply([sort keys %$paid], [sort qw(id kind amount_cents balance_after_cents reference created_at)],
    '... a ledger row');
is_deeply([@$paid{qw(kind amount_cents balance_after_cents reference)}], ['payout', -2500, 9666, 'PAY-1'],
    '... kind payout, -2500, 9666 left, the reference');
ok(!exists $r->{headers}{'idempotent-replayed'}, '... not a replay');
is_deeply([@{ $t->get('/wallet', token => $tok)->{json} }{qw(balance_cents lifetime_earnings_cents)}],
    [9666, 12166], '... the balance is 9666, lifetime earnings unchanged');
is($t->get('/wallet/transactions?limit=1', token => $tok)->{json}{items}[0]{id}, $paid->{id},
    '... the newest ledger row');
is(q1("SELECT actor_id FROM crm.wallet_transactions WHERE id = $paid->{id}"), $adm->{id}, '... paid by the admin');
is(q1("SELECT count(*) FROM crm.audit_log WHERE action = 'wallet.payout' AND object_id = '$owner->{id}'"
    . " AND actor_id = '$adm->{id}'"), 1, '... with an audit row');

my $first_body = $r->{content};
$r = payout($owner->{id}, \%pay, key => 'k-1');
is($r->{status}, 201, 'the same key and body again: 201');
is($r->{content}, $first_body, '... the same body, byte for byte');
is($r->{headers}{'idempotent-replayed'}, 'true', '... Idempotent-Replayed: true');
is(ledger_rows($owner->{id}), $rows_before + 1, '... no second ledger row');

$r = payout($owner->{id}, { %pay, amount_cents => 2600 }, key => 'k-1');
is_problem($r, 422, 'the same key with another amount: 422', field => 'Idempotency-Key');
like($r->{json}{detail} // '', qr/different request/, '... "used with a different request"');
is_problem(payout($owner->{id}, undef, key => 'k-1', raw => json_encode(\%pay) . ' '), 422,
    '... with one byte more in the body: 422', field => 'Idempotency-Key');
is_problem(payout($poor->{id}, \%pay, key => 'k-1'), 422, '... for another account: 422', field => 'Idempotency-Key');
is(ledger_rows($owner->{id}), $rows_before + 1, '... none of them paid');

$r = payout($owner->{id}, \%pay, key => 'k-1', token => $adm2_tok);
is(is_json_response($r, 201, "another admin's key of the same name is that admin's own: 201")->{balance_after_cents},
    7166, '... paid: 7166 left');
ok(!exists $r->{headers}{'idempotent-replayed'}, '... not a replay');

# refusals once started are answers too, and replay
$r = payout($owner->{id}, { amount_cents => 7167, reference => 'too much' }, key => 'k-2');
is_problem($r, 409, 'a payout of more than the balance: 409', field => 'amount_cents');
my $refusal = $r->{content};
$r = payout($owner->{id}, { amount_cents => 7167, reference => 'too much' }, key => 'k-2');
is_problem($r, 409, '... repeated: 409');
is($r->{content}, $refusal, '... the same body');
is($r->{headers}{'idempotent-replayed'}, 'true', '... Idempotent-Replayed: true');

$r = payout($poor->{id}, { amount_cents => 1, reference => 'nothing there' }, key => 'k-3');
is_problem($r, 404, 'a payout from an account without a wallet: 404');
$r = payout($poor->{id}, { amount_cents => 1, reference => 'nothing there' }, key => 'k-3');
is_problem($r, 404, '... repeated: 404');
is($r->{headers}{'idempotent-replayed'}, 'true', '... a replay');
is(q1("SELECT count(*) FROM crm.wallets WHERE account_id = '$poor->{id}'"), 0, '... and no wallet was made');

$r = payout($owner->{id}, { amount_cents => 7166, reference => 'all of it' }, key => 'k-4');
is(is_json_response($r, 201, 'a payout of the whole balance: 201')->{balance_after_cents}, 0, '... 0 left');
ledger_holds('after the payouts');

# --- concurrency ------------------------------------------------------------------------------

for my $i (13 .. 20) {
    $t->callback('/callbacks/install', { shop_domain => "shop$i.example.com", affiliate_link_id => $L });
}
is($t->get('/wallet', token => $tok)->{json}{balance_cents}, 8000, 'eight more installs: 8000');

$rows_before = ledger_rows($owner->{id});
my $same = json_encode({ amount_cents => 100, reference => 'rush' });
my @res = $t->concurrently(100, sub { payout($owner->{id}, undef, key => 'k-rush', raw => $same) });
is(scalar(grep { $_->{status} == 201 } @res), 100, '100 concurrent identical payouts: all 201')
    or diag(join "\n", map { "$_->{status} $_->{content}" } grep { $_->{status} != 201 } @res);
is(scalar(keys %{ { map { $_->{content} => 1 } @res } }), 1, '... all with the same body');
is(scalar(grep { ($_->{headers}{'idempotent-replayed'} // '') eq 'true' } @res), 99, '... 99 of them replays');
is(ledger_rows($owner->{id}), $rows_before + 1, '... one ledger row');
is($t->get('/wallet', token => $tok)->{json}{balance_cents}, 7900, '... 100 paid, once');

@res = $t->concurrently(20, sub {
    payout($owner->{id}, { amount_cents => 1000, reference => "drain $_[0]" }, key => "k-drain-$_[0]");
});
is(scalar(grep { $_->{status} == 201 } @res), 7, '20 concurrent payouts of 1000 from 7900: 7 paid');
is(scalar(grep { $_->{status} == 409 } @res), 13, '... 13 refused with 409');
is($t->get('/wallet', token => $tok)->{json}{balance_cents}, 900, '... 900 left, never below 0');
my %after = map { $_->{balance_after_cents} => 1 } map { $_->{json} } grep { $_->{status} == 201 } @res;
is_deeply([sort { $a <=> $b } keys %after], [900, 1900, 2900, 3900, 4900, 5900, 6900],
    '... each paid one saw its own balance');
ledger_holds('after the concurrent payouts');

# --- the ledger cannot be changed -------------------------------------------------------------

my $any = q1("SELECT id FROM crm.wallet_transactions WHERE account_id = '$owner->{id}' ORDER BY id LIMIT 1");
for my $sql (
    ["UPDATE crm.wallet_transactions SET amount_cents = 1 WHERE id = $any", 'UPDATE'],
    ["DELETE FROM crm.wallet_transactions WHERE id = $any", 'DELETE'],
    ['TRUNCATE crm.wallet_transactions CASCADE', 'TRUNCATE'],
) {
    my $ok = eval { $t->psql($sql->[0]); 1 };
    ok(!$ok, "$sql->[1] of a ledger row fails");
    like($@ // '', qr/append-only/, '... because the ledger is append-only');
}
is(q1("SELECT amount_cents FROM crm.wallet_transactions WHERE id = $any"), 1000, 'the row is as it was');
ok(!eval { $t->psql("UPDATE crm.wallets SET balance_cents = -1 WHERE account_id = '$owner->{id}'"); 1 },
    'a negative balance is refused by the schema');
ok(!eval { $t->psql("INSERT INTO crm.wallet_transactions (account_id, kind, amount_cents, balance_after_cents,"
    . " source_id) VALUES ('$owner->{id}', 'commission_install', 5, 5,"
    . " (SELECT source_id FROM crm.wallet_transactions WHERE id = $any))"); 1 },
    'a second commission for the same source is refused by the schema');
ledger_holds('at the end');

$t->done;

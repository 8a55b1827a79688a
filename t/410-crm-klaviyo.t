#!/usr/bin/perl
# CRM integrations with Klaviyo, against a strict local stand-in
# (t/lib/MockCrm.pm): validate, connect, list, status, disconnect and the
# log; credentials sealed (never in a response, a log or the database in
# clear); a provider that refuses, fails, redirects, answers garbage or
# too much, or takes too long; the address rules of outbound calls; and
# other API calls keeping their pace while a provider is slow.

use strict;
use warnings;

use Test::More;
use HTTP::Tiny;
use IO::Socket::INET;
use Time::HiRes qw(time);
use CrmTest;
use MockCrm;

my $t = CrmTest->new;
my $mock = MockCrm->new(dir => $t->dir);
my $KEY = $mock->klaviyo_key;

$t->start_db;
$t->write_config(conf => {
    crm_klaviyo_url => $mock->url,
    crm_outbound_allow => '127.0.0.0/8',
    crm_outbound_connect_timeout => '1s',
    crm_outbound_timeout => '2s',
});
$t->start_nginx;

my ($acc, $tok) = $t->member;
my ($acc2, $tok2) = $t->member;

sub klaviyo { { crm_type => 'klaviyo', credentials => { api_key => $_[0] // $KEY }, @_[1 .. $#_] } }

# --- validate ------------------------------------------------------------------------

my $r = $t->post_json('/crm/validate', klaviyo(), token => $tok);
my $v = is_json_response($r, 200, 'POST /crm/validate with a good key: 200');
is($v->{valid}, JSON::PP::true, '... valid: true');
is_deeply($v->{account}, { id => 'AbC123', name => 'Mock Shop Inc', preferred_currency => 'USD',
    timezone => 'America/New_York' }, '... the account as Klaviyo describes it');

my $seen = $mock->requests->[-1];
is($seen->{method}, 'GET', 'the gateway asked Klaviyo with GET');
is($seen->{path}, '/api/accounts', '... /api/accounts');
is($seen->{headers}{authorization}, "Klaviyo-API-Key $KEY", '... Authorization: Klaviyo-API-Key');
like($seen->{headers}{revision} // '', qr/^\d{4}-\d{2}-\d{2}$/, '... a revision header');
like($seen->{headers}{accept} // '', qr{application/vnd\.api\+json}, '... Accept: JSON:API');

$r = $t->post_json('/crm/validate', klaviyo('pk_wrong_key_000000000000000000000'), token => $tok);
is_problem($r, 422, 'a key Klaviyo refuses: 422', field => 'credentials.api_key');
is($r->{json}{valid}, JSON::PP::false, '... valid: false');
like($r->{json}{detail}, qr/Klaviyo refused the key/, '... saying so');
is($t->psql("SELECT count(*) FROM crm.integrations"), 0, 'validate stores nothing');

# --- bad input ---------------------------------------------------------------------

my @bad = (
    [{ crm_type => 'hubspot', credentials => { api_key => 'x' } }, 'crm_type', 'an unknown crm_type'],
    [{ crm_type => 'klaviyo' }, 'credentials', 'no credentials'],
    [{ crm_type => 'klaviyo', credentials => {} }, 'credentials.api_key', 'no api_key'],
    [{ crm_type => 'klaviyo', credentials => { api_key => 'x', extra => 'y' } }, 'credentials.extra',
        'an extra credential field'],
    [{ crm_type => 'klaviyo', credentials => { api_key => 5 } }, 'credentials.api_key', 'a number as key'],
    [{ crm_type => 'klaviyo', credentials => { api_key => 'k' x 129 } }, 'credentials.api_key',
        'a key of 129 characters'],
    [{ crm_type => 'klaviyo', credentials => { api_key => "pk with space" } }, 'credentials.api_key',
        'a key with a space'],
    [{ crm_type => 'klaviyo', credentials => { api_key => 'x' }, settings => { region => 'eu' } }, 'settings',
        'a setting Klaviyo does not take'],
    [{ crm_type => 'klaviyo', credentials => 'pk_x' }, 'credentials', 'credentials as a string'],
    [{ crm_type => 'klaviyo', credentials => { api_key => 'x' }, mode => 'test' }, 'mode', 'an unknown field'],
);
my $before = @{ $mock->requests };
for my $b (@bad) {
    is_problem($t->post_json('/crm/validate', $b->[0], token => $tok), 422, "$b->[2]: 422",
        field => $b->[1]);
}
is_problem($t->post_raw('/crm/validate', '{"crm_type":', 'application/json', token => $tok), 400,
    'malformed JSON: 400');
is_problem($t->post_raw('/crm/validate', 'crm_type=klaviyo', 'application/x-www-form-urlencoded',
    token => $tok), 415, 'a form: 415');
is_problem($t->post_json('/crm/validate', klaviyo()), 401, 'no token: 401');
is(scalar @{ $mock->requests }, $before, '... and none of them reached Klaviyo');

# a deactivated account's token reaches no provider
{
    my (undef, $admin_tok) = $t->admin;
    my ($gone, $gone_tok) = $t->member;
    is($t->patch_json("/admin/users/$gone->{id}", { is_active => JSON::PP::false }, token => $admin_tok)->{status},
        200, 'an admin deactivates an account');
    my $n = @{ $mock->requests };
    is_problem($t->post_json('/crm/validate', klaviyo(), token => $gone_tok), 401,
        "its still-valid token on POST /crm/validate: 401");
    is(scalar @{ $mock->requests }, $n, '... and Klaviyo never heard of it');
}

# --- connect, list, status ----------------------------------------------------------

is_problem($t->get('/crm/klaviyo/status', token => $tok), 404, 'status before connecting: 404');
is_problem($t->get('/crm/klaviyo/logs', token => $tok), 404, 'logs of a type never connected: 404');

$r = $t->post_json('/crm/connect', klaviyo('pk_wrong_key_000000000000000000000'), token => $tok);
is_problem($r, 422, 'connect with a key Klaviyo refuses: 422', field => 'credentials.api_key');
is($t->psql("SELECT count(*) FROM crm.integrations"), 0, '... and nothing stored');

$r = $t->post_json('/crm/connect', klaviyo(), token => $tok);
my $c = is_json_response($r, 201, 'POST /crm/connect: 201');
is($c->{crm_type}, 'klaviyo', '... crm_type');
is($c->{status}, 'connected', '... status connected');
is_rfc3339_utc($c->{connected_at}, '... connected_at');
is($c->{account}{id}, 'AbC123', '... the account');

$r = $t->post_json('/crm/connect', klaviyo(), token => $tok);
is($r->{status}, 200, 'connecting again replaces the connection: 200');

$r = $t->get('/crm/list', token => $tok);
my $list = is_json_response($r, 200, 'GET /crm/list: 200');
is(scalar @{ $list->{items} }, 1, '... one integration');
is_deeply([ sort keys %{ $list->{items}[0] } ], [qw(connected_at crm_type last_error last_sync_at status)],
    '... with its state and nothing else');

$r = $t->get('/crm/klaviyo/status', token => $tok);
my $st = is_json_response($r, 200, 'GET /crm/klaviyo/status: 200');
is($st->{status}, 'connected', '... connected');
is_deeply($st->{counts}, { pending => 0, ok => 0, failed => 0, dead => 0 }, '... job counts');
is_problem($t->get('/crm/salesforce/status', token => $tok), 404, 'another type: 404');
is_problem($t->get('/crm/hubspot/status', token => $tok), 404, 'an unknown type: 404');

# --- the second account ----------------------------------------------------------

is_deeply($t->get('/crm/list', token => $tok2)->{json}{items}, [], "another account's list is empty");
is_problem($t->get('/crm/klaviyo/status', token => $tok2), 404, '... its status is 404');
is_problem($t->del('/crm/klaviyo/disconnect', token => $tok2), 404, '... it cannot disconnect the first');
is_problem($t->get('/crm/klaviyo/logs', token => $tok2), 404, '... nor read its log');
is($t->get('/crm/klaviyo/status', token => $tok)->{json}{status}, 'connected',
    "... and the first account's connection is untouched");

# --- sealed credentials ---------------------------------------------------------------

my $row = $t->psql("SELECT key_id || ' ' || length(sealed) FROM crm.integrations");
like($row, qr/^[0-9a-f]{16} \d+$/, 'the stored row has a key id and a sealed record');
my $dump = $t->pg_dump;
like($dump, qr/COPY crm\.integrations/, 'the whole database, dumped');
unlike($dump, qr/\Q$KEY\E/, '... holds the key nowhere in clear');
# the row copied to the second account does not open there (checked by
# what the gateway stores: the associated data names the owner)
is($t->psql("SELECT count(*) FROM crm.integrations WHERE sealed IS NOT NULL"), 1, 'one sealed record');

# --- the log -------------------------------------------------------------------------

$r = $t->get('/crm/klaviyo/logs', token => $tok);
my $logs = is_json_response($r, 200, 'GET /crm/klaviyo/logs: 200');
my @ops = map { "$_->{operation} $_->{outcome} " . ($_->{http_status} // '-') } @{ $logs->{items} };
is_deeply([ @ops[0 .. 4] ], ['connect ok 200', 'connect ok 200', 'connect refused 401', 'validate refused 401',
    'validate ok 200'], '... newest first: the connects, the refused ones and the good validation');
is(scalar(grep { ($_->{id} // '') =~ /^\d+$/ && $_->{duration_ms} >= 0 } @{ $logs->{items} }),
    scalar @{ $logs->{items} }, '... each with an id and a duration');
$r = $t->get('/crm/klaviyo/logs?limit=1', token => $tok);
is(scalar @{ $r->{json}{items} }, 1, 'paginated: limit=1');
ok(defined $r->{json}{next_cursor}, '... with a next cursor');
my $p2 = $t->get("/crm/klaviyo/logs?limit=1&cursor=$r->{json}{next_cursor}", token => $tok);
is($p2->{json}{items}[0]{id}, $logs->{items}[1]{id}, '... whose page is the next row');
is_problem($t->get('/crm/klaviyo/logs?page=2', token => $tok), 422, 'an unknown parameter: 422');

# --- provider failures ---------------------------------------------------------------

my %fail = (
    '500' => [502, qr/Klaviyo failed \(HTTP 500\)/],
    'garbage' => [502, qr/cannot be read/],
    'redirect' => [502, qr/redirect, which is not followed/],
    'huge' => [502, qr/more than 1 MiB/],
    '429' => [502, qr/limiting the rate/],
);
for my $mode (sort keys %fail) {
    $mock->mode($mode);
    my $res = $t->post_json('/crm/validate', klaviyo(), token => $tok, allow_5xx => 1);
    is_problem($res, $fail{$mode}[0], "Klaviyo answering $mode: $fail{$mode}[0]");
    like($res->{json}{detail} // '', $fail{$mode}[1], '... naming the provider and what went wrong');
    unlike($res->{content}, qr/surprise|xxxxxxxx|server error occurred/i, "... never its body");
    is($res->{headers}{'retry-after'}, '7', "... with Klaviyo's Retry-After") if $mode eq '429';
}

$mock->mode('slow', delay_ms => 5000);
my $t0 = time;
my $slow_pid = fork // die;
if ($slow_pid == 0) {
    my $res = HTTP::Tiny->new(timeout => 10)->request('POST', $t->base_url . '/crm/validate', {
        headers => { Authorization => "Bearer $tok", 'Content-Type' => 'application/json' },
        content => json_encode(klaviyo()) });
    CrmTest::_write_file($t->dir . '/slow.result', "$res->{status} " . (time - $t0));
    POSIX::_exit(0);
}
# meanwhile, other calls keep their pace: the slow provider holds no thread
select undef, undef, undef, 0.3;
my @lat;
for (1 .. 20) {
    my $s = time;
    my $res = $t->get('/auth/me', token => $tok);
    push @lat, (time - $s) * 1000;
    die "me: $res->{status}" unless $res->{status} == 200;
}
waitpid $slow_pid, 0;
my ($slow_status, $slow_secs) = split / /, CrmTest::_slurp($t->dir . '/slow.result');
is($slow_status, 504, 'Klaviyo taking 5 s against a 2 s timeout: 504');
ok($slow_secs >= 1.9 && $slow_secs < 3.5, sprintf('... after about 2 s (%.2f s)', $slow_secs));
@lat = sort { $a <=> $b } @lat;
my $p95 = $lat[18];
ok($p95 < 200, sprintf('GET /auth/me during the slow call: p95 %.1f ms, median %.1f ms', $p95, $lat[10]));
diag(sprintf 'GET /auth/me while a provider is slow: median %.1f ms, p95 %.1f ms', $lat[10], $p95);

# many slow calls at once, more than the pool has threads: none waits on another
{
    $mock->mode('slow', delay_ms => 1000);
    my $n = 12;
    my @pids;
    my $start = time;
    for my $i (1 .. $n) {
        my $pid = fork // die;
        if ($pid == 0) {
            my $res = HTTP::Tiny->new(timeout => 10)->request('POST', $t->base_url . '/crm/validate', {
                headers => { Authorization => "Bearer $tok", 'Content-Type' => 'application/json' },
                content => json_encode(klaviyo()) });
            CrmTest::_write_file($t->dir . "/par-$i", "$res->{status}");
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    waitpid $_, 0 for @pids;
    my $took = time - $start;
    my @st = map { CrmTest::_slurp($t->dir . "/par-$_") } 1 .. $n;
    is(scalar(grep { $_ eq '200' } @st), $n, "$n validations against a provider taking 1 s each: all 200");
    ok($took < 3, sprintf('... together in %.2f s, not one after another (4 pool threads)', $took));
}
$mock->mode('ok');

# --- addresses ------------------------------------------------------------------------

$t->reconfigure(conf => { crm_outbound_allow => undef }) or BAIL_OUT('reload failed');
$r = $t->post_json('/crm/validate', klaviyo(), token => $tok, allow_5xx => 1);
is_problem($r, 502, 'without the allow list, the loopback stand-in is refused: 502');
like($r->{json}{detail}, qr/not a public one/, '... because its address is not public');
my $closed = CrmTest::free_port($t->port, $t->pg_port, $mock->port);
$t->reconfigure(conf => { crm_klaviyo_url => "http://127.0.0.1:$closed", crm_outbound_allow => '127.0.0.0/8' })
    or BAIL_OUT('reload failed');
$r = $t->post_json('/crm/validate', klaviyo(), token => $tok, allow_5xx => 1);
is_problem($r, 502, 'a port where nothing listens: 502');
like($r->{json}{detail}, qr/cannot be reached/, '... cannot be reached');
$t->reconfigure(conf => { crm_klaviyo_url => $mock->url, crm_outbound_allow => '10.0.0.0/8' })
    or BAIL_OUT('reload failed');
$r = $t->post_json('/crm/validate', klaviyo(), token => $tok, allow_5xx => 1);
like($r->{json}{detail} // '', qr/not a public one/, 'an allow list without loopback: refused');
$t->reconfigure(conf => { crm_outbound_allow => '127.0.0.0/8' }) or BAIL_OUT('reload failed');

# a kept connection is checked again for every call: one made under a
# wider allow list is not reused where the address is not allowed
{
    my $strict = CrmTest::free_port($t->port, $t->pg_port, $mock->port);
    $t->reconfigure(workers => 1, http_extra => "    server {\n        listen 127.0.0.1:$strict;\n"
        . "        location / { crm_outbound_allow off; crm_api; }\n    }\n") or BAIL_OUT('reload failed');
    is($t->post_json('/crm/validate', klaviyo(), token => $tok)->{status}, 200,
        'a call under the allow list leaves a connection to the stand-in open');
    my $n = @{ $mock->requests };
    my $res = HTTP::Tiny->new(timeout => 10)->request('POST', "http://127.0.0.1:$strict/crm/validate", {
        content => json_encode(klaviyo()),
        headers => { Authorization => "Bearer $tok", 'Content-Type' => 'application/json' } });
    is($res->{status}, 502, 'the same worker under no allow list: refused, though that connection is open');
    like($res->{content}, qr/not a public one/, '... the address is not public');
    is(scalar @{ $mock->requests }, $n, '... and the stand-in heard nothing');
}

# --- disconnect --------------------------------------------------------------------

$r = $t->del('/crm/klaviyo/disconnect', token => $tok);
is(is_json_response($r, 200, 'DELETE /crm/klaviyo/disconnect: 200')->{status}, 'disconnected',
    '... disconnected');
is($t->psql("SELECT count(*) FROM crm.integrations WHERE sealed IS NULL AND key_id IS NULL"
    . " AND status = 'disconnected'"), 1, '... the sealed credentials destroyed');
is_problem($t->get('/crm/klaviyo/status', token => $tok), 404, 'status after disconnect: 404');
is_deeply($t->get('/crm/list', token => $tok)->{json}{items}, [], '... not listed');
is_problem($t->del('/crm/klaviyo/disconnect', token => $tok), 404, 'disconnecting again: 404');
is($t->get('/crm/klaviyo/logs', token => $tok)->{status}, 200, 'the log stays readable');
is($t->psql("SELECT count(*) FROM crm.audit_log WHERE object_type = 'integration'"), 3,
    'connect, replace and disconnect are audited');

$r = $t->post_json('/crm/connect', klaviyo(), token => $tok);
is($r->{status}, 201, 'connecting after a disconnect: 201');

# --- nothing secret anywhere ------------------------------------------------------------

unlike($t->error_log, qr/\Q$KEY\E/, 'the key is not in the error log');
$t->done;
$mock->stop;

#!/usr/bin/perl
# Rate limits and the module's nginx variables (issue 12).
#
# First the shipped configuration: conf/crm.conf as the server's locations
# and the limit_req_zone lines of conf/nginx.conf as they are, so that the
# shipped rates are what is tested: logins limited per client address
# (crm_auth), API calls per account ($crm_account_id, crm_account), each
# 429 a problem document with Retry-After: 1; calls without a valid token
# are not limited per account.  Then small limits of the test's own: one
# account's calls limited while another's are not, an identity provider's
# token limited under "idp:<sub>".  Last, $crm_account_id, $crm_role,
# $crm_route and $crm_status_detail as an access log writes them, line by
# line.

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

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!";
    local $/;
    return scalar <$fh>;
}

# --- what conf/ ships ----------------------------------------------------------------

my $nginx_conf = slurp("$ROOT/conf/nginx.conf");
my $crm_conf = slurp("$ROOT/conf/crm.conf");
(my $nginx_code = $nginx_conf) =~ s/#[^\n]*//g;
(my $crm_code = $crm_conf) =~ s/#[^\n]*//g;

my @zones = $nginx_code =~ /^\s*(limit_req_zone\s[^;]*;)/mg;
my ($AUTH_ZONE) = grep { /\bzone=crm_auth:/ } @zones;
my ($ACCT_ZONE) = grep { /\bzone=crm_account:/ } @zones;
like($AUTH_ZONE // '', qr/^limit_req_zone\s+\$binary_remote_addr\s+zone=crm_auth:\S+\s+rate=10r\/s;$/,
    'conf/nginx.conf: limit_req_zone $binary_remote_addr zone=crm_auth rate=10r/s');
like($ACCT_ZONE // '', qr/^limit_req_zone\s+\$crm_account_id\s+zone=crm_account:\S+\s+rate=50r\/s;$/,
    'conf/nginx.conf: limit_req_zone $crm_account_id zone=crm_account rate=50r/s');
BAIL_OUT('conf/nginx.conf lacks the limit_req zones') unless $AUTH_ZONE && $ACCT_ZONE;

my ($root_loc) = $crm_code =~ /^location\s+\/\s*\{([^}]*)\}/m;
my ($auth_loc) = $crm_code =~ /^location\s+~\s+\^\/auth\/\(login\|register\|bootstrap\)[^{]*\{([^}]*)\}/m;
like($root_loc // '', qr/^\s*limit_req\s+zone=crm_account\s+burst=100\s+nodelay;/m,
    'conf/crm.conf: location / limits per account (burst=100 nodelay)');
like($root_loc // '', qr/^\s*limit_req_status\s+429;/m, '... answering 429');
like($root_loc // '', qr/^\s*crm_api;/m, '... in front of crm_api');
like($auth_loc // '', qr/^\s*limit_req\s+zone=crm_auth\s+burst=20\s+nodelay;/m,
    'conf/crm.conf: logins, registrations and bootstraps limited per client (burst=20 nodelay)');
like($auth_loc // '', qr/^\s*limit_req_status\s+429;/m, '... answering 429');

# --- the shipped limits --------------------------------------------------------------

my $t = CrmTest->new;
my $d = $t->dir;
my %edge = $t->edge_config;

$t->start_db;
$t->write_config(
    conf => { $t->idp_conf('a') },
    http_extra => $edge{http_extra} . "    $AUTH_ZONE\n    $ACCT_ZONE\n",
    server_body => "        include $ROOT/conf/crm.conf;",
);
$t->start_nginx;

# a 429 of the error filter: a problem document naming its request
sub limited {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_problem($r, 429, "$name: 429 problem document");
    my $j = ref $r->{json} eq 'HASH' ? $r->{json} : {};
    is($j->{title}, 'Too Many Requests', "$name: title Too Many Requests");
    is($r->{headers}{'retry-after'}, '1', "$name: Retry-After: 1");
    like($r->{headers}{'x-request-id'} // '', qr/^[0-9a-f]{32}\z/, "$name: X-Request-Id");
    is($j->{request_id}, $r->{headers}{'x-request-id'}, "$name: request_id is the X-Request-Id");
}

# 40 logins at once from one address: malformed bodies, so that each one
# that passes costs no hash and the burst is not refilled meanwhile
my $t0 = time;
my @logins = map { $t->post_raw('/auth/login', '{', 'application/json') } 1 .. 40;
my $took = time - $t0;
my @s = map { $_->{status} } @logins;
is_deeply([grep { $_ != 400 && $_ != 429 } @s], [], '40 rapid logins: each 400 (malformed) or 429')
    or diag("@s");
is_deeply([@s[0 .. 19]], [(400) x 20], '... the first 20 (the burst) pass') or diag("@s");
my $allowed = 21 + int($took * 10) + 1;
my $n429 = grep { $_ == 429 } @s;
ok($n429 >= 40 - $allowed, "... at least " . (40 - $allowed) . " of them 429 ($n429, in "
    . sprintf('%.2f', $took) . ' s)') or diag("@s");
my ($first429) = grep { $_->{status} == 429 } @logins;
limited($first429 // { status => 0, headers => {}, content => '' }, 'crm_auth');

# the burst drains at 10 per second
sleep 3;
my ($A, $tokA) = $t->member;
my ($B, $tokB) = $t->member;

# the per-account limit: 50 per second, a burst of 100
my $ua = HTTP::Tiny->new(keep_alive => 1, timeout => 10);
$t0 = time;
my @a = map { $t->get('/auth/me', token => $tokA, ua => $ua) } 1 .. 250;
$took = time - $t0;
@s = map { $_->{status} } @a;
is_deeply([grep { $_ != 200 && $_ != 429 } @s], [], '250 rapid GET /auth/me of one account: each 200 or 429')
    or diag("@s");
is_deeply([grep { $_ != 200 } @s[0 .. 99]], [], '... the first 100 (the burst) pass');
$allowed = 101 + int($took * 50) + 1;
$n429 = grep { $_ == 429 } @s;
ok($n429 >= 250 - $allowed, '... at least ' . (250 - $allowed) . " of them 429 ($n429, in "
    . sprintf('%.2f', $took) . ' s)') or diag("@s");
($first429) = grep { $_->{status} == 429 } @a;
limited($first429 // { status => 0, headers => {}, content => '' }, 'crm_account');
is($t->get('/auth/me', token => $tokA)->{status}, 429, '... GET /auth/me of that account right after: 429');

my $r = $t->get('/auth/me', token => $tokB);
is($r->{status}, 200, 'another account meanwhile: GET /auth/me 200') or diag($r->{content});
@s = map { $t->get('/auth/me', ua => $ua)->{status} } 1 .. 250;
is_deeply([grep { $_ != 401 } @s], [], '250 rapid GET /auth/me without a token: all 401, none limited');
@s = map { $t->get('/auth/me', token => 'not.a.token', ua => $ua)->{status} } 1 .. 150;
is_deeply([grep { $_ != 401 } @s], [], '150 with a garbage token: all 401');
my $forged = $t->forge_token(claims => { sub => $A->{id}, role => 'member' }, key => 'another key');
@s = map { $t->get('/auth/me', token => $forged, ua => $ua)->{status} } 1 .. 150;
is_deeply([grep { $_ != 401 } @s], [], "150 with a forged token naming the limited account: all 401");

# --- small limits, and the variables in a log ----------------------------------------

my $LIMITED = CrmTest::free_port($t->port, $t->pg_port);
my $LOG = "$d/vars.log";
my $WH_KEY = join '', map { chr int rand 256 } 1 .. 32;
my $WH_FILE = "$d/wh-std.secret";
CrmTest::_write_file($WH_FILE, 'whsec_' . encode_base64($WH_KEY, '') . "\n");

my $FORMAT = q|    log_format vars escape=json '{"account":"$crm_account_id","role":"$crm_role",|
    . q|"route":"$crm_route","detail":"$crm_status_detail","status":"$status",|
    . q|"request_id":"$request_id","uri":"$request_uri","port":"$server_port"}';| . "\n";

ok($t->reconfigure(
    # a variable read in the rewrite phase, before "rewrite ... last"
    # changes the URI: the call it made is for the old one
    server_body => "        location / {\n"
        . "            set \$crm_early \$crm_account_id;\n"
        . "            rewrite ^/v1(/.*)\$ \$1 last;\n"
        . "            crm_api;\n"
        . "        }",
    http_extra => $FORMAT
        . "    limit_req_zone \$crm_account_id zone=acct:1m rate=1r/m;\n"
        . "    crm_webhook_source std standard $WH_FILE;\n"
        . "    server {\n"
        . "        listen 127.0.0.1:$LIMITED;\n"
        . "        access_log $LOG vars;\n"
        . "        location / {\n"
        . "            limit_req zone=acct burst=3 nodelay;\n"
        . "            limit_req_status 429;\n"
        . "            crm_api;\n"
        . "        }\n"
        . "    }\n",
    server_extra => "        access_log $LOG vars;\n",
), 'reload: limit_req per $crm_account_id (1r/m, burst 3) on a server of its own, and a log of the variables');

sub limited_at {
    my (@req) = @_;
    local $t->{port} = $LIMITED;
    local $t->{ua} = HTTP::Tiny->new(max_redirect => 0, timeout => 10, agent => 'crm-test/1.0');
    return $t->request(@req);
}

my ($M, $tokM) = $t->merchant(subject => 'vars-merchant');

# what each request's line must say, by request id (or by URI where
# there is no X-Request-Id)
my @want;
sub expect {
    my ($r, $name, %line) = @_;
    my $id = $r->{headers}{'x-request-id'};
    push @want, { name => $name, id => $id, line => { account => '', role => '', route => '',
        detail => '', status => $r->{status}, %line } };
    return $r;
}

# each account: four calls pass, the fifth is limited; others are not
my @am = map { limited_at('GET', '/auth/me', token => $tokA) } 1 .. 5;
is_deeply([map { $_->{status} } @am], [200, 200, 200, 200, 429],
    'per account, 1r/m burst 3: a member\'s 4 calls pass, the 5th is 429');
limited($am[4], 'per account');
expect($am[0], "the member's first call through the limit", account => $A->{id}, role => 'member',
    route => '/auth/me');
expect($am[4], "the member's 429", account => $A->{id}, role => 'member', check => [qw(account role status)]);
my @bm = map { limited_at('GET', '/auth/me', token => $tokB) } 1 .. 4;
is_deeply([map { $_->{status} } @bm], [200, 200, 200, 200], '... another member meanwhile: 4 calls pass');
is(limited_at('GET', '/auth/me', token => $tokB)->{status}, 429, '... and its 5th is limited too');
is(limited_at('GET', '/auth/me', token => $tokA)->{status}, 429, '... the first still is');
$r = limited_at('GET', '/nowhere', token => $tokA);
is($r->{status}, 429, '... on an unrouted path too (the key is the verified token\'s account, whatever the path)');
$r = limited_at('GET', "/leads/$A->{id}", token => $tokA);
is($r->{status}, 429, '... and on another route');

my @mm = map { limited_at('GET', '/auth/me', token => $tokM) } 1 .. 5;
is_deeply([map { $_->{status} } @mm], [200, 200, 200, 200, 429],
    "an identity provider's token: 4 calls pass, the 5th is 429");
expect($mm[0], "the merchant's first call through the limit (its key is idp:<sub>; the log "
    . 'has the account)', account => $M->{id}, role => 'merchant', route => '/auth/me');
expect($mm[4], "the merchant's 429 (the call never ran: idp:<sub>)", account => 'idp:vars-merchant',
    role => 'merchant', check => [qw(account role status)]);

@s = map { limited_at('GET', '/auth/me')->{status} } 1 .. 10;
is_deeply(\@s, [(401) x 10], 'without a token: 10 calls, all 401, never limited');
@s = map { limited_at('GET', '/auth/me', token => 'garbage')->{status} } 1 .. 10;
is_deeply(\@s, [(401) x 10], 'with a garbage token: 10 calls, all 401, never limited');
$r = limited_at('POST', '/auth/login', json => { email => $B->{email}, password => 'correct horse battery' });
is($r->{status}, 200, 'a login without a token through the limit: 200');

# the variables, on the harness's server
my ($admin, $atok) = $t->admin;
my $lead = $t->create_lead($tokA, email => 'vars-lead@example.com');

$r = $t->get("/leads/$lead->{id}", token => $tokA);
is($r->{status}, 200, 'GET /leads/{id}: 200');
expect($r, 'GET /leads/{id}', account => $A->{id}, role => 'member', route => '/leads/{id}');

$r = $t->get('/admin/users', token => $atok);
is($r->{status}, 200, 'GET /admin/users as an admin: 200');
expect($r, 'GET /admin/users', account => $admin->{id}, role => 'admin', route => '/admin/users');

$r = $t->post_json('/leads/', { email => 'no-name@example.com' }, token => $tokA);
is_problem($r, 422, 'POST /leads/ without a name: 422');
expect($r, 'POST /leads/ 422', account => $A->{id}, role => 'member', route => '/leads/',
    detail => $r->{json}{detail} // '?');

$r = $t->get('/leads/');
is_problem($r, 401, 'GET /leads/ without a token: 401');
expect($r, 'GET /leads/ 401', route => '/leads/', detail => $r->{json}{detail} // '?');

$r = $t->get('/leads/', token => 'garbage');
is_problem($r, 401, 'GET /leads/ with a garbage token: 401');
expect($r, 'GET /leads/ with a garbage token', route => '/leads/', detail => $r->{json}{detail} // '?');

$r = $t->get('/nowhere');
is_problem($r, 404, 'GET /nowhere: 404');
expect($r, 'GET /nowhere', detail => $r->{json}{detail} // '?');

$r = $t->get('/nowhere', token => $tokA);
expect($r, 'GET /nowhere with a token', route => '', check => [qw(route status)]);

$r = $t->post_json('/affiliate/links', { target_url => 'https://apps.example.com/vars' }, token => $tokA);
is($r->{status}, 201, 'a link') or diag($r->{content});
my $link = $r->{json}{affiliate_link_id} // 'none';
my %install = (shop_domain => 'vars-shop.example.com', affiliate_link_id => $link);
$r = $t->callback('/callbacks/install', \%install);
is($r->{status}, 200, 'an install callback: 200') or diag($r->{content});
ok($r->{json}{created}, '... created');
expect($r, 'the install callback', route => '/callbacks/install', detail => 'created');
$r = $t->callback('/callbacks/install', \%install);
is($r->{status}, 200, 'the same install again: 200');
ok(!$r->{json}{created}, '... not created');
expect($r, 'the install callback again', route => '/callbacks/install', detail => 'duplicate');
$r = $t->callback('/callbacks/install', \%install, secret => 'not the secret');
is_problem($r, 401, 'an install signed with another secret: 401');
expect($r, 'the refused callback', route => '/callbacks/install', detail => $r->{json}{detail} // '?');

my $SEQ = 0;
sub webhook {
    my ($data, %o) = @_;
    my $body = json_encode({ type => 'contact.updated', data => $data });
    my $id = $o{id} // "msg_vars_" . ++$SEQ;
    my $ts = int time;
    my $sig = 'v1,' . encode_base64(hmac_sha256("$id.$ts.$body", $WH_KEY), '');
    return $t->request('POST', '/integrations/webhooks/std', content => $body, headers => {
        'Content-Type' => 'application/json', 'webhook-id' => $id, 'webhook-timestamp' => $ts,
        'webhook-signature' => $sig });
}
$r = webhook({ email => 'nobody-vars@example.com' }, id => 'msg_vars_once');
is($r->{status}, 202, 'a webhook that matches no lead: 202') or diag($r->{content});
expect($r, 'the unmatched webhook', route => '/integrations/webhooks/{source}', detail => 'unmatched');
$r = webhook({ email => 'nobody-vars@example.com' }, id => 'msg_vars_once');
is($r->{json}{status}, 'duplicate', 'the same webhook again: duplicate');
expect($r, 'the duplicate webhook', route => '/integrations/webhooks/{source}', detail => 'duplicate');
$r = webhook({ email => 'VARS-lead@example.com' });
is($r->{json}{status}, 'attributed', "a webhook naming the lead's email: attributed");
expect($r, 'the attributed webhook', route => '/integrations/webhooks/{source}', detail => 'attributed');

my $tokM2 = $t->idp_token(subject => 'vars-merchant-2', email => 'vars-merchant-2@example.com');
$r = $t->post_json('/auth/bootstrap', {}, token => $tokM2);
is($r->{status}, 201, "a new merchant's first bootstrap: 201") or diag($r->{content});
expect($r, "a new merchant's first bootstrap", account => $r->{json}{id} // '?', role => 'merchant',
    route => '/auth/bootstrap');
$r = $t->post_json('/auth/bootstrap', {}, token => $tokM);
is($r->{status}, 200, "the merchant's second bootstrap: 200");
expect($r, "the merchant's bootstrap", account => $M->{id}, role => 'merchant', route => '/auth/bootstrap');
$r = $t->get('/leads/', token => $tokM);
is($r->{status}, 200, "the merchant's GET /leads/: 200");
expect($r, "the merchant's GET /leads/", account => $M->{id}, role => 'merchant', route => '/leads/');

# the database's role, once the call has loaded the caller
my ($C, $tokC) = $t->member;
$r = $t->patch_json("/admin/users/$C->{id}", { role => 'admin' }, token => $atok);
is($r->{status}, 200, 'a member made admin') or diag($r->{content});
expect($r, 'PATCH /admin/users/{id}', account => $admin->{id}, role => 'admin',
    route => '/admin/users/{id}');
$r = $t->get('/admin/users', token => $tokC);
is($r->{status}, 200, "GET /admin/users with the promoted member's earlier token: 200");
expect($r, "the promoted member's call", account => $C->{id}, role => 'admin', route => '/admin/users');

$r = $t->get('/v1/auth/me', token => $tokC);
is($r->{status}, 200, 'GET /v1/auth/me, rewritten to /auth/me after $crm_account_id was read: 200')
    or diag($r->{content});
is($r->{json}{id}, $C->{id}, '... answered for the rewritten URI, as its caller');
expect($r, 'the rewritten call', account => $C->{id}, role => 'admin', route => '/auth/me');

$r = $t->get('/baseline');
is($r->{status}, 200, 'GET /baseline (not an API location): 200');
push @want, { name => 'GET /baseline', uri => '/baseline',
    line => { account => '', role => '', route => '', detail => '', status => 200 } };

# the log's lines
my (%by_id, %by_uri, @bad);
my $seen = wait_until(10, sub {
    open my $fh, '<', $LOG or return 0;
    (%by_id, %by_uri, @bad) = ();
    while (my $l = <$fh>) {
        my $o = eval { JSON::PP->new->utf8->decode($l) };
        unless (ref $o eq 'HASH') { push @bad, $l; next }
        $by_id{ $o->{request_id} } = $o;
        push @{ $by_uri{ $o->{uri} } }, $o;
    }
    return !grep { defined $_->{id} ? !$by_id{ $_->{id} } : !$by_uri{ $_->{uri} } } @want;
});
ok($seen, 'every request has its line in the log');
is_deeply(\@bad, [], 'every line is a JSON object');
for my $w (@want) {
    my $got = defined $w->{id} ? $by_id{ $w->{id} } : ($by_uri{ $w->{uri} } // [])->[-1];
    ok(defined $w->{id} || defined $w->{uri}, "$w->{name}: the response names its request")
        or next;
    my @keys = @{ delete $w->{line}{check} // [qw(account role route detail status)] };
    my %exp = map { $_ => $w->{line}{$_} } @keys;
    my %g = map { $_ => ($got // {})->{$_} } @keys;
    is_deeply(\%g, \%exp, "$w->{name}: the log line's " . join(', ', @keys))
        or diag('line: ' . json_encode($got // {}));
}

$t->done;

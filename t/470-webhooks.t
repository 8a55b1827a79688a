#!/usr/bin/perl
# Webhook ingestion (issue 11): POST /integrations/webhooks/{source} for
# Standard Webhooks and Shopify senders, GET /integrations/events and
# GET /leads/{id}/events.
#
# Signatures are made here with Digest::SHA, checked first against the
# Standard Webhooks reference vector and against openssl, so that a refusal
# is the gateway's and not the test's.  Every refused delivery (wrong
# secret, stale or future timestamp, a changed byte, a missing header, a
# malformed signature) is a 401 that stores nothing; rotation (two secrets
# in a file) accepts either.  One event delivered 100 times at once is
# stored once.  Identifiers are normalised as on leads, invalid ones kept
# aside; an event is attributed to any account's live lead by shop domain,
# then email, then phone, the affiliate-attributed lead first, then the
# most recently updated.  A Shopify orders/create that carries a ref or a
# click id is the same conversion as POST /callbacks/conversion for that
# order, whichever comes first; app/uninstalled churns the shop's affiliate
# lead.  nginx -t refuses bad sources.

use strict;
use warnings;

use Test::More;
use Digest::SHA qw(hmac_sha256 hmac_sha256_base64);
use MIME::Base64 qw(encode_base64 decode_base64);
use Time::HiRes qw(time);
use CrmTest;

my $NIL = '00000000-0000-4000-8000-000000000000';

my $t = CrmTest->new;
my $d = $t->dir;

sub put_file { CrmTest::_write_file($_[0], $_[1]); return $_[0] }

sub random_bytes { join '', map { chr int rand 256 } 1 .. $_[0] }

sub whsec {
    my ($bytes, %o) = @_;
    my $b = encode_base64($bytes, '');
    $b =~ s/=+\z// if $o{unpadded};
    return "whsec_$b";
}

# --- the Standard Webhooks reference vector --------------------------------------------

my $VEC_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
my $VEC_ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
my $VEC_TS = 1614265330;
my $VEC_BODY = '{"test": 2432232314}';
my $VEC_SIG = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';

# "v1,<base64 HMAC-SHA256 of id.timestamp.body>" under the decoded secret
sub std_sign {
    my ($id, $ts, $body, $key) = @_;
    return 'v1,' . encode_base64(hmac_sha256("$id.$ts.$body", $key), '');
}

# Shopify's header: base64 HMAC-SHA256 of the raw body (Digest::SHA's
# base64 has no padding)
sub shopify_sign {
    my ($body, $secret) = @_;
    my $s = hmac_sha256_base64($body, $secret);
    $s .= '=' while length($s) % 4;
    return $s;
}

my $GENERIC_KEY = decode_base64(substr $VEC_SECRET, 6);
is(length $GENERIC_KEY, 24, 'the reference secret decodes to 24 bytes');
is(std_sign($VEC_ID, $VEC_TS, $VEC_BODY, $GENERIC_KEY), $VEC_SIG,
    "the test's Standard Webhooks signer reproduces the reference vector");

# --- the sources and their secrets ------------------------------------------------------

my @ROT_KEYS = (random_bytes(32), random_bytes(24));
my @SHOP_SECRETS = ('shpss_' . join('', map { sprintf '%02x', int rand 256 } 1 .. 16),
    'second-app-secret-' . int(rand 1e9));
my $GENERIC_FILE = put_file("$d/wh-generic.secret", "$VEC_SECRET\n");
my $ROT_FILE = put_file("$d/wh-rotating.secret",
    whsec($ROT_KEYS[0], unpadded => 1) . "\n\n" . whsec($ROT_KEYS[1]) . "\n");
my $SHOP_FILE = put_file("$d/wh-shopify.secret", join('', map { "$_\n" } @SHOP_SECRETS));

my %KEY = (generic => $GENERIC_KEY, rotating => $ROT_KEYS[0]);

sub sources {
    return join '', map { "    crm_webhook_source @$_;\n" } @_;
}
my $GOOD_SOURCES = sources(['generic', 'standard', $GENERIC_FILE], ['rotating', 'standard', $ROT_FILE],
    ['shopify', 'shopify', $SHOP_FILE]);

# the Shopify signer against openssl's
{
    my $body = '{"id":1,"email":"x@example.com"}';
    my $in = put_file("$d/openssl-in", $body);
    my $ossl = `openssl dgst -sha256 -hmac '$SHOP_SECRETS[0]' -binary '$in' | openssl base64 -A`;
    is(shopify_sign($body, $SHOP_SECRETS[0]), $ossl, "the test's Shopify signer agrees with openssl");
    my $hexkey = unpack 'H*', $GENERIC_KEY;
    my $now = int time;
    put_file($in, "msg_x.$now.$body");
    $ossl = `openssl dgst -sha256 -mac HMAC -macopt hexkey:$hexkey -binary '$in' | openssl base64 -A`;
    is(std_sign('msg_x', $now, $body, $GENERIC_KEY), "v1,$ossl",
        "the test's Standard Webhooks signer agrees with openssl");
}

# --- nginx -t: sources it refuses -------------------------------------------------------
# (before startup: the refusals' [emerg] lines are not the running server's)

sub nginx_t {
    my ($http) = @_;
    unlink "$d/nginx-cmd.log";
    $t->write_config(http_extra => $http);
    return $t->nginx_test_config;
}

my ($ok, $out) = nginx_t($GOOD_SOURCES);
ok($ok, 'nginx -t accepts the three sources') or diag($out);

my %bad = (
    'an unknown scheme' => sources(['generic', 'hmac', $GENERIC_FILE]),
    'a missing secret file' => sources(['generic', 'standard', "$d/no-such.secret"]),
    'an empty secret file' => sources(['generic', 'standard', put_file("$d/empty.secret", "")]),
    'a secret file of blank lines' => sources(['shopify', 'shopify', put_file("$d/blank.secret", "\n\n")]),
    'a standard secret of 16 bytes' => sources(['generic', 'standard',
        put_file("$d/short16.secret", whsec(random_bytes(16)) . "\n")]),
    'a standard secret of 23 bytes' => sources(['generic', 'standard',
        put_file("$d/short23.secret", whsec(random_bytes(23)) . "\n")]),
    'a standard secret of 65 bytes' => sources(['generic', 'standard',
        put_file("$d/long65.secret", whsec(random_bytes(65)) . "\n")]),
    'a standard secret without whsec_' => sources(['generic', 'standard',
        put_file("$d/noprefix.secret", encode_base64(random_bytes(32), '') . "\n")]),
    'a standard secret that is not base64' => sources(['generic', 'standard',
        put_file("$d/notb64.secret", "whsec_!!not*base64/at all!!\n")]),
    'a shopify secret of 15 characters' => sources(['shopify', 'shopify',
        put_file("$d/shop15.secret", "abcdefghijklmno\n")]),
    'a duplicate source name' => sources(['generic', 'standard', $GENERIC_FILE],
        ['generic', 'shopify', $SHOP_FILE]),
    'five secrets' => sources(['rotating', 'standard', put_file("$d/five.secret",
        join('', map { whsec(random_bytes(32)) . "\n" } 1 .. 5))]),
    'an upper-case source name' => sources(['Generic', 'standard', $GENERIC_FILE]),
    'a 33-character source name' => sources([('s' x 33), 'standard', $GENERIC_FILE]),
    'a source name with a dot' => sources(['gen.eric', 'standard', $GENERIC_FILE]),
);
for my $what (sort keys %bad) {
    ($ok, $out) = nginx_t($bad{$what});
    ok(!$ok, "nginx -t refuses $what");
    like($out, qr/\[emerg\].*(?:"crm_webhook_source"|webhook source)/,
        '... with an [emerg] about the webhook source');
}
($ok, $out) = nginx_t(sources(['generic', 'standard', "$d/no-such.secret"]));
like($out, qr/\Q$d\E\/no-such\.secret/, 'a missing secret file is named');

my %good = (
    'a standard secret of 64 bytes' => sources(['generic', 'standard',
        put_file("$d/long64.secret", whsec(random_bytes(64)) . "\n")]),
    'a shopify secret of 16 characters' => sources(['shopify', 'shopify',
        put_file("$d/shop16.secret", "abcdefghijklmnop\n")]),
    'four secrets' => sources(['rotating', 'standard', put_file("$d/four.secret",
        join('', map { whsec(random_bytes(32)) . "\n" } 1 .. 4))]),
    'names of 32 characters with digits, - and _' => sources([('s' x 29) . '1-_', 'standard', $GENERIC_FILE]),
);
for my $what (sort keys %good) {
    ($ok, $out) = nginx_t($good{$what});
    ok($ok, "nginx -t accepts $what") or diag($out);
}

($ok, $out) = nginx_t($GOOD_SOURCES);
ok($ok, 'and the three sources again') or diag($out);

# --- the server -------------------------------------------------------------------------

$t->start;

my ($admin, $atok) = $t->admin;
my ($A, $tok) = $t->member;
my ($B, $tokB) = $t->member;

sub q1 { scalar $t->psql($_[0]) }

sub nevents { q1('SELECT count(*) FROM crm.webhook_events') }

# the stored row of an event, as JSON
sub event_row {
    my ($id) = @_;
    return {} unless is_uuid($id);
    my $j = q1("SELECT row_to_json(e) FROM crm.webhook_events e WHERE id = '$id'");
    return length $j ? json_decode($j) : {};
}

my $SEQ = 0;

# A Standard Webhooks delivery to source $src.  $body: text or data (JSON).
# Options: id, ts (undef: header left out), key (bytes), sig (the header
# verbatim; undef: left out), signed_body/signed_id/signed_ts (what the
# signature covers, when it is not what is sent), headers (merged last;
# undef values remove).
sub std_post {
    my ($src, $body, %o) = @_;
    $body = json_encode($body) if ref $body;
    my $id = exists $o{id} ? $o{id} : "msg_$$" . '_' . ++$SEQ;
    my $ts = exists $o{ts} ? $o{ts} : int time;
    my $key = $o{key} // $KEY{$src} // $GENERIC_KEY;
    my $sig = exists $o{sig} ? $o{sig}
        : std_sign($o{signed_id} // $id // '', $o{signed_ts} // $ts // '',
                   $o{signed_body} // $body, $key);
    my %h = ('Content-Type' => 'application/json', 'webhook-id' => $id,
        'webhook-timestamp' => $ts, 'webhook-signature' => $sig, %{ $o{headers} || {} });
    delete $h{$_} for grep { !defined $h{$_} } keys %h;
    return $t->request('POST', "/integrations/webhooks/$src", content => $body, headers => \%h);
}

# A Shopify delivery.  Options: topic, shop, event (X-Shopify-Event-Id),
# secret, hmac (verbatim), signed_body, src, headers (merged last; undef
# values remove).
sub shop_post {
    my ($body, %o) = @_;
    $body = json_encode($body) if ref $body;
    my %h = ('Content-Type' => 'application/json',
        'X-Shopify-Topic' => $o{topic} // 'customers/update',
        'X-Shopify-Shop-Domain' => $o{shop},
        'X-Shopify-Event-Id' => exists $o{event} ? $o{event} : "evt-$$-" . ++$SEQ,
        'X-Shopify-Hmac-Sha256' => exists $o{hmac} ? $o{hmac}
            : shopify_sign($o{signed_body} // $body, $o{secret} // $SHOP_SECRETS[0]),
        %{ $o{headers} || {} });
    delete $h{$_} for grep { !defined $h{$_} } keys %h;
    return $t->request('POST', '/integrations/webhooks/' . ($o{src} // 'shopify'),
        content => $body, headers => \%h);
}

# a 202 {event_id, status, lead_id} with the status and lead expected;
# returns the body
sub accepted {
    my ($r, $status, $lead, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $j = is_json_response($r, 202, "$name: 202") // {};
    ok(is_uuid($j->{event_id}), "$name: an event_id");
    is_deeply({ %$j, event_id => 'E' }, { event_id => 'E', status => $status, lead_id => $lead },
        "$name: $status, lead " . ($lead // 'null'));
    return $j;
}

# a 401 problem with one of the details, nothing stored since $N was taken
my $N;
sub refused {
    my ($r, $detail, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @want = ref $detail ? @$detail : ($detail);
    is_problem($r, 401, "$name: 401");
    my $got = ref $r->{json} eq 'HASH' ? $r->{json}{detail} // '' : '';
    ok((grep { $_ eq $got } @want), "$name: detail '" . join("' or '", @want) . "'")
        or diag("detail: '$got'");
    is(nevents(), $N, "$name: nothing stored");
}

sub link_of {
    my ($tk) = @_;
    my $r = $t->post_json('/affiliate/links', { target_url => 'https://apps.example.com/crm' }, token => $tk);
    die "link: $r->{status} $r->{content}" unless $r->{status} == 201;
    return $r->{json}{affiliate_link_id};
}

# an affiliate-attributed lead of the link's owner, through the install callback
sub affiliate_lead {
    my ($link, %f) = @_;
    my $r = $t->callback('/callbacks/install', { affiliate_link_id => $link, %f });
    die "install: $r->{status} $r->{content}" unless $r->{status} == 200 && $r->{json}{created};
    return $r->{json}{lead_id};
}

sub touch {
    my ($id, $tk) = @_;
    my $r = $t->put_json("/leads/$id", { notes => 'touched ' . ++$SEQ }, token => $tk);
    die "PUT /leads/$id: $r->{status} $r->{content}" unless $r->{status} == 200;
}

sub history { $t->get("/leads/$_[0]/history?limit=200", token => $_[1])->{json}{items} || [] }

my $LA = link_of($tok);
my $LB = link_of($tokB);

# --- Standard Webhooks: verification ---------------------------------------------------

$N = nevents();
is($N, 0, 'no event stored yet');

refused(std_post('generic', $VEC_BODY, id => $VEC_ID, ts => $VEC_TS, sig => $VEC_SIG), 'stale signature',
    'the reference vector exactly as published (signed in 2021)');
my $r = std_post('generic', $VEC_BODY, id => $VEC_ID);
is_problem($r, 422, 'the reference message signed now verifies, and its body without "type" is 422');
is(nevents(), $N, '... nothing stored');

my $now = int time;
$r = std_post('generic', { type => 'contact.created', data => { email => 'first-contact@example.com' } });
my $first = accepted($r, 'unmatched', undef, 'a signed standard event, now');
$N = nevents();
is($N, 1, '... one event stored');
my $row = event_row($first->{event_id});
is_deeply([@$row{qw(source type status lead_id email)}],
    ['generic', 'contact.created', 'unmatched', undef, 'first-contact@example.com'], '... as sent');

my %ev = (type => 'contact.updated', data => { email => 'refused@example.com' });
my $ev = json_encode(\%ev);
refused(std_post('generic', $ev, key => random_bytes(24)), 'invalid signature', 'signed with another secret');
refused(std_post('generic', $ev, key => $ROT_KEYS[0]), 'invalid signature', "signed with another source's secret");
refused(std_post('generic', $ev, ts => int(time) - 305), 'stale signature', 'signed 305 s ago');
refused(std_post('generic', $ev, ts => int(time) + 305), 'stale signature', 'signed 305 s ahead');
refused(std_post('generic', $ev, ts => int(time) - 86400), 'stale signature', 'signed a day ago');
refused(std_post('generic', $ev, ts => 0), 'stale signature', 'signed at 0');
(my $flipped = $ev) =~ s/refused\@/refuses\@/;
is(length $flipped, length $ev, '(a body with one byte changed)');
refused(std_post('generic', $flipped, signed_body => $ev), 'invalid signature', 'a body with one byte changed');
refused(std_post('generic', "$ev ", signed_body => $ev), 'invalid signature', 'a body with one byte added');
refused(std_post('generic', $ev, signed_id => 'msg_other'), 'invalid signature', 'a signature of another id');
refused(std_post('generic', $ev, signed_ts => int(time) - 1), 'invalid signature',
    'a signature of another timestamp');
refused(std_post('generic', $ev, id => undef), 'missing signature', 'no webhook-id');
refused(std_post('generic', $ev, ts => undef), 'missing signature', 'no webhook-timestamp');
refused(std_post('generic', $ev, sig => undef), 'missing signature', 'no webhook-signature');
refused(std_post('generic', $ev, id => undef, ts => undef, sig => undef), 'missing signature', 'no header at all');

my $good_sig = std_sign('msg_fixed', $now = int time, $ev, $GENERIC_KEY);
(my $good_b64 = $good_sig) =~ s/^v1,//;
my $MAL = ['malformed signature', 'invalid signature'];
for my $c (
    ['garbage', 'garbage'],
    ['v1', 'a version without a signature'],
    ['v1,', 'an empty signature'],
    ['v1,!!!!****', 'a signature that is not base64'],
    ['v1,' . substr($good_b64, 0, 40), 'a truncated signature'],
    ['v1,' . unpack('H*', decode_base64($good_b64)), 'the signature in hex'],
    [",$good_b64", 'no version'],
    ["v2,$good_b64", 'only an unknown version'],
) {
    refused(std_post('generic', $ev, id => 'msg_fixed', ts => $now, sig => $c->[0]), $MAL,
        "malformed signature ($c->[1])");
}
refused(std_post('generic', $ev, ts => 'abc', sig => $good_sig), ['malformed signature', 'stale signature'],
    'a timestamp that is not a number');
refused(std_post('generic', $ev, ts => "$now.5", signed_ts => "$now.5"), ['malformed signature', 'stale signature'],
    'a timestamp with a fraction');
refused(std_post('generic', $ev, id => 'm' x 256), $MAL, 'a webhook-id of 256 characters');

# several signatures in one header
my $wrong = std_sign('msg_fixed', $now, $ev, random_bytes(24));
refused(std_post('generic', $ev, id => 'msg_fixed', ts => $now, sig => "v1a,$good_b64 v1a,$good_b64"), $MAL,
    'only v1a entries (carrying the right MAC): refused');
refused(std_post('generic', $ev, id => 'msg_fixed', ts => $now, sig => "$wrong $wrong"), 'invalid signature',
    'two wrong v1 entries');
is(nevents(), 1, 'no refused delivery stored anything');

$r = std_post('generic', $ev, id => 'msg_fixed', ts => $now, sig => "$wrong $good_sig");
accepted($r, 'unmatched', undef, 'an old wrong v1 entry, then the right one');
$now = int time;
my $body2 = json_encode({ %ev, type => 'contact.mixed' });
$r = std_post('generic', $body2, id => 'msg_mixed', ts => $now,
    sig => 'v1a,' . encode_base64('x' x 32, '') . ' ' . std_sign('msg_mixed', $now, $body2, $GENERIC_KEY));
accepted($r, 'unmatched', undef, 'a v1a entry, then the right v1 entry');
$r = std_post('generic', { %ev, type => 'contact.tolerance' }, ts => int(time) - 290);
accepted($r, 'unmatched', undef, 'signed 290 s ago (within the tolerance)');
$r = std_post('generic', { %ev, type => 'contact.tolerance' }, ts => int(time) + 290);
accepted($r, 'unmatched', undef, 'signed 290 s ahead (within the tolerance)');
$N = nevents();
is($N, 5, 'five events stored so far');

# rotation: either secret of the file verifies, nothing else does
$r = std_post('rotating', { type => 'rot.old' }, key => $ROT_KEYS[0]);
accepted($r, 'unmatched', undef, 'rotation: signed with the first secret (written unpadded)');
$r = std_post('rotating', { type => 'rot.new' }, key => $ROT_KEYS[1]);
accepted($r, 'unmatched', undef, 'rotation: signed with the second secret');
$now = int time;
my $rb = json_encode({ type => 'rot.both' });
$r = std_post('rotating', $rb, id => 'msg_rot_both', ts => $now,
    sig => std_sign('msg_rot_both', $now, $rb, random_bytes(32)) . ' '
        . std_sign('msg_rot_both', $now, $rb, $ROT_KEYS[1]));
accepted($r, 'unmatched', undef, 'rotation: a wrong entry and one under the second secret');
$N = nevents();
refused(std_post('rotating', { type => 'rot.bad' }, key => random_bytes(32)), 'invalid signature',
    'rotation: a third secret');
refused(std_post('rotating', { type => 'rot.bad' }, key => $GENERIC_KEY), 'invalid signature',
    "rotation: the other source's secret");
refused(std_post('generic', { type => 'rot.bad' }, key => $ROT_KEYS[1]), 'invalid signature',
    "the rotating source's secret on the generic source");

# unknown source
$r = std_post('nope', { type => 'x.y' }, key => $GENERIC_KEY);
is_problem($r, 404, 'an unknown source (signed with a real secret): 404');
is_problem(shop_post({ id => 1 }, src => 'shopify-eu'), 404, 'an unknown source with Shopify headers: 404');
is(nevents(), $N, '... nothing stored');

# bodies after a good signature
for my $c (
    ['{"type":', 400, 'malformed JSON'],
    ['', 400, 'an empty body'],
    ['[{"type":"a.b"}]', 422, 'a JSON array (valid JSON, not an object: as the callbacks answer)'],
    ['"a.b"', 422, 'a JSON string'],
    ['{"data":{"email":"x@example.com"}}', 422, 'no type'],
    ['{"type":""}', 422, 'an empty type'],
    ['{"type":7}', 422, 'a number as type'],
    ['{"type":null}', 422, 'a null type'],
    [json_encode({ type => 't' x 201 }), 422, 'a type of 201 characters'],
) {
    is_problem(std_post('generic', $c->[0]), $c->[1], "a signed standard event with $c->[2]: $c->[1]");
}
is(nevents(), $N, '... none stored');
$r = std_post('generic', { type => 't' x 200 });
accepted($r, 'unmatched', undef, 'a type of 200 characters');
$N = nevents();

# --- Shopify: verification --------------------------------------------------------------

my %order = (id => 820982911946154508, email => 'sig-check@example.com', total_price => '10.00', currency => 'USD');
my $ob = json_encode(\%order);
$r = shop_post($ob, topic => 'customers/update', shop => 'sig-shop.myshopify.com');
accepted($r, 'unmatched', undef, 'a Shopify delivery signed with the first secret');
$r = shop_post($ob, topic => 'customers/update', shop => 'sig-shop.myshopify.com', secret => $SHOP_SECRETS[1]);
accepted($r, 'unmatched', undef, 'rotation: signed with the second secret');
$N = nevents();
refused(shop_post($ob, secret => 'not-the-app-secret-at-all'), 'invalid signature', 'Shopify: another secret');
refused(shop_post($ob, hmac => undef), 'missing signature', 'Shopify: no X-Shopify-Hmac-Sha256');
(my $ob2 = $ob) =~ s/sig-check/sig-chock/;
refused(shop_post($ob2, signed_body => $ob), 'invalid signature', 'Shopify: a body with one byte changed');
refused(shop_post("$ob\n", signed_body => $ob), 'invalid signature', 'Shopify: a body with one byte added');
refused(shop_post($ob, hmac => 'not base64 at all!'), $MAL, 'Shopify: a malformed HMAC');
refused(shop_post($ob, hmac => unpack('H*', hmac_sha256($ob, $SHOP_SECRETS[0]))), $MAL,
    'Shopify: the HMAC in hex');
refused(shop_post($ob, hmac => substr(shopify_sign($ob, $SHOP_SECRETS[0]), 0, 40)), $MAL,
    'Shopify: a truncated HMAC');
refused(shop_post($ob, hmac => 'v1,' . shopify_sign($ob, $SHOP_SECRETS[0])), $MAL,
    'Shopify: a standard-style header');
refused(shop_post($ob, src => 'generic'), 'missing signature', 'Shopify headers on a standard source');
refused(std_post('shopify', { type => 'a.b' }, key => $SHOP_SECRETS[0]), 'missing signature',
    'standard headers on the Shopify source');

# bodies and headers after a good signature
is_problem(shop_post('{"id":', topic => 'orders/create'), 400, 'Shopify: malformed JSON: 400');
is_problem(shop_post('[1]', topic => 'orders/create'), 422, 'Shopify: a JSON array: 422');
is_problem(shop_post($ob, headers => { 'X-Shopify-Topic' => undef }), 422, 'Shopify: no X-Shopify-Topic: 422');
is_problem(shop_post($ob, event => undef), 422, 'Shopify: neither X-Shopify-Event-Id nor X-Shopify-Webhook-Id: 422');
is(nevents(), $N, '... nothing stored');

my $wid = "wh-$$-only";
$r = shop_post($ob, event => undef, headers => { 'X-Shopify-Webhook-Id' => $wid });
my $j = accepted($r, 'unmatched', undef, 'Shopify: X-Shopify-Webhook-Id alone names the event');
is(event_row($j->{event_id})->{source_event_id}, $wid, '... stored as the event id');
my $eid = "evt-$$-both";
$r = shop_post($ob, event => $eid, headers => { 'X-Shopify-Webhook-Id' => "wh-$$-both" });
$j = accepted($r, 'unmatched', undef, 'Shopify: both ids');
is_deeply([@{ event_row($j->{event_id}) }{qw(source_event_id type)}], [$eid, 'customers/update'],
    '... X-Shopify-Event-Id is the event id, the topic the type');
$r = shop_post($ob, event => undef, headers => { 'X-Shopify-Webhook-Id' => $eid });
is_deeply(is_json_response($r, 202, '... a later delivery whose webhook id is that event id: 202'),
    { %$j, status => 'duplicate' }, '... duplicate');
$N = nevents();

# --- duplicates -------------------------------------------------------------------------

my $dupl = $t->create_lead($tok, email => 'dup-target@example.com');
$now = int time;
my $db = json_encode({ type => 'contact.rush', data => { email => 'DUP-target@example.com' } });
my %dh = ('Content-Type' => 'application/json', 'webhook-id' => 'msg_rush', 'webhook-timestamp' => $now,
    'webhook-signature' => std_sign('msg_rush', $now, $db, $GENERIC_KEY));
my @res = $t->concurrently(100, sub {
    $t->request('POST', '/integrations/webhooks/generic', content => $db, headers => \%dh);
});
is(scalar(grep { $_->{status} == 202 } @res), 100, '100 concurrent deliveries of one event: all 202')
    or diag(join "\n", map { "$_->{status} $_->{content}" } grep { $_->{status} != 202 } @res);
is(scalar(grep { ($_->{json}{status} // '') eq 'attributed' } @res), 1, '... one attributed');
is(scalar(grep { ($_->{json}{status} // '') eq 'duplicate' } @res), 99, '... 99 duplicate');
my ($rush_first) = grep { is_uuid($_->{json}{event_id}) } @res;
my $rush = $rush_first ? $rush_first->{json}{event_id} : '';
is_deeply([sort keys %{ { map { ($_->{json}{event_id} // '') . ' ' . ($_->{json}{lead_id} // '') => 1 } @res } }],
    ["$rush $dupl->{id}"], '... all with the same event_id and the lead');
is(q1("SELECT count(*) FROM crm.webhook_events WHERE source = 'generic' AND source_event_id = 'msg_rush'"), 1,
    '... one stored');
is(nevents(), $N + 1, '... and nothing else');
$N = nevents();

my $payload = q1("SELECT payload::text FROM crm.webhook_events WHERE id = '$rush'");
$r = std_post('generic', { type => 'contact.other', data => { email => 'someone-else@example.com' } }, id => 'msg_rush');
is_deeply(is_json_response($r, 202, 'the same webhook-id later, another body: 202'),
    { event_id => $rush, status => 'duplicate', lead_id => $dupl->{id} }, "... duplicate, the first event's ids");
is(q1("SELECT payload::text || ' ' || type FROM crm.webhook_events WHERE id = '$rush'"), "$payload contact.rush",
    '... the stored event unchanged');
is(nevents(), $N, '... nothing stored');
$r = std_post('rotating', { type => 'contact.rush' }, id => 'msg_rush');
my $other_src = accepted($r, 'unmatched', undef, 'the same id from another source: a new event');
isnt($other_src->{event_id}, $rush, '... of its own');
$N = nevents();

# --- identifiers ------------------------------------------------------------------------

$r = std_post('generic', { type => 'ident.valid', data => { email => ' Mixed.CASE@Example.COM ',
    phone => '+1 (415) 555-2671', shop_domain => 'https://Foo.MyShopify.com/admin', external_id => 12345 } });
my $iv = accepted($r, 'unmatched', undef, 'an event with identifiers to normalise');
$r = std_post('generic', { type => 'ident.invalid', data => { email => 'not-an-email',
    phone => '12', shop_domain => 'not a domain', external_id => 'cus_77' } });
my $ii = accepted($r, 'unmatched', undef, 'an event with invalid identifiers');
$r = std_post('generic', { type => 'ident.mixed', data => { email => 'Half@Example.com', phone => '0415 555 2671' } });
my $im = accepted($r, 'unmatched', undef, 'an event with one valid, one invalid identifier');
$r = std_post('generic', { type => 'ident.none' });
my $in = accepted($r, 'unmatched', undef, 'an event without data');

sub one_event {
    my ($query) = @_;
    my $r = $t->get("/integrations/events?$query", token => $atok);
    my $items = $r->{status} == 200 && ref $r->{json}{items} eq 'ARRAY' ? $r->{json}{items} : [];
    diag("GET /integrations/events?$query: $r->{status} $r->{content}") unless @$items == 1;
    return $items->[0] // {};
}

my $item = one_event('type=ident.valid');
ok(!is_json_int($item->{identifiers}{external_id}), 'GET /integrations/events: external_id 12345 as a string');
ok(is_rfc3339_utc($item->{received_at}), '... received_at in RFC 3339 UTC');
is_deeply($item, { id => $iv->{event_id}, source => 'generic', source_event_id => $item->{source_event_id},
    type => 'ident.valid', status => 'unmatched', lead_id => undef,
    identifiers => { email => 'mixed.case@example.com', phone => '+14155552671',
        shop_domain => 'foo.myshopify.com', external_id => '12345' },
    invalid_identifiers => {}, action => undef, conversion_id => undef, detail => undef,
    received_at => $item->{received_at} }, '... the normalised identifiers, the whole item');
like($item->{source_event_id} // '', qr/^msg_/, '... its webhook-id');
$row = event_row($iv->{event_id});
is_deeply([@$row{qw(email phone shop_domain external_id invalid)}],
    ['mixed.case@example.com', '+14155552671', 'foo.myshopify.com', '12345', {}], '... as stored');

$item = one_event('type=ident.invalid');
is_deeply([@$item{qw(id identifiers invalid_identifiers)}], [$ii->{event_id},
    { email => undef, phone => undef, shop_domain => undef, external_id => 'cus_77' },
    { email => 'not-an-email', phone => '12', shop_domain => 'not a domain' }],
    'invalid identifiers: null in identifiers, as sent in invalid_identifiers');
$row = event_row($ii->{event_id});
is_deeply([@$row{qw(email phone shop_domain external_id invalid)}],
    [undef, undef, undef, 'cus_77', { email => 'not-an-email', phone => '12', shop_domain => 'not a domain' }],
    '... as stored');
$item = one_event('type=ident.mixed');
is_deeply([@$item{qw(identifiers invalid_identifiers)}],
    [{ email => 'half@example.com', phone => undef, shop_domain => undef, external_id => undef },
     { phone => '0415 555 2671' }], 'one valid, one invalid (a national number is not guessed)');
$item = one_event('type=ident.none');
is_deeply([@$item{qw(identifiers invalid_identifiers)}],
    [{ email => undef, phone => undef, shop_domain => undef, external_id => undef }, {}], 'no data: no identifiers');

# Shopify's places for identifiers
$r = shop_post({ id => 4242, email => 'Primary@Example.com', contact_email => 'contact@example.com',
    phone => '+44 (0)20 7946 0958', customer => { email => 'cust@example.com', phone => '+15550001111' },
    myshopify_domain => 'body-shop.myshopify.com' }, topic => 'ident/a', shop => 'Foo.MyShopify.com');
accepted($r, 'unmatched', undef, 'Shopify: shop domain header, email, phone, id');
$item = one_event('source=shopify&type=ident%2Fa');
is_deeply($item->{identifiers}, { email => 'primary@example.com', phone => '+442079460958',
    shop_domain => 'foo.myshopify.com', external_id => '4242' }, '... the header and the body\'s email, phone, id');
$r = shop_post({ id => '5151', contact_email => 'Contact@Example.com', customer => { email => 'cust@example.com',
    phone => '+1 650 555 0101' }, myshopify_domain => 'Body-Shop.myshopify.com', domain => 'www.body.example.com' },
    topic => 'ident/b');
accepted($r, 'unmatched', undef, 'Shopify: no header, contact_email, customer phone');
$item = one_event('type=ident%2Fb');
is_deeply($item->{identifiers}, { email => 'contact@example.com', phone => '+16505550101',
    shop_domain => 'body-shop.myshopify.com', external_id => '5151' },
    '... myshopify_domain, contact_email, customer.phone');
$r = shop_post({ customer => { email => 'Cust@Example.com' }, domain => 'WWW.Body.Example.com' }, topic => 'ident/c');
accepted($r, 'unmatched', undef, 'Shopify: only customer.email and domain');
$item = one_event('type=ident%2Fc');
is_deeply($item->{identifiers}, { email => 'cust@example.com', phone => undef,
    shop_domain => 'www.body.example.com', external_id => undef }, '... customer.email, domain');
$r = shop_post({ id => 1, email => 'bad email', phone => 'call me' }, topic => 'ident/d', shop => 'not a domain');
accepted($r, 'unmatched', undef, 'Shopify: invalid identifiers');
$item = one_event('type=ident%2Fd');
is_deeply([@$item{qw(identifiers invalid_identifiers)}],
    [{ email => undef, phone => undef, shop_domain => undef, external_id => '1' },
     { email => 'bad email', phone => 'call me', shop_domain => 'not a domain' }], '... kept aside, as sent');
$N = nevents();

# --- attribution ------------------------------------------------------------------------

sub attributed_to {
    my ($data, $lead, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $r = std_post('generic', { type => 'attr.test', data => $data });
    return accepted($r, defined $lead ? 'attributed' : 'unmatched', $lead, $name);
}

# shop domain, then email, then phone, across accounts
my $S = $t->create_lead($tokB, shop_domain => 'order-shop.example.com')->{id};
my $E = $t->create_lead($tok, email => 'order@example.com')->{id};
my $P = $t->create_lead($tok, phone => '+1 415 555 0100')->{id};
touch($P, $tok);
attributed_to({ shop_domain => 'https://ORDER-shop.example.com/', email => 'order@example.com',
    phone => '+14155550100' }, $S, 'shop, email and phone each match a lead: the shop\'s (another account\'s)');
attributed_to({ shop_domain => 'nobody.example.com', email => 'Order@Example.com', phone => '+14155550100' }, $E,
    'the shop matches nothing: the email\'s');
attributed_to({ email => 'order@example.com', phone => '+14155550100' }, $E, 'email and phone: the email\'s');
attributed_to({ email => 'nobody@example.com', phone => '+1 (415) 555-0100' }, $P,
    'only the phone matches: the phone\'s');
attributed_to({ shop_domain => 'nobody.example.com', email => 'nobody@example.com', phone => '+14155559999' }, undef,
    'nothing matches: unmatched');
attributed_to({ email => 'ORDER@example.com.evil.example' }, undef, 'a longer email is no match');
attributed_to({ phone => '12', email => 'bad' }, undef, 'only invalid identifiers: unmatched');
is(q1("SELECT count(*) FROM crm.leads WHERE email = 'nobody\@example.com' OR shop_domain = 'nobody.example.com'"), 0,
    'an unmatched event creates no lead');

# the affiliate-attributed lead first, then the most recently updated
my $M1 = $t->create_lead($tok, email => 'dup@example.com')->{id};
my $AF = affiliate_lead($LB, shop_domain => 'dup-aff.example.com', email => 'DUP@example.com');
my $afl = $t->get("/leads/$AF", token => $tokB)->{json};
is_deeply([@$afl{qw(email affiliate_link_id)}], ['dup@example.com', $LB], '(an affiliate lead with the email)');
my $M2 = $t->create_lead($tokB, email => 'dup@example.com')->{id};
touch($M1, $tok);
attributed_to({ email => 'dup@example.com' }, $AF,
    'three leads with the email: the affiliate one, though two others are more recent');

my $R1 = $t->create_lead($tok, phone => '+14155550123')->{id};
my $R2 = $t->create_lead($tokB, phone => '+1 415 555 0123')->{id};
attributed_to({ phone => '+14155550123' }, $R2, 'two leads with the phone: the more recent');
touch($R1, $tok);
attributed_to({ phone => '+14155550123' }, $R1, '... and after the other was updated: that one');

my $AF1 = affiliate_lead($LA, shop_domain => 'twin-aff-1.example.com', email => 'twin@example.com');
my $AF2 = affiliate_lead($LB, shop_domain => 'twin-aff-2.example.com', email => 'twin@example.com');
my $TM = $t->create_lead($tok, email => 'twin@example.com')->{id};
touch($TM, $tok);
attributed_to({ email => 'twin@example.com' }, $AF2, 'two affiliate leads and a newer manual one: the newer affiliate lead');
touch($AF1, $tok);
attributed_to({ email => 'twin@example.com' }, $AF1, '... the other affiliate lead once it is updated');

# deleted leads never match
my $G = $t->create_lead($tok, email => 'gone@example.com')->{id};
is($t->del("/leads/$G", token => $tok)->{status}, 204, '(a lead deleted)');
attributed_to({ email => 'gone@example.com' }, undef, 'the only lead with the email is deleted: unmatched');
my $AD = affiliate_lead($LA, shop_domain => 'del-aff.example.com');
my $MD = $t->create_lead($tokB, shop_domain => 'del-aff.example.com')->{id};
touch($AD, $tok);
is($t->del("/leads/$AD", token => $tok)->{status}, 204, '(an affiliate lead deleted)');
attributed_to({ shop_domain => 'del-aff.example.com' }, $MD, 'a deleted affiliate lead and a live one: the live one');
my $GS = $t->create_lead($tok, shop_domain => 'gone-shop.example.com')->{id};
my $E2 = $t->create_lead($tokB, email => 'after-gone@example.com')->{id};
is($t->del("/leads/$GS", token => $tok)->{status}, 204, '(a lead with a shop deleted)');
attributed_to({ shop_domain => 'gone-shop.example.com', email => 'after-gone@example.com' }, $E2,
    'the shop\'s only lead is deleted: the email\'s lead');

# Shopify matches the same way
$r = shop_post({ id => 77, email => 'order@example.com' }, topic => 'customers/update', shop => 'Order-Shop.example.com');
accepted($r, 'attributed', $S, 'Shopify: the shop domain header matches first');
$r = shop_post({ id => 78, customer => { email => 'Order@Example.com' } }, topic => 'customers/update');
accepted($r, 'attributed', $E, 'Shopify: customer.email matches');
$N = nevents();

# --- orders/create and the conversion callback -------------------------------------------

my $CSHOP = 'conv-shop.example.com';
my $LC = link_of($tok);
my $CL = affiliate_lead($LC, shop_domain => $CSHOP, email => 'conv-owner@example.com');

sub order_event {
    my (%o) = @_;
    my %body = (id => $o{id}, email => 'buyer@example.com', total_price => $o{total} // '186.90',
        currency => $o{currency} // 'USD', note_attributes => $o{notes} // [],
        landing_site => $o{landing} // '/', financial_status => 'paid');
    return shop_post(\%body, topic => 'orders/create', shop => $o{shop} // $CSHOP,
        (defined $o{event} ? (event => $o{event}) : ()));
}

# amounts: decimals beyond the currency's own must be zeros
for my $c (['186.9', 'USD', 18690], ['186.900', 'USD', 18690], ['0.01', 'USD', 1]) {
    my ($total, $cur, $cents) = @$c;
    my $oid = 910000 + int(rand 1e6);
    my $r0 = order_event(id => $oid, total => $total, currency => $cur, shop => 'amounts.example.com',
        notes => [{ name => 'ref', value => $LC }]);
    is($r0->{status}, 202, "orders/create, total_price \"$total\" $cur: 202");
    is(q1("SELECT amount_cents FROM crm.conversions WHERE order_id = '$oid'"), $cents, "... $cents minor units");
}
for my $c (['1000.00', 'JPY'], ['1000', 'JPY']) {
    my ($total, $cur) = @$c;
    my $r0 = order_event(id => 920000 + int(rand 1e6), total => $total, currency => $cur,
        shop => 'amounts.example.com', notes => [{ name => 'ref', value => $LC }]);
    my $d = is_json_response($r0, 202, "orders/create, total_price \"$total\" JPY: 202") // {};
    like(event_row($d->{event_id})->{detail} // '', qr/currency, USD/,
        '... read as an amount of yen; refused only for the link\'s currency');
}
for my $total ('186.', '.5', '1.2.3', '186.999', 'abc') {
    my $r0 = order_event(id => 930000 + int(rand 1e6), total => $total, shop => 'amounts.example.com',
        notes => [{ name => 'ref', value => $LC }]);
    my $d = is_json_response($r0, 202, "orders/create, total_price \"$total\": 202") // {};
    like(event_row($d->{event_id})->{detail} // '', qr/total_price/, '... stored with the reason, no conversion');
}

sub conversions_of { [ $t->psql("SELECT id || ' ' || amount_cents || ' ' || currency || ' ' || commission_cents"
    . " || ' ' || link_id FROM crm.conversions WHERE order_id = '$_[0]'") ] }

sub ledger_of { q1("SELECT count(*) FROM crm.wallet_transactions t JOIN crm.conversions c ON c.id = t.source_id"
    . " WHERE t.kind = 'commission_conversion' AND c.order_id = '$_[0]'") }

# the webhook first
$r = order_event(id => 900001, notes => [{ name => 'gift', value => 'no' }, { name => 'ref', value => $LC }]);
my $o1 = accepted($r, 'attributed', $CL, 'orders/create with ref in note_attributes');
$row = event_row($o1->{event_id});
is($row->{action}, 'conversion', '... action conversion');
my $cid1 = $row->{conversion_id};
ok(is_uuid($cid1), '... and its conversion_id');
is_deeply(conversions_of(900001), ["$cid1 18690 USD 1869 $LC"],
    '... one conversion: "186.90" is 18690 cents, 1869 commission at 1000 bps, the link');
is(ledger_of(900001), 1, '... one commission_conversion in the ledger');
$r = $t->callback('/callbacks/conversion', { order_id => '900001', amount_cents => 18690, currency => 'USD',
    affiliate_link_id => $LC });
is_deeply(is_json_response($r, 200, 'then POST /callbacks/conversion for the order: 200'),
    { conversion_id => $cid1, commission_cents => 1869, created => JSON::PP::false },
    '... created false, the same conversion');
is(scalar @{ conversions_of(900001) }, 1, '... still one conversion');
is(ledger_of(900001), 1, '... and one commission');
$item = one_event('type=orders%2Fcreate&status=attributed&limit=1');
is_deeply([@$item{qw(id action conversion_id lead_id)}], [$o1->{event_id}, 'conversion', $cid1, $CL],
    '... GET /integrations/events shows action and conversion_id');

# the callback first
my $click = $t->make_click_id($LC);
$r = $t->callback('/callbacks/conversion', { order_id => '900002', amount_cents => 2500, currency => 'USD',
    affiliate_link_id => $LC, shop_domain => $CSHOP });
my $c2 = is_json_response($r, 200, 'POST /callbacks/conversion for order 900002 first: 200');
ok($c2->{created}, '... created');
$r = order_event(id => 900002, total => '25.00', landing => "/products/hat?utm_source=x&click_id=$click");
my $o2 = accepted($r, 'attributed', $CL, 'then orders/create with click_id in landing_site');
$row = event_row($o2->{event_id});
is_deeply([@$row{qw(action conversion_id)}], ['conversion', $c2->{conversion_id}],
    '... action conversion, the callback\'s conversion');
is(scalar @{ conversions_of(900002) }, 1, '... one conversion');
is(ledger_of(900002), 1, '... one commission');

# the other two places
$r = order_event(id => 900003, total => '20.00', notes => [{ name => 'click_id', value => $t->make_click_id($LC) }]);
accepted($r, 'attributed', $CL, 'orders/create with click_id in note_attributes');
$row = event_row($r->{json}{event_id});
is($row->{action}, 'conversion', '... a conversion');
is_deeply(conversions_of(900003), ["$row->{conversion_id} 2000 USD 200 $LC"], '... of 2000 cents, 200 commission');
$r = order_event(id => 900004, total => '0.99', landing => "/?ref=$LC&utm_medium=affiliate");
accepted($r, 'attributed', $CL, 'orders/create with ref in landing_site');
$row = event_row($r->{json}{event_id});
is_deeply(conversions_of(900004), ["$row->{conversion_id} 99 USD 9 $LC"], '... of 99 cents, 9 commission');
is(ledger_of(900004), 1, '... one commission');

# the same order again, in another event
$r = order_event(id => 900001, notes => [{ name => 'ref', value => $LC }]);
accepted($r, 'attributed', $CL, 'orders/create for order 900001 again, another event id');
is(event_row($r->{json}{event_id})->{conversion_id}, $cid1, '... the first conversion');
is(scalar @{ conversions_of(900001) }, 1, '... still one conversion');
is(ledger_of(900001), 1, '... and one commission');

# no conversion, the event still stored
my $unknown = $t->make_link_id;
$r = order_event(id => 900010, notes => [{ name => 'ref', value => $unknown }]);
accepted($r, 'attributed', $CL, 'orders/create with the ref of an unknown link: 202');
$row = event_row($r->{json}{event_id});
is_deeply([@$row{qw(action conversion_id)}], [undef, undef], '... no action, no conversion');
ok(defined $row->{detail} && length $row->{detail}, '... a detail saying why');
is(scalar @{ conversions_of(900010) }, 0, '... no conversion recorded');
$r = order_event(id => 900011, currency => 'EUR', notes => [{ name => 'ref', value => $LC }]);
accepted($r, 'attributed', $CL, "orders/create in another currency than the link's: 202");
$row = event_row($r->{json}{event_id});
is_deeply([@$row{qw(action conversion_id)}], [undef, undef], '... no action, no conversion');
ok(defined $row->{detail} && length $row->{detail}, '... a detail saying why');
is(scalar @{ conversions_of(900011) }, 0, '... no conversion recorded');
$r = order_event(id => 900012);
accepted($r, 'attributed', $CL, 'orders/create without ref or click_id: 202');
is(event_row($r->{json}{event_id})->{action}, undef, '... no action');
is(scalar @{ conversions_of(900012) }, 0, '... no conversion');

# both paths at once
my $PID = $$;
@res = $t->concurrently(20, sub {
    my ($i) = @_;
    return $i % 2
        ? order_event(id => 900005, total => '50.00', event => "evt-$PID-900005-$i",
            notes => [{ name => 'ref', value => $LC }])
        : $t->callback('/callbacks/conversion', { order_id => '900005', amount_cents => 5000, currency => 'USD',
            affiliate_link_id => $LC });
});
is(scalar(grep { $_->{status} == ($_->{json} && exists $_->{json}{event_id} ? 202 : 200) } @res), 20,
    '10 orders/create and 10 conversion callbacks for one order at once: 202s and 200s')
    or diag(join "\n", map { "$_->{status} $_->{content}" } @res);
my $c5 = conversions_of(900005);
is(scalar @$c5, 1, '... one conversion');
my ($cid5) = split / /, $c5->[0] // '';
is(ledger_of(900005), 1, '... one commission');
is_deeply([sort keys %{ { map { ($_->{json}{conversion_id} // '') => 1 } grep { !exists $_->{json}{event_id} } @res } }],
    [$cid5], '... every callback names it');
is(q1("SELECT count(*) || ' ' || count(*) FILTER (WHERE action = 'conversion' AND conversion_id = '$cid5')"
    . " FROM crm.webhook_events WHERE source_event_id LIKE 'evt-$PID-900005-%'"), '10 10', '... and every event');
$N = nevents();

# --- app/uninstalled --------------------------------------------------------------------

my $CH = 'churn.example.com';
my $AL = affiliate_lead($LC, shop_domain => $CH);
my $ML = $t->create_lead($tokB, shop_domain => $CH)->{id};
touch($ML, $tokB);
my $ml_before = $t->get("/leads/$ML", token => $tokB)->{json};
my $al_hist = scalar @{ history($AL, $tok) };
$r = shop_post({ id => 1234567, domain => $CH }, topic => 'app/uninstalled', shop => $CH);
my $un = accepted($r, 'attributed', $AL, 'app/uninstalled for a shop with an affiliate and a newer manual lead');
is(event_row($un->{event_id})->{action}, 'churned', '... action churned');
my $al = $t->get("/leads/$AL", token => $tok)->{json};
is_deeply([@$al{qw(stage substage)}], ['closed', 'churned'], '... the affiliate lead is closed/churned');
my $h = history($AL, $tok);
is(scalar @$h, $al_hist + 1, '... with a history row');
is_deeply([@{ $h->[-1] // {} }{qw(to_stage to_substage)}], ['closed', 'churned'], '... to closed/churned');
my $ml = $t->get("/leads/$ML", token => $tokB)->{json};
is_deeply([@$ml{qw(stage substage version updated_at)}], [@$ml_before{qw(stage substage version updated_at)}],
    '... the manual lead untouched');
is(scalar @{ history($ML, $tokB) }, 1, '... its history too');

$r = shop_post({ id => 1234567 }, topic => 'app/uninstalled', shop => $CH);
accepted($r, 'attributed', $AL, 'app/uninstalled again (another event id)');
is(scalar @{ history($AL, $tok) }, $al_hist + 1, '... a lead already churned is left alone');
is_deeply([@{ $t->get("/leads/$AL", token => $tok)->{json} }{qw(stage substage)}], ['closed', 'churned'],
    '... still closed/churned');

my $NC = 'no-churn.example.com';
my $NL = $t->create_lead($tok, shop_domain => $NC);
$r = shop_post({ id => 1 }, topic => 'app/uninstalled', shop => $NC);
my $nun = accepted($r, 'attributed', $NL->{id}, 'app/uninstalled for a shop with only a manual lead');
is(event_row($nun->{event_id})->{action}, undef, '... no action');
my $nl = $t->get("/leads/$NL->{id}", token => $tok)->{json};
is_deeply([@$nl{qw(stage substage version)}], [@$NL{qw(stage substage version)}], '... the lead unchanged');
$r = shop_post({ id => 2 }, topic => 'app/uninstalled', shop => 'never-seen.example.com');
accepted($r, 'unmatched', undef, 'app/uninstalled for an unknown shop: unmatched');

# a shop with no lead whose owner's email names another shop's affiliate
# lead: the event is attached to that lead, which is not churned
my $EL = affiliate_lead($LC, shop_domain => 'owner-elsewhere.example.com', email => 'owner@elsewhere.example.com');
my $el_before = $t->get("/leads/$EL", token => $tok)->{json};
$r = shop_post({ id => 3, email => 'owner@elsewhere.example.com' }, topic => 'app/uninstalled',
    shop => 'another-shop.example.com');
my $eun = accepted($r, 'attributed', $EL, 'app/uninstalled of a leadless shop whose email names an affiliate lead');
is(event_row($eun->{event_id})->{action}, undef, '... no action: only the shop\'s own lead churns');
is_deeply([@{ $t->get("/leads/$EL", token => $tok)->{json} }{qw(stage substage version)}],
    [@$el_before{qw(stage substage version)}], '... that lead unchanged');
$N = nevents();

# --- bodies a sender must fix ------------------------------------------------------------

# an external id of 255 four-byte characters: 255 characters, 1,020 bytes
$r = std_post('generic', { type => 'wide.id', data => { external_id => "\x{1F600}" x 255 } });
my $wide = accepted($r, 'unmatched', undef, 'an external_id of 255 emoji (1,020 bytes)');
$row = event_row($wide->{event_id});
is($row->{external_id}, undef, '... is not stored as an identifier');
ok(defined $row->{invalid}{external_id}, '... but kept as invalid');
$N = nevents();

# JSON that yajl reads and PostgreSQL's jsonb refuses: 422, not a 500 the
# sender would retry for ever
$r = std_post('generic', '{"type":"bad.escape","data":{"note":"\\ud800"}}');
is_problem($r, 422, 'an unpaired surrogate escape: 422');
is(nevents(), $N, '... nothing stored');

# --- GET /integrations/events -----------------------------------------------------------

is_problem($t->get('/integrations/events'), 401, 'GET /integrations/events without a token: 401');
is_problem($t->get('/integrations/events', token => $tok), 403, '... as a member: 403');
is_problem($t->get('/integrations/events?status=bogus', token => $atok), 422, '... status=bogus: 422',
    field => 'status');
is_problem($t->get('/integrations/events?status=duplicate', token => $atok), 422, '... status=duplicate: 422',
    field => 'status');

my ($all, $err) = $t->page_all('/integrations/events', token => $atok, limit => 7);
ok(!$err, 'all events, 7 a page: every page answered') or diag($err);
is_deeply([map { $_->{id} } @$all],
    [$t->psql('SELECT id FROM crm.webhook_events ORDER BY received_at DESC, id DESC')],
    '... each event once, newest first');
my @times = map { $_->{received_at} // '' } @$all;
ok(!grep({ !is_rfc3339_utc($_) } @times), '... received_at in RFC 3339 UTC');
my @keys = qw(action conversion_id detail id identifiers invalid_identifiers lead_id received_at source
    source_event_id status type);
ok(!grep({ join(' ', sort keys %$_) ne "@keys" } @$all), '... each with the members of an event')
    or diag(json_encode((grep { join(' ', sort keys %$_) ne "@keys" } @$all)[0]));

for my $f (
    ['source=shopify', "source = 'shopify'", sub { $_[0]{source} eq 'shopify' }],
    ['source=generic', "source = 'generic'", sub { $_[0]{source} eq 'generic' }],
    ['status=unmatched', "status = 'unmatched'", sub { $_[0]{status} eq 'unmatched' && !defined $_[0]{lead_id} }],
    ['status=attributed', "status = 'attributed'", sub { $_[0]{status} eq 'attributed' && is_uuid($_[0]{lead_id}) }],
    ['type=orders%2Fcreate', "type = 'orders/create'", sub { $_[0]{type} eq 'orders/create' }],
    ['source=generic&status=attributed&type=attr.test', "source = 'generic' AND status = 'attributed'"
        . " AND type = 'attr.test'", sub { $_[0]{source} eq 'generic' && $_[0]{type} eq 'attr.test' }],
    ['source=nope', 'false', sub { 0 }],
) {
    my ($items, $e) = $t->page_all("/integrations/events?$f->[0]", token => $atok, limit => 5);
    ok(!$e, "?$f->[0]: every page answered") or diag($e);
    my $want = q1("SELECT count(*) FROM crm.webhook_events WHERE $f->[1]");
    ok($want > 0 || $f->[0] eq 'source=nope', "(?$f->[0]: the database holds such events)");
    is(scalar @$items, $want, "?$f->[0]: $want events");
    ok(!grep({ !$f->[2]->($_) } @$items), '... each matching the filter');
}

# --- GET /leads/{id}/events -------------------------------------------------------------

my ($cl_events, $e) = $t->page_all("/leads/$CL/events", token => $tok, limit => 2);
ok(!$e, "GET /leads/{id}/events for the conversions' lead: every page answered") or diag($e);
my @want = $t->psql("SELECT id FROM crm.webhook_events WHERE lead_id = '$CL' ORDER BY received_at, id");
ok(@want >= 8, '(the lead has events)');
is_deeply([map { $_->{id} } @$cl_events], \@want, '... its events, oldest first');
is($cl_events->[0]{id}, $o1->{event_id}, '... the first being the first order');
ok(!grep({ ($_->{lead_id} // '') ne $CL || join(' ', sort keys %$_) ne "@keys" } @$cl_events),
    '... each an event of the lead, in the shape of the list\'s');
is_problem($t->get("/leads/$CL/events", token => $tokB), 404, "... another member asking for it: 404");
is_problem($t->get("/leads/$CL/events"), 401, '... without a token: 401');
is_problem($t->get("/leads/$NIL/events", token => $tok), 404, 'the events of a missing lead: 404');
my $ae = $t->get("/leads/$AL/events", token => $tok);
is_deeply([map { $_->{type} } @{ is_json_response($ae, 200, 'the churned lead\'s events')->{items} || [] }],
    ['app/uninstalled', 'app/uninstalled'], '... its two uninstalls');
my $none = $t->get("/leads/$NL->{id}/events?limit=1", token => $tok)->{json};
is(scalar @{ $none->{items} || [] }, 1, 'one event, limit=1: one item');
is($none->{next_cursor}, undef, '... and no next cursor');
$r = $t->get("/leads/$G/events", token => $tok);
is_problem($r, 404, 'the events of a deleted lead: 404');
my $me = $t->get("/leads/$M1/events", token => $tok)->{json};
is_deeply($me, { items => [], next_cursor => undef }, 'a lead no event was attributed to: an empty list');

is(nevents(), $N, 'reading stored nothing');

$t->done;

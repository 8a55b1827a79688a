#!/usr/bin/perl
# An identity provider's keys from a URL (crm_idp_keys_url): fetched in
# the background, shared by every worker, refreshed when Cache-Control
# max-age runs out, and kept when a refresh fails.

use strict;
use warnings;

use Test::More;
use CrmTest;
use MockCrm;

my $t = CrmTest->new;
my $mock = MockCrm->new(dir => $t->dir);
my $d = $t->dir;

sub jwks_of { json_encode({ keys => [ map { $t->idp_jwk($_) } @_ ] }) }

$mock->jwks(jwks_of('u1'), 5);

$t->start_db;
$t->write_config(
    conf => { crm_idp_keys_file => undef, crm_outbound_allow => '127.0.0.0/8' },
    http_extra => "    crm_idp_keys_url " . $mock->url . "/jwks;\n",
    server_extra => "        location = /metrics { crm_metrics; }\n",
);
$t->start_nginx;

sub refreshes { $t->metrics->{"crm_idp_key_refreshes_total{result=\"$_[0]\"}"} // 0 }

# the status of /auth/me for a token of key $key, on a fresh connection
# each time, so that both workers answer in turn
sub me_with {
    my ($key) = @_;
    my $ua = HTTP::Tiny->new(timeout => 5, keep_alive => 0);
    return $t->get('/auth/me', token => $t->idp_token(key => $key, subject => 'url-merchant'), ua => $ua)
        ->{status};
}

sub all_workers_say {
    my ($key, $want, $secs) = @_;
    return wait_until($secs, sub { (grep { me_with($key) == $want } 1 .. 6) == 6 });
}

ok(all_workers_say('u1', 404, 10), "a token of the URL's key is accepted by every worker (404: not bootstrapped)");
is($t->post_json('/auth/bootstrap', {}, token => $t->idp_token(key => 'u1', subject => 'url-merchant'))->{status},
    201, '... and bootstraps');
is(me_with('u2'), 401, 'a key the URL does not list: 401');
my $fetches = grep { $_->{path} eq '/jwks' } @{ $mock->requests };
ok($fetches >= 1 && $fetches <= 3, "the workers share the keys: $fetches fetch(es) for two workers");

# the provider rotates: the new key works and the old one stops, within
# max-age (5 s)
$mock->jwks(jwks_of('u2'), 5);
ok(all_workers_say('u2', 200, 12), 'after a rotation the new key is accepted everywhere within max-age');
ok(all_workers_say('u1', 401, 2), '... and the old one refused');

# the provider fails: the last good keys stay
$mock->mode('500');
sleep 7;
is(me_with('u2'), 200, 'the URL failing for longer than max-age: the last good keys stay');
ok(refreshes('failed') >= 1, '... counted as failed refreshes (' . refreshes('failed') . ')');
like($t->error_log, qr/identity provider keys from "[^"]+" not refreshed \(not a 200 answer; HTTP 500\)/,
    '... and logged');
$t->allow_log(qr/identity provider keys from .* not refreshed/);
$mock->mode('garbage');
sleep 6;
is(me_with('u2'), 200, 'an answer that is not keys: the last good keys stay');
$mock->mode('ok');
ok(refreshes('ok') >= 2, 'good refreshes are counted too (' . refreshes('ok') . ')');

# a file and the URL together: either one's keys
$t->reconfigure(conf => { crm_idp_keys_file => $t->write_jwks("$d/idp-file.json", 'f1') })
    or BAIL_OUT('reload failed');
is(me_with('f1'), 200, "with a keys file too: the file's key");
is(me_with('u2'), 200, "... and the URL's, whose keys survive the reload");

# nginx -t: the directive at the http level only, with a URL
$t->write_config(conf => { crm_idp_keys_file => undef },
    http_extra => "    crm_idp_keys_url not-a-url;\n");
my ($ok, $out) = $t->nginx_test_config;
like($out, qr/invalid "crm_idp_keys_url" "not-a-url"/, 'nginx -t refuses a keys URL that is not one');
$t->allow_log(qr/\[emerg\].*crm_idp_keys_url|\[emerg\].*crm_idp_project_id/);
$t->write_config(conf => { crm_idp_keys_file => undef }, http_extra => '');
($ok, $out) = $t->nginx_test_config;
like($out, qr/"crm_idp_project_id" needs "crm_idp_keys_file" or "crm_idp_keys_url"/,
    'nginx -t refuses a project with neither keys file nor URL');
$t->write_config(conf => { crm_idp_keys_file => undef },
    http_extra => "    crm_idp_keys_url " . $mock->url . "/jwks;\n");

$t->done;
$mock->stop;

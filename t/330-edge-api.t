#!/usr/bin/perl
# The affiliate flow end to end through the API and the edge together: a
# link made with POST /affiliate/links redirects at its tracking_url; a
# change through PATCH (new target, disabled, enabled again) applies to the
# very next redirect on this host although the cache's TTL is long; the
# link's counters count its clicks; an install callback that names a click
# id from a redirect attributes the shop to that link and pays its owner.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use CrmTest;

my $t = CrmTest->new;
$t->start_db;
# a TTL far longer than the test: only the invalidation can explain a change
$t->write_config($t->edge_config(ttl => '10m'));
$t->start_nginx;

my (undef, $tok) = $t->member;

my $r = $t->post_json('/affiliate/links',
    { target_url => 'https://shop.example.com/a?x=1#top' }, token => $tok);
is($r->{status}, 201, 'a link is made') or diag($r->{content});
my $id = $r->{json}{affiliate_link_id};
my $tracking = $r->{json}{tracking_url};

my $base = $t->base_url;
like($tracking, qr{^\Q$base\E/r/\Q$id\E\z}, 'its tracking_url is this gateway\'s /r/{id}');
(my $path = $tracking) =~ s{^\Q$base\E}{};

sub location_of {
    my $res = $t->get($path);
    return ($res->{status}, $res->{headers}{location} // '');
}

my ($status, $loc) = location_of();
is($status, 302, 'the tracking_url redirects');
like($loc, qr{^https://shop\.example\.com/a\?x=1&ref=\Q$id\E&click_id=(\Q$id\E[0-9A-Za-z]{14})#top\z},
    'to the target, with ref and click_id before the fragment');
my ($click) = $loc =~ /click_id=([0-9A-Za-z]+)/;

# the cache holds the link now; every change below must show at once
my $ver = $t->get("/affiliate/links/$id", token => $tok)->{headers}{etag};
$r = $t->patch_json("/affiliate/links/$id", { target_url => 'https://shop.example.com/b' },
    token => $tok, headers => { 'If-Match' => $ver });
is($r->{status}, 200, 'the target changes') or diag($r->{content});
($status, $loc) = location_of();
is($status, 302, 'the next redirect is still a 302');
like($loc, qr{^https://shop\.example\.com/b\?ref=\Q$id\E&click_id=}, '... to the new target, at once');

$r = $t->patch_json("/affiliate/links/$id", { status => 'disabled' }, token => $tok);
is($r->{status}, 200, 'the link is disabled') or diag($r->{content});
($status) = location_of();
is($status, 410, 'the next redirect is a 410, at once');
is($t->get($path, headers => { Connection => 'close' })->{status}, 410, '... on any connection');

$r = $t->patch_json("/affiliate/links/$id", { status => 'active' }, token => $tok);
is($r->{status}, 200, 'the link is enabled again') or diag($r->{content});
($status, $loc) = location_of();
is($status, 302, 'the next redirect is a 302 again, at once');

my $m = $t->metrics;
is($m->{'crm_redirects_total{status="302"}'}, 3, 'three 302s counted');
is($m->{'crm_redirects_total{status="410"}'}, 2, 'two 410s counted');

ok(wait_until(10, sub {
        $t->get("/affiliate/links/$id", token => $tok)->{json}{counters}{clicks} == 3 }),
    'the link counts its three clicks (a 410 is not a click)');
my $link = $t->get("/affiliate/links/$id", token => $tok)->{json};
ok(defined $link->{last_click_at}, 'and has a last_click_at');

# an install naming a click id from a redirect: attributed to its link
$r = $t->callback('/callbacks/install', { shop_domain => 'Edge-Shop.myshopify.com', click_id => $click });
is($r->{status}, 200, 'an install with the click id') or diag($r->{content});
ok($r->{json}{created}, '... creates the attribution');
is($t->psql("SELECT link_id || ' ' || click_id FROM crm.attributions WHERE id = '$r->{json}{attribution_id}'"),
    "$id $click", '... for the click\'s link, recording the click');
is($t->psql("SELECT count(*) FROM crm.clicks WHERE click_id = '$click'"), 1,
    'the click it names is stored');
is($t->get('/wallet', token => $tok)->{json}{balance_cents}, 500,
    'the owner is paid the default install commission');
is($t->get("/affiliate/links/$id", token => $tok)->{json}{counters}{installs}, 1,
    'the link counts the install');

$t->done;

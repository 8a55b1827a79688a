#!/usr/bin/perl
# GET /docs in a real browser: headless Chromium (Debian's chromium) loads
# the page that the shipped conf/crm.conf serves, runs Swagger UI under
# the page's Content-Security-Policy, and the DOM it renders lists every
# operation of docs/openapi.json, each under its method, path and
# operationId, with no error about the API definition.

use strict;
use warnings;

use File::Copy qw(copy);
use File::Path qw(make_path);
use JSON::PP;
use POSIX ();
use Test::More;
use Time::HiRes qw(time);
use CrmTest;

my $ROOT = $CrmTest::ROOT;
my $CHROMIUM = $ENV{CRM_CHROMIUM} // '/usr/bin/chromium';

ok(-x $CHROMIUM, "$CHROMIUM is installed (./build.sh deps installs it)")
    or BAIL_OUT("no $CHROMIUM");
ok(-f "$ROOT/build/docs/index.html", 'build/docs/ is built')
    or BAIL_OUT('run ./build.sh build');

my $doc = do {
    open my $fh, '<:raw', "$ROOT/docs/openapi.json" or die "openapi.json: $!";
    local $/;
    JSON::PP->new->utf8->decode(scalar <$fh>);
};

# what the page must list: "METHOD path operationId"
my @want;
for my $path (keys %{ $doc->{paths} }) {
    for my $m (qw(get put post delete patch)) {
        my $op = $doc->{paths}{$path}{$m} or next;
        push @want, uc($m) . " $path $op->{operationId}";
    }
}
@want = sort @want;

my $t = CrmTest->new;
my $d = $t->dir;

# crm.conf's relative paths resolve against nginx's prefix, the test's
# directory: the built reference goes there
make_path("$d/build/docs");
opendir my $dh, "$ROOT/build/docs" or die "$ROOT/build/docs: $!";
for my $f (grep { -f "$ROOT/build/docs/$_" } readdir $dh) {
    copy("$ROOT/build/docs/$f", "$d/build/docs/$f") or die "copy $f: $!";
}
closedir $dh;

my $nginx_conf = do {
    open my $fh, '<', "$ROOT/conf/nginx.conf" or die "nginx.conf: $!";
    local $/;
    <$fh>;
};
my @zones = $nginx_conf =~ /^\s*(limit_req_zone\s[^;]*;)/mg;
my %edge = $t->edge_config;

$t->start_db;
$t->write_config(
    http_extra => join("\n", map { "    $_" } @zones) . "\n" . $edge{http_extra},
    server_body => "        include $ROOT/conf/crm.conf;",
);
$t->start_nginx;

# Chromium, bounded: --virtual-time-budget lets the page's scripts and
# fetches finish before the DOM is dumped; the process is killed if it
# takes longer than the limit anyway
sub chromium_dom {
    my ($url, $limit) = @_;
    my $out = "$d/dom.html";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        POSIX::setsid();
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>', "$d/chromium.log" or POSIX::_exit(126);
        exec $CHROMIUM, '--headless=new', '--no-sandbox', '--disable-gpu',
            '--no-first-run', '--no-default-browser-check',
            '--disable-extensions', '--disable-background-networking',
            "--user-data-dir=$d/chromium-profile",
            '--virtual-time-budget=15000', '--dump-dom', $url
            or POSIX::_exit(127);
    }
    my $end = time + $limit;
    my $done = 0;
    while (time < $end) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            $done = 1;
            last;
        }
        select undef, undef, undef, 0.2;
    }
    unless ($done) {
        kill 'KILL', -$pid;
        waitpid $pid, 0;
        diag("chromium did not finish within ${limit}s");
    }
    open my $fh, '<:encoding(UTF-8)', $out or return '';
    local $/;
    return scalar <$fh>;
}

my $started = time;
my $dom = chromium_dom($t->base_url . '/docs', 50);
ok(time - $started < 55, sprintf('Chromium rendered the page in %.1f s',
    time - $started));
ok(length $dom > 1000, 'Chromium dumped the DOM (' . length($dom) . ' bytes)')
    or diag("chromium.log:\n" . CrmTest::_tail("$d/chromium.log", 20));

unlike($dom, qr/Failed to load API definition/i,
    'no "Failed to load API definition"');
unlike($dom, qr/class="[^"]*\berrors-wrapper\b/, 'no error box');
like($dom, qr/crm-gateway API/, 'the title is rendered');
like($dom, qr/\Q$doc->{info}{version}\E/, 'so is the version');

# each operation's block: <div class="opblock opblock-get"
# id="operations-<tag>-<operationId>"> ... data-path="/path"
my @got;
while ($dom =~ /<div\ class="opblock\ opblock-(\w+)[^"]*"\s+id="operations-[^"]*-([^"-]+)"
                .*?\bclass="opblock-summary-path"\s+data-path="([^"]*)"/gsx) {
    push @got, uc($1) . " $3 $2";
}
@got = sort @got;
is(scalar @got, scalar @want, scalar(@want) . ' operations rendered');
is_deeply(\@got, \@want, '... each with its method, path and operationId');

$t->done;

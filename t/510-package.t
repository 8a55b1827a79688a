#!/usr/bin/perl
# ./build.sh package: the .deb's name, fields and files; dpkg installs it,
# runs its maintainer scripts and removes it again in a throwaway root (never
# the system's); Debian's nginx passes "nginx -t" on the shipped example
# configuration with the packaged module; lintian finds no error.

use strict;
use warnings;

use Test::More;
use Cwd qw(abs_path);
use Digest::MD5;
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);

my $ROOT = $ENV{CRM_ROOT} // abs_path(dirname(abs_path(__FILE__)) . '/..');
my $NGINX = $ENV{CRM_NGINX} // '/usr/sbin/nginx';
my $PKG = 'libnginx-mod-http-crm';
my $AVAILABLE = '/usr/share/nginx/modules-available/mod-http-crm.conf';
my $ENABLED = '/etc/nginx/modules-enabled/50-mod-http-crm.conf';

$ENV{LC_ALL} = 'C';

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!";
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($file, $text) = @_;
    open my $fh, '>', $file or die "$file: $!";
    print $fh $text;
    close $fh or die "$file: $!";
}

# runs a command (a list, no shell), returns its status and output
sub run {
    my @cmd = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT or die "stderr: $!";
        exec @cmd or die "exec $cmd[0]: $!";
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}


# ---------------------------------------------------------------------------
# the build

my ($rc, $out) = run("$ROOT/build.sh", 'package');
is($rc, 0, './build.sh package succeeds') or diag($out);

my $version = slurp("$ROOT/ngx_crm_module/src/service/crm_call.h")
    =~ /^#define CRM_VERSION\s+"([^"]+)"/m ? "$1-1" : 'none';
chomp(my $arch = `dpkg --print-architecture`);
my $deb = "$ROOT/build/pkg/${PKG}_${version}_$arch.deb";
my @debs = glob "$ROOT/build/pkg/*.deb";

ok(-f $deb, "build/pkg/${PKG}_${version}_$arch.deb")
    or BAIL_OUT("no package to check: " . join(' ', @debs));
is(scalar @debs, 1, 'one .deb in build/pkg/');


# ---------------------------------------------------------------------------
# control fields

sub field {
    my ($name) = @_;
    my ($status, $value) = run('dpkg-deb', '-f', $deb, $name);
    $value =~ s/\n\z//;
    return $status == 0 ? $value : undef;
}

is(field('Package'), $PKG, 'Package');
is(field('Version'), $version, 'Version: CRM_VERSION and revision 1');
is(field('Architecture'), $arch, 'Architecture: dpkg --print-architecture');
is(field('Section'), 'httpd', 'Section: httpd, as Debian\'s modules');
is(field('Priority'), 'optional', 'Priority: optional');
like(field('Maintainer') // '', qr/^[^<>]+ <[^@\s]+@[^>\s]+>$/, 'Maintainer');
like(field('Installed-Size') // '', qr/^[1-9]\d*$/, 'Installed-Size');
like(field('Description') // '', qr/\A\S.{9,79}\n(?: \S.*\n)+ \S.*\z/,
    'Description: a synopsis and a long text');

my @depends = map { s/^\s+|\s+$//gr } split /,/, field('Depends') // '';
my @abi = grep { /^nginx-abi-/ } @depends;
my %provided = map { s/^\s+|\s+$//gr => 1 } map { split /,/ } map {
    my ($status, $provides) = run('dpkg-query', '-W', '-f=${Provides}', $_);
    $status == 0 ? $provides : ();
} qw(nginx nginx-core nginx-light nginx-full nginx-extras);
is(scalar @abi, 1, 'Depends on one nginx ABI: ' . join(', ', @abi));
ok(@abi && $provided{$abi[0]},
    "the installed nginx provides it (" . join(', ', sort grep { /abi/ }
    keys %provided) . ')');
for my $lib (qw(libc6 libpq5 libcurl4 libssl3 libyajl2 libargon2-1)) {
    ok((grep { /^\Q$lib\E \(>= [^)]+\)$/ } @depends),
        "Depends on $lib, versioned (the module's and crm-admin's libraries)");
}


# ---------------------------------------------------------------------------
# files

my %entry;      # path => { mode, owner, mtime, link }
($rc, $out) = run('dpkg-deb', '--contents', $deb);
for (split /\n/, $out) {
    my ($mode, $owner, undef, $date, $time, $path) = split ' ', $_, 6;
    my $link;
    ($path, $link) = split / -> /, $path, 2;
    $path =~ s{^\./}{/};
    $path =~ s{(.)/$}{$1};
    $entry{$path} = { mode => $mode, owner => $owner, mtime => "$date $time",
                      link => $link };
}

my @want = (
    ['/usr/lib/nginx/modules/ngx_http_crm_module.so', '-rw-r--r--'],
    ["$AVAILABLE", '-rw-r--r--'],
    ['/usr/sbin/crm-admin', '-rwxr-xr-x'],
    ['/usr/share/man/man8/crm-admin.8.gz', '-rw-r--r--'],
    ["/usr/share/doc/$PKG/copyright", '-rw-r--r--'],
    ["/usr/share/doc/$PKG/changelog.Debian.gz", '-rw-r--r--'],
    ['/usr/share/crm-gateway/conf/nginx.conf', '-rw-r--r--'],
    ['/usr/share/crm-gateway/conf/crm.conf', '-rw-r--r--'],
    map({ ["/usr/share/crm-gateway/schema/" . s{.*/}{}r, '-rw-r--r--'] }
        glob "$ROOT/schema/[0-9]*.sql"),
    map({ ['/usr/share/crm-gateway/pipeline-config/'
           . s{^\Q$ROOT\E/pipeline-config/}{}r, '-rw-r--r--'] }
        split /\n/, `find '$ROOT/pipeline-config' -type f | sort`),
);

my $docs = slurp("$ROOT/conf/crm.conf") =~ m{build/docs\b};
if ($docs) {
    push @want, map { ["/usr/share/crm-gateway/docs/$_", '-rw-r--r--'] }
        qw(index.html openapi.json);
} else {
    note('conf/crm.conf serves no build/docs: no documentation to ship');
}

for my $w (@want) {
    my ($path, $mode) = @$w;
    is($entry{$path} && $entry{$path}{mode}, $mode, "$path, $mode");
}
is_deeply([grep { $entry{$_}{owner} ne 'root/root' } sort keys %entry], [],
    'every file belongs to root/root');
is_deeply([grep { m{^/etc(/|$)} } sort keys %entry], [],
    'nothing in /etc: the postinst makes the link, as Debian\'s modules do');
is_deeply([grep { $entry{$_}{mode} =~ /^d/ && $entry{$_}{mode} ne 'drwxr-xr-x' }
           sort keys %entry], [], 'directories are 755');
my %mtimes = map { $_->{mtime} => 1 } values %entry;
is(scalar keys %mtimes, 1, 'one modification time throughout (reproducible): '
    . join(', ', sort keys %mtimes));

my $tmp = "$ROOT/t/tmp";
make_path($tmp);
my $dir = tempdir('package-XXXXXX', DIR => $tmp,
    CLEANUP => !$ENV{CRM_TEST_KEEP});
note("throwaway root in $dir") if $ENV{CRM_TEST_KEEP};

($rc, $out) = run('dpkg-deb', '--control', $deb, "$dir/control");
is($rc, 0, 'dpkg-deb --control') or diag($out);
for my $script (qw(postinst prerm postrm)) {
    ok(-x "$dir/control/$script", "maintainer script $script");
}

($rc, $out) = run('dpkg-deb', '--extract', $deb, "$dir/extract");
is($rc, 0, 'dpkg-deb --extract') or diag($out);
my @sums = split /\n/, slurp("$dir/control/md5sums");
my @files = grep { -f "$dir/extract$_" && !-l "$dir/extract$_" } keys %entry;
is(scalar @sums, scalar @files, 'md5sums names every file');
my @bad = grep {
    my ($sum, $path) = split /  /, $_, 2;
    open my $fh, '<', "$dir/extract/$path" or die "$path: $!";
    binmode $fh;
    Digest::MD5->new->addfile($fh)->hexdigest ne $sum;
} @sums;
is_deeply(\@bad, [], 'md5sums match the files');

is(slurp("$dir/extract$AVAILABLE"),
    "load_module modules/ngx_http_crm_module.so;\n",
    'the modules-available file loads the module from nginx\'s modules/');
($rc, $out) = run('readelf', '-S', '-W',
    "$dir/extract/usr/lib/nginx/modules/ngx_http_crm_module.so");
unlike($out, qr/\.symtab\b/, 'the module is stripped');
($rc, $out) = run('readelf', '-S', '-W', "$dir/extract/usr/sbin/crm-admin");
unlike($out, qr/\.symtab\b/, 'crm-admin is stripped');

my $conf = slurp("$dir/extract/usr/share/crm-gateway/conf/nginx.conf");
my $crm = slurp("$dir/extract/usr/share/crm-gateway/conf/crm.conf");
for ([nginx => $conf], ['crm' => $crm]) {
    my ($name, $text) = @$_;
    my @relative = grep { !/^\s*#/ && m{(?:^|[\s"])(?:\.\./|var/|build/)} }
        split /\n/, $text;
    is_deeply(\@relative, [],
        "the shipped $name.conf names no repository path");
}
like($conf, qr{^include /etc/nginx/modules-enabled/\*\.conf;$}m,
    'the shipped nginx.conf loads the enabled modules, as Debian\'s does');
like($conf, qr{^\s*include /usr/share/crm-gateway/conf/crm\.conf;$}m,
    'and includes the shipped crm.conf');
like($conf, qr{^\s*crm_pipeline /usr/share/crm-gateway/pipeline-config;$}m,
    'and reads the shipped pipeline');
like($crm, qr{/usr/share/crm-gateway/docs\b}, 'the shipped crm.conf serves '
    . 'the shipped documentation') if $docs;


# ---------------------------------------------------------------------------
# dpkg in a throwaway root: what nginx-common would have made, then the
# package, its postinst running outside a chroot with $DPKG_ROOT set

my $r = "$dir/root";
make_path(map { "$r/$_" } qw(var/lib/dpkg/info var/lib/dpkg/updates
    etc/nginx/modules-enabled usr/share/nginx var/log/nginx var/lib/nginx
    var/spool run));
spew("$r/var/lib/dpkg/status", '');
symlink '../../lib/nginx/modules', "$r/usr/share/nginx/modules" or die $!;

my @dpkg = ('dpkg', "--root=$r", "--log=$r/var/log/dpkg.log",
    '--force-depends', '--force-script-chrootless');

sub enabled_link {
    return readlink "$r$ENABLED";
}

($rc, $out) = run(@dpkg, '--install', $deb);
is($rc, 0, 'dpkg --root --install') or diag($out);
is(enabled_link(), $AVAILABLE,
    'the postinst links modules-enabled/50-mod-http-crm.conf to the '
    . 'modules-available file');
ok(-f "$r$AVAILABLE", 'which the package installed');
ok(-f "$r/usr/share/nginx/modules/ngx_http_crm_module.so",
    'the module is where nginx\'s modules/ leads');

# the shipped example, with every absolute path moved into the root (in
# copies beside it), and the enabled link resolved in the root, as a chroot
# would resolve them
my $file_directive = qr/(?:include|load_module|error_log|access_log|pid
    |\w+_temp_path|crm_\w+_file|crm_pipeline|crm_click_spool|alias|root
    |ssl_\w+)/x;
my @outside = grep { /^\s*$file_directive\s/
    && m{(?<![\w./:-])/(?!(?:etc|usr|var|run)/)\w} } split /\n/, "$conf\n$crm";
is_deeply(\@outside, [], 'the shipped configuration names no file outside '
    . '/etc, /usr, /var and /run');

unlink "$r$ENABLED";
symlink "$r$AVAILABLE", "$r$ENABLED" or die $!;

sub into_root {
    my ($text) = @_;
    return $text =~ s{(?<![\w./:-])/(etc|usr|var|run)/}{$r/$1/}gr;
}
make_path("$dir/conf");
spew("$dir/conf/crm.conf", into_root($crm));
spew("$dir/conf/nginx.conf", into_root($conf)
    =~ s{include \Q$r\E/usr/share/crm-gateway/conf/crm\.conf;}
        {include $dir/conf/crm.conf;}r);

make_path("$r/etc/crm-gateway");
for my $secret ($conf =~ m{^\s*[^#\s]\S*\s+/etc/crm-gateway/(\S+\.secret)}mg,
                'callback.secret')
{
    spew("$r/etc/crm-gateway/$secret",
         join('', map { sprintf '%02x', int rand 256 } 1 .. 32) . "\n");
}
spew("$r/etc/crm-gateway/site.conf",
     "crm_callback_secret_file $r/etc/crm-gateway/callback.secret;\n");

($rc, $out) = run($NGINX, '-t', '-p', "$r/usr/share/nginx/",
    '-c', "$dir/conf/nginx.conf");
is($rc, 0, 'nginx -t on the shipped example with the packaged module')
    or diag($out);
like($out, qr/syntax is ok/, 'syntax is ok');
like($out, qr/test is successful/, 'test is successful');
ok(-d "$r/var/spool/crm-gateway", 'nginx made the click spool');

if ($docs) {
    my @missing = grep { !-e "$r$_" }
        $crm =~ m{(?:alias|root)\s+(/usr/share/crm-gateway/docs\b[^;\s]*)}g;
    is_deeply(\@missing, [], 'the documentation the shipped crm.conf serves '
        . 'is in the package');
}

# removal as Debian's modules do it: the link set aside, back on
# reinstallation, gone on purge
unlink "$r$ENABLED";
symlink $AVAILABLE, "$r$ENABLED" or die $!;

($rc, $out) = run(@dpkg, '--remove', $PKG);
is($rc, 0, 'dpkg --root --remove') or diag($out);
ok(!-l "$r$ENABLED", 'removal disables the module');
is(readlink "$r$ENABLED.removed", $AVAILABLE, 'its link is set aside');
ok(!-e "$r/usr/lib/nginx/modules/ngx_http_crm_module.so", 'the module is gone');

($rc, $out) = run(@dpkg, '--install', $deb);
is($rc, 0, 'dpkg --root --install again') or diag($out);
is(enabled_link(), $AVAILABLE, 'reinstallation enables the module again');
ok(!-l "$r$ENABLED.removed", 'and drops the set-aside link');

($rc, $out) = run(@dpkg, '--purge', $PKG);
is($rc, 0, 'dpkg --root --purge') or diag($out);
ok(!-l "$r$ENABLED" && !-l "$r$ENABLED.removed", 'purge removes the link');
is_deeply([grep { -e "$r$_" && !-d "$r$_" } sort keys %entry], [],
    'nothing of the package is left');


# ---------------------------------------------------------------------------
# lintian

($rc, $out) = run('sh', '-c', 'command -v lintian');
is($rc, 0, 'lintian is installed (./build.sh package installs it)');
($rc, $out) = run('lintian', '--fail-on', 'error', '--info', $deb);
is($rc, 0, 'lintian finds no error') or diag($out);
is_deeply([grep { /^E: / } split /\n/, $out], [], 'no E: line');
note($out);

done_testing();

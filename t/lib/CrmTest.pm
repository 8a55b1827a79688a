package CrmTest;

# The integration harness: a private PostgreSQL (through ./build.sh db) and
# an nginx with the built module, both on free loopback ports in a temporary
# directory, plus small HTTP, SQL and JWT helpers.  In the spirit of
# nginx-tests, but ours and small.
#
#   use CrmTest;
#   my $t = CrmTest->new->start;             # PostgreSQL, then nginx
#   my $r = $t->post_json('/auth/register', {email => ..., password => ...});
#   is_problem($r, 422, 'short password', field => 'password');
#   $t->done;                                # stop both, check error.log, done_testing
#
# Every file owns its cluster and its nginx; files run in any order.  The
# file fails if nginx's error.log holds an alert, an emerg after startup, a
# crash or a sanitizer report, if any response is a 5xx other than a
# deliberate 503, or if nginx does not stop gracefully.  A file that runs
# longer than CRM_TEST_TIMEOUT seconds (default 300) fails instead of hanging.
#
# Environment: CRM_ROOT (repository root, default: two levels above this
# file), CRM_NGINX (default /usr/sbin/nginx), CRM_TEST_KEEP=1 keeps the
# temporary directory, CRM_TEST_TIMEOUT.

use strict;
use warnings;

use Test::More;
use B ();
use Carp qw(croak);
use Cwd qw(abs_path);
use Digest::SHA qw(hmac_sha256 hmac_sha512);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

our @EXPORT = qw(link_id is_problem is_json_response is_uuid is_rfc3339_utc
    b64url b64url_decode json_encode json_decode wait_until
    is_lead is_json_int sans_request_id);

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

our $ROOT = $ENV{CRM_ROOT}
    // abs_path(dirname(abs_path(__FILE__)) . '/../..');
our $NGINX = $ENV{CRM_NGINX} // '/usr/sbin/nginx';

my @LIVE;           # harness objects to tear down at exit

# the project whose ID tokens the harness's identity provider issues
our $IDP_PROJECT = 'crm-test-project';

# the link ids' key of every harness of this file, unless new() names one
our $LINK_SECRET = join '', map { sprintf '%02x', int rand 256 } 1 .. 32;


# ---------------------------------------------------------------------------
# setup

sub new {
    my ($class, %opt) = @_;

    my $self = bless {
        owner_pid     => $$,
        conf          => {},
        http_extra    => '',
        server_extra  => '',
        workers       => 2,
        db_running    => 0,
        db_stopped_on_purpose => 0,
        bad_5xx       => [],
        log_from      => 0,
        requests      => 0,
        %opt,
    }, $class;

    $self->{dir} = tempdir('crm-t-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    chmod 0755, $self->{dir} or croak "chmod $self->{dir}: $!";
    $self->{pg_port} = free_port();
    $self->{port} = free_port($self->{pg_port});
    $self->{jwt_secret} //= join '', map { sprintf '%02x', int rand 256 } 1 .. 32;
    $self->{callback_secret} //= join '', map { sprintf '%02x', int rand 256 } 1 .. 32;
    $self->{link_secret} //= $LINK_SECRET;
    $self->{credentials_key} //= join '', map { sprintf '%02x', int rand 256 } 1 .. 32;
    $self->{admin_tool} = "$ROOT/build/crm-admin";
    $self->{module} = "$ROOT/build/modules/ngx_http_crm_module.so";

    push @LIVE, $self;

    my $limit = $ENV{CRM_TEST_TIMEOUT} || 300;
    $SIG{ALRM} = sub {
        return unless $$ == $self->{owner_pid};
        Test::More::fail("test file finished within ${limit}s");
        Test::More::diag("timed out; tearing down");
        $self->teardown;
        exit 1;
    };
    alarm $limit;

    return $self;
}

sub dir { $_[0]{dir} }
sub port { $_[0]{port} }
sub pg_port { $_[0]{pg_port} }
sub jwt_secret { $_[0]{jwt_secret} }
sub callback_secret { $_[0]{callback_secret} }
sub link_secret { $_[0]{link_secret} }
sub credentials_key { $_[0]{credentials_key} }
sub base_url { "http://127.0.0.1:$_[0]{port}" }
sub dsn { "host=127.0.0.1 port=$_[0]{pg_port} dbname=crm user=crm" }

# a loopback port that nothing listens on right now
sub free_port {
    my %avoid = map { $_ => 1 } grep { defined } @_;
    for (1 .. 50) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
            LocalPort => 0, Proto => 'tcp', Listen => 1, ReuseAddr => 0)
            or next;
        my $p = $s->sockport;
        close $s;
        next if $avoid{$p} || $p < 1024;
        return $p;
    }
    croak "no free loopback port";
}

# PostgreSQL, then nginx
sub start {
    my ($self) = @_;
    $self->start_db;
    $self->write_config;
    $self->start_nginx;
    return $self;
}


# ---------------------------------------------------------------------------
# PostgreSQL through build.sh

sub _build_sh {
    my ($self, @args) = @_;
    local $ENV{CRM_VAR_DIR} = $self->{dir};
    local $ENV{CRM_PG_PORT} = $self->{pg_port};
    my $log = "$self->{dir}/build-sh.log";
    my $rc = _run_logged($log, "$ROOT/build.sh", @args);
    if ($rc != 0) {
        diag("./build.sh @args failed ($rc):\n" . _tail($log, 30));
        my $pglog = "$self->{dir}/pg/server.log";
        diag("PostgreSQL log:\n" . _tail($pglog, 30)) if -f $pglog;
    }
    return $rc == 0;
}

sub start_db {
    my ($self) = @_;
    $self->_build_sh('db') or croak "PostgreSQL did not start";
    $self->{db_running} = 1;
    $self->{db_stopped_on_purpose} = 0;
    return $self;
}

sub stop_db {
    my ($self) = @_;
    $self->{db_stopped_on_purpose} = 1;
    $self->_build_sh('db-stop');
    $self->{db_running} = 0;
    return $self;
}

sub db_running { $_[0]{db_running} }

# psql -tA: the output with the trailing newline removed; in list context,
# one element per row
sub psql {
    my ($self, $sql) = @_;
    local $ENV{PGCONNECT_TIMEOUT} = 5;
    my @cmd = ('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1',
        '-p', $self->{pg_port}, '-U', 'crm', '-d', 'crm', '-tA', '-c', $sql);
    my $pid = open(my $fh, '-|') // croak "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec @cmd or POSIX::_exit(127);
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    croak "psql failed ($?): $sql\n$out" if $?;
    $out =~ s/\n\z//;
    return wantarray ? split(/\n/, $out) : $out;
}

# the whole database as pg_dump writes it (schema and data), for tests
# that look for what must never be stored
sub pg_dump {
    my ($self) = @_;
    my $out = `PGCONNECT_TIMEOUT=5 pg_dump -h 127.0.0.1 -p $self->{pg_port} -U crm crm 2>&1`;
    croak "pg_dump failed ($?): $out" if $?;
    return $out;
}


# ---------------------------------------------------------------------------
# nginx

# Writes nginx.conf.  Options (also taken from new()):
#   conf         => { crm_max_body_size => '1k', ... }   http-level crm_*
#                   directives to set or, with undef, to leave out
#                   (crm_pipeline defaults to the repository's
#                   pipeline-config; tests that edit a pipeline point it at
#                   a copy_pipeline())
#   main_extra   => text added at the main level (thread pools, ...)
#   pool_threads => threads of the "crm" thread pool (default 4)
#   http_extra   => text added at http level
#   server_extra => text added inside the server block
#   server_body  => the server block's locations instead of the default
#                   "location / { crm_api; }" (server_extra and the
#                   harness's own /baseline are still added)
#   workers      => worker_processes
sub write_config {
    my ($self, %opt) = @_;
    $self->{$_} = $opt{$_}
        for grep { exists $opt{$_} } qw(main_extra pool_threads http_extra server_extra server_body workers);
    $self->{main_extra} //= '';
    $self->{pool_threads} //= 4;
    if ($opt{conf}) {
        $self->{conf} = { %{ $self->{conf} }, %{ $opt{conf} } };
    }

    my $d = $self->{dir};
    $self->write_secret unless -f "$d/jwt.secret";
    _write_file("$d/callback.secret", $self->{callback_secret})
        unless -f "$d/callback.secret";
    _write_file("$d/link.secret", $self->{link_secret})
        unless -f "$d/link.secret";
    $self->write_jwks("$d/idp-default.json", 'a') unless -f "$d/idp-default.json";
    _write_file("$d/credentials.key", $self->{credentials_key} . "\n")
        unless -f "$d/credentials.key";

    my %dir = (
        crm_database             => qq{"} . $self->dsn . qq{"},
        crm_db_connect_timeout   => '2s',
        crm_db_statement_timeout => '5s',
        crm_thread_pool          => 'crm',
        crm_jwt_secret_file      => "$d/jwt.secret",
        crm_jwt_ttl              => '1h',
        crm_jwt_issuer           => 'crm-gateway',
        crm_max_body_size        => '64k',
        crm_max_json_depth       => '32',
        crm_pipeline             => qq{"} . $self->pipeline_dir . qq{"},
        crm_callback_secret_file => "$d/callback.secret",
        crm_link_id_secret_file  => "$d/link.secret",
        crm_public_url           => "http://127.0.0.1:$self->{port}",
        crm_default_install_cents  => '500',
        crm_default_conversion_bps => '1000',
        crm_idp_project_id       => $IDP_PROJECT,
        crm_idp_keys_file        => "$d/idp-default.json",
        crm_credentials_key_file => "$d/credentials.key",
        %{ $self->{conf} },
    );
    my @order = qw(crm_database crm_db_connect_timeout crm_db_statement_timeout
        crm_thread_pool crm_jwt_secret_file crm_jwt_ttl crm_jwt_issuer
        crm_max_body_size crm_max_json_depth crm_pipeline
        crm_callback_secret_file crm_link_id_secret_file crm_public_url
        crm_default_install_cents
        crm_default_conversion_bps);
    my %seen = map { $_ => 1 } @order;
    push @order, sort grep { !$seen{$_} } keys %dir;
    my $crm = join '', map { "    $_ $dir{$_};\n" }
        grep { defined $dir{$_} } @order;

    my $user = $> == 0 ? "user nobody nogroup;\n" : '';
    my $load = "load_module $self->{module};";
    my $api = 'crm_api;';
    if ($self->{bare}) {    # nginx without the module: checks the harness itself
        ($load, $crm, $api) = ('', '', 'return 404;');
    }
    my $body = ($self->{server_body} // "        location / { $api }")
        . "\n        location = /baseline { return 200 \"ok\\n\"; }";

    _write_file("$d/nginx.conf", <<"EOF");
$load
${user}worker_processes $self->{workers};
error_log $d/error.log info;
pid $d/nginx.pid;
thread_pool crm threads=$self->{pool_threads};
$self->{main_extra}

events { worker_connections 1024; }

http {
    access_log off;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;

$crm
$self->{http_extra}

    server {
        listen 127.0.0.1:$self->{port};

$body
$self->{server_extra}
    }
}
EOF
    return $self;
}

# the HMAC key; the file gets a trailing newline when asked (the module
# strips one)
sub write_secret {
    my ($self, %opt) = @_;
    $self->{jwt_secret} = $opt{secret} if defined $opt{secret};
    _write_file("$self->{dir}/jwt.secret",
        $self->{jwt_secret} . ($opt{newline} ? "\n" : ''));
    return $self;
}

sub _nginx_cmd {
    my ($self, @args) = @_;
    my $d = $self->{dir};
    return ($NGINX, '-p', "$d/", '-c', "$d/nginx.conf", '-e', "$d/error.log", @args);
}

sub nginx_test_config {
    my ($self) = @_;
    my $log = "$self->{dir}/nginx-cmd.log";
    my $rc = _run_logged($log, $self->_nginx_cmd('-t', '-q'));
    return wantarray ? ($rc == 0, _slurp($log)) : $rc == 0;
}

# "nginx -t" of a configuration written anew from opt alone (write_config's
# options; the crm_* settings, http_extra and server_extra of earlier calls
# are dropped): (passed, nginx's output)
sub nginx_t {
    my ($self, %opt) = @_;
    $self->{conf} = {};
    $self->{http_extra} = '';
    $self->{server_extra} = '';
    $self->write_config(%opt);
    my $d = $self->{dir};
    my $out = "$d/nginx-t.out";
    unlink $out;
    my $rc = _run_logged($out, $NGINX, '-t', '-p', "$d/", '-c', "$d/nginx.conf",
        '-e', "$d/nginx-t-error.log");
    return ($rc == 0, _slurp($out));
}

sub start_nginx {
    my ($self) = @_;
    my $d = $self->{dir};
    croak "module not built: $self->{module} (run ./build.sh build)"
        unless $self->{bare} || -f $self->{module};

    my $log = "$d/nginx-cmd.log";
    my $rc = _run_logged($log, $self->_nginx_cmd());
    if ($rc != 0) {
        diag("nginx did not start:\n" . _slurp($log) . _tail("$d/error.log", 20));
        croak "nginx did not start";
    }

    my $ok = wait_until(10, sub {
        return unless -s "$d/nginx.pid";
        my $r = $self->request('GET', '/baseline', timeout => 2);
        return $r->{status} == 200;
    });
    unless ($ok) {
        diag("nginx not answering:\n" . _tail("$d/error.log", 20));
        croak "nginx not answering on port $self->{port}";
    }
    $self->{nginx_pid} = _read_pid("$d/nginx.pid");
    # an [emerg] from here on is a failure
    $self->{log_from} = -s "$d/error.log" // 0 unless $self->{log_from_set}++;
    return $self;
}

sub _log_count {
    my ($self, $re) = @_;
    my $text = _slurp("$self->{dir}/error.log");
    my $n = () = $text =~ /$re/g;
    return $n;
}

# nginx -s reload, then waits until the new workers have started and the
# old ones have exited; false when the reload did not happen (the log says
# why) or an old worker did not exit
sub reload {
    my ($self) = @_;
    my %old = map { $_ => 1 } $self->worker_pids;
    my $before = $self->_log_count(qr/start worker process/);
    my $log = "$self->{dir}/nginx-cmd.log";
    my $rc = _run_logged($log, $self->_nginx_cmd('-s', 'reload'));
    if ($rc != 0) {
        diag("nginx -s reload failed:\n" . _slurp($log));
        return 0;
    }
    # connections kept alive with old workers are not reused
    delete $self->{ua};
    my $want = $before + $self->{workers};
    my $ok = wait_until(10, sub {
        $self->_log_count(qr/start worker process/) >= $want;
    });
    unless ($ok) {
        diag("reload: new workers did not start:\n" . _tail("$self->{dir}/error.log", 20));
        return 0;
    }
    $ok = wait_until(15, sub { !grep { $old{$_} } $self->worker_pids });
    diag("reload: old workers still running: "
        . join(' ', grep { $old{$_} } $self->worker_pids)) unless $ok;
    return $ok;
}

# the pids of the nginx master's children (the workers)
sub worker_pids {
    my ($self) = @_;
    my $master = $self->{nginx_pid} // return ();
    my @w;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $s = <$fh> // next;
        my ($pid, $ppid) = $s =~ /^(\d+) \(.*\) \S+ (\d+)/s or next;
        push @w, $pid if $ppid == $master;
    }
    return @w;
}

# rewrites the configuration (same options as write_config) and reloads
sub reconfigure {
    my ($self, %opt) = @_;
    $self->write_config(%opt);
    return $self->reload;
}

sub nginx_running {
    my ($self) = @_;
    my $pid = $self->{nginx_pid} // return 0;
    return kill(0, $pid) ? 1 : 0;
}

# graceful stop; returns true when the master exited within the time limit
sub stop_nginx {
    my ($self, %opt) = @_;
    my $pid = $self->{nginx_pid} // _read_pid("$self->{dir}/nginx.pid");
    return 1 unless $pid && kill 0, $pid;

    _run_logged("$self->{dir}/nginx-cmd.log", $self->_nginx_cmd('-s', 'quit'));
    my $graceful = wait_until($opt{timeout} // 15, sub { !kill 0, $pid });
    unless ($graceful) {
        diag("nginx did not quit gracefully; terminating");
        kill 'TERM', $pid;
        wait_until(5, sub { !kill 0, $pid }) or kill 'KILL', $pid;
        # workers of a killed master
        wait_until(2, sub { 0 });
    }
    delete $self->{nginx_pid};
    return $graceful;
}


# ---------------------------------------------------------------------------
# error log

my @FATAL_LOG = (
    qr/\[alert\]/,
    qr/\[emerg\]/,
    qr/segfault/i,
    qr/exited on signal/,
    qr/Sanitizer/,
    qr/runtime error:/,   # UBSan
);

# the offending lines of error.log since startup
sub error_log_problems {
    my ($self) = @_;
    my $file = "$self->{dir}/error.log";
    return () unless -f $file;
    open my $fh, '<', $file or return ("cannot read $file: $!");
    seek $fh, $self->{log_from}, 0;
    my @bad;
    my @allow = @{ $self->{log_allow} || [] };
    while (my $line = <$fh>) {
        next if grep { $line =~ $_ } @allow;
        push @bad, $line if grep { $line =~ $_ } @FATAL_LOG;
    }
    # anything before startup that is a crash or sanitizer report counts too
    if ($self->{log_from}) {
        seek $fh, 0, 0;
        my $head = '';
        read $fh, $head, $self->{log_from};
        push @bad, grep { /segfault|exited on signal|Sanitizer/ }
            split /^/, $head;
    }
    return @bad;
}

sub error_log { _slurp("$_[0]{dir}/error.log") }

# error.log lines matching $re are expected (an [emerg] of a reload that a
# test refuses on purpose) and do not fail the file; crashes and sanitizer
# reports before startup still do
sub allow_log {
    my ($self, $re) = @_;
    push @{ $self->{log_allow} }, $re;
    return $self;
}


# ---------------------------------------------------------------------------
# teardown

# stops nginx and PostgreSQL, checks the log and the 5xx record, then
# done_testing
sub done {
    my ($self, @args) = @_;
    $self->finish;
    done_testing(@args);
}

# done without done_testing: for a second instance of a test file (another
# host on the same database)
sub finish {
    my ($self) = @_;
    croak "finish called from a child process" unless $$ == $self->{owner_pid};
    alarm 0;

    my $graceful = $self->stop_nginx;
    ok($graceful, 'nginx stops gracefully (quit)');

    my @bad = $self->error_log_problems;
    ok(!@bad, 'error.log has no alert, emerg, crash or sanitizer report')
        or diag("error.log:\n" . join('', @bad[0 .. ($#bad < 30 ? $#bad : 29)]));

    my @b5 = @{ $self->{bad_5xx} };
    ok(!@b5, 'no 5xx responses other than deliberate 503s')
        or diag(join "\n", @b5[0 .. ($#b5 < 20 ? $#b5 : 19)]);

    $self->stop_db;
    $self->{done} = 1;
    $self->_cleanup;
}

sub teardown {
    my ($self) = @_;
    return unless $$ == $self->{owner_pid};
    return if $self->{torn_down}++;
    $self->stop_nginx(timeout => 10);
    $self->_build_sh('db-stop') if $self->{db_running} || -d "$self->{dir}/pg";
    $self->{db_running} = 0;
}

sub _cleanup {
    my ($self) = @_;
    $self->teardown;
    my $keep = $ENV{CRM_TEST_KEEP} || !Test::More->builder->is_passing;
    if ($keep) {
        diag("kept test directory $self->{dir}");
    } else {
        remove_tree($self->{dir});
    }
}

END {
    my $rc = $?;
    for my $self (@LIVE) {
        next unless $$ == $self->{owner_pid};
        next if $self->{done};
        my @bad = eval { $self->error_log_problems };
        diag("error.log:\n" . join '', @bad) if @bad;
        $self->_cleanup;
    }
    $? = $rc;
}


# ---------------------------------------------------------------------------
# HTTP

# ->request(METHOD, PATH, %opt) with
#   headers => {...}, content => bytes, json => data (encoded, with
#   Content-Type: application/json), form => {..} or [..] (urlencoded),
#   token => bearer token, timeout => seconds, allow_503 => 1,
#   allow_5xx => 1 (a fault the test injects on purpose)
# Returns {status, reason, headers (lower-case names), content, json}.
# A 5xx is recorded as a failure unless it is a 503 while PostgreSQL is
# deliberately stopped or allow_503 was given, or allow_5xx was given.
sub request {
    my ($self, $method, $path, %opt) = @_;
    my %h = %{ $opt{headers} || {} };
    my $content = $opt{content};
    if (exists $opt{json}) {
        $content = $JSON->encode($opt{json});
        $h{'Content-Type'} //= 'application/json';
    }
    if ($opt{form}) {
        $content = HTTP::Tiny->new->www_form_urlencode($opt{form});
        $h{'Content-Type'} //= 'application/x-www-form-urlencoded';
    }
    $h{Authorization} = "Bearer $opt{token}" if defined $opt{token};

    my $ua = $opt{ua} // ($self->{ua} //= HTTP::Tiny->new(max_redirect => 0,
        timeout => 10, keep_alive => 1, agent => 'crm-test/1.0'));
    local $ua->{timeout} = $opt{timeout} if $opt{timeout};

    my $r = $ua->request($method, $self->base_url . $path, {
        headers => \%h,
        (defined $content ? (content => $content) : ()),
    });
    $self->{requests}++;

    my $res = {
        status  => $r->{status},
        reason  => $r->{reason},
        headers => $r->{headers} || {},
        content => $r->{content} // '',
    };
    $res->{json} = _try_decode($res);
    $self->_note_status($res, "$method $path", $opt{allow_503})
        unless $opt{allow_5xx};
    return $res;
}

sub get { my ($s, $p, %o) = @_; $s->request('GET', $p, %o) }
sub post_json { my ($s, $p, $d, %o) = @_; $s->request('POST', $p, json => $d, %o) }
sub patch_json { my ($s, $p, $d, %o) = @_; $s->request('PATCH', $p, json => $d, %o) }
sub post_form { my ($s, $p, $f, %o) = @_; $s->request('POST', $p, form => $f, %o) }
sub put_json { my ($s, $p, $d, %o) = @_; $s->request('PUT', $p, json => $d, %o) }
sub del { my ($s, $p, %o) = @_; $s->request('DELETE', $p, %o) }

# POST with a body sent verbatim and the given Content-Type (undef: none)
sub post_raw {
    my ($self, $path, $body, $type, %opt) = @_;
    my %h = %{ $opt{headers} || {} };
    $h{'Content-Type'} = $type if defined $type;
    return $self->request('POST', $path, content => $body, %opt, headers => \%h);
}

# nginx.conf text for the affiliate edge: the shared zones at http level
# (http_extra) and the /r/ and /metrics locations (server_extra).
# Options: cache (zone size), queue (zone size), flush, batch, lease, ttl,
# negative_ttl, stale (stale_if_error), negative_share (percent), spool
# (folder, default <dir>/spool; '' for none), spool_max.
sub edge_config {
    my ($self, %o) = @_;
    my $d = $self->{dir};
    my $spool = exists $o{spool} ? $o{spool} : "$d/spool";
    my $http = sprintf "    crm_link_cache zone=crm_links:%s ttl=%s negative_ttl=%s"
        . " stale_if_error=%s negative_share=%s%%;\n"
        . "    crm_click_queue zone=crm_clicks:%s flush=%s batch=%s lease=%s;\n",
        $o{cache} // '4m', $o{ttl} // '60s', $o{negative_ttl} // '60s',
        $o{stale} // '10m', $o{negative_share} // 25,
        $o{queue} // '8m', $o{flush} // '50ms', $o{batch} // '1m', $o{lease} // '10s';
    $http .= sprintf "    crm_click_spool %s max_size=%s;\n", $spool, $o{spool_max} // '1g'
        if length $spool;
    my $server = "        location /r/ { crm_redirect; }\n"
        . "        location = /metrics { crm_metrics; }\n";
    return (http_extra => $http, server_extra => $server);
}

# /metrics as { name{labels} => value }
sub metrics {
    my ($self) = @_;
    my $r = $self->get('/metrics');
    my %m;
    for (split /\n/, $r->{content}) {
        $m{$1} = $2 if /^(\S+) (\d+)$/;
    }
    return \%m;
}

# The X-CRM-Signature value for body at time t (default: now), signed with
# the configured callback secret or opt{secret}.
sub sign_callback {
    my ($self, $body, %opt) = @_;
    my $t = $opt{t} // int time;
    my $key = $opt{secret} // $self->{callback_secret};
    return "t=$t,v1=" . unpack('H*', hmac_sha256("$t.$body", $key));
}

# POST a signed callback: data is encoded as JSON unless opt{raw} (bytes);
# opt{signature} replaces the computed header (undef: no header at all).
sub callback {
    my ($self, $path, $data, %opt) = @_;
    my $body = exists $opt{raw} ? $opt{raw} : $JSON->encode($data);
    my %h = %{ $opt{headers} || {} };
    my $sig = exists $opt{signature} ? $opt{signature}
                                     : $self->sign_callback($body, %opt);
    $h{'X-CRM-Signature'} = $sig if defined $sig;
    $h{'Content-Type'} //= 'application/json';
    return $self->request('POST', $path, content => $body, %opt,
                          headers => \%h);
}

sub _note_status {
    my ($self, $res, $what, $allow_503) = @_;
    my $s = $res->{status} // 0;
    return if $s < 500 || $s == 599;
    return if $s == 503 && ($allow_503 || !$self->{db_running});
    push @{ $self->{bad_5xx} }, "$what -> $s $res->{content}";
}

sub _try_decode {
    my ($res) = @_;
    my $ct = $res->{headers}{'content-type'} // '';
    return undef unless $ct =~ m{^application/(?:problem\+)?json\b}i;
    return eval { $JSON->decode($res->{content}) };
}

# Sends bytes verbatim on a new connection and reads one response.  Returns
# {status, headers, content, json, raw, closed} (status 0 when the server
# closed without answering).  Options: timeout, chunks => [..] sent one
# after another with delay => seconds between them.
sub raw {
    my ($self, $bytes, %opt) = @_;
    my $timeout = $opt{timeout} // 10;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $self->{port}, Proto => 'tcp', Timeout => 5)
        or return { status => 0, error => "connect: $!", headers => {},
                    content => '', raw => '' };
    local $SIG{PIPE} = 'IGNORE';
    my @parts = $opt{chunks} ? @{ $opt{chunks} } : ($bytes);
    my $send_error;
    for my $i (0 .. $#parts) {
        sleep $opt{delay} if $i && $opt{delay};
        my $buf = $parts[$i];
        while (length $buf) {
            my $n = syswrite($s, $buf, 65536);
            unless (defined $n) { $send_error = "$!"; last }
            substr($buf, 0, $n, '');
        }
        last if $send_error;
    }

    my ($raw, $closed, $deadline) = ('', 0, time + $timeout);
    my $sel = IO::Select->new($s);
    while (time < $deadline) {
        last if _complete_response($raw);
        next unless $sel->can_read(0.2);
        my $n = sysread($s, my $chunk, 65536);
        if (!$n) { $closed = 1; last }
        $raw .= $chunk;
    }
    close $s;

    my $res = _parse_response($raw);
    $res->{closed} = $closed;
    $res->{send_error} = $send_error;
    $res->{json} = _try_decode($res) if $res->{status};
    $self->_note_status($res, 'raw ' . substr($bytes // '', 0, 60), $opt{allow_503});
    return $res;
}

sub _complete_response {
    my ($raw) = @_;
    return 0 unless $raw =~ /\r\n\r\n/;
    my $res = _parse_response($raw);
    return $res->{complete};
}

sub _parse_response {
    my ($raw) = @_;
    my %res = (status => 0, headers => {}, content => '', raw => $raw, complete => 0);
    my $end = index $raw, "\r\n\r\n";
    return \%res if $end < 0;
    my ($line, @hl) = split /\r\n/, substr($raw, 0, $end);
    ($res{status}, $res{reason}) = $line =~ m{^HTTP/\d\.\d (\d{3}) ?(.*)$} or return \%res;
    for (@hl) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $k = lc $k;
        $res{headers}{$k} = exists $res{headers}{$k} ? "$res{headers}{$k}, $v" : $v;
    }
    my $body = substr($raw, $end + 4);
    my $te = $res{headers}{'transfer-encoding'} // '';
    if ($te =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $n = hex $1;
            if ($n == 0) { $res{complete} = 1; last }
            last if length($body) < $n + 2;
            $out .= substr($body, 0, $n);
            substr($body, 0, $n + 2, '');
        }
        $res{content} = $out;
    } elsif (defined(my $cl = $res{headers}{'content-length'})) {
        $res{content} = substr($body, 0, $cl);
        $res{complete} = length($body) >= $cl;
    } else {
        $res{content} = $body;
        $res{complete} = $res{status} == 204 || $res{status} == 304;
    }
    return \%res;
}


# ---------------------------------------------------------------------------
# accounts and tokens

my $EMAIL_SEQ = 0;

sub unique_email {
    my ($self, $prefix) = @_;
    $EMAIL_SEQ++;
    return lc(($prefix // 'user') . "-$$-$EMAIL_SEQ\@example.com");
}

# registers through the API; returns the account (croaks unless 201)
sub register {
    my ($self, %f) = @_;
    $f{email} //= $self->unique_email;
    $f{password} //= 'correct horse battery';
    my $r = $self->post_json('/auth/register', \%f);
    croak "register $f{email}: $r->{status} $r->{content}" unless $r->{status} == 201;
    return $r->{json};
}

# logs in with JSON; returns the access token (croaks unless 200)
sub login {
    my ($self, $email, $password) = @_;
    my $r = $self->post_json('/auth/login', { email => $email, password => $password });
    croak "login $email: $r->{status} $r->{content}" unless $r->{status} == 200;
    return $r->{json}{access_token};
}

# registers a member and logs in: (account, token)
sub member {
    my ($self, %f) = @_;
    $f{password} //= 'correct horse battery';
    my $acc = $self->register(%f);
    return ($acc, $self->login($acc->{email}, $f{password}));
}

# the documented way to get an admin: build/crm-admin.  Returns the tool's
# exit status (0 on success); output in $self->{admin_output}
sub crm_admin {
    my ($self, $email, $password) = @_;
    local $ENV{CRM_ADMIN_PASSWORD};
    if (defined $password) {
        $ENV{CRM_ADMIN_PASSWORD} = $password;
    } else {
        delete $ENV{CRM_ADMIN_PASSWORD};
    }
    my $log = "$self->{dir}/crm-admin.log";
    my $rc = _run_logged($log, $self->{admin_tool}, '--database', $self->dsn, $email);
    $self->{admin_output} = _slurp($log);
    return $rc;
}

# creates an admin with crm-admin and logs in: (account, token)
sub admin {
    my ($self, %f) = @_;
    my $email = $f{email} // $self->unique_email('admin');
    my $password = $f{password} // 'admin password 123';
    my $rc = $self->crm_admin($email, $password);
    croak "crm-admin $email failed ($rc): $self->{admin_output}" if $rc;
    my $token = $self->login($email, $password);
    my $me = $self->get('/auth/me', token => $token);
    croak "admin /auth/me: $me->{status} $me->{content}" unless $me->{status} == 200;
    return ($me->{json}, $token);
}

sub b64url {
    my $s = encode_base64($_[0], '');
    $s =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

sub b64url_decode {
    my $s = $_[0];
    $s =~ tr{-_}{+/};
    $s .= '=' x ((4 - length($s) % 4) % 4);
    return decode_base64($s);
}

sub json_encode { $JSON->encode($_[0]) }
sub json_decode { $JSON->decode($_[0]) }

# A JWT.  Options:
#   claims => {...}     merged over iss, aud, iat, exp (now + 1 h); a claim
#                       set to undef is left out
#   header => {...}     merged over {alg: HS256, typ: JWT}
#   key    => bytes     default: the configured secret
#   sign   => 'HS256' | 'HS512' | 'none'   default: the header's alg
sub forge_token {
    my ($self, %o) = @_;
    my $now = int time;
    my %c = (iss => 'crm-gateway', aud => 'crm-api', iat => $now,
        exp => $now + 3600, %{ $o{claims} || {} });
    delete $c{$_} for grep { !defined $c{$_} } keys %c;
    my %h = (alg => 'HS256', typ => 'JWT', %{ $o{header} || {} });
    delete $h{$_} for grep { !defined $h{$_} } keys %h;

    my $input = b64url($JSON->encode(\%h)) . '.' . b64url($JSON->encode(\%c));
    my $key = $o{key} // $self->{jwt_secret};
    my $alg = $o{sign} // $h{alg} // 'none';
    my $sig = $alg eq 'HS256' ? hmac_sha256($input, $key)
            : $alg eq 'HS512' ? hmac_sha512($input, $key)
            : '';
    return "$input." . b64url($sig);
}

# ---------------------------------------------------------------------------
# an identity provider of the test's own: RSA keys made and used with the
# openssl tool, so the gateway's RS256 code is checked against another
# implementation

# the private key file of key $name (made on first use; bits default 2048)
sub idp_key {
    my ($self, $name, %o) = @_;
    my $file = "$self->{dir}/idp-$name.pem";
    return $file if -s $file;
    my $rc = _run_logged("$self->{dir}/openssl.log", 'openssl', 'genpkey',
        '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:' . ($o{bits} // 2048),
        '-out', $file);
    croak "openssl genpkey: " . _slurp("$self->{dir}/openssl.log") if $rc;
    return $file;
}

# the public JWK of key $name, with kid $name unless another is given
sub idp_jwk {
    my ($self, $name, %o) = @_;
    my $file = $self->idp_key($name);
    my $mod = `openssl rsa -in '$file' -noout -modulus 2>/dev/null`;
    $mod =~ s/^Modulus=//;
    $mod =~ s/\s+//g;
    croak "no modulus for key $name" unless length $mod;
    return { kty => 'RSA', alg => 'RS256', use => 'sig',
        kid => $o{kid} // $name, n => b64url(pack('H*', $mod)), e => 'AQAB' };
}

# writes a JWKS of the named keys to $file; returns $file
sub write_jwks {
    my ($self, $file, @names) = @_;
    _write_file($file, $JSON->encode({ keys => [ map { $self->idp_jwk($_) } @names ] }));
    return $file;
}

# the certificate map Google publishes for Firebase ({kid: PEM}) of the
# named keys, into $file; returns $file
sub write_idp_certs {
    my ($self, $file, @names) = @_;
    my %map;
    for my $name (@names) {
        my $pem = "$self->{dir}/idp-$name.crt";
        my $rc = _run_logged("$self->{dir}/openssl.log", 'openssl', 'req', '-new',
            '-x509', '-key', $self->idp_key($name), '-subj', "/CN=$name", '-days', '2',
            '-out', $pem);
        croak "openssl req: " . _slurp("$self->{dir}/openssl.log") if $rc;
        $map{$name} = _slurp($pem);
    }
    _write_file($file, $JSON->encode(\%map));
    return $file;
}

# An ID token as Firebase issues them, signed RS256 with key $o{key}
# (default "a") and its name as kid.  Options as forge_token: claims
# (merged over iss, aud, sub, iat, auth_time, exp, email), header (merged
# over alg RS256, kid, typ), undef leaves one out; sign => 'none' leaves
# the signature empty; subject, email: shorthands.
sub idp_token {
    my ($self, %o) = @_;
    my $now = int time;
    my $key = $o{key} // 'a';
    my %c = (iss => "https://securetoken.google.com/$IDP_PROJECT", aud => $IDP_PROJECT,
        sub => $o{subject} // 'subject-1', iat => $now - 5, auth_time => $now - 10,
        exp => $now + 3600, email => $o{email} // 'merchant@example.com',
        email_verified => JSON::PP::true, %{ $o{claims} || {} });
    delete $c{$_} for grep { !defined $c{$_} } keys %c;
    my %h = (alg => 'RS256', kid => $key, typ => 'JWT', %{ $o{header} || {} });
    delete $h{$_} for grep { !defined $h{$_} } keys %h;

    my $input = b64url($JSON->encode(\%h)) . '.' . b64url($JSON->encode(\%c));
    return "$input." if ($o{sign} // '') eq 'none';
    my $in = "$self->{dir}/idp-input";
    _write_file($in, $input);
    my $file = $self->idp_key($key);
    my $sig = `openssl dgst -sha256 -sign '$file' -binary '$in'`;
    croak "openssl dgst failed" if $? || !length $sig;
    return "$input." . b64url($sig);
}

# configuration for sign-in with the test's provider: a JWKS of the named
# keys (every configuration trusts key "a" of $IDP_PROJECT by default)
sub idp_conf {
    my ($self, @names) = @_;
    return (crm_idp_project_id => $IDP_PROJECT,
        crm_idp_keys_file => $self->write_jwks("$self->{dir}/idp-jwks.json", @names));
}

# a merchant of its own subject, bootstrapped: (account, ID token)
sub merchant {
    my ($self, %o) = @_;
    my $sub = $o{subject} // 'merchant-' . $$ . '-' . ++$self->{merchant_seq};
    my $token = $self->idp_token(%o, subject => $sub,
        email => $o{email} // "$sub\@example.com");
    my $r = $self->post_json('/auth/bootstrap', $o{body} // {}, token => $token);
    croak "bootstrap $sub: $r->{status} $r->{content}" unless $r->{status} == 201;
    return ($r->{json}, $token);
}


# (header, claims) of a compact JWT, without verification
sub decode_jwt {
    my ($self, $token) = @_;
    my ($h, $c) = split /\./, $token;
    return ($JSON->decode(b64url_decode($h)), $JSON->decode(b64url_decode($c)));
}

sub verify_hs256 {
    my ($self, $token) = @_;
    my ($h, $c, $s) = split /\./, $token;
    return 0 unless defined $s;
    return b64url(hmac_sha256("$h.$c", $self->{jwt_secret})) eq $s;
}


# ---------------------------------------------------------------------------
# leads, the pipeline and lists

# creates a lead through the API; returns it (croaks unless 201)
sub create_lead {
    my ($self, $token, %f) = @_;
    $f{name} //= 'Lead ' . ++$self->{lead_seq};
    my $r = $self->post_json('/leads/', \%f, token => $token);
    croak "POST /leads/ $f{name}: $r->{status} $r->{content}" unless $r->{status} == 201;
    return $r->{json};
}

# Pages through a list with ?limit=$opt{limit} (and the query already in
# $path), following next_cursor.  Returns (items, error, pages): error is
# a description of the first page that was not a 200 list, or of a list
# that did not end within $opt{max_pages} (default 500) pages.
sub page_all {
    my ($self, $path, %opt) = @_;
    my (@items, $cursor, $pages);
    my $sep = $path =~ /\?/ ? '&' : '?';
    for (1 .. ($opt{max_pages} // 500)) {
        my $q = $path;
        my @p;
        push @p, "limit=$opt{limit}" if defined $opt{limit};
        push @p, 'cursor=' . uri_escape($cursor) if defined $cursor;
        $q .= $sep . join('&', @p) if @p;
        my $r = $self->get($q, token => $opt{token});
        $pages++;
        return (\@items, "$q: $r->{status} $r->{content}", $pages)
            unless $r->{status} == 200 && ref $r->{json} eq 'HASH'
            && ref $r->{json}{items} eq 'ARRAY' && exists $r->{json}{next_cursor};
        my $n = @{ $r->{json}{items} };
        return (\@items, "$q: $n items, more than the limit", $pages)
            if defined $opt{limit} && $n > $opt{limit};
        push @items, @{ $r->{json}{items} };
        $cursor = $r->{json}{next_cursor};
        return (\@items, undef, $pages) unless defined $cursor;
        return (\@items, "$q: an empty page with a next_cursor", $pages) unless $n;
    }
    return (\@items, "$path: no end after $pages pages", $pages);
}

# percent-encodes the UTF-8 of a character string
sub uri_escape {
    my $s = shift;
    utf8::encode($s);
    $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

# the pipeline the server reads unless a test says otherwise
sub pipeline_dir {
    my ($self) = @_;
    return $self->{pipeline_dir} // "$ROOT/pipeline-config";
}

# Reads a pipeline folder as the contract describes it:
# [{stage, position (0-based), substages: [{status, description, score,
# notes}, ...]}, ...] in the order of stages.json.  Croaks when a file is
# missing or not JSON.
sub load_pipeline {
    my ($self, $dir) = @_;
    $dir //= $self->pipeline_dir;
    my $stages = $JSON->decode(_slurp_or_croak("$dir/stages.json"));
    croak "$dir/stages.json: not an array" unless ref $stages eq 'ARRAY';
    my @p;
    for my $i (0 .. $#$stages) {
        my $subs = $JSON->decode(_slurp_or_croak("$dir/$stages->[$i]/substages.json"));
        push @p, { stage => $stages->[$i], position => $i, substages => $subs };
    }
    return \@p;
}

# Copies the repository's pipeline (or $from) into $to (default
# <test dir>/pipeline), file by file; returns $to.  Tests edit the copy,
# never the repository's pipeline-config.
sub copy_pipeline {
    my ($self, $to, $from) = @_;
    $to //= "$self->{dir}/pipeline";
    $from //= "$ROOT/pipeline-config";
    remove_tree($to) if -e $to;
    _copy_tree($from, $to);
    return $to;
}

sub _copy_tree {
    my ($from, $to) = @_;
    mkdir $to or croak "mkdir $to: $!";
    chmod 0755, $to;
    opendir my $dh, $from or croak "$from: $!";
    for my $e (sort grep { !/^\.\.?\z/ } readdir $dh) {
        if (-d "$from/$e") {
            _copy_tree("$from/$e", "$to/$e");
        } else {
            _write_file("$to/$e", _slurp_or_croak("$from/$e"));
        }
    }
    closedir $dh;
}

# writes data as JSON (pretty, keys sorted) or, given a plain string, that
# text verbatim
sub write_json {
    my ($self, $file, $data) = @_;
    _write_file($file, ref $data
        ? JSON::PP->new->utf8->canonical->pretty->encode($data) : $data);
    return $self;
}

sub read_json {
    my ($self, $file) = @_;
    return $JSON->decode(_slurp_or_croak($file));
}

sub _slurp_or_croak {
    my ($file) = @_;
    open my $fh, '<', $file or croak "$file: $!";
    binmode $fh;
    local $/;
    my $s = <$fh>;
    return $s // '';
}


# the members of a lead, as the contract lists them
our @LEAD_FIELDS = qw(id owner_id name email phone company shop_domain
    source stage substage score value_cents currency notes affiliate_link_id
    version stage_in_pipeline created_at updated_at);

# true for a scalar that JSON decoding made an integer (not a string, not
# a number written with a fraction or an exponent): check a freshly
# decoded value, before anything used it as a string
sub is_json_int {
    my ($v) = @_;
    return 0 unless defined $v && !ref $v;
    my $f = B::svref_2object(\$v)->FLAGS;
    return 0 if $f & B::SVp_POK;
    return ($f & B::SVp_IOK) ? 1 : 0;
}

# why a lead object does not have the contract's shape (empty when it has
# exactly its members, each of the right type)
sub lead_shape_problems {
    my ($l) = @_;
    return ('not a JSON object') unless ref $l eq 'HASH';
    my %want = map { $_ => 1 } @LEAD_FIELDS;
    my @why;
    push @why, "no member '$_'" for grep { !exists $l->{$_} } @LEAD_FIELDS;
    push @why, "unexpected member '$_'" for grep { !$want{$_} } sort keys %$l;
    for (qw(id owner_id)) {
        push @why, "$_ is not a UUID" unless is_uuid($l->{$_});
    }
    for (qw(name source stage substage currency notes)) {
        push @why, "$_ is not a string"
            unless defined $l->{$_} && !ref $l->{$_} && !is_json_int($l->{$_});
    }
    for (qw(email phone company shop_domain affiliate_link_id)) {
        push @why, "$_ is neither null nor a string"
            if defined $l->{$_} && (ref $l->{$_} || is_json_int($l->{$_}));
    }
    for (qw(score value_cents version)) {
        push @why, "$_ is not an integer" unless is_json_int($l->{$_});
    }
    push @why, 'stage_in_pipeline is not a boolean'
        unless JSON::PP::is_bool($l->{stage_in_pipeline});
    for (qw(created_at updated_at)) {
        push @why, "$_ is not an RFC 3339 UTC time" unless is_rfc3339_utc($l->{$_});
    }
    return @why;
}

# a lead has the contract's shape; takes a response (its body is decoded
# afresh, so the types are those of the JSON text) or a decoded lead
sub is_lead {
    my ($x, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $l = $x;
    if (ref $x eq 'HASH' && exists $x->{content} && exists $x->{headers}) {
        $l = eval { $JSON->decode($x->{content}) };
    }
    my @why = lead_shape_problems($l);
    my $ok = Test::More->builder->ok(!@why, $name);
    Test::More::diag(join('; ', @why) . "\n  lead: "
        . (ref $x eq 'HASH' && exists $x->{content} ? $x->{content} : $JSON->encode($x)))
        unless $ok;
    return $ok;
}


# ---------------------------------------------------------------------------
# concurrency

# Runs $cb->($i) for $i = 1 .. $n in as many forked processes, released
# together once all are forked; each child makes its requests on its own
# connection and returns one response.  Returns the $n responses
# ({status, headers, content, json}) in the order of $i; a 5xx among them
# fails the file as any other would.
sub concurrently {
    my ($self, $n, $cb) = @_;
    pipe(my $go_r, my $go_w) or croak "pipe: $!";
    my $base = "$self->{dir}/concurrent-" . ++$self->{concurrent_seq};
    my @pids;
    for my $i (1 .. $n) {
        my $pid = fork // croak "fork: $!";
        if ($pid == 0) {
            close $go_w;
            delete $self->{ua};
            sysread $go_r, my $byte, 1;     # end of file: go
            my $r = eval { $cb->($i) } // { status => 0, content => "died: $@" };
            _write_file("$base-$i", $JSON->encode({ status => $r->{status},
                headers => $r->{headers} || {}, content => $r->{content} }));
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $go_r;
    close $go_w;
    waitpid $_, 0 for @pids;
    my @res;
    for my $i (1 .. $n) {
        my $res = eval { $JSON->decode(_slurp("$base-$i")) }
            // { status => 0, headers => {}, content => "child $i left no response" };
        unlink "$base-$i";
        $res->{json} = _try_decode($res);
        $self->_note_status($res, "concurrent request $i");
        push @res, $res;
    }
    return @res;
}


# ---------------------------------------------------------------------------
# affiliate ids (crm_ids.h), made the way the gateway makes them

my $B62 = join '', '0' .. '9', 'A' .. 'Z', 'a' .. 'z';

sub _b62_random { join '', map { substr $B62, int rand 62, 1 } 1 .. $_[0] }

# a well-formed link id (random, or from ten given characters) that the
# database need not hold: 10 characters and 2 check characters, the first
# 32 bits of their HMAC-SHA256 under the link id key, modulo 62^2
sub make_link_id {
    my ($self, $ten, $key) = @_;
    $ten //= _b62_random(10);
    $key //= ref $self ? $self->{link_secret} : $LINK_SECRET;
    my $h = unpack('N', hmac_sha256($ten, $key)) % (62 * 62);
    return $ten . substr($B62, int($h / 62), 1) . substr($B62, $h % 62, 1);
}

# the same as a plain function, exported, under this file's key
sub link_id { return make_link_id(undef, @_) }

# a click id of a link: the link id, the second (default now), 8 random
sub make_click_id {
    my ($self, $link_id, $t) = @_;
    $t //= int time;
    my $ts = '';
    for (1 .. 6) {
        $ts = substr($B62, $t % 62, 1) . $ts;
        $t = int($t / 62);
    }
    return $link_id . $ts . _b62_random(8);
}


# ---------------------------------------------------------------------------
# assertions

# status, problem+json media type and the RFC 9457 members; field => NAME
# also requires errors: [{field: NAME, message}]
sub is_problem {
    my ($res, $status, $name, %o) = @_;
    my $tb = Test::More->builder;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @why;
    push @why, "status $res->{status}, want $status" unless $res->{status} == $status;
    my $ct = $res->{headers}{'content-type'} // '';
    push @why, "content-type '$ct'" unless $ct =~ m{^application/problem\+json\b}i;
    my $j = $res->{json};
    if (ref $j ne 'HASH') {
        push @why, 'body is not a JSON object';
    } else {
        push @why, 'type is not about:blank' unless ($j->{type} // '') eq 'about:blank';
        push @why, 'title missing' unless defined $j->{title} && !ref $j->{title} && length $j->{title};
        push @why, "status member " . ($j->{status} // 'missing')
            unless defined $j->{status} && $j->{status} eq $status;
        push @why, 'detail missing' unless defined $j->{detail} && !ref $j->{detail} && length $j->{detail};
        if (defined $o{field}) {
            my $errs = $j->{errors};
            if (ref $errs ne 'ARRAY') {
                push @why, 'errors missing';
            } elsif (!grep { ref $_ eq 'HASH' && ($_->{field} // '') eq $o{field}
                    && defined $_->{message} && length $_->{message} } @$errs) {
                push @why, "errors do not name field '$o{field}'";
            }
        }
    }
    my $ok = $tb->ok(!@why, $name);
    $tb->diag(join('; ', @why) . "\n  response: $res->{status} $ct $res->{content}") unless $ok;
    return $ok;
}

# status and an application/json body; returns the decoded body
# A response's body and document without its "request_id", which every
# problem document carries and no two requests share: for comparing two
# answers that must otherwise be the same
sub sans_request_id {
    my ($res) = @_;
    (my $content = $res->{content} // '') =~ s/,"request_id":"[0-9a-f]{32}"//;
    my $json = $res->{json};
    $json = { %$json } if ref $json eq 'HASH';
    delete $json->{request_id} if ref $json eq 'HASH';
    return { %$res, content => $content, json => $json };
}

sub is_json_response {
    my ($res, $status, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ct = $res->{headers}{'content-type'} // '';
    my $ok = Test::More->builder->ok($res->{status} == $status
        && $ct =~ m{^application/json\b}i && defined $res->{json}, $name);
    diag("got $res->{status} '$ct': $res->{content}") unless $ok;
    return $res->{json};
}

sub is_uuid {
    return defined $_[0] && !ref $_[0]
        && $_[0] =~ /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
}

sub is_rfc3339_utc {
    return defined $_[0] && !ref $_[0]
        && $_[0] =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/;
}


# ---------------------------------------------------------------------------
# utilities

# polls until $cb returns true or $seconds pass; returns the last result
sub wait_until {
    my ($seconds, $cb, $step) = @_;
    my $deadline = time + $seconds;
    while (1) {
        my $v = $cb->();
        return $v if $v;
        return 0 if time >= $deadline;
        sleep($step // 0.1);
    }
}

# runs a command with stdout and stderr appended to $log; returns the exit
# status (127 when it could not run)
sub _run_logged {
    my ($log, @cmd) = @_;
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT;
        exec @cmd or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    return $? >> 8 || ($? & 127 ? 128 + ($? & 127) : 0);
}

sub _write_file {
    my ($file, $content) = @_;
    open my $fh, '>', $file or croak "$file: $!";
    binmode $fh;
    print $fh $content;
    close $fh or croak "$file: $!";
    chmod 0644, $file;
}

sub _slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    my $s = <$fh>;
    return $s // '';
}

sub _tail {
    my ($file, $n) = @_;
    my @l = split /^/, _slurp($file);
    @l = @l[-$n .. -1] if @l > $n;
    return join '', @l;
}

sub _read_pid {
    my $s = _slurp($_[0]);
    return $s =~ /(\d+)/ ? $1 : undef;
}

1;

#!/usr/bin/perl
# crm_database_replica against a real streaming replica: pg_basebackup of
# the test's primary onto another local port, started as a hot standby.
# The reads that may lag (the performance views) go to the replica while
# its probe finds it answering and within max_lag (measured by WAL
# position against the primary's); everything else, every write and every
# caller check stays on the primary.  With the replica's replay paused: a
# new lead is in GET /leads (the primary) at once and not in
# GET /performance/me (the replica); an account the replica lacks gets its
# summary from the primary (fallback); an admin deactivated on the primary
# loses the leaderboard at once.  With a max_lag of 1 s, the paused replica
# is bypassed once it is that far behind.  A replica that is down is
# bypassed with no failed request, and /healthz follows the primary alone.

use strict;
use warnings;

use Test::More;
use File::Path qw(make_path);
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep time);
use CrmTest;

my $t = CrmTest->new;
my $d = $t->dir;
$t->start_db;

# --- the replica ------------------------------------------------------------------------

my $BIN = '/usr/lib/postgresql/15/bin';
my $ROOT_USER = $> == 0;
my $RDATA = "$d/replica";
my $RPORT = CrmTest::free_port($t->pg_port, $t->port);

# PostgreSQL runs as "postgres" when the tests run as root (build.sh as_pg)
sub as_pg {
    my (@cmd) = @_;
    @cmd = ('runuser', '-u', 'postgres', '--', @cmd) if $ROOT_USER;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        chdir '/';
        open STDOUT, '>>', "$d/replica.out";
        open STDERR, '>&', \*STDOUT;
        exec @cmd or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    return $? == 0;
}

# psql on the replica, as the superuser (pausing replay needs one)
sub rsql {
    my ($sql) = @_;
    local $ENV{PGCONNECT_TIMEOUT} = 5;
    my $out = qx{psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $RPORT -U postgres -d crm -tA -c "$sql" 2>&1};
    die "psql on the replica failed: $sql\n$out" if $?;
    chomp $out;
    return $out;
}

make_path($RDATA);
chmod 0700, $RDATA;
if ($ROOT_USER) {
    my (undef, undef, $uid, $gid) = getpwnam('postgres');
    chown $uid, $gid, $RDATA;
}
ok(as_pg("$BIN/pg_basebackup", '-h', '127.0.0.1', '-p', $t->pg_port, '-U', 'postgres',
    '-D', $RDATA, '-R', '-X', 'stream', '-c', 'fast'),
    'pg_basebackup copies the primary (-R: a standby that streams from it)')
    or BAIL_OUT('no replica: ' . CrmTest::_slurp("$d/replica.out"));
# the primary's settings came along; the last port line wins
open my $conf, '>>', "$RDATA/postgresql.conf" or die "$RDATA/postgresql.conf: $!";
print $conf "port = $RPORT\nhot_standby = on\n";
close $conf;
ok(as_pg("$BIN/pg_ctl", '-D', $RDATA, '-l', "$RDATA/server.log", '-w', '-t', '60', 'start'),
    "the replica runs on port $RPORT")
    or BAIL_OUT('replica did not start: ' . CrmTest::_slurp("$RDATA/server.log"));
END {
    as_pg("$BIN/pg_ctl", '-D', $RDATA, '-m', 'immediate', '-w', 'stop')
        if $RDATA && -f "$RDATA/postmaster.pid";
}
is(rsql('SELECT pg_is_in_recovery()'), 't', '... in recovery: a hot standby');

my $REPLICA_DSN = "host=127.0.0.1 port=$RPORT dbname=crm user=crm";

# a replica config with max_lag $_[0]
sub replica_config {
    my ($max_lag) = @_;
    return (conf => { crm_database_replica => qq{"$REPLICA_DSN" max_lag=$max_lag} },
        server_extra => "        location = /metrics { crm_metrics; }\n");
}

$t->write_config(replica_config('60s'));
$t->start_nginx;

sub metric {
    my ($name) = @_;
    return $t->metrics->{$name} // 0;
}

sub reads { metric(qq{crm_db_replica_reads_total{result="$_[0]"}}) }

# the replica has replayed everything the primary has committed so far
sub caught_up {
    my $lsn = $t->psql('SELECT pg_current_wal_lsn()');
    return CrmTest::wait_until(10, sub {
        rsql("SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn") eq 't' }, 0.02);
}

sub pause_replay {
    caught_up() or return 0;
    rsql('SELECT pg_wal_replay_pause()');
    return CrmTest::wait_until(5, sub { rsql('SELECT pg_get_wal_replay_pause_state()') eq 'paused' });
}

sub resume_replay {
    rsql('SELECT pg_wal_replay_resume()');
    return caught_up();
}

# crm_db_replica_lag_seconds (a fraction, or -1), undef when not printed
sub lag {
    my ($v) = $t->get('/metrics')->{content} =~ /^crm_db_replica_lag_seconds (-?[0-9.]+)$/m;
    return $v;
}

sub leads_total {
    my ($tok) = @_;
    my $r = $t->get('/performance/me', token => $tok);
    return $r->{status} == 200 ? $r->{json}{leads}{total} : "status $r->{status}";
}

my ($acc, $tok) = $t->member;
my ($admin, $admin_tok) = $t->admin;
my ($gone, $gone_tok) = $t->admin;
$t->create_lead($tok, name => 'First', email => 'first@example.com');
ok(caught_up(), 'the replica replays what the primary commits');
ok(CrmTest::wait_until(5, sub { (lag() // -1) == 0 }),
    'crm_db_replica_lag_seconds: 0 when it has replayed up to the primary');

# --- the performance views read the replica ---------------------------------------------

my $before = reads('replica');
is(leads_total($tok), 1, 'GET /performance/me: the lead');
is(reads('replica'), $before + 1, '... answered by the replica (crm_db_replica_reads_total)');
my $r = $t->get('/leads', token => $tok);
is(scalar @{ $r->{json}{items} }, 1, 'GET /leads (the primary) agrees');
is(reads('replica'), $before + 1, '... and is not a replica read');
is($t->get('/performance/leaderboard', token => $gone_tok)->{status}, 200,
    'an admin reads the leaderboard');

# --- replay paused: the views lag, the rest does not ---------------------------------------

ok(pause_replay(), "the replica's replay is paused");
$t->create_lead($tok, name => 'Second', email => 'second@example.com');
$r = $t->get('/leads', token => $tok);
is(scalar @{ $r->{json}{items} }, 2, 'a lead written now: GET /leads (the primary) has it');
$before = reads('replica');
is(leads_total($tok), 1, 'GET /performance/me: the replica, which has not replayed it, does not');
is(reads('replica'), $before + 1, '... answered by the replica');
ok(CrmTest::wait_until(5, sub { (lag() // 0) > 0 }),
    'crm_db_replica_lag_seconds grows: the primary has moved on, the replica has not ('
    . (lag() // 'none') . ' s)');

# the caller is the primary's to check
$r = $t->patch_json("/admin/users/$gone->{id}", { is_active => JSON::PP::false() }, token => $admin_tok);
is($r->{status}, 200, 'an admin is deactivated on the primary') or diag($r->{content});
is($t->get('/performance/leaderboard', token => $gone_tok)->{status}, 401,
    '... and cannot read the leaderboard at once, though the replica still has it active');

# an account the replica lacks: the summary's own check fails there, and
# the primary answers
my ($late, $late_tok) = $t->member;
$before = reads('fallback');
is(leads_total($late_tok), 0, 'an account registered while replay is paused: its summary, 200');
is(reads('fallback'), $before + 1, '... the replica lacked it: the primary answered (fallback)');

ok(resume_replay(), 'replay resumed: the replica catches up');
$before = reads('replica');
is(leads_total($tok), 2, '... and the views read it, the lead there');
is(reads('replica'), $before + 1, '... from the replica');
ok(CrmTest::wait_until(5, sub { (lag() // -1) == 0 }), 'crm_db_replica_lag_seconds back to 0');

# --- max_lag: a replica too far behind is bypassed ---------------------------------------

ok($t->reconfigure(replica_config('1s')), 'reloaded with max_lag=1s');
ok(CrmTest::wait_until(5, sub { (lag() // -1) == 0 }), 'the new workers have measured the replica');
ok(pause_replay(), 'replay paused again');
$t->create_lead($tok, name => 'Third', email => 'third@example.com');
$before = reads('bypassed');
ok(CrmTest::wait_until(6, sub { leads_total($tok) eq '3' }, 0.1),
    'a second behind, the views bypass the replica and see the new lead');
cmp_ok(reads('bypassed'), '>', $before, '... counted as bypassed');
ok(resume_replay(), 'replay resumed');
$before = reads('replica');
ok(CrmTest::wait_until(5, sub { leads_total($tok) eq '3' && reads('replica') > $before }, 0.1),
    '... and the views read the replica again');

# --- the replica down ---------------------------------------------------------------------

ok(as_pg("$BIN/pg_ctl", '-D', $RDATA, '-m', 'fast', '-w', 'stop'), 'the replica stops');
my @statuses;
for (1 .. 30) {
    my $r = $t->get('/performance/me', token => $tok);
    push @statuses, $r->{status};
    sleep 0.1;
}
is_deeply([grep { $_ != 200 } @statuses], [], 'the views answer 200 throughout (30 reads over 3 s)');
is($t->get('/healthz')->{status}, 200, '/healthz follows the primary: 200');
ok(CrmTest::wait_until(5, sub { (lag() // 0) == -1 }),
    'crm_db_replica_lag_seconds -1: the replica does not answer');
cmp_ok(reads('bypassed'), '>', 0, 'reads bypass it');
like($t->error_log, qr/database "crm\@127\.0\.0\.1:$RPORT\/crm" does not answer/,
    'the error log says the replica does not answer');

ok(as_pg("$BIN/pg_ctl", '-D', $RDATA, '-l', "$RDATA/server.log", '-w', '-t', '60', 'start'),
    'the replica starts again');
ok(caught_up(), '... catches up');
$before = reads('replica');
ok(CrmTest::wait_until(10, sub { leads_total($tok) eq '3' && reads('replica') > $before }, 0.2),
    '... and the views read it again');

# --- promoted: not a replica any more -------------------------------------------------------

ok(as_pg("$BIN/pg_ctl", '-D', $RDATA, '-w', 'promote'), 'the replica is promoted');
ok(CrmTest::wait_until(5, sub { (lag() // 0) == -1 }),
    'crm_db_replica_lag_seconds -1: it has left the primary\'s timeline');
$before = reads('bypassed');
is(leads_total($tok), 3, 'the views answer from the primary');
is(reads('bypassed'), $before + 1, '... bypassing it');
like($t->error_log, qr/replica "crm\@127\.0\.0\.1:$RPORT\/crm" is not in recovery/,
    'the error log says so');

is($t->psql("SELECT count(*) FROM crm.leads WHERE owner_id = '$acc->{id}' AND deleted_at IS NULL"), 3,
    "the primary holds the account's three leads");

$t->done;

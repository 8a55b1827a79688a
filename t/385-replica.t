#!/usr/bin/perl
# crm_database_replica against a real streaming replica: pg_basebackup of
# the test's primary onto another local port, started as a hot standby.
# The reads that may lag (the performance views) go to the replica while
# its probe finds it answering and within max_lag; everything else, and
# every write, stays on the primary.  With the replica's replay paused a
# write is visible at once through GET /leads (the primary) and not yet in
# GET /performance/me (the replica), until the replica falls max_lag
# behind and the views bypass it; once replay resumes they return to it.
# An account the replica has not replayed yet is answered by the primary
# (the replica's 401 falls back), a replica that is down is bypassed with
# no failed request, and /healthz follows the primary alone.

use strict;
use warnings;

use Test::More;
use File::Path qw(make_path);
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
my $stopped_replica = 0;
END {
    as_pg("$BIN/pg_ctl", '-D', $RDATA, '-m', 'immediate', '-w', 'stop')
        if $RDATA && -f "$RDATA/postmaster.pid";
}
is(rsql('SELECT pg_is_in_recovery()'), 't', '... in recovery: a hot standby');

my $REPLICA_DSN = "host=127.0.0.1 port=$RPORT dbname=crm user=crm";
$t->write_config(
    conf => { crm_database_replica => qq{"$REPLICA_DSN" max_lag=2s} },
    server_extra => "        location = /metrics { crm_metrics; }\n",
);
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

# the replica's lag is the age of its last replayed commit while WAL
# waits to be replayed: a commit just before the pause starts it near 0
sub pause_replay {
    $t->psql('SELECT txid_current()');
    caught_up() or return 0;
    rsql('SELECT pg_wal_replay_pause()');
    return CrmTest::wait_until(5, sub { rsql('SELECT pg_get_wal_replay_pause_state()') eq 'paused' });
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
$t->create_lead($tok, name => 'First', email => 'first@example.com');
ok(caught_up(), 'the replica replays what the primary commits');
ok(CrmTest::wait_until(5, sub { (lag() // -1) == 0 }),
    'crm_db_replica_lag_seconds: 0 when it has replayed all it received');

# --- the performance views read the replica ---------------------------------------------

my $before = reads('replica');
is(leads_total($tok), 1, 'GET /performance/me: the lead');
is(reads('replica'), $before + 1, '... answered by the replica (crm_db_replica_reads_total)');
my $r = $t->get('/leads', token => $tok);
is(scalar @{ $r->{json}{items} }, 1, 'GET /leads (the primary) agrees');
is(reads('replica'), $before + 1, '... and is not a replica read');

# --- replay paused: the views lag, the rest does not ---------------------------------------

ok(pause_replay(), "the replica's replay is paused");
my $t0 = time;
$t->create_lead($tok, name => 'Second', email => 'second@example.com');
$r = $t->get('/leads', token => $tok);
is(scalar @{ $r->{json}{items} }, 2, 'a lead written now: GET /leads (the primary) has it');
$before = reads('replica');
my $seen = leads_total($tok);
my $elapsed = time - $t0;
SKIP: {
    # the replica is used only while its last probe found it within
    # max_lag (2 s) of its last replayed commit; a slow machine may be past
    skip sprintf('%.1f s went by before the read: the replica may be bypassed already', $elapsed), 2
        if $elapsed > 1.5;
    is($seen, 1, 'GET /performance/me at once: the replica, which has not replayed it, does not');
    is(reads('replica'), $before + 1, '... answered by the replica');
}

$before = reads('bypassed');
ok(CrmTest::wait_until(6, sub { leads_total($tok) eq '2' }, 0.1),
    'past max_lag the views bypass the lagging replica and see the lead');
cmp_ok(reads('bypassed'), '>', $before, '... counted as bypassed');
cmp_ok(lag() // 0, '>', 2, 'crm_db_replica_lag_seconds says how far behind');

# an account the replica has not replayed: the replica's answer is 401,
# the primary's is the one given
my ($new, $new_tok) = $t->member;
is(leads_total($new_tok), 0, "a new account's summary while the replica lags: 200 from the primary");

rsql('SELECT pg_wal_replay_resume()');
ok(caught_up(), 'replay resumed: the replica catches up');
$before = reads('replica');
ok(CrmTest::wait_until(5, sub { leads_total($tok) eq '2' && reads('replica') > $before }, 0.1),
    '... and the views read it again, the lead there');

# --- a replicated row the replica lacks: it falls back ---------------------------------

ok(pause_replay(), 'replay paused again');
$t0 = time;
my ($late, $late_tok) = $t->member;
$before = reads('fallback');
is(leads_total($late_tok), 0, 'an account registered while replay is paused: its summary, 200');
$elapsed = time - $t0;
SKIP: {
    skip sprintf('%.1f s went by: the replica may be bypassed already', $elapsed), 1 if $elapsed > 1.5;
    is(reads('fallback'), $before + 1, '... the replica did not know it: the primary answered (fallback)');
}
rsql('SELECT pg_wal_replay_resume()');
ok(caught_up(), 'replay resumed');

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
ok(CrmTest::wait_until(10, sub { leads_total($tok) eq '2' && reads('replica') > $before }, 0.2),
    '... and the views read it again');

# writes through the API never reached the replica's connections: a hot
# standby refuses them, so any would have failed above
is($t->psql("SELECT count(*) FROM crm.leads WHERE owner_id = '$acc->{id}' AND deleted_at IS NULL"), 2,
    "the primary holds the account's two leads");

$t->done;

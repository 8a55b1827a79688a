# crm_slow_thread_pool: registrations and logins (an argon2id hash each,
# tens of milliseconds of CPU) run on a pool of their own, so quick calls
# never queue behind them.  One worker with one thread per pool makes the
# difference plain: with a shared pool, a /auth/me waits behind every
# login queued before it.

use strict;
use warnings;

use Test::More;
use HTTP::Tiny;
use Time::HiRes qw(time sleep);

use CrmTest;

my $t = CrmTest->new(
    workers      => 1,
    pool_threads => 1,
    main_extra   => 'thread_pool crm_slow threads=1;',
    conf         => { crm_slow_thread_pool => 'crm_slow' },
)->start;

my ($acc, $token) = $t->member(password => 'slow pool password');
my $url = $t->base_url;

# logins from a few clients for $seconds, in the background
sub login_flood {
    my ($seconds) = @_;
    my @kids;
    for (1 .. 4) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $ua = HTTP::Tiny->new(timeout => 10);
            my $end = time + $seconds;
            my $bad = 0;
            while (time < $end) {
                my $r = $ua->post("$url/auth/login", {
                    headers => { 'Content-Type' => 'application/json' },
                    content => qq({"email": "$acc->{email}", "password": "slow pool password"}),
                });
                $bad++ if $r->{status} != 200;
            }
            exit($bad ? 1 : 0);
        }
        push @kids, $pid;
    }
    return @kids;
}

# the median latency of sequential GET /auth/me while logins flood
sub me_during_flood {
    my @kids = login_flood(3);
    sleep 0.5;

    my $ua = HTTP::Tiny->new(timeout => 10, keep_alive => 1);
    my (@ms, $bad);
    for (1 .. 40) {
        my $t0 = time;
        my $r = $ua->get("$url/auth/me",
            { headers => { Authorization => "Bearer $token" } });
        push @ms, (time - $t0) * 1000;
        $bad++ if $r->{status} != 200;
    }

    my $logins_ok = 1;
    for (@kids) {
        waitpid $_, 0;
        $logins_ok = 0 if $?;
    }

    @ms = sort { $a <=> $b } @ms;
    return ($ms[@ms / 2], $bad // 0, $logins_ok);
}

my ($split, $bad, $logins_ok) = me_during_flood();
is($bad, 0, 'with a slow pool: every /auth/me during a login flood answered 200');
ok($logins_ok, '... and every login did too');
cmp_ok($split, '<', 25, sprintf('... the median /auth/me took %.1f ms, not a login\'s wait', $split));

# the same with one shared pool: /auth/me queues behind the logins
$t->write_config(conf => { crm_slow_thread_pool => undef });
ok($t->reload, 'reload without a slow pool');
my ($shared) = me_during_flood();
cmp_ok($shared, '>', 2 * $split,
    sprintf('with one shared pool the median /auth/me took %.1f ms: the split is what keeps it quick', $shared));

$t->done;

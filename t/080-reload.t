#!/usr/bin/perl
# nginx -s reload under load: no request fails, old workers finish and exit.

use strict;
use warnings;

use POSIX ();
use Time::HiRes qw(time sleep);
use Test::More;
use CrmTest;

my $t = CrmTest->new->start;

my $PW = 'correct horse battery';
my ($acc, $token) = $t->member;
my $url = $t->base_url;

my $CLIENTS = 4;
my $SECONDS = 6;
my $RELOADS = 4;

# one forked client: loops until the deadline, then prints "status count"
# lines to its pipe.  GET clients use keep-alive (HTTP::Tiny retries an
# idempotent request once when a reused connection was closed by the server,
# as clients do); the login client opens a connection per request.
sub client {
    my ($kind, $deadline) = @_;
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid) {
        close $wr;
        return [$pid, $rd, $kind];
    }
    close $rd;
    $SIG{ALRM} = 'DEFAULT';
    alarm $SECONDS + 30;
    my %n;
    my @samples;
    my $ua = HTTP::Tiny->new(timeout => 10, keep_alive => $kind eq 'me' ? 1 : 0);
    while (time < $deadline) {
        my $r;
        if ($kind eq 'me') {
            my @req = ("$url/auth/me", { headers => { Authorization => "Bearer $token" } });
            $r = $ua->get(@req);
            # a kept-alive connection that the old worker closed as idle can
            # race with the next request (the kernel answers it with a
            # reset); like browsers, retry such a GET once on a new connection
            if ($r->{status} == 599 && $r->{content} =~ /reset by peer|Broken pipe/) {
                $n{retried}++;
                $r = HTTP::Tiny->new(timeout => 10, keep_alive => 0)->get(@req);
            }
        } else {
            $r = $ua->post("$url/auth/login", { headers => { 'Content-Type' => 'application/json' },
                content => json_encode({ email => $acc->{email}, password => $PW }) });
        }
        $n{ $r->{status} }++;
        if ($r->{status} != 200 && @samples < 5) {
            (my $c = substr($r->{content} // '', 0, 200)) =~ s/\s+/ /g;
            push @samples, "$r->{status} $c";
        }
    }
    print $wr "$_ $n{$_}\n" for sort keys %n;
    print $wr "sample $_\n" for @samples;
    close $wr;
    POSIX::_exit(0);
}

my $deadline = time + $SECONDS;
my @kids = ((map { client('me', $deadline) } 1 .. $CLIENTS), client('login', $deadline));

sleep 1;
my $reloaded = 0;
for (1 .. $RELOADS) {
    $reloaded++ if $t->reload;
    sleep 0.8;
}
is($reloaded, $RELOADS, "$RELOADS reloads under load, each started new workers");

my (%total, %by_kind, @samples);
for my $k (@kids) {
    my ($pid, $rd, $kind) = @$k;
    my $done = wait_until($SECONDS + 25, sub { waitpid($pid, POSIX::WNOHANG()) == $pid });
    unless ($done) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
        fail("client $pid ($kind) finished");
        next;
    }
    while (my $line = <$rd>) {
        chomp $line;
        if ($line =~ /^sample (.*)/) { push @samples, "$kind: $1"; next }
        my ($status, $count) = split / /, $line;
        if ($status eq 'retried') { note("$kind: $count GETs retried after a connection reset"); next }
        $total{$status} += $count;
        $by_kind{$kind}{$status} += $count;
    }
}

my $ok = $total{200} // 0;
my @other = grep { $_ != 200 } sort keys %total;
cmp_ok($by_kind{me}{200} // 0, '>', 100, "GET /auth/me requests answered 200 during the reloads (" . ($by_kind{me}{200} // 0) . ")");
cmp_ok($by_kind{login}{200} // 0, '>', 0, "logins answered 200 during the reloads (" . ($by_kind{login}{200} // 0) . ")");
is($total{599} // 0, 0, 'no transport failures (599)');
is_deeply(\@other, [], "every one of $ok requests answered 200")
    or diag(join "\n", (map { "$_: $total{$_}" } @other), @samples);

# the old workers finish and exit; exactly the configured workers remain
ok(wait_until(15, sub { $t->worker_pids == 2 }), 'the old workers exit; 2 workers remain')
    or diag('workers: ' . join ' ', $t->worker_pids);

is($t->get('/auth/me', token => $token)->{status}, 200, 'after the reloads: /auth/me 200');
is($t->get('/healthz')->{status}, 200, 'after the reloads: /healthz 200');
is($t->post_json('/auth/register', { email => $t->unique_email('after'), password => $PW })->{status}, 201,
    'after the reloads: register 201');

$t->done;

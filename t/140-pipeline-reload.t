#!/usr/bin/perl
# The pipeline across reloads: an edited pipeline is applied by
# "nginx -s reload" under load with no failed request and no answer that
# mixes the old and the new pipeline; an invalid edit is refused and the
# running workers keep the pipeline they have; a lead in a stage that left
# the pipeline stays readable and can be moved out of it.

use strict;
use warnings;

use POSIX ();
use Time::HiRes qw(time sleep);
use Test::More;
use CrmTest;

my $t = CrmTest->new;
my $pd = $t->copy_pipeline;
$t->write_config(conf => { crm_pipeline => qq{"$pd"} });
$t->start;

my $P0 = $t->load_pipeline($pd);
cmp_ok(scalar @$P0, '>=', 4, 'the pipeline has at least four stages');
my ($acc, $token) = $t->member;
my $url = $t->base_url;

my $E = $P0->[1];                       # the stage the edits change
my $EF = "$pd/$E->{stage}/substages.json";
my $ADDED = { status => 'reload_added', description => 'Added by the reload test', score => 42,
    notes => 'appears after the reload' };

# what a GET /pipeline/stages answer says, positions aside
sub signature {
    my ($stages) = @_;
    return json_encode([map { { stage => $_->{stage}, substages => $_->{substages} } } @$stages]);
}

# substages as GET /pipeline/stages shows them: each with an "outcome",
# null where the file has none
sub served_subs { [map { +{ outcome => undef, %$_ } } @{ $_[0] }] }

# a pipeline as the files say (load_pipeline), as GET /pipeline/stages
# shows it
sub served { [map { +{ %$_, substages => served_subs($_->{substages}) } } @{ $_[0] }] }

sub stages_now {
    my $r = $t->get('/pipeline/stages', token => $token);
    return $r->{status} == 200 && ref $r->{json} eq 'ARRAY' ? $r->{json} : [];
}

is(signature(stages_now()), signature(served($P0)), 'GET /pipeline/stages serves the copied pipeline');

# the edit, prepared before the load starts: a description and a score
# changed, a substage added
my @edited = map { { %$_ } } @{ $E->{substages} };
$edited[0]{description} .= ' (edited while serving)';
$edited[0]{score} = ($edited[0]{score} + 13) % 101;
push @edited, $ADDED;
my $P1 = [map { $_->{stage} eq $E->{stage} ? { %$_, substages => \@edited } : $_ } @$P0];
my ($OLD, $NEW) = (signature(served($P0)), signature(served($P1)));
# the file's text, fixed now: comparing the numbers later makes them strings
# to JSON::PP
my $EDITED = json_encode(\@edited);

# leads that the movers move between the first substages of the first two
# stages (both stay in the pipeline throughout)
my @moves = ([$P0->[0]{stage}, $P0->[0]{substages}[0]{status}], [$E->{stage}, $E->{substages}[0]{status}]);

my $SECONDS = 6;
my $STAGE_CLIENTS = 3;
my $MOVERS = 2;

# one forked client: loops until the deadline, then prints "status count"
# lines to its pipe.  The GET clients keep connections alive and, like
# browsers, retry a GET once on a new connection when a kept-alive one was
# reset as the old worker closed it (see t/080); the movers open a
# connection per request.
sub client {
    my ($kind, $deadline, $lead_id) = @_;
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid) {
        close $wr;
        return [$pid, $rd, $kind];
    }
    close $rd;
    $SIG{ALRM} = 'DEFAULT';
    alarm $SECONDS + 30;
    my (%n, @samples);
    my $ua = HTTP::Tiny->new(timeout => 10, keep_alive => $kind eq 'stages' ? 1 : 0);
    my $auth = { Authorization => "Bearer $token" };
    my $i = 0;
    while (time < $deadline) {
        my $r;
        if ($kind eq 'stages') {
            $r = $ua->get("$url/pipeline/stages", { headers => $auth });
            if ($r->{status} == 599 && $r->{content} =~ /reset by peer|Broken pipe/) {
                $n{retried}++;
                $r = HTTP::Tiny->new(timeout => 10, keep_alive => 0)->get("$url/pipeline/stages",
                    { headers => $auth });
            }
            if ($r->{status} == 200) {
                my $sig = eval { signature(json_decode($r->{content})) } // '';
                $n{ $sig eq $OLD ? 'old' : $sig eq $NEW ? 'new' : 'mixed' }++;
            }
        } else {
            my ($st, $sub) = @{ $moves[$i++ % 2] };
            $r = $ua->put("$url/leads/$lead_id/stage", { headers => { %$auth, 'Content-Type' => 'application/json' },
                content => json_encode({ stage => $st, substage => $sub }) });
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

my @leads = map { $t->create_lead($token, name => "Mover $_")->{id} } 1 .. $MOVERS;
my $deadline = time + $SECONDS;
my @kids = ((map { client('stages', $deadline) } 1 .. $STAGE_CLIENTS),
    (map { client('move', $deadline, $_) } @leads));

sleep 1.5;
$t->write_json($EF, $EDITED);
my $reloaded = $t->reload ? 1 : 0;
sleep 1;
$reloaded += $t->reload ? 1 : 0;
is($reloaded, 2, 'two reloads under load (the first with the edited pipeline), each started new workers');

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
        $by_kind{$kind}{$status} += $count;
        $total{$status} += $count if $status =~ /^\d+$/;
    }
}

cmp_ok($by_kind{stages}{200} // 0, '>', 50, 'GET /pipeline/stages answered 200 during the reloads ('
    . ($by_kind{stages}{200} // 0) . ')');
cmp_ok($by_kind{move}{200} // 0, '>', 10, 'PUT /leads/{id}/stage answered 200 during the reloads ('
    . ($by_kind{move}{200} // 0) . ')');
is($total{599} // 0, 0, 'no transport failures (599)');
my @other = grep { $_ != 200 } sort keys %total;
is_deeply(\@other, [], 'every one of ' . ($total{200} // 0) . ' requests answered 200')
    or diag(join "\n", (map { "$_: $total{$_}" } @other), @samples);
cmp_ok($by_kind{stages}{old} // 0, '>', 0, 'answers before the reload had the old pipeline ('
    . ($by_kind{stages}{old} // 0) . ')');
cmp_ok($by_kind{stages}{new} // 0, '>', 0, 'answers after it had the new one (' . ($by_kind{stages}{new} // 0) . ')');
is($by_kind{stages}{mixed} // 0, 0, 'no answer was anything else');
ok(wait_until(15, sub { $t->worker_pids == 2 }), 'the old workers exit; 2 workers remain')
    or diag('workers: ' . join ' ', $t->worker_pids);

# --- after the reload ------------------------------------------------------------------------

is(signature(stages_now()), $NEW, 'GET /pipeline/stages: the edited pipeline');
my $r = $t->get("/pipeline/stages/$E->{stage}", token => $token);
is_deeply($r->{json}{substages}, served_subs(\@edited), "GET /pipeline/stages/$E->{stage}: the edited substages");
$r = $t->put_json("/leads/$leads[0]/stage", { stage => $E->{stage}, substage => $ADDED->{status} }, token => $token);
is($r->{status}, 200, "a lead moves to the new substage $ADDED->{status}: 200") or diag($r->{content});
is("$r->{json}{substage} $r->{json}{score}", "$ADDED->{status} $ADDED->{score}", '... with its score');
$r = $t->put_json("/leads/$leads[1]/stage", { stage => $E->{stage}, substage => $edited[0]{status} }, token => $token);
is($r->{json}{score}, $edited[0]{score}, "a move to $E->{stage}/$edited[0]{status} takes the edited score");
my $l0 = $t->create_lead($token, name => 'After the reload', stage => $E->{stage}, substage => $ADDED->{status});
is($l0->{score}, $ADDED->{score}, 'a lead created in the new substage has its score');
my ($hist) = $t->page_all("/leads/$leads[0]/history", token => $token, limit => 200);
is_deeply([@{ $hist->[-1] // {} }{qw(to_stage to_substage score)}], [$E->{stage}, $ADDED->{status}, $ADDED->{score}],
    '... and the history records the move with that score');

# --- an invalid edit is refused; the workers keep the pipeline ------------------------------

my $broken = json_decode($EDITED);
$broken->[-1]{score} = 101;
$t->write_json($EF, $broken);

my $d = $t->dir;
my $out = "$d/nginx-t.out";
my $rc = CrmTest::_run_logged($out, $CrmTest::NGINX, '-t', '-p', "$d/", '-c', "$d/nginx.conf",
    '-e', "$d/nginx-t-error.log");
my $text = CrmTest::_slurp($out);
isnt($rc, 0, 'nginx -t refuses score 101');
like($text, qr/\Q$EF\E/, '... naming the file') or diag($text);
like($text, qr/score/, '... and the field');
unlink $out;
$rc = CrmTest::_run_logged($out, $CrmTest::NGINX, '-s', 'reload', '-p', "$d/", '-c', "$d/nginx.conf",
    '-e', "$d/nginx-t-error.log");
isnt($rc, 0, 'nginx -s reload refuses it too (it reads the configuration before signalling)');

# a reload signal that reaches the master anyway: it logs why and keeps
# its workers
$t->allow_log(qr/\[emerg\].*\Q$EF\E/);
my %workers = map { $_ => 1 } $t->worker_pids;
my $log_at = -s "$d/error.log";
kill 'HUP', $t->{nginx_pid};
my $logged = wait_until(10, sub {
    my $log = CrmTest::_slurp("$d/error.log");
    return substr($log, $log_at) =~ /\[emerg\][^\n]*\Q$EF\E[^\n]*/ ? $& : '';
});
ok($logged, 'SIGHUP with the invalid pipeline: error.log names the file') or diag(CrmTest::_tail("$d/error.log", 10));
like($logged || '', qr/score/, '... and the field');
sleep 0.5;
is_deeply({ map { $_ => 1 } $t->worker_pids }, \%workers, '... and the same workers keep running');
is(signature(stages_now()), $NEW, 'GET /pipeline/stages: still the last valid pipeline');
$r = $t->put_json("/leads/$leads[1]/stage", { stage => $E->{stage}, substage => $ADDED->{status} }, token => $token);
is("$r->{status} " . ($r->{json}{score} // ''), "200 $ADDED->{score}", 'moves still use it');
is($t->get('/healthz')->{status}, 200, '/healthz 200');

# --- a stage leaves the pipeline -------------------------------------------------------------

$t->write_json($EF, $EDITED);
my $R = $P0->[3];
my $RSUB = $R->{substages}[-1];
my $kept = $t->create_lead($token, name => 'Kept in a removed stage', company => 'Removed Co');
$r = $t->put_json("/leads/$kept->{id}/stage", { stage => $R->{stage}, substage => $RSUB->{status} }, token => $token);
is($r->{status}, 200, "a lead moved to $R->{stage}/$RSUB->{status}") or diag($r->{content});
my $born = $t->create_lead($token, name => 'Born in a removed stage', stage => $R->{stage});
my $kept_before = $t->get("/leads/$kept->{id}", token => $token);

my $stages = $t->read_json("$pd/stages.json");
$t->write_json("$pd/stages.json", [grep { $_ ne $R->{stage} } @$stages]);
ok($t->reload, "reload without the stage $R->{stage}");
ok(!grep({ $_->{stage} eq $R->{stage} } @{ stages_now() }), "GET /pipeline/stages no longer lists $R->{stage}");
is_problem($t->get("/pipeline/stages/$R->{stage}", token => $token), 404, "GET /pipeline/stages/$R->{stage}: 404");

$r = $t->get("/leads/$kept->{id}", token => $token);
is($r->{status}, 200, 'the lead in the removed stage is still readable: 200') or diag($r->{content});
is_lead($r, '... a lead');
ok(JSON::PP::is_bool($r->{json}{stage_in_pipeline}) && !$r->{json}{stage_in_pipeline}, '... stage_in_pipeline false');
my %want = (%{ $kept_before->{json} }, stage_in_pipeline => JSON::PP::false);
is_deeply($r->{json}, \%want, '... its stored stage, substage, score and version unchanged');
is($r->{headers}{etag}, $kept_before->{headers}{etag}, '... same ETag');
$r = $t->get("/leads/$kept->{id}/history", token => $token);
is($r->{status}, 200, '... its history is readable');

my ($listed) = $t->page_all("/leads/?stage=$R->{stage}", token => $token);
is_deeply([sort map { $_->{id} } @$listed], [sort $kept->{id}, $born->{id}],
    "GET /leads/?stage=$R->{stage}: both leads in the removed stage");
ok(!grep({ $_->{stage_in_pipeline} } @$listed), '... each with stage_in_pipeline false');

is_problem($t->put_json("/leads/$kept->{id}/stage", { stage => $R->{stage}, substage => $RSUB->{status} },
    token => $token), 422, "a move to the removed stage: 422", field => 'stage');
is_problem($t->post_json('/leads/', { name => 'Into the removed stage', stage => $R->{stage} }, token => $token),
    422, 'a new lead in the removed stage: 422', field => 'stage');
$r = $t->put_json("/leads/$kept->{id}", { notes => 'still editable' }, token => $token);
is($r->{status}, 200, 'the lead in the removed stage can be updated: 200') or diag($r->{content});
is("$r->{json}{stage}/$r->{json}{substage}", "$R->{stage}/$RSUB->{status}", '... its stage kept');

my $F = $P0->[0];
$r = $t->put_json("/leads/$kept->{id}/stage", { stage => $F->{stage}, substage => $F->{substages}[0]{status} },
    token => $token);
is($r->{status}, 200, "it moves to $F->{stage}: 200") or diag($r->{content});
ok(JSON::PP::is_bool($r->{json}{stage_in_pipeline}) && $r->{json}{stage_in_pipeline}, '... stage_in_pipeline true');
is($r->{json}{score}, $F->{substages}[0]{score}, '... with its score');
($hist) = $t->page_all("/leads/$kept->{id}/history", token => $token, limit => 200);
is_deeply([@{ $hist->[-1] // {} }{qw(from_stage from_substage to_stage)}], [$R->{stage}, $RSUB->{status}, $F->{stage}],
    '... recorded from the removed stage');

# and back: the stage returns, the other lead is in the pipeline again
$t->write_json("$pd/stages.json", $stages);
ok($t->reload, "reload with $R->{stage} again");
$r = $t->get("/leads/$born->{id}", token => $token);
ok($r->{json}{stage_in_pipeline}, "the lead in $R->{stage} has stage_in_pipeline true again");

$t->done;

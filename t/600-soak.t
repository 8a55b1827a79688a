#!/usr/bin/perl
# The soak (bench/soak.pl) in its short form, as CI runs it: three minutes
# of the mixed load (redirects, API reads and writes, callbacks, the CRM
# sync to the Klaviyo stand-in) with a reload at 1:00 and 2:00 and a
# PostgreSQL restart at 1:30.  Sampled every 5 s (not 10: enough points
# between the events); the warm-up (30 s) and the settling after each
# event (20 s) scale with the run.  The file passes when the soak does: no
# sampled series trending upward, no click or sync job lost, one effect
# per repeated callback, no alert or crash; and it left its samples and
# their plot.

use strict;
use warnings;

use Test::More;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(remove_tree);
use File::Temp qw(tempdir);

my $ROOT = $ENV{CRM_ROOT} // abs_path(dirname(abs_path(__FILE__)) . '/..');
my $MINUTES = 3;
my $SAMPLE = 5;
my $out = tempdir('crm-soak-t-XXXXXX', TMPDIR => 1, CLEANUP => 0);

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    return scalar(<$fh>) // '';
}

# the soak, its output into soak.log; its exit status
sub soak {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $ENV{SOAK_SAMPLE_SECONDS} = $SAMPLE;
        $ENV{CRM_TEST_TIMEOUT} = $MINUTES * 60 + 900;
        delete @ENV{qw(SOAK_WARMUP_SECONDS SOAK_SETTLE_SECONDS)};
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$out/soak.log" or die "$out/soak.log: $!";
        open STDERR, '>&', \*STDOUT;
        exec $^X, "$ROOT/bench/soak.pl", '--minutes', $MINUTES, '--out', $out
            or die "exec: $!";
    }
    waitpid $pid, 0;
    return $? >> 8;
}

my $rc = soak();
my $log = slurp("$out/soak.log");
is($rc, 0, "the $MINUTES-minute soak passes") or do {
    # the summary and the reasons, not the sampler's lines
    my ($summary) = $log =~ /(\n\d+ min at .*)\z/s;
    diag($summary // $log);
};
like($log, qr/^verdict: PASS$/m, '... and says so');
note($1) if $log =~ /(\n\d+ min at .*)\z/s;

my @rows = grep { !/^#/ } split /\n/, slurp("$out/soak.tsv");
my $header = shift @rows // '';
like($header, qr/^t\tworkers\t.*\tzone_used_\w+/, 'soak.tsv: a header row with the zones');
cmp_ok(scalar(@rows), '>=', $MINUTES * 60 / $SAMPLE - 2, "... a sample every $SAMPLE s ("
    . scalar(@rows) . ')');
my @events = slurp("$out/soak.tsv") =~ /^# event\t[\d.]+\t[\d.]+\t(.*)$/mg;
is_deeply(\@events, ['reload 1', 'PostgreSQL restart', 'reload 2'], '... and the events, in order');
ok(-s "$out/soak.png" && substr(slurp("$out/soak.png"), 0, 8) eq "\x89PNG\r\n\x1a\n",
    'soak.png: the plot');

if (Test::More->builder->is_passing) {
    remove_tree($out);
} else {
    diag("kept $out");
}

done_testing;

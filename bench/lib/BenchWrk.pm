package BenchWrk;
# What the Perl benchmarks (bench/ops.pl, bench/links.pl) share: one wrk
# run read into figures, medians, and their section of bench/RESULTS.md.

use strict;
use warnings;

use Exporter 'import';
our @EXPORT_OK = qw(wrk median write_section);

# wrk with @args: (req/s, p99 ms, non-2xx answers and socket errors,
# requests answered); dies when wrk printed no rate
sub wrk {
    my (@args) = @_;
    my $out = qx{wrk @{[ map { "'$_'" } @args ]} 2>&1};
    my ($rps) = $out =~ /^Requests\/sec:\s+([\d.]+)/m;
    my ($p99, $unit) = $out =~ /^\s+99%\s+([\d.]+)(us|ms|s)\b/m;
    my ($total) = $out =~ /^\s+(\d+) requests in/m;
    my $errors = 0;
    $errors += $1 while $out =~ /Non-2xx or 3xx responses:\s+(\d+)/g;
    $errors += $1 + $2 + $3 + $4
        while $out =~ /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/g;
    die "wrk failed:\n$out" unless defined $rps;
    return ($rps, defined $p99 ? $p99 * { us => 0.001, ms => 1, s => 1000 }->{$unit} : 0,
        $errors, $total // 0);
}

sub median {
    my @v = sort { $a <=> $b } @_;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

# replaces the section of $file whose heading starts with $heading (a
# "## " line) by $section, or adds it at the end; prints it too
sub write_section {
    my ($file, $heading, $section) = @_;
    open my $in, '<', $file or die "$file: $!";
    my $text = do { local $/; <$in> };
    close $in;
    $text =~ s/^\Q$heading\E.*?(?=^## |\z)//ms;
    $text =~ s/\n*\z/\n\n/;
    open my $out, '>', $file or die "$file: $!";
    print $out $text, $section;
    close $out;
    print $section;
}

1;

package SoakPlot;
# The soak's picture (bench/soak.pl): panels of series over time, one
# above the other, from a TSV with a header row, drawn by gnuplot
# (gnuplot-nox, pngcairo).  Events are marked in every panel: a dashed
# line at an instant, a shaded band over a span.
#
#   plot_panels(tsv => $file, png => $png, title => '...',
#       x => 'column("t") / 60', xlabel => 'minutes',
#       bands => [[$from, $to, '#fde0dd', 'PostgreSQL down'], ...],
#       marks => [[$at, 'reload 1'], ...],
#       panels => [{ title => 'worker RSS (MiB)',
#                    series => [['column("rss_workers_kib") / 1024', 'workers'], ...] }, ...]);

use strict;
use warnings;

use Exporter 'import';
our @EXPORT_OK = qw(plot_panels);

# a string as a gnuplot double-quoted literal
sub _quote {
    my ($s) = @_;
    $s =~ s/(["\\])/\\$1/g;
    return qq{"$s"};
}

# writes the gnuplot script next to the PNG and runs it, and removes it
# when the plot is made; dies when gnuplot is missing or fails (the
# script kept, to see why)
sub plot_panels {
    my (%o) = @_;
    my @panels = @{ $o{panels} };
    my $script = "$o{png}.gp";
    my $tsv = _quote($o{tsv});
    my $gp = join "\n",
        sprintf('set terminal pngcairo size 1200,%d font "sans,10"', 260 * @panels + 80),
        'set output ' . _quote($o{png}),
        'set datafile separator "\t"',
        'set datafile missing "NA"',
        'set datafile columnheaders',
        'set grid',
        'set key outside right top box',
        'set xlabel ' . _quote($o{xlabel} // ''),
        'set xrange [0:*]',
        'set yrange [0:*]',
        'set offsets 0, 0, graph 0.1, 0',
        # the same margins in every panel, the keys right of them, so that
        # the panels' time axes line up
        'set lmargin at screen 0.07',
        'set rmargin at screen 0.74',
        'set multiplot layout ' . scalar(@panels) . ',1 title ' . _quote($o{title} // ''),
        '';
    my $n = 0;
    for my $b (@{ $o{bands} || [] }) {
        my ($from, $to, $color) = @$b;
        $n++;
        $gp .= sprintf "set object %d rect from first %s, graph 0 to first %s, graph 1"
            . " fc rgb %s fs solid 1.0 noborder behind\n", $n, $from, $to, _quote($color);
    }
    $n = 0;
    for my $m (@{ $o{marks} || [] }) {
        $n++;
        $gp .= sprintf "set arrow %d from first %s, graph 0 to first %s, graph 1 nohead"
            . " lc rgb \"#555555\" dt 2\n", $n, $m->[0], $m->[0];
    }
    for my $i (0 .. $#panels) {
        my $p = $panels[$i];
        # the events are named in the top panel only
        if ($i == 0) {
            $n = 0;
            for my $m (@{ $o{marks} || [] }, @{ $o{bands} || [] }) {
                my ($label, $y) = @$m == 2 ? ($m->[1], 0.93) : ($m->[3], 0.8);
                next unless defined $label;
                $gp .= sprintf "set label %d %s at first %s, graph %s offset 0.5,0 front\n",
                    ++$n, _quote($label), $m->[0], $y;
            }
        } else {
            $gp .= "unset label\n";
        }
        $gp .= 'set title ' . _quote($p->{title}) . "\n";
        $gp .= 'plot ' . join(", \\\n     ", map {
            sprintf '%s using (%s):(%s) with linespoints pt 7 ps 0.4 title %s',
                $tsv, $o{x}, $_->[0], _quote($_->[1]);
        } @{ $p->{series} }) . "\n";
    }
    $gp .= "unset multiplot\n";

    open my $fh, '>', $script or die "$script: $!";
    print $fh $gp;
    close $fh or die "$script: $!";
    my $out = qx{gnuplot '$script' 2>&1};
    die "gnuplot is missing: install gnuplot-nox (./build.sh soak does)\n" if $? == -1 || $? >> 8 == 127;
    die "gnuplot failed on $script:\n$out" if $?;
    unlink $script;
    return $o{png};
}

1;

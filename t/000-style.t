# The mechanical part of the house style (../shared/STYLE.md, nginx's own
# rules): checked on every C file we own, so that review is about content.
# clang-format cannot produce nginx's style (aligned declarations, braces
# after multi-line conditions), so these rules are checked, not rewritten.

use strict;
use warnings;
use Test::More;

my $root = $ENV{CRM_ROOT} // '.';
chdir $root or die "chdir $root: $!";

my @files = grep { m{^(ngx_crm_module/src|t/unit|t/fuzz)/.*\.[ch]$} }
    split /\n/, `git ls-files --cached --others --exclude-standard`;

ok(@files > 20, scalar(@files) . ' C files to check');

for my $file (@files) {
    open my $fh, '<:encoding(UTF-8)', $file or die "$file: $!";
    my @lines = <$fh>;
    close $fh;

    my @bad;
    my $text = join '', @lines;

    push @bad, 'does not end with a newline' if $text ne '' && $text !~ /\n\z/;
    push @bad, 'has nginx headers outside src/ngx'
        if $file !~ m{/src/ngx/} && $text =~ /#include\s+[<"](ngx_|nginx)/;

    my $in_comment = 0;
    for my $n (0 .. $#lines) {
        my $l = $lines[$n];
        my $at = "line " . ($n + 1);
        chomp $l;

        push @bad, "$at: carriage return" if $l =~ /\r/;
        push @bad, "$at: tab" if $l =~ /\t/;
        push @bad, "$at: trailing white space" if $l =~ /[ \t]+$/;
        push @bad, "$at: longer than 80 columns" if length($l) > 80;

        # C comments only: a // outside strings and block comments
        my $code = $l;
        $code =~ s{"(?:[^"\\]|\\.)*"}{""}g;
        $code =~ s{'(?:[^'\\]|\\.)*'}{''}g;
        if ($in_comment) {
            $in_comment = 0 if $code =~ s{^.*?\*/}{};
        }
        if (!$in_comment) {
            $code =~ s{/\*.*?\*/}{}g;
            $in_comment = 1 if $code =~ s{/\*.*$}{};
            push @bad, "$at: // comment" if $code =~ m{//};
        }

        # function definitions: return type, then name, then "{" alone
        if ($l eq '{') {
            my $s = $n - 1;
            $s-- while $s > 0 && $lines[$s] =~ /^\s/;
            push @bad, "$at: the definition's name is not at the start of "
                . "its own line (return type on the line above)"
                unless $lines[$s] =~ /^\*?\w+\(/;
        }
        push @bad, "$at: a function's brace belongs on its own line"
            if $l =~ /^\w[\w\s\*]*\w\s*\*?\w+\(.*\)\s*\{$/;
    }

    is_deeply(\@bad, [], $file) or diag(join "\n", @bad);
}

done_testing();

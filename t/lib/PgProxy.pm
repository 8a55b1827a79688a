package PgProxy;

# A fault-injecting TCP proxy for the PostgreSQL protocol (v3), to make
# the server say what it would not say on its own.
#
#   my $proxy = PgProxy->start(upstream_port => $t->pg_port, dir => $t->dir);
#   $t->write_config(conf => { crm_database => '"' . $proxy->dsn . '"' });
#   $proxy->fault_on;         # every COMMIT is now answered "ROLLBACK"
#   ...
#   $proxy->fault_off;
#   $proxy->rewrites;         # how many answers were rewritten so far
#   $proxy->stop;             # or let the end of the test file do it
#
# A forked child listens on a loopback port of its own (bound to port 0, so
# no race for a free one) and relays every connection to 127.0.0.1:
# upstream_port, in one select loop for all of them.  Client to server,
# bytes pass unchanged.  Server to client, the stream is cut into messages
# (a type byte, then an int32 length that counts itself and the body) and
# passed on whole; while the flag file exists (the test switches the fault
# with a file, no signals), a CommandComplete ('C') whose tag is "COMMIT"
# becomes "ROLLBACK", its length fixed: what PostgreSQL answers to COMMIT
# when the transaction had failed.  The server did commit: the proxy only
# changes what the client is told.
#
# A session may begin with an SSLRequest or GSSENCRequest, answered by one
# unframed byte; the proxy notes such a request on the client side and
# passes that byte on as it is.  An accepted one ('S' or 'G': encryption
# follows) turns the session into a plain relay; point the client at the
# proxy with sslmode=disable gssencmode=disable (dsn() does) so that every
# session can be rewritten.
#
# The child writes one line per accepted connection ("accept") and per
# rewritten message ("rewrite COMMIT -> ROLLBACK") to its log file.  It
# exits when stopped, or by itself within half a second of its parent's
# exit; it never runs the parent's END blocks.

use strict;
use warnings;

use Carp qw(croak);
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use IO::Handle;
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep);

my @LIVE;                       # proxies to stop when the test file ends

my $SSL_REQUEST = 80877103;
my $GSSENC_REQUEST = 80877104;
my $MAX_BUFFER = 4 * 1024 * 1024;   # per direction: stop reading beyond it

# Options: upstream_port (required), upstream_host (127.0.0.1), dir (for
# the flag and log files; default a new temporary folder), flag, log.
sub start {
    my ($class, %o) = @_;
    croak 'PgProxy->start: upstream_port required' unless $o{upstream_port};
    my $dir = $o{dir} // do {
        require File::Temp;
        File::Temp::tempdir('pgproxy-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    };
    my $self = bless {
        upstream_host => $o{upstream_host} // '127.0.0.1',
        upstream_port => $o{upstream_port},
        flag          => $o{flag} // "$dir/pgproxy.fault",
        log           => $o{log} // "$dir/pgproxy.log",
        owner_pid     => $$,
    }, $class;

    unlink $self->{flag};
    open my $lf, '>', $self->{log} or croak "$self->{log}: $!";
    close $lf;

    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => 0, Proto => 'tcp', Listen => 128, ReuseAddr => 1)
        or croak "PgProxy: listen: $!";
    $self->{port} = $listen->sockport;

    my $pid = fork // croak "PgProxy: fork: $!";
    if ($pid == 0) {
        # the test's output is not ours to hold open (prove waits for it)
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $self->{log};
        open STDERR, '>&', \*STDOUT;
        $SIG{$_} = 'DEFAULT' for qw(ALRM INT TERM HUP);
        $SIG{PIPE} = 'IGNORE';
        alarm 0;
        my $ok = eval { $self->_serve($listen); 1 };
        print STDERR "PgProxy: $@" unless $ok;
        POSIX::_exit($ok ? 0 : 1);
    }
    close $listen;
    $self->{pid} = $pid;
    push @LIVE, $self;
    return $self;
}

sub port { $_[0]{port} }
sub pid { $_[0]{pid} }

# a libpq conninfo through the proxy
sub dsn {
    my ($self, %o) = @_;
    return "host=127.0.0.1 port=$self->{port} dbname=" . ($o{dbname} // 'crm')
        . ' user=' . ($o{user} // 'crm') . ' sslmode=disable gssencmode=disable';
}

sub fault_on {
    my ($self) = @_;
    open my $fh, '>', $self->{flag} or croak "$self->{flag}: $!";
    close $fh;
    return $self;
}

sub fault_off {
    my ($self) = @_;
    unlink $self->{flag};
    croak "$self->{flag} is still there" if -e $self->{flag};
    return $self;
}

sub _log_lines {
    my ($self, $re) = @_;
    open my $fh, '<', $self->{log} or return 0;
    my $n = grep { $_ =~ $re } <$fh>;
    return $n;
}

# messages rewritten, and connections accepted, since the start
sub rewrites { $_[0]->_log_lines(qr/^rewrite /) }
sub connections { $_[0]->_log_lines(qr/^accept\b/) }

sub running {
    my ($self) = @_;
    return 0 unless $self->{pid};
    return waitpid($self->{pid}, POSIX::WNOHANG()) == 0;
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid} && $$ == $self->{owner_pid};
    my $pid = delete $self->{pid};
    kill 'TERM', $pid;
    for (1 .. 50) {
        return 1 if waitpid($pid, POSIX::WNOHANG()) != 0;
        sleep 0.1;
    }
    kill 'KILL', $pid;
    waitpid $pid, 0;
    return 0;
}

sub DESTROY { $_[0]->stop }

END {
    my $rc = $?;
    $_->stop for @LIVE;
    $? = $rc;
}


# ---------------------------------------------------------------------------
# the child

sub _note {
    my ($self, $line) = @_;
    open my $fh, '>>', $self->{log} or return;
    print $fh "$line\n";
    close $fh;
}

sub _serve {
    my ($self, $listen) = @_;
    my $parent = getppid;
    my %side;       # fileno => [session, 'client' | 'server']
    $listen->blocking(0);

    while (1) {
        return if getppid != $parent;

        my $rsel = IO::Select->new($listen);
        my $wsel = IO::Select->new;
        for my $fd (keys %side) {
            my ($s, $role) = @{ $side{$fd} };
            my $peer_out = $role eq 'client' ? 'to_server' : 'to_client';
            my $my_out = $role eq 'client' ? 'to_client' : 'to_server';
            $rsel->add($s->{$role}) if !$s->{eof} && length $s->{$peer_out} < $MAX_BUFFER;
            $wsel->add($s->{$role}) if length $s->{$my_out};
        }

        my ($r, $w) = IO::Select->select($rsel, $wsel, undef, 0.5);
        next unless $r || $w;

        for my $fh (@{ $w || [] }) {
            my $e = $side{ fileno $fh } or next;
            my ($s, $role) = @$e;
            my $out = $role eq 'client' ? 'to_client' : 'to_server';
            my $n = syswrite $fh, $s->{$out};
            if (defined $n) {
                substr($s->{$out}, 0, $n, '');
            } elsif ($! != EAGAIN && $! != EWOULDBLOCK && $! != EINTR) {
                $s->{eof} = 1;
                $s->{to_client} = $s->{to_server} = '';
            }
        }

        for my $fh (@{ $r || [] }) {
            if ($fh == $listen) {
                $self->_accept($listen, \%side);
                next;
            }
            my $e = $side{ fileno $fh } or next;
            my ($s, $role) = @$e;
            my $n = sysread $fh, my $buf, 65536;
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                $n = 0;
            }
            if ($n == 0) {
                # one side is gone: pass on what is pending, then close both
                $s->{eof} = 1;
                next;
            }
            if ($role eq 'client') {
                $self->_from_client($s, $buf);
            } else {
                $self->_from_server($s, $buf);
            }
        }

        # sessions that ended and have nothing left to send
        for my $fd (keys %side) {
            my $e = $side{$fd} or next;
            my $s = $e->[0];
            next unless $s->{eof} && !length($s->{to_client}) && !length($s->{to_server});
            delete @side{ fileno($s->{client}), fileno($s->{server}) };
            close $s->{client};
            close $s->{server};
        }
    }
}

sub _accept {
    my ($self, $listen, $side) = @_;
    my $client = $listen->accept or return;
    my $server = IO::Socket::INET->new(PeerAddr => $self->{upstream_host},
        PeerPort => $self->{upstream_port}, Proto => 'tcp', Timeout => 5);
    unless ($server) {
        $self->_note("accept refused: upstream $!");
        close $client;
        return;
    }
    $_->blocking(0) for $client, $server;
    my $s = { client => $client, server => $server, to_client => '',
        to_server => '', sbuf => '', cpre => '', sniff => 1, singles => 0,
        raw => 0, eof => 0 };
    $side->{ fileno $client } = [$s, 'client'];
    $side->{ fileno $server } = [$s, 'server'];
    $self->_note('accept');
}

# Bytes from the client go on unchanged.  Until the startup packet has been
# seen, each 8-byte SSLRequest or GSSENCRequest announces one unframed
# answer byte from the server.
sub _from_client {
    my ($self, $s, $buf) = @_;
    $s->{to_server} .= $buf;
    return unless $s->{sniff};
    $s->{cpre} .= $buf;
    while ($s->{sniff} && length $s->{cpre} >= 8) {
        my ($len, $code) = unpack 'NN', $s->{cpre};
        if ($len == 8 && ($code == $SSL_REQUEST || $code == $GSSENC_REQUEST)) {
            $s->{singles}++;
            substr($s->{cpre}, 0, 8, '');
        } else {
            $s->{sniff} = 0;
            $s->{cpre} = '';
        }
    }
}

# Bytes from the server: whole messages, with COMMIT rewritten while the
# flag file exists.
sub _from_server {
    my ($self, $s, $buf) = @_;
    if ($s->{raw}) {
        $s->{to_client} .= $buf;
        return;
    }
    $s->{sbuf} .= $buf;
    while (length $s->{sbuf}) {
        if ($s->{singles}) {
            my $b = substr($s->{sbuf}, 0, 1, '');
            $s->{singles}--;
            $s->{to_client} .= $b;
            if ($b eq 'S' || $b eq 'G') {       # encrypted from here on
                $s->{raw} = 1;
                $s->{to_client} .= $s->{sbuf};
                $s->{sbuf} = '';
            }
            next;
        }
        last if length $s->{sbuf} < 5;
        my ($type, $len) = unpack 'a1 N', $s->{sbuf};
        if ($len < 4) {                          # not protocol v3: relay only
            $s->{raw} = 1;
            $s->{to_client} .= $s->{sbuf};
            $s->{sbuf} = '';
            last;
        }
        last if length $s->{sbuf} < 1 + $len;
        my $msg = substr($s->{sbuf}, 0, 1 + $len, '');
        if ($type eq 'C' && substr($msg, 5) eq "COMMIT\0" && -e $self->{flag}) {
            my $tag = "ROLLBACK\0";
            $msg = 'C' . pack('N', 4 + length $tag) . $tag;
            $self->_note('rewrite COMMIT -> ROLLBACK');
        }
        $s->{to_client} .= $msg;
    }
}

1;

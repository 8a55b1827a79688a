package MockCrm;

# A strict stand-in for the CRM providers' APIs, on a loopback port: it
# answers only what the real API documents (../shared/reference/
# providers.md) and refuses, as the real one would, a request with a
# wrong header, credential, content type or body shape.  One process,
# one select() loop: keep-alive connections, answers delayed without
# blocking others (for slow-provider and throughput tests).
#
#   my $m = MockCrm->new(dir => $t->dir, klaviyo_key => 'pk_...');
#   $m->url                       # http://127.0.0.1:<port>
#   $m->mode('slow', delay_ms => 3000);   # or ok, 401, 429, 500, huge,
#                                         # redirect, garbage
#   $m->requests                  # [{method, path, headers, body}] seen
#   $m->stop
#
# Control requests (/__mock/...) change the mode; everything else is a
# provider call, recorded to a file the test reads.

use strict;
use warnings;

use Carp qw(croak);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG _exit);
use Time::HiRes qw(time sleep);

my $JSON = JSON::PP->new->utf8->canonical;

sub new {
    my ($class, %o) = @_;
    my $self = bless {
        dir => $o{dir} // croak('dir'),
        klaviyo_key => $o{klaviyo_key} // 'pk_test_0123456789abcdef0123456789abcdef',
        sf_user => $o{sf_user} // 'owner@mock-org.example',
        sf_password => $o{sf_password} // 'S3cret&<pass>',
        sf_token => $o{sf_token} // 'TOKEN123',
        creatio_user => $o{creatio_user} // 'Supervisor',
        creatio_password => $o{creatio_password} // 'Creatio "pass" \\ 1',
        delay_ms => $o{delay_ms} // 0,
        record => $o{record} // 1,
    }, $class;
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
        Listen => 1024, ReuseAddr => 1, Blocking => 0) or croak "listen: $!";
    $self->{port} = $listen->sockport;
    $self->{log} = "$self->{dir}/mock-$self->{port}.log";
    open my $fh, '>', $self->{log} or croak "$self->{log}: $!";
    close $fh;
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        $self->_serve($listen);
        _exit(0);
    }
    close $listen;
    $self->{pid} = $pid;
    $self->{owner} = $$;
    return $self;
}

sub url { "http://127.0.0.1:$_[0]{port}" }
sub port { $_[0]{port} }
sub klaviyo_key { $_[0]{klaviyo_key} }
sub sf_user { $_[0]{sf_user} }
sub sf_password { $_[0]{sf_password} }
sub sf_token { $_[0]{sf_token} }
sub creatio_user { $_[0]{creatio_user} }
sub creatio_password { $_[0]{creatio_password} }

# sets how provider calls are answered from now on
sub mode {
    my ($self, $mode, %o) = @_;
    my $q = join '&', "mode=$mode", map { "$_=$o{$_}" } sort keys %o;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
        Timeout => 5) or croak "mock control: $!";
    print $sock "POST /__mock/mode?$q HTTP/1.1\r\nHost: mock\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    local $/;
    my $r = <$sock>;
    croak "mock control: " . ($r // 'no answer') unless ($r // '') =~ m{^HTTP/1\.1 204};
    return $self;
}

# serves $doc at /jwks with Cache-Control max-age=$max_age (5)
sub jwks {
    my ($self, $doc, $max_age) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
        Timeout => 5) or croak "mock control: $!";
    my $q = 'max_age=' . ($max_age // 5);
    print $sock "POST /__mock/jwks?$q HTTP/1.1\r\nHost: mock\r\nContent-Length: " . length($doc)
        . "\r\nConnection: close\r\n\r\n$doc";
    local $/;
    my $r = <$sock>;
    croak "mock control: " . ($r // 'no answer') unless ($r // '') =~ m{^HTTP/1\.1 204};
    return $self;
}

# the provider calls seen so far, oldest first
sub requests {
    my ($self) = @_;
    open my $fh, '<', $self->{log} or return [];
    my @r = map { $JSON->decode($_) } grep { /\S/ } <$fh>;
    return \@r;
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid} && $$ == $self->{owner};
    kill 'TERM', $self->{pid};
    waitpid $self->{pid}, 0;
    delete $self->{pid};
}

sub DESTROY { $_[0]->stop }


# --- the server ---------------------------------------------------------------------

sub _serve {
    my ($self, $listen) = @_;
    $SIG{TERM} = sub { _exit(0) };
    my $sel = IO::Select->new($listen);
    my (%in, %out, @due);
    $self->{mode} = 'ok';
    $self->{opt} = {};
    open my $log, '>>', $self->{log} or _exit(1);
    $log->autoflush(1);
    $self->{logfh} = $log;

    while (1) {
        my $now = time;
        my $wait = @due ? $due[0][0] - $now : 1;
        $wait = 0 if $wait < 0;
        my @write = grep { defined $out{$_} && length $out{$_}{buf} } keys %out;
        my $wsel = IO::Select->new(map { $out{$_}{sock} } @write);
        my ($r, $w) = IO::Select->select($sel, $wsel, undef, $wait);

        for my $s (@{ $r || [] }) {
            if ($s == $listen) {
                while (my $c = $listen->accept) {
                    $c->blocking(0);
                    $sel->add($c);
                    $in{fileno $c} = { sock => $c, buf => '' };
                    $out{fileno $c} = { sock => $c, buf => '' };
                }
                next;
            }
            my $fd = fileno $s;
            my $n = sysread($s, my $chunk, 65536);
            if (!$n) {
                $sel->remove($s);
                delete $in{$fd};
                delete $out{$fd};
                close $s;
                next;
            }
            $in{$fd}{buf} .= $chunk;
            while (my $req = _take_request(\$in{$fd}{buf})) {
                my ($delay, $resp) = $self->_answer($req);
                push @due, [time + $delay / 1000, $fd, $resp, $req->{close}];
                @due = sort { $a->[0] <=> $b->[0] } @due;
            }
        }

        $now = time;
        while (@due && $due[0][0] <= $now) {
            my ($t, $fd, $resp, $close) = @{ shift @due };
            next unless $out{$fd};
            $out{$fd}{buf} .= $resp;
            $out{$fd}{close} = 1 if $close;
        }

        for my $fd (keys %out) {
            my $o = $out{$fd} or next;
            next unless length $o->{buf};
            my $n = syswrite($o->{sock}, $o->{buf});
            substr($o->{buf}, 0, $n, '') if $n;
            if (!length $o->{buf} && $o->{close}) {
                $sel->remove($o->{sock});
                close $o->{sock};
                delete $in{$fd};
                delete $out{$fd};
            }
        }
    }
}

# one complete request off the front of the buffer, or undef
sub _take_request {
    my ($buf) = @_;
    my $end = index($$buf, "\r\n\r\n");
    return undef if $end < 0;
    my $head = substr($$buf, 0, $end);
    my ($line, @lines) = split /\r\n/, $head;
    my %h;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $h{lc $k} = $v;
    }
    my $len = $h{'content-length'} // 0;
    return undef if length($$buf) < $end + 4 + $len;
    my $body = substr($$buf, $end + 4, $len);
    substr($$buf, 0, $end + 4 + $len, '');
    my ($method, $target) = split / /, $line;
    my ($path, $query) = split /\?/, $target // '', 2;
    return { method => $method, path => $path, query => $query // '', headers => \%h,
        body => $body, close => lc($h{connection} // '') eq 'close' };
}

sub _response {
    my ($status, $reason, $body, %h) = @_;
    $body //= '';
    my $head = "HTTP/1.1 $status $reason\r\n";
    $h{'Content-Length'} = length $body;
    for my $k (sort keys %h) {
        $head .= "$k: $_\r\n" for ref $h{$k} ? @{ $h{$k} } : $h{$k};
    }
    return "$head\r\n$body";
}

sub _json {
    my ($status, $reason, $data, %h) = @_;
    return _response($status, $reason, $JSON->encode($data),
        'Content-Type' => 'application/vnd.api+json', %h);
}

sub _klaviyo_error {
    my ($status, $reason, $code, $title, $detail, %h) = @_;
    return _json($status, $reason, { errors => [ { id => 'e-' . int(rand 1e9), code => $code,
        title => $title, detail => $detail, source => { pointer => '/data/' } } ] }, %h);
}

# (delay in ms, the response) for a request
sub _answer {
    my ($self, $req) = @_;
    if ($req->{path} =~ m{^/__mock/mode$}) {
        my %q = map { split /=/, $_, 2 } split /&/, $req->{query};
        $self->{mode} = delete $q{mode};
        $self->{opt} = \%q;
        return (0, _response(204, 'No Content'));
    }
    if ($req->{path} eq '/__mock/jwks') {
        $self->{jwks} = $req->{body};
        $self->{jwks_max_age} = $req->{query} =~ /max_age=(\d+)/ ? $1 : 5;
        return (0, _response(204, 'No Content'));
    }
    if ($self->{record}) {
        print { $self->{logfh} } $JSON->encode({ method => $req->{method}, path => $req->{path},
            query => $req->{query}, headers => $req->{headers}, body => $req->{body} }) . "\n";
    }
    my $delay = $self->{opt}{delay_ms} // $self->{delay_ms};
    my $mode = $self->{mode};
    return ($delay, _response(302, 'Found', '', Location => 'http://127.0.0.1:1/elsewhere'))
        if $mode eq 'redirect';
    return ($delay, _response(200, 'OK', '<html>surprise</html>', 'Content-Type' => 'text/html'))
        if $mode eq 'garbage';
    return ($delay, _response(200, 'OK', 'x' x (2 * 1024 * 1024), 'Content-Type' => 'application/json'))
        if $mode eq 'huge';
    return ($delay, _klaviyo_error(500, 'Internal Server Error', 'error', 'A server error occurred.',
        'A server error occurred.')) if $mode eq '500';
    return ($delay, _klaviyo_error(429, 'Too Many Requests', 'throttled', 'Request was throttled.',
        'Request was throttled. Expected available in 7 seconds.', 'Retry-After' => 7))
        if $mode eq '429';
    return ($delay, _response(200, 'OK', $self->{jwks} // '{"keys":[]}', 'Content-Type' => 'application/json',
        'Cache-Control' => "public, max-age=$self->{jwks_max_age}, must-revalidate, no-transform"))
        if $req->{path} eq '/jwks' && $req->{method} eq 'GET';
    return ($delay, $self->_klaviyo($req, $mode)) if $req->{path} =~ m{^/api/};
    return ($delay, $self->_salesforce($req, $mode)) if $req->{path} =~ m{^/services/};
    return ($delay, $self->_creatio($req, $mode))
        if $req->{path} =~ m{^/(ServiceModel|0/odata|odata)/};
    return ($delay, _response(404, 'Not Found', 'no such API', 'Content-Type' => 'text/plain'));
}

# Klaviyo's API as providers.md describes it
sub _klaviyo {
    my ($self, $req, $mode) = @_;
    my $h = $req->{headers};
    my $auth = $h->{authorization} // '';
    return _klaviyo_error(401, 'Unauthorized', 'not_authenticated',
        'Authentication credentials were not provided.', 'Missing or invalid private key.')
        if $mode eq '401' || $auth ne "Klaviyo-API-Key $self->{klaviyo_key}";
    return _klaviyo_error(400, 'Bad Request', 'invalid', 'Invalid input.',
        'A revision header is required (YYYY-MM-DD).')
        unless ($h->{revision} // '') =~ /^\d{4}-\d{2}-\d{2}(\.\w+)?$/;
    # a revision is retired two years after its date: 410
    my @t = gmtime(time - 2 * 365.25 * 86400);
    my $oldest = sprintf '%04d-%02d-%02d', $t[5] + 1900, $t[4] + 1, $t[3];
    return _klaviyo_error(410, 'Gone', 'revision_retired', 'Revision retired.',
        "Revision $h->{revision} is no longer supported.")
        if substr($h->{revision}, 0, 10) lt $oldest;
    my $accept = $h->{accept} // '';
    return _klaviyo_error(406, 'Not Acceptable', 'not_acceptable', 'Not acceptable.',
        'Accept must be application/vnd.api+json or application/json.')
        unless $accept =~ m{application/(vnd\.api\+)?json};
    if ($req->{path} =~ m{^/api/accounts/?$}) {
        return _klaviyo_error(405, 'Method Not Allowed', 'method_not_allowed', 'Method not allowed.',
            "Method \"$req->{method}\" not allowed.") unless $req->{method} eq 'GET';
        return _klaviyo_error(400, 'Bad Request', 'invalid', 'Invalid input.', 'No body expected.')
            if length $req->{body};
        return _json(200, 'OK', { data => [ { type => 'account', id => 'AbC123',
            attributes => { contact_information => { organization_name => 'Mock Shop Inc',
                default_sender_email => 'owner@mock.example' },
                industry => 'Retail', timezone => 'America/New_York', preferred_currency => 'USD',
                public_api_key => 'AbC123' },
            links => { self => $self->url . '/api/accounts/AbC123/' } } ],
            links => { self => $self->url . '/api/accounts/' } });
    }
    return _klaviyo_error(404, 'Not Found', 'not_found', 'Not found.', 'No such endpoint.');
}

# --- Salesforce: the partner SOAP login() and the REST API ----------------------------

sub _xml_unescape {
    my ($s) = @_;
    $s =~ s/&lt;/</g; $s =~ s/&gt;/>/g; $s =~ s/&quot;/"/g; $s =~ s/&apos;/'/g; $s =~ s/&amp;/&/g;
    return $s;
}

sub _soap_fault {
    my ($code, $message) = @_;
    my $body = '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope'
        . ' xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        . ' xmlns:sf="urn:fault.partner.soap.sforce.com"'
        . ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        . "<faultcode>sf:$code</faultcode><faultstring>$code: $message</faultstring>"
        . '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        . "<sf:exceptionCode>$code</sf:exceptionCode><sf:exceptionMessage>$message</sf:exceptionMessage>"
        . '</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>';
    return _response(500, 'Server Error', $body, 'Content-Type' => 'text/xml;charset=UTF-8');
}

sub _sf_error {
    my ($status, $reason, $code, $message, %h) = @_;
    return _response($status, $reason, $JSON->encode([ { message => $message, errorCode => $code } ]),
        'Content-Type' => 'application/json;charset=UTF-8', %h);
}

sub _salesforce {
    my ($self, $req, $mode) = @_;
    my $h = $req->{headers};
    if ($req->{path} =~ m{^/services/Soap/u/(\d+\.\d)$}) {
        my $version = $1;
        return _soap_fault('UNSUPPORTED_API_VERSION', 'Invalid Api version specified on URL')
            if $version < 31 || $version >= 65;
        return _soap_fault('INVALID_OPERATION', 'No operation available for request')
            unless $req->{method} eq 'POST' && ($h->{soapaction} // '') =~ /^"?login"?$/
                && ($h->{'content-type'} // '') =~ m{^text/xml\b};
        my $b = $req->{body};
        return _soap_fault('INVALID_OPERATION', 'Not a SOAP envelope')
            unless $b =~ m{<(\w+):Envelope\b[^>]*xmlns:\1="http://schemas\.xmlsoap\.org/soap/envelope/"}
                && $b =~ m{<(\w+):login\b[^>]*xmlns:\1="urn:partner\.soap\.sforce\.com"};
        my ($user) = $b =~ m{<\w+:username>([^<]*)</\w+:username>};
        my ($pass) = $b =~ m{<\w+:password>([^<]*)</\w+:password>};
        return _soap_fault('INVALID_LOGIN', 'Invalid username, password, security token; or user locked out.')
            if $mode eq '401' || !defined $user || !defined $pass
                || _xml_unescape($user) ne $self->{sf_user}
                || _xml_unescape($pass) ne $self->{sf_password} . $self->{sf_token};
        $self->{sf_session} = 'SESSION!' . join '', map { ('A' .. 'Z')[rand 26] } 1 .. 40;
        my $server = $self->url . "/services/Soap/u/$version/00D5e000000Mock";
        my $body = '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope'
            . ' xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
            . ' xmlns="urn:partner.soap.sforce.com"'
            . ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>'
            . "<metadataServerUrl>$server</metadataServerUrl><passwordExpired>false</passwordExpired>"
            . "<sandbox>false</sandbox><serverUrl>$server</serverUrl>"
            . "<sessionId>$self->{sf_session}</sessionId><userId>0055e000001MockAA</userId>"
            . '<userInfo><organizationId>00D5e000000MockEAA</organizationId>'
            . "<userName>$self->{sf_user}</userName><sessionSecondsValid>7200</sessionSecondsValid></userInfo>"
            . '</result></loginResponse></soapenv:Body></soapenv:Envelope>';
        return _response(200, 'OK', $body, 'Content-Type' => 'text/xml;charset=UTF-8');
    }
    my $auth = $h->{authorization} // '';
    return _sf_error(401, 'Unauthorized', 'INVALID_SESSION_ID', 'Session expired or invalid',
        'WWW-Authenticate' => 'Token')
        unless defined $self->{sf_session} && $auth eq "Bearer $self->{sf_session}";
    if ($req->{path} =~ m{^/services/data/v(\d+\.\d)/?$} && $req->{method} eq 'GET') {
        return _response(200, 'OK', $JSON->encode({ sobjects => "/services/data/v$1/sobjects",
            query => "/services/data/v$1/query", limits => "/services/data/v$1/limits" }),
            'Content-Type' => 'application/json;charset=UTF-8', 'Sforce-Limit-Info' => 'api-usage=18/5000');
    }
    return _sf_error(404, 'Not Found', 'NOT_FOUND', 'The requested resource does not exist');
}

# --- Creatio: AuthService.svc/Login and OData 4 ------------------------------------------

sub _creatio {
    my ($self, $req, $mode) = @_;
    my $h = $req->{headers};
    if ($req->{path} eq '/ServiceModel/AuthService.svc/Login') {
        return _response(403, 'Forbidden', '', 'Content-Type' => 'text/html')
            unless $req->{method} eq 'POST';
        return _response(415, 'Unsupported Media Type', '')
            unless ($h->{'content-type'} // '') =~ m{^application/json\b};
        my $b = eval { $JSON->decode($req->{body}) };
        return _response(400, 'Bad Request', '{"Message":"Request body is not valid JSON"}',
            'Content-Type' => 'application/json')
            unless ref $b eq 'HASH' && join(',', sort keys %$b) eq 'UserName,UserPassword';
        my $ok = $mode ne '401' && $b->{UserName} eq $self->{creatio_user}
            && $b->{UserPassword} eq $self->{creatio_password};
        unless ($ok) {
            return _response(200, 'OK', $JSON->encode({ Code => 1, Message => 'Invalid username or password.',
                Exception => undef, PasswordChangeUrl => undef, RedirectUrl => undef }),
                'Content-Type' => 'application/json; charset=utf-8');
        }
        $self->{creatio_auth} = join '', map { ('A' .. 'F', 0 .. 9)[rand 16] } 1 .. 48;
        $self->{creatio_csrf} = join '', map { ('a' .. 'z')[rand 26] } 1 .. 22;
        return _response(200, 'OK', $JSON->encode({ Code => 0, Message => '', Exception => undef,
            PasswordChangeUrl => undef, RedirectUrl => undef }),
            'Content-Type' => 'application/json; charset=utf-8',
            'Set-Cookie' => [ 'BPMLOADER=loader123; path=/0; HttpOnly',
                ".ASPXAUTH=$self->{creatio_auth}; path=/0; HttpOnly",
                "BPMCSRF=$self->{creatio_csrf}; path=/",
                "UserName=83|117|112; expires=Tue, 01-Jan-2030 00:00:00 GMT; path=/; HttpOnly" ]);
    }
    my $cookie = $h->{cookie} // '';
    return _response(401, 'Unauthorized', '', 'Content-Type' => 'text/html')
        unless defined $self->{creatio_auth} && $cookie =~ /(?:^|; )\.ASPXAUTH=\Q$self->{creatio_auth}\E(?:;|$)/
            && $cookie =~ /(?:^|; )BPMCSRF=\Q$self->{creatio_csrf}\E(?:;|$)/
            && ($h->{bpmcsrf} // '') eq $self->{creatio_csrf};
    if ($req->{path} =~ m{^/0/odata/Contact$} && $req->{method} eq 'GET') {
        return _response(406, 'Not Acceptable', '') unless ($h->{accept} // '') =~ m{application/json};
        return _response(200, 'OK', $JSON->encode({ '@odata.context' => $self->url . '/0/odata/$metadata#Contact',
            value => [ { Id => '410006e1-ca4e-4502-a9ec-e54d922d2c00' } ] }),
            'Content-Type' => 'application/json; odata.metadata=minimal');
    }
    return _response(404, 'Not Found', '{"error":{"code":"","message":"No HTTP resource was found"}}',
        'Content-Type' => 'application/json');
}

1;

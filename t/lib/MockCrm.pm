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
#   $m->mode('slow', delay_ms => 3000);   # or ok, 400, 401, 429, 500, 503,
#                                         # huge, redirect, garbage, hang
#   $m->mode('429', times => 2, retry_after => 3);   # the next 2 calls
#   $m->requests                  # [{method, path, headers, body}] seen
#   $m->state                     # what the writes stored, in order
#   $m->expire_sessions           # Salesforce and Creatio log in again
#   $m->stop
#
# Control requests (/__mock/...) change the mode, read the state or
# expire the sessions; everything else is a provider call, recorded to a
# file the test reads.  The writes (Klaviyo profiles and events,
# Salesforce leads and tasks, Creatio contacts and activities) are kept
# in the server process's memory, checked field by field as the real
# APIs check them.

use strict;
use warnings;

use B ();
use Carp qw(croak);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG _exit);
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm_modern);

my $JSON = JSON::PP->new->utf8->canonical;

my %REASON = (200 => 'OK', 201 => 'Created', 202 => 'Accepted', 204 => 'No Content',
    300 => 'Multiple Choices', 400 => 'Bad Request', 401 => 'Unauthorized', 404 => 'Not Found',
    405 => 'Method Not Allowed', 413 => 'Payload Too Large', 415 => 'Unsupported Media Type');

my $EMAIL = qr/^[^\s@]+@[^\s@]+\.[^\s@]+\z/;

# the profile attributes profile-import takes; all strings but two
my @KLAVIYO_PROFILE = qw(email phone_number external_id first_name last_name organization title
    image location properties locale);
my %KLAVIYO_OBJECT = (location => 1, properties => 1);
# the identifiers, in the order a stored profile is matched by
my @KLAVIYO_IDS = qw(external_id email phone_number);
my %KLAVIYO_EVENT = map { $_ => 1 } qw(properties metric profile time value value_currency unique_id);

# the mock org's sObject fields (and any custom __c field): text unless
# said otherwise, max its length; required ones are needed on create and
# may never be cleared
my %SF_FIELDS = (
    Lead => { LastName => { max => 80, required => 1 }, FirstName => { max => 40 },
        Company => { max => 255, required => 1 }, Email => { max => 80, email => 1 },
        Phone => { max => 40 }, Website => { max => 255 }, LeadSource => { max => 255 },
        Description => { max => 32000 } },
    Task => { Subject => { max => 255, required => 1 }, WhoId => { lead => 1 },
        Status => { required => 1, picklist => [ 'Not Started', 'In Progress', 'Completed',
            'Waiting on someone else', 'Deferred' ] },
        ActivityDate => { date => 1 }, Description => { max => 32000 },
        TaskSubtype => { picklist => [qw(Task Email Call)] } },
);
my %SF_PREFIX = (Lead => '00Q', Task => '00T');
my %SF_LIST = (Lead => 'leads', Task => 'tasks');
my $SF_CUSTOM = qr/^[A-Za-z][A-Za-z0-9_]*__c\z/;
my $SF_REST = '/services/data/v59.0';

# the OData entities the gateway writes, column by column: text (max is
# the length, none for unlimited), date (UTC) or guid (a lookup, which
# may be empty; contact => 1 when it must name a stored contact)
my %CREATIO = (
    Contact => { Name => { type => 'text', max => 250, required => 1 },
        Email => { type => 'text', max => 250 }, MobilePhone => { type => 'text', max => 250 },
        Notes => { type => 'text' } },
    Activity => { Title => { type => 'text', max => 500, required => 1 },
        StartDate => { type => 'date', required => 1 }, DueDate => { type => 'date', required => 1 },
        ContactId => { type => 'guid', contact => 1 }, Notes => { type => 'text' },
        TypeId => { type => 'guid' }, StatusId => { type => 'guid' }, OwnerId => { type => 'guid' } },
);
my %CREATIO_LIST = (Contact => 'contacts', Activity => 'activities');
my %EDM = (text => 'Edm.String', date => 'Edm.DateTimeOffset', guid => 'Edm.Guid');
my $GUID = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\z/i;
my $EMPTY_GUID = '00000000-0000-0000-0000-000000000000';

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

# sets how provider calls are answered: from now on, or with times => N
# for the next N calls only, then ok again
sub mode {
    my ($self, $mode, %o) = @_;
    my $q = join '&', "mode=$mode", map { "$_=$o{$_}" } sort keys %o;
    $self->_ask('POST', "/__mock/mode?$q", '', 204);
    return $self;
}

# serves $doc at /jwks with Cache-Control max-age=$max_age (5)
sub jwks {
    my ($self, $doc, $max_age) = @_;
    $self->_ask('POST', '/__mock/jwks?max_age=' . ($max_age // 5), $doc, 204);
    return $self;
}

# forgets the Salesforce session and the Creatio cookie, as an expiry
# does: REST and OData answer 401 until the client logs in again
sub expire_sessions {
    my ($self) = @_;
    $self->_ask('POST', '/__mock/expire', '', 204);
    return $self;
}

# what the provider calls wrote, each list in the order created:
# {klaviyo => {profiles, events}, salesforce => {leads, tasks},
#  creatio => {contacts, activities}}
sub state {
    my ($self) = @_;
    return $JSON->decode($self->_ask('GET', '/__mock/state', '', 200));
}

# one control request on a connection of its own: the answer's body
sub _ask {
    my ($self, $method, $target, $body, $status) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
        Timeout => 5) or croak "mock control: $!";
    print $sock "$method $target HTTP/1.1\r\nHost: mock\r\nContent-Length: " . length($body)
        . "\r\nConnection: close\r\n\r\n$body";
    local $/;
    my $r = <$sock> // '';
    croak "mock control: " . ($r || 'no answer') unless $r =~ m{^HTTP/1\.1 $status };
    return (split /\r\n\r\n/, $r, 2)[1];
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
    # at exit, waitpid must not overwrite the script's exit status
    local $?;
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
    $self->{seq} = 0;
    $self->{store} = { klaviyo => { profiles => [], events => [] },
        salesforce => { leads => [], tasks => [] }, creatio => { contacts => [], activities => [] } };
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
                    # a connection's own number: a file descriptor is reused
                    # by the next connection once this one closes
                    my $conn = ++$self->{connections};
                    $in{fileno $c} = { sock => $c, buf => '', conn => $conn };
                    $out{fileno $c} = { sock => $c, buf => '', conn => $conn };
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
                next unless defined $resp;    # hang: the connection stays open, unanswered
                push @due, [time + $delay / 1000, $fd, $resp, $req->{close}, $in{$fd}{conn}];
                @due = sort { $a->[0] <=> $b->[0] } @due;
            }
        }

        $now = time;
        while (@due && $due[0][0] <= $now) {
            my ($t, $fd, $resp, $close, $conn) = @{ shift @due };
            next unless $out{$fd} && $out{$fd}{conn} == $conn;
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

# JSON types as JSON::PP decoded them: a number has numeric flags only
# (look before any string operation on the value, which would add one)
sub _is_number {
    my ($v) = @_;
    return 0 if !defined $v || ref $v;
    my $f = B::svref_2object(\$v)->FLAGS;
    return ($f & (B::SVp_IOK | B::SVp_NOK)) && !($f & B::SVp_POK);
}

sub _is_string { defined $_[0] && !ref $_[0] && !_is_number($_[0]) }

# seconds since the epoch of an ISO 8601 date and time with its zone
# (Z, +hh:mm or -hh:mm), or undef
sub _iso8601 {
    my ($s) = @_;
    my ($y, $mo, $d, $h, $mi, $sec, $zone)
        = $s =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)\z/ or return undef;
    my $t = eval { timegm_modern($sec, $mi, $h, $d, $mo - 1, $y) } // return undef;
    return $t if $zone eq 'Z';
    my ($sign, $zh, $zm) = $zone =~ /^([+-])(\d\d):(\d\d)/;
    return $t - ($sign eq '-' ? -1 : 1) * ($zh * 3600 + $zm * 60);
}

# %XX decoded, + as a space too in a query, then read as UTF-8 (the
# JSON bodies' strings are characters)
sub _unescape {
    my ($s, $plus) = @_;
    $s =~ tr/+/ / if $plus;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    utf8::decode($s);
    return $s;
}

# a query string's parameters as name => value
sub _query_form {
    my ($query) = @_;
    return map { my ($k, $v) = split /=/, $_, 2; (_unescape($k, 1), _unescape($v // '', 1)) }
        grep { length } split /&/, $query;
}

# ids in creation order, across providers, so that runs repeat
sub _next { ++$_[0]{seq} }

sub _klaviyo_error {
    my ($status, $reason, $code, $title, $detail, %h) = @_;
    return _json($status, $reason, { errors => [ { id => 'e-' . int(rand 1e9), code => $code,
        title => $title, detail => $detail, source => { pointer => '/data/' } } ] }, %h);
}

# a 400 naming what is wrong: {pointer => '/data/...'} or {parameter => ...}
sub _klaviyo_invalid {
    my ($source, $detail) = @_;
    return _json(400, 'Bad Request', { errors => [ { id => 'e-' . int(rand 1e9), code => 'invalid',
        title => 'Invalid input.', detail => $detail, source => $source } ] });
}

sub _klaviyo_not_allowed {
    my ($req) = @_;
    return _klaviyo_error(405, 'Method Not Allowed', 'method_not_allowed', 'Method not allowed.',
        "Method \"$req->{method}\" not allowed.");
}

# the mode this call is answered in; one set for N calls reverts to ok
# after the Nth
sub _call_mode {
    my ($self) = @_;
    my @now = ($self->{mode}, $self->{opt});
    @$self{qw(mode opt left)} = ('ok', {}, undef) if defined $self->{left} && --$self->{left} <= 0;
    return @now;
}

# the test's requests: the mode, the keys at /jwks, expired sessions, the
# stored state
sub _control {
    my ($self, $req) = @_;
    my $path = $req->{path};
    if ($path eq '/__mock/mode') {
        my %q = map { split /=/, $_, 2 } split /&/, $req->{query};
        $self->{mode} = delete $q{mode};
        $self->{left} = delete $q{times};
        $self->{opt} = \%q;
    } elsif ($path eq '/__mock/jwks') {
        $self->{jwks} = $req->{body};
        $self->{jwks_max_age} = $req->{query} =~ /max_age=(\d+)/ ? $1 : 5;
    } elsif ($path eq '/__mock/expire') {
        delete @$self{qw(sf_session creatio_auth creatio_csrf)};
    } elsif ($path eq '/__mock/state') {
        return _response(200, 'OK', $JSON->encode($self->{store}), 'Content-Type' => 'application/json');
    } else {
        return _response(404, 'Not Found', 'no such control', 'Content-Type' => 'text/plain');
    }
    return _response(204, 'No Content');
}

# (delay in ms, the response) for a request; no response: never answer
sub _answer {
    my ($self, $req) = @_;
    return (0, $self->_control($req)) if $req->{path} =~ m{^/__mock/};
    if ($self->{record}) {
        print { $self->{logfh} } $JSON->encode({ method => $req->{method}, path => $req->{path},
            query => $req->{query}, headers => $req->{headers}, body => $req->{body} }) . "\n";
    }
    my ($mode, $opt) = $self->_call_mode;
    my $delay = $opt->{delay_ms} // $self->{delay_ms};
    my $retry = $opt->{retry_after} // 7;
    return (0, undef) if $mode eq 'hang';
    return ($delay, _response(302, 'Found', '', Location => 'http://127.0.0.1:1/elsewhere'))
        if $mode eq 'redirect';
    return ($delay, _response(200, 'OK', '<html>surprise</html>', 'Content-Type' => 'text/html'))
        if $mode eq 'garbage';
    return ($delay, _response(200, 'OK', 'x' x (2 * 1024 * 1024), 'Content-Type' => 'application/json'))
        if $mode eq 'huge';
    return ($delay, _klaviyo_error(500, 'Internal Server Error', 'error', 'A server error occurred.',
        'A server error occurred.')) if $mode eq '500';
    return ($delay, _klaviyo_error(429, 'Too Many Requests', 'throttled', 'Request was throttled.',
        "Request was throttled. Expected available in $retry seconds.", 'Retry-After' => $retry))
        if $mode eq '429';
    return ($delay, _klaviyo_error(503, 'Service Unavailable', 'service_unavailable',
        'Service unavailable.', 'The service is temporarily unavailable. Try again later.',
        'Retry-After' => $retry)) if $mode eq '503';
    if ($mode eq '400') {
        # a refusal of the data, in each provider's own shape
        return ($delay, _sf_error(400, 'Bad Request', 'FIELD_CUSTOM_VALIDATION_EXCEPTION',
            'The mock refuses this record.')) if $req->{path} =~ m{^/services/data/};
        return ($delay, _response(400, 'Bad Request', $JSON->encode({ error => { code => '',
            message => 'The mock refuses this record.' } }), 'Content-Type' => 'application/json'))
            if $req->{path} =~ m{^/(0/)?odata/};
        return ($delay, _klaviyo_error(400, 'Bad Request', 'invalid', 'Invalid input.',
            'The mock refuses this record.')) if $req->{path} =~ m{^/api/};
    }
    return ($delay, _response(200, 'OK', $self->{jwks} // '{"keys":[]}', 'Content-Type' => 'application/json',
        'Cache-Control' => "public, max-age=$self->{jwks_max_age}, must-revalidate, no-transform"))
        if $req->{path} eq '/jwks' && $req->{method} eq 'GET';
    return ($delay, $self->_klaviyo($req, $mode)) if $req->{path} =~ m{^/api/};
    return ($delay, $self->_salesforce($req, $mode)) if $req->{path} =~ m{^/services/};
    return ($delay, $self->_creatio($req, $mode))
        if $req->{path} =~ m{^/(ServiceModel|0/odata|odata)/};
    return ($delay, _response(404, 'Not Found', 'no such API', 'Content-Type' => 'text/plain'));
}

# --- Klaviyo ---------------------------------------------------------------------------

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
    my $path = $req->{path};
    return $self->_klaviyo_accounts($req) if $path =~ m{^/api/accounts/?$};
    return $self->_klaviyo_profile_import($req) if $path =~ m{^/api/profile-import/?$};
    return $self->_klaviyo_event($req) if $path =~ m{^/api/events/?$};
    return $self->_klaviyo_profiles($req) if $path =~ m{^/api/profiles/?$};
    return _klaviyo_error(404, 'Not Found', 'not_found', 'Not found.', 'No such endpoint.');
}

sub _klaviyo_accounts {
    my ($self, $req) = @_;
    return _klaviyo_not_allowed($req) unless $req->{method} eq 'GET';
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

# the attributes of {"data":{"type":$type,"attributes":{...}}}, or undef
sub _jsonapi_attributes {
    my ($doc, $type) = @_;
    return undef unless ref $doc eq 'HASH' && ref $doc->{data} eq 'HASH';
    my $data = $doc->{data};
    return undef unless _is_string($data->{type}) && $data->{type} eq $type
        && ref $data->{attributes} eq 'HASH';
    return $data->{attributes};
}

# (the document's data, undef) for a write's body, or (undef, the refusal):
# a JSON:API content type, at most 100 KB, one resource of $type
sub _klaviyo_document {
    my ($req, $type) = @_;
    my $ct = $req->{headers}{'content-type'} // '';
    return (undef, _klaviyo_error(415, 'Unsupported Media Type', 'unsupported_media_type',
        'Unsupported media type.', "Unsupported media type \"$ct\" in request."))
        unless $ct =~ m{^application/(?:vnd\.api\+)?json\s*(?:;|\z)}i;
    return (undef, _klaviyo_error(413, 'Payload Too Large', 'payload_too_large', 'Payload too large.',
        'The request body is larger than 100 KB.')) if length $req->{body} > 100 * 1024;
    my $doc = eval { $JSON->decode($req->{body}) };
    return (undef, _klaviyo_invalid({ pointer => '/data' },
        "The body must be a JSON:API document of one \"$type\" resource."))
        unless _jsonapi_attributes($doc, $type);
    return ($doc->{data}, undef);
}

# Klaviyo's refusal of profile attributes found at $at (a JSON pointer),
# or undef: known keys only, strings (two objects), a well-formed email
# and E.164 phone number, and at least one identifier
sub _klaviyo_profile_refusal {
    my ($attrs, $at) = @_;
    my %known = map { $_ => 1 } @KLAVIYO_PROFILE;
    for my $k (sort keys %$attrs) {
        my $v = $attrs->{$k};
        return _klaviyo_invalid({ pointer => "$at/$k" },
            "'$k' is not a valid field for the resource 'profile'.") unless $known{$k};
        next unless defined $v;
        return _klaviyo_invalid({ pointer => "$at/$k" }, $KLAVIYO_OBJECT{$k} ? 'Must be an object.'
            : 'Must be a string.') unless $KLAVIYO_OBJECT{$k} ? ref $v eq 'HASH' : _is_string($v);
    }
    return _klaviyo_invalid({ pointer => "$at/email" }, "Invalid email address: $attrs->{email}")
        if defined $attrs->{email} && $attrs->{email} !~ $EMAIL;
    return _klaviyo_invalid({ pointer => "$at/phone_number" },
        'Invalid phone number format (Example of a valid format: +12345678901)')
        if defined $attrs->{phone_number} && $attrs->{phone_number} !~ /^\+[1-9]\d{7,14}\z/;
    return _klaviyo_invalid({ pointer => $at }, 'One of email, phone_number or external_id is required.')
        unless grep { defined $attrs->{$_} && length $attrs->{$_} } @KLAVIYO_IDS;
    return undef;
}

# profile-import: create, or update the profile the id or an identifier
# names (201 or 200)
sub _klaviyo_profile_import {
    my ($self, $req) = @_;
    return _klaviyo_not_allowed($req) unless $req->{method} eq 'POST';
    my ($data, $refusal) = _klaviyo_document($req, 'profile');
    $refusal //= _klaviyo_profile_refusal($data->{attributes}, '/data/attributes');
    return $refusal if $refusal;
    my $profiles = $self->{store}{klaviyo}{profiles};
    my $p;
    if (defined $data->{id}) {
        ($p) = grep { $_->{id} eq $data->{id} } @$profiles;
        return _klaviyo_error(404, 'Not Found', 'not_found', 'Not found.', "No profile with id $data->{id}.")
            unless $p;
    }
    $p //= $self->_klaviyo_match($data->{attributes});
    my $created = !$p;
    if ($created) {
        $p = { id => _klaviyo_id($self->_next), (map { $_ => undef } @KLAVIYO_PROFILE), properties => {} };
        push @$profiles, $p;
    }
    my %was = map { $_ => $p->{$_} } @KLAVIYO_IDS;
    _klaviyo_merge($p, $data->{attributes});
    # the profiles by identifier, so that a match costs the same at any size
    my $idx = $self->{klaviyo_index} //= {};
    for my $k (@KLAVIYO_IDS) {
        delete $idx->{$k}{ $was{$k} }
            if defined $was{$k} && ($idx->{$k}{ $was{$k} } // 0) == $p
                && (!defined $p->{$k} || $p->{$k} ne $was{$k});
        $idx->{$k}{ $p->{$k} } //= $p if defined $p->{$k};
    }
    return _json($created ? 201 : 200, $created ? 'Created' : 'OK', { data => $self->_klaviyo_resource($p) });
}

# an id as Klaviyo gives profiles (a ULID): 01 and 24 Crockford base32
sub _klaviyo_id {
    my ($n) = @_;
    my $id = '';
    for (1 .. 24) {
        $id = substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', $n % 32, 1) . $id;
        $n = int($n / 32);
    }
    return "01$id";
}

# the stored profile these attributes identify: by external_id, else
# email, else phone_number
sub _klaviyo_match {
    my ($self, $attrs) = @_;
    for my $k (grep { defined $attrs->{$_} } @KLAVIYO_IDS) {
        my $p = $self->{klaviyo_index}{$k}{ $attrs->{$k} };
        return $p if $p;
    }
    return undef;
}

# a field sent as null is cleared, an omitted one left; properties merge
# key by key (null clears them all)
sub _klaviyo_merge {
    my ($p, $attrs) = @_;
    for my $k (keys %$attrs) {
        my $v = $attrs->{$k};
        if ($k ne 'properties') {
            $p->{$k} = $v;
        } elsif (!defined $v) {
            $p->{properties} = {};
        } else {
            @{ $p->{properties} }{ keys %$v } = values %$v;
        }
    }
}

sub _klaviyo_resource {
    my ($self, $p) = @_;
    return { type => 'profile', id => $p->{id}, attributes => { map { $_ => $p->{$_} } @KLAVIYO_PROFILE },
        links => { self => $self->url . "/api/profiles/$p->{id}/" } };
}

# Klaviyo's refusal of an event's attributes, or undef
sub _klaviyo_event_refusal {
    my ($ev) = @_;
    my $at = '/data/attributes';
    for my $k (sort keys %$ev) {
        return _klaviyo_invalid({ pointer => "$at/$k" },
            "'$k' is not a valid field for the resource 'event'.") unless $KLAVIYO_EVENT{$k};
    }
    return _klaviyo_invalid({ pointer => "$at/properties" }, 'properties is required and must be an object.')
        unless ref $ev->{properties} eq 'HASH';
    my $metric = _jsonapi_attributes($ev->{metric}, 'metric') // {};
    return _klaviyo_invalid({ pointer => "$at/metric/data/attributes/name" },
        'A metric name of 1 to 127 characters is required.')
        unless _is_string($metric->{name}) && length $metric->{name} >= 1 && length $metric->{name} <= 127;
    my $who = _jsonapi_attributes($ev->{profile}, 'profile');
    return _klaviyo_invalid({ pointer => "$at/profile" }, 'A profile resource object is required.')
        unless $who;
    my $refusal = _klaviyo_profile_refusal($who, "$at/profile/data/attributes");
    return $refusal if $refusal;
    my $when = _is_string($ev->{time}) ? _iso8601($ev->{time}) : undef;
    return _klaviyo_invalid({ pointer => "$at/time" },
        'time must be an ISO 8601 date and time after 1990 and at most a year ahead.')
        if defined $ev->{time} && !(defined $when && $when > 631152000 && $when <= time + 365 * 86400);
    return _klaviyo_invalid({ pointer => "$at/value" }, 'value must be a number.')
        if defined $ev->{value} && !_is_number($ev->{value});
    return _klaviyo_invalid({ pointer => "$at/value_currency" }, 'value_currency must be an ISO 4217 code.')
        if defined $ev->{value_currency}
            && !(_is_string($ev->{value_currency}) && $ev->{value_currency} =~ /^[A-Z]{3}\z/);
    return _klaviyo_invalid({ pointer => "$at/unique_id" }, 'unique_id must be a string of at most 255.')
        if defined $ev->{unique_id} && !(_is_string($ev->{unique_id}) && length $ev->{unique_id} <= 255);
    return undef;
}

# events: 202 with no body, processed later; Klaviyo keeps the first event
# per profile, metric and unique_id (by default the time to the second)
# and drops a repeat, still with 202
sub _klaviyo_event {
    my ($self, $req) = @_;
    return _klaviyo_not_allowed($req) unless $req->{method} eq 'POST';
    my ($data, $refusal) = _klaviyo_document($req, 'event');
    $refusal //= _klaviyo_event_refusal($data->{attributes});
    return $refusal if $refusal;
    my $ev = $data->{attributes};
    my $who = $ev->{profile}{data}{attributes};
    my $name = $ev->{metric}{data}{attributes}{name};
    my ($by) = grep { defined $who->{$_} && length $who->{$_} } @KLAVIYO_IDS;
    my $once = defined $ev->{unique_id} ? "id $ev->{unique_id}"
        : defined $ev->{time} ? 'at ' . _iso8601($ev->{time}) : undef;
    my $dup = defined $once && $self->{events_seen}{ join "\0", $by, $who->{$by}, $name, $once }++;
    push @{ $self->{store}{klaviyo}{events} }, { metric => $name,
        profile => { map { $_ => $who->{$_} } grep { defined $who->{$_} } @KLAVIYO_IDS },
        (map { $_ => $ev->{$_} } qw(properties time value value_currency unique_id)),
        duplicate => $dup ? JSON::PP::true : JSON::PP::false };
    return _response(202, 'Accepted');
}

# profiles by external_id or email, or all
sub _klaviyo_profiles {
    my ($self, $req) = @_;
    return _klaviyo_not_allowed($req) unless $req->{method} eq 'GET';
    my %q = _query_form($req->{query});
    my ($other) = sort grep { $_ ne 'filter' } keys %q;
    return _klaviyo_invalid({ parameter => $other }, "'$other' is not a query parameter the mock takes.")
        if defined $other;
    my @found = @{ $self->{store}{klaviyo}{profiles} };
    if (exists $q{filter}) {
        my ($field, $value) = $q{filter} =~ /^equals\((external_id|email),\s*"((?:[^"\\]|\\.)*)"\)\z/
            or return _klaviyo_invalid({ parameter => 'filter' }, "Invalid filter provided: $q{filter}");
        $value =~ s/\\(.)/$1/g;
        @found = grep { defined $_->{$field} && $_->{$field} eq $value } @found;
    }
    return _json(200, 'OK', { data => [ map { $self->_klaviyo_resource($_) } @found ],
        links => { self => $self->url . $req->{path} . (length $req->{query} ? "?$req->{query}" : ''),
            next => undef, prev => undef } });
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

# Salesforce's error array; fields only where a field is at fault, as
# Salesforce does
sub _sf_error {
    my ($status, $code, $message, $fields, %h) = @_;
    return _response($status, $REASON{$status}, $JSON->encode([ { message => $message, errorCode => $code,
        $fields ? (fields => $fields) : () } ]), 'Content-Type' => 'application/json;charset=UTF-8', %h);
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
    return _sf_error(401, 'INVALID_SESSION_ID', 'Session expired or invalid', undef,
        'WWW-Authenticate' => 'Token')
        unless defined $self->{sf_session} && $auth eq "Bearer $self->{sf_session}";
    if ($req->{path} =~ m{^/services/data/v(\d+\.\d)/?$} && $req->{method} eq 'GET') {
        return _response(200, 'OK', $JSON->encode({ sobjects => "/services/data/v$1/sobjects",
            query => "/services/data/v$1/query", limits => "/services/data/v$1/limits" }),
            'Content-Type' => 'application/json;charset=UTF-8', 'Sforce-Limit-Info' => 'api-usage=18/5000');
    }
    return $self->_sf_rest($req, $1) if $req->{path} =~ m{^\Q$SF_REST\E/(.+)\z};
    return _sf_error(404, 'NOT_FOUND', 'The requested resource does not exist');
}

# --- Salesforce REST: the writes ---------------------------------------------------

sub _sf_json {
    my ($status, $data) = @_;
    return _response($status, $REASON{$status}, $JSON->encode($data),
        'Content-Type' => 'application/json;charset=UTF-8', 'Sforce-Limit-Info' => 'api-usage=18/5000');
}

sub _sf_not_allowed {
    my ($method, $allowed) = @_;
    return _sf_error(405, 'METHOD_NOT_ALLOWED', "HTTP Method '$method' not allowed. Allowed are $allowed");
}

sub _sf_attributes {
    my ($type, $id) = @_;
    return { type => $type, url => "$SF_REST/sobjects/$type/$id" };
}

# the resources the gateway writes with: the lead query, create, update
# by Id, upsert or read by an external id
sub _sf_rest {
    my ($self, $req, $rest) = @_;
    my $m = $req->{method};
    if ($rest =~ m{^query/?\z}) {
        return $m eq 'GET' ? $self->_sf_query($req) : _sf_not_allowed($m, 'GET');
    }
    if ($rest =~ m{^sobjects/(Lead|Task)/?\z}) {
        return $m eq 'POST' ? $self->_sf_create($req, $1) : _sf_not_allowed($m, 'POST');
    }
    if ($rest =~ m{^sobjects/(Lead|Task)/([^/]+)/([^/]+)\z}) {
        my ($type, $field, $value) = ($1, $2, _unescape($3));
        return _sf_error(404, 'NOT_FOUND',
            "Provided external ID field does not exist or is not accessible: $field")
            unless $field =~ $SF_CUSTOM;
        return $self->_sf_upsert($req, $type, $field, $value) if $m eq 'PATCH';
        return $self->_sf_read($type, $field, $value) if $m eq 'GET';
        return _sf_not_allowed($m, 'GET,PATCH');
    }
    if ($rest =~ m{^sobjects/(Lead|Task)/([^/]+)\z}) {
        return $m eq 'PATCH' ? $self->_sf_update($req, $1, $2) : _sf_not_allowed($m, 'PATCH');
    }
    return _sf_error(404, 'NOT_FOUND', 'The requested resource does not exist');
}

# the one SOQL statement the gateway sends: a lead by email (compared as
# SOQL compares text, ignoring case)
sub _sf_query {
    my ($self, $req) = @_;
    my %q = _query_form($req->{query});
    my $soql = $q{q} // '';
    return _sf_error(400, 'MALFORMED_QUERY', 'A query string has to be specified') unless length $soql;
    my ($email) = $soql =~ /^SELECT Id FROM Lead WHERE Email = '((?:[^'\\]|\\['\\])*)' LIMIT 1\z/
        or return _sf_error(400, 'MALFORMED_QUERY', "unexpected token in: $soql");
    $email =~ s/\\(.)/$1/g;
    my @found = grep { defined $_->{Email} && lc $_->{Email} eq lc $email }
        @{ $self->{store}{salesforce}{leads} };
    splice @found, 1;
    return _sf_json(200, { totalSize => scalar @found, done => JSON::PP::true,
        records => [ map { { attributes => _sf_attributes('Lead', $_->{Id}), Id => $_->{Id} } } @found ] });
}

# (the body, undef), or (undef, the refusal): a JSON object as JSON
sub _sf_body {
    my ($req) = @_;
    my $ct = $req->{headers}{'content-type'} // '';
    return (undef, _sf_error(415, 'UNSUPPORTED_MEDIA_TYPE',
        "Content-Type header specified in HTTP request is not supported: $ct"))
        unless $ct =~ m{^application/json\s*(?:;|\z)}i;
    my $body = eval { $JSON->decode($req->{body}) };
    return (undef, _sf_error(400, 'JSON_PARSER_ERROR', 'The request body is not a JSON object'))
        unless ref $body eq 'HASH';
    return ($body, undef);
}

# a value that sets a field: null and "" clear it
sub _sf_set { defined $_[0] && length $_[0] }

# Salesforce's refusal of a write of these fields, or undef: the names
# first (Id is never written), then each value, then what the record
# needs (on create, or when a required field would be cleared)
sub _sf_refusal {
    my ($self, $type, $body, $creating) = @_;
    my $fields = $SF_FIELDS{$type};
    for my $f (sort keys %$body) {
        return _sf_error(400, 'INVALID_FIELD_FOR_INSERT_UPDATE', "Unable to create/update fields: $f."
            . ' Please check the security settings of this field and verify that it is read/write for'
            . ' your profile or permission set.', [$f]) if $f eq 'Id';
        return _sf_error(400, 'INVALID_FIELD', "No such column '$f' on sobject of type $type")
            unless $fields->{$f} || $f =~ $SF_CUSTOM;
    }
    for my $f (sort keys %$body) {
        my $refusal = $self->_sf_value_refusal($fields->{$f} // {}, $f, $body->{$f});
        return $refusal if $refusal;
    }
    my @missing = grep { $fields->{$_}{required} && ($creating || exists $body->{$_})
        && !_sf_set($body->{$_}) } sort keys %$fields;
    return _sf_error(400, 'REQUIRED_FIELD_MISSING',
        'Required fields are missing: [' . join(', ', @missing) . ']', \@missing) if @missing;
    return undef;
}

# Salesforce's refusal of one value, or undef ($spec {} for a custom
# field, which takes any scalar)
sub _sf_value_refusal {
    my ($self, $spec, $f, $v) = @_;
    my $list = $spec->{picklist};
    return _sf_error(400, 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST',
        "$f: bad value for restricted picklist field: " . ($v // 'null'), [$f])
        if $list && (defined $v || $spec->{required}) && !(_is_string($v) && grep { $_ eq $v } @$list);
    return undef unless defined $v;
    return _sf_error(400, 'JSON_PARSER_ERROR',
        "Cannot deserialize instance of $f from a JSON array or object") if ref $v && !JSON::PP::is_bool($v);
    return undef unless %$spec;
    return _sf_error(400, 'JSON_PARSER_ERROR',
        "Cannot deserialize instance of string for $f from a non-string") unless _is_string($v);
    return undef unless length $v;
    return _sf_error(400, 'STRING_TOO_LONG', "$f: data value too large: $v (max length=$spec->{max})", [$f])
        if $spec->{max} && length $v > $spec->{max};
    return _sf_error(400, 'INVALID_EMAIL_ADDRESS', "$f: invalid email address: $v", [$f])
        if $spec->{email} && $v !~ $EMAIL;
    return _sf_error(400, 'JSON_PARSER_ERROR',
        "Cannot deserialize instance of date from VALUE_STRING value $v") if $spec->{date} && !_is_date($v);
    return _sf_error(400, 'INVALID_CROSS_REFERENCE_KEY', "$f: id value of incorrect type: $v", [$f])
        if $spec->{lead} && !$self->_sf_find('Lead', $v);
    return undef;
}

# a date as YYYY-MM-DD that the calendar has
sub _is_date {
    my ($v) = @_;
    my ($y, $m, $d) = $v =~ /^(\d{4})-(\d\d)-(\d\d)\z/ or return 0;
    return eval { timegm_modern(0, 0, 0, $d, $m - 1, $y); 1 };
}

# the record with this Id, in its 18- or 15-character form
sub _sf_find {
    my ($self, $type, $id) = @_;
    my ($r) = grep { $_->{Id} eq $id || substr($_->{Id}, 0, 15) eq $id }
        @{ $self->{store}{salesforce}{ $SF_LIST{$type} } };
    return $r;
}

sub _sf_by_field {
    my ($self, $type, $field, $value) = @_;
    return grep { defined $_->{$field} && $_->{$field} eq $value }
        @{ $self->{store}{salesforce}{ $SF_LIST{$type} } };
}

sub _sf_apply {
    my ($rec, $body) = @_;
    for my $f (keys %$body) {
        if (_sf_set($body->{$f})) {
            $rec->{$f} = $body->{$f};
        } else {
            delete $rec->{$f};
        }
    }
}

sub _sf_insert {
    my ($self, $type, $body) = @_;
    my $rec = { Id => sprintf('%s5e%010dAAA', $SF_PREFIX{$type}, $self->_next) };
    _sf_apply($rec, $body);
    push @{ $self->{store}{salesforce}{ $SF_LIST{$type} } }, $rec;
    return $rec;
}

sub _sf_saved {
    my ($status, $rec, @created) = @_;
    return _sf_json($status, { id => $rec->{Id}, success => JSON::PP::true, errors => [], @created });
}

sub _sf_create {
    my ($self, $req, $type) = @_;
    my ($body, $refusal) = _sf_body($req);
    $refusal //= $self->_sf_refusal($type, $body, 1);
    return $refusal if $refusal;
    return _sf_saved(201, $self->_sf_insert($type, $body));
}

# PATCH by Id; what is not an Id Salesforce takes for an external id field
sub _sf_update {
    my ($self, $req, $type, $id) = @_;
    return _sf_error(404, 'NOT_FOUND', "Provided external ID field does not exist or is not accessible: $id")
        unless $id =~ /^\Q$SF_PREFIX{$type}\E\w{12,15}\z/;
    my $rec = $self->_sf_find($type, $id)
        or return _sf_error(404, 'NOT_FOUND', 'The requested resource does not exist');
    my ($body, $refusal) = _sf_body($req);
    $refusal //= $self->_sf_refusal($type, $body, 0);
    return $refusal if $refusal;
    _sf_apply($rec, $body);
    return _response(204, 'No Content', '', 'Sforce-Limit-Info' => 'api-usage=18/5000');
}

# upsert by an external id (API 46.0 on: 200 with created false when it
# existed); the field is in the URL, never in the body
sub _sf_upsert {
    my ($self, $req, $type, $field, $value) = @_;
    my ($body, $refusal) = _sf_body($req);
    return $refusal if $refusal;
    return _sf_error(400, 'INVALID_FIELD',
        "$field: the external ID field of the URL cannot be in the body too", [$field])
        if exists $body->{$field};
    my @found = $self->_sf_by_field($type, $field, $value);
    return _sf_json(300, [ map { "$SF_REST/sobjects/$type/$_->{Id}" } @found ]) if @found > 1;
    $refusal = $self->_sf_refusal($type, $body, !@found);
    return $refusal if $refusal;
    return _sf_saved(201, $self->_sf_insert($type, { %$body, $field => $value }), created => JSON::PP::true)
        unless @found;
    _sf_apply($found[0], $body);
    return _sf_saved(200, $found[0], created => JSON::PP::false);
}

# a record by an external id: every field of the sObject, null if unset
sub _sf_read {
    my ($self, $type, $field, $value) = @_;
    my @found = $self->_sf_by_field($type, $field, $value);
    return _sf_json(300, [ map { "$SF_REST/sobjects/$type/$_->{Id}" } @found ]) if @found > 1;
    return _sf_error(404, 'NOT_FOUND',
        "Provided external ID field does not exist or is not accessible: $value") unless @found;
    return _sf_json(200, { attributes => _sf_attributes($type, $found[0]{Id}),
        (map { $_ => undef } keys %{ $SF_FIELDS{$type} }), %{ $found[0] } });
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
    my ($entity, $key) = $req->{path} =~ m{^/0/odata/(Contact|Activity)(?:\(([^)]*)\))?\z}
        or return _response(404, 'Not Found', '{"error":{"code":"","message":"No HTTP resource was found"}}',
            'Content-Type' => 'application/json');
    my $m = $req->{method};
    return _response(406, 'Not Acceptable', '') if $m eq 'GET' && ($h->{accept} // '') !~ m{application/json};
    if (!defined $key) {
        return $self->_creatio_find($req) if $m eq 'GET' && $entity eq 'Contact';
        return $self->_creatio_create($req, $entity) if $m eq 'POST';
    } else {
        return _odata_error(400,
            "The key value '$key' is not valid for the type 'Terrasoft.Configuration.$entity'.")
            unless $key =~ $GUID;
        return $self->_creatio_read($entity, $key) if $m eq 'GET';
        return $self->_creatio_update($req, $entity, $key) if $m eq 'PATCH';
    }
    return _odata_error(405, "The requested resource does not support http method '$m'.");
}

# --- Creatio OData: the writes ------------------------------------------------------

sub _odata_json {
    my ($status, $data, %h) = @_;
    return _response($status, $REASON{$status}, $JSON->encode($data),
        'Content-Type' => 'application/json; odata.metadata=minimal', %h);
}

sub _odata_error { _odata_json($_[0], { error => { code => '', message => $_[1] } }) }

# the two collection reads the gateway makes: any one contact (validate)
# and a contact by email (OData doubles a quote inside the literal)
sub _creatio_find {
    my ($self, $req) = @_;
    my %q = _query_form($req->{query});
    my $filter = delete $q{'$filter'};
    my $one_id = join('&', map { "$_=$q{$_}" } sort keys %q) eq '$select=Id&$top=1';
    my $context = $self->url . '/0/odata/$metadata#Contact';
    if ($one_id && !defined $filter) {
        return _response(200, 'OK', $JSON->encode({ '@odata.context' => $context,
            value => [ { Id => '410006e1-ca4e-4502-a9ec-e54d922d2c00' } ] }),
            'Content-Type' => 'application/json; odata.metadata=minimal');
    }
    my ($email) = $one_id && defined $filter ? $filter =~ /^Email eq '((?:[^']|'')*)'\z/ : ();
    return _odata_error(400, "The query specified in the URI is not valid: $req->{query}")
        unless defined $email;
    $email =~ s/''/'/g;
    my @found = grep { $_->{Email} eq $email } @{ $self->{store}{creatio}{contacts} };
    splice @found, 1;
    return _odata_json(200, { '@odata.context' => $context, value => [ map { { Id => $_->{Id} } } @found ] });
}

# (the body, undef), or (undef, the refusal): a JSON object as JSON
sub _creatio_body {
    my ($req) = @_;
    my $ct = $req->{headers}{'content-type'} // '';
    return (undef, _odata_error(415, "The content type '$ct' is not supported."))
        unless $ct =~ m{^application/json}i;
    my $body = eval { $JSON->decode($req->{body}) };
    return (undef, _odata_error(400, 'The request body is not a JSON object.')) unless ref $body eq 'HASH';
    return ($body, undef);
}

sub _creatio_record {
    my ($self, $entity, $id) = @_;
    my ($r) = grep { $_->{Id} eq lc $id } @{ $self->{store}{creatio}{ $CREATIO_LIST{$entity} } };
    return $r;
}

# Creatio's refusal of a write of these columns, or undef: the key only
# on create (and new), known columns, each value, then the required ones
# (present on create, never emptied)
sub _creatio_refusal {
    my ($self, $entity, $body, $creating) = @_;
    my $cols = $CREATIO{$entity};
    for my $c (sort keys %$body) {
        my $v = $body->{$c};
        if ($c eq 'Id') {
            return _odata_error(400, "The key property 'Id' cannot be changed.") unless $creating;
            return _odata_error(400, "Cannot convert the literal to the expected type 'Edm.Guid'.")
                unless _is_string($v) && $v =~ $GUID;
            return _odata_error(400, "A $entity with the Id '$v' already exists.")
                if $self->_creatio_record($entity, $v);
            next;
        }
        return _odata_error(400, "The property '$c' does not exist on type 'Terrasoft.Configuration.$entity'."
            . ' Make sure to only use property names that are defined by the type or mark the type as'
            . ' open type.') unless $cols->{$c};
        my $refusal = $self->_creatio_value_refusal($cols->{$c}, $c, $v);
        return $refusal if $refusal;
    }
    my ($missing) = grep { $cols->{$_}{required} && ($creating || exists $body->{$_})
        && !(defined $body->{$_} && length $body->{$_}) } sort keys %$cols;
    return _odata_error(400, "The column '$missing' of '$entity' is required.") if $missing;
    return undef;
}

# Creatio's refusal of one value, or undef: text columns are strings,
# never null ("" empties them); dates are UTC; lookups GUIDs, or null or
# the empty GUID for none
sub _creatio_value_refusal {
    my ($self, $spec, $c, $v) = @_;
    my $edm = $EDM{ $spec->{type} };
    return undef if !defined $v && $spec->{type} eq 'guid';
    return _odata_error(400, "A null value was found for the property named '$c', which has the expected type"
        . " '$edm\[Nullable=False]'. The expected type '$edm\[Nullable=False]' does not allow null values.")
        unless defined $v;
    return _odata_error(400, "Cannot convert a primitive value to the expected type '$edm'.")
        unless _is_string($v);
    return _odata_error(400, "The value of '$c' is longer than $spec->{max} characters.")
        if $spec->{max} && length $v > $spec->{max};
    return _odata_error(400, "Cannot convert the literal '$v' to the expected type '$edm' in UTC.")
        if $spec->{type} eq 'date' && !($v =~ /(?:Z|\+00:00)\z/ && defined _iso8601($v));
    return _odata_error(400, "Cannot convert the literal '$v' to the expected type '$edm'.")
        if $spec->{type} eq 'guid' && $v !~ $GUID;
    return _odata_error(400, "The Contact '$v' that '$c' refers to does not exist.")
        if $spec->{contact} && $v ne $EMPTY_GUID && !$self->_creatio_record('Contact', $v);
    return undef;
}

# GUIDs stored in lower case; an empty lookup is the empty GUID
sub _creatio_apply {
    my ($entity, $rec, $body) = @_;
    for my $c (keys %$body) {
        my $guid = $c eq 'Id' || $CREATIO{$entity}{$c}{type} eq 'guid';
        $rec->{$c} = $guid ? lc($body->{$c} // $EMPTY_GUID) : $body->{$c};
    }
}

sub _creatio_entity {
    my ($self, $entity, $rec) = @_;
    return { '@odata.context' => $self->url . "/0/odata/\$metadata#$entity/\$entity", %$rec };
}

# 201 with the created object (every column, empty ones as Creatio shows
# them) and its address
sub _creatio_create {
    my ($self, $req, $entity) = @_;
    my ($body, $refusal) = _creatio_body($req);
    $refusal //= $self->_creatio_refusal($entity, $body, 1);
    return $refusal if $refusal;
    my $cols = $CREATIO{$entity};
    my $rec = { Id => sprintf('c0ffee00-0000-4000-8000-%012x', $self->_next),
        map { $_ => $cols->{$_}{type} eq 'guid' ? $EMPTY_GUID : '' } keys %$cols };
    _creatio_apply($entity, $rec, $body);
    push @{ $self->{store}{creatio}{ $CREATIO_LIST{$entity} } }, $rec;
    return _odata_json(201, $self->_creatio_entity($entity, $rec),
        Location => $self->url . "/0/odata/$entity($rec->{Id})");
}

sub _creatio_read {
    my ($self, $entity, $id) = @_;
    my $rec = $self->_creatio_record($entity, $id)
        or return _odata_error(404, "No $entity with the Id '$id' was found.");
    return _odata_json(200, $self->_creatio_entity($entity, $rec));
}

sub _creatio_update {
    my ($self, $req, $entity, $id) = @_;
    my $rec = $self->_creatio_record($entity, $id)
        or return _odata_error(404, "No $entity with the Id '$id' was found.");
    my ($body, $refusal) = _creatio_body($req);
    $refusal //= $self->_creatio_refusal($entity, $body, 0);
    return $refusal if $refusal;
    _creatio_apply($entity, $rec, $body);
    return _response(204, 'No Content');
}

1;

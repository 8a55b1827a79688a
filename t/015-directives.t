#!/usr/bin/perl
# Every directive against the module's own command table: the directives
# are read from the C source (ngx_command_t tables under src/ngx), and each
# one allowed in a location must have a case below, so a new directive
# without a case fails this file.
#
# For each location-level directive with an effect seen through HTTP, both
# directions of inheritance: set at the http level to a value other than
# the default and seen by a server that does not set it; set again in a
# server, a location and a parent location, and seen there while the
# server without it still sees the http value.  Every override has a
# server of its own, so that it is the only value that differs from the
# http level: a directive that a location silently took from its parent
# fails here.  Directives whose effect is not observable cheaply are
# checked with "nginx -t" alone: accepted at the http, server and location
# level, and an invalid value refused at each level, naming the directive
# (for an unknown thread pool nginx's own message names the pool instead).
# A case may list more invalid values (more_invalid) and more valid ones
# (more_valid), checked at every level too; a value that is a list is the
# directive once for each element (a repeatable directive).
# Directives allowed only at the http level are refused in a server and in
# a location.

use strict;
use warnings;

use Test::More;
use Digest::SHA qw(hmac_sha256);
use HTTP::Tiny;
use MIME::Base64 qw(encode_base64 decode_base64);
use CrmTest;

my $PW = 'correct horse battery';
my $SRC = "$CrmTest::ROOT/ngx_crm_module/src/ngx";

my $t = CrmTest->new;
my $d = $t->dir;

# --- the files some values name -----------------------------------------------------

sub put {
    my ($file, $content) = @_;
    CrmTest::_write_file($file, $content);
    return $file;
}

sub random_hex { join '', map { sprintf '%02x', int rand 256 } 1 .. 32 }

my $JWT_B = random_hex();
my $CALLBACK_B = random_hex();
my $JWT_B_FILE = put("$d/jwt-b.secret", "$JWT_B\n");
my $CALLBACK_B_FILE = put("$d/callback-b.secret", "$CALLBACK_B\n");
my $SHORT_FILE = put("$d/short.secret", "0123456789abcdef\n");
my $SEAL_B_FILE = put("$d/seal-b.key", random_hex() . "\n");

# webhook sources' secrets: standard ones are "whsec_" and the base64 of
# 24..64 bytes, Shopify ones a client secret of at least 16 characters
sub whsec {
    my ($bytes) = @_;
    return 'whsec_' . encode_base64(join('', map { chr int rand 256 } 1 .. $bytes), '');
}
my $WH_STD = whsec(32);
my $WH_SHOP = 'shpss_' . random_hex();
my $WH_STD_FILE = put("$d/wh-std.secret", "$WH_STD\n");
my $WH_SHOP_FILE = put("$d/wh-shop.secret", "$WH_SHOP\n");
my %WH_BAD = (      # file => its text; the texts are never to be quoted
    'wh-empty.secret' => "\n \n\r\n",
    'wh-shop-15.secret' => "0123456789abcde\n",
    'wh-shop-space.secret' => "0123456789 abcdef\n",
    'wh-plain.secret' => random_hex() . "\n",
    'wh-url.secret' => 'whsec_' . ('-_-_' x 8) . "\n",            # base64url of 24 bytes
    'wh-16b.secret' => whsec(16) . "\n",
    'wh-65b.secret' => whsec(65) . "\n",
    'wh-2nd-bad.secret' => whsec(32) . "\nwhsec_not*base64\n",
    'wh-five.secret' => join('', map { whsec(32) . "\n" } 1 .. 5),
);
put("$d/$_", $WH_BAD{$_}) for keys %WH_BAD;
my %WH_GOOD = (
    'wh-four.secret' => whsec(24) . "\r\n\n" . whsec(32) . "  \n" . whsec(64) . "\n\n" . whsec(40) . "\n",
    'wh-64b.secret' => whsec(64) . "\n",                            # "==" padded
    'wh-25b-nopad.secret' => (whsec(25) =~ s/=+\z//r),             # no newline either
    'wh-shop-16.secret' => "0123456789abcdef\n",
);
put("$d/$_", $WH_GOOD{$_}) for keys %WH_GOOD;

# two edited copies of the pipeline, told apart by the first substage's
# description
sub pipeline_copy {
    my ($name, $marker) = @_;
    my $dir = $t->copy_pipeline("$d/$name");
    my $first = $t->read_json("$dir/stages.json")->[0];
    my $subs = $t->read_json("$dir/$first/substages.json");
    $subs->[0]{description} = $marker;
    $t->write_json("$dir/$first/substages.json", $subs);
    return $dir;
}
my $PIPE_HTTP = pipeline_copy('pipeline-http', 'the pipeline of the http level');
my $PIPE_OTHER = pipeline_copy('pipeline-other', 'the pipeline of the override');

my $DEAD_PORT = CrmTest::free_port($t->port, $t->pg_port);
my $GOOD_DSN = $t->dsn;
my $TARGET = 'https://allowed-http.example/app';

# --- what each observation needs ---------------------------------------------------

# a request to the server listening on $port, through the harness (so a 5xx
# is still counted)
sub on_port {
    my ($port, $code) = @_;
    local $t->{port} = $port;
    local $t->{ua} = HTTP::Tiny->new(max_redirect => 0, timeout => 10,
        agent => 'crm-test/1.0');
    return $code->();
}

sub at {
    my ($port, @req) = @_;
    return on_port($port, sub { $t->request(@req) });
}

my $ACC;        # an account every server's login can use
my $TOKEN_A;    # a token of the harness's own server (the http values)

sub login_at {
    my ($port, $email, %o) = @_;
    return at($port, 'POST', '/auth/login',
        json => { email => $email // $ACC->{email}, password => $PW }, %o);
}

sub token_at {
    my ($port, $email) = @_;
    my $r = login_at($port, $email);
    return $r->{status} == 200 ? $r->{json}{access_token} : undef;
}

# a token, valid on $port, of a new account (links count against a quota
# per account)
sub fresh_token_at {
    my ($port) = @_;
    my $acc = $t->register(password => $PW);
    return token_at($port, $acc->{email});
}

sub new_link_at {
    my ($port, $token, $target) = @_;
    return at($port, 'POST', '/affiliate/links',
        json => { target_url => $target // $TARGET }, token => $token);
}

# the value $get reads from a link that a new account creates on $port
sub link_on {
    my ($port, $get) = @_;
    my $tok = fresh_token_at($port) // return 'no token';
    my $r = new_link_at($port, $tok);
    return "create: $r->{status} $r->{content}" unless $r->{status} == 201;
    return $get->($r->{json});
}

# which key signed a token: A (the http level's) or B (the override's)
sub signed_with {
    my ($token) = @_;
    my ($h, $c, $s) = split /\./, $token // '';
    return 'no token' unless defined $s;
    for (['A', $t->jwt_secret], ['B', $JWT_B]) {
        return $_->[0]
            if b64url(hmac_sha256("$h.$c", $_->[1])) eq $s;
    }
    return 'neither';
}

# the identity provider's side: keys A and B, one JWKS each; tokens are
# for the http level's project and issuer unless a case changes them, and
# a token is accepted when /auth/me answers anything but 401 (404: not
# bootstrapped)
my $IDP_A_FILE = $t->write_jwks("$d/idp-a.json", 'a');
my $IDP_B_FILE = $t->write_jwks("$d/idp-b.json", 'b');
my $IDP_ISS_HTTP = 'https://issuer-http.example';

sub idp_accepts {
    my ($port, @variants) = @_;
    my @ok;
    for my $v (@variants) {
        my ($label, %o) = @$v;
        my $tok = $t->idp_token(key => $o{key} // 'a', subject => 'directives',
            claims => { iss => $IDP_ISS_HTTP, aud => 'proj-http', %{ $o{claims} || {} } });
        push @ok, $label if at($port, 'GET', '/auth/me', token => $tok)->{status} != 401;
    }
    return join(' ', @ok) || 'none';
}

# a webhook signed for $source with its scheme and secret: the status
sub webhook_at {
    my ($port, $source, $scheme, $secret) = @_;
    my $id = 'directives-' . random_hex();
    my ($body, %h);
    if ($scheme eq 'standard') {
        my $ts = time;
        $body = json_encode({ type => 'directives.test', data => { external_id => $id } });
        my $sig = encode_base64(hmac_sha256("$id.$ts.$body", decode_base64(substr $secret, 6)), '');
        %h = ('webhook-id' => $id, 'webhook-timestamp' => $ts, 'webhook-signature' => "v1,$sig");
    } else {
        $body = json_encode({ id => 1 + int rand 1e9, email => 'directives@example.com' });
        %h = ('X-Shopify-Hmac-Sha256' => encode_base64(hmac_sha256($body, $secret), ''),
            'X-Shopify-Topic' => 'customers/update', 'X-Shopify-Event-Id' => $id);
    }
    return at($port, 'POST', "/integrations/webhooks/$source", content => $body,
        headers => { 'Content-Type' => 'application/json', %h })->{status};
}

sub json_body_of {
    my ($bytes) = @_;
    my $head = '{"email":"nobody@example.com","password":"x","pad":"';
    my $tail = '"}';
    return $head . ('p' x ($bytes - length($head) - length($tail))) . $tail;
}

# CORS: the origin the http level allows (crm_cors_origins' case), for the
# other crm_cors_* cases, and a header of the answer to a preflight from it
my $CORS_ORIGIN = 'https://http.example';

sub cors_preflight_header {
    my ($port, $name) = @_;
    my $r = at($port, 'OPTIONS', '/auth/me', headers => {
        Origin => $CORS_ORIGIN, 'Access-Control-Request-Method' => 'GET' });
    return $r->{status} == 204 ? $r->{headers}{$name} // 'none' : "status $r->{status}";
}

# a value as test names show it: files without the test folder, at most
# 40 characters
sub shown {
    my ($v) = @_;
    $v = join '; ', @$v if ref $v;
    $v =~ s{\Q$d/\E}{}g;
    $v =~ s/^"(.*)"\z/$1/;
    $v = substr($v, 0, 37) . '...' if length $v > 40;
    return "'$v'";
}

# --- the cases ---------------------------------------------------------------------
#
# kind observed: http => the http level's value (not the default),
#   other => the overrides' value, observe => sub ($port) returning what a
#   client sees, seen_http / seen_other => what it returns for each.
# kind accepted: accepted at every level, effect not observable here
#   (why => the reason).  Their "nginx -t" checks say so in their names.
# kind handler: the location's content handler, allowed only in a location
#   and not inherited by nested locations.
# Every observed and accepted case also has invalid => a value "nginx -t"
# refuses, refusal => what it says.

my @CASES = (
    {
        name => 'crm_database', kind => 'observed',
        http => qq{"$GOOD_DSN"},
        other => qq{"host=127.0.0.1 port=$DEAD_PORT dbname=crm user=crm"},
        observe => sub { 'login ' . login_at($_[0], undef, allow_503 => 1)->{status} },
        seen_http => 'login 200', seen_other => 'login 503',
        invalid => '"host=127.0.0.1 port=x bogus_key=1"',
        refusal => qr/invalid "crm_database": invalid connection option "bogus_key"/,
    },
    {
        name => 'crm_database_replica', kind => 'accepted',
        why => 'only a streaming replica shows it (t/385 builds one with pg_basebackup)',
        other => qq{"$GOOD_DSN" max_lag=2s},
        invalid => qq{"$GOOD_DSN" max_lag=soon},
        refusal => qr/invalid "crm_database_replica" parameter "max_lag=soon"/,
        more_valid => [qq{"$GOOD_DSN"}, qq{"$GOOD_DSN" max_lag=0}],
        more_invalid => [
            [qq{"$GOOD_DSN" lag=1s}, qr/invalid "crm_database_replica" parameter "lag=1s"/],
            ['"host=127.0.0.1 port=x bogus_key=1"',
                qr/invalid "crm_database_replica": invalid connection option "bogus_key"/],
            ['""', qr/"crm_database_replica" directive needs a connection string/],
        ],
    },
    {
        name => 'crm_db_connect_timeout', kind => 'accepted',
        why => "libpq's own connect_timeout: only a server that does not answer shows it",
        other => '4s', invalid => '1s',
        refusal => qr/"crm_db_connect_timeout" must be at least 2s/,
    },
    {
        name => 'crm_db_statement_timeout', kind => 'observed',
        http => '7s', other => '9s',
        # a trigger records the setting of the session that inserts an account
        observe => sub {
            my $email = $t->unique_email('statement-timeout');
            my $r = at($_[0], 'POST', '/auth/register', json => { email => $email, password => $PW });
            return "register: $r->{status} $r->{content}" unless $r->{status} == 201;
            return 'statement_timeout '
                . $t->psql("SELECT statement_timeout FROM public.seen_settings WHERE email = '$email'");
        },
        seen_http => 'statement_timeout 7s', seen_other => 'statement_timeout 9s',
        invalid => '0', refusal => qr/"crm_db_statement_timeout" must not be 0/,
    },
    {
        name => 'crm_thread_pool', kind => 'accepted',
        why => 'which pool runs a call is not visible from outside',
        other => 'crm_other', invalid => 'undeclared',
        # nginx's own check, after the configuration is read: it names the
        # pool, not the directive
        refusal => qr/unknown thread pool "undeclared"/,
    },
    {
        name => 'crm_slow_thread_pool', kind => 'accepted',
        why => 'which pool runs a call is not visible from outside',
        other => 'crm_other', invalid => 'undeclared',
        refusal => qr/unknown thread pool "undeclared"/,
    },
    {
        name => 'crm_queue_timeout', kind => 'accepted',
        why => 'only a saturated pool shows it (t/170 saturates one)',
        # no range is checked: a value that is not a time is the refusal
        other => '500ms', invalid => 'soon',
        refusal => qr/"crm_queue_timeout" directive invalid value/,
    },
    {
        name => 'crm_jwt_secret_file', kind => 'observed',
        http => "$d/jwt.secret", other => $JWT_B_FILE,
        observe => sub {
            my $r = login_at($_[0]);
            return "login: $r->{status}" unless $r->{status} == 200;
            return 'signs with ' . signed_with($r->{json}{access_token})
                . ', a token signed with A: ' . at($_[0], 'GET', '/auth/me', token => $TOKEN_A)->{status};
        },
        seen_http => 'signs with A, a token signed with A: 200',
        seen_other => 'signs with B, a token signed with A: 401',
        invalid => $SHORT_FILE,
        refusal => qr/"crm_jwt_secret_file" file "\Q$SHORT_FILE\E" holds 16 bytes/,
    },
    {
        name => 'crm_jwt_ttl', kind => 'observed',
        http => '2h', other => '30m',
        observe => sub {
            my $r = login_at($_[0]);
            return "login: $r->{status}" unless $r->{status} == 200;
            my (undef, $c) = $t->decode_jwt($r->{json}{access_token});
            return "expires_in $r->{json}{expires_in}, exp - iat " . ($c->{exp} - $c->{iat});
        },
        seen_http => 'expires_in 7200, exp - iat 7200',
        seen_other => 'expires_in 1800, exp - iat 1800',
        invalid => '8d', refusal => qr/"crm_jwt_ttl" must be between 1m and 7d/,
    },
    {
        name => 'crm_jwt_issuer', kind => 'observed',
        http => 'issuer-http', other => 'issuer-other',
        observe => sub {
            my $r = login_at($_[0]);
            return "login: $r->{status}" unless $r->{status} == 200;
            my (undef, $c) = $t->decode_jwt($r->{json}{access_token});
            return "iss $c->{iss}, own token: "
                . at($_[0], 'GET', '/auth/me', token => $r->{json}{access_token})->{status}
                . ', the http issuer\'s token: '
                . at($_[0], 'GET', '/auth/me', token => $TOKEN_A)->{status};
        },
        seen_http => "iss issuer-http, own token: 200, the http issuer's token: 200",
        seen_other => "iss issuer-other, own token: 200, the http issuer's token: 401",
        invalid => 'x' x 128, refusal => qr/"crm_jwt_issuer" must be shorter than/,
    },
    {
        name => 'crm_max_body_size', kind => 'observed',
        http => '2k', other => '8k',
        observe => sub {
            my $port = shift;
            return join ' ', map {
                my $s = at($port, 'POST', '/auth/login', content => json_body_of($_),
                    headers => { 'Content-Type' => 'application/json' })->{status};
                "$_ B: " . ($s == 413 ? '413' : 'read');
            } 1500, 4000, 9000;
        },
        seen_http => '1500 B: read 4000 B: 413 9000 B: 413',
        seen_other => '1500 B: read 4000 B: read 9000 B: 413',
        invalid => '17m', refusal => qr/"crm_max_body_size" must be between 1k and 16m/,
    },
    {
        name => 'crm_max_json_depth', kind => 'observed',
        http => '4', other => '12',
        observe => sub {
            my $r = at($_[0], 'POST', '/auth/login', headers => { 'Content-Type' => 'application/json' },
                content => '{"email":"nobody@example.com","password":' . ('[' x 30) . (']' x 30) . '}');
            return "$r->{status} " . ($r->{json}{detail} // $r->{content});
        },
        seen_http => '400 JSON nesting is deeper than 4',
        seen_other => '400 JSON nesting is deeper than 12',
        invalid => '300', refusal => qr/"crm_max_json_depth" must be between 1 and 256/,
    },
    {
        name => 'crm_pipeline', kind => 'observed',
        http => qq{"$PIPE_HTTP"}, other => qq{"$PIPE_OTHER"},
        observe => sub {
            my $tok = token_at($_[0]) // return 'no token';
            my $r = at($_[0], 'GET', '/pipeline/stages', token => $tok);
            return "stages: $r->{status}" unless $r->{status} == 200 && ref $r->{json} eq 'ARRAY';
            return $r->{json}[0]{substages}[0]{description};
        },
        seen_http => 'the pipeline of the http level',
        seen_other => 'the pipeline of the override',
        invalid => qq{"$d/no-such-pipeline"}, refusal => qr/invalid "crm_pipeline"/,
    },
    {
        name => 'crm_callback_secret_file', kind => 'observed',
        http => "$d/callback.secret", other => $CALLBACK_B_FILE,
        # a well signed install of an unknown link: anything but 401
        observe => sub {
            my $port = shift;
            my @ok = grep {
                my $key = $_ eq 'A' ? $t->callback_secret : $CALLBACK_B;
                on_port($port, sub { $t->callback('/callbacks/install',
                    { shop_domain => 'directives.myshopify.com', affiliate_link_id => $t->make_link_id },
                    secret => $key) })->{status} != 401;
            } qw(A B);
            return 'accepts ' . (join(' ', @ok) || 'neither');
        },
        seen_http => 'accepts A', seen_other => 'accepts B',
        invalid => $SHORT_FILE,
        refusal => qr/"crm_callback_secret_file" file "\Q$SHORT_FILE\E" holds 16 bytes/,
    },
    {
        name => 'crm_public_url', kind => 'observed',
        http => 'https://go-http.example/base/', other => 'https://go-other.example',
        observe => sub {
            link_on($_[0], sub { (my $u = $_[0]{tracking_url}) =~ s{/[0-9A-Za-z]{12}\z}{/<id>}; $u });
        },
        seen_http => 'https://go-http.example/base/r/<id>',
        seen_other => 'https://go-other.example/r/<id>',
        invalid => 'https://go.example/?x=1', refusal => qr/invalid "crm_public_url"/,
    },
    {
        name => 'crm_default_install_cents', kind => 'observed',
        http => '777', other => '1234',
        observe => sub { link_on($_[0], sub { "install_cents $_[0]{commission}{install_cents}" }) },
        seen_http => 'install_cents 777', seen_other => 'install_cents 1234',
        invalid => '100000001',
        refusal => qr/"crm_default_install_cents" must be between 0 and 100000000/,
    },
    {
        name => 'crm_default_conversion_bps', kind => 'observed',
        http => '250', other => '4321',
        observe => sub { link_on($_[0], sub { "conversion_bps $_[0]{commission}{conversion_bps}" }) },
        seen_http => 'conversion_bps 250', seen_other => 'conversion_bps 4321',
        invalid => '10001',
        refusal => qr/"crm_default_conversion_bps" must be between 0 and 10000/,
    },
    {
        name => 'crm_currency', kind => 'observed',
        http => 'EUR', other => 'GBP',
        observe => sub { link_on($_[0], sub { "currency $_[0]{commission}{currency}" }) },
        seen_http => 'currency EUR', seen_other => 'currency GBP',
        invalid => 'usd', refusal => qr/"crm_currency" must be an ISO 4217 code/,
    },
    {
        name => 'crm_redirect_allow_hosts', kind => 'observed',
        http => 'allowed-http.example *.http.example', other => 'allowed-other.example',
        observe => sub {
            my $port = shift;
            my $tok = fresh_token_at($port) // return 'no token';
            my @ok = grep { new_link_at($port, $tok, "https://$_/app")->{status} == 201 }
                qw(allowed-http.example shop.http.example allowed-other.example);
            return 'allows ' . (join(' ', @ok) || 'none');
        },
        seen_http => 'allows allowed-http.example shop.http.example',
        seen_other => 'allows allowed-other.example',
        invalid => 'Upper.Example',
        refusal => qr/invalid host "Upper\.Example" of "crm_redirect_allow_hosts"/,
    },
    {
        name => 'crm_link_create_limit', kind => 'observed',
        http => '3 1h', other => '5 1h',
        observe => sub {
            my $port = shift;
            my $tok = fresh_token_at($port) // return 'no token';
            my ($n, $r) = (0);
            while ($n < 8) {
                $r = new_link_at($port, $tok);
                last unless $r->{status} == 201;
                $n++;
            }
            return "$n links, then $r->{status}"
                . (($r->{headers}{'retry-after'} // '') =~ /^\d+\z/ ? ' with Retry-After' : '');
        },
        seen_http => '3 links, then 429 with Retry-After',
        seen_other => '5 links, then 429 with Retry-After',
        invalid => '0 1h',
        refusal => qr/"crm_link_create_limit": the links must be between 1 and 1000000/,
    },
    {
        name => 'crm_idp_keys_file', kind => 'observed',
        http => $IDP_A_FILE, other => $IDP_B_FILE,
        observe => sub { 'trusts ' . idp_accepts($_[0], map { [$_, key => lc $_] } qw(A B)) },
        seen_http => 'trusts A', seen_other => 'trusts B',
        invalid => $SHORT_FILE,
        refusal => qr/invalid "crm_idp_keys_file" file "\Q$SHORT_FILE\E": not a JSON document/,
    },
    {
        name => 'crm_idp_project_id', kind => 'observed',
        http => 'proj-http', other => 'proj-other',
        observe => sub {
            'audience ' . idp_accepts($_[0], map { [$_, claims => { aud => $_ }] } qw(proj-http proj-other));
        },
        seen_http => 'audience proj-http', seen_other => 'audience proj-other',
        invalid => '"has space"', refusal => qr/"crm_idp_project_id" must be at most 64/,
    },
    {
        name => 'crm_idp_issuer', kind => 'observed',
        http => $IDP_ISS_HTTP, other => 'https://issuer-other.example',
        observe => sub {
            'issuer ' . idp_accepts($_[0],
                map { [$_, claims => { iss => $_ }] } $IDP_ISS_HTTP, 'https://issuer-other.example');
        },
        seen_http => "issuer $IDP_ISS_HTTP", seen_other => 'issuer https://issuer-other.example',
        invalid => '"https://x.example/ y"', refusal => qr/"crm_idp_issuer" must be shorter/,
    },
    {
        name => 'crm_credentials_key_file', kind => 'accepted',
        why => 'which key sealed a CRM connection shows only in the database (t/410)',
        other => $SEAL_B_FILE, invalid => $SHORT_FILE,
        refusal => qr/invalid "crm_credentials_key_file" file "\Q$SHORT_FILE\E": a key is 64 hexadecimal digits/,
    },
    {
        name => 'crm_outbound_allow', kind => 'accepted',
        why => 'needs a provider stand-in; t/410 observes it',
        other => '192.168.0.0/16 ::1', invalid => '10.0.0.1/8',
        refusal => qr{invalid range "10\.0\.0\.1/8" of "crm_outbound_allow": host bits set},
    },
    {
        name => 'crm_outbound_connect_timeout', kind => 'accepted',
        why => 'needs a provider that does not answer; t/410 observes the total timeout',
        other => '2s', invalid => '50ms',
        refusal => qr/"crm_outbound_connect_timeout" must be between 100ms and 60s/,
    },
    {
        name => 'crm_outbound_timeout', kind => 'accepted',
        why => 'needs a slow provider stand-in; t/410 observes it',
        other => '30s', invalid => '10m',
        refusal => qr/"crm_outbound_timeout" must be at least "crm_outbound_connect_timeout" and at most 5m/,
    },
    {
        name => 'crm_klaviyo_url', kind => 'accepted',
        why => 'needs a provider stand-in; t/410 observes it',
        other => 'https://klaviyo.example', invalid => 'https://k.example/?x=1',
        refusal => qr/invalid "crm_klaviyo_url" "https:\/\/k\.example\/\?x=1"/,
    },
    {
        name => 'crm_cors_origins', kind => 'observed',
        http => 'https://http.example', other => 'https://*.other.example',
        observe => sub {
            my $port = shift;
            return join ', ', map {
                my $r = at($port, 'GET', '/healthz', headers => { Origin => $_ });
                "$_ " . ($r->{headers}{'access-control-allow-origin'} ? 'allowed' : 'no');
            } 'https://http.example', 'https://a.other.example';
        },
        seen_http => 'https://http.example allowed, https://a.other.example no',
        seen_other => 'https://http.example no, https://a.other.example allowed',
        invalid => 'https://a.example/path',
        refusal => qr{invalid origin "https://a\.example/path"},
        more_invalid => [
            ['ftp://a.example', qr{invalid origin "ftp://a\.example"}],
            ['https://', qr{invalid origin "https://"}],
            ['https://a.example:99999', qr{invalid origin "https://a\.example:99999"}],
            ['https://a.example https://A.example', qr{duplicate origin "https://A\.example"}],
            ['* https://a.example', qr/"\*" cannot be combined with other origins/],
        ],
        more_valid => ['*', 'http://127.0.0.1:8080', 'https://a.example https://b.example'],
    },
    {
        name => 'crm_cors_methods', kind => 'observed',
        http => 'GET', other => 'GET POST',
        observe => sub { cors_preflight_header(shift, 'access-control-allow-methods') },
        seen_http => 'GET', seen_other => 'GET, POST',
        invalid => 'FOO', refusal => qr/unknown method "FOO"/,
        more_invalid => [['get', qr/unknown method "get"/],
            ['GET GET', qr/"GET" is listed twice/]],
    },
    {
        name => 'crm_cors_headers', kind => 'observed',
        http => 'Authorization', other => 'Authorization X-Trace',
        observe => sub { cors_preflight_header(shift, 'access-control-allow-headers') },
        seen_http => 'Authorization', seen_other => 'Authorization, X-Trace',
        invalid => '"x(y)"', refusal => qr/invalid header name "x\(y\)"/,
        more_invalid => [['"Bad Header"', qr/invalid header name "Bad Header"/],
            ['a A', qr/"A" is listed twice/]],
    },
    {
        name => 'crm_cors_expose_headers', kind => 'observed',
        http => 'ETag', other => 'ETag X-Request-Id',
        observe => sub {
            my $r = at(shift, 'GET', '/healthz', headers => { Origin => $CORS_ORIGIN });
            return $r->{headers}{'access-control-expose-headers'} // 'none';
        },
        seen_http => 'ETag', seen_other => 'ETag, X-Request-Id',
        invalid => '"x,y"', refusal => qr/invalid header name "x,y"/,
    },
    {
        name => 'crm_cors_credentials', kind => 'observed',
        http => 'on', other => 'off',
        observe => sub {
            my $r = at(shift, 'GET', '/healthz', headers => { Origin => $CORS_ORIGIN });
            return $r->{headers}{'access-control-allow-credentials'} // 'none';
        },
        seen_http => 'true', seen_other => 'none',
        invalid => 'yes', refusal => qr/invalid value "yes" in "crm_cors_credentials"/,
    },
    {
        name => 'crm_cors_max_age', kind => 'observed',
        http => '1m', other => '2h',
        observe => sub { cors_preflight_header(shift, 'access-control-max-age') },
        seen_http => '60', seen_other => '7200',
        invalid => 'soon', refusal => qr/"crm_cors_max_age" directive invalid value/,
    },
    {
        name => 'crm_webhook_source', kind => 'observed',
        http => "hooks_http standard $WH_STD_FILE", other => "hooks_other shopify $WH_SHOP_FILE",
        # a level that names sources has those only: its parent's are unknown
        observe => sub {
            my $port = shift;
            return join ', ', map { "$_->[0] " . webhook_at($port, @$_) }
                [hooks_http => standard => $WH_STD], [hooks_other => shopify => $WH_SHOP];
        },
        seen_http => 'hooks_http 202, hooks_other 404',
        seen_other => 'hooks_http 404, hooks_other 202',
        invalid => "hooks_x hmac $WH_STD_FILE",
        refusal => qr/invalid "crm_webhook_source" "hooks_x" \(file "\Q$WH_STD_FILE\E"\): unknown scheme "hmac"/,
        more_invalid => [
            ["hooks_x Standard $WH_STD_FILE", qr/unknown scheme "Standard"/],
            ["hooks_x standard $d/no-such.secret",
                qr/cannot open "crm_webhook_source" "\Q$d\/no-such.secret\E"/],
            ["hooks_x standard $d/wh-empty.secret",
                qr/"hooks_x" \(file "[^"]*wh-empty.secret"\): the secret file holds no secret/],
            ["hooks_x shopify $d/wh-shop-15.secret",
                qr/wh-shop-15.secret"\): secret 1: a Shopify client secret has 16 to 256 characters, not 15/],
            ["hooks_x shopify $d/wh-shop-space.secret",
                qr/secret 1: holds a character that is not printable ASCII/],
            ["hooks_x standard $d/wh-plain.secret",
                qr/"hooks_x" \(file "[^"]*wh-plain.secret"\): secret 1: must be "whsec_" and base64/],
            ["hooks_x standard $WH_SHOP_FILE", qr/secret 1: must be "whsec_" and base64/],
            ["hooks_x standard $d/wh-url.secret", qr/secret 1: must be "whsec_" and base64/],
            ["hooks_x standard $d/wh-16b.secret", qr/secret 1: decodes to 16 bytes, 24 to 64 are required/],
            ["hooks_x standard $d/wh-65b.secret", qr/secret 1: decodes to 65 bytes, 24 to 64 are required/],
            ["hooks_x standard $d/wh-2nd-bad.secret", qr/secret 2: must be "whsec_" and base64/],
            ["hooks_x standard $d/wh-five.secret",
                qr/"hooks_x" \(file "[^"]*wh-five.secret"\): more than 4 secrets/],
            [["hooks_x standard $WH_STD_FILE", "hooks_x shopify $WH_SHOP_FILE"],
                qr/duplicate webhook source "hooks_x"/],
            ["Hooks standard $WH_STD_FILE",
                qr/the source name may hold lower-case letters, digits, "_" and "-" only/],
            ["hooks.x standard $WH_STD_FILE",
                qr/the source name may hold lower-case letters, digits, "_" and "-" only/],
            [('h' x 33) . " standard $WH_STD_FILE", qr/the source name must have 1 to 32 characters/],
            [qq{"" standard $WH_STD_FILE}, qr/the source name must have 1 to 32 characters/],
            ['hooks_x standard', qr/invalid number of arguments in "crm_webhook_source" directive/],
        ],
        secrets => [$WH_STD, $WH_SHOP, map { split /\s+/ } values %WH_BAD],
        more_valid => [
            "hooks_x standard $d/wh-four.secret",
            "hooks_x standard $d/wh-64b.secret",
            "hooks_x standard $d/wh-25b-nopad.secret",
            "hooks_x shopify $d/wh-shop-16.secret",
            ('h' x 32) . " standard $WH_STD_FILE",
            ["a-0_9 standard $WH_STD_FILE", "b shopify $WH_SHOP_FILE", "c shopify $WH_STD_FILE"],
        ],
    },
    { name => 'crm_api', kind => 'handler' },
    { name => 'crm_redirect', kind => 'handler' },
    { name => 'crm_metrics', kind => 'handler' },
);

my %CASE = map { $_->{name} => $_ } @CASES;

# --- the command table(s) in the source ----------------------------------------------

# name => { table, file, flags => { NGX_HTTP_MAIN_CONF => 1, ... } }
sub source_directives {
    my %dir;
    for my $file (sort glob "$SRC/*.c") {
        my $text = CrmTest::_slurp($file);
        while ($text =~ /ngx_command_t\s+(\w+)\s*\[\s*\]\s*=\s*\{(.*?)ngx_null_command/sg) {
            my ($table, $body) = ($1, $2);
            while ($body =~ /\{\s*ngx_string\("([^"]+)"\)\s*,\s*([^,]+?)\s*,/g) {
                my ($name, $flags) = ($1, $2);
                $dir{$name} = { table => $table, file => $file =~ s{.*/}{}r,
                    flags => { map { $_ => 1 } split /\s*\|\s*/, $flags } };
            }
        }
    }
    return %dir;
}

my %SRC_DIR = source_directives();
my @LOC = sort grep { $SRC_DIR{$_}{flags}{NGX_HTTP_LOC_CONF} } keys %SRC_DIR;
my @MAIN_ONLY = sort grep {
    my $f = $SRC_DIR{$_}{flags};
    $f->{NGX_HTTP_MAIN_CONF} && !$f->{NGX_HTTP_SRV_CONF} && !$f->{NGX_HTTP_LOC_CONF};
} keys %SRC_DIR;

ok(exists $SRC_DIR{crm_api} && exists $SRC_DIR{crm_jwt_ttl} && keys %SRC_DIR >= 20,
    'the command table is read from the source: ' . scalar(keys %SRC_DIR) . ' directives')
    or diag("found: @{[ sort keys %SRC_DIR ]}");

for my $name (@LOC) {
    ok($CASE{$name}, "$name (allowed in a location, $SRC_DIR{$name}{file}) has a case in this file");
}
for my $name (sort keys %SRC_DIR) {
    my $f = $SRC_DIR{$name}{flags};
    ok($f->{NGX_HTTP_LOC_CONF} || grep({ $_ eq $name } @MAIN_ONLY),
        "$name: allowed in a location or only at the http level (both are checked here)");
}
for my $c (@CASES) {
    my $f = ($SRC_DIR{ $c->{name} } // {})->{flags};
    ok($f, "$c->{name}: the case's directive is in the source") or next;
    if ($c->{kind} eq 'handler') {
        ok($f->{NGX_HTTP_LOC_CONF} && !$f->{NGX_HTTP_SRV_CONF} && !$f->{NGX_HTTP_MAIN_CONF},
            "$c->{name}: a handler, allowed only in a location");
    } else {
        ok($f->{NGX_HTTP_MAIN_CONF} && $f->{NGX_HTTP_SRV_CONF} && $f->{NGX_HTTP_LOC_CONF},
            "$c->{name}: allowed at the http, server and location level");
    }
    if ($c->{kind} eq 'observed') {
        isnt($c->{seen_http}, $c->{seen_other}, "$c->{name}: the case tells the two values apart");
    }
}

# --- nginx -t: every level ---------------------------------------------------------
#
# A harness object that is never started: its nginx.conf is rewritten for
# each check (its own error log, so nothing of this reaches the running
# server's log).

my $chk = CrmTest->new(main_extra => 'thread_pool crm_other threads=1;');
my $CHK_PORT = CrmTest::free_port();

sub nginx_t { $chk->nginx_t(@_) }

# the configuration options that put "$name $value;" for each [$name,
# $value] at a level
sub placed {
    my ($level, @set) = @_;
    my @lines = map { my $n = $_->[0]; map { "$n $_;" } ref $_->[1] ? @{ $_->[1] } : $_->[1] } @set;
    my $lines = join ' ', @lines;
    if ($level eq 'http') {
        my @many = grep { ref $_->[1] } @set;
        return (conf => { map { @$_ } grep { !ref $_->[1] } @set },
            http_extra => join '', map { my $n = $_->[0]; map { "    $n $_;\n" } @{ $_->[1] } } @many);
    }
    return (http_extra => "    server {\n        listen 127.0.0.1:$CHK_PORT;\n"
        . "        $lines\n        location / { crm_api; }\n    }\n") if $level eq 'server';
    return (server_extra => "        location /level/ { $lines crm_api; }\n");
}

my ($ok, $out) = nginx_t();
ok($ok, 'nginx -t passes the harness configuration') or diag($out);

my @LEVELS = qw(http server location);
my @SETTABLE = grep { $_->{kind} ne 'handler' } @CASES;

# every valid value at once, level by level; one by one only if that fails
my %all_pass;
for my $level (@LEVELS) {
    ($ok, $out) = nginx_t(placed($level, map { [$_->{name}, $_->{other}] } @SETTABLE));
    ok($ok, "nginx -t passes all of them together at the $level level") or diag($out);
    $all_pass{$level} = $ok;
}

for my $c (@SETTABLE) {
    my $note = $c->{kind} eq 'accepted'
        ? " (accepted at every level, effect not observable here: $c->{why})" : '';
    for my $level (@LEVELS) {
        my $what = "$c->{name} at the $level level";
        ($ok, $out) = $all_pass{$level} ? (1, '')
            : nginx_t(placed($level, [$c->{name}, $c->{other}]));
        ok($ok, "nginx -t passes $c->{name} " . shown($c->{other}) . " at the $level level$note")
            or diag($out);

        for my $v (@{ $c->{more_valid} || [] }) {
            ($ok, $out) = nginx_t(placed($level, [$c->{name}, $v]));
            ok($ok, "nginx -t passes $c->{name} " . shown($v) . " at the $level level") or diag($out);
        }

        # the first one's checks are named by the level only
        for my $bad ([$c->{invalid}, $c->{refusal}, $what], @{ $c->{more_invalid} || [] }) {
            my ($invalid, $refusal, $named) = @$bad;
            my $refused = "$c->{name} " . shown($invalid) . " at the $level level";
            $named //= $refused;
            ($ok, $out) = nginx_t(placed($level, [$c->{name}, $invalid]));
            ok(!$ok, "nginx -t refuses $refused") or diag($out);
            like($out, $refusal, "... saying why: $named");
            unlike($out, qr/segfault|Sanitizer|signal/i, "... without crashing: $named");
            my @quoted = grep { length > 8 && index($out, $_) >= 0 } @{ $c->{secrets} || [] };
            is(scalar @quoted, 0, "... quoting no secret: $named") if $c->{secrets};
        }
    }
}

# the handlers belong to a location
for my $c (grep { $_->{kind} eq 'handler' } @CASES) {
    for my $level (qw(http server)) {
        ($ok, $out) = nginx_t(placed($level, [$c->{name}, '']));
        ok(!$ok, "nginx -t refuses $c->{name} at the $level level") or diag($out);
        like($out, qr/"\Q$c->{name}\E" directive is not allowed here/,
            "... not allowed here: $c->{name} at the $level level");
    }
}

# the http level's own: refused in a server and in a location (the place is
# checked before the arguments)
for my $name (@MAIN_ONLY) {
    for my $level (qw(server location)) {
        ($ok, $out) = nginx_t(placed($level, [$name, 'x']));
        ok(!$ok, "nginx -t refuses $name (http level only) at the $level level") or diag($out);
        like($out, qr/"\Q$name\E" directive is not allowed here/,
            "... not allowed here: $name at the $level level");
    }
}

# --- the running server ------------------------------------------------------------

# the servers: one that sets nothing, and for each observed case one that
# sets it at the server level, one in its location, one in a parent
# location (the API in a nested location that does not set it)
my %taken = map { $_ => 1 } ($t->port, $t->pg_port, $DEAD_PORT, $CHK_PORT);
sub next_port {
    my $p = CrmTest::free_port(keys %taken);
    $taken{$p} = 1;
    return $p;
}

my $INHERIT = next_port();
my $NESTED_API = next_port();
my $servers = <<"EOF";
    server {
        listen 127.0.0.1:$INHERIT;
        location / { crm_api; }
    }
    server {
        listen 127.0.0.1:$NESTED_API;
        location / {
            crm_api;
            location /auth/ { }
        }
    }
EOF

my %VARIANT = (
    server => 'set in a server, seen by its location',
    location => 'set in the location',
    parent => 'set in a parent location, seen by a nested one',
);
my @VARIANTS = qw(server location parent);

for my $c (grep { $_->{kind} eq 'observed' } @CASES) {
    my $line = "$c->{name} $c->{other};";
    my %p = map { $_ => next_port() } @VARIANTS;
    $c->{ports} = \%p;
    $servers .= <<"EOF";
    server {
        listen 127.0.0.1:$p{server};
        $line
        location / { crm_api; }
    }
    server {
        listen 127.0.0.1:$p{location};
        location / { $line crm_api; }
    }
    server {
        listen 127.0.0.1:$p{parent};
        location / {
            $line
            location ~ ^/ { crm_api; }
        }
    }
EOF
}

my %edge = $t->edge_config;
$t->start_db;
$t->write_config(
    main_extra => 'thread_pool crm_other threads=1;',
    conf => { map { $_->{name} => $_->{http} } grep { $_->{kind} eq 'observed' } @CASES },
    http_extra => $edge{http_extra} . $servers,
    server_extra => $edge{server_extra},
);
$t->start_nginx;

$t->psql(<<'EOF');
CREATE TABLE public.seen_settings (email text, statement_timeout text);
CREATE FUNCTION public.seen_settings_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.seen_settings VALUES (NEW.email, current_setting('statement_timeout'));
    RETURN NEW;
END $$;
CREATE TRIGGER seen_settings AFTER INSERT ON crm.accounts
    FOR EACH ROW EXECUTE FUNCTION public.seen_settings_note();
EOF

$ACC = $t->register(password => $PW);
$TOKEN_A = $t->login($ACC->{email}, $PW);

for my $c (grep { $_->{kind} eq 'observed' } @CASES) {
    is($c->{observe}->($INHERIT), $c->{seen_http},
        "$c->{name} " . shown($c->{http}) . ' at the http level: a server that does not set it has it');
    for my $v (@VARIANTS) {
        is($c->{observe}->($c->{ports}{$v}), $c->{seen_other},
            "$c->{name} " . shown($c->{other}) . ": $VARIANT{$v}");
    }
    is($c->{observe}->($t->port), $c->{seen_http},
        "$c->{name}: ... and the harness's server still has the http value");
}

# --- the handlers: in their own location, not inherited by a nested one ------------

my $r = at($NESTED_API, 'GET', '/healthz');
is($r->{status}, 200, 'crm_api: its own location answers the API (GET /healthz 200)')
    or diag("$r->{status} $r->{content}");
$r = at($NESTED_API, 'GET', '/auth/me');
is($r->{status}, 404, 'crm_api: a nested location without it does not (GET /auth/me: 404, not 401)')
    or diag("$r->{status} $r->{content}");

my $tok = $t->login($ACC->{email}, $PW);
$r = $t->post_json('/affiliate/links', { target_url => $TARGET }, token => $tok);
is($r->{status}, 201, 'a link for the redirect') or diag("$r->{status} $r->{content}");
my $id = $r->{json}{affiliate_link_id} // 'none';
$r = $t->get("/r/$id");
is($r->{status}, 302, 'crm_redirect: its location answers GET /r/{id} with 302')
    or diag("$r->{status} $r->{content}");
like($r->{headers}{location} // '', qr/^\Q$TARGET\E/, '... to the link\'s target');

$r = $t->get('/metrics');
is($r->{status}, 200, 'crm_metrics: its location answers 200');
like($r->{content}, qr/^crm_\w+/m, '... with the crm_ counters');

$t->psql('DROP TRIGGER seen_settings ON crm.accounts; DROP FUNCTION public.seen_settings_note(); '
    . 'DROP TABLE public.seen_settings');

$t->done;

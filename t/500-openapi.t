#!/usr/bin/perl
# The API reference, docs/openapi.json: it documents every route of the
# module's table (src/service/crm_api.c) and nothing else besides the
# locations conf/crm.conf adds (the redirect, /metrics, the reference
# itself); each operation takes the credential and the body its endpoint
# really takes (read from the crm_endpoint_t definitions); it is a valid
# OpenAPI 3.1 document (the validator and Ajv from docs/node_modules,
# which ./build.sh build installs), formatted as JSON.stringify(doc, null,
# 2) writes it, of the module's version, its schemas valid JSON Schema
# and its examples valid against them; and the shipped conf/crm.conf
# serves it, the page and the page's assets.  Last, the contract itself:
# real answers of the gateway to every operation, successes and
# failures, must be documented statuses whose bodies match the
# documented schemas (every schema is closed, so a field the code sends
# that the document lacks fails, as does a missing required one).

use strict;
use warnings;

use File::Copy qw(copy);
use File::Path qw(make_path);
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use POSIX ();
use Digest::SHA qw(hmac_sha256 hmac_sha256_base64);
use Test::More;
use CrmTest;
use MockCrm;

my $ROOT = $CrmTest::ROOT;
my $DOCS = "$ROOT/docs";
my $JSON = JSON::PP->new->utf8->canonical;

sub slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or die "$file: $!";
    local $/;
    return scalar <$fh>;
}

# --- (a) the document -----------------------------------------------------

my $text = slurp("$DOCS/openapi.json");
my $doc = eval { $JSON->decode($text) };
ok(ref $doc eq 'HASH', 'docs/openapi.json is a JSON object') or BAIL_OUT($@);
is($doc->{openapi}, '3.1.0', 'openapi: 3.1.0');

my ($version) = slurp("$ROOT/ngx_crm_module/src/service/crm_call.h")
    =~ /^#define\s+CRM_VERSION\s+"([^"]+)"/m;
is($doc->{info}{version}, $version, "info.version is CRM_VERSION ($version)");
is_deeply($doc->{servers}, [{ url => '/' }], 'servers: [{url: "/"}]');

my @METHODS = qw(get put post delete patch head options trace);

# every operation: [method, path, operation]
my @ops;
for my $path (sort keys %{ $doc->{paths} }) {
    for my $m (@METHODS) {
        my $op = $doc->{paths}{$path}{$m} or next;
        push @ops, [$m, $path, $op];
    }
}
ok(@ops > 40, scalar(@ops) . ' operations');
ok(!grep({ $_->[0] eq 'options' || $_->[0] eq 'head' } @ops),
    'no OPTIONS or HEAD operation (CORS and HEAD are in the description)');
like($doc->{info}{description}, qr/preflight/i,
    'info.description documents the CORS preflight');

# --- (b) the route table and the endpoints --------------------------------

# "/leads/{lead_id}/" and "/leads/{id}" are one route: the router ignores
# a trailing slash and placeholders match any segment
sub route_key {
    my ($method, $path) = @_;
    $path =~ s/\{[^}]*\}/{}/g;
    $path =~ s{(?<=.)/\z}{};
    return uc($method) . " $path";
}

my $api = slurp("$ROOT/ngx_crm_module/src/service/crm_api.c");
my ($table) = $api =~ /crm_api_routes\[\]\s*=\s*\{(.*?)\n\};/s;
ok($table, 'crm_api.c has the route table crm_api_routes');
my %routed;     # key -> [method, pattern, endpoint]
while ($table =~ /\{\s*CRM_M_(\w+)\s*,\s*"([^"]+)"\s*,\s*&(\w+)\s*\}/gs) {
    $routed{ route_key($1, $2) } = [$1, $2, $3];
}
ok(keys(%routed) > 40, scalar(keys %routed) . ' routes in the table');

my %documented = map { route_key($_->[0], $_->[1]) => $_ } @ops;
my %EXTRA = map { $_ => 1 } ('GET /r/{}', 'GET /metrics', 'GET /openapi.json',
    'GET /docs');

is_deeply([sort grep { !$documented{$_} } keys %routed], [],
    'every routed method and path is documented');
is_deeply([sort grep { !$routed{$_} && !$EXTRA{$_} } keys %documented], [],
    'every documented operation is routed (or a location of crm.conf)');
ok($documented{$_}, "$_ is documented") for sort keys %EXTRA;

# the endpoints' definitions: verifier, admin, body
my %endpoint;
for my $file (glob "$ROOT/ngx_crm_module/src/service/*.c") {
    my $src = slurp($file);
    while ($src =~ /const\s+crm_endpoint_t\s+(\w+)\s*=\s*\{(.*?)\};/gs) {
        my ($name, $body) = ($1, $2);
        my %e = (verifier => '', admin => 0, body => 'CRM_BODY_NONE');
        $e{verifier} = $1 if $body =~ /\.verifier\s*=\s*&(\w+)/;
        $e{admin} = 1 if $body =~ /\.admin\s*=\s*1/;
        $e{body} = $1 if $body =~ /\.body\s*=\s*(\w+)/;
        $endpoint{$name} = \%e;
    }
}

my %SCHEMES = (
    ''                  => [],
    crm_verify_bearer   => [qw(gatewayJwt idpToken)],
    crm_verify_signin   => [qw(idpToken)],
    crm_verify_callback => [qw(callbackSignature)],
    crm_verify_webhook  => [qw(shopifyHmac standardWebhooks)],
);

for my $key (sort keys %routed) {
    my ($m, $pattern, $name) = @{ $routed{$key} };
    my $e = $endpoint{$name};
    ok($e, "$key: endpoint $name found") or next;
    my $d = $documented{$key} or next;
    my $op = $d->[2];

    my @want = @{ $SCHEMES{ $e->{verifier} } // ['?'] };
    my %names = map { %$_ } @{ $op->{security} // [{ '(none given)' => [] }] };
    is_deeply([sort keys %names], \@want,
        "$key: security is what " . ($e->{verifier} || 'no verifier') . ' takes');

    my $r = $op->{responses} // {};
    ok($r->{401}, "$key: documents 401") if $e->{verifier};
    ok($r->{403}, "$key: administrators only, documents 403") if $e->{admin};
    like($op->{description} // '', qr/Administrators only/,
        "$key: the description says administrators only") if $e->{admin};

    my $rb = $op->{requestBody};
    if ($e->{body} eq 'CRM_BODY_NONE') {
        ok(!$rb, "$key: no request body");
        next;
    }
    ok($rb && $rb->{content}{'application/json'}, "$key: a JSON request body")
        or next;
    is(!!$rb->{required}, $e->{body} ne 'CRM_BODY_JSON_OPTIONAL',
        "$key: the body is " . ($rb->{required} ? 'required' : 'optional'));
    ok($rb->{content}{'application/x-www-form-urlencoded'}, "$key: or a form")
        if $e->{body} eq 'CRM_BODY_JSON_OR_FORM';
    ok($r->{$_}, "$key: documents $_") for qw(400 413 415);
}

# --- (d) operations, references, security schemes -------------------------

my %ids;
my $schemes = $doc->{components}{securitySchemes} // {};
is_deeply([sort keys %$schemes],
    [sort qw(gatewayJwt idpToken callbackSignature standardWebhooks shopifyHmac)],
    'the security schemes');
is($schemes->{gatewayJwt}{scheme}, 'bearer', 'gatewayJwt: http bearer');
is($schemes->{gatewayJwt}{bearerFormat}, 'JWT', '... JWT');
is($schemes->{callbackSignature}{name}, 'X-CRM-Signature',
    'callbackSignature: the header the code reads');
is($schemes->{shopifyHmac}{name}, 'X-Shopify-Hmac-Sha256',
    'shopifyHmac: the header the code reads');
my %tags = map { $_->{name} => 1 } @{ $doc->{tags} // [] };

for (@ops) {
    my ($m, $path, $op) = @$_;
    my $what = uc($m) . " $path";
    my @bad;
    my $id = $op->{operationId};
    push @bad, 'no operationId' unless defined $id && length $id;
    push @bad, "operationId $id is not unique" if defined $id && $ids{$id}++;
    push @bad, 'no summary' unless length($op->{summary} // '');
    push @bad, 'not exactly one tag' unless @{ $op->{tags} // [] } == 1;
    push @bad, "undeclared tag $_" for grep { !$tags{$_} } @{ $op->{tags} // [] };
    push @bad, 'no 2xx or 3xx response'
        unless grep { /^[23]\d\d$/ } keys %{ $op->{responses} // {} };
    push @bad, 'no security (give [] for none)' unless ref $op->{security} eq 'ARRAY';
    for my $req (@{ $op->{security} // [] }) {
        push @bad, "undefined security scheme $_" for grep { !$schemes->{$_} } keys %$req;
    }
    # every {name} of the path is a path parameter, and only those
    my %in_path = map { $_ => 1 } $path =~ /\{([^}]+)\}/g;
    my %params;
    for my $p (@{ $op->{parameters} // [] }) {
        my $q = $p;
        if ($p->{'$ref'}) {
            my ($n) = $p->{'$ref'} =~ m{^#/components/parameters/(.+)$};
            $q = $doc->{components}{parameters}{$n // ''} // {};
        }
        $params{ $q->{name} // '?' } = 1 if ($q->{in} // '') eq 'path';
    }
    push @bad, "path parameters (" . join(',', sort keys %params)
        . ") are not the path's (" . join(',', sort keys %in_path) . ")"
        unless join(',', sort keys %params) eq join(',', sort keys %in_path);
    is_deeply(\@bad, [], "$what ($id)");
}

# every $ref resolves
my @refs;
sub walk {
    my ($v) = @_;
    if (ref $v eq 'HASH') {
        push @refs, $v->{'$ref'} if defined $v->{'$ref'} && !ref $v->{'$ref'};
        walk($_) for values %$v;
    } elsif (ref $v eq 'ARRAY') {
        walk($_) for @$v;
    }
}
walk($doc);
my @unresolved;
my %seen_ref;
for my $ref (grep { !$seen_ref{$_}++ } @refs) {
    my $node = $doc;
    if ($ref !~ m{^#/}) {
        push @unresolved, "$ref (not local)";
        next;
    }
    for my $tok (split m{/}, substr($ref, 2)) {
        $tok =~ s/~1/\//g;
        $tok =~ s/~0/~/g;
        $node = ref $node eq 'HASH' ? $node->{$tok} : undef;
    }
    push @unresolved, $ref unless defined $node;
}
ok(@refs > 100, scalar(keys %seen_ref) . ' distinct $refs');
is_deeply(\@unresolved, [], 'every $ref resolves');

# --- (c) the OpenAPI 3.1 schema, with node --------------------------------

# one script, two uses: "document" checks the file; "samples" checks
# answers of the gateway (a JSON file of them) against it
my $NODE_CHECK = <<'JS';
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [mode, file, samplesFile] = process.argv.slice(1);
const text = readFileSync(file, "utf8");
const doc = JSON.parse(text);
const out = { errors: [], checked: 0 };
const BASE = "https://crm-gateway.invalid/openapi.json";
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ ...doc, $id: BASE });
const ptr = (toks) => "#/" + toks.map((t) => encodeURIComponent(
    String(t).replace(/~/g, "~0").replace(/\//g, "~1"))).join("/");
const compile = (where, toks) => {
    try {
        return ajv.compile({ $ref: BASE + ptr(toks) });
    } catch (e) {
        out.errors.push(`${where}: the schema does not compile: ${e.message}`);
        return null;
    }
};
const check = (where, toks, value) => {
    const v = compile(where, toks);
    if (!v) return;
    out.checked++;
    if (!v(value)) {
        out.errors.push(`${where}: ` + v.errors.map((e) => `${e.instancePath}`
            + ` ${e.message} ${JSON.stringify(e.params)}`).join("; "));
    }
};
const resolve = (node, toks) => {
    while (node && node.$ref) {
        toks = node.$ref.slice(2).split("/")
            .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
        node = toks.reduce((n, t) => (n ? n[t] : undefined), doc);
    }
    return [node, toks];
};

if (mode === "document") {
    const v = new Validator();
    const res = await v.validate(doc);
    out.valid = res.valid;
    out.version = v.version;
    if (!res.valid) out.errors.push(...res.errors.map((e) => JSON.stringify(e)));
    out.formatted = text === JSON.stringify(doc, null, 2) + "\n";
    for (const name of Object.keys(doc.components.schemas)) {
        compile(`schema ${name}`, ["components", "schemas", name]);
    }
    // every "example" of a media type and every "examples" of a schema
    const walk = (node, toks) => {
        if (Array.isArray(node)) {
            node.forEach((n, i) => walk(n, [...toks, i]));
            return;
        }
        if (!node || typeof node !== "object") return;
        if ("example" in node && "schema" in node) {
            check(`example at ${ptr(toks)}`, [...toks, "schema"], node.example);
        }
        if (Array.isArray(node.examples)
            && (toks.includes("schema") || toks[1] === "schemas")) {
            node.examples.forEach((ex, i) =>
                check(`examples[${i}] at ${ptr(toks)}`, toks, ex));
        }
        for (const [k, n] of Object.entries(node)) walk(n, [...toks, k]);
    };
    walk(doc, []);
} else {
    const samples = JSON.parse(readFileSync(samplesFile, "utf8"));
    for (const s of samples) {
        const where = `${s.method.toUpperCase()} ${s.path} -> ${s.status}`
            + ` (${s.what})`;
        const op = doc.paths[s.path]?.[s.method];
        if (!op) {
            out.errors.push(`${where}: no such operation`);
            continue;
        }
        const [resp, rtoks] = resolve(op.responses[String(s.status)],
            ["paths", s.path, s.method, "responses", String(s.status)]);
        if (!resp) {
            out.errors.push(`${where}: status not documented`);
            continue;
        }
        for (const [name, h] of Object.entries(resp.headers || {})) {
            const [hh] = resolve(h, []);
            if (hh && hh.required && !s.headers.includes(name.toLowerCase())) {
                out.errors.push(`${where}: header ${name} missing`);
            }
        }
        if (!s.type) {
            if (resp.content && s.body !== "") {
                out.errors.push(`${where}: no Content-Type`);
            }
            continue;
        }
        const media = resp.content?.[s.type];
        if (!media) {
            out.errors.push(`${where}: ${s.type} not documented`);
            continue;
        }
        if (!/json/.test(s.type)) {
            out.checked++;
            continue;
        }
        let body;
        try {
            body = JSON.parse(s.body);
        } catch (e) {
            out.errors.push(`${where}: not JSON`);
            continue;
        }
        check(where, [...rtoks, "content", s.type, "schema"], body);
    }
}
console.log(JSON.stringify(out));
JS

my $have_node = -d "$DOCS/node_modules/\@seriousme/openapi-schema-validator"
    && -d "$DOCS/node_modules/ajv";
ok($have_node, 'docs/node_modules has the validator (./build.sh build '
    . 'installs it)') or diag('run ./build.sh build');

sub node_check {
    my (@args) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        chdir $DOCS or die "chdir $DOCS: $!";
        open STDERR, '>&', \*STDOUT;
        exec 'node', '--input-type=module', '-e', $NODE_CHECK, '--', @args
            or POSIX::_exit(127);
    }
    my $o = do { local $/; <$fh> } // '';
    close $fh;
    my $res = eval { $JSON->decode((split /\n/, $o)[-1] // '') };
    return $res if ref $res eq 'HASH' && !$?;
    return { errors => ["node failed ($?): $o"], checked => 0 };
}

SKIP: {
    skip 'no validator in docs/node_modules', 4 unless $have_node;
    my $res = node_check('document', "$DOCS/openapi.json");
    ok($res->{valid}, 'valid against the OpenAPI 3.1 schema');
    is($res->{version}, '3.1', '... as 3.1');
    ok($res->{formatted}, 'formatted as JSON.stringify(doc, null, 2) and a '
        . 'newline');
    is_deeply($res->{errors}, [], 'schemas compile as JSON Schema 2020-12, '
        . "and $res->{checked} examples match their schemas")
        or diag(join "\n", @{ $res->{errors} }[0 .. 19]);
}

# --- (e) served by the shipped conf/crm.conf ------------------------------

my $t = CrmTest->new;
my $d = $t->dir;
my $mock = MockCrm->new(dir => $d);

# the built reference where crm.conf's relative paths point: nginx's prefix
ok(-f "$ROOT/build/docs/openapi.json", 'build/docs/ is built')
    or BAIL_OUT('run ./build.sh build');
make_path("$d/build/docs");
opendir my $dh, "$ROOT/build/docs" or die "$ROOT/build/docs: $!";
for my $f (grep { -f "$ROOT/build/docs/$_" } readdir $dh) {
    copy("$ROOT/build/docs/$f", "$d/build/docs/$f") or die "copy $f: $!";
}
closedir $dh;

# the limit_req zones crm.conf names, as conf/nginx.conf defines them
my $nginx_conf = slurp("$ROOT/conf/nginx.conf");
my @zones = $nginx_conf =~ /^\s*(limit_req_zone\s[^;]*;)/mg;
my %zone = map { /zone=(\w+)/ ? ($1 => 1) : () } @zones;
ok($zone{$_}, "conf/nginx.conf defines the limit_req zone $_")
    for qw(crm_auth crm_account);

# webhook sources: one of each scheme
my $WH_KEY = join '', map { chr int rand 256 } 1 .. 32;
my $SHOP_SECRET = 'shpss_' . join '', map { sprintf '%02x', int rand 256 } 1 .. 16;
CrmTest::_write_file("$d/wh-generic.secret", 'whsec_' . encode_base64($WH_KEY, '') . "\n");
CrmTest::_write_file("$d/wh-shopify.secret", "$SHOP_SECRET\n");

my %edge = $t->edge_config;
$t->start_db;
$t->write_config(
    conf => {
        crm_klaviyo_url    => $mock->url,
        crm_outbound_allow => '127.0.0.0/8',
    },
    http_extra => join("\n", map { "    $_" } @zones) . "\n" . $edge{http_extra}
        . "    crm_webhook_source generic standard $d/wh-generic.secret;\n"
        . "    crm_webhook_source shopify shopify $d/wh-shopify.secret;\n",
    server_body => "        include $ROOT/conf/crm.conf;",
);
$t->start_nginx;

my $r = $t->get('/openapi.json');
is($r->{status}, 200, 'GET /openapi.json: 200');
like($r->{headers}{'content-type'} // '', qr{^application/json\b}, '... application/json');
like($r->{headers}{'x-request-id'} // '', qr/^[0-9a-f]{32}\z/, '... X-Request-Id');
is($r->{headers}{'cache-control'}, 'no-cache', '... Cache-Control: no-cache');
ok($r->{content} eq $text, '... the bytes of docs/openapi.json');

$r = $t->get('/docs');
is($r->{status}, 200, 'GET /docs: 200');
like($r->{headers}{'content-type'} // '', qr{^text/html\b}, '... text/html');
like($r->{headers}{'x-request-id'} // '', qr/^[0-9a-f]{32}\z/, '... X-Request-Id');
like($r->{content}, qr/SwaggerUI|swagger-ui/, '... the Swagger UI page');
my $page = $r->{content};

my %TYPE = (js => qr{^application/javascript}, css => qr{^text/css},
    png => qr{^image/png});
my @assets = $page =~ /\b(?:src|href)="(\/docs\/[^"]+)"/g;
ok(@assets >= 3, 'the page names its assets: ' . join(' ', @assets));
for my $a (@assets) {
    $r = $t->get($a);
    is($r->{status}, 200, "GET $a: 200");
    my ($ext) = $a =~ /\.(\w+)\z/;
    like($r->{headers}{'content-type'} // '', $TYPE{$ext}, "... its type")
        if $TYPE{$ext};
    is($r->{headers}{'x-content-type-options'}, 'nosniff', '... nosniff');
}
like(slurp("$d/build/docs/init.js"), qr{url:\s*"/openapi\.json"},
    'init.js loads /openapi.json');

$r = $t->get('/docs/');
is($r->{status}, 301, 'GET /docs/: 301');
like($r->{headers}{location} // '', qr{/docs\z}, '... to /docs');

# --- the contract: real answers against the document ----------------------

my @samples;

# a request to the operation at $tmpl (its {names} filled from %$p);
# the answer is kept as a sample for the document's check
sub call {
    my ($method, $tmpl, $p, $what, %opt) = @_;
    (my $path = $tmpl) =~ s/\{(\w+)\}/$p->{$1} \/\/ die "no $1 for $tmpl"/ge;
    $path .= $opt{query} if defined $opt{query};
    my $res = $t->request($method, $path, %opt);
    my ($type) = lc($res->{headers}{'content-type'} // '') =~ /^([^;\s]+)/;
    push @samples, { method => lc $method, path => $tmpl, status => $res->{status} + 0,
        type => $type, body => $res->{content}, what => $what,
        headers => [map { lc } keys %{ $res->{headers} }] };
    return $res;
}

sub want {
    my ($res, $status, $what) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is($res->{status}, $status, "$what: $status")
        or diag($res->{content});
    return $res->{json};
}

my $none = {};

want(call('GET', '/healthz', $none, 'health'), 200, 'GET /healthz');

# auth
my $email = $t->unique_email('openapi');
my $acc = want(call('POST', '/auth/register', $none, 'register', json => {
    email => $email, password => 'correct horse battery', full_name => 'Ada Lovelace' }),
    201, 'register');
want(call('POST', '/auth/register', $none, 'taken',
    json => { email => $email, password => 'correct horse battery' }), 409, 'register again');
want(call('POST', '/auth/register', $none, 'short password',
    json => { email => $t->unique_email, password => 'short' }), 422, 'register, short password');
my $login = want(call('POST', '/auth/login', $none, 'json',
    json => { email => $email, password => 'correct horse battery' }), 200, 'login');
my $tok = $login->{access_token};
want(call('POST', '/auth/login', $none, 'form', form => { username => $email,
    password => 'correct horse battery', grant_type => 'password' }), 200, 'login, form');
want(call('POST', '/auth/login', $none, 'wrong',
    json => { email => $email, password => 'wrong password' }), 401, 'login, wrong password');
want(call('POST', '/auth/login', $none, 'text', content => 'x',
    headers => { 'Content-Type' => 'text/plain' }), 415, 'login, text/plain');
want(call('POST', '/auth/login', $none, 'malformed', content => '{',
    headers => { 'Content-Type' => 'application/json' }), 400, 'login, malformed JSON');
want(call('GET', '/auth/me', $none, 'me', token => $tok), 200, 'me');
want(call('GET', '/auth/me', $none, 'no token'), 401, 'me without a token');
want(call('PATCH', '/auth/profile', $none, 'profile', token => $tok,
    json => { display_name => 'Ada', phone => '+44 20 7946 0958' }), 200, 'profile');
want(call('PATCH', '/auth/profile', $none, 'empty', token => $tok, json => {}),
    422, 'profile, nothing to change');

my $idp = $t->idp_token(subject => "openapi-$$", email => "merchant-$$\@example.com");
want(call('GET', '/auth/me', $none, 'merchant before bootstrap', token => $idp),
    404, 'me, merchant before bootstrap');
my $merchant = want(call('POST', '/auth/bootstrap', $none, 'first', token => $idp,
    json => { display_name => 'Shop', company => 'Shop Ltd' }), 201, 'bootstrap');
want(call('POST', '/auth/bootstrap', $none, 'again, no body', token => $idp),
    200, 'bootstrap again');
want(call('GET', '/auth/me', $none, 'merchant', token => $idp), 200, 'me, merchant');
want(call('POST', '/auth/bootstrap', $none, 'gateway token', token => $tok),
    401, 'bootstrap with a gateway token');

# admin
my ($adm, $atok) = $t->admin;
want(call('GET', '/admin/users', $none, 'page', token => $atok, query => '?limit=2'),
    200, 'admin users');
want(call('GET', '/admin/users', $none, 'member', token => $tok), 403,
    'admin users as a member');
want(call('PATCH', '/admin/users/{account_id}', { account_id => $acc->{id} }, 'role',
    token => $atok, json => { role => 'member', is_active => JSON::PP::true }), 200,
    'admin update');
want(call('PATCH', '/admin/users/{account_id}', { account_id => $adm->{id} }, 'self',
    token => $atok, json => { is_active => JSON::PP::false }), 409, 'admin deactivates itself');

# pipeline
my $stages = want(call('GET', '/pipeline/stages', $none, 'all', token => $tok), 200,
    'stages') // [];
my $st = $stages->[1] // $stages->[0] // {};
want(call('GET', '/pipeline/stages/{stage}', { stage => $st->{stage} // 'x' }, 'one',
    token => $tok), 200, 'one stage');
want(call('GET', '/pipeline/stages/{stage}', { stage => 'no_such_stage' }, 'unknown',
    token => $tok), 404, 'unknown stage');
want(call('GET', '/pipeline/stages', $none, 'query', token => $tok, query => '?x=1'),
    422, 'stages with a query');

# leads
my $lead = want(call('POST', '/leads/', $none, 'create', token => $tok, json => {
    name => "Ada's Shop", email => 'Ada@Example.com', phone => '+1 (415) 555-2671',
    company => 'Ada Ltd', shop_domain => 'https://Ada-Shop.myshopify.com/admin',
    value_cents => 250000, currency => 'usd', notes => "first\nsecond" }), 201, 'create lead')
    // {};
my $lp = { lead_id => $lead->{id} // 'x' };
want(call('POST', '/leads/', $none, 'no name', token => $tok, json => { email => 'a@b.co' }),
    422, 'create lead without a name');
want(call('GET', '/leads/', $none, 'list', token => $tok, query => '?limit=5&q=ada'),
    200, 'list leads');
want(call('GET', '/leads/', $none, 'unknown parameter', token => $tok, query => '?x=1'),
    422, 'list leads, unknown parameter');
my $got = call('GET', '/leads/{lead_id}', $lp, 'get', token => $tok);
want($got, 200, 'get lead');
my $etag = $got->{headers}{etag} // '';
want(call('PUT', '/leads/{lead_id}', $lp, 'update', token => $tok,
    headers => { 'If-Match' => $etag }, json => { notes => 'changed', company => undef }),
    200, 'update lead');
want(call('PUT', '/leads/{lead_id}', $lp, 'stale', token => $tok,
    headers => { 'If-Match' => $etag }, json => { notes => 'again' }), 412, 'update, stale');
my $sub = ($st->{substages} // [])->[0]{status} // 'x';
want(call('PUT', '/leads/{lead_id}/stage', $lp, 'move', token => $tok,
    json => { stage => $st->{stage}, substage => $sub }), 200, 'move lead');
want(call('PUT', '/leads/{lead_id}/stage', $lp, 'unknown', token => $tok,
    json => { stage => 'no_such_stage', substage => 'x' }), 422, 'move to an unknown stage');
want(call('GET', '/leads/{lead_id}/history', $lp, 'history', token => $tok), 200,
    'history');
want(call('GET', '/leads/{lead_id}/compatibility', $lp, 'score', token => $tok), 200,
    'compatibility');
my $lead2 = $t->create_lead($tok);
my $lp2 = { lead_id => $lead2->{id} };
want(call('DELETE', '/leads/{lead_id}', $lp2, 'delete', token => $tok), 204, 'delete lead');
want(call('GET', '/leads/{lead_id}', $lp2, 'deleted', token => $tok), 404, 'deleted lead');
want(call('GET', '/admin/leads', $none, 'owner', token => $atok,
    query => "?owner_id=$acc->{id}&stage=$st->{stage}"), 200, 'admin leads');
want(call('GET', '/admin/audit-logs', $none, 'page', token => $atok,
    query => "?limit=5&actor_id=$acc->{id}"), 200, 'audit log');

# links, the redirect, callbacks
my $link = want(call('POST', '/affiliate/links', $none, 'create', token => $tok, json => {
    target_url => 'https://apps.example.com/app?x=1', name => 'Newsletter',
    merchant_id => $merchant->{id}, commission => { install_cents => 700,
    conversion_bps => 1500 } }), 201, 'create link') // {};
my $kp = { affiliate_link_id => $link->{affiliate_link_id} // 'x' };
want(call('POST', '/affiliate/links', $none, 'bad commission', token => $tok, json => {
    target_url => 'https://apps.example.com/', commission => { install_cents => -1 } }),
    422, 'create link, negative commission');
want(call('GET', '/affiliate/links', $none, 'list', token => $tok), 200, 'list links');
want(call('GET', '/affiliate/links/{affiliate_link_id}', $kp, 'get', token => $tok), 200,
    'get link');
want(call('PATCH', '/affiliate/links/{affiliate_link_id}', $kp, 'rename', token => $tok,
    json => { name => 'Renamed' }), 200, 'update link');

my $red = call('GET', '/r/{link_id}', { link_id => $kp->{affiliate_link_id} }, 'follow',
    query => '?shop=ada-shop.myshopify.com');
want($red, 302, 'redirect');
my ($click) = ($red->{headers}{location} // '') =~ /[?&]click_id=(\w+)/;
ok($click, '... with a click id');
want(call('GET', '/r/{link_id}', { link_id => 'AAAAAAAAAAAA' }, 'unknown'), 404,
    'redirect, unknown link');

want(call('PATCH', '/admin/links/{affiliate_link_id}', $kp, 'block', token => $atok,
    json => { status => 'disabled' }), 200, 'admin blocks the link');
want(call('GET', '/r/{link_id}', { link_id => $kp->{affiliate_link_id} }, 'blocked'), 410,
    'redirect, blocked link');
want(call('PATCH', '/affiliate/links/{affiliate_link_id}', $kp, 'blocked', token => $tok,
    json => { status => 'active' }), 403, 'owner cannot lift the block');
want(call('PATCH', '/admin/links/{affiliate_link_id}', $kp, 'unblock', token => $atok,
    json => { status => 'active' }), 200, 'admin unblocks the link');

sub signed {
    my ($path, $data, $what, %o) = @_;
    my $body = $JSON->encode($data);
    my $sig = $o{bad} ? 't=1,v1=' . ('0' x 64) : $t->sign_callback($body);
    return call('POST', $path, $none, $what, content => $body,
        headers => { 'Content-Type' => 'application/json', 'X-CRM-Signature' => $sig });
}
want(signed('/callbacks/install', { shop_domain => 'ada-shop.myshopify.com',
    click_id => $click // 'x', shop_name => 'Ada', event_id => "evt-$$" }, 'install'),
    200, 'install callback');
want(signed('/callbacks/install', { shop_domain => 'ada-shop.myshopify.com',
    click_id => $click // 'x' }, 'bad signature', bad => 1), 401, 'install, bad signature');
want(signed('/callbacks/install', { shop_domain => 'x.myshopify.com' }, 'no link'), 422,
    'install without a link');
want(signed('/callbacks/conversion', { order_id => "order-$$", amount_cents => 10000,
    currency => 'USD', click_id => $click // 'x' }, 'conversion'), 200, 'conversion callback');
want(call('GET', '/affiliate/links/{affiliate_link_id}/stats', $kp, 'stats', token => $tok),
    200, 'link stats');

# wallets
want(call('GET', '/wallet', $none, 'member', token => $tok), 200, 'wallet');
want(call('GET', '/wallet', $none, 'empty', token => $atok), 200, 'wallet, no commission');
want(call('GET', '/wallet/transactions', $none, 'member', token => $tok), 200,
    'transactions');
my $wp = { account_id => $acc->{id} };
my $key = "payout-$$";
want(call('POST', '/admin/wallets/{account_id}/payouts', $wp, 'pay', token => $atok,
    headers => { 'Idempotency-Key' => $key }, json => { amount_cents => 100,
    reference => 'transfer 1' }), 201, 'payout');
want(call('POST', '/admin/wallets/{account_id}/payouts', $wp, 'replay', token => $atok,
    headers => { 'Idempotency-Key' => $key }, json => { amount_cents => 100,
    reference => 'transfer 1' }), 201, 'payout replayed');
want(call('POST', '/admin/wallets/{account_id}/payouts', $wp, 'too much', token => $atok,
    headers => { 'Idempotency-Key' => "$key-2" }, json => { amount_cents => 10 ** 11,
    reference => 'transfer 2' }), 409, 'payout over the balance');
want(call('POST', '/admin/wallets/{account_id}/payouts', $wp, 'no key', token => $atok,
    json => { amount_cents => 1, reference => 'transfer 3' }), 422, 'payout without a key');
want(call('POST', '/admin/wallets/{account_id}/payouts', { account_id => $adm->{id} },
    'no wallet', token => $atok, headers => { 'Idempotency-Key' => "$key-3" },
    json => { amount_cents => 1, reference => 'transfer 4' }), 404, 'payout, no wallet');

# webhooks
sub std_webhook {
    my ($data, $what, %o) = @_;
    my $body = $JSON->encode($data);
    my $id = $o{id} // "msg_$$" . '_' . int(rand 1e9);
    my $ts = int time;
    my $sig = 'v1,' . encode_base64(hmac_sha256("$id.$ts.$body", $o{key} // $WH_KEY), '');
    return call('POST', '/integrations/webhooks/{source}', { source => $o{source} // 'generic' },
        $what, content => $body, headers => { 'Content-Type' => 'application/json',
        'webhook-id' => $id, 'webhook-timestamp' => $ts, 'webhook-signature' => $sig });
}
want(std_webhook({ type => 'customer.created', data => { email => 'ada@example.com',
    phone => 'not a phone' } }, 'attributed', id => "msg-$$"), 202, 'standard webhook');
want(std_webhook({ type => 'customer.created', data => { email => 'ada@example.com' } },
    'duplicate', id => "msg-$$"), 202, 'standard webhook again');
want(std_webhook({ type => 'x' }, 'bad signature', key => 'wrong key'), 401,
    'webhook, wrong signature');
want(std_webhook({ type => 'x' }, 'unknown source', source => 'nope'), 404,
    'webhook, unknown source');
want(std_webhook({ data => {} }, 'no type'), 422, 'webhook without a type');
{
    my $body = $JSON->encode({ id => 42, email => 'someone@example.com' });
    my $h = hmac_sha256_base64($body, $SHOP_SECRET);
    $h .= '=' while length($h) % 4;
    want(call('POST', '/integrations/webhooks/{source}', { source => 'shopify' }, 'shopify',
        content => $body, headers => { 'Content-Type' => 'application/json',
        'X-Shopify-Topic' => 'customers/update', 'X-Shopify-Shop-Domain' =>
        'ada-shop.myshopify.com', 'X-Shopify-Event-Id' => "evt-shop-$$",
        'X-Shopify-Hmac-Sha256' => $h }), 202, 'shopify webhook');
}
want(call('GET', '/integrations/events', $none, 'page', token => $atok,
    query => '?source=generic&status=attributed'), 200, 'webhook events');
want(call('GET', '/leads/{lead_id}/events', $lp, 'timeline', token => $tok), 200,
    "a lead's events");

# performance
want(call('GET', '/performance/me', $none, 'default', token => $tok), 200, 'performance');
want(call('GET', '/performance/me', $none, 'bad range', token => $tok,
    query => '?from=2026-12-02&to=2026-12-01'), 422, 'performance, from after to');
want(call('GET', '/performance/users/{account_id}', { account_id => $acc->{id} }, 'admin',
    token => $atok), 200, 'performance of a user');
want(call('GET', '/performance/users/{account_id}', { account_id => $adm->{id} }, 'other',
    token => $tok), 404, "performance of another's account");
want(call('GET', '/performance/leaderboard', $none, 'installs', token => $atok,
    query => '?metric=installs&limit=5'), 200, 'leaderboard');

# CRM integrations, against the stand-in
my $kl = { crm_type => 'klaviyo', credentials => { api_key => $mock->klaviyo_key } };
want(call('POST', '/crm/validate', $none, 'good', token => $tok, json => $kl), 200,
    'validate');
want(call('POST', '/crm/validate', $none, 'refused', token => $tok, json => {
    crm_type => 'klaviyo', credentials => { api_key => 'pk_wrong_key_000000000000000000' } }),
    422, 'validate, refused');
want(call('POST', '/crm/validate', $none, 'unknown type', token => $tok,
    json => { crm_type => 'nope', credentials => {} }), 422, 'validate, unknown type');
want(call('POST', '/crm/connect', $none, 'new', token => $tok, json => $kl), 201,
    'connect');
want(call('POST', '/crm/connect', $none, 'again', token => $tok, json => $kl), 200,
    'connect again');
want(call('GET', '/crm/list', $none, 'list', token => $tok), 200, 'CRM list');
my $cp = { crm_type => 'klaviyo' };
want(call('GET', '/crm/{crm_type}/status', $cp, 'status', token => $tok), 200, 'status');
want(call('GET', '/crm/{crm_type}/logs', $cp, 'logs', token => $tok), 200, 'logs');
want(call('POST', '/crm/{crm_type}/retry', $cp, 'retry', token => $tok), 202, 'retry');
want(call('DELETE', '/crm/{crm_type}/disconnect', $cp, 'disconnect', token => $tok), 200,
    'disconnect');
want(call('GET', '/crm/{crm_type}/status', { crm_type => 'creatio' }, 'never', token => $tok),
    404, 'status, never connected');

# nginx's own locations
$r = call('GET', '/metrics', $none, 'metrics');
want($r, 200, 'metrics');
call('GET', '/openapi.json', $none, 'document');
call('GET', '/docs', $none, 'page');

my %covered = map { route_key($_->{method}, $_->{path}) => 1 } @samples;
is_deeply([sort grep { !$covered{$_} } keys %documented], [],
    'the samples cover every documented operation');

SKIP: {
    skip 'no validator in docs/node_modules', 1 unless $have_node;
    my $file = "$d/samples.json";
    CrmTest::_write_file($file, $JSON->encode(\@samples));
    my $res = node_check('samples', "$DOCS/openapi.json", $file);
    is_deeply($res->{errors}, [], scalar(@samples) . ' answers of the gateway are '
        . "documented, $res->{checked} bodies match their schemas")
        or diag(join "\n", @{ $res->{errors} });
}

$mock->stop;
$t->done;

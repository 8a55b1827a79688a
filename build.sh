#!/usr/bin/env bash
#
# The single entry point: installs what is missing, builds the module,
# runs a private PostgreSQL, runs nginx, tests and benchmarks.
#
#   ./build.sh deps          install missing Debian packages (apt-get)
#   ./build.sh build         build libcrm, crm-admin and the nginx module
#   ./build.sh db            create/start the private PostgreSQL, migrate
#   ./build.sh db-stop       stop it
#   ./build.sh migrate       apply schema/ to the running database
#   ./build.sh run           everything, then nginx on 127.0.0.1:8080
#   ./build.sh test          unit tests (Check) and integration tests (prove)
#   ./build.sh bench         wrk benchmarks into bench/RESULTS.md (run.sh, scale.sh,
#                            ops.pl, links.pl)
#   ./build.sh bench scale   only bench/scale.sh: 10M clicks, 1M leads, webhooks
#   ./build.sh bench ops     only bench/ops.pl: per-account limits, CORS
#   ./build.sh bench links   only bench/links.pl: a million links cached
#   ./build.sh soak [MINUTES]
#                            bench/soak.pl: a mixed load for MINUTES (60)
#                            with two reloads and a PostgreSQL restart;
#                            fails on a leak, a lost click or sync job; the
#                            60-minute run writes bench/soak.png and
#                            RESULTS.md
#   ./build.sh package       the Debian package, in build/pkg/
#   ./build.sh admin EMAIL   create or promote an admin account
#   ./build.sh retain-clicks MONTHS
#                            drop click partitions older than the current
#                            month and the MONTHS before it
#   ./build.sh idp-token EMAIL [SUBJECT]
#                            a one-hour ID token of the development identity
#                            provider, for the merchant API
#
# Environment, for db, db-stop, migrate and retain-clicks (tests and
# benchmarks use it to run clusters of their own): CRM_VAR_DIR (default
# ./var) holds the cluster, CRM_PG_PORT (default 5433) is its port.  run
# and admin always use the defaults, which conf/nginx.conf names.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VAR=${CRM_VAR_DIR:-$ROOT/var}
PG_PORT=${CRM_PG_PORT:-5433}
BUILD=$ROOT/build
MODULE=$BUILD/modules/ngx_http_crm_module.so

PACKAGES=(
    build-essential pkg-config nginx nginx-dev libpcre2-dev zlib1g-dev
    libssl-dev libpq-dev libyajl-dev libcurl4-openssl-dev libxml2-dev libargon2-dev
    libcrypt-dev check postgresql-15 postgresql-client-15 perl wrk
    valgrind openssl curl clang libclang-rt-14-dev nodejs npm
)

# what only the tests need: a browser for the API reference's page,
# gnuplot for the soak's plot
TEST_PACKAGES=(chromium gnuplot-nox)

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }


cmd_deps() {
    install_missing "${PACKAGES[@]}"
}

install_missing() {
    local missing=()
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
            | grep -q 'install ok installed' && continue
        # NodeSource's nodejs ships npm itself and conflicts with Debian's
        [ "$p" = npm ] && command -v npm >/dev/null && continue
        missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    log "installing: ${missing[*]}"
    [ "$(id -u)" -eq 0 ] || die "need root to install: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq

    # the nginx and postgresql packages start their system services on
    # install; we run our own instances, so keep services from starting,
    # and put back whatever policy the machine had, however apt-get ends
    (
        policy=/usr/sbin/policy-rc.d
        saved=""
        if [ -e "$policy" ]; then
            saved=$(mktemp)
            cp -p "$policy" "$saved"
        fi
        trap 'if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi' EXIT
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod +x "$policy"

        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    )
}


# Configures nginx-dev's sources with the flags of the installed nginx (so
# the module's binary signature matches) and builds only the module.
build_module() {
    local src=$BUILD/nginx-src
    local stamp=$BUILD/nginx-configure.stamp
    local want

    # the stamp names the checkout too: a copy of it configures anew,
    # or it would build the original's sources
    want="$ROOT $(nginx -V 2>&1 | sed -n 's/^configure arguments: //p')"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] \
        || [ "$ROOT/ngx_crm_module/config" -nt "$stamp" ]
    then
        log "configuring nginx $(nginx -v 2>&1 | sed 's/.*\///') module build"
        rm -rf "$src"
        cp -r /usr/share/nginx/src "$src"
        local args=() flags=() a
        eval "args=(${want#"$ROOT "})"
        # other dynamic modules need libraries we do not build against
        for a in "${args[@]}"; do
            case "$a" in *=dynamic) ;; *) flags+=("$a") ;; esac
        done
        (cd "$src" && ./configure "${flags[@]}" \
            --add-dynamic-module="$ROOT/ngx_crm_module" \
            > "$BUILD/nginx-configure.log" 2>&1) \
            || die "nginx configure failed, see $BUILD/nginx-configure.log"
        printf '%s' "$want" > "$stamp"
    fi

    # nginx's Makefile does not know the module depends on libcrm.a
    rm -f "$src/objs/ngx_http_crm_module.so"
    make -s -C "$src" -f objs/Makefile modules >/dev/null
    mkdir -p "$BUILD/modules"
    # a new inode, never rewritten in place: a running nginx maps the old one
    cp "$src/objs/ngx_http_crm_module.so" "$MODULE.tmp"
    mv -f "$MODULE.tmp" "$MODULE"
}


cmd_build() {
    cmd_deps
    mkdir -p "$BUILD"
    log "building libcrm and crm-admin"
    make -s -C "$ROOT" -j"$(nproc)" all
    log "building the nginx module"
    build_module
    log "built $MODULE"
    build_docs
}


# The API reference that conf/crm.conf serves (GET /openapi.json, GET
# /docs), assembled in build/docs/: docs/openapi.json, the page and its
# configuration, and the files of Swagger UI (swagger-ui-dist from the npm
# registry, pinned in docs/package-lock.json).  npm runs only when
# docs/node_modules is missing or older than the lock file, without
# install scripts (the viewer's @scarf/scarf would report the install to
# its vendor).  The new copy replaces the old by a rename.
build_docs() {
    local docs=$ROOT/docs out=$BUILD/docs
    local dist=$ROOT/docs/node_modules/swagger-ui-dist f

    command -v npm >/dev/null || die "npm is missing: run ./build.sh deps"
    if [ ! -d "$docs/node_modules" ] \
        || [ "$docs/package-lock.json" -nt "$docs/node_modules" ]
    then
        log "installing the API reference's viewer (npm ci)"
        SCARF_ANALYTICS=false npm ci --prefix "$docs" --no-audit --no-fund \
            --ignore-scripts --loglevel=error >/dev/null
        touch "$docs/node_modules"
    fi

    rm -rf "$out.tmp" "$out.old"
    mkdir -p "$out.tmp"
    cp "$docs/index.html" "$docs/init.js" "$docs/openapi.json" "$out.tmp/"
    for f in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png; do
        cp "$dist/$f" "$out.tmp/"
    done
    chmod -R a+rX "$out.tmp"
    if [ -d "$out" ]; then
        mv "$out" "$out.old"
    fi
    mv "$out.tmp" "$out"
    rm -rf "$out.old"
    log "built $out"
}


# PostgreSQL refuses to run as root: as root the cluster belongs to the
# unprivileged "postgres" account that the postgresql package creates.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

pg_bin() {
    echo "/usr/lib/postgresql/15/bin/$1"
}

# The cluster's directory: $VAR/pg, unless we are root and the postgres
# account cannot reach $VAR (a checkout in /root, mode 700): then a
# directory of its own under its home, one per var directory.
pg_data_dir() {
    if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$VAR"; then
        echo "/var/lib/postgresql/crm-gateway/$(printf '%s' "$VAR" | md5sum | cut -c1-12)"
    else
        echo "$VAR/pg"
    fi
}

pg_env() {
    export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=crm PGDATABASE=crm
    export PGOPTIONS='-c client_min_messages=warning'
}

cmd_db() {
    local data

    command -v "$(pg_bin initdb)" >/dev/null || cmd_deps
    mkdir -p "$VAR"
    chmod 755 "$VAR"
    data=$(pg_data_dir)
    if [ ! -f "$data/PG_VERSION" ]; then
        log "creating PostgreSQL cluster in $data"
        mkdir -p "$data"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$data"
        chmod 700 "$data"
        as_pg "$(pg_bin initdb)" -D "$data" -U postgres --auth=trust \
            -E UTF8 --locale=C.UTF-8 >/dev/null
        cat >> "$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = ''
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
log_min_messages = warning
EOF
    fi

    if ! as_pg "$(pg_bin pg_ctl)" -D "$data" status >/dev/null 2>&1; then
        as_pg "$(pg_bin pg_ctl)" -D "$data" -l "$data/server.log" \
            -w -t 60 start >/dev/null || die "PostgreSQL did not start, see $data/server.log"
    fi

    pg_env
    psql -q -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<'EOF'
SELECT 'CREATE ROLE crm LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'crm') \gexec
SELECT 'CREATE DATABASE crm OWNER crm'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'crm') \gexec
EOF
    cmd_migrate
}

cmd_db_stop() {
    local data
    data=$(pg_data_dir)
    [ -f "$data/PG_VERSION" ] || return 0
    as_pg "$(pg_bin pg_ctl)" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

# Applies each schema/NNN-*.sql not yet recorded, each in one transaction
# together with its row in crm.schema_migrations.
cmd_migrate() {
    local f v
    pg_env
    psql -q -v ON_ERROR_STOP=1 >/dev/null <<'EOF'
CREATE SCHEMA IF NOT EXISTS crm;
CREATE TABLE IF NOT EXISTS crm.schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
EOF
    for f in "$ROOT"/schema/[0-9]*.sql; do
        v=$(basename "$f" .sql)
        if [ -z "$(psql -tA -c "SELECT 1 FROM crm.schema_migrations WHERE version = '$v'")" ]; then
            log "migrating $v"
            { cat "$f"; printf "\nINSERT INTO crm.schema_migrations (version) VALUES ('%s');\n" "$v"; } \
                | psql -q -v ON_ERROR_STOP=1 --single-transaction >/dev/null \
                || die "migration $v failed"
        fi
    done
}

ensure_secret() {
    local f
    mkdir -p "$VAR/secrets"
    chmod 700 "$VAR/secrets"
    for f in jwt callback link credentials webhook-shopify; do
        f="$VAR/secrets/$f.secret"
        [ -s "$f" ] || (umask 077; openssl rand -hex 32 > "$f")
    done
    f="$VAR/secrets/webhook-generic.secret"
    [ -s "$f" ] || (umask 077; printf 'whsec_%s\n' "$(openssl rand -base64 32)" > "$f")
}

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# The development identity provider: an RSA key pair under var/idp/ and
# its public half as a JWKS, which the gateway trusts unless
# CRM_IDP_KEYS_FILE names other keys.  Its tokens look like Firebase's.
IDP_KEY=$ROOT/var/idp/dev-key.pem
IDP_JWKS=$ROOT/var/idp/jwks.json
IDP_PROJECT=${CRM_IDP_PROJECT_ID:-crm-gateway-dev}

idp_kid() {
    openssl pkey -in "$IDP_KEY" -pubout -outform DER 2>/dev/null \
        | openssl dgst -sha256 -r | cut -c1-16
}

ensure_idp() {
    [ -s "$IDP_KEY" ] && [ -s "$IDP_JWKS" ] && return 0
    mkdir -p "$(dirname "$IDP_KEY")"
    chmod 700 "$(dirname "$IDP_KEY")"
    (umask 077; openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
        -out "$IDP_KEY" 2>/dev/null)
    local modulus n
    modulus=$(openssl rsa -in "$IDP_KEY" -noout -modulus | sed 's/^Modulus=//')
    n=$(printf '%s' "$modulus" | sed 's/../\\x&/g' | xargs -0 printf '%b' | b64url)
    printf '{"keys":[{"kty":"RSA","alg":"RS256","use":"sig","kid":"%s","n":"%s","e":"AQAB"}]}\n' \
        "$(idp_kid)" "$n" > "$IDP_JWKS"
}

cmd_idp_token() {
    [ $# -ge 1 ] && [ $# -le 2 ] || die "usage: ./build.sh idp-token EMAIL [SUBJECT]"
    [ -z "${CRM_IDP_KEYS_FILE:-}" ] \
        || die "CRM_IDP_KEYS_FILE names other keys: only their owner can sign tokens"
    ensure_idp
    local email=$1 sub=${2:-} now header payload signed
    [ -n "$sub" ] || sub=$(printf '%s' "$email" | openssl dgst -sha256 -r | cut -c1-28)
    now=$(date +%s)
    header=$(printf '{"alg":"RS256","kid":"%s","typ":"JWT"}' "$(idp_kid)" | b64url)
    payload=$(printf '{"iss":"https://securetoken.google.com/%s","aud":"%s","auth_time":%d,"user_id":"%s","sub":"%s","iat":%d,"exp":%d,"email":"%s","email_verified":true,"firebase":{"identities":{"email":["%s"]},"sign_in_provider":"password"}}' \
        "$IDP_PROJECT" "$IDP_PROJECT" "$now" "$sub" "$sub" "$now" $((now + 3600)) \
        "$email" "$email" | b64url)
    signed="$header.$payload"
    printf '%s.%s\n' "$signed" \
        "$(printf '%s' "$signed" | openssl dgst -sha256 -sign "$IDP_KEY" -binary | b64url)"
}

# $1 names an environment variable holding a secret file's path; else the
# one generated under var/secrets/ ($2.secret)
secret_file() {
    local named=${!1:-}
    if [ -n "$named" ]; then
        [ -r "$named" ] || die "$1: cannot read $named"
        realpath "$named"
    else
        echo "$VAR/secrets/$2.secret"
    fi
}

# The directives ./build.sh run takes from the environment, written anew at
# every run into var/conf/, which conf/nginx.conf includes.
write_env_conf() {
    local hosts keys allow origins
    mkdir -p "$VAR/conf"
    if [ -n "${CRM_IDP_KEYS_FILE:-}" ]; then
        keys=$(realpath "$CRM_IDP_KEYS_FILE")
    else
        ensure_idp
        keys=$IDP_JWKS
    fi
    {
        echo "# written by ./build.sh run from its environment"
        hosts=$(printf '%s' "${CRM_REDIRECT_ALLOW_HOSTS:-}" | tr 'A-Z' 'a-z' | xargs)
        [ -z "$hosts" ] || echo "crm_redirect_allow_hosts $hosts;"
        echo "crm_idp_project_id $IDP_PROJECT;"
        echo "crm_idp_keys_file \"$keys\";"
        echo "crm_klaviyo_url ${CRM_KLAVIYO_URL:-https://a.klaviyo.com};"
        allow=$(printf '%s' "${CRM_OUTBOUND_ALLOW:-}" | tr ',' ' ' | xargs)
        [ -z "$allow" ] || echo "crm_outbound_allow $allow;"
        # browsers send bearer tokens, not cookies: no credentials mode
        origins=$(printf '%s' "${CRM_CORS_ORIGINS:-}" | xargs)
        [ -z "$origins" ] || echo "crm_cors_origins $origins;"
        echo "crm_callback_secret_file \"$(secret_file CRM_CALLBACK_SECRET_FILE callback)\";"
        echo "crm_webhook_source shopify shopify \"$(secret_file CRM_WEBHOOK_SHOPIFY_SECRET_FILE webhook-shopify)\";"
        echo "crm_webhook_source generic standard \"$(secret_file CRM_WEBHOOK_GENERIC_SECRET_FILE webhook-generic)\";"
    } > "$VAR/conf/env.conf"
}

cmd_run() {
    # conf/nginx.conf names these: the defaults, whatever the environment says
    VAR=$ROOT/var
    PG_PORT=5433

    cmd_build
    cmd_db
    ensure_secret
    write_env_conf
    mkdir -p "$VAR/log" "$VAR/run" "$VAR/tmp"
    nginx -p "$ROOT/" -c conf/nginx.conf -t -q
    log "crm-gateway on http://127.0.0.1:8080 (Ctrl-C stops nginx and PostgreSQL)"

    local pid
    nginx -p "$ROOT/" -c conf/nginx.conf -g 'daemon off;' &
    pid=$!
    trap 'kill -QUIT $pid 2>/dev/null; wait $pid 2>/dev/null; cmd_db_stop; exit 0' INT TERM
    wait $pid || true
    cmd_db_stop
}

pg_running() {
    local data
    data=$(pg_data_dir)
    [ -f "$data/PG_VERSION" ] \
        && as_pg "$(pg_bin pg_ctl)" -D "$data" status >/dev/null 2>&1
}

# Drops the private cluster's click partitions older than the current
# month and the $1 before it (crm.clicks_retain, schema/011)
cmd_retain_clicks() {
    [ $# -eq 1 ] && [[ $1 =~ ^[1-9][0-9]*$ ]] \
        || die "usage: ./build.sh retain-clicks MONTHS (1 or more)"
    pg_running || die "the private PostgreSQL is not running: ./build.sh db"
    pg_env
    psql -X -q -tA -v ON_ERROR_STOP=1 -c "SELECT crm.clicks_retain($1)" \
        | sed 's/^/dropped crm./'
}

cmd_admin() {
    [ $# -eq 1 ] || die "usage: ./build.sh admin EMAIL"
    VAR=$ROOT/var
    PG_PORT=5433
    cmd_build

    # a gateway that is running keeps its database; otherwise leave none up
    local was_running=0 rc=0
    pg_running && was_running=1
    cmd_db
    "$BUILD/crm-admin" --database "host=127.0.0.1 port=$PG_PORT dbname=crm user=crm" "$1" || rc=$?
    [ "$was_running" -eq 1 ] || cmd_db_stop
    return "$rc"
}

# Runs the libFuzzer target over the core parsers for CRM_FUZZ_SECONDS
# (default 60) from the committed seeds; a finding fails the run.
run_fuzz() {
    local corpus out
    corpus=$(mktemp -d)
    out=$(mktemp)
    make -s -C "$ROOT" fuzz
    if ! "$BUILD/fuzz/crm_fuzz" -max_total_time="${CRM_FUZZ_SECONDS:-60}" \
        -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$BUILD/fuzz/" \
        "$corpus" "$ROOT/t/fuzz/seeds" > "$out" 2>&1
    then
        tail -40 "$out" >&2
        rm -rf "$corpus" "$out"
        die "the fuzzer found a failure (input saved in $BUILD/fuzz/)"
    fi
    grep -E '^Done [0-9]+ runs' "$out" >&2
    rm -rf "$corpus" "$out"
}

cmd_test() {
    cmd_build
    install_missing "${TEST_PACKAGES[@]}"
    log "unit tests"
    make -s -C "$ROOT" check
    log "fuzzing the core parsers (libFuzzer, ASan, UBSan)"
    run_fuzz
    log "integration tests"
    CRM_ROOT="$ROOT" prove -I"$ROOT/t/lib" "$ROOT"/t/*.t
}

cmd_bench() {
    case ${1:-} in
        "") cmd_build
            "$ROOT/bench/run.sh"
            "$ROOT/bench/scale.sh"
            "$ROOT/bench/ops.pl"
            "$ROOT/bench/links.pl" ;;
        scale) cmd_build
               "$ROOT/bench/scale.sh" ;;
        ops) cmd_build
             "$ROOT/bench/ops.pl" ;;
        links) cmd_build
               "$ROOT/bench/links.pl" ;;
        *) die "usage: ./build.sh bench [scale|ops|links]" ;;
    esac
}

cmd_soak() {
    [ $# -le 1 ] && [[ ${1:-60} =~ ^[1-9][0-9]*$ ]] \
        || die "usage: ./build.sh soak [MINUTES] (1 or more, default 60)"
    cmd_build
    install_missing gnuplot-nox
    "$ROOT/bench/soak.pl" --minutes "${1:-60}"
}

# ---------------------------------------------------------------------------
# The Debian package: build/pkg/libnginx-mod-http-crm_<version>-1_<arch>.deb,
# named and laid out like Debian's own dynamic modules (libnginx-mod-http-
# echo): the module in /usr/lib/nginx/modules, its load_module line in
# /usr/share/nginx/modules-available, enabled by the postinst with a link in
# /etc/nginx/modules-enabled (dh_nginx's maintainer scripts), and a
# dependency on the exact nginx ABI it was built for.  dpkg-deb alone builds
# it, from the templates in pkg/; crm-admin, the schema, the pipeline, the
# example configuration and the API's documentation go with it.

PKG_NAME=libnginx-mod-http-crm
PKG_DIR=$BUILD/pkg

# what only the package needs, installed when it is built
PKG_TOOLS=(dpkg-dev lintian binutils)

# The installed system's copy of conf/nginx.conf and conf/crm.conf ($1, to
# stdout).  In the repository nginx runs with the checkout as its prefix;
# installed, the paths are Debian's and the package's:
#   load_module build/modules/...   the include of /etc/nginx/modules-enabled,
#                                   where the package's link loads the module
#   var/log/, var/run/nginx.pid     /var/log/nginx/, /run/nginx.pid
#   var/tmp/                        /var/lib/nginx/ (Debian's temporary paths)
#   var/spool                       /var/spool/crm-gateway (nginx makes it)
#   ../var/secrets/, /etc/crm/      /etc/crm-gateway/
#   ../var/conf/*.conf              /etc/crm-gateway/*.conf: the site's
#                                   settings, which ./build.sh run writes
#   ../pipeline-config              /usr/share/crm-gateway/pipeline-config
#   include crm.conf                /usr/share/crm-gateway/conf/crm.conf
#   build/docs                      /usr/share/crm-gateway/docs
#   port=5433 (the private cluster) 5432, the system PostgreSQL's (and
#                                   its max_connections in a comment),
#                                   its password in /etc/crm-gateway/pgpass
# nginx.conf gets a header of its own and "user www-data", and the comments
# that speak of relative paths go.  A relative path left over fails.
installed_conf() {
    local conf=$1
    {
        if [ "$(basename "$conf")" = nginx.conf ]; then
            cat <<'HEAD'
# An example /etc/nginx/nginx.conf for crm-gateway: the repository's
# conf/nginx.conf with the installed system's paths (./build.sh package
# writes it).  The package enables the module in /etc/nginx/modules-enabled;
# the secrets and the site's settings are in /etc/crm-gateway/.

user www-data;
HEAD
        fi
        sed -e '/^# The configuration "\.\/build\.sh run" uses/,/^$/d' \
            -e 's#^load_module build/modules/ngx_http_crm_module\.so;#include /etc/nginx/modules-enabled/*.conf;#' \
            -e 's# var/log/# /var/log/nginx/#' \
            -e 's# var/run/nginx\.pid;# /run/nginx.pid;#' \
            -e 's# var/tmp/# /var/lib/nginx/#' \
            -e 's# var/spool\([ ;]\)# /var/spool/crm-gateway\1#' \
            -e 's# \.\./var/secrets/# /etc/crm-gateway/#' \
            -e 's#/etc/crm/#/etc/crm-gateway/#g' \
            -e 's# \.\./pipeline-config;# /usr/share/crm-gateway/pipeline-config;#' \
            -e 's#^\( *\)include crm\.conf;#\1include /usr/share/crm-gateway/conf/crm.conf;#' \
            -e 's#that "\./build\.sh build" assembles in build/docs/ (relative$#that the package installs in /usr/share/crm-gateway/docs/;#' \
            -e "s#^\\(\# *\\)to nginx's prefix); #\\1#" \
            -e 's#build/docs\b#/usr/share/crm-gateway/docs#g' \
            -e 's#\(crm_database "[^"]*\)port=5433\([^"]*\)"#\1port=5432\2 passfile=/etc/crm-gateway/pgpass"#' \
            -e "s#the private cluster's\$#PostgreSQL's default#" \
            -e 's#^\# max_connections (300)\.#\# max_connections (100).#' \
            -e "/# relative to this file, like nginx's own/d" \
            -e 's#\.  Relative$#.#' \
            -e '/^ *# to the prefix (the repository)\.$/d' \
            -e '/^ *# what \.\/build\.sh run takes from the environment/,/^ *include \.\.\/var\/conf\/\*\.conf;/c\
    # the site'"'"'s settings, in /etc/crm-gateway/*.conf: where links may\
    # lead, the identity provider, the callbacks'"'"' secret, the webhook\
    # sources, e.g.\
    #   crm_redirect_allow_hosts apps.shopify.com *.myshopify.com;\
    #   crm_idp_project_id my-firebase-project;\
    #   crm_callback_secret_file /etc/crm-gateway/callback.secret;\
    #   crm_webhook_source shopify shopify /etc/crm-gateway/shopify-app.secret;\
    include /etc/crm-gateway/*.conf;' \
            "$conf"
    } > "$PKG_DIR/conf.tmp"

    if grep -nE '(^|[ "])(\.\./|var/|build/)|build\.sh (run|build)' "$PKG_DIR/conf.tmp" >&2; then
        die "$conf: the lines above name the repository's paths; teach installed_conf in build.sh their installed ones"
    fi
    cat "$PKG_DIR/conf.tmp"
    rm -f "$PKG_DIR/conf.tmp"
}

# Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up,
# and one per directory and link
installed_size() {
    find "$1" -path "$1/DEBIAN" -prune -o -printf '%y %s\n' \
        | awk '$1 == "f" { n += int(($2 + 1023) / 1024); next } { n++ }
               END { print n }'
}

cmd_package() {
    local version arch abi shlibs deb work stage sde doc

    cmd_build
    install_missing "${PKG_TOOLS[@]}"

    version=$(sed -n 's/^#define CRM_VERSION *"\(.*\)"$/\1/p' \
        "$ROOT/ngx_crm_module/src/service/crm_call.h")-1
    [ "$version" != -1 ] || die "no CRM_VERSION in crm_call.h"
    head -1 "$ROOT/pkg/changelog" | grep -qF "$PKG_NAME ($version) " \
        || die "pkg/changelog: its first entry is not $version; add one"
    arch=$(dpkg --print-architecture)

    # the ABI nginx-dev's sources (which the module was built from) name,
    # as dh_nginx reads it; the installed nginx must provide that one
    abi=$(sed -n 's/^nginx:abi=//p' /usr/share/nginx/src/debian/libnginx-mod.abisubstvars)
    [ -n "$abi" ] || die "nginx-dev names no nginx ABI"
    { dpkg-query -W -f='${Provides}\n' nginx nginx-core nginx-light \
            nginx-full nginx-extras 2>/dev/null || true; } \
        | tr ',' '\n' | grep -qx " *$abi *" \
        || die "the installed nginx does not provide $abi, which nginx-dev names"

    log "packaging $PKG_NAME $version ($arch, $abi)"
    umask 022
    rm -rf "$PKG_DIR"
    work=$PKG_DIR/work
    stage=$work/debian/$PKG_NAME
    doc=$stage/usr/share/doc/$PKG_NAME
    mkdir -p "$stage/DEBIAN" "$stage/usr/lib/nginx/modules" "$stage/usr/sbin" \
        "$stage/usr/share/nginx/modules-available" "$stage/usr/share/man/man8" \
        "$stage/usr/share/crm-gateway/schema" "$stage/usr/share/crm-gateway/conf" \
        "$doc"

    # stripped as dh_strip strips
    strip --remove-section=.comment --remove-section=.note --strip-unneeded \
        -o "$stage/usr/lib/nginx/modules/ngx_http_crm_module.so" "$MODULE"
    strip --remove-section=.comment --remove-section=.note --strip-unneeded \
        -o "$stage/usr/sbin/crm-admin" "$BUILD/crm-admin"
    chmod 644 "$stage/usr/lib/nginx/modules/ngx_http_crm_module.so"
    chmod 755 "$stage/usr/sbin/crm-admin"

    cp "$ROOT/pkg/mod-http-crm.conf" "$stage/usr/share/nginx/modules-available/"
    cp "$ROOT"/schema/[0-9]*.sql "$stage/usr/share/crm-gateway/schema/"
    cp -R "$ROOT/pipeline-config" "$stage/usr/share/crm-gateway/"
    installed_conf "$ROOT/conf/nginx.conf" > "$stage/usr/share/crm-gateway/conf/nginx.conf"
    installed_conf "$ROOT/conf/crm.conf" > "$stage/usr/share/crm-gateway/conf/crm.conf"
    if [ -d "$BUILD/docs" ]; then
        cp -R "$BUILD/docs" "$stage/usr/share/crm-gateway/docs"
        # the notices of what Swagger UI's bundle bundles (pkg/copyright)
        gzip -9n < "$ROOT/docs/node_modules/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt" \
            > "$doc/swagger-ui-bundle.js.LICENSE.txt.gz"
    elif grep -q 'build/docs\b' "$ROOT/conf/crm.conf"; then
        die "conf/crm.conf serves build/docs, which the build did not make"
    fi

    cp "$ROOT/pkg/copyright" "$doc/copyright"
    install -D -m 644 "$ROOT/pkg/lintian-overrides" \
        "$stage/usr/share/lintian/overrides/$PKG_NAME"
    gzip -9n < "$ROOT/pkg/changelog" > "$doc/changelog.Debian.gz"
    gzip -9n < "$ROOT/pkg/crm-admin.8" > "$stage/usr/share/man/man8/crm-admin.8.gz"
    cp "$ROOT/pkg/postinst" "$ROOT/pkg/prerm" "$ROOT/pkg/postrm" "$stage/DEBIAN/"

    find "$stage" -type d -exec chmod 755 {} +
    find "$stage" -type f ! -path "$stage/DEBIAN/*" ! -path "$stage/usr/sbin/*" \
        -exec chmod 644 {} +
    chmod 755 "$stage"/DEBIAN/p*

    # the libraries' packages, as dh_shlibdeps finds them: dpkg-shlibdeps
    # wants a debian/control, which a two-line one satisfies
    printf 'Source: crm-gateway\n\nPackage: %s\nArchitecture: any\n' \
        "$PKG_NAME" > "$work/debian/control"
    shlibs=$(cd "$work" && dpkg-shlibdeps -O \
            -e"debian/$PKG_NAME/usr/lib/nginx/modules/ngx_http_crm_module.so" \
            -e"debian/$PKG_NAME/usr/sbin/crm-admin") \
        || die "dpkg-shlibdeps failed"
    shlibs=${shlibs#shlibs:Depends=}

    sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" \
        -e "s/@INSTALLED_SIZE@/$(installed_size "$stage")/" \
        -e "s/@NGINX_ABI@/$abi/" -e "s/@SHLIBS_DEPENDS@/$shlibs/" \
        "$ROOT/pkg/control.in" > "$stage/DEBIAN/control"
    (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' \
        | LC_ALL=C sort | xargs -d '\n' md5sum) > "$stage/DEBIAN/md5sums"
    chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

    # the same tree gives the same bytes: the last commit's time everywhere
    sde=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}
    find "$stage" -exec touch -h -d "@$sde" {} +

    deb=$PKG_DIR/${PKG_NAME}_${version}_$arch.deb
    SOURCE_DATE_EPOCH=$sde dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
    log "lintian"
    lintian --fail-on error "$deb" >&2 \
        || die "lintian found errors in $deb"
    log "built $deb"
}

main() {
    local cmd=${1:-}
    [ $# -gt 0 ] && shift
    case "$cmd" in
        deps) cmd_deps ;;
        build) cmd_build ;;
        db) cmd_db ;;
        db-stop) cmd_db_stop ;;
        migrate) cmd_migrate ;;
        run) cmd_run ;;
        test) cmd_test ;;
        bench) cmd_bench "$@" ;;
        soak) cmd_soak "$@" ;;
        admin) cmd_admin "$@" ;;
        retain-clicks) cmd_retain_clicks "$@" ;;
        idp-token) cmd_idp_token "$@" ;;
        package) cmd_package ;;
        *) sed -n '3,/^# Environment/p' "$0" \
               | sed -e '$d' -e 's/^# \{0,1\}//'; exit 2 ;;
    esac
}

main "$@"

#!/usr/bin/env bash
#
# Benchmarks the gateway against nginx's own "return 200" in the same nginx
# and the same run, so every figure is also a ratio that survives a noisy
# machine.  Several alternating rounds; medians go to bench/RESULTS.md.
#
# Run through "./build.sh bench" (which builds first).  Environment:
# BENCH_ROUNDS (5), BENCH_SECONDS (5), BENCH_CONNECTIONS (32).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${BENCH_ROUNDS:-5}
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNECTIONS:-32}
WORK=$(mktemp -d /tmp/crm-bench.XXXXXX)
chmod 755 "$WORK"

free_port() {
    perl -MIO::Socket::INET -e \
        'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport'
}

export CRM_VAR_DIR=$WORK/var
export CRM_PG_PORT
CRM_PG_PORT=$(free_port)
PORT=$(free_port)
NGINX=(nginx -p "$WORK/" -c "$WORK/nginx.conf")

cleanup() {
    "${NGINX[@]}" -s quit 2>/dev/null || true
    sleep 0.5
    "$ROOT/build.sh" db-stop
    rm -rf "$WORK"
}
trap cleanup EXIT

"$ROOT/build.sh" db

openssl rand -hex 32 | tr -d '\n' > "$WORK/jwt.secret"

cat > "$WORK/nginx.conf" <<EOF
load_module $ROOT/build/modules/ngx_http_crm_module.so;
worker_processes 2;
error_log $WORK/error.log warn;
pid $WORK/nginx.pid;
thread_pool crm threads=4 max_queue=65536;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/body;
    crm_database "host=127.0.0.1 port=$CRM_PG_PORT dbname=crm user=crm";
    crm_jwt_secret_file $WORK/jwt.secret;
    crm_pipeline $ROOT/pipeline-config;
    server {
        listen 127.0.0.1:$PORT;
        location / { crm_api; }
        location = /baseline { return 200 "ok\n"; }
    }
}
EOF

"${NGINX[@]}"
sleep 0.5

URL=http://127.0.0.1:$PORT
curl -sf -o /dev/null -X POST "$URL/auth/register" \
    -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","password":"bench-password","full_name":"Bench"}'
TOKEN=$(curl -sf -X POST "$URL/auth/login" -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","password":"bench-password"}' \
    | perl -MJSON::PP -0ne 'print decode_json($_)->{access_token}')

# prints "<req/s> <p99 ms> <errors>" for one wrk run
measure() {
    wrk -t2 -c"$CONNS" -d"${SECONDS_PER_RUN}s" --latency "$@" 2>&1 | perl -ne '
        $rps = $1 if /^Requests\/sec:\s+([\d.]+)/;
        if (/^\s+99%\s+([\d.]+)(us|ms|s)\b/) {
            $p99 = $1 * ({us => 0.001, ms => 1, s => 1000}->{$2});
        }
        $err += $1 if /Non-2xx or 3xx responses:\s+(\d+)/;
        $err += $1 + $2 + $3 + $4
            if /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/;
        END { printf "%.0f %.2f %d\n", $rps, $p99, $err + 0 }'
}

median() {
    sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# warm up: every pool thread opens its connection and prepares statements
measure -H "Authorization: Bearer $TOKEN" "$URL/auth/me" > /dev/null

declare -A RPS P99 ERR
NAMES=(baseline auth_me)

for ((i = 1; i <= ROUNDS; i++)); do
    for name in "${NAMES[@]}"; do
        case $name in
            baseline) r=$(measure "$URL/baseline") ;;
            auth_me) r=$(measure -H "Authorization: Bearer $TOKEN" "$URL/auth/me") ;;
        esac
        read -r rps p99 err <<< "$r"
        RPS[$name]+="$rps "
        P99[$name]+="$p99 "
        ERR[$name]=$(( ${ERR[$name]:-0} + err ))
        printf 'round %d %-10s %8s req/s  p99 %6s ms  errors %s\n' "$i" "$name" "$rps" "$p99" "$err" >&2
    done
done

med() { tr ' ' '\n' <<< "$1" | grep -v '^$' | median; }

base=$(med "${RPS[baseline]}")
me=$(med "${RPS[auth_me]}")
ratio=$(awk -v a="$me" -v b="$base" 'BEGIN { printf "%.3f", a / b }')

{
    echo "# Benchmark results"
    echo
    echo "Produced by \`./build.sh bench\` on $(date -u +%Y-%m-%dT%H:%M:%SZ):"
    echo "$(nproc) cores, nginx $(nginx -v 2>&1 | sed 's/.*\///'), 2 workers, thread_pool crm threads=4,"
    echo "PostgreSQL 15 on the same machine, wrk -t2 -c$CONNS, $ROUNDS alternating rounds of"
    echo "${SECONDS_PER_RUN} s; figures are medians over the rounds."
    echo
    echo "| endpoint | req/s (median) | p99 ms (median) | errors (all rounds) | ratio to \`return 200\` |"
    echo "|---|---|---|---|---|"
    echo "| \`return 200\` (baseline, same nginx) | $base | $(med "${P99[baseline]}") | ${ERR[baseline]} | 1.000 |"
    echo "| \`GET /auth/me\` (token check + one account read) | $me | $(med "${P99[auth_me]}") | ${ERR[auth_me]} | $ratio |"
    echo
    echo "Target for \`GET /auth/me\`: 10,000 req/s or more with 32 connections, no errors."
} > "$ROOT/bench/RESULTS.md"

cat "$ROOT/bench/RESULTS.md"

#!/usr/bin/env bash
#
# Benchmarks the gateway against nginx's own "return 200" in the same nginx
# and the same run, so every figure is also a ratio that survives a noisy
# machine.  Several alternating rounds; medians go to bench/RESULTS.md.
#
# Run through "./build.sh bench" (which builds first).  Environment:
# BENCH_ROUNDS (5), BENCH_SECONDS (5), BENCH_CONNECTIONS (32), and
# BENCH_THREADS ("2 4"): the sizes of the "crm" pool per worker to measure,
# each a full set of rounds and a table of its own (the first is what
# conf/nginx.conf ships; logins always have their own 2-thread pool).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${BENCH_ROUNDS:-5}
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNECTIONS:-32}
read -r -a THREAD_SETS <<< "${BENCH_THREADS:-2 4}"
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

# nginx with $1 pool threads per worker
start_nginx() {
    "${NGINX[@]}" -s quit 2>/dev/null || true
    while [ -f "$WORK/nginx.pid" ]; do sleep 0.1; done
    cat > "$WORK/nginx.conf" <<EOF
load_module $ROOT/build/modules/ngx_http_crm_module.so;
worker_processes 2;
error_log $WORK/error.log warn;
pid $WORK/nginx.pid;
thread_pool crm threads=$1 max_queue=65536;
thread_pool crm_slow threads=2 max_queue=65536;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/body;
    crm_database "host=127.0.0.1 port=$CRM_PG_PORT dbname=crm user=crm";
    crm_jwt_secret_file $WORK/jwt.secret;
    crm_pipeline $ROOT/pipeline-config;
    crm_slow_thread_pool crm_slow;
    server {
        listen 127.0.0.1:$PORT;
        location / { crm_api; }
        location = /baseline { return 200 "ok\n"; }
    }
}
EOF
    "${NGINX[@]}"
    sleep 0.5
}

start_nginx "${THREAD_SETS[0]}"

URL=http://127.0.0.1:$PORT
curl -sf -o /dev/null -X POST "$URL/auth/register" \
    -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","password":"bench-password","full_name":"Bench"}'
TOKEN=$(curl -sf -X POST "$URL/auth/login" -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","password":"bench-password"}' \
    | perl -MJSON::PP -0ne 'print decode_json($_)->{access_token}')
AUTH="Authorization: Bearer $TOKEN"

# 200 leads to read, list and move; the stage and two of its substages
ids=()
for ((i = 0; i < 200; i++)); do
    ids+=("$(curl -sf -X POST "$URL/leads/" -H "$AUTH" \
        -H 'Content-Type: application/json' \
        -d "{\"name\": \"Seed shop $i\", \"company\": \"Seed $i\"}" \
        | perl -MJSON::PP -0ne 'print decode_json($_)->{id}')")
done
BENCH_LEADS=$(IFS=,; echo "${ids[*]}")
BENCH_STAGE=demo
read -r BENCH_SUBSTAGE_A BENCH_SUBSTAGE_B < <(perl -MJSON::PP -0ne \
    '$s = decode_json($_); print "$s->[0]{status} $s->[1]{status}\n"' \
    "$ROOT/pipeline-config/$BENCH_STAGE/substages.json")
export BENCH_LEADS BENCH_STAGE BENCH_SUBSTAGE_A BENCH_SUBSTAGE_B

# the ceiling for one-row reads: pgbench's select-only run, same database
PGBENCH=(pgbench -h 127.0.0.1 -p "$CRM_PG_PORT" -U crm)
"${PGBENCH[@]}" -i -q -s 10 crm > /dev/null 2>&1

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

# the same three figures for pgbench -S (p99 from its latency average is
# not available: reported as -)
measure_pgbench() {
    "${PGBENCH[@]}" -S -M prepared -n -c "$CONNS" -j 2 -T "$SECONDS_PER_RUN" crm 2>&1 \
        | perl -ne '$tps = $1 if /^tps = ([\d.]+)/;
                    $err = $1 if /number of failed transactions: (\d+)/;
                    END { printf "%.0f - %d\n", $tps, $err + 0 }'
}

run() {
    case $1 in
        baseline) measure "$URL/baseline" ;;
        auth_me) measure -H "$AUTH" "$URL/auth/me" ;;
        lead_get) measure -H "$AUTH" -s "$ROOT/bench/get_lead.lua" "$URL" ;;
        lead_list) measure -H "$AUTH" "$URL/leads/?limit=50" ;;
        lead_create) measure -H "$AUTH" -s "$ROOT/bench/post_lead.lua" "$URL" ;;
        lead_move) measure -H "$AUTH" -s "$ROOT/bench/move_stage.lua" "$URL" ;;
        pgbench_s) measure_pgbench ;;
    esac
}

median() {
    sort -n | awk '{ a[NR] = $1 }
        END { if (NR == 0) print "-";
              else print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# the median of the numbers in a list; "-" (not measured) is skipped
med() { tr ' ' '\n' <<< "$1" | { grep -Ev '^-?$' || true; } | median; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

declare -A RPS P99 ERR
NAMES=(baseline auth_me lead_get lead_list lead_create lead_move pgbench_s)

row() {
    local name=$1 label=$2 rps p99
    rps=$(med "${RPS[$name]}")
    p99=$(med "${P99[$name]}")
    echo "| $label | $rps | $p99 | ${ERR[$name]} | $(ratio "$rps" "$base") | $(ratio "$rps" "$ceiling") |"
}

{
    echo "# Benchmark results"
    echo
    echo "Produced by \`./build.sh bench\` on $(date -u +%Y-%m-%dT%H:%M:%SZ):"
    echo "$(nproc) cores, nginx $(nginx -v 2>&1 | sed 's/.*\///'), 2 workers, PostgreSQL 15 on the"
    echo "same machine, wrk -t2 -c$CONNS (pgbench -c$CONNS -j2), $ROUNDS alternating rounds of"
    echo "${SECONDS_PER_RUN} s per table; figures are medians over the rounds."
} > "$ROOT/bench/RESULTS.md"

for threads in "${THREAD_SETS[@]}"; do
    start_nginx "$threads"

    # warm up: every pool thread opens its connection, prepares statements
    run auth_me > /dev/null
    run lead_get > /dev/null

    RPS=() P99=() ERR=()

    for ((i = 1; i <= ROUNDS; i++)); do
        for name in "${NAMES[@]}"; do
            read -r rps p99 err <<< "$(run "$name")"
            RPS[$name]+="$rps "
            P99[$name]+="$p99 "
            ERR[$name]=$(( ${ERR[$name]:-0} + err ))
            printf 'threads %d round %d %-12s %8s req/s  p99 %6s ms  errors %s\n' \
                "$threads" "$i" "$name" "$rps" "$p99" "$err" >&2
        done
    done

    base=$(med "${RPS[baseline]}")
    ceiling=$(med "${RPS[pgbench_s]}")

    {
        echo
        echo "## thread_pool crm threads=$threads"
        echo
        echo "| endpoint | req/s (median) | p99 ms (median) | errors (all rounds) | ratio to \`return 200\` | ratio to \`pgbench -S\` |"
        echo "|---|---|---|---|---|---|"
        row baseline "\`return 200\` (baseline, same nginx)"
        row auth_me "\`GET /auth/me\` (token check + one account read)"
        row lead_get "\`GET /leads/{id}\` (200 leads, round robin)"
        row lead_list "\`GET /leads/?limit=50\`"
        row lead_create "\`POST /leads/\` (insert + history + audit, one transaction)"
        row lead_move "\`PUT /leads/{id}/stage\` (update + history + audit)"
        row pgbench_s "\`pgbench -S -M prepared\` (tps, same database)"
    } >> "$ROOT/bench/RESULTS.md"
done

{
    echo
    echo "Targets: \`GET /auth/me\` at 10,000 req/s or more with no errors;"
    echo "\`GET /leads/{id}\` at 0.35 x the \`pgbench -S\` ceiling or better."
} >> "$ROOT/bench/RESULTS.md"

cat "$ROOT/bench/RESULTS.md"

#!/usr/bin/env bash
#
# The clicks table's growth, the performance views and the webhook intake
# at scale (issues 11 and 13): 100 accounts with 50 million clicks over the
# last 6 months (one monthly partition each, crm.click_partition_ensure)
# and 1 million leads, made by SQL in a private PostgreSQL (the counters'
# triggers fire as for events that happened, then one crm.stats_compact
# folds them).  Around the load, in one nginx configuration:
#
#  - the click flush, twice: on the empty table before the load (the
#    baseline) and over the loaded one, the same links and settings: wrk
#    drives redirects GET /r/{id} for BENCH_FLUSH_SECONDS with PostgreSQL
#    stopped, so the clicks queue; then it starts and the backlog drains
#    (crm_click_queue_bytes 0 in /metrics, the rows stable): the clicks
#    flushed a second from the first batch to the drain, and every click
#    served must be a row;
#  - alternating rounds of GET /leads/{id} (the reference), the summary
#    GET /performance/me, the admin leaderboard, and signed webhook
#    events, each of them new, over the loaded data;
#  - retention, after the rounds: SELECT crm.clicks_retain(n) on the loaded
#    table, timed, with the performance views read before and after (they
#    read the counters, which retention leaves alone).
#
# Medians go to a section of bench/RESULTS.md of its own, replaced at
# every run; the other sections are kept.
#
# Run through "./build.sh bench scale" (which builds first), or after
# bench/run.sh by "./build.sh bench".  Environment:
#   BENCH_CLICKS          clicks loaded (50,000,000 x BENCH_SCALE)
#   BENCH_CLICK_MONTHS    the months they span, back from now (6: 6 or 7
#                         monthly partitions)
#   BENCH_SCALE           scales the default clicks and the leads
#                         (1,000,000), for trying the script (1; a tenth
#                         is 0.1)
#   BENCH_FLUSH_SECONDS   each flush measurement's wrk run (10)
#   BENCH_FLUSH_CONNECTIONS  its connections (64)
#   BENCH_RETAIN_MONTHS   n of crm.clicks_retain(n) (BENCH_CLICK_MONTHS - 3,
#                         at least 1: the oldest 3 partitions of 7 go)
#   BENCH_ROUNDS (5), BENCH_SECONDS (5), BENCH_CONNECTIONS (32): the rounds
#   BENCH_WEBHOOK_EVENTS  events signed for each webhook round (10,000 a
#                         second of a round; a round that runs out fails)
#   BENCH_LOAD_ONLY=1     loads the data, prints its figures and stops
#                         (no flush measurement)

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/bench/lib/bench.sh"
ROUNDS=${BENCH_ROUNDS:-5}
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNECTIONS:-32}
SCALE=${BENCH_SCALE:-1}
WEBHOOK_EVENTS=${BENCH_WEBHOOK_EVENTS:-$((10000 * SECONDS_PER_RUN))}
FLUSH_SECONDS=${BENCH_FLUSH_SECONDS:-10}
FLUSH_CONNS=${BENCH_FLUSH_CONNECTIONS:-64}

ACCOUNTS=100
ADMINS=3
LINKS_PER_ACCOUNT=10
CLICKS=${BENCH_CLICKS:-$(awk -v s="$SCALE" 'BEGIN { printf "%d", 50000000 * s }')}
CLICK_MONTHS=${BENCH_CLICK_MONTHS:-6}
RETAIN_MONTHS=${BENCH_RETAIN_MONTHS:-$(( CLICK_MONTHS > 4 ? CLICK_MONTHS - 3 : 1 ))}
LEADS=$(awk -v s="$SCALE" 'BEGIN { printf "%d", 1000000 * s }')
CLICK_STATEMENTS=10

for v in CLICKS CLICK_MONTHS RETAIN_MONTHS LEADS FLUSH_SECONDS FLUSH_CONNS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench: $v must be a positive integer, not '${!v}'" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/crm-scale.XXXXXX)
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
URL=http://127.0.0.1:$PORT

cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -f "$WORK/error.log" ]; then
        echo "bench: failed ($rc); nginx's error.log ends:" >&2
        tail -40 "$WORK/error.log" >&2
    fi
    [ ! -f "$WORK/nginx.conf" ] || "${NGINX[@]}" -s quit 2>/dev/null || true
    sleep 0.5
    "$ROOT/build.sh" db-stop
    rm -rf "$WORK"
}
trap cleanup EXIT

"$ROOT/build.sh" db

PSQL=(psql -h 127.0.0.1 -p "$CRM_PG_PORT" -U crm -d crm -v ON_ERROR_STOP=1 -tAq)
PSQL_SUPER=(psql -h 127.0.0.1 -p "$CRM_PG_PORT" -U postgres -d crm -v ON_ERROR_STOP=1 -tAq)

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- nginx and the click flush -----------------------------------------------

openssl rand -hex 32 | tr -d '\n' > "$WORK/jwt.secret"
openssl rand -hex 32 | tr -d '\n' > "$WORK/callback.secret"
openssl rand -hex 32 | tr -d '\n' > "$WORK/link.secret"
openssl rand -hex 32 > "$WORK/credentials.secret"
printf 'whsec_%s\n' "$(openssl rand -base64 32)" > "$WORK/webhook-generic.secret"
openssl rand -hex 24 > "$WORK/webhook-shopify.secret"

# bench/run.sh's, with the two webhook sources; one configuration for the
# whole run
bench_nginx_conf 2 60s "    crm_currency USD;
    crm_webhook_source generic standard $WORK/webhook-generic.secret;
    crm_webhook_source shopify shopify $WORK/webhook-shopify.secret;" ""

start_nginx() {
    "${NGINX[@]}"
    sleep 0.5
}

stop_nginx() {
    local i
    "${NGINX[@]}" -s quit
    for ((i = 0; i < 600; i++)); do
        [ -f "$WORK/nginx.pid" ] || return 0
        sleep 0.1
    done
    echo "bench: nginx did not stop" >&2
    exit 1
}

# one /metrics value
metric() {
    curl -sf "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}

# one value from the database
sql() { "${PSQL[@]}" -c "$1"; }

# waits until the workers have folded every counter delta (once a second)
folded() {
    local i
    for ((i = 0; i < 600; i++)); do
        [ "$(sql 'SELECT count(*) FROM crm.stat_deltas')" = 0 ] && return 0
        sleep 0.2
    done
    echo "bench: the counters' deltas were not folded" >&2
    exit 1
}

# the click rows since $1 (a timestamptz): a range of the primary key,
# which leads with the time, whatever the table holds before it
clicks_since() { sql "SELECT count(*) FROM crm.clicks WHERE clicked_at >= '$1'"; }

# waits until the click queue and the spool are empty and the rows since
# $1 stop growing; prints "<rows> <when that count was first seen>"
click_drain() {
    local since=$1 t0 rows last=-1 seen=0
    t0=$(now)
    while :; do
        if [ "$(metric crm_click_queue_bytes)" = 0 ] \
            && [ "$(metric crm_click_spool_bytes)" = 0 ]; then
            rows=$(clicks_since "$since")
            if [ "$rows" = "$last" ]; then
                echo "$rows $seen"
                return
            fi
            last=$rows
            seen=$(now)
        fi
        if awk -v a="$(now)" -v b="$t0" 'BEGIN { exit !(a - b > 600) }'; then
            echo "bench: the click queue did not drain in 600 s" >&2
            exit 1
        fi
        sleep 0.1
    done
}

# "<req/s> <p99 ms> <errors> <responses read>" for $1 seconds of redirects
# over every link, round robin, on $2 connections
redirects() {
    BENCH_PATH=/r/ BENCH_IDS=$LINK_IDS \
        wrk -t2 -c"$2" -d"$1s" --latency -s "$ROOT/bench/get_each.lua" "$URL" 2>&1 | bench_wrk_figures
}

# The click flush as $1, crm.clicks holding $2 rows: every link in the
# cache first (those clicks stored before the count starts, and added to
# $2), then FLUSH_SECONDS of redirects with PostgreSQL stopped, so that
# the clicks queue (the cached links keep answering), then PostgreSQL
# starts and the backlog drains, timed from the first flushed batch (as
# bench/run.sh measures it).  Fills the FL_* arrays.
declare -A FL_RPS FL_P99 FL_ERR FL_READ FL_SERVED FL_STORED FL_RATE FL_LAG \
    FL_SPOOLED FL_DROPPED FL_TABLE FL_COUNTED FL_BACKLOG
counted() { sql 'SELECT sum(clicks) FROM crm.affiliate_link_stats'; }
flush_round() {
    local label=$1 since mark t1 f0 f1 rows seen r0 s0 d0 c0 rps p99 err n
    "${PSQL_SUPER[@]}" -c CHECKPOINT
    since=$(sql 'SELECT now()')
    redirects 1 8 > /dev/null
    read -r rows seen <<< "$(click_drain "$since")"
    [ -n "$rows" ] || exit 1
    FL_TABLE[$label]=$(( $2 + rows ))
    sleep 1
    # nginx's clock is read once an event loop turn: half a second spare
    mark=$(sql "SELECT now() - interval '0.5 s'")
    r0=$(metric 'crm_redirects_total{status="302"}')
    s0=$(metric crm_clicks_spooled_total)
    d0=$(metric crm_clicks_dropped_total)
    c0=$(counted)
    "$ROOT/build.sh" db-stop
    read -r rps p99 err n <<< "$(redirects "$FLUSH_SECONDS" "$FLUSH_CONNS")"
    FL_BACKLOG[$label]=$(metric crm_click_queue_bytes)
    f0=$(metric crm_clicks_flushed_total)
    "$ROOT/build.sh" db > /dev/null 2>&1
    while [ "$(metric crm_clicks_flushed_total)" = "$f0" ]; do sleep 0.01; done
    t1=$(now)
    f1=$(metric crm_clicks_flushed_total)
    read -r rows seen <<< "$(click_drain "$mark")"
    [ -n "$rows" ] || exit 1
    FL_RPS[$label]=$rps FL_P99[$label]=$p99 FL_ERR[$label]=$err FL_READ[$label]=$n
    FL_SERVED[$label]=$(( $(metric 'crm_redirects_total{status="302"}') - r0 ))
    FL_SPOOLED[$label]=$(( $(metric crm_clicks_spooled_total) - s0 ))
    FL_DROPPED[$label]=$(( $(metric crm_clicks_dropped_total) - d0 ))
    FL_STORED[$label]=$rows
    FL_COUNTED[$label]=$(( $(counted) - c0 ))
    FL_RATE[$label]=$(awk -v n=$(( $(metric crm_clicks_flushed_total) - f1 )) -v a="$t1" -v b="$seen" \
        'BEGIN { printf "%.0f", n / (b - a) }')
    FL_LAG[$label]=$(awk -v a="$t1" -v b="$seen" 'BEGIN { printf "%.1f", b - a }')
    printf 'flush %-7s %s rows before: %s redirects/s p99 %s ms errors %s, served %s, stored %s (spooled %s, dropped %s, counted %s), %s clicks/s, drained in %s s\n' \
        "$label" "${FL_TABLE[$label]}" "$rps" "$p99" "$err" "${FL_SERVED[$label]}" "$rows" \
        "${FL_SPOOLED[$label]}" "${FL_DROPPED[$label]}" "${FL_COUNTED[$label]}" "${FL_RATE[$label]}" "${FL_LAG[$label]}" >&2
}

# --- the data ----------------------------------------------------------------

declare -A LOAD_S
# runs SQL as phase $1, timed
phase() {
    local name=$1 t0
    shift
    t0=$(now)
    "${PSQL[@]}" "$@" > /dev/null
    LOAD_S[$name]=$(elapsed "$t0")
    printf 'load %-12s %7s s\n' "$name" "${LOAD_S[$name]}" >&2
}

# the pipeline's substages, each with the outcome substages.json gives it
# and a share of the leads (weights by stage: most leads are early)
SUBSTAGES=$(perl -MJSON::PP -e '
    my $dir = shift;
    my %weight = (new_account => 20, lead => 25, demo => 12, proposal => 8,
                  contract => 5, approval => 3, customer => 10, closed => 17);
    local $/;
    open my $f, "<", "$dir/stages.json" or die "$dir/stages.json: $!";
    my @rows;
    for my $stage (@{ decode_json(<$f>) }) {
        open my $s, "<", "$dir/$stage/substages.json" or die "$stage: $!";
        my @subs = @{ decode_json(<$s>) };
        for my $sub (@subs) {
            my $outcome = defined $sub->{outcome} ? "'\''$sub->{outcome}'\''" : "NULL";
            push @rows, sprintf "('\''%s'\'', '\''%s'\'', %d, %s, %d)", $stage,
                $sub->{status}, $sub->{score}, $outcome,
                int(($weight{$stage} // 5) * 60 / @subs);
        }
    }
    print join ",\n", @rows' "$ROOT/pipeline-config")

# the links: "bench", the number in 5 digits and the 2 check characters
# under the link secret (crm_ids.h), so that the redirects take them;
# LINK_VALUES for SQL, LINK_IDS for wrk
LINK_VALUES=$(perl -MDigest::SHA=hmac_sha256 -e '
    my ($secret_file, $links, $per) = @ARGV;
    open my $f, "<", $secret_file or die "$secret_file: $!";
    local $/;
    my $key = <$f>;
    $key =~ s/\n\z//;
    my @b62 = ("0" .. "9", "A" .. "Z", "a" .. "z");
    my @rows;
    for my $n (1 .. $links) {
        my $ten = sprintf "bench%05d", $n;
        my $h = unpack("N", hmac_sha256($ten, $key)) % (62 * 62);
        push @rows, sprintf "(%d, '\''%s%s%s'\'', %d)", $n, $ten,
            $b62[int($h / 62)], $b62[$h % 62], int(($n - 1) / $per) + 1;
    }
    print join(",\n", @rows)' "$WORK/link.secret" $((ACCOUNTS * LINKS_PER_ACCOUNT)) "$LINKS_PER_ACCOUNT")
LINK_IDS=$(grep -o "'[0-9A-Za-z]*'" <<< "$LINK_VALUES" | tr -d "'" | paste -sd ,)

# the clicks' span: the last CLICK_MONTHS months up to now, as unix seconds
read -r SPAN_FROM SPAN_TO <<< "$(sql "SELECT extract(epoch FROM now() - interval '$CLICK_MONTHS months'),
                                             extract(epoch FROM now())" | tr '|' ' ')"
SPAN_DAYS=$(awk -v a="$SPAN_FROM" -v b="$SPAN_TO" 'BEGIN { printf "%.0f", (b - a) / 86400 }')

# helpers, dropped after the load: accounts and links by number, and the
# base62 digits of click ids (crm_ids.h: link id, second, 8 more)
phase setup <<EOF
CREATE TABLE public.scale_substages (stage text, substage text, score int,
                                     outcome text, weight int);
INSERT INTO public.scale_substages VALUES $SUBSTAGES;
CREATE TABLE public.scale_accounts (n int PRIMARY KEY, id uuid NOT NULL);
CREATE TABLE public.scale_links (n int PRIMARY KEY, id text NOT NULL,
                                 account int NOT NULL);
CREATE FUNCTION public.scale_b62(v bigint, p bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS \$\$
    SELECT substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
                  (v / p % 62)::int + 1, 1)
\$\$;
CREATE FUNCTION public.scale_b62_6(v bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS \$\$
    SELECT public.scale_b62(v, 916132832) || public.scale_b62(v, 14776336)
        || public.scale_b62(v, 238328) || public.scale_b62(v, 3844)
        || public.scale_b62(v, 62) || public.scale_b62(v, 1)
\$\$;
EOF

# accounts (the first $ADMINS admins), each with its links; passwords come
# later, from one registration
phase accounts <<EOF
WITH a AS (
    INSERT INTO crm.accounts (email, full_name, role, created_at, updated_at)
    SELECT format('scale-%s@bench.example.com', n), format('Scale account %s', n),
           CASE WHEN n <= $ADMINS THEN 'admin' ELSE 'member' END,
           now() - interval '400 days', now() - interval '400 days'
      FROM generate_series(1, $ACCOUNTS) n
    RETURNING id, email)
INSERT INTO public.scale_accounts
SELECT substring(email FROM 'scale-(\d+)@')::int, id FROM a;

INSERT INTO public.scale_links VALUES $LINK_VALUES;

INSERT INTO crm.affiliate_links (id, owner_id, name, target_url, install_cents,
                                 conversion_bps, currency, created_at, updated_at)
SELECT l.id, a.id, 'Link ' || l.n, 'https://shop.example.com/p/' || l.n, 500,
       1000, 'USD', now() - interval '400 days', now() - interval '400 days'
  FROM public.scale_links l JOIN public.scale_accounts a ON a.n = l.account;

-- the links' counters, as the API creates them with a link: the click
-- flush adds to them; the load's own clicks are counted in later
INSERT INTO crm.affiliate_link_stats (link_id) SELECT id FROM public.scale_links;

SELECT crm.click_partition_ensure(d)
  FROM generate_series(to_timestamp($SPAN_FROM), to_timestamp($SPAN_TO), interval '1 day') d;
SELECT crm.click_partition_ensure(to_timestamp($SPAN_TO));
EOF

# the click flush on the empty table: the baseline
if [ -z "${BENCH_LOAD_ONLY:-}" ]; then
    start_nginx
    flush_round before "$(sql 'SELECT count(*) FROM crm.clicks')"
    folded
    stop_nginx
fi

# the load alone may fill the WAL for minutes: checkpoints by time or
# size would only write the same pages again.  Put back before measuring.
"${PSQL_SUPER[@]}" -c "ALTER SYSTEM SET max_wal_size = '32GB'" \
    -c "ALTER SYSTEM SET checkpoint_timeout = '1h'" -c 'SELECT pg_reload_conf()' > /dev/null

# clicks in time order over the span, over the links unevenly
# (the later links have most), 1% HEAD and 2% flagged bots; in
# $CLICK_STATEMENTS statements, two at a time, each counted by the clicks
# trigger
click_statement() {
    local first=$(( $1 * per + 1 )) last=$(( ($1 + 1) * per ))
    [ "$last" -le "$CLICKS" ] || last=$CLICKS
    "${PSQL[@]}" > /dev/null <<EOF
INSERT INTO crm.clicks (click_id, link_id, clicked_at, shop_domain, ip,
                        user_agent, referer, is_bot, is_head)
SELECT l.id || public.scale_b62_6(extract(epoch FROM c.at)::bigint)
            || public.scale_b62(c.g, 3521614606208) || public.scale_b62(c.g, 56800235584)
            || public.scale_b62_6(c.g),
       l.id, c.at,
       CASE WHEN c.g % 10 = 0 THEN 'shop-' || c.g % $LEADS || '.myshopify.com' END,
       '10.' || c.g / 65536 % 256 || '.' || c.g / 256 % 256 || '.' || c.g % 256,
       CASE WHEN c.g % 50 = 0 THEN 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'
            WHEN c.g % 3 = 0 THEN 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148'
            ELSE 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36' END,
       CASE c.g % 4 WHEN 0 THEN 'https://www.instagram.com/' WHEN 1 THEN 'https://www.tiktok.com/' ELSE '' END,
       c.g % 50 = 0, c.g % 100 = 1
  FROM (SELECT g, to_timestamp($SPAN_FROM + (g - 1) * ($SPAN_TO - $SPAN_FROM)::float8 / $CLICKS) AS at,
               $ACCOUNTS * $LINKS_PER_ACCOUNT
                  - floor($ACCOUNTS * $LINKS_PER_ACCOUNT * random() ^ 2)::int AS link
          FROM generate_series($first, $last) g) c
  JOIN public.scale_links l ON l.n = c.link;
EOF
}

t0=$(now)
per=$(( (CLICKS + CLICK_STATEMENTS - 1) / CLICK_STATEMENTS ))
for ((s = 0; s < CLICK_STATEMENTS; s += 2)); do
    click_statement "$s" &
    pid=$!
    [ $((s + 1)) -ge "$CLICK_STATEMENTS" ] || click_statement $((s + 1))
    wait "$pid"
    printf 'load clicks %d/%d %7s s\n' $((s + 2)) "$CLICK_STATEMENTS" "$(elapsed "$t0")" >&2
done
LOAD_S[clicks]=$(elapsed "$t0")

# leads: over the accounts at random, over the substages by weight, with
# the substage's score and outcome; lead g has the email lead-g@example.com
# (4 in 5), the phone +1555 and g (1 in 2), the shop shop-g.myshopify.com
# (3 in 5; the webhooks' events name some of them); 1 in 5 came through one
# of its owner's links; created over the last year, 1 in 50 deleted
lead_statement() {
    "${PSQL[@]}" > /dev/null <<EOF
INSERT INTO crm.leads (owner_id, name, email, phone, company, shop_domain,
                       source, stage, substage, score, value_cents, currency,
                       affiliate_link_id, outcome, created_at, updated_at,
                       deleted_at)
SELECT a.id, 'Lead ' || x.g,
       CASE WHEN x.g % 5 <> 0 THEN 'lead-' || x.g || '@example.com' END,
       CASE WHEN x.g % 2 = 0 THEN '+1555' || lpad(x.g::text, 7, '0') END,
       CASE WHEN x.g % 3 <> 0 THEN 'Company ' || x.g END,
       CASE WHEN x.g % 10 < 6 THEN 'shop-' || x.g || '.myshopify.com' END,
       CASE WHEN x.g % 10 < 2 THEN 'affiliate'
            WHEN x.g % 10 < 5 THEN 'manual' WHEN x.g % 10 < 8 THEN 'api'
            ELSE 'webhook' END,
       s.stage, s.substage, s.score, x.g % 40 * 2500,
       CASE WHEN x.g % 20 = 7 THEN 'EUR' ELSE 'USD' END,
       CASE WHEN x.g % 10 < 2 THEN sl.id END,
       s.outcome, x.created, x.updated,
       CASE WHEN x.g % 50 = 49 THEN x.updated END
  FROM (SELECT g, account, pick, created,
               least(now(), created + later * interval '30 days') AS updated
          FROM (SELECT g, 1 + floor($ACCOUNTS * random())::int AS account,
                       1 + floor(p.total * random())::int AS pick,
                       now() - random() * interval '365 days' AS created,
                       random() AS later
                  FROM generate_series($1, $2) g,
                       (SELECT sum(weight) AS total FROM public.scale_substages) p) r) x
  JOIN public.scale_accounts a ON a.n = x.account
  JOIN public.scale_links sl
    ON sl.n = (x.account - 1) * $LINKS_PER_ACCOUNT + x.g / 10 % $LINKS_PER_ACCOUNT + 1
  JOIN (SELECT *, sum(weight) OVER (ORDER BY stage, substage) - weight AS lo
          FROM public.scale_substages) s
    ON x.pick > s.lo AND x.pick <= s.lo + s.weight;
EOF
}

t0=$(now)
lead_statement 1 $((LEADS / 2)) &
pid=$!
lead_statement $((LEADS / 2 + 1)) "$LEADS"
wait "$pid"
LOAD_S[leads]=$(elapsed "$t0")
printf 'load %-12s %7s s\n' leads "${LOAD_S[leads]}" >&2

# the affiliate leads' installs (each credited the link's 500), one in
# eight with an order within 30 days (10% commission), the wallets and
# their ledgers in time order, and the links' own counters (from all the
# rows, the baseline's flushed clicks with them)
phase commissions <<EOF
INSERT INTO crm.attributions (link_id, owner_id, lead_id, shop_domain, created_at)
SELECT affiliate_link_id, owner_id, id, shop_domain, created_at
  FROM crm.leads WHERE affiliate_link_id IS NOT NULL;

INSERT INTO crm.conversions (order_id, link_id, owner_id, attribution_id,
                             shop_domain, amount_cents, currency,
                             commission_cents, created_at)
SELECT 'order-' || id, link_id, owner_id, id, shop_domain, amount, 'USD',
       amount * 1000 / 10000, at
  FROM (SELECT *, 1000 + floor(random() * 99000)::bigint AS amount,
               least(now(), created_at + random() * interval '30 days') AS at
          FROM crm.attributions) a
 WHERE random() < 0.125;

CREATE TABLE public.scale_credits AS
SELECT owner_id AS account_id, 'commission_install' AS kind, 500::bigint AS amount,
       shop_domain AS reference, id AS source_id, created_at
  FROM crm.attributions
UNION ALL
SELECT owner_id, 'commission_conversion', commission_cents, order_id, id, created_at
  FROM crm.conversions WHERE commission_cents > 0;

INSERT INTO crm.wallets (account_id, currency, balance_cents,
                         lifetime_earnings_cents, created_at, updated_at)
SELECT account_id, 'USD', sum(amount), sum(amount), min(created_at), max(created_at)
  FROM public.scale_credits GROUP BY account_id;

INSERT INTO crm.wallet_transactions (account_id, kind, amount_cents,
                                     balance_after_cents, reference, source_id,
                                     created_at)
SELECT account_id, kind, amount,
       sum(amount) OVER (PARTITION BY account_id ORDER BY created_at, source_id),
       reference, source_id, created_at
  FROM public.scale_credits
 ORDER BY created_at, source_id;

INSERT INTO crm.affiliate_link_stats (link_id, clicks, installs, conversions,
                                      earnings_cents, last_click_at)
SELECT l.id, coalesce(c.n, 0), coalesce(i.n, 0), coalesce(o.n, 0),
       coalesce(i.cents, 0) + coalesce(o.cents, 0), c.last
  FROM crm.affiliate_links l
  LEFT JOIN (SELECT link_id, count(*) AS n, max(clicked_at) AS last
               FROM crm.clicks GROUP BY link_id) c ON c.link_id = l.id
  LEFT JOIN (SELECT link_id, count(*) AS n, 500 * count(*) AS cents
               FROM crm.attributions GROUP BY link_id) i ON i.link_id = l.id
  LEFT JOIN (SELECT link_id, count(*) AS n, sum(commission_cents) AS cents
               FROM crm.conversions GROUP BY link_id) o ON o.link_id = l.id
ON CONFLICT (link_id) DO UPDATE
   SET clicks = EXCLUDED.clicks, installs = EXCLUDED.installs,
       conversions = EXCLUDED.conversions, earnings_cents = EXCLUDED.earnings_cents,
       last_click_at = EXCLUDED.last_click_at;
EOF

DELTAS=$("${PSQL[@]}" -c 'SELECT count(*) FROM crm.stat_deltas')
phase compact -c 'SELECT crm.stats_compact(100000000)'

"${PSQL[@]}" -c 'DROP TABLE public.scale_substages, public.scale_links, public.scale_credits' \
    -c 'DROP FUNCTION public.scale_b62_6(bigint), public.scale_b62(bigint, bigint)'
"${PSQL_SUPER[@]}" -c 'ALTER SYSTEM RESET max_wal_size' \
    -c 'ALTER SYSTEM RESET checkpoint_timeout' -c 'SELECT pg_reload_conf()' > /dev/null
# the folded deltas leave their table and its indexes large and empty,
# which the workers' folds, once a second, never do
t0=$(now)
"${PSQL_SUPER[@]}" -c 'VACUUM FULL crm.stat_deltas' -c 'VACUUM ANALYZE' -c CHECKPOINT
LOAD_S[vacuum]=$(elapsed "$t0")
printf 'load %-12s %7s s\n' vacuum "${LOAD_S[vacuum]}" >&2
LOAD_TOTAL=$(awk -v s="${LOAD_S[*]}" 'BEGIN { n = split(s, a, " "); for (i = 1; i <= n; i++) t += a[i]; printf "%.0f", t }')

# "<partition>|<rows>|<bytes with indexes>" for the clicks' months,
# counted once: crm.clicks is their sum
PARTS=$("${PSQL[@]}" -F '|' -c "
    SELECT c.relname,
           (xpath('/row/n/text()',
                  query_to_xml(format('SELECT count(*) AS n FROM crm.%I', c.relname),
                               false, true, '')))[1]::text,
           pg_total_relation_size(c.oid)
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'crm.clicks'::regclass
     ORDER BY c.relname")
declare -A PART_ROWS
while IFS='|' read -r part rows _; do
    PART_ROWS[$part]=$rows
done <<< "$PARTS"
echo "$PARTS" | column -t -s '|' >&2
CLICK_ROWS=$(awk -F '|' '{ n += $2 } END { printf "%d", n }' <<< "$PARTS")
NPARTS=$(awk -F '|' '$2 > 0' <<< "$PARTS" | wc -l)

# "<table>|<rows>|<MiB with indexes>" for the tables that matter
SIZES=$(awk -F '|' '{ n += $2; b += $3 } END { printf "crm.clicks|%d|%.0f\n", n, b / 1048576 }' <<< "$PARTS")
SIZES+=$'\n'$("${PSQL[@]}" -F '|' -c "
    SELECT t, (xpath('/row/n/text()',
                     query_to_xml('SELECT count(*) AS n FROM ' || t, false, true, '')))[1]::text,
           round(pg_total_relation_size(t::regclass) / 1048576.0)
      FROM unnest(ARRAY['crm.leads', 'crm.attributions',
                        'crm.conversions', 'crm.wallet_transactions',
                        'crm.account_daily', 'crm.link_daily',
                        'crm.account_leads', 'crm.stat_deltas']) t")
echo "$SIZES" | column -t -s '|' >&2

if [ -n "${BENCH_LOAD_ONLY:-}" ]; then
    exit 0
fi

# --- nginx over the loaded data ------------------------------------------------

start_nginx

# one registration hashes the password that every account then shares;
# each account logs in for its token
curl -sf -o /dev/null -X POST "$URL/auth/register" -H 'Content-Type: application/json' \
    -d '{"email":"scale-password@bench.example.com","password":"bench-password","full_name":"Password"}'
"${PSQL[@]}" -c "UPDATE crm.accounts SET password_hash = (SELECT password_hash FROM crm.accounts
                                                            WHERE email = 'scale-password@bench.example.com')
                  WHERE id IN (SELECT id FROM public.scale_accounts)"
declare -A TOKEN
for ((n = 1; n <= ACCOUNTS; n++)); do
    TOKEN[$n]=$(curl -sf -X POST "$URL/auth/login" -H 'Content-Type: application/json' \
        -d "{\"email\":\"scale-$n@bench.example.com\",\"password\":\"bench-password\"}" \
        | perl -MJSON::PP -0ne 'print decode_json($_)->{access_token}')
    [ -n "${TOKEN[$n]}" ] || { echo "bench: scale-$n cannot log in" >&2; exit 1; }
done
ADMIN_AUTH="Authorization: Bearer ${TOKEN[1]}"

# "<account number>\t<path>" lines as "<token>\t<path>"
with_tokens() {
    local n path
    while IFS=$'\t' read -r n path; do
        printf '%s\t%s\n' "${TOKEN[$n]}" "$path"
    done
}

# GET /leads/{id}: 20,000 of the members' live leads at random, each read
# by its owner; the summaries: the last 30 days of each member
FROM=$(date -u -d '29 days ago' +%F)
TO=$(date -u +%F)
"${PSQL[@]}" -F $'\t' -c "
    SELECT a.n, '/leads/' || l.id FROM crm.leads l
      JOIN public.scale_accounts a ON a.id = l.owner_id
     WHERE l.deleted_at IS NULL AND a.n > $ADMINS
     ORDER BY random() LIMIT 20000" | with_tokens > "$WORK/lead_get.txt"
for ((n = ADMINS + 1; n <= ACCOUNTS; n++)); do
    printf '%d\t/performance/me?from=%s&to=%s\n' "$n" "$FROM" "$TO"
done | with_tokens > "$WORK/perf_me.txt"
"${PSQL[@]}" -c 'DROP TABLE public.scale_accounts'

# the figures a summary must show, by SQL from the rows themselves, for one
# member: the gateway's answer is checked against them once before the rounds
check_summary() {
    local n=$((ADMINS + 1)) got want
    got=$(curl -s -H "Authorization: Bearer ${TOKEN[$n]}" \
        "$URL/performance/me?from=$FROM&to=$TO" \
        | perl -MJSON::PP -0ne '$s = eval { decode_json($_) };
            ref $s eq "HASH" && ref $s->{leads} eq "HASH"
                or do { print "not a summary: ", substr($_, 0, 300) =~ s/\s+/ /gr; exit };
            print join(" ", $s->{leads}{total}, $s->{leads}{created}, $s->{clicks},
                            $s->{installs}, $s->{conversions}, $s->{commission_cents},
                            $s->{won}, $s->{lost}, $s->{churned})')
    want=$("${PSQL[@]}" -F ' ' -c "
        WITH a AS (SELECT id FROM crm.accounts WHERE email = 'scale-$n@bench.example.com'),
             r AS (SELECT '$FROM'::date AS lo, '$TO'::date AS hi)
        SELECT (SELECT count(*) FROM crm.leads, a WHERE owner_id = a.id AND deleted_at IS NULL),
               (SELECT count(*) FROM crm.leads, a, r WHERE owner_id = a.id
                   AND crm.utc_day(created_at) BETWEEN lo AND hi),
               (SELECT count(*) FROM crm.clicks c JOIN crm.affiliate_links l ON l.id = c.link_id, a, r
                 WHERE l.owner_id = a.id AND NOT is_head AND NOT is_bot
                   AND crm.utc_day(clicked_at) BETWEEN lo AND hi),
               (SELECT count(*) FROM crm.attributions, a, r WHERE owner_id = a.id
                   AND crm.utc_day(created_at) BETWEEN lo AND hi),
               (SELECT count(*) FROM crm.conversions, a, r WHERE owner_id = a.id
                   AND crm.utc_day(created_at) BETWEEN lo AND hi),
               (SELECT coalesce(sum(amount_cents), 0) FROM crm.wallet_transactions, a, r
                 WHERE account_id = a.id AND kind LIKE 'commission_%'
                   AND crm.utc_day(created_at) BETWEEN lo AND hi),
               (SELECT count(*) FILTER (WHERE outcome = 'won') || ' '
                       || count(*) FILTER (WHERE outcome = 'lost') || ' '
                       || count(*) FILTER (WHERE outcome = 'churned')
                  FROM crm.leads, a, r WHERE owner_id = a.id
                   AND crm.utc_day(created_at) BETWEEN lo AND hi)")
    if [ "$got" != "$want" ]; then
        echo "bench: GET /performance/me of scale-$n: $got, the rows say $want" >&2
        SUMMARY_CHECK="**does not match** the rows' own counts (total, created, clicks, installs, conversions, commission, won, lost, churned: $got against $want)"
    else
        SUMMARY_CHECK="matches the rows' own counts ($want: total, created, clicks, installs, conversions, commission, won, lost, churned)"
    fi
}
check_summary

# the click flush again, the table loaded: the same links, the same nginx
flush_round after "$CLICK_ROWS"
folded

# --- the rounds --------------------------------------------------------------

# prints "<req/s> <p99 ms> <errors> <accepted> <duplicate> <other> <reused>"
# for one wrk run (the last four from bench/webhook.lua, else 0)
measure() {
    wrk -t2 -c"$CONNS" -d"${SECONDS_PER_RUN}s" --latency "$@" 2>&1 | perl -ne '
        $rps = $1 if /^Requests\/sec:\s+([\d.]+)/;
        if (/^\s+99%\s+([\d.]+)(us|ms|s)\b/) {
            $p99 = $1 * ({us => 0.001, ms => 1, s => 1000}->{$2});
        }
        $err += $1 if /Non-2xx or 3xx responses:\s+(\d+)/;
        $err += $1 + $2 + $3 + $4
            if /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/;
        @w = ($1, $2, $3, $4)
            if /^webhooks: accepted (\d+) duplicate (\d+) other (\d+) reused (\d+)/;
        END { printf "%.0f %.2f %d %d %d %d %d\n", $rps, $p99, $err + 0,
                     $w[0] // 0, $w[1] // 0, $w[2] // 0, $w[3] // 0 }'
}

# $2 events for source $1 (generic: Standard Webhooks; shopify), each with
# an id of its own (prefix $3) and signed now, as bench/webhook.lua reads
# them.  4 in 10 name a lead's shop, 3 an email, 1 a phone, 2 nobody (one
# of them with a phone that does not validate).
sign_webhooks() {
    perl -MDigest::SHA=hmac_sha256 -MMIME::Base64 -e '
        my ($source, $n, $prefix, $leads, $secret_file) = @ARGV;
        open my $f, "<", $secret_file or die "$secret_file: $!";
        chomp(my $secret = <$f>);
        my $key = $source eq "generic"
            ? decode_base64($secret =~ s/^whsec_//r) : $secret;
        my $t = time;
        my @types = $source eq "generic"
            ? ("customer.updated", "subscription.renewed", "invoice.paid")
            : ("customers/update", "orders/updated", "shop/update");
        for my $i (1 .. $n) {
            my $g = 1 + int rand $leads;
            my $kind = $i % 10;
            my ($shop, $email, $phone);
            if ($kind < 4) {           # a lead with a shop: g % 10 < 6
                $g -= $g % 10;
                $g += $i % 6;
                $g += 10 if $g < 1;
                $g -= 10 if $g > $leads;
                $shop = "shop-$g.myshopify.com";
            } elsif ($kind < 7) {      # a lead with an email: g % 5 != 0
                $g++ if $g % 5 == 0;
                $email = "lead-$g\@example.com";
            } elsif ($kind < 8) {      # a lead with a phone: g even
                $g-- if $g % 2;
                $g = 2 if $g < 2;
                $phone = sprintf "+1555%07d", $g;
            } else {
                $email = "nobody-$prefix-$i\@example.org";
                $shop = "nobody-$prefix-$i.myshopify.com";
                $phone = "12" if $kind == 9;
            }
            my $type = $types[$i % @types];
            my $id = "$prefix-$i";
            if ($source eq "generic") {
                my @data = (qq("external_id":"$id"));
                push @data, qq("shop_domain":"$shop") if defined $shop;
                push @data, qq("email":"$email") if defined $email;
                push @data, qq("phone":"$phone") if defined $phone;
                my $body = qq({"type":"$type","data":{) . join(",", @data) . "}}";
                my $sig = encode_base64(hmac_sha256("$id.$t.$body", $key), "");
                print join("\t", "/integrations/webhooks/generic",
                    "Content-Type: application/json", "webhook-id: $id",
                    "webhook-timestamp: $t", "webhook-signature: v1,$sig", $body), "\n";
            } else {
                my @fields = (qq("id":$i));
                push @fields, qq("email":"$email") if defined $email;
                push @fields, qq("phone":"$phone") if defined $phone;
                my $body = "{" . join(",", @fields) . "}";
                my $sig = encode_base64(hmac_sha256($body, $key), "");
                print join("\t", "/integrations/webhooks/shopify",
                    "Content-Type: application/json", "X-Shopify-Topic: $type",
                    (defined $shop ? "X-Shopify-Shop-Domain: $shop" : ()),
                    "X-Shopify-Event-Id: $id", "X-Shopify-Webhook-Id: $id",
                    "X-Shopify-Hmac-Sha256: $sig", $body), "\n";
            }
        }' "$1" "$2" "$3" "$LEADS" "$WORK/webhook-$1.secret"
}

events() { "${PSQL[@]}" -c 'SELECT count(*) FROM crm.webhook_events'; }

export BENCH_WEBHOOKS=$WORK/webhooks.txt
run() {
    case $1 in
        lead_get) BENCH_REQUESTS=$WORK/lead_get.txt \
                  measure -s "$ROOT/bench/get_each_as.lua" "$URL" ;;
        perf_me) BENCH_REQUESTS=$WORK/perf_me.txt \
                 measure -s "$ROOT/bench/get_each_as.lua" "$URL" ;;
        board_clicks|board_commission)
            measure -H "$ADMIN_AUTH" \
                "$URL/performance/leaderboard?metric=${1#board_}&from=$FROM&to=$TO" ;;
        generic|shopify)
            sign_webhooks "$1" "$WEBHOOK_EVENTS" "$1-$i-$RANDOM" > "$BENCH_WEBHOOKS"
            measure -s "$ROOT/bench/webhook.lua" "$URL" ;;
    esac
}

median() {
    sort -n | awk '{ a[NR] = $1 }
        END { if (NR == 0) print "-";
              else print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

med() { tr ' ' '\n' <<< "$1" | { grep -Ev '^-?$' || true; } | median; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

declare -A RPS P99 ERR ACCEPTED DUPLICATE REUSED STORED
NAMES=(lead_get perf_me board_clicks board_commission generic shopify)

# the database settles before the rounds, as in bench/run.sh: statistics
# fresh, nothing for autovacuum to start, what was written on disk
settle() {
    "${PSQL_SUPER[@]}" -c 'VACUUM ANALYZE' -c CHECKPOINT
    sync
}

# warm up: every pool thread opens its connection and prepares statements
run lead_get > /dev/null
run perf_me > /dev/null
settle

for ((i = 1; i <= ROUNDS; i++)); do
    for name in "${NAMES[@]}"; do
        case $name in generic|shopify) before=$(events) ;; esac
        read -r rps p99 err accepted duplicate _ reused <<< "$(run "$name")"
        RPS[$name]+="$rps "
        P99[$name]+="$p99 "
        ERR[$name]=$(( ${ERR[$name]:-0} + err ))
        printf 'round %d %-16s %8s req/s  p99 %7s ms  errors %s' "$i" "$name" "$rps" "$p99" "$err" >&2
        case $name in
            generic|shopify)
                # the requests wrk left in flight when it stopped end meanwhile
                sleep 1
                stored=$(( $(events) - before ))
                ACCEPTED[$name]=$(( ${ACCEPTED[$name]:-0} + accepted ))
                DUPLICATE[$name]=$(( ${DUPLICATE[$name]:-0} + duplicate ))
                REUSED[$name]=$(( ${REUSED[$name]:-0} + reused ))
                STORED[$name]=$(( ${STORED[$name]:-0} + stored ))
                printf '  accepted %s duplicate %s stored %s reused %s' \
                    "$accepted" "$duplicate" "$stored" "$reused" >&2 ;;
        esac
        printf '\n' >&2
    done
done

# --- retention ---------------------------------------------------------------

# what the performance views answer, which retention must leave alone (they
# read the counters): every member's summary over the clicks' span (at
# most 366 days) and over the rounds' 30 days, and the clicks leaderboard
# over the span; one line each
FULL_FROM=$(date -u -d "@${SPAN_FROM%.*}" +%F)
if [[ $FULL_FROM < $(date -u -d "$TO - 365 days" +%F) ]]; then
    FULL_FROM=$(date -u -d "$TO - 365 days" +%F)
fi
views() {
    local n range
    for ((n = ADMINS + 1; n <= ACCOUNTS; n++)); do
        for range in "from=$FULL_FROM&to=$TO" "from=$FROM&to=$TO"; do
            curl -sf -H "Authorization: Bearer ${TOKEN[$n]}" "$URL/performance/me?$range" \
                || printf 'failed: scale-%d %s' "$n" "$range"
            echo
        done
    done
    curl -sf -H "$ADMIN_AUTH" "$URL/performance/leaderboard?metric=clicks&from=$FULL_FROM&to=$TO&limit=200" \
        || printf 'failed: leaderboard'
    echo
}

# one member's click rows over the span, and the clicks its summary shows
member_clicks() {
    local n=$((ADMINS + 1))
    sql "SELECT count(*) FROM crm.clicks c JOIN crm.affiliate_links l ON l.id = c.link_id
           JOIN crm.accounts a ON a.id = l.owner_id
          WHERE a.email = 'scale-$n@bench.example.com' AND NOT is_head AND NOT is_bot
            AND crm.utc_day(clicked_at) BETWEEN '$FULL_FROM' AND '$TO'"
}
summary_clicks() {
    curl -s -H "Authorization: Bearer ${TOKEN[$((ADMINS + 1))]}" \
        "$URL/performance/me?from=$FULL_FROM&to=$TO" \
        | perl -MJSON::PP -0ne 'print eval { decode_json($_)->{clicks} } // "none"'
}

folded
VIEWS_BEFORE=$(views)
ROWS_BEFORE=$(member_clicks)
SHOWN_BEFORE=$(summary_clicks)
SUMMARY_CHECK_BEFORE=$SUMMARY_CHECK
t0=$(now)
RETAINED=$(sql "SELECT crm.clicks_retain($RETAIN_MONTHS)")
RETAIN_S=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
VIEWS_AFTER=$(views)
ROWS_AFTER=$(member_clicks)
SHOWN_AFTER=$(summary_clicks)
check_summary
SUMMARY_CHECK_AFTER=$SUMMARY_CHECK
SUMMARY_CHECK=$SUMMARY_CHECK_BEFORE

RETAIN_PARTS=0 RETAIN_ROWS=0 RETAIN_NAMES=
for part in $RETAINED; do
    RETAIN_PARTS=$((RETAIN_PARTS + 1))
    RETAIN_ROWS=$((RETAIN_ROWS + ${PART_ROWS[$part]:-0}))
    RETAIN_NAMES+="${RETAIN_NAMES:+, }\`$part\`"
done
PARTS_LEFT=$(sql "SELECT count(*) FROM pg_inherits WHERE inhparent = 'crm.clicks'::regclass")
VIEWS_CHANGED=$(diff <(echo "$VIEWS_BEFORE") <(echo "$VIEWS_AFTER") | grep -c '^<' || true)
VIEWS_N=$(wc -l <<< "$VIEWS_BEFORE")
VIEWS_FAILED=$(grep -c '^failed' <<< "$VIEWS_BEFORE$VIEWS_AFTER" || true)
printf 'retention: crm.clicks_retain(%d) dropped %d partitions (%s rows) in %s s; views changed %d of %d; member rows %s -> %s, shown %s -> %s\n' \
    "$RETAIN_MONTHS" "$RETAIN_PARTS" "$RETAIN_ROWS" "$RETAIN_S" "$VIEWS_CHANGED" "$VIEWS_N" \
    "$ROWS_BEFORE" "$ROWS_AFTER" "$SHOWN_BEFORE" "$SHOWN_AFTER" >&2

# --- bench/RESULTS.md --------------------------------------------------------

row() {
    local name=$1 label=$2 rps
    rps=$(med "${RPS[$name]}")
    echo "| $label | $rps | $(med "${P99[$name]}") | ${ERR[$name]} | $(ratio "$rps" "$(med "${RPS[lead_get]}")") |"
}

webhook_row() {
    local name=$1 label=$2
    echo "| $label | $(med "${RPS[$name]}") | $(med "${P99[$name]}") | ${ERR[$name]} | ${ACCEPTED[$name]} | ${DUPLICATE[$name]} | ${STORED[$name]} |"
}

# "met" when $1 >= $2 and no request of $3 failed
met() {
    awk -v a="$1" -v b="$2" -v e="${ERR[$3]}" \
        'BEGIN { print (e > 0) ? "**not met** (errors)" : (a >= b) ? "met" : "**not met**" }'
}

summary_ratio=$(ratio "$(med "${RPS[perf_me]}")" "$(med "${RPS[lead_get]}")")
total_rows=$("${PSQL[@]}" -c 'SELECT count(*) FROM crm.webhook_events')
table_rows() {
    local t rows mib
    while IFS='|' read -r t rows mib; do
        printf "| \`%s\` | %s | %s |\n" "$t" "$rows" "$mib"
    done <<< "$SIZES"
}

thousands() { sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<< "$1"; }

partition_rows() {
    local part rows bytes
    while IFS='|' read -r part rows bytes; do
        printf "| \`crm.%s\` | %s | %.0f | %s |\n" "$part" "$rows" "$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')" \
            "$(grep -qx "$part" <<< "$RETAINED" && echo dropped || echo kept)"
    done <<< "$PARTS"
}

flush_row() {
    local l=$1
    echo "| $2 | ${FL_RPS[$l]} | ${FL_P99[$l]} | ${FL_ERR[$l]} | ${FL_SERVED[$l]} | ${FL_STORED[$l]} | $(( FL_SERVED[$l] - FL_STORED[$l] )) | $(( FL_BACKLOG[$l] / 1048576 )) | ${FL_RATE[$l]} | ${FL_LAG[$l]} |"
}

# every click served must be a row, none dropped
FLUSH_LOST=0
for l in before after; do
    if [ "${FL_SERVED[$l]}" != "${FL_STORED[$l]}" ] || [ "${FL_DROPPED[$l]}" != 0 ] \
        || [ "${FL_COUNTED[$l]}" != "${FL_STORED[$l]}" ]; then
        FLUSH_LOST=1
    fi
done
if [ "$FLUSH_LOST" = 0 ]; then
    FLUSH_CHECK="No click lost: every redirect served is a row, both times (${FL_SERVED[before]} and ${FL_SERVED[after]}; wrk read ${FL_READ[before]} and ${FL_READ[after]} of their answers, the rest in flight when it stopped), none dropped, $(( FL_SPOOLED[before] + FL_SPOOLED[after] )) spooled; the links' counters grew by as many."
else
    FLUSH_CHECK="**Clicks lost**: served ${FL_SERVED[before]} and ${FL_SERVED[after]}, stored ${FL_STORED[before]} and ${FL_STORED[after]}, dropped ${FL_DROPPED[before]} and ${FL_DROPPED[after]}, counted by the links' counters ${FL_COUNTED[before]} and ${FL_COUNTED[after]}."
fi

SECTION=$WORK/section.md
{
    echo "## At scale: $(thousands "$CLICKS") clicks over $CLICK_MONTHS months and $(thousands "$LEADS") leads: the click flush, performance views, webhooks and retention"
    echo
    echo "Produced by \`./build.sh bench scale\` on $(date -u +%Y-%m-%dT%H:%M:%SZ):"
    echo "$(nproc) cores, nginx $(nginx -v 2>&1 | sed 's/.*\///'), 2 workers, thread_pool crm threads=2,"
    echo "PostgreSQL 15 on the same machine, one nginx configuration throughout. The click flush:"
    echo "wrk -t2 -c$FLUSH_CONNS for $FLUSH_SECONDS s, once before the load and once after it. The reads and"
    echo "webhooks: wrk -t2 -c$CONNS, $ROUNDS alternating rounds of ${SECONDS_PER_RUN} s per table over the loaded data;"
    echo "figures are medians over the rounds. Retention last, after the rounds."
    echo
    echo "### The data, made by SQL and counted by the triggers"
    echo
    echo "$ACCOUNTS accounts ($ADMINS of them admins), $LINKS_PER_ACCOUNT links each; $(thousands "$CLICKS") clicks in time"
    echo "order over the last $CLICK_MONTHS months ($(date -u -d "@${SPAN_FROM%.*}" +%F) to $(date -u -d "@${SPAN_TO%.*}" +%F), $SPAN_DAYS days; 1% HEAD,"
    echo "2% flagged bots), most on a few links, in $NPARTS monthly partitions; the leads over"
    echo "the pipeline's substages (outcomes as \`substages.json\` marks them), created over a"
    echo "year, 1 in 5 through one of its owner's links with its install (1 in 8 of those with"
    echo "an order), the commissions' ledgers. The triggers wrote $DELTAS deltas, which one"
    echo "\`crm.stats_compact(100000000)\` folded. \`crm.clicks\` also holds the clicks the"
    echo "baseline flush stored before the load."
    echo
    echo "| load phase | seconds |"
    echo "|---|---|"
    echo "| accounts and links | $(awk -v a="${LOAD_S[setup]}" -v b="${LOAD_S[accounts]}" 'BEGIN { printf "%.1f", a + b }') |"
    echo "| clicks ($CLICK_STATEMENTS \`INSERT ... SELECT\`, two at a time: $(awk -v n="$CLICKS" -v s="${LOAD_S[clicks]}" 'BEGIN { printf "%.0f", n / s }') rows/s) | ${LOAD_S[clicks]} |"
    echo "| leads (two \`INSERT ... SELECT\` at once) | ${LOAD_S[leads]} |"
    echo "| installs, conversions, wallets and ledgers, link counters | ${LOAD_S[commissions]} |"
    echo "| \`crm.stats_compact\`: $DELTAS deltas folded | ${LOAD_S[compact]} |"
    echo "| \`VACUUM ANALYZE\`, \`CHECKPOINT\` | ${LOAD_S[vacuum]} |"
    echo "| total | $LOAD_TOTAL |"
    echo
    echo "| table | rows | MiB with indexes |"
    echo "|---|---|---|"
    table_rows
    echo
    echo "The clicks' partitions after the load (the flushes' clicks go to the current month):"
    echo
    echo "| partition | rows | MiB with indexes | \`crm.clicks_retain($RETAIN_MONTHS)\` |"
    echo "|---|---|---|---|"
    partition_rows
    echo
    echo "### The click flush, on the empty table and on the loaded one"
    echo
    echo "\`GET /r/{id}\` over the $((ACCOUNTS * LINKS_PER_ACCOUNT)) links round robin, each in the link cache first; every"
    echo "redirect queues its click in shared memory (\`crm_click_queue zone=crm_clicks:512m flush=100ms batch=1m\`,"
    echo "a spool beside it), which the workers flush by \`COPY\` into \`crm.clicks\`, the links' counters"
    echo "with them. During wrk PostgreSQL is stopped, so the clicks queue (the cached links keep"
    echo "answering); then it starts, and the backlog drains (\`crm_click_queue_bytes\` 0 in \`/metrics\`,"
    echo "the rows stable). The flush rate is the clicks flushed a second from the first batch to the"
    echo "drain, as \`bench/run.sh\` measures it."
    echo
    echo "| \`crm.clicks\` holding | redirects/s | p99 ms | errors | redirects served (302) | clicks stored | lost | backlog (MiB) | flush rate (clicks/s) | drained in (s) |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    flush_row before "$(thousands "${FL_TABLE[before]}") rows (the baseline)"
    flush_row after "$(thousands "${FL_TABLE[after]}") rows"
    echo
    echo "With the table loaded the flush runs at $(ratio "${FL_RATE[after]}" "${FL_RATE[before]}") of its rate on the empty table"
    echo "(redirects/s: $(ratio "${FL_RPS[after]}" "${FL_RPS[before]}")). $FLUSH_CHECK"
    echo
    echo "### Reads, over the loaded data"
    echo
    echo "| endpoint | req/s (median) | p99 ms (median) | errors (all rounds) | ratio to \`GET /leads/{id}\` |"
    echo "|---|---|---|---|---|"
    row lead_get "\`GET /leads/{id}\` (20,000 live leads at random, each by its owner)"
    row perf_me "\`GET /performance/me?from=&to=\` (30 days; $((ACCOUNTS - ADMINS)) members in turn)"
    row board_clicks "\`GET /performance/leaderboard?metric=clicks\` (admin, 30 days)"
    row board_commission "\`GET /performance/leaderboard?metric=commission\` (admin, 30 days)"
    echo
    echo "The summary runs at $summary_ratio of \`GET /leads/{id}\`; target 0.5 or more: $(met "$summary_ratio" 0.5 perf_me)."
    echo "A member's summary, read once before the rounds, $SUMMARY_CHECK."
    echo
    echo "### Webhooks (signed, each event new, 4 in 10 naming a lead's shop, 3 an email, 1 a phone)"
    echo
    echo "| source | events/s (median) | p99 ms (median) | errors (all rounds) | accepted (202, new) | duplicate | rows stored |"
    echo "|---|---|---|---|---|---|---|"
    webhook_row generic "\`generic\` (Standard Webhooks)"
    webhook_row shopify "\`shopify\`"
    echo
    echo "Target 2,000 signed events/s or more: $(met "$(med "${RPS[generic]}")" 2000 generic) (generic), $(met "$(med "${RPS[shopify]}")" 2000 shopify) (shopify)."
    echo "\`crm.webhook_events\` grew by ${STORED[generic]} rows in the generic rounds for ${ACCEPTED[generic]} accepted"
    echo "requests, and by ${STORED[shopify]} for ${ACCEPTED[shopify]} in the shopify rounds ($total_rows rows in all):"
    echo "the excess, at most one a connection a round ($CONNS), is the requests still in flight"
    echo "when wrk stopped, stored, whose answers wrk did not read."
    echo
    echo "### Retention: \`crm.clicks_retain($RETAIN_MONTHS)\` on the loaded table"
    echo
    echo "After the rounds, \`SELECT crm.clicks_retain($RETAIN_MONTHS)\` (as \`./build.sh retain-clicks $RETAIN_MONTHS\`: the current"
    echo "month and the $RETAIN_MONTHS before it are kept) detached and dropped $RETAIN_PARTS partitions (${RETAIN_NAMES:-none}),"
    echo "$(thousands "$RETAIN_ROWS") rows, in **$RETAIN_S s**; $PARTS_LEFT partitions are left."
    echo
    echo "The performance views read the counters, which retention leaves alone: of $VIEWS_N answers read before"
    echo "and after it (every member's summary over the clicks' span, $FULL_FROM to $TO, and over the 30 days"
    echo "of the rounds, and the clicks leaderboard over the span), $VIEWS_CHANGED changed$( [ "$VIEWS_FAILED" = 0 ] || echo " and $VIEWS_FAILED failed")."
    echo "Member scale-$((ADMINS + 1)) over the span: click rows $ROWS_BEFORE before and $ROWS_AFTER after; its summary's clicks"
    echo "$SHOWN_BEFORE before and $SHOWN_AFTER after. Its 30-day summary, read again after retention, $SUMMARY_CHECK_AFTER."
} > "$SECTION"

# the section replaces an older one, wherever it is; the others stay
perl -i -0pe 's/^## At scale: .*?(?=^## |\z)//ms; s/\n*\z/\n/' "$ROOT/bench/RESULTS.md"
{ echo; cat "$SECTION"; } >> "$ROOT/bench/RESULTS.md"
cat "$SECTION"

for name in generic shopify; do
    if [ "${REUSED[$name]}" -gt 0 ]; then
        echo "bench: $name rounds ran out of events (${REUSED[$name]} repeats): raise BENCH_WEBHOOK_EVENTS" >&2
        exit 1
    fi
    if [ "${STORED[$name]}" -lt "${ACCEPTED[$name]}" ] \
        || [ "${STORED[$name]}" -gt $(( ACCEPTED[$name] + CONNS * ROUNDS )) ]; then
        echo "bench: $name: ${ACCEPTED[$name]} accepted, ${STORED[$name]} stored" >&2
        exit 1
    fi
done
if [ "$FLUSH_LOST" != 0 ]; then
    echo "bench: the click flush lost clicks (or the links' counters missed some)" >&2
    exit 1
fi
if [ "$VIEWS_CHANGED" != 0 ] || [ "$VIEWS_FAILED" != 0 ] || [ "$SHOWN_BEFORE" != "$SHOWN_AFTER" ]; then
    echo "bench: the performance views changed with retention ($VIEWS_CHANGED changed, $VIEWS_FAILED failed)" >&2
    exit 1
fi

# What the shell benchmarks (bench/run.sh, bench/scale.sh) share.

# The benchmarks' nginx.conf, written to
# $WORK/nginx.conf: the shipped pools (crm with $1 threads, 2 for each of
# the others), a private PostgreSQL on $CRM_PG_PORT, the edge (link cache
# with ttl $2, click queue flushed every 100 ms in batches of 1 MiB, a
# spool), and on $PORT an API location, /r/ and /metrics; $3 more
# http-level directives, $4 more server-level ones.  The secrets are the
# files in $WORK.

bench_nginx_conf() {
    cat > "$WORK/nginx.conf" <<EOF
load_module $ROOT/build/modules/ngx_http_crm_module.so;
worker_processes 2;
error_log $WORK/error.log warn;
pid $WORK/nginx.pid;
thread_pool crm threads=$1 max_queue=65536;
thread_pool crm_slow threads=2 max_queue=65536;
thread_pool crm_edge threads=2 max_queue=65536;
thread_pool crm_sync threads=2 max_queue=65536;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/body;
    crm_database "host=127.0.0.1 port=$CRM_PG_PORT dbname=crm user=crm";
    crm_jwt_secret_file $WORK/jwt.secret;
    crm_pipeline $ROOT/pipeline-config;
    crm_slow_thread_pool crm_slow;
    crm_edge_thread_pool crm_edge;
    crm_sync_thread_pool crm_sync;
    crm_callback_secret_file $WORK/callback.secret;
    crm_link_id_secret_file $WORK/link.secret;
    crm_credentials_key_file $WORK/credentials.secret;
    crm_public_url http://127.0.0.1:$PORT;
    crm_default_install_cents 500;
    crm_default_conversion_bps 1000;
    crm_link_cache zone=crm_links:32m ttl=$2 negative_ttl=60s;
    crm_click_queue zone=crm_clicks:512m flush=100ms batch=1m;
    crm_click_spool $WORK/spool max_size=4g;
$3
    server {
        listen 127.0.0.1:$PORT;
        location / { crm_api; }
        location /r/ { crm_redirect; }
        location = /metrics { crm_metrics; }
$4
    }
}
EOF
}

# "<req/s> <p99 ms> <errors> <requests>" from wrk --latency's output on
# stdin; errors are non-2xx/3xx answers and socket errors
bench_wrk_figures() {
    perl -ne '
        $rps = $1 if /^Requests\/sec:\s+([\d.]+)/;
        $n = $1 if /^\s+(\d+) requests in/;
        if (/^\s+99%\s+([\d.]+)(us|ms|s)\b/) {
            $p99 = $1 * ({us => 0.001, ms => 1, s => 1000}->{$2});
        }
        $err += $1 if /Non-2xx or 3xx responses:\s+(\d+)/;
        $err += $1 + $2 + $3 + $4
            if /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/;
        END { printf "%.0f %.2f %d %d\n", $rps, $p99, $err + 0, $n }'
}

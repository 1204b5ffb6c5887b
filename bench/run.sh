#!/usr/bin/env bash
# Load benchmark of /oauth2/auth, side by side with nginx in the same run.
#
#   bench/run.sh [SECONDS_PER_TARGET] [CONNECTIONS]     (defaults: 10, 64)
#
# Targets, each measured with the same wrk settings (2 threads, keep-alive):
#   nginx `return 202;`                        the ceiling for an auth endpoint
#   Portcullis /oauth2/auth, cookie store      a real session from a real login
#   the same with one worker thread per CPU    Portcullis's default runtime
#   Portcullis /oauth2/auth, Redis store       likewise, with redis-server
#   Portcullis /oauth2/auth, no session        the 401 path
#   nginx → auth_request → Portcullis → static upstream
#   nginx → the same static upstream without auth
#   nginx → auth_request → a free auth service (nginx `return 202` with Portcullis's
#     identity headers) → static: the ceiling of ANY auth_request service
# Prints a Markdown table: requests/s, p50, p99, the server's peak RSS, its CPU time
# per request (user + system, every process of the target), and each requests/s as
# a ratio to its baseline. Loopback only; bounded in time. Then the floor table: a
# bare hyper server (crates/portcullis/examples/floor.rs), /ping, and the ablation
# variants (PORTCULLIS_BENCH_ABLATE; BENCH_ABLATIONS="" skips them), with server CPU
# per request split into user and system time. BENCH_STRACE=1 adds system calls per
# request for the floor, nginx and Portcullis.
#
# Portcullis logs at log.level = "info" (its default: an access line per request);
# BENCH_LOG=warn turns the access lines off everywhere.
#
# nginx runs one worker process, and Portcullis one worker thread
# (`server.worker_threads = 1`; BENCH_THREADS=<n> changes it) except in the
# one-thread-per-CPU row.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${1:-10}
CONN=${2:-64}

scripts/install-deps --no-browser >/dev/null
if ! command -v wrk >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get install -y -qq wrk >/dev/null
fi
echo "==> building portcullis (release)" >&2
# BENCH_PERF=<target> samples Portcullis during that target with perf (symbols kept).
[ -n "${BENCH_PERF:-}" ] && export CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_PROFILE_RELEASE_STRIP=none
# BENCH_BIN=<path> measures that binary instead (say, a build of the previous commit).
if [ -n "${BENCH_BIN:-}" ]; then
  BIN=$BENCH_BIN
else
  cargo build -q --release --locked -p portcullis
  BIN=$ROOT/target/release/portcullis
fi
# The floor: a bare hyper HTTP/1 server from this workspace (crates/portcullis/examples/floor.rs).
cargo build -q --release --locked -p portcullis --example floor
FLOOR_BIN=$ROOT/target/release/examples/floor

# BENCH_PIN=1: servers (and Redis) on the last core, wrk on the others, so that the
# client never takes the server's core.
SERVER_CPU=(); CLIENT_CPU=()
if [ -n "${BENCH_PIN:-}" ]; then
  last=$(( $(nproc) - 1 ))
  SERVER_CPU=(taskset -c "$last"); CLIENT_CPU=(taskset -c "0-$(( last > 0 ? last - 1 : 0 ))")
fi
DIR=$(mktemp -d /tmp/portcullis-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
. bench/common.sh

IDP=$(free_port); REDIS=$(free_port); PC=$(free_port); PR=$(free_port); PM=$(free_port)
NGINX=$(free_port); STATIC=$(free_port); CHAIN=$(free_port); PLAIN=$(free_port)
FREEAUTH=$(free_port); FREECHAIN=$(free_port); FREELOG=$(free_port)

node tests/idp/idp.mjs --port "$IDP" --id-token-ttl 3600 >"$DIR/idp.out" 2>"$DIR/idp.log" &
pids+=($!)
"${SERVER_CPU[@]}" redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly no >"$DIR/redis.log" 2>&1 &
pids+=($!)
wait_port "$IDP"; wait_port "$REDIS"

SECRET=$("$BIN" secret)
THREADS=${BENCH_THREADS:-1}
portcullis() { # port store worker_threads
  bench_config "$DIR/p$1.toml" "$1" "$2" "$3" "${BENCH_LOG:-info}"
  "${SERVER_CPU[@]}" env ${BENCH_ENV:-} "$BIN" serve --config "$DIR/p$1.toml" >"$DIR/portcullis-$1.log" 2>&1 &
  LAST_PID=$!
  pids+=("$LAST_PID")
}
# Not $(…): a subshell would hide the pid from the cleanup trap.
portcullis "$PC" cookie "$THREADS"; PC_PID=$LAST_PID
# The floor, and the ablation variants (PORTCULLIS_BENCH_ABLATE, one piece removed
# each; crates/portcullis-http/src/ablation.rs), cookie store, same threads.
FLOOR=$(free_port)
"${SERVER_CPU[@]}" "$FLOOR_BIN" "127.0.0.1:$FLOOR" >"$DIR/floor.log" 2>&1 &
FLOOR_PID=$!; pids+=("$FLOOR_PID")
# `no-access-log` is the product's own switch: log.level = "warn" (no access line);
# `no-access-event`: `info,portcullis::access=off` (every other info line stays).
ABLATIONS=${BENCH_ABLATIONS-"no-access-log no-access-event http1 no-header-timeout tokio-header-timer no-timeout no-metrics no-hot no-edge http1,no-header-timeout,no-timeout,no-edge"}
declare -A AB_PORT AB_PID
for a in $ABLATIONS; do
  port=$(free_port)
  if [ "$a" = no-access-log ]; then
    BENCH_ENV="RUST_LOG=warn" portcullis "$port" cookie "$THREADS"
  elif [ "$a" = no-access-event ]; then
    # Only the access event is filtered out.
    BENCH_ENV="RUST_LOG=info,portcullis::access=off" portcullis "$port" cookie "$THREADS"
  else
    BENCH_ENV="PORTCULLIS_BENCH_ABLATE=$a" portcullis "$port" cookie "$THREADS"
  fi
  AB_PORT[$a]=$port; AB_PID[$a]=$LAST_PID
done
portcullis "$PR" redis "$THREADS"; PR_PID=$LAST_PID
portcullis "$PM" cookie 0; PM_PID=$LAST_PID
wait_port "$PC"; wait_port "$PR"; wait_port "$PM"; wait_port "$FLOOR"
for a in $ABLATIONS; do wait_port "${AB_PORT[$a]}"; done
for p in "$PC" "$PR" "$PM" "${AB_PORT[@]}"; do wait_ready "$p"; done

COOKIE_C=$(python3 bench/login.py "http://auth.example.test:$PC" alice)
COOKIE_R=$(python3 bench/login.py "http://auth.example.test:$PR" alice)
# The identity headers Portcullis answers with, for the auth service that costs
# nothing (below): nginx `return 202` with the very same headers.
IDENTITY=$(python3 - "$PC" "$COOKIE_C" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
c.request("GET", "/oauth2/auth", headers={"Host": "auth.example.test", "Cookie": sys.argv[2]})
r = c.getresponse()
assert r.status == 202, r.status
for k, v in r.getheaders():
    if k.lower() == "authorization" or k.lower().startswith("x-auth-request-"):
        print(f'add_header {k} "{v}" always;')
PY
)
user=""; [ "$(id -u)" = 0 ] && user="user root;"
nginx_instance() { # name http-block-body: writes $DIR/name/nginx.conf, starts it, sets LAST_PID
  local d=$DIR/$1
  mkdir -p "$d/logs" "$d/tmp"
  cat >"$d/nginx.conf" <<CONF
$user
worker_processes 1;
pid $d/nginx.pid;
daemon off;
error_log $d/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
$2
}
CONF
  "${SERVER_CPU[@]}" nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/stderr.log" &
  LAST_PID=$!
  pids+=("$LAST_PID")
}
mkdir -p "$DIR/nginx"
ln -s "$ROOT/deploy/nginx/snippets" "$DIR/nginx/snippets"
nginx_instance nginx "$(cat <<CONF
    upstream portcullis { server 127.0.0.1:$PC; keepalive 64; }
    upstream static { server 127.0.0.1:$STATIC; keepalive 64; }
    large_client_header_buffers 4 32k;
    # The ceiling: an auth endpoint that does nothing.
    server { listen 127.0.0.1:$NGINX; location / { return 202; } }
    # The static upstream both chains proxy to.
    server { listen 127.0.0.1:$STATIC; location / { return 200 "ok\n"; } }
    # nginx -> auth_request -> Portcullis -> static upstream (the deploy snippets).
    server {
        listen 127.0.0.1:$CHAIN;
        server_name dashboard.c1.example.test;
        include snippets/portcullis-endpoints.conf;
        location / {
            include snippets/portcullis-protect.conf;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://static;
        }
    }
    # An auth service that costs nothing: the same 202 and identity headers as
    # Portcullis, from nginx's own \`return\`. The chain through it is the ceiling
    # for ANY auth_request service on this nginx: what nginx's subrequest costs.
    # It runs as its own nginx process (like Portcullis), so that its work is not
    # charged to the proxying worker.
    upstream freeauth { server 127.0.0.1:$FREEAUTH; keepalive 64; }
    server {
        listen 127.0.0.1:$FREECHAIN;
        server_name dashboard.c1.example.test;
        # The endpoints snippet's auth location, with the free auth service upstream.
        location = /_portcullis/auth {
            internal;
            proxy_pass http://freeauth/oauth2/auth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Host \$host;
            proxy_set_header X-Original-URL \$scheme://\$http_host\$request_uri;
            proxy_set_header X-Original-Method \$request_method;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_buffer_size 32k;
            proxy_buffers 4 32k;
        }
        location @portcullis_signin { return 401; }
        location / {
            include snippets/portcullis-protect.conf;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://static;
        }
    }
    # nginx -> static upstream, no auth.
    server {
        listen 127.0.0.1:$PLAIN;
        location / {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://static;
        }
    }
CONF
)"
NGINX_PID=$LAST_PID
nginx_instance freeauth "    server { listen 127.0.0.1:$FREEAUTH; location / { $IDENTITY return 202; } }"
FREEAUTH_PID=$LAST_PID
# The same, writing an access line per request to a file as Portcullis does (nginx's
# combined format, batched like Portcullis's log: 64 KiB or 50 ms).
nginx_instance freelog "    server { listen 127.0.0.1:$FREELOG; access_log $DIR/freelog/logs/access.log combined buffer=64k flush=50ms; location / { $IDENTITY return 202; } }"
FREELOG_PID=$LAST_PID
wait_port "$NGINX"; wait_port "$CHAIN"; wait_port "$FREECHAIN"; wait_port "$FREEAUTH"; wait_port "$FREELOG"


rss_kb() { # pid(s): sum of peak RSS (VmHWM) in KB
  local total=0
  for p in "$@"; do
    v=$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
cpu_ticks() { # pid(s): user + system CPU time so far, in clock ticks
  local total=0
  for p in "$@"; do
    v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
cpu_split() { # pid(s): "user system" CPU ticks so far
  local u=0 k=0
  for p in "$@"; do
    read -r a b < <(awk '{print $14, $15}' "/proc/$p/stat" 2>/dev/null || echo "0 0")
    u=$((u + ${a:-0})); k=$((k + ${b:-0}))
  done
  echo "$u $k"
}
TICK=$(getconf CLK_TCK)
comm_of() { tr -d '\n' <"/proc/$1/comm" 2>/dev/null || echo "$1"; }
nginx_pids() { echo "$NGINX_PID" $(pgrep -P "$NGINX_PID" 2>/dev/null); }

declare -A RPS P50 P99 RSS NON2XX CPU CPUU CPUS
run() { # key url host cookie pids...
  local key=$1 url=$2 host=$3 cookie=$4; shift 4
  if [ -n "${BENCH_ONLY:-}" ] && [[ " $BENCH_ONLY " != *" $key "* ]]; then return; fi
  local out
  local perf_pid=""
  if [ -n "${BENCH_PERF:-}" ] && [ "$key" = "$BENCH_PERF" ]; then
    # Sample the last pid given (the Portcullis under test) while wrk runs.
    perf record -q -F 499 --call-graph dwarf,32768 -o "$DIR/perf-$key.data" -p "${!#}" -- sleep "$SECS" 2>/dev/null &
    perf_pid=$!
  fi
  local t0; t0=$(cpu_ticks "$@")
  local split0; split0=$(cpu_split "$@")
  local each0=(); for p in "$@"; do each0+=("$(cpu_ticks "$p")"); done
  out=$(BENCH_COOKIE="$cookie" BENCH_HOST="$host" "${CLIENT_CPU[@]}" wrk -t2 -c"$CONN" -d"${SECS}s" --latency -s bench/auth.lua "$url")
  local t1; t1=$(cpu_ticks "$@")
  local split1; split1=$(cpu_split "$@")
  local each="" i=0; for p in "$@"; do each+=" $(comm_of "$p"):$(( $(cpu_ticks "$p") - ${each0[$i]} ))"; i=$((i + 1)); done
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" || true
    cp "$DIR/perf-$key.data" "${BENCH_PERF_OUT:-perf-$key.data}"
    echo "  perf profile of $key: ${BENCH_PERF_OUT:-perf-$key.data}" >&2
  fi
  RPS[$key]=$(awk '/^Requests\/sec:/ {printf "%d", $2}' <<<"$out")
  P50[$key]=$(awk '/^ +50%/ {print $2}' <<<"$out")
  P99[$key]=$(awk '/^ +99%/ {print $2}' <<<"$out")
  NON2XX[$key]=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  RSS[$key]=$(( $(rss_kb "$@") / 1024 ))
  # Server CPU time per request (user + system, all its threads): what the request
  # costs the server, less sensitive than requests/s to how the two cores are shared.
  local total; total=$(awk '/requests in/ {print $1}' <<<"$out")
  CPU[$key]=$(python3 -c "print(f'{($t1 - $t0) / $TICK * 1e6 / max($total, 1):.1f}')")
  read -r u0 k0 <<<"$split0"; read -r u1 k1 <<<"$split1"
  CPUU[$key]=$(python3 -c "print(f'{($u1 - $u0) / $TICK * 1e6 / max($total, 1):.1f}')")
  CPUS[$key]=$(python3 -c "print(f'{($k1 - $k0) / $TICK * 1e6 / max($total, 1):.1f}')")
  echo "  $key: ${RPS[$key]} req/s, p50 ${P50[$key]}, p99 ${P99[$key]}, server CPU ${CPU[$key]} µs/request (ticks by process:$each), non-2xx ${NON2XX[$key]:-0}" >&2
}

echo "==> load: ${SECS}s per target, $CONN connections, 2 wrk threads" >&2
run ceiling "http://127.0.0.1:$NGINX/" "" "" $(nginx_pids)
# nginx `return 202;` with the 202's bytes: sent the session cookie, answering with
# Portcullis's identity headers (the free auth service below).
run ceilingbytes "http://127.0.0.1:$FREEAUTH/" "auth.example.test" "$COOKIE_C" "$FREEAUTH_PID" $(pgrep -P "$FREEAUTH_PID")
run ceilinglog "http://127.0.0.1:$FREELOG/" "auth.example.test" "$COOKIE_C" "$FREELOG_PID" $(pgrep -P "$FREELOG_PID")
run floor401 "http://127.0.0.1:$FLOOR/oauth2/auth" "" "" "$FLOOR_PID"
run floorping "http://127.0.0.1:$FLOOR/ping" "" "" "$FLOOR_PID"
run ping "http://127.0.0.1:$PC/ping" "auth.example.test:$PC" "" "$PC_PID"
for a in $ABLATIONS; do
  run "ping:$a" "http://127.0.0.1:${AB_PORT[$a]}/ping" "auth.example.test:${AB_PORT[$a]}" "" "${AB_PID[$a]}"
  run "cookie:$a" "http://127.0.0.1:${AB_PORT[$a]}/oauth2/auth" "auth.example.test:${AB_PORT[$a]}" "$COOKIE_C" "${AB_PID[$a]}"
done
run cookie "http://127.0.0.1:$PC/oauth2/auth" "auth.example.test:$PC" "$COOKIE_C" "$PC_PID"
# The same session (same key) on the process with Tokio's default runtime.
run percpu "http://127.0.0.1:$PM/oauth2/auth" "auth.example.test:$PM" "$COOKIE_C" "$PM_PID"
run redis "http://127.0.0.1:$PR/oauth2/auth" "auth.example.test:$PR" "$COOKIE_R" "$PR_PID"
run nosession "http://127.0.0.1:$PC/oauth2/auth" "auth.example.test:$PC" "" "$PC_PID"
run plain "http://127.0.0.1:$PLAIN/" "" "" $(nginx_pids)
run chain "http://127.0.0.1:$CHAIN/" "dashboard.c1.example.test" "$COOKIE_C" $(nginx_pids) "$PC_PID"
run freechain "http://127.0.0.1:$FREECHAIN/" "dashboard.c1.example.test" "$COOKIE_C" $(nginx_pids) "$FREEAUTH_PID" $(pgrep -P "$FREEAUTH_PID")

# BENCH_STRACE=1: system calls per request (strace -c on the server while wrk sends
# keep-alive requests over 8 connections for 3 s): the floor, nginx, Portcullis.
if [ -n "${BENCH_STRACE:-}" ]; then
  command -v strace >/dev/null || { SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo; $SUDO apt-get install -y -qq strace >/dev/null; }
  strace_per_request() { # label url host cookie pid
    local out=$DIR/strace-$RANDOM.txt
    strace -f -c -q -o "$out" -p "$5" &
    local sp=$!
    sleep 0.5
    local w; w=$(BENCH_COOKIE="$4" BENCH_HOST="$3" wrk -t1 -c8 -d3s -s bench/auth.lua "$2")
    kill -INT "$sp"; wait "$sp" 2>/dev/null || true
    local n; n=$(awk '/requests in/ {print $1}' <<<"$w")
    python3 - "$out" "$n" "$1" <<'PY'
import sys
rows, total = [], 0
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
        calls = int(f[3]); total += calls; rows.append((calls, f[-1]))
n = max(int(sys.argv[2] or 1), 1)
top = ", ".join(f"{name} {calls / n:.2f}" for calls, name in sorted(rows, reverse=True)[:5])
print(f"| {sys.argv[3]} | {total / n:.2f} | {top} |")
PY
  }
  echo
  echo "| server | system calls per request | the most frequent, per request |"
  echo "|---|---:|---|"
  strace_per_request "floor (hyper) 401" "http://127.0.0.1:$FLOOR/oauth2/auth" "" "" "$FLOOR_PID"
  strace_per_request "nginx return 202 (worker)" "http://127.0.0.1:$NGINX/" "" "" "$(pgrep -P "$NGINX_PID" | head -1)"
  strace_per_request "Portcullis /oauth2/auth (202)" "http://127.0.0.1:$PC/oauth2/auth" "auth.example.test:$PC" "$COOKIE_C" "$PC_PID"
fi

# A partial run (BENCH_ONLY) prints its lines above, not a table with holes.
if [ -n "${BENCH_ONLY:-}" ]; then exit 0; fi
ratio() { python3 -c "print(f'{${1:-0}/${2:-0}:.2f}×' if ${2:-0} else 'n/a')"; }
cat <<TABLE

Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); wrk -t2 -c$CONN -d${SECS}s${BENCH_PIN:+; servers pinned to one core, wrk to the rest}; nginx: 1 worker process; Portcullis: worker_threads = $THREADS; $(date -u +%Y-%m-%d)

| target | requests/s | ratio | baseline | p50 | p99 | peak RSS | server CPU per request |
|---|---:|---:|---|---:|---:|---:|---:|
| nginx \`return 202;\` | ${RPS[ceiling]} | 1.00× | itself | ${P50[ceiling]} | ${P99[ceiling]} | ${RSS[ceiling]} MB (nginx) | ${CPU[ceiling]} µs |
| Portcullis /oauth2/auth, cookie store | ${RPS[cookie]} | $(ratio "${RPS[cookie]}" "${RPS[ceiling]}") | nginx 202 | ${P50[cookie]} | ${P99[cookie]} | ${RSS[cookie]} MB | ${CPU[cookie]} µs |
| the same, one worker thread per CPU (the default) | ${RPS[percpu]} | $(ratio "${RPS[percpu]}" "${RPS[ceiling]}") | nginx 202 | ${P50[percpu]} | ${P99[percpu]} | ${RSS[percpu]} MB | ${CPU[percpu]} µs |
| Portcullis /oauth2/auth, Redis store | ${RPS[redis]} | $(ratio "${RPS[redis]}" "${RPS[cookie]}") | cookie store | ${P50[redis]} | ${P99[redis]} | ${RSS[redis]} MB | ${CPU[redis]} µs |
| Portcullis /oauth2/auth, no session (401) | ${RPS[nosession]} | $(ratio "${RPS[nosession]}" "${RPS[ceiling]}") | nginx 202 | ${P50[nosession]} | ${P99[nosession]} | ${RSS[nosession]} MB | ${CPU[nosession]} µs |
| nginx → static upstream | ${RPS[plain]} | 1.00× | itself | ${P50[plain]} | ${P99[plain]} | ${RSS[plain]} MB (nginx) | ${CPU[plain]} µs |
| nginx → auth_request → Portcullis → static | ${RPS[chain]} | $(ratio "${RPS[chain]}" "${RPS[plain]}") | nginx → static | ${P50[chain]} | ${P99[chain]} | ${RSS[chain]} MB (nginx + Portcullis) | ${CPU[chain]} µs |
| nginx → auth_request → free auth (nginx 202, same headers) → static | ${RPS[freechain]} | $(ratio "${RPS[freechain]}" "${RPS[plain]}") | nginx → static | ${P50[freechain]} | ${P99[freechain]} | ${RSS[freechain]} MB (both nginx) | ${CPU[freechain]} µs |
| the Portcullis chain against the free-auth chain | | $(ratio "${RPS[chain]}" "${RPS[freechain]}") | free-auth chain | | | | |
| nginx \`return 202;\` with the 202's bytes and an access line (the same work) | ${RPS[ceilinglog]} | 1.00× | itself | ${P50[ceilinglog]} | ${P99[ceilinglog]} | ${RSS[ceilinglog]} MB (nginx) | ${CPU[ceilinglog]} µs |
| Portcullis /oauth2/auth, cookie store, against it | | $(ratio "${RPS[cookie]}" "${RPS[ceilinglog]}") | the same work | | | | |
TABLE
row() { # label key: a row of the floor table
  printf '| %s | %s | %s µs | %s | %s | %s |\n' "$1" "${RPS[$2]}" "${CPU[$2]}" "${CPUU[$2]}" "${CPUS[$2]}" \
    "$(python3 -c "f=${CPU[floorping]:-0}; c=${CPU[$2]:-0}; print(f'{c/f:.2f}×' if f else 'n/a')")"
}
cat <<TABLE2

Per-request cost against the floor (a bare hyper HTTP/1 server, crates/portcullis/examples/floor.rs), and what each piece of the serving stack costs (PORTCULLIS_BENCH_ABLATE: the same binary with one piece removed):

| target | requests/s | server CPU per request | user | system | CPU vs the floor's /ping |
|---|---:|---:|---:|---:|---:|
TABLE2
row "floor /ping (hyper, no layers)" floorping
row "floor 401" floor401
row "nginx \`return 202;\`" ceiling
row "nginx \`return 202;\` with the 202's bytes (sent the session cookie, answering the identity headers)" ceilingbytes
row "the same and an access line per request, to a file" ceilinglog
row "Portcullis /ping" ping
row "Portcullis /oauth2/auth, no session (401)" nosession
row "Portcullis /oauth2/auth, cookie session (202)" cookie
for a in $ABLATIONS; do
  row "/ping, $a" "ping:$a"
  row "/oauth2/auth (202), $a" "cookie:$a"
done
for k in ceiling cookie percpu redis chain plain freechain; do
  if [ -n "${NON2XX[$k]:-}" ] && [ "${NON2XX[$k]}" != 0 ]; then
    echo "WARNING: $k had ${NON2XX[$k]} non-2xx answers: the figures are not valid" >&2
  fi
done

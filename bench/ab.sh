#!/usr/bin/env bash
# Paired A/B runs of two Portcullis builds, side by side with nginx `return 202;`.
#
#   bench/ab.sh BIN_A BIN_B [ROUNDS] [SECONDS] [CONNECTIONS]    (defaults: 3, 5, 64)
#
# Both binaries serve the cookie store with one worker thread and the default `info`
# logging, with the same cookie secret, so one real login (against the test
# provider) gives a session both accept. Each round measures nginx, A and B in turn
# with the same wrk settings as bench/run.sh (A and B alternate which goes first),
# and prints requests/s and server CPU per request (user + system, from /proc) for
# each. On a shared two-core machine single runs move a lot: compare within a round.
# BENCH_PATH=/ping measures /ping instead of /oauth2/auth.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$(realpath "$1"); B=$(realpath "$2")
ROUNDS=${3:-3}; SECS=${4:-5}; CONN=${5:-64}
BPATH=${BENCH_PATH:-/oauth2/auth}
DIR=$(mktemp -d /tmp/portcullis-ab.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
. bench/common.sh

IDP=$(free_port); PA=$(free_port); PB=$(free_port); NGINX=$(free_port)
node tests/idp/idp.mjs --port "$IDP" --id-token-ttl 3600 >"$DIR/idp.out" 2>"$DIR/idp.log" &
pids+=($!)
wait_port "$IDP"
SECRET=$("$A" secret)
serve() { # binary port: sets LAST_PID
  bench_config "$DIR/p$2.toml" "$2" cookie 1 "${BENCH_LOG:-info}"
  "$1" serve --config "$DIR/p$2.toml" >"$DIR/portcullis-$2.log" 2>&1 &
  LAST_PID=$!; pids+=("$LAST_PID")
}
serve "$A" "$PA"; A_PID=$LAST_PID
serve "$B" "$PB"; B_PID=$LAST_PID
user=""; [ "$(id -u)" = 0 ] && user="user root;"
mkdir -p "$DIR/nginx/logs"
cat >"$DIR/nginx/nginx.conf" <<CONF
$user
worker_processes 1;
pid $DIR/nginx/nginx.pid;
daemon off;
error_log $DIR/nginx/logs/error.log warn;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$NGINX; location / { return 202; } } }
CONF
nginx -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -e "$DIR/nginx/logs/stderr.log" &
NGINX_PID=$!; pids+=("$NGINX_PID")
wait_port "$PA"; wait_port "$PB"; wait_port "$NGINX"
for p in "$PA" "$PB"; do wait_ready "$p"; done
COOKIE=$(python3 bench/login.py "http://auth.example.test:$PA" alice)
[ "$BPATH" = /oauth2/auth ] || COOKIE=""

TICK=$(getconf CLK_TCK)
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
measure() { # label url host cookie pids...
  local label=$1 url=$2 host=$3 cookie=$4; shift 4
  local t0; t0=$(ticks "$@")
  local out; out=$(BENCH_COOKIE="$cookie" BENCH_HOST="$host" wrk -t2 -c"$CONN" -d"${SECS}s" -s bench/auth.lua "$url")
  local t1; t1=$(ticks "$@")
  local n rps bad
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/^Requests\/sec:/ {printf "%d", $2}' <<<"$out")
  bad=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  printf '%s %s %s %s\n' "$label" "$rps" \
    "$(python3 -c "print(f'{($t1 - $t0) / $TICK * 1e6 / max($n, 1):.2f}')")" "${bad:-0}"
}
echo "round target requests/s cpu_us_per_request non2xx"
for r in $(seq 1 "$ROUNDS"); do
  # shellcheck disable=SC2046
  measure nginx "http://127.0.0.1:$NGINX/" "" "" "$NGINX_PID" $(pgrep -P "$NGINX_PID") | sed "s/^/$r /"
  if [ $((r % 2)) = 1 ]; then order="A B"; else order="B A"; fi
  for x in $order; do
    if [ "$x" = A ]; then port=$PA; pid=$A_PID; else port=$PB; pid=$B_PID; fi
    measure "$x" "http://127.0.0.1:$port$BPATH" "auth.example.test:$port" "$COOKIE" "$pid" | sed "s/^/$r /"
  done
done

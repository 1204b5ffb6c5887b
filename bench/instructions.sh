#!/usr/bin/env bash
# User-space instructions per request, counted by valgrind's callgrind: a figure that
# does not move with the machine's load, unlike requests/s and CPU time (bench/run.sh).
#
#   bench/instructions.sh [REQUESTS]        (default 3000)
#
# Each target serves REQUESTS keep-alive requests, one at a time on one connection,
# under callgrind. Counting starts after the login and the first request (the floor:
# at its start), and covers
# what hyper's connection task runs for a request (`Dispatcher::poll_catch`: reading
# and parsing the head, our service, encoding and writing the answer), not the
# kernel's work nor the log writer's thread. Targets: the floor
# (crates/portcullis/examples/floor.rs), Portcullis's /ping, its 401 and its 202 with
# a real session (cookie store, one worker thread, `info` logging), and the 202 with
# one piece removed (PORTCULLIS_BENCH_ABLATE, and `log.level = "warn"`).
# Counts move by a few hundred between runs (how often a read finds no data yet).
# BENCH_BIN=<path> counts another build; INSTR_ONLY="<labels>" only the targets
# whose labels it contains (INSTR_ONLY="floor 401").
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-3000}
command -v valgrind >/dev/null || { SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo; $SUDO apt-get install -y -qq valgrind >/dev/null; }
scripts/install-deps --no-browser >/dev/null
if [ -n "${BENCH_BIN:-}" ]; then
  BIN=$(realpath "$BENCH_BIN")
else
  cargo build -q --release --locked -p portcullis
  BIN=$PWD/target/release/portcullis
fi
cargo build -q --release --locked -p portcullis --example floor
FLOOR_BIN=$PWD/target/release/examples/floor
DIR=$(mktemp -d /tmp/portcullis-instr.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
. bench/common.sh

IDP=$(free_port)
node tests/idp/idp.mjs --port "$IDP" --id-token-ttl 3600 >"$DIR/idp.out" 2>"$DIR/idp.log" &
pids+=($!)
wait_port "$IDP"
SECRET=$("$BIN" secret)

# Sends N requests for PATH (with COOKIE when given) over one connection, each after
# the previous answer; checks every status is STATUS.
drive() { # port path cookie status n
  python3 - "$@" <<'PY'
import socket, sys
port, path, cookie, status, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].encode(), int(sys.argv[5])
req = f"GET {path} HTTP/1.1\r\nHost: auth.example.test:{port}\r\n"
if cookie:
    req += f"Cookie: {cookie}\r\n"
req = (req + "\r\n").encode()
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(60)
buf = b""
for _ in range(n):
    s.sendall(req)
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, buf = buf.split(b"\r\n\r\n", 1)
    assert head.split(b" ")[1] == status, head[:60]
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(buf) < length:
        buf += s.recv(65536)
    buf = buf[length:]
PY
}

# Counts one target.
count() { # label server(floor|portcullis) path status env
  local label=$1 server=$2 path=$3 status=$4 env=$5
  if [ -n "${INSTR_ONLY:-}" ] && [[ " $INSTR_ONLY " != *" $label "* ]]; then return; fi
  local port; port=$(free_port)
  local out=$DIR/cg-$port.out
  local cmd=("$FLOOR_BIN" "127.0.0.1:$port")
  if [ "$server" = portcullis ]; then
    bench_config "$DIR/p$port.toml" "$port" cookie 1 info
    cmd=("$BIN" serve --config "$DIR/p$port.toml")
  fi
  # shellcheck disable=SC2086
  env $env valgrind --tool=callgrind --callgrind-out-file="$out" --collect-atstart=no \
    --toggle-collect='*Dispatcher*poll_catch*' "${cmd[@]}" >"$DIR/server-$port.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_port "$port"
  local cookie=""
  if [ "$status" = 202 ]; then
    wait_ready "$port"
    cookie=$(python3 bench/login.py "http://auth.example.test:$port" alice)
  fi
  drive "$port" "$path" "$cookie" "$status" 1
  # Zeroed after the login and a first request. (The floor runs no timer: idle, it
  # would never look at the request to zero; it has no login to leave out.)
  [ "$server" = portcullis ] && callgrind_control -z "$pid" >/dev/null 2>&1
  drive "$port" "$path" "$cookie" "$status" "$N"
  # TERM: a job started with & ignores INT, and the floor has no handler of its own.
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  local total
  total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  printf '| %s | %s |\n' "$label" "$(( ${total:-0} / N ))"
}

echo "| target | instructions per request |"
echo "|---|---:|"
count "floor /ping" floor /ping 200 ""
count "floor 401" floor /oauth2/auth 401 ""
count "Portcullis /ping" portcullis /ping 200 ""
count "Portcullis /oauth2/auth, no session (401)" portcullis /oauth2/auth 401 ""
count "Portcullis /oauth2/auth, cookie session (202)" portcullis /oauth2/auth 202 ""
count "202, no access line (log.level = warn)" portcullis /oauth2/auth 202 "RUST_LOG=warn"
for a in http1 no-metrics no-hot no-edge; do
  count "202, $a" portcullis /oauth2/auth 202 "PORTCULLIS_BENCH_ABLATE=$a"
done

#!/usr/bin/env bash
# The exec plugin's cost per kubectl call when its cache holds a valid token (the
# common case: kubectl runs it before every request), measured with hyperfine on the
# release binary, beside the floor of starting any process (`true`) and of a
# process that reads a file (`cat`). Prints hyperfine's table. Not a test: numbers
# depend on the machine.
#
#   bench/kubectl-credential.sh            # builds target/release/portcullis first
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)"; exit 1; }
scripts/build-release >/dev/null
bin=target/release/portcullis
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
server=https://auth.example.com
# The cache file the plugin reads for $server: <first 8 bytes of sha256(server)>.json.
name=$(printf %s "$server" | sha256sum | cut -c1-16)
exp=$(( $(date +%s) + 3600 ))
payload=$(printf '{"iss":"%s","sub":"x","aud":"portcullis","email":"alice@example.com","iat":%d,"exp":%d}' \
  "$server" "$(date +%s)" "$exp" | base64 -w0 | tr '+/' '-_' | tr -d '=')
token="eyJhbGciOiJSUzI1NiJ9.${payload}.c2lnbmF0dXJl"
mkdir -p "$dir/cache" && chmod 700 "$dir/cache"
printf '{"id_token":"%s","expires_at":%d,"refresh_token":"opaque","user":"alice@example.com"}' \
  "$token" "$exp" >"$dir/cache/$name.json"
chmod 600 "$dir/cache/$name.json"
export PORTCULLIS_CACHE_DIR="$dir/cache"
export KUBERNETES_EXEC_INFO='{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}'
"$bin" kubectl-credential --server "$server" | grep -q '"kind":"ExecCredential"'
hyperfine -N --warmup 50 --runs "${RUNS:-1000}" \
  "true" \
  "cat $dir/cache/$name.json" \
  "$bin kubectl-credential --server $server"

# Helpers shared by the bench scripts (sourced, not run).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 600); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
# Until /ready answers (the provider discovered), at most about 20 s.
wait_ready() {
  for _ in $(seq 1 100); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$1/ready', timeout=2)" 2>/dev/null && return 0
    sleep 0.2
  done
}

# Writes to FILE the config of a Portcullis on PORT against the test provider on
# $IDP with cookie secret $SECRET: STORE (cookie or redis, the latter at $REDIS),
# THREADS worker threads, log LEVEL.
bench_config() { # file port store threads level
  cat >"$1" <<CONF
[server]
listen = "127.0.0.1:$2"
worker_threads = $4
trusted_proxies = ["127.0.0.1/32"]
[oidc]
issuer_url = "http://127.0.0.1:$IDP"
client_id = "portcullis"
client_secret = "portcullis-secret"
redirect_url = "http://auth.example.test:$2/oauth2/callback"
[cookie]
secrets = ["$SECRET"]
domains = [".example.test"]
secure = false
[redirect]
whitelist_domains = [".example.test:*"]
[log]
level = "$5"
[session]
store = "$3"
CONF
  if [ "$3" = redis ]; then
    printf '[redis]\nurl = "redis://127.0.0.1:%s/0"\n' "$REDIS" >>"$1"
  fi
}

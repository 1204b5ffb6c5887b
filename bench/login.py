"""Signs in once through a running Portcullis against the test provider, as a browser
would, and prints the session cookie header (`name=value; ...`) for load tests.

    python3 bench/login.py http://auth.example.test:PORT alice

Hosts under example.test are sent to 127.0.0.1 with the right Host header."""
import http.client
import sys
import urllib.parse

base, user = sys.argv[1], sys.argv[2]
site, idp = {}, {}


def request(url, method="GET", body=None, jar=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", u.port or 80, timeout=10)
    headers = {"Host": u.netloc}
    if jar:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, (u.path or "/") + ("?" + u.query if u.query else ""), body, headers)
    r = conn.getresponse()
    r.read()
    target = site if u.hostname.endswith("example.test") else idp
    for k, v in r.getheaders():
        if k.lower() == "set-cookie":
            name, _, rest = v.partition("=")
            if "max-age=0" in v.lower():
                target.pop(name, None)
            else:
                target[name] = rest.split(";")[0]
    return r.status, {k.lower(): v for k, v in r.getheaders()}


status, h = request(f"{base}/oauth2/start", jar=site)
assert status == 302, status
url = h["location"]
for _ in range(10):
    status, h = request(url, jar=idp)
    if status == 200:
        break
    url = urllib.parse.urljoin(url, h["location"])
action = url.rstrip("/") + "/login"
form = urllib.parse.urlencode({"login": f"{user}@example.test", "password": f"{user}-password"})
status, h = request(action, "POST", form, jar=idp)
url = urllib.parse.urljoin(action, h["location"])
for _ in range(10):
    jar = site if urllib.parse.urlsplit(url).hostname.endswith("example.test") else idp
    status, h = request(url, jar=jar)
    if "/oauth2/callback" in url:
        break
    url = urllib.parse.urljoin(url, h["location"])
assert status == 302, f"callback answered {status}"
print("; ".join(f"{k}={v}" for k, v in site.items() if k.startswith("_portcullis") and "_csrf_" not in k))

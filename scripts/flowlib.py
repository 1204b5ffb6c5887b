"""A tiny browser stand-in for scripts: cookie jars (one for the sites, one for the
provider), requests to 127.0.0.1 with the real Host header, and the provider's login
form. Used by scripts/demo-smoke.py and bench/login.py.

Every request goes to 127.0.0.1 (the URL's port) whatever the URL's host, so names
no resolver knows work: the demo's *.portcullis.localhost (browsers resolve *.localhost
to loopback themselves, glibc and Python do not) and the benchmark's *.example.test."""
import http.client
import urllib.parse

REDIRECTS = (301, 302, 303, 307, 308)
# The sites' parent domains (Portcullis and the dashboards share one cookie jar).
SITE_DOMAINS = ("portcullis.localhost", "example.test")


class Browser:
    def __init__(self):
        self.site = {}  # cookies of the sites (Portcullis and the dashboards)
        self.idp = {}   # cookies of the provider (and anything else, on 127.0.0.1)

    def jar(self, url):
        host = urllib.parse.urlsplit(url).hostname or ""
        return self.site if host.endswith(SITE_DOMAINS) else self.idp

    def request(self, url, method="GET", body=None):
        """One request, no redirects followed; absorbs Set-Cookie."""
        u = urllib.parse.urlsplit(url)
        jar = self.jar(url)
        conn = http.client.HTTPConnection("127.0.0.1", u.port or 80, timeout=10)
        headers = {"Host": u.netloc}
        if jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, (u.path or "/") + ("?" + u.query if u.query else ""), body, headers)
        r = conn.getresponse()
        data = r.read()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                if "max-age=0" in v.lower():
                    jar.pop(name, None)
                else:
                    jar[name] = rest.split(";")[0]
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def login(self, provider_url, user, password, stop):
        """From a URL on the provider: follow to the form, submit it, and follow the
        redirects until `stop(url)` is true. Returns that URL (not yet visited)."""
        url = provider_url
        for _ in range(10):
            status, h, body = self.request(url)
            if status == 200:
                break
            url = urllib.parse.urljoin(url, h["location"])
        if b"Log in to Example IdP" not in body:
            raise RuntimeError("no login form at the provider")
        action = url.rstrip("/") + "/login"
        form = urllib.parse.urlencode({"login": user, "password": password})
        status, h, _ = self.request(action, "POST", form)
        if status not in REDIRECTS:
            raise RuntimeError(f"login refused ({status})")
        url = urllib.parse.urljoin(action, h["location"])
        for _ in range(10):
            if stop(url):
                return url
            status, h, _ = self.request(url)
            if status not in REDIRECTS:
                raise RuntimeError(f"{url} answered {status}")
            url = urllib.parse.urljoin(url, h["location"])
        raise RuntimeError("too many redirects")

"""Checks the running demo end to end. Used by `scripts/demo --smoke` (CI):

1. a scripted login through nginx (flowlib): the dashboard received a verified token,
   and the same session lists the clusters kubectl can sign in to;
2. in real headless Chromium with no resolver flag: the sign-in on c1's dashboard at
   dashboard.c1.portcullis.localhost, then c2's without a login (the cookie of
   `.portcullis.localhost`).

Prints `demo smoke: N passed, M failed`; exits 1 when a check failed."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flowlib import Browser  # noqa: E402
import webdriver  # noqa: E402

PORT = int(os.environ.get("HTTP_PORT", "8080"))
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


# 2. Chromium, resolving *.localhost itself: single sign-on across the dashboards.
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

"""Logs in once through the running demo, as a browser would, and checks the
dashboard received a verified token. Used by `scripts/demo --smoke` (CI)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flowlib import Browser  # noqa: E402

PORT = int(os.environ.get("HTTP_PORT", "8080"))


def fail(msg):
    print(f"demo smoke: FAILED: {msg}")
    sys.exit(1)


b = Browser()
dash = f"http://dashboard.c1.example.test:{PORT}/whoami.json"
status, h, _ = b.request(dash)
if status != 302:
    fail(f"unauthenticated dashboard answered {status}")
try:
    # Through the callback (nginx on auth.example.test) back to the dashboard.
    landing = b.login(h["location"], "alice@example.test", "alice-password", lambda u: u == dash)
except RuntimeError as e:
    fail(str(e))
status, h, body = b.request(landing)
who = json.loads(body)
if status != 200 or not who.get("verified") or who["claims"]["email"] != "alice@example.test":
    fail(f"dashboard saw {who}")
# The same session lists the clusters kubectl can sign in to.
status, _, body = b.request(f"http://auth.example.test:{PORT}/oauth2/clusters")
names = [c["name"] for c in json.loads(body).get("clusters", [])] if status == 200 else []
if names != ["c1", "c2"]:
    fail(f"/oauth2/clusters answered {status}: {body[:200]!r}")
print("demo smoke: 2 passed, 0 failed (login through nginx; dashboard verified alice's token; "
      "her clusters listed for kubectl)")

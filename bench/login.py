"""Signs in once through a running Portcullis against the test provider, as a browser
would, and prints the session cookie header (`name=value; ...`) for load tests.

    python3 bench/login.py http://auth.example.test:PORT alice
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from flowlib import Browser  # noqa: E402

base, user = sys.argv[1], sys.argv[2]
b = Browser()
status, h, _ = b.request(f"{base}/oauth2/start")
assert status == 302, status
callback = b.login(h["location"], f"{user}@example.test", f"{user}-password", lambda u: "/oauth2/callback" in u)
status, _, _ = b.request(callback)
assert status == 302, f"callback answered {status}"
print("; ".join(f"{k}={v}" for k, v in b.site.items() if k.startswith("_portcullis") and "_csrf_" not in k))

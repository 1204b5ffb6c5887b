"""Headless Chromium over chromedriver with a tiny W3C WebDriver client (only the
standard library): the calls scripts/demo-smoke.py needs. Chromium runs with no
--host-resolver-rules: it resolves names as a user's browser does, *.localhost to
loopback included."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver",)
# What this machine needs (no sandbox as root, no GPU, small /dev/shm) and no
# background traffic; nothing that changes how names resolve or cookies work.
ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic",
]
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def binaries():
    """(chromium, chromedriver), or None when either is missing."""
    chromium = next((p for p in CHROMIUM if os.path.exists(p)), None)
    driver = next((p for p in CHROMEDRIVER if os.path.exists(p)), None)
    return (chromium, driver) if chromium and driver else None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriverError(RuntimeError):
    pass


class Chromium:
    """One browser session with a fresh profile; `quit()` ends browser and driver."""

    def __init__(self, chromium, driver):
        self.profile = tempfile.mkdtemp(prefix="portcullis-smoke-chromium-")
        port = _free_port()
        self.driver = subprocess.Popen(
            [driver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 20
        while True:
            try:
                if self._call("GET", "/status").get("ready"):
                    break
            except (OSError, WebDriverError):
                pass
            if time.time() > deadline:
                self.quit()
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ARGS + [f"--user-data-dir={self.profile}"],
            },
        }}}
        try:
            session = self._call("POST", "/session", caps)
        except WebDriverError:
            self.quit()
            raise
        self.base += f"/session/{session['sessionId']}"
        self.session = True

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                value = json.load(r)["value"]
        except urllib.error.HTTPError as e:
            value = json.load(e).get("value", {})
        if isinstance(value, dict) and "error" in value:
            raise WebDriverError(f"webdriver {method} {path}: {value.get('message', value)[:300]}")
        return value

    def goto(self, url):
        self._call("POST", "/url", {"url": url})

    def url(self):
        return self._call("GET", "/url")

    def source(self):
        return self._call("GET", "/source")

    def cookies(self):
        """The cookies the current page's URL would be sent (name, domain, …)."""
        return self._call("GET", "/cookie")

    def try_find(self, css):
        try:
            return self._call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]
        except WebDriverError:
            return None

    def find(self, css, timeout=15):
        deadline = time.time() + timeout
        while True:
            element = self.try_find(css)
            if element:
                return element
            if time.time() > deadline:
                raise WebDriverError(f"no element {css} at {self.url()}")
            time.sleep(0.1)

    def text(self, css):
        return self._call("GET", f"/element/{self.find(css)}/text")

    def type_into(self, css, text):
        self._call("POST", f"/element/{self.find(css)}/value", {"text": text})

    def click(self, css):
        self._call("POST", f"/element/{self.find(css)}/click", {})

    def quit(self):
        if getattr(self, "session", False):
            try:
                self._call("DELETE", "")
            except (OSError, WebDriverError):
                pass
            self.session = False
        self.driver.terminate()
        try:
            self.driver.wait(10)
        except subprocess.TimeoutExpired:
            self.driver.kill()
        # chromedriver does not always take Chromium down with it: end what runs
        # with our profile (and nothing else).
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if f"--user-data-dir={self.profile}".encode() in cmdline:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(self.profile, ignore_errors=True)

//! Headless Chromium over WebDriver (chromedriver), with a tiny W3C WebDriver client:
//! just the calls the tests need.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; the browser and driver are stopped on drop.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    base: String,
    _driver: Child,
    _profile: PathBuf,
}

fn find_binary(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium that resolves `*.example.test` to
    /// 127.0.0.1. `None` (skip) when they are missing outside CI.
    pub async fn start() -> Option<Self> {
        let chromium = find_binary(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        let driver = find_binary(&["/usr/bin/chromedriver"]);
        if !crate::require(
            "chromium + chromedriver",
            chromium.is_some() && driver.is_some(),
            "apt-get install chromium chromium-driver",
        ) {
            return None;
        }
        let port = crate::free_port();
        let child = Command::new(driver?)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = crate::client::http();
        let base = format!("http://127.0.0.1:{port}");
        let status_url = format!("{base}/status");
        crate::eventually("chromedriver ready", Duration::from_secs(20), || {
            let http = http.clone();
            let url = status_url.clone();
            async move {
                let r = http.get(url).send().await.ok()?;
                let v: Value = r.json().await.ok()?;
                v["value"]["ready"].as_bool().filter(|r| *r).map(|_| ())
            }
        })
        .await;
        let profile = crate::nginx::tempdir("chromium-profile");
        let caps = json!({
            "capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium?.display().to_string(),
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--no-first-run", "--disable-quic", "--disable-features=HttpsUpgrades",
                        format!("--user-data-dir={}", profile.display()),
                        "--host-resolver-rules=MAP *.example.test 127.0.0.1",
                    ]
                }
            }}
        });
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused the session: {r}"));
        Some(Self {
            base: format!("{base}/session/{id}"),
            http,
            _driver: child,
            _profile: profile,
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"].get("error").is_some() {
            panic!("webdriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    /// Navigates and waits for the page load.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's HTML.
    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn try_find(&self, css: &str) -> Option<String> {
        let r: Value = self
            .http
            .post(format!("{}/element", self.base))
            .json(&json!({"using": "css selector", "value": css}))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        r["value"][ELEMENT].as_str().map(str::to_owned)
    }

    /// Waits (up to 15 s) for an element and returns its id.
    pub async fn find(&self, css: &str) -> String {
        crate::eventually(&format!("element {css}"), Duration::from_secs(15), || {
            self.try_find(css)
        })
        .await
    }

    /// Whether an element exists now.
    pub async fn has(&self, css: &str) -> bool {
        self.try_find(css).await.is_some()
    }

    /// Types into an input.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Clicks an element.
    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// An element's visible text.
    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Saves a PNG screenshot (for people looking at failures).
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine as _;
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        if let Some(Ok(bytes)) = v
            .as_str()
            .map(|b64| base64::engine::general_purpose::STANDARD.decode(b64))
        {
            let _ = std::fs::write(path, bytes);
        }
    }

    /// Ends the session (closes the browser).
    pub async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

impl Drop for Browser {
    /// chromedriver does not take Chromium down with it when killed, so a test that
    /// fails before `quit` would leave a browser behind: end it by its profile dir.
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill")
            .arg("-f")
            .arg(format!("user-data-dir={}", self._profile.display()))
            .status();
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}

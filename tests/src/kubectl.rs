//! Driving the real `portcullis login` and its exec plugin from tests: the CLI runs as
//! a process with its own `$HOME`; the browser part is done by an [`Agent`].

use std::process::Stdio;

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::browser::Browser;
use crate::client::Agent;
use crate::process::binary;

/// Runs `portcullis <args>` with `home` as `$HOME`; (status, stdout, stderr).
pub async fn run(home: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary())
        .args(args)
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .output()
        .await
        .expect("test step");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The consent page's CSRF token.
pub fn csrf_of(page: &str) -> String {
    let at =
        page.find("name=\"csrf\" value=\"").expect("test step") + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().expect("test step").to_owned()
}

/// The browser part of a loopback sign-in as `browser` (signed in already): the
/// consent page at `url`, approved, and the redirect to the CLI's listener followed.
pub async fn approve_as(browser: &mut Agent, url: &str, public: &str) {
    let page = browser.get(url).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_of(&page.text().await.expect("test step"));
    let r = browser
        .http
        .post(format!("{public}/oauth2/cli/authorize"))
        .header("cookie", browser.site.header())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={}&decision=approve",
            url::form_urlencoded::byte_serialize(csrf.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .expect("test step");
    assert_eq!(r.status(), StatusCode::FOUND);
    let loopback = r.headers()["location"]
        .to_str()
        .expect("test step")
        .to_owned();
    assert!(loopback.starts_with("http://127.0.0.1:"), "{loopback}");
    // The browser follows the redirect to the CLI's loopback listener.
    let done = browser.http.get(&loopback).send().await.expect("test step");
    assert!(done.text().await.expect("test step").contains("Signed in"));
}

/// `portcullis login --no-browser`, with the browser part done by `browser`.
pub async fn login(
    home: &std::path::Path,
    server: &str,
    public: &str,
    browser: &mut Agent,
) -> String {
    let mut child = Command::new(binary())
        .args(["login", "--server", server, "--no-browser"])
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("test step");
    let mut lines = BufReader::new(child.stderr.take().expect("test step")).lines();
    let url = loop {
        let line = lines
            .next_line()
            .await
            .expect("test step")
            .expect("login prints the URL");
        if line.starts_with("http") {
            break line;
        }
    };
    // The browser reaches the same server under its public name.
    approve_as(browser, &url.replacen(server, public, 1), public).await;
    let mut rest = String::new();
    while let Some(line) = lines.next_line().await.expect("test step") {
        rest.push_str(&line);
        rest.push('\n');
    }
    let status = child.wait().await.expect("test step");
    assert!(status.success(), "login failed: {rest}");
    rest
}

/// A running `portcullis` CLI command and its stderr, line by line.
pub struct Running {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
    /// Every stderr line read so far.
    pub seen: String,
}

impl Running {
    /// Starts `portcullis <args>` with `home` as `$HOME`.
    pub fn spawn(home: &std::path::Path, args: &[&str]) -> Self {
        Self::spawn_with(home, args, &[])
    }

    /// [`Running::spawn`] with more environment variables.
    pub fn spawn_with(home: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary());
        command
            .args(args)
            .env("HOME", home)
            .env_remove("KUBECONFIG")
            .env_remove("BROWSER")
            .env_remove("KUBERNETES_EXEC_INFO");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("test step");
        let lines = BufReader::new(child.stderr.take().expect("test step")).lines();
        Self {
            child,
            lines,
            seen: String::new(),
        }
    }

    /// The first stderr line that contains `needle` (30 s at most).
    pub async fn line_with(&mut self, needle: &str) -> String {
        let wait = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(line) = self.lines.next_line().await.expect("test step") {
                self.seen.push_str(&line);
                self.seen.push('\n');
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        });
        match wait.await {
            Ok(Some(line)) => line,
            _ => panic!("no line with {needle:?} in: {}", self.seen),
        }
    }

    /// Waits for the command to end (60 s at most); its success and all of stderr.
    pub async fn finish(self) -> (bool, String) {
        let (ok, _, stderr) = self.finish_output().await;
        (ok, stderr)
    }

    /// Waits for the command to end (60 s at most); its success, stdout and stderr.
    pub async fn finish_output(mut self) -> (bool, String, String) {
        let mut stdout = self.child.stdout.take().expect("test step");
        let rest = async {
            let mut out = String::new();
            tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out)
                .await
                .expect("test step");
            while let Some(line) = self.lines.next_line().await.expect("test step") {
                self.seen.push_str(&line);
                self.seen.push('\n');
            }
            (self.child.wait().await.expect("test step"), out)
        };
        let (status, out) = tokio::time::timeout(std::time::Duration::from_secs(60), rest)
            .await
            .expect("the command ends");
        (status.success(), out, self.seen)
    }
}

/// In real Chromium: opens `url` and walks whatever pages come (our sign-in page, the
/// provider's login form as `user`, the kubectl consent page or the device pages,
/// approving) until the page source contains `done`.
pub async fn approve_in_chromium(browser: &Browser, url: &str, user: &str, done: &str) {
    browser.goto(url).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "stuck at {}: {}",
            browser.url().await,
            browser.source().await
        );
        if browser.source().await.contains(done) {
            return;
        }
        if browser.has("#approve").await {
            browser.click("#approve").await;
        } else if browser.has("#continue").await {
            browser.click("#continue").await;
        } else if browser.has("#sign-in").await {
            browser.click("#sign-in").await;
        } else if browser.has("#login").await {
            browser
                .type_into("#login", &format!("{user}@example.test"))
                .await;
            browser
                .type_into("#password", &format!("{user}-password"))
                .await;
            browser.click("#submit").await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

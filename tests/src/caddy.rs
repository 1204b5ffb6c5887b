//! Real Caddy (`apt-get install caddy`) running the `deploy/caddy` snippet.

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

/// The Caddy binary, if installed.
pub fn binary() -> Option<PathBuf> {
    ["/usr/bin/caddy", "/usr/local/bin/caddy"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl Caddy {
    /// Starts Caddy on `port` with `sites` (Caddyfile site blocks, which may
    /// `import portcullis`) after importing `deploy/caddy/portcullis.caddy`, with
    /// `PORTCULLIS_ADDR` pointing at Portcullis. `None` (skip) without Caddy outside CI.
    pub async fn start(port: u16, portcullis_port: u16, sites: &str) -> Option<Self> {
        let bin = binary();
        if !crate::require("caddy", bin.is_some(), "apt-get install caddy") {
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

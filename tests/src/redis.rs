//! A real `redis-server` on loopback, with append-only persistence in a temp dir so a
//! stop/start keeps its data (an outage, not a wipe).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A running (or stopped) Redis.
#[derive(Debug)]
pub struct Redis {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

fn binary() -> Option<PathBuf> {
    ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl Redis {
    /// Starts Redis; `None` (skip) when missing outside CI.
    pub async fn start() -> Option<Self> {
        if !crate::require(
            "redis-server",
            binary().is_some(),
            "apt-get install redis-server",
        ) {
            return None;
        }
        let mut r = Self {
            port: crate::free_port(),
            dir: crate::nginx::tempdir("redis"),
            child: None,
        };
        r.resume().await;
        Some(r)
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (its data stays on disk).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Starts the server again on the same port with the same data.
    pub async fn resume(&mut self) {
        let child = Command::new(binary().expect("redis-server"))
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let port = self.port;
        crate::eventually("redis listening", Duration::from_secs(10), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
    }
}

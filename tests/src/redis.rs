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

    /// Freezes the server (SIGSTOP): connections stay open but nothing is answered,
    /// so a client waits on it (a hung Redis, unlike [`Redis::stop`]'s refused one).
    pub async fn pause(&self) {
        self.signal("-STOP").await;
    }

    /// Thaws a [`Redis::pause`]d server (SIGCONT); it answers what it was sent.
    pub async fn unpause(&self) {
        self.signal("-CONT").await;
    }

    async fn signal(&self, sig: &str) {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .expect("redis running");
        let status = Command::new("kill")
            .arg(sig)
            .arg(pid.to_string())
            .status()
            .await
            .unwrap();
        assert!(status.success(), "kill {sig} {pid}");
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

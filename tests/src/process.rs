//! The real `portcullis` binary as a separate process (replicas, the CLI).
//!
//! It is the one `cargo build` (or `cargo test --workspace`) left in the target
//! directory next to the test executables; scripts/test builds it first.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::portcullis_server::Options;

/// Path of the built binary.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/portcullis
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("portcullis");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p portcullis` first",
        bin.display()
    );
    bin
}

/// A running `portcullis serve`; killed on drop.
#[derive(Debug)]
pub struct Replica {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its config file.
    pub config: PathBuf,
    _child: Child,
}

/// Writes the configuration `opts` describes (as the in-process server would run it)
/// to a file, for the binary.
pub fn write_config(opts: &Options, port: u16) -> PathBuf {
    let toml = crate::portcullis_server::render(opts, port);
    let dir = crate::nginx::tempdir("portcullis-config");
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

impl Replica {
    /// Starts `portcullis serve --config …` and waits until `/ready` answers 200.
    pub async fn start(opts: &Options) -> Self {
        let filter = std::env::var("REPLICA_LOG").unwrap_or_else(|_| "warn".into());
        Self::start_logging(opts, &filter, None).await
    }

    /// Like [`Replica::start`], with the log filter `rust_log` and, when `log` is
    /// given, stdout and stderr written to that file.
    pub async fn start_logging(
        opts: &Options,
        rust_log: &str,
        log: Option<&std::path::Path>,
    ) -> Self {
        let port = crate::free_port();
        let config = write_config(opts, port);
        let (out, err) = match log {
            Some(path) => {
                let f = std::fs::File::create(path).unwrap();
                (Stdio::from(f.try_clone().unwrap()), Stdio::from(f))
            }
            None => (Stdio::inherit(), Stdio::inherit()),
        };
        let child = Command::new(binary())
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", rust_log)
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .expect("portcullis starts");
        let http = crate::client::http();
        let url = format!("http://127.0.0.1:{port}/ready");
        crate::eventually("replica ready", Duration::from_secs(30), || {
            let http = http.clone();
            let url = url.clone();
            async move {
                let r = http.get(url).send().await.ok()?;
                r.status().is_success().then_some(())
            }
        })
        .await;
        Self {
            port,
            config,
            _child: child,
        }
    }

    /// Stops the process with SIGTERM (graceful: logs are flushed) and returns its
    /// exit code.
    pub async fn terminate(mut self) -> Option<i32> {
        let pid = self._child.id()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
        let status = tokio::time::timeout(Duration::from_secs(10), self._child.wait())
            .await
            .ok()?
            .ok()?;
        status.code()
    }

    /// Sends SIGTERM and returns at once (see [`Replica::wait`]).
    pub async fn send_term(&self) {
        let pid = self._child.id().expect("replica still running");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await
            .unwrap();
        assert!(status.success(), "kill -TERM {pid}");
    }

    /// Waits up to `timeout` for the process to exit and returns its exit code
    /// (`None` if it did not exit in time or died of a signal).
    pub async fn wait(mut self, timeout: Duration) -> Option<i32> {
        let status = tokio::time::timeout(timeout, self._child.wait())
            .await
            .ok()?
            .ok()?;
        status.code()
    }

    /// Base URL on the auth host name.
    pub fn public_url(&self) -> String {
        format!("http://auth.example.test:{}", self.port)
    }
}

/// Runs `portcullis <args…> --config <config>` and returns (status, stdout, stderr).
pub async fn cli(args: &[&str], config: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .expect("portcullis runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

//! Starting the Node.js stand-ins (provider, dashboards, API servers): each prints one
//! JSON line on stdout once it listens, then nothing a test needs.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Spawns `cmd` (killed on drop) and waits up to 20 s for its first stdout line, the
/// JSON it announces itself with; the rest of stdout is drained so the child never
/// blocks on a full pipe.
pub async fn start(mut cmd: Command, what: &str) -> (Child, serde_json::Value) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{what} starts within 20 s"))
        .unwrap_or_else(|e| panic!("{what}'s stdout: {e}"))
        .unwrap_or_else(|| panic!("{what} printed its start line"));
    let announced = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("{what}'s start line is JSON ({e}): {line}"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, announced)
}

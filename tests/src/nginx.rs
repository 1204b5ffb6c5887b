//! Real nginx running the repository's `deploy/nginx/snippets`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::repo_root;

/// The nginx binary, if installed.
pub fn binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A running nginx; stopped on drop.
#[derive(Debug)]
pub struct Nginx {
    /// The port every server block listens on.
    pub port: u16,
    /// Its prefix directory (config, logs).
    pub dir: PathBuf,
    _child: Child,
}

/// One protected dashboard: its host name and upstream port.
#[derive(Debug, Clone)]
pub struct Site {
    /// e.g. `dashboard.c1.example.test`.
    pub host: String,
    /// The stand-in dashboard's port.
    pub upstream_port: u16,
}

impl Nginx {
    /// Renders a config that mirrors `deploy/nginx/dashboards.conf` on loopback, over
    /// plain HTTP, on `port`: `auth.example.test` proxies to Portcullis, each site is
    /// protected with the deploy snippets. Returns `None` (skip) if nginx is missing
    /// outside CI.
    pub async fn start(port: u16, portcullis_port: u16, sites: &[Site]) -> Option<Self> {
        let bin = binary();
        if !crate::require("nginx", bin.is_some(), "apt-get install nginx") {
            return None;
        }
        let dir = tempdir("nginx");
        for sub in ["tmp", "logs"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(
            repo_root().join("deploy/nginx/snippets"),
            dir.join("snippets"),
        )
        .unwrap();
        let mut servers = String::new();
        for s in sites {
            servers.push_str(&format!(
                r#"
    server {{
        listen 127.0.0.1:{port};
        server_name {host};
        include snippets/portcullis-endpoints.conf;
        location / {{
            include snippets/portcullis-protect.conf;
            proxy_pass http://127.0.0.1:{up};
        }}
    }}
"#,
                host = s.host,
                up = s.upstream_port
            ));
        }
        let d = dir.display();
        let user = if is_root() { "user root;" } else { "" };
        let conf = format!(
            r#"
{user}
# One process, so that killing it (kill_on_drop) stops nginx entirely.
master_process off;
daemon off;
pid {d}/nginx.pid;
error_log {d}/logs/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {d}/logs/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    upstream portcullis {{
        server 127.0.0.1:{portcullis_port};
        keepalive 8;
    }}
    large_client_header_buffers 4 32k;
    server {{
        listen 127.0.0.1:{port};
        server_name auth.example.test;
        location / {{
            include snippets/portcullis-proxy.conf;
        }}
    }}
{servers}
}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let bin = bin?;
        check_config(&bin, &dir, &conf_path).await;
        let child = Command::new(&bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.join("logs/stderr.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx starts");
        crate::eventually("nginx listening", Duration::from_secs(10), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        Some(Self {
            port,
            dir,
            _child: child,
        })
    }

    /// nginx's error log so far (for assertion messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }
}

async fn check_config(bin: &Path, dir: &Path, conf: &Path) {
    let out = Command::new(bin)
        .arg("-t")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(conf)
        .arg("-e")
        .arg(dir.join("logs/stderr.log"))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "nginx -t rejects the config: {}{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.join("logs/stderr.log")).unwrap_or_default()
    );
}

fn is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || std::fs::read_to_string("/proc/self/status")
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false)
}

/// A fresh directory under the system temp dir.
pub fn tempdir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "portcullis-e2e-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

//! `portcullis login`: signs kubectl in through the user's browser (RFC 8252: a
//! loopback redirect with PKCE) and writes kubeconfig for the user's clusters.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::cache::{Cache, write_private};
use crate::kubeconfig::{self, Entries};
use crate::server::{Server, Tokens};

/// How long `login` waits for the browser to come back.
const BROWSER_WAIT: Duration = Duration::from_secs(300);

/// `portcullis login`.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The Portcullis server (`https://auth.example.com`).
    #[arg(long, env = "PORTCULLIS_SERVER")]
    pub server: String,
    /// Only these clusters (default: every cluster you may use).
    pub clusters: Vec<String>,
    /// Print the URL instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Sign in with a code entered in a browser elsewhere (no local browser, e.g. SSH).
    #[arg(long, conflicts_with = "no_browser")]
    pub device: bool,
    /// Prepended to the cluster and context names written.
    #[arg(long, default_value = "")]
    pub context_prefix: String,
    /// Make this context (after the prefix) the current one.
    #[arg(long)]
    pub set_current_context: Option<String>,
    /// The kubeconfig to write (default: the first of $KUBECONFIG, else ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

fn kubeconfig_path(args: &LoginArgs) -> Result<PathBuf, String> {
    if let Some(p) = &args.kubeconfig {
        return Ok(p.clone());
    }
    if let Some(first) = std::env::var("KUBECONFIG")
        .ok()
        .and_then(|v| v.split(':').find(|s| !s.is_empty()).map(PathBuf::from))
    {
        return Ok(first);
    }
    Ok(crate::host::home()?.join(".kube/config"))
}

pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

fn open_browser(url: &str) {
    let mut candidates: Vec<String> = Vec::new();
    if let Ok(b) = std::env::var("BROWSER") {
        candidates.push(b);
    }
    candidates.extend(["xdg-open".to_owned(), "open".to_owned()]);
    for c in candidates {
        if std::process::Command::new(&c)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
        {
            return;
        }
    }
}

fn query_value(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Waits for the browser's redirect to the loopback listener; the code it carries.
async fn wait_for_code(listener: TcpListener, state: &str) -> Result<String, String> {
    loop {
        let (mut stream, _) = listener
            .accept()
            .await
            .map_err(|e| format!("loopback listener: {e}"))?;
        let mut buf = vec![0u8; 8192];
        let n = match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            _ => continue,
        };
        let head = String::from_utf8_lossy(&buf[..n]);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("GET "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or_default();
        let Some(query) = target.strip_prefix("/callback?") else {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            continue;
        };
        // A request without our state is not our browser's: ignore it.
        if query_value(query, "state").as_deref() != Some(state) {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let (outcome, page) = match (query_value(query, "code"), query_value(query, "error")) {
            (Some(code), _) => (
                Ok(code),
                "Signed in. You can close this tab and return to the terminal.",
            ),
            (None, error) => (
                Err(format!(
                    "sign-in was not approved ({})",
                    error.unwrap_or_else(|| "no code".into())
                )),
                "Sign-in was not approved. You can close this tab.",
            ),
        };
        let body = format!("<!doctype html><title>Portcullis</title><p>{page}</p>");
        let _ = stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
        return outcome;
    }
}

/// Signs in through the browser (loopback redirect with PKCE): the CLI session's
/// tokens. The URL is opened, or only printed with `no_browser`; prompts on stderr.
pub async fn browser_sign_in(server: &Server, no_browser: bool) -> Result<Tokens, String> {
    let verifier = crate::host::random(32)?;
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&verifier));
    let state = crate::host::random(16)?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen on loopback: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("loopback listener: {e}"))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let mut url = url::Url::parse(&format!("{}/oauth2/cli/authorize", server.base()))
        .map_err(|e| e.to_string())?;
    url.query_pairs_mut()
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", &state)
        .append_pair("client_host", &host_name());
    if no_browser {
        eprintln!("Open this URL in your browser to sign in:\n{url}");
    } else {
        eprintln!("Opening {url} in your browser (or open it yourself).");
        open_browser(url.as_str());
    }
    let code = tokio::time::timeout(BROWSER_WAIT, wait_for_code(listener, &state))
        .await
        .map_err(|_| "no sign-in within 5 minutes".to_owned())??;
    server
        .redeem(&code, &verifier, &redirect_uri)
        .await
        .map_err(|e| format!("sign-in failed: {e}"))
}

/// Runs the sign-in and writes kubeconfig.
pub async fn login(args: LoginArgs) -> Result<(), String> {
    let server = Server::new(&args.server)?;
    let tokens = if args.device {
        crate::device::sign_in(&server, &host_name()).await?
    } else {
        browser_sign_in(&server, args.no_browser).await?
    };
    let cache = Cache::for_server(server.base())?;
    {
        let _lock = cache.lock()?;
        cache.store(&tokens)?;
    }
    let (mut clusters, groups) = server
        .clusters(&tokens.refresh_token)
        .await
        .map_err(|e| e.to_string())?;
    if !args.clusters.is_empty() {
        let unknown: Vec<&String> = args
            .clusters
            .iter()
            .filter(|n| !clusters.iter().any(|c| &c.name == *n))
            .collect();
        if !unknown.is_empty() {
            let available: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
            return Err(format!(
                "no such cluster for you: {unknown:?} (available: {available:?})"
            ));
        }
        clusters.retain(|c| args.clusters.contains(&c.name));
    }
    let path = kubeconfig_path(&args)?;
    let existing = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let command = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "portcullis".into());
    let current = args
        .set_current_context
        .as_ref()
        .map(|c| format!("{}{c}", args.context_prefix));
    let merged = kubeconfig::merge(
        existing.as_deref(),
        &Entries {
            server: server.base(),
            clusters: &clusters,
            context_prefix: &args.context_prefix,
            command: &command,
            current_context: current.as_deref(),
        },
    )?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    if let Some(old) = &existing {
        write_private(&path.with_extension("portcullis-backup"), old.as_bytes())?;
    }
    write_private(&path, merged.as_bytes())?;
    let names: Vec<String> = clusters
        .iter()
        .map(|c| format!("{}{}", args.context_prefix, c.name))
        .collect();
    if groups.is_empty() {
        eprintln!("Signed in as {}.", tokens.user);
    } else {
        eprintln!(
            "Signed in as {} (groups: {}).",
            tokens.user,
            groups.join(", ")
        );
    }
    if names.is_empty() {
        eprintln!("No cluster is configured for you on {}.", server.base());
    } else {
        eprintln!(
            "Configured contexts {} in {}. Try: kubectl --context {} get pods",
            names.join(", "),
            path.display(),
            names[0]
        );
    }
    Ok(())
}

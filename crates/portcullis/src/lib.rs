//! The `portcullis` process: logging, listeners, background discovery and shutdown.
//!
//! `main.rs` only parses the command line; everything a test may want to run in-process
//! lives here ([`spawn`]), in the mini-redis `start_server()` style.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use portcullis_config::{LogFormat, ServeSettings, Settings, StoreChoice, TlsFiles};
use portcullis_http::AppState;
use portcullis_session::Keyring;
use portcullis_session::store::{AnyStore, CookieStore, RedisStore};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;
use tracing_subscriber::EnvFilter;

pub mod access_sink;
pub mod head_timer;
pub mod log_format;
pub mod log_sink;

/// How long a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request head (slow-loris bound, HTTP/1).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

const AUDIT_TARGET: &str = portcullis_core::audit::TARGET;

/// Installs the global tracing subscriber (`RUST_LOG` overrides the configured filter).
///
/// Lines go to stdout in batches ([`log_sink`]): a request appends its access line to
/// memory and never waits on a `write` or wakes a thread. Keep the returned guard
/// alive until exit: dropping it writes what is buffered. `None` if a subscriber was
/// already installed.
#[must_use = "dropping the guard stops the log flusher"]
pub fn init_logging(level: &str, format: LogFormat) -> Option<log_sink::FlushGuard> {
    // The audit trail is written whatever the level, unless RUST_LOG says otherwise.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},{}=info", AUDIT_TARGET)));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let (writer, guard) = log_sink::batched(stdout_fd());
    let access = access_sink::FastAccess {
        writer: writer.clone(),
        json: matches!(format, LogFormat::Json),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Json => builder
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(log_format::LineFormat { json: true })
            .try_init(),
        LogFormat::Text => builder
            .event_format(log_format::LineFormat { json: false })
            .try_init(),
    };
    installed.ok().map(|()| {
        // Access lines in the same format, without tracing's formatting (and only
        // when not coloured: the fast path writes plain text).
        if !ansi {
            portcullis_http::access::install(Box::new(access));
        }
        guard
    })
}

/// Stdout as a plain file descriptor: `Stdout` would add a line buffer (and a `write`
/// per line) under our batches.
fn stdout_fd() -> Box<dyn std::io::Write + Send> {
    use std::os::fd::AsFd as _;
    match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(std::io::stdout()),
    }
}

/// Builds the configured session store. Redis is connected lazily: the process
/// starts (not ready) while Redis is down.
pub async fn store(settings: &Settings, keyring: &Arc<Keyring>) -> anyhow::Result<AnyStore> {
    let name = &settings.http.cookie.name;
    Ok(match &settings.store {
        StoreChoice::Cookie => {
            if settings.oidc.scopes.iter().any(|s| s == "offline_access") {
                // Said once, at start: the README's store comparison says the same.
                tracing::warn!(
                    "session.store = \"cookie\" keeps one refresh token per browser; a provider that keeps one per user and client (Dex) revokes a user's earlier refresh token at each new sign-in, so signing in on a second device ends the first at its next refresh. Use session.store = \"redis\" for teams: it shares one grant per user"
                );
            }
            AnyStore::Cookie(CookieStore::new(Arc::clone(keyring), name))
        }
        StoreChoice::Redis(redis) => AnyStore::Redis(
            RedisStore::new(redis, Arc::clone(keyring), name)
                .await
                .with_context(|| format!("cannot use Redis ({redis:?})"))?,
        ),
    })
}

/// Builds the shared state from validated settings.
pub async fn state(settings: &Settings) -> anyhow::Result<Arc<AppState>> {
    let keyring = Arc::new(Keyring::new(&settings.keys).context("no cookie secret configured")?);
    let store = store(settings, &keyring).await?;
    Ok(Arc::new(AppState::new(
        settings.http.clone(),
        settings.sessions.clone(),
        keyring,
        store,
    )))
}

/// A running server: its address and a handle to stop it.
#[derive(Debug)]
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The shared state (tests inspect readiness).
    pub state: Arc<AppState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, and waits for the server.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.context("server task panicked")?
    }
}

/// Binds `settings.listen`, starts provider discovery in the background, and serves
/// until `stop` is called.
pub async fn spawn(settings: Settings) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let state = state(&settings).await?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, Arc::clone(&state), settings, async {
        let _ = rx.await;
    }));
    Ok(Running {
        addr,
        state,
        shutdown: Some(tx),
        task,
    })
}

/// Serves on `listener` until `shutdown` resolves, then shuts down gracefully:
///
/// 1. `/ready` answers 503 (`AppState::draining`) while everything else is still
///    served, for `server.shutdown_delay`, so load balancers stop sending traffic;
/// 2. the listener closes, idle keep-alive connections are closed, and HTTP/2
///    clients are told to go away;
/// 3. requests in flight get up to `server.shutdown_timeout` to finish.
///
/// HTTP/1.1 and HTTP/2 (h2c, or ALPN over TLS when `server.tls_*` are set), with
/// the request-head size bound of `server.max_header_bytes`. With
/// `server.metrics_listen`, `/metrics` is served there until the end.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let serving = settings.serving.clone();
    let tls = serving.tls.as_ref().map(tls_acceptor).transpose()?;
    let (stop_metrics, metrics_stopped) = tokio::sync::watch::channel(false);
    let metrics_task = match serving.metrics_listen {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (server.metrics_listen)"))?;
            tracing::info!(addr = %l.local_addr()?, "metrics listening");
            let router = portcullis_http::metrics::router(Arc::clone(&state.metrics));
            let mut stopped = metrics_stopped;
            Some(tokio::spawn(async move {
                let until = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                if let Err(e) = axum::serve(l, router).with_graceful_shutdown(until).await {
                    tracing::warn!(error = %e, "metrics listener failed");
                }
            }))
        }
        None => None,
    };
    let discovery_state = Arc::clone(&state);
    let extra = state.sessions.bearer().discoveries(&settings.oidc);
    let discovery = tokio::spawn(async move {
        // Extra bearer issuers are discovered alongside the main provider; none of
        // them holds up sign-in.
        let sessions = &discovery_state.sessions;
        let extras: Vec<_> = extra
            .into_iter()
            .map(|(oidc, slot)| {
                let observer = Arc::clone(sessions.observer());
                async move {
                    portcullis_core::provider::discover_until_ready(&slot, oidc, observer).await;
                }
            })
            .collect();
        tokio::join!(
            portcullis_core::provider::discover_until_ready(
                sessions.provider(),
                settings.oidc,
                Arc::clone(sessions.observer()),
            ),
            futures_join_all(extras),
        );
    });
    tracing::info!(addr = %listener.local_addr()?, tls = tls.is_some(), "listening");

    let server = Server {
        app: portcullis_http::hot::service(Arc::clone(&state)),
        builder: connection_builder(&serving),
        tls,
        max_buf: serving
            .max_header_bytes
            .max(portcullis_config::MIN_HEADER_BYTES),
    };
    let graceful = GracefulShutdown::new();
    accept_until(&listener, &server, &graceful, shutdown).await;
    state.draining.store(true, Ordering::Relaxed);
    tracing::info!(
        delay_ms = serving.shutdown_delay.as_millis() as u64,
        "shutting down: /ready answers 503; still serving until the delay is over"
    );
    accept_until(
        &listener,
        &server,
        &graceful,
        tokio::time::sleep(serving.shutdown_delay),
    )
    .await;
    drop(listener);
    let in_flight = graceful.count();
    tracing::info!(
        connections = in_flight,
        "listener closed; finishing in-flight requests"
    );
    match tokio::time::timeout(serving.shutdown_timeout, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections finished"),
        Err(_) => tracing::warn!(
            timeout_ms = serving.shutdown_timeout.as_millis() as u64,
            "shutdown timeout: closing connections with requests still in flight"
        ),
    }
    let _ = stop_metrics.send(true);
    if let Some(task) = metrics_task {
        let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    }
    discovery.abort();
    Ok(())
}

/// What every connection task needs.
struct Server {
    app: portcullis_http::hot::Hot,
    builder: auto::Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    /// The request-head bound (for the benchmark's HTTP/1-only builder).
    max_buf: usize,
}

/// HTTP/1.1 and HTTP/2 on one listener, with bounded request heads.
fn connection_builder(serving: &ServeSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let header_timeout = if portcullis_http::ablation::ablation().no_header_timeout {
        None
    } else {
        Some(HEADER_READ_TIMEOUT)
    };
    // The timer is each connection's own ([`head_timer`], set in [`connection`]).
    builder
        .http1()
        .header_read_timeout(header_timeout)
        // Validated to be at least hyper's minimum (8 KiB): below it hyper panics.
        .max_buf_size(
            serving
                .max_header_bytes
                .max(portcullis_config::MIN_HEADER_BYTES),
        );
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(serving.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// Accepts connections until `until` resolves. Accept errors (out of file
/// descriptors…) are logged and retried after a pause, never fatal.
async fn accept_until(
    listener: &TcpListener,
    server: &Server,
    graceful: &GracefulShutdown,
    until: impl Future<Output = ()>,
) {
    tokio::pin!(until);
    loop {
        tokio::select! {
            () = &mut until => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(connection(stream, peer, server.app.clone(), server.builder.clone(), server.tls.clone(), server.max_buf, graceful.watcher()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Serves one connection (after the TLS handshake, when configured).
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: portcullis_http::hot::Hot,
    mut builder: auto::Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    max_buf: usize,
    watcher: Watcher,
) {
    let _ = stream.set_nodelay(true);
    // hyper's header-read timeout, one timer for the connection (not one per head),
    // which also closes connections that bring no request at all.
    let timer = head_timer::HeadTimer::new();
    if portcullis_http::ablation::ablation().tokio_header_timer {
        builder.http1().timer(TokioTimer::new());
    } else {
        builder.http1().timer(timer.clone());
    }
    let marks = timer.clone();
    // The peer address, for forwarded-header trust, as `axum::serve` would give it.
    let service = TowerToHyperService::new(app.map_request(move |r: http::Request<Incoming>| {
        marks.served();
        let mut r = r.map(axum::body::Body::new);
        r.extensions_mut().insert(ConnectInfo(peer));
        r
    }));
    let result = match tls {
        None if portcullis_http::ablation::ablation().http1 => {
            // Benchmark ablation only: HTTP/1 without the auto builder's h2c detection
            // (and without upgrades: no WebSockets).
            let mut http1 = hyper::server::conn::http1::Builder::new();
            http1.timer(timer.clone()).max_buf_size(max_buf);
            if !portcullis_http::ablation::ablation().no_header_timeout {
                http1.header_read_timeout(HEADER_READ_TIMEOUT);
            }
            let conn = http1.serve_connection(TokioIo::new(stream), service);
            let conn = async { watcher.watch(conn).await.map_err(Into::into) };
            timer.watch(conn, HEADER_READ_TIMEOUT).await
        }
        None => {
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            timer
                .watch(watcher.watch(conn.into_owned()), HEADER_READ_TIMEOUT)
                .await
        }
        Some(acceptor) => {
            let stream =
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            timer
                .watch(watcher.watch(conn.into_owned()), HEADER_READ_TIMEOUT)
                .await
        }
    };
    if let Err(e) = result {
        // Clients that vanish, oversized heads (answered 431 already), bad preludes.
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// The rustls acceptor for `tls` (ring only; TLS 1.2 and 1.3; ALPN h2, http/1.1).
fn tls_acceptor(tls: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read certificates from {}", tls.cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "no certificate in {}",
        tls.cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .with_context(|| format!("cannot read a private key from {}", tls.key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .with_context(|| {
        format!(
            "the key in {} does not fit the certificate in {}",
            tls.key.display(),
            tls.cert.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// Runs futures concurrently to completion (a tiny `join_all`, to avoid a dependency).
async fn futures_join_all<F: Future<Output = ()> + Send + 'static>(
    futures: impl IntoIterator<Item = F>,
) {
    let mut set = tokio::task::JoinSet::new();
    for f in futures {
        set.spawn(f);
    }
    while set.join_next().await.is_some() {}
}

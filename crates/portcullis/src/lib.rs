//! The `portcullis` process: logging, listeners, background discovery and shutdown.
//!
//! `main.rs` only parses the command line; everything a test may want to run in-process
//! lives here ([`spawn`]), in the mini-redis `start_server()` style.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use portcullis_config::{LogFormat, Settings, StoreChoice};
use portcullis_http::AppState;
use portcullis_session::Keyring;
use portcullis_session::store::{AnyStore, CookieStore, RedisStore};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber (`RUST_LOG` overrides the configured filter).
///
/// Lines are written by a background thread (`tracing-appender`), so a request never
/// waits on a `write` to stdout: with an access line per request, that write was the
/// largest single cost of `/oauth2/auth`. The writer blocks rather than drops when
/// its buffer is full (no lost log lines). Keep the returned guard alive until exit:
/// dropping it flushes what is buffered. `None` if a subscriber was already installed.
#[must_use = "dropping the guard stops the log writer"]
pub fn init_logging(
    level: &str,
    format: LogFormat,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    installed.ok().map(|()| guard)
}

/// Builds the configured session store. Redis is connected lazily: the process
/// starts (not ready) while Redis is down.
pub async fn store(settings: &Settings, keyring: &Arc<Keyring>) -> anyhow::Result<AnyStore> {
    let name = &settings.http.cookie.name;
    Ok(match &settings.store {
        StoreChoice::Cookie => AnyStore::Cookie(CookieStore::new(Arc::clone(keyring), name)),
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
    Ok(Arc::new(AppState::new(settings.http.clone(), keyring, store)))
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

/// Serves on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let discovery_state = Arc::clone(&state);
    let extra = state.bearer.discoveries(&settings.oidc);
    let discovery = tokio::spawn(async move {
        // Extra bearer issuers are discovered alongside the main provider; none of
        // them holds up sign-in.
        let extras = extra.into_iter().map(|(oidc, slot)| async move {
            portcullis_http::provider::discover_until_ready(&slot, oidc).await;
        });
        tokio::join!(
            portcullis_http::provider::discover_until_ready(&discovery_state.provider, settings.oidc),
            futures_join_all(extras),
        );
    });
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let app = portcullis_http::app(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    discovery.abort();
    result.context("server failed")
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
async fn futures_join_all<F: Future<Output = ()> + Send + 'static>(futures: impl IntoIterator<Item = F>) {
    let mut set = tokio::task::JoinSet::new();
    for f in futures {
        set.spawn(f);
    }
    while set.join_next().await.is_some() {}
}

//! Portcullis, in-process, configured from TOML as the binary is.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use portcullis_config::{Config, Settings, validate};
use portcullis_session::Key;
use tokio::net::TcpListener;

/// How to start Portcullis for a test.
#[derive(Debug, Clone)]
pub struct Options {
    /// The provider's issuer.
    pub issuer: String,
    /// Port to listen on (0 = ephemeral).
    pub port: u16,
    /// Port of the public auth host `auth.example.test` (nginx's port when behind
    /// nginx); defaults to Portcullis' own port.
    pub public_port: Option<u16>,
    /// Cookie keys, sealing key first.
    pub keys: Vec<Key>,
    /// Extra TOML merged over the defaults (sections and keys as in the example file).
    pub extra: String,
}

impl Options {
    /// Defaults for `issuer`: one fresh cookie key, no extra settings.
    pub fn new(issuer: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            port: 0,
            public_port: None,
            keys: vec![Key::generate().unwrap()],
            extra: String::new(),
        }
    }

    /// Adds TOML settings.
    pub fn with(mut self, toml: &str) -> Self {
        self.extra.push('\n');
        self.extra.push_str(toml);
        self
    }
}

/// A running Portcullis; shut down gracefully on drop.
#[derive(Debug)]
pub struct Portcullis {
    /// Listening address.
    pub addr: SocketAddr,
    /// Base URL on the auth host, e.g. `http://auth.example.test:PORT`.
    pub public_url: String,
    /// The state (readiness, keyring).
    pub state: Arc<portcullis_http::AppState>,
    /// Its cookie keys.
    pub keys: Vec<Key>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Portcullis {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn merge(base: &mut toml::Table, extra: toml::Table) {
    for (k, v) in extra {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(e)) => merge(b, e),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Renders the configuration for `port` as TOML (what the binary reads).
pub fn render(opts: &Options, port: u16) -> String {
    toml::to_string(&table(opts, port)).unwrap()
}

/// Renders and validates the configuration for `port`.
pub fn settings(opts: &Options, port: u16) -> Settings {
    let config: Config = toml::Value::Table(table(opts, port))
        .try_into()
        .expect("settings fit the schema");
    validate(&config).unwrap_or_else(|errors| panic!("invalid test settings: {errors:?}"))
}

fn table(opts: &Options, port: u16) -> toml::Table {
    let public_port = opts.public_port.unwrap_or(port);
    let secrets: Vec<String> = opts.keys.iter().map(Key::to_base64).collect();
    let base = format!(
        r#"
        [server]
        listen = "127.0.0.1:{port}"
        shutdown_delay = "100ms"
        [oidc]
        issuer_url = "{issuer}"
        client_id = "{client_id}"
        client_secret = "{client_secret}"
        redirect_url = "http://auth.example.test:{public_port}/oauth2/callback"
        timeout = "5s"
        [cookie]
        secrets = {secrets:?}
        domains = [".example.test"]
        secure = false
        [redirect]
        whitelist_domains = [".example.test:*"]
        "#,
        issuer = opts.issuer,
        client_id = crate::idp::CLIENT_ID,
        client_secret = crate::idp::CLIENT_SECRET,
    );
    let mut table: toml::Table = toml::from_str(&base).unwrap();
    merge(
        &mut table,
        toml::from_str(&opts.extra).expect("extra settings are TOML"),
    );
    table
}

impl Portcullis {
    /// Starts Portcullis and waits until the provider is discovered (unless the
    /// provider is deliberately absent: use [`Portcullis::start_unready`]).
    pub async fn start(opts: Options) -> Self {
        let p = Self::start_unready(opts).await;
        let state = Arc::clone(&p.state);
        crate::eventually("provider discovery", Duration::from_secs(20), || {
            let ready = state.sessions.provider().get().is_some();
            async move { ready.then_some(()) }
        })
        .await;
        p
    }

    /// Starts Portcullis without waiting for readiness.
    pub async fn start_unready(opts: Options) -> Self {
        crate::init_logs();
        let listener = TcpListener::bind(("127.0.0.1", opts.port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let settings = settings(&opts, addr.port());
        let public_port = opts.public_port.unwrap_or(addr.port());
        let state = portcullis::state(&settings).await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(portcullis::serve(
            listener,
            Arc::clone(&state),
            settings,
            async {
                let _ = rx.await;
            },
        ));
        Self {
            addr,
            public_url: format!("http://auth.example.test:{public_port}"),
            state,
            keys: opts.keys,
            shutdown: Some(tx),
        }
    }

    /// The keyring-compatible keys as a `Keyring`.
    pub fn keyring(&self) -> portcullis_session::Keyring {
        portcullis_session::Keyring::new(&self.keys).unwrap()
    }
}

//! One connection type over the three Redis deployments operators run: standalone,
//! Sentinel (the master is looked up through the sentinels, and again after a
//! failover), and Cluster (the client follows slot moves itself).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult, Value};
use tokio::sync::{Mutex, RwLock};

use super::contract::StoreError;

/// Which deployment, with its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topology {
    /// One server (or a managed endpoint): `redis.url`.
    Standalone(String),
    /// Sentinels watching the master called `master`; `auth` is a URL whose
    /// credentials and database are used for the master.
    Sentinel {
        /// Sentinel addresses, `redis://host:26379`.
        sentinels: Vec<String>,
        /// The monitored master's name.
        master: String,
        /// `redis://[user:password@]any/db` for the data nodes.
        auth: Option<String>,
    },
    /// Cluster seed nodes, `redis://[:password@]host:port`.
    Cluster(Vec<String>),
}

fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1))
}

/// The master of a Sentinel deployment, re-resolved after errors.
pub(crate) struct SentinelConn {
    client: Mutex<SentinelClient>,
    current: RwLock<Option<ConnectionManager>>,
    timeout: Duration,
}

impl SentinelConn {
    async fn manager(&self) -> RedisResult<ConnectionManager> {
        if let Some(m) = self.current.read().await.as_ref() {
            return Ok(m.clone());
        }
        let client = self.client.lock().await.async_get_client().await?;
        let manager =
            ConnectionManager::new_lazy_with_config(client, manager_config(self.timeout))?;
        *self.current.write().await = Some(manager.clone());
        Ok(manager)
    }

    /// After an error the master may have moved (failover): look it up again next time.
    async fn forget(&self, e: &redis::RedisError) {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.to_string().contains("READONLY")
        {
            *self.current.write().await = None;
        }
    }
}

/// A cloneable connection handle for any topology.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Sentinel(Arc<SentinelConn>),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Builds the handle. Standalone and Sentinel connect lazily (the process starts
    /// while Redis is down); Cluster needs its seeds to answer once to learn the slots.
    pub(crate) async fn open(topology: &Topology, timeout: Duration) -> RedisResult<Self> {
        Ok(match topology {
            Topology::Standalone(url) => {
                let client = redis::Client::open(url.as_str())?;
                Conn::Single(ConnectionManager::new_lazy_with_config(
                    client,
                    manager_config(timeout),
                )?)
            }
            Topology::Sentinel {
                sentinels,
                master,
                auth,
            } => {
                let mut node = SentinelNodeConnectionInfo::default();
                if let Some(auth) = auth {
                    let info = auth.as_str().into_connection_info()?;
                    node = node.set_redis_connection_info(info.redis_settings().clone());
                }
                let client = SentinelClient::build(
                    sentinels.iter().map(String::as_str).collect(),
                    master.as_str(),
                    Some(node),
                    SentinelServerType::Master,
                )?;
                Conn::Sentinel(Arc::new(SentinelConn {
                    client: Mutex::new(client),
                    current: RwLock::new(None),
                    timeout,
                }))
            }
            Topology::Cluster(nodes) => {
                let client =
                    redis::cluster::ClusterClient::builder(nodes.iter().map(String::as_str))
                        .connection_timeout(timeout)
                        .response_timeout(timeout)
                        .build()?;
                Conn::Cluster(client.get_async_connection().await?)
            }
        })
    }
}

impl Conn {
    /// Whether this is a Redis Cluster (keys of one request may be on two nodes).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(s) => {
                let s = Arc::clone(s);
                Box::pin(async move {
                    let mut m = s.manager().await?;
                    let r = m.req_packed_command(cmd).await;
                    if let Err(e) = &r {
                        s.forget(e).await;
                    }
                    r
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Sentinel(s) => {
                let s = Arc::clone(s);
                Box::pin(async move {
                    let mut m = s.manager().await?;
                    let r = m.req_packed_commands(cmd, offset, count).await;
                    if let Err(e) = &r {
                        s.forget(e).await;
                    }
                    r
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(_) => 0,
        }
    }
}

/// How to reach Redis.
#[derive(Clone)]
pub struct RedisSettings {
    /// Standalone, Sentinel or Cluster, with addresses (`redis://` or `rediss://`).
    pub topology: Topology,
    /// Prefix of every key, so several deployments can share one Redis.
    pub key_prefix: String,
    /// Bound on connecting and on each command.
    pub timeout: Duration,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        let redacted: Vec<String> = match &self.topology {
            Topology::Standalone(u) => vec![redact_url(u)],
            Topology::Sentinel { sentinels, .. } => {
                sentinels.iter().map(|u| redact_url(u)).collect()
            }
            Topology::Cluster(nodes) => nodes.iter().map(|u| redact_url(u)).collect(),
        };
        f.debug_struct("RedisSettings")
            .field("addresses", &redacted)
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("REDACTED"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable redis url>".to_owned(),
    }
}

/// Runs one Redis command (or pipeline) within twice `timeout` (a reconnect, then the
/// command): a slow or unreachable Redis is [`StoreError::Unavailable`], never a hang.
pub(crate) async fn bounded<T>(
    timeout: Duration,
    f: impl Future<Output = RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout * 2, f).await {
        Ok(r) => r.map_err(|e| StoreError::Unavailable(e.to_string())),
        Err(_) => Err(StoreError::Unavailable("redis timed out".into())),
    }
}

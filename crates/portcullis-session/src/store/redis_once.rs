//! Short-lived single-use values in Redis (the CLI sign-in's one-time codes): put with
//! a TTL, taken at most once (`GETDEL`), on any replica.

use std::time::Duration;

use redis::AsyncCommands;

use super::contract::StoreError;
use super::redis_conn::{Conn, bounded};

/// Single-use values under `<prefix>o:<kind>:<id>`.
#[derive(Clone)]
pub struct OneTime {
    pub(crate) conn: Conn,
    pub(crate) prefix: String,
    pub(crate) timeout: Duration,
}

impl std::fmt::Debug for OneTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneTime")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl OneTime {
    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}o:{kind}:{id}", self.prefix)
    }

    /// Stores `value` for `ttl` (whole seconds, at least one).
    pub async fn put(
        &self,
        kind: &str,
        id: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let secs = ttl.as_secs().max(1);
        bounded(self.timeout, conn.set_ex(self.key(kind, id), value, secs)).await
    }

    /// Takes the value: the first caller gets it, every later one `None`.
    pub async fn take(&self, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        bounded(self.timeout, conn.get_del(self.key(kind, id))).await
    }
}

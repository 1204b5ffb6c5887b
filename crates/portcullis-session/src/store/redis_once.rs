//! Short-lived values in Redis, shared by every replica: the CLI sign-in's one-time
//! codes (put with a TTL, taken at most once with `GETDEL`), and device authorization's
//! pending requests, user-code index and attempt counters.

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

    /// Stores `value` for `ttl` unless the key exists (`SET NX`): whether it was stored.
    pub async fn put_new(
        &self,
        kind: &str,
        id: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(kind, id))
            .arg(value)
            .arg("NX")
            .arg("EX")
            .arg(ttl.as_secs().max(1));
        let answer: Option<String> = bounded(self.timeout, cmd.query_async(&mut conn)).await?;
        Ok(answer.is_some())
    }

    /// Replaces the value of an existing key, keeping its expiry (`SET XX KEEPTTL`):
    /// whether the key still existed.
    pub async fn replace(&self, kind: &str, id: &str, value: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(kind, id))
            .arg(value)
            .arg("XX")
            .arg("KEEPTTL");
        let answer: Option<String> = bounded(self.timeout, cmd.query_async(&mut conn)).await?;
        Ok(answer.is_some())
    }

    /// Reads the value without taking it.
    pub async fn get(&self, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        bounded(self.timeout, conn.get(self.key(kind, id))).await
    }

    /// Deletes the value.
    pub async fn delete(&self, kind: &str, id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        bounded(self.timeout, conn.del(self.key(kind, id))).await
    }

    /// Adds one to a counter that lives `window` from its first count: the new count.
    pub async fn count(&self, kind: &str, id: &str, window: Duration) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let key = self.key(kind, id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .incr(&key, 1u64)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(window.as_secs().max(1))
            .arg("NX")
            .ignore();
        let (n,): (u64,) = bounded(self.timeout, pipe.query_async(&mut conn)).await?;
        Ok(n)
    }

    /// Takes the value: the first caller gets it, every later one `None`.
    pub async fn take(&self, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        bounded(self.timeout, conn.get_del(self.key(kind, id))).await
    }
}

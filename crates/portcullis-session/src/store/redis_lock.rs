//! The cross-replica refresh lock: `SET NX PX` with a random token, a lease renewed in
//! the background while the provider call runs, released by compare-and-delete.

use std::time::Duration;

use redis::AsyncCommands;

use super::contract::StoreError;
use super::redis_conn::{Conn, bounded};
use crate::codec::random_token;

/// Extends the lock's lease if we still hold it.
const RENEW_LOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";
/// Releases the lock if we still hold it.
const RELEASE_LOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// A held refresh lock. Its lease is renewed in the background while the provider
/// call runs ([`RedisLock::keep_alive`]), so a slow provider does not let a second
/// replica start a competing refresh; if this process dies, the lease expires.
pub struct RedisLock {
    conn: Conn,
    key: String,
    token: String,
    lease_ms: u64,
    renewal: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for RedisLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLock")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl RedisLock {
    /// Takes the lock at `key` for `lease` unless someone holds it (`None`).
    pub(crate) async fn try_take(
        mut conn: Conn,
        key: String,
        lease: Duration,
        timeout: Duration,
    ) -> Result<Option<Self>, StoreError> {
        let token = random_token(16).map_err(StoreError::Seal)?;
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
        let opts = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::PX(lease_ms));
        let set: Option<String> = bounded(timeout, conn.set_options(&key, &token, opts)).await?;
        Ok(set.map(|_| Self {
            conn,
            key,
            token,
            lease_ms,
            renewal: None,
        }))
    }

    /// Starts renewing the lease every third of its length.
    pub fn keep_alive(&mut self) {
        let mut conn = self.conn.clone();
        let key = self.key.clone();
        let token = self.token.clone();
        let lease_ms = self.lease_ms;
        self.renewal = Some(tokio::spawn(async move {
            let script = redis::Script::new(RENEW_LOCK);
            loop {
                tokio::time::sleep(Duration::from_millis((lease_ms / 3).max(1))).await;
                let renewed: redis::RedisResult<i64> = script
                    .key(&key)
                    .arg(&token)
                    .arg(lease_ms)
                    .invoke_async(&mut conn)
                    .await;
                if !matches!(renewed, Ok(1)) {
                    return;
                }
            }
        }));
    }

    /// Releases the lock (only if still ours).
    pub async fn release(mut self) {
        if let Some(r) = self.renewal.take() {
            r.abort();
        }
        let script = redis::Script::new(RELEASE_LOCK);
        let released: redis::RedisResult<i64> = script
            .key(&self.key)
            .arg(&self.token)
            .invoke_async(&mut self.conn)
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not release a refresh lock; its lease will expire");
        }
    }
}

impl Drop for RedisLock {
    fn drop(&mut self) {
        if let Some(r) = self.renewal.take() {
            r.abort();
        }
    }
}

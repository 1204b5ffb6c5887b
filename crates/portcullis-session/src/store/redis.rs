//! The Redis store: server-side sessions, revocation, and a cross-replica refresh lock.
//!
//! Layout (all keys under `key_prefix`, default `portcullis:`):
//! - `s:<id>`: a hash with `d` (the session sealed with its own secret), `u` (a hash of
//!   the user name, for revocation), `c`/`e` (created/expires, unix seconds). Its TTL is
//!   the session's absolute end.
//! - `u:<user hash>`: the set of session ids of one user.
//! - `l:<id>`: the refresh lock of one session (a random token, with a lease).
//!
//! The cookie holds a ticket `{id, secret}` sealed with the cookie keyring; the secret
//! exists only in the cookie, so Redis alone cannot open any session.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::contract::{SessionStore, StoreError};
use super::redis_conn::{Conn, Topology};
use crate::codec::random_token;
use crate::{Key, Keyring, SessionState};

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

/// What the cookie carries with the Redis store.
#[derive(Serialize, Deserialize)]
struct Ticket {
    /// Session id.
    i: String,
    /// Per-session secret (base64url, 32 bytes).
    k: String,
}

/// An opened ticket: the Redis key of a session and its secret (see
/// [`RedisStore::locate`]).
pub struct Located {
    key: String,
    id: String,
    secret: String,
}

impl std::fmt::Debug for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret opens the session: never in logs.
        f.debug_struct("Located")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// One session as listed by `portcullis sessions list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// Session id (what `sessions revoke --id` takes).
    pub id: String,
    /// Sign-in time (unix seconds).
    pub created_at: u64,
    /// Absolute end (unix seconds).
    pub expires_at: u64,
}

/// Sessions in Redis. Cloning shares the connection.
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    prefix: String,
    keyring: Arc<Keyring>,
    name: String,
    timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Hash of a user name, so key names and sets do not reveal emails.
fn user_hash(user: &str) -> String {
    let digest = Sha256::digest(user.trim().to_lowercase().as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn session_keyring(secret: &str) -> Result<Keyring, StoreError> {
    let key = Key::from_base64(secret)
        .map_err(|_| StoreError::Undecodable(crate::CodecError::Payload))?;
    Keyring::new(&[key]).ok_or(StoreError::Undecodable(crate::CodecError::Payload))
}

fn data_name(id: &str) -> String {
    format!("portcullis-session:{id}")
}

/// Sets the session data only if the session still exists (a revoked session must not
/// be resurrected by a refresh that finished after the revocation).
const UPDATE_IF_EXISTS: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'd', ARGV[1])
  return 1
end
return 0
";
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

impl RedisStore {
    /// Standalone and Sentinel connect lazily: the process starts even when Redis is
    /// down, commands fail with [`StoreError::Unavailable`] until it is back, and the
    /// connection reconnects on its own. A Cluster must answer once, to learn its slots.
    pub async fn new(
        settings: &RedisSettings,
        keyring: Arc<Keyring>,
        cookie_name: &str,
    ) -> Result<Self, StoreError> {
        let conn = Conn::open(&settings.topology, settings.timeout)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            conn,
            prefix: settings.key_prefix.clone(),
            keyring,
            name: cookie_name.to_owned(),
            timeout: settings.timeout,
        })
    }

    fn session_key(&self, id: &str) -> String {
        format!("{}s:{id}", self.prefix)
    }

    fn user_key(&self, user_hash: &str) -> String {
        format!("{}u:{user_hash}", self.prefix)
    }

    fn lock_key(&self, id: &str) -> String {
        format!("{}l:{id}", self.prefix)
    }

    /// Runs one command (or pipeline) under the store's timeout.
    async fn bounded<T>(
        &self,
        f: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout * 2, f).await {
            Ok(r) => r.map_err(unavailable),
            Err(_) => Err(StoreError::Unavailable("redis timed out".into())),
        }
    }

    fn ticket(&self, cookie: &str) -> Result<Ticket, StoreError> {
        self.keyring
            .open_json(&self.name, cookie)
            .map_err(StoreError::Undecodable)
    }

    /// Opens the ticket a cookie carries: where its session is and how to open it.
    /// [`SessionStore::load`] is `locate`, [`fetch`](Self::fetch), [`open`](Self::open);
    /// the steps are public so that a caller may keep the ticket and the opened session
    /// per cookie and repeat only the fetch (which sees revocation) while the stored
    /// bytes stay the same.
    pub fn locate(&self, cookie: &str) -> Result<Located, StoreError> {
        let ticket = self.ticket(cookie)?;
        Ok(Located {
            key: self.session_key(&ticket.i),
            id: ticket.i,
            secret: ticket.k,
        })
    }

    /// The sealed session as stored, or `None` once it is gone (signed out, revoked,
    /// expired). One `HGET`.
    pub async fn fetch(&self, at: &Located) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        self.bounded(conn.hget(&at.key, "d")).await
    }

    /// Opens what [`fetch`](Self::fetch) returned. A session sealed for another id (data
    /// copied between keys) does not open.
    pub fn open(&self, at: &Located, sealed: &str) -> Result<SessionState, StoreError> {
        let session: SessionState = session_keyring(&at.secret)?
            .open_json(&data_name(&at.id), sealed)
            .map_err(StoreError::Undecodable)?;
        if session.id != at.id {
            return Err(StoreError::Undecodable(crate::CodecError::Tampered));
        }
        Ok(session)
    }

    /// The sessions of `user`, oldest first. Stale index entries are dropped.
    pub async fn list_user(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let mut conn = self.conn.clone();
        let set = self.user_key(&user_hash(user));
        let ids: Vec<String> = self.bounded(conn.smembers(&set)).await?;
        let mut out = Vec::new();
        for id in ids {
            let (c, e): (Option<u64>, Option<u64>) = self
                .bounded(conn.hmget(self.session_key(&id), &["c", "e"]))
                .await?;
            match (c, e) {
                (Some(created_at), Some(expires_at)) => out.push(SessionInfo {
                    id,
                    created_at,
                    expires_at,
                }),
                _ => {
                    let _: i64 = self.bounded(conn.srem(&set, &id)).await?;
                }
            }
        }
        out.sort_by_key(|s| s.created_at);
        Ok(out)
    }

    /// Deletes every session of `user`; returns how many existed. Every replica refuses
    /// them from the next request (nothing is cached outside Redis).
    pub async fn revoke_user(&self, user: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        let set = self.user_key(&user_hash(user));
        let ids: Vec<String> = self.bounded(conn.smembers(&set)).await?;
        let mut deleted = 0;
        for id in &ids {
            let n: usize = self.bounded(conn.del(self.session_key(id))).await?;
            deleted += n;
        }
        let _: i64 = self.bounded(conn.del(&set)).await?;
        Ok(deleted)
    }

    /// Deletes one session by id; returns whether it existed.
    pub async fn revoke_id(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let key = self.session_key(id);
        let user: Option<String> = self.bounded(conn.hget(&key, "u")).await?;
        let n: usize = self.bounded(conn.del(&key)).await?;
        if let Some(u) = user {
            let _: i64 = self.bounded(conn.srem(self.user_key(&u), id)).await?;
        }
        Ok(n > 0)
    }

    /// Tries to take the refresh lock of session `id` for `lease`. `None`: another
    /// request (on any replica) holds it.
    pub async fn try_lock(
        &self,
        id: &str,
        lease: Duration,
    ) -> Result<Option<RedisLock>, StoreError> {
        let token = random_token(16).map_err(StoreError::Seal)?;
        let key = self.lock_key(id);
        let mut conn = self.conn.clone();
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
        let opts = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::PX(lease_ms));
        let set: Option<String> = self.bounded(conn.set_options(&key, &token, opts)).await?;
        Ok(set.map(|_| RedisLock {
            conn: self.conn.clone(),
            key,
            token,
            lease_ms,
            renewal: None,
        }))
    }
}

impl SessionStore for RedisStore {
    async fn create(&self, session: &SessionState, user: &str) -> Result<String, StoreError> {
        let secret = random_token(32).map_err(StoreError::Seal)?;
        let data = session_keyring(&secret)?
            .seal_json(&data_name(&session.id), session)
            .map_err(StoreError::Seal)?;
        let uh = user_hash(user);
        let key = self.session_key(&session.id);
        let set = self.user_key(&uh);
        let expire_at = i64::try_from(session.expires_at).unwrap_or(i64::MAX);
        // Separate commands, not MULTI: in a Cluster the two keys live in different
        // slots. The index goes first, so every stored session is revocable.
        let mut conn = self.conn.clone();
        let _: i64 = self.bounded(conn.sadd(&set, &session.id)).await?;
        let _: bool = self.bounded(conn.expire_at(&set, expire_at)).await?;
        let fields = [
            ("d", data),
            ("u", uh),
            ("c", session.created_at.to_string()),
            ("e", session.expires_at.to_string()),
        ];
        let () = self.bounded(conn.hset_multiple(&key, &fields)).await?;
        let _: bool = self.bounded(conn.expire_at(&key, expire_at)).await?;
        let ticket = Ticket {
            i: session.id.clone(),
            k: secret,
        };
        self.keyring
            .seal_json(&self.name, &ticket)
            .map_err(StoreError::Seal)
    }

    async fn load(&self, cookie: &str) -> Result<Option<SessionState>, StoreError> {
        let at = self.locate(cookie)?;
        match self.fetch(&at).await? {
            Some(sealed) => self.open(&at, &sealed).map(Some),
            None => Ok(None),
        }
    }

    async fn update(&self, cookie: &str, session: &SessionState) -> Result<String, StoreError> {
        let ticket = self.ticket(cookie)?;
        let data = session_keyring(&ticket.k)?
            .seal_json(&data_name(&ticket.i), session)
            .map_err(StoreError::Seal)?;
        let mut conn = self.conn.clone();
        let script = redis::Script::new(UPDATE_IF_EXISTS);
        let _updated: i64 = self
            .bounded(
                script
                    .key(self.session_key(&ticket.i))
                    .arg(data)
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(cookie.to_owned())
    }

    async fn delete(&self, cookie: &str) -> Result<(), StoreError> {
        let ticket = self.ticket(cookie)?;
        self.revoke_id(&ticket.i).await.map(|_| ())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let pong: String = self
            .bounded(redis::cmd("PING").query_async(&mut conn))
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "unexpected PING answer {pong:?}"
            )))
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_and_users_hashed() {
        assert_eq!(
            redact_url("redis://:hunter2@h:6379/0"),
            "redis://:REDACTED@h:6379/0"
        );
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(
            user_hash("Alice@Example.test"),
            user_hash("alice@example.test")
        );
        assert_eq!(user_hash("a").len(), 32);
    }
}

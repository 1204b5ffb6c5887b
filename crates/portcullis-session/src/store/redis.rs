//! The Redis store: server-side sessions, revocation, and a cross-replica refresh lock.
//!
//! Layout (all keys under `key_prefix`, default `portcullis:`):
//! - `s:<id>`: a hash with `d` (the session sealed with its own secret), `u` (a hash of
//!   the user name, for revocation), `c`/`e` (created/expires, unix seconds). Its TTL is
//!   the session's absolute end.
//! - `u:<user hash>`: the set of session ids of one user.
//! - `g:<grant id>`: the user's provider grant, shared by all of the user's sessions
//!   (the grant id hashes the issuer and the user's `sub`): a hash with `d` (the ID
//!   token, its expiry and the refresh token, sealed with the cookie keyring under the
//!   grant's name) and one `s:<session id>` field per session on it. Its TTL is the
//!   latest end of those sessions. A session's own `d` then holds only its id and
//!   bounds, and its hash names the grant in `g`.
//! - `l:<id>` / `l:g:<grant id>`: the refresh lock of one session or of one grant (a
//!   random token, with a lease).
//!
//! Why one grant per user: Dex keeps ONE refresh token per (user, client) and deletes
//! the previous one at every new sign-in, so a second device's sign-in would kill the
//! first device's refresh token. With the grant shared, the new sign-in replaces the
//! grant and every session of the user moves to it on its next request.
//!
//! The cookie holds a ticket `{id, secret, grant id}` sealed with the cookie keyring;
//! the secret exists only in the cookie and the keyring only in the process, so a
//! Redis dump alone opens neither a session nor a grant. Sessions created before grants
//! were shared (a ticket without a grant id) keep their own tokens in `d`, and keep
//! working until they end.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use super::contract::{SessionStore, StoreError};
use super::redis_conn::{Conn, bounded};
pub use super::redis_conn::{RedisSettings, redact_url};
pub use super::redis_lock::RedisLock;
use super::redis_once::OneTime;
use super::redis_records::{Grant, Record, Ticket};
pub use super::redis_records::{GrantEnd, SessionInfo, Stored};
use super::redis_scripts::{
    END_GRANT, JOIN_EXISTING_GRANT, JOIN_GRANT, LEAVE_GRANT, SET_IF_EXISTS, UPDATE_GRANT,
    UPDATE_IF_EXISTS,
};
use crate::codec::random_token;
use crate::{GrantRef, Key, Keyring, SessionState};

/// An opened ticket: the Redis keys of a session (and of its grant) and its secret
/// (see [`RedisStore::locate`]).
pub struct Located {
    key: String,
    id: String,
    secret: String,
    grant: Option<(String, String)>,
}

impl std::fmt::Debug for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret opens the session: never in logs.
        f.debug_struct("Located")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
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

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn grant_name(id: &str) -> String {
    format!("portcullis-grant:{id}")
}

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

    /// The cookie keyring, for sealing what other short-lived values must keep secret
    /// (a device approval's session reference) so that a Redis dump alone opens nothing.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Single-use values (one-time codes) in the same Redis, under the same prefix.
    pub fn one_time(&self) -> OneTime {
        OneTime {
            conn: self.conn.clone(),
            prefix: self.prefix.clone(),
            timeout: self.timeout,
        }
    }

    fn grant_key(&self, id: &str) -> String {
        format!("{}g:{id}", self.prefix)
    }

    /// Runs one command (or pipeline) under the store's timeout.
    async fn bounded<T>(
        &self,
        f: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        bounded(self.timeout, f).await
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
            grant: ticket.g.map(|g| (self.grant_key(&g), g)),
            id: ticket.i,
            secret: ticket.k,
        })
    }

    /// The session as stored, or `None` once it is gone (signed out, revoked, expired,
    /// or its grant ended). One `HGET`, or two sent together for a shared grant.
    pub async fn fetch(&self, at: &Located) -> Result<Option<Stored>, StoreError> {
        let mut conn = self.conn.clone();
        let Some((grant_key, _)) = &at.grant else {
            let session: Option<String> = self.bounded(conn.hget(&at.key, "d")).await?;
            return Ok(session.map(|session| Stored {
                session,
                grant: None,
            }));
        };
        let (session, grant) = if self.conn.is_cluster() {
            // The two keys may live on two nodes: two commands, in parallel.
            let mut conn2 = self.conn.clone();
            let (session, grant) = tokio::join!(
                self.bounded(conn.hget::<_, _, Option<String>>(&at.key, "d")),
                self.bounded(conn2.hget::<_, _, Option<String>>(grant_key, "d")),
            );
            (session?, grant?)
        } else {
            // One round trip (one write and one read each way, one timer), not two:
            // this runs for every request of a Redis session.
            let mut pipe = redis::pipe();
            pipe.hget(&at.key, "d").hget(grant_key, "d");
            self.bounded(pipe.query_async::<(Option<String>, Option<String>)>(&mut conn))
                .await?
        };
        match (session, grant) {
            (Some(session), Some(grant)) => Ok(Some(Stored {
                session,
                grant: Some(grant),
            })),
            // A session whose grant ended (refused refresh, revocation) is over.
            _ => Ok(None),
        }
    }

    /// Opens what [`fetch`](Self::fetch) returned. A session sealed for another id (data
    /// copied between keys) does not open.
    pub fn open(&self, at: &Located, stored: &Stored) -> Result<SessionState, StoreError> {
        let keyring = session_keyring(&at.secret)?;
        let (Some((_, grant_id)), Some(sealed_grant)) = (&at.grant, &stored.grant) else {
            let session: SessionState = keyring
                .open_json(&data_name(&at.id), &stored.session)
                .map_err(StoreError::Undecodable)?;
            if session.id != at.id {
                return Err(StoreError::Undecodable(crate::CodecError::Tampered));
            }
            return Ok(session);
        };
        let record: Record = keyring
            .open_json(&data_name(&at.id), &stored.session)
            .map_err(StoreError::Undecodable)?;
        if record.id != at.id {
            return Err(StoreError::Undecodable(crate::CodecError::Tampered));
        }
        let grant: Grant = self
            .keyring
            .open_json(&grant_name(grant_id), sealed_grant)
            .map_err(StoreError::Undecodable)?;
        Ok(SessionState {
            id: record.id,
            id_token: grant.id_token,
            id_token_expires_at: grant.id_token_expires_at,
            refresh_token: grant.refresh_token,
            created_at: record.created_at,
            expires_at: record.expires_at,
            grant: Some(GrantRef {
                id: grant_id.clone(),
                seen: Arc::from(sealed_grant.as_str()),
            }),
        })
    }

    fn seal_grant(&self, id: &str, session: &SessionState) -> Result<String, StoreError> {
        let grant = Grant {
            id_token: session.id_token.clone(),
            id_token_expires_at: session.id_token_expires_at,
            refresh_token: session.refresh_token.clone(),
        };
        self.keyring
            .seal_json(&grant_name(id), &grant)
            .map_err(StoreError::Seal)
    }

    /// Ends a grant whose refresh token the provider refused, with every session on
    /// it, unless a newer sign-in replaced the grant since `seen` was read.
    pub async fn end_grant(&self, grant: &GrantRef) -> Result<GrantEnd, StoreError> {
        let mut conn = self.conn.clone();
        let script = redis::Script::new(END_GRANT);
        let fields: Option<Vec<String>> = self
            .bounded(
                script
                    .key(self.grant_key(&grant.id))
                    .arg(&*grant.seen)
                    .invoke_async(&mut conn),
            )
            .await?;
        let Some(fields) = fields else {
            return Ok(GrantEnd::Replaced);
        };
        let mut ended = 0;
        for id in fields.iter().filter_map(|f| f.strip_prefix("s:")) {
            if self.revoke_id(id).await? {
                ended += 1;
            }
        }
        Ok(GrantEnd::Ended(ended))
    }

    /// The sessions of `user`, oldest first. Stale index entries are dropped.
    pub async fn list_user(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let mut conn = self.conn.clone();
        let set = self.user_key(&user_hash(user));
        let ids: Vec<String> = self.bounded(conn.smembers(&set)).await?;
        let mut out = Vec::new();
        for id in ids {
            type Fields = (
                Option<u64>,
                Option<u64>,
                Option<String>,
                Option<String>,
                Option<u64>,
            );
            let (c, e, kind, client, last_used): Fields = self
                .bounded(conn.hmget(self.session_key(&id), &["c", "e", "k", "cl", "lu"]))
                .await?;
            match (c, e) {
                (Some(created_at), Some(expires_at)) => out.push(SessionInfo {
                    id,
                    created_at,
                    expires_at,
                    kind: kind.unwrap_or_else(|| "browser".into()),
                    client: client.unwrap_or_default(),
                    last_used,
                }),
                _ => {
                    let _: i64 = self.bounded(conn.srem(&set, &id)).await?;
                }
            }
        }
        out.sort_by_key(|s| s.created_at);
        Ok(out)
    }

    /// Sets what `sessions list` shows of a session (`fields`: name, value pairs), while
    /// the session exists: its kind and client at creation, a CLI's last use.
    pub async fn describe(&self, id: &str, fields: &[(&str, &str)]) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let script = redis::Script::new(SET_IF_EXISTS);
        let mut call = script.key(self.session_key(id));
        for (k, v) in fields {
            call.arg(*k).arg(*v);
        }
        let _: i64 = self.bounded(call.invoke_async(&mut conn)).await?;
        Ok(())
    }

    /// Deletes every session of `user`; returns how many existed. Every replica refuses
    /// them from the next request (nothing is cached outside Redis).
    pub async fn revoke_user(&self, user: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        let set = self.user_key(&user_hash(user));
        let ids: Vec<String> = self.bounded(conn.smembers(&set)).await?;
        let mut deleted = 0;
        for id in &ids {
            if self.revoke_id(id).await? {
                deleted += 1;
            }
        }
        let _: i64 = self.bounded(conn.del(&set)).await?;
        Ok(deleted)
    }

    /// Deletes one session by id; returns whether it existed.
    pub async fn revoke_id(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let key = self.session_key(id);
        let (user, grant): (Option<String>, Option<String>) =
            self.bounded(conn.hmget(&key, &["u", "g"])).await?;
        let n: usize = self.bounded(conn.del(&key)).await?;
        if let Some(u) = user {
            let _: i64 = self.bounded(conn.srem(self.user_key(&u), id)).await?;
        }
        if let Some(g) = grant {
            let script = redis::Script::new(LEAVE_GRANT);
            let _: i64 = self
                .bounded(
                    script
                        .key(self.grant_key(&g))
                        .arg(id)
                        .invoke_async(&mut conn),
                )
                .await?;
        }
        Ok(n > 0)
    }

    /// Tries to take the refresh lock `id` (a session's, or `g:<grant id>`) for
    /// `lease`. `None`: another request (on any replica) holds it.
    pub async fn try_lock(
        &self,
        id: &str,
        lease: Duration,
    ) -> Result<Option<RedisLock>, StoreError> {
        RedisLock::try_take(self.conn.clone(), self.lock_key(id), lease, self.timeout).await
    }
}

impl SessionStore for RedisStore {
    async fn create(&self, session: &SessionState, user: &str) -> Result<String, StoreError> {
        let secret = random_token(32).map_err(StoreError::Seal)?;
        let keyring = session_keyring(&secret)?;
        let grant = session.grant.as_ref().map(|g| g.id.clone());
        let data = match &grant {
            Some(_) => keyring.seal_json(
                &data_name(&session.id),
                &Record {
                    id: session.id.clone(),
                    created_at: session.created_at,
                    expires_at: session.expires_at,
                },
            ),
            None => keyring.seal_json(&data_name(&session.id), session),
        }
        .map_err(StoreError::Seal)?;
        let uh = user_hash(user);
        let key = self.session_key(&session.id);
        let set = self.user_key(&uh);
        let expire_at = i64::try_from(session.expires_at).unwrap_or(i64::MAX);
        // Separate commands, not MULTI: in a Cluster the keys live in different slots.
        // The index goes first, so every stored session is revocable; then the grant
        // (this sign-in's tokens replace the user's, for every session of the user),
        // so a stored session never names a grant that does not exist.
        let mut conn = self.conn.clone();
        let _: i64 = self.bounded(conn.sadd(&set, &session.id)).await?;
        let _: bool = self.bounded(conn.expire_at(&set, expire_at)).await?;
        if let Some(seen) = session.grant.as_ref().filter(|g| !g.seen.is_empty()) {
            // A session made from another one (a CLI sign-in approved in the browser):
            // it joins the user's grant as it is; its tokens are not written again.
            let script = redis::Script::new(JOIN_EXISTING_GRANT);
            let joined: i64 = self
                .bounded(
                    script
                        .key(self.grant_key(&seen.id))
                        .arg(&session.id)
                        .arg(session.expires_at.saturating_sub(unix_now()).max(1))
                        .invoke_async(&mut conn),
                )
                .await?;
            if joined == 0 {
                return Err(StoreError::GrantEnded);
            }
        } else if let Some(g) = &grant {
            let sealed = self.seal_grant(g, session)?;
            let script = redis::Script::new(JOIN_GRANT);
            let _: i64 = self
                .bounded(
                    script
                        .key(self.grant_key(g))
                        .arg(sealed)
                        .arg(&session.id)
                        .arg(session.expires_at.saturating_sub(unix_now()).max(1))
                        .invoke_async(&mut conn),
                )
                .await?;
        }
        let mut fields = vec![
            ("d", data),
            ("u", uh),
            ("c", session.created_at.to_string()),
            ("e", session.expires_at.to_string()),
        ];
        if let Some(g) = &grant {
            fields.push(("g", g.clone()));
        }
        let () = self.bounded(conn.hset_multiple(&key, &fields)).await?;
        let _: bool = self.bounded(conn.expire_at(&key, expire_at)).await?;
        let ticket = Ticket {
            i: session.id.clone(),
            k: secret,
            g: grant,
        };
        self.keyring
            .seal_json(&self.name, &ticket)
            .map_err(StoreError::Seal)
    }

    async fn load(&self, cookie: &str) -> Result<Option<SessionState>, StoreError> {
        let at = self.locate(cookie)?;
        match self.fetch(&at).await? {
            Some(stored) => self.open(&at, &stored).map(Some),
            None => Ok(None),
        }
    }

    async fn update(&self, cookie: &str, session: &SessionState) -> Result<String, StoreError> {
        let ticket = self.ticket(cookie)?;
        if let (Some(g), Some(seen)) = (&ticket.g, &session.grant) {
            // The grant is written only if it still holds what this refresh started
            // from: a sign-in that replaced it meanwhile (on any device) wins, and a
            // grant that ended stays ended.
            let sealed = self.seal_grant(g, session)?;
            let mut conn = self.conn.clone();
            let script = redis::Script::new(UPDATE_GRANT);
            let written: i64 = self
                .bounded(
                    script
                        .key(self.grant_key(g))
                        .arg(&*seen.seen)
                        .arg(sealed)
                        .invoke_async(&mut conn),
                )
                .await?;
            if written == 0 {
                tracing::info!(
                    "a newer sign-in replaced the grant during a refresh; its tokens are kept"
                );
            }
            return Ok(cookie.to_owned());
        }
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

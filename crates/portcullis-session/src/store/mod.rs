//! Where sessions live between requests.
//!
//! [`SessionStore`] is the one behaviour both stores implement, with one conformance
//! suite (`tests/store_conformance.rs`):
//! - [`CookieStore`]: the whole session sealed into the cookie. Stateless, nothing to
//!   run; a session ends when its cookie is dropped or expires.
//! - [`RedisStore`]: the cookie carries only a sealed *ticket* (session id + a
//!   per-session secret); Redis holds the session encrypted with that secret, so a
//!   Redis dump alone reveals no tokens. Sessions can be listed and revoked, and
//!   refreshes are coordinated across replicas with a lock.
//!
//! The cookie value a store hands out is opaque to callers: they only write it into
//! `Set-Cookie` (chunked if long) and give it back on the next request.

mod cookie;
mod redis;
mod redis_conn;

use std::future::Future;

pub use self::cookie::CookieStore;
pub use self::redis::{Located, RedisLock, RedisSettings, RedisStore, SessionInfo, redact_url};
pub use self::redis_conn::Topology;

use crate::{CodecError, SessionState};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The cookie value does not open (garbage, tampered, unknown key): "no session".
    #[error("session cookie did not open: {0}")]
    Undecodable(CodecError),
    /// The backing service failed (Redis down or slow): a 503, never "logged out".
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// Sealing failed (random generator); an internal error.
    #[error("could not seal the session: {0}")]
    Seal(CodecError),
}

/// The behaviour every session store has. Cookie values are whatever the store
/// returned from [`SessionStore::create`] or [`SessionStore::update`].
pub trait SessionStore: Send + Sync {
    /// Saves a new session for `user`; returns the cookie value referring to it.
    fn create(
        &self,
        session: &SessionState,
        user: &str,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// The session a cookie value refers to; `Ok(None)` when it no longer exists
    /// (signed out, revoked, expired in the store).
    fn load(
        &self,
        cookie: &str,
    ) -> impl Future<Output = Result<Option<SessionState>, StoreError>> + Send;

    /// Replaces the session behind `cookie` (after a refresh); returns the cookie value
    /// to use from now on (the cookie store's changes, a ticket does not).
    fn update(
        &self,
        cookie: &str,
        session: &SessionState,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Deletes the session behind `cookie` (sign-out, refused refresh). Deleting a
    /// session that does not exist is not an error.
    fn delete(&self, cookie: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether the store can serve requests (readiness).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The configured store.
#[derive(Debug)]
pub enum AnyStore {
    /// Sessions in cookies.
    Cookie(CookieStore),
    /// Sessions in Redis.
    Redis(RedisStore),
}

impl SessionStore for AnyStore {
    async fn create(&self, session: &SessionState, user: &str) -> Result<String, StoreError> {
        match self {
            AnyStore::Cookie(s) => s.create(session, user).await,
            AnyStore::Redis(s) => s.create(session, user).await,
        }
    }

    async fn load(&self, cookie: &str) -> Result<Option<SessionState>, StoreError> {
        match self {
            AnyStore::Cookie(s) => s.load(cookie).await,
            AnyStore::Redis(s) => s.load(cookie).await,
        }
    }

    async fn update(&self, cookie: &str, session: &SessionState) -> Result<String, StoreError> {
        match self {
            AnyStore::Cookie(s) => s.update(cookie, session).await,
            AnyStore::Redis(s) => s.update(cookie, session).await,
        }
    }

    async fn delete(&self, cookie: &str) -> Result<(), StoreError> {
        match self {
            AnyStore::Cookie(s) => s.delete(cookie).await,
            AnyStore::Redis(s) => s.delete(cookie).await,
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Cookie(s) => s.ping().await,
            AnyStore::Redis(s) => s.ping().await,
        }
    }
}

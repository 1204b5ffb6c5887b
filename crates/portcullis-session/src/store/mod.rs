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

mod contract;
mod cookie;
mod redis;
mod redis_conn;
mod redis_lock;
mod redis_once;
mod redis_records;
mod redis_scripts;

pub use self::contract::{SessionStore, StoreError};
pub use self::cookie::CookieStore;
pub use self::redis::{
    GrantEnd, Located, RedisLock, RedisSettings, RedisStore, SessionInfo, Stored, redact_url,
};
pub use self::redis_conn::Topology;
pub use self::redis_once::OneTime;

use crate::state::SessionState;

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

//! What every session store promises: the one trait both stores implement and the
//! one error type they fail with.

use std::future::Future;

use crate::codec::CodecError;
use crate::state::SessionState;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The cookie value does not open (garbage, tampered, unknown key): "no session".
    #[error("session cookie did not open: {0}")]
    Undecodable(CodecError),
    /// The backing service failed (Redis down or slow): a 503, never "logged out".
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// A session was to join its user's grant, which has ended meanwhile (signed
    /// out everywhere, revoked, refused): there is nothing to join.
    #[error("the user's provider grant has ended")]
    GrantEnded,
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

//! A session opened once and kept ready to answer with.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use portcullis_oidc::Claims;
use portcullis_session::SessionState;
use portcullis_session::store::{Located, Stored};

use crate::identity::{ClaimSettings, HeaderSettings, Identity, identity_headers};

/// A session opened and made ready to answer with: identity and response headers are
/// computed once per distinct cookie value and shared (see [`PreparedCache`]). Cookie
/// sessions and bearer tokens both end up as one of these, so everything downstream
/// treats them alike.
#[derive(Debug)]
pub struct Prepared {
    /// The session.
    pub state: SessionState,
    /// Identity from its ID token.
    pub identity: Identity,
    /// The token and identity headers `/oauth2/auth` answers with.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The ID token's lifetime as issued (`exp - iat`, seconds), when it says.
    pub token_lifetime: Option<u64>,
}

impl Prepared {
    /// Reads the identity and builds the headers; `None` without the username claim.
    pub fn new(
        session: SessionState,
        claims: &ClaimSettings,
        headers: &HeaderSettings,
    ) -> Option<Self> {
        let parsed = Claims::from_verified_jwt(&session.id_token)?;
        let identity = Identity::from_claims(&parsed, claims)?;
        let headers = identity_headers(headers, &session.id_token, &identity);
        let token_lifetime = parsed
            .expires_at()
            .zip(parsed.issued_at())
            .map(|(exp, iat)| exp.saturating_sub(iat));
        Some(Self {
            state: session,
            identity,
            headers,
            token_lifetime,
        })
    }

    /// How long before its token's expiry this session is refreshed: `before`, but
    /// never more than a third of the token's own lifetime, so that a provider issuing
    /// tokens shorter than `before` (Dex `expiry.idTokens: 1m` against the default
    /// 60 s) is not asked for a refresh on every request.
    pub fn refresh_window(&self, before: u64) -> u64 {
        match self.token_lifetime {
            Some(lifetime) => before.min(lifetime / 3),
            None => before,
        }
    }
}

/// Prepared sessions by cookie value.
///
/// Decrypting, parsing the ID token's claims and building the headers again on every
/// request of every dashboard is waste: they depend only on what the session holds.
/// - Cookie store: the cookie *is* the session, authenticated by AES-GCM, so a value
///   that opened once opens to the same session every time.
/// - Redis store: the session is fetched on every request (so revocation and another
///   replica's refresh are seen on the next one), but it is opened and prepared again
///   only when the stored bytes differ from those the entry was made from.
///
/// Time checks (lifetime, expiry, refresh) still run on every request.
pub struct PreparedCache {
    inner: quick_cache::sync::Cache<String, Cached>,
}

/// One entry of [`PreparedCache`].
#[derive(Clone)]
pub(crate) struct Cached {
    pub(crate) prepared: Arc<Prepared>,
    /// Redis store: the opened ticket, and the sealed bytes `prepared` came from.
    pub(crate) redis: Option<(Arc<Located>, Arc<Stored>)>,
}

impl PreparedCache {
    /// A cache of at most `entries` sessions (a few KB each).
    pub fn new(entries: usize) -> Self {
        Self {
            inner: quick_cache::sync::Cache::new(entries.max(1)),
        }
    }

    pub(crate) fn get(&self, cookie: &str) -> Option<Cached> {
        self.inner.get(cookie)
    }

    pub(crate) fn insert(&self, cookie: String, cached: Cached) {
        self.inner.insert(cookie, cached);
    }

    pub(crate) fn remove(&self, cookie: &str) {
        self.inner.remove(cookie);
    }
}

impl Default for PreparedCache {
    fn default() -> Self {
        Self::new(1024)
    }
}

impl std::fmt::Debug for PreparedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedCache")
            .field("len", &self.inner.len())
            .finish()
    }
}

//! A session opened once and kept ready to answer with.

use std::sync::Arc;

use http::HeaderMap;
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
    /// The token and identity headers `/oauth2/auth` answers with, as a map: a 202
    /// takes a clone of it (two allocations and reference counts) instead of hashing
    /// and inserting each header again on every request.
    pub headers: HeaderMap,
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
        let list = identity_headers(headers, &session.id_token, &identity);
        let mut headers = HeaderMap::with_capacity(list.len());
        for (name, value) in list {
            // `insert`, as the answers did: a name configured twice keeps its last value.
            headers.insert(name, value);
        }
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
    inner: quick_cache::sync::Cache<String, Cached, quick_cache::UnitWeighter, TailHash>,
}

/// How many bytes at the end of a cookie value the cache hashes.
const HASHED_TAIL: usize = 32;

/// Hashes a cookie value by its last [`HASHED_TAIL`] bytes only. Every cookie the
/// cache holds opened with AES-GCM, and its value ends with the seal's 16-byte tag
/// (base64): as evenly spread as a hash of the whole value, without reading the few
/// KB of every request's cookie to compute one. Lookups still compare whole values,
/// and only cookies that opened are ever inserted, so a value crafted to share a
/// tail costs its sender one comparison and finds nothing.
#[derive(Clone, Default)]
struct TailHash(quick_cache::DefaultHashBuilder);

/// The hasher of [`TailHash`].
struct Tail<H>(H);

impl std::hash::BuildHasher for TailHash {
    type Hasher = Tail<<quick_cache::DefaultHashBuilder as std::hash::BuildHasher>::Hasher>;

    fn build_hasher(&self) -> Self::Hasher {
        Tail(self.0.build_hasher())
    }
}

impl<H: std::hash::Hasher> std::hash::Hasher for Tail<H> {
    fn finish(&self) -> u64 {
        self.0.finish()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0
            .write(&bytes[bytes.len().saturating_sub(HASHED_TAIL)..]);
    }
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
            inner: quick_cache::sync::Cache::with(
                entries.max(1),
                entries.max(1) as u64,
                quick_cache::UnitWeighter,
                TailHash::default(),
                quick_cache::sync::DefaultLifecycle::default(),
            ),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cached(user: &str) -> Cached {
        Cached {
            prepared: Arc::new(Prepared {
                state: SessionState {
                    id: user.into(),
                    id_token: "t".into(),
                    id_token_expires_at: 0,
                    refresh_token: None,
                    created_at: 0,
                    expires_at: 0,
                    grant: None,
                },
                identity: Identity {
                    user: user.into(),
                    email: None,
                    groups: vec![],
                    preferred_username: None,
                },
                headers: HeaderMap::new(),
                token_lifetime: None,
            }),
            redis: None,
        }
    }

    /// Values that share their hashed tail (or are shorter than it) are still told
    /// apart by the whole value.
    #[test]
    fn values_sharing_a_tail_are_different_entries() {
        let cache = PreparedCache::new(16);
        let tail = "T".repeat(HASHED_TAIL);
        let (a, b) = (format!("aaaa{tail}"), format!("bbbb{tail}"));
        cache.insert(a.clone(), cached("alice"));
        assert!(
            cache.get(&b).is_none(),
            "a value with the same tail is a miss"
        );
        cache.insert(b.clone(), cached("bob"));
        cache.insert("short".into(), cached("carol"));
        let user = |k: &str| cache.get(k).map(|c| c.prepared.identity.user.clone());
        assert_eq!(user(&a).as_deref(), Some("alice"));
        assert_eq!(user(&b).as_deref(), Some("bob"));
        assert_eq!(user("short").as_deref(), Some("carol"));
        assert_eq!(user(&tail), None);
        cache.remove(&a);
        assert_eq!((user(&a), user(&b).as_deref()), (None, Some("bob")));
    }
}

//! Loading the session a request carries, refreshing it when its ID token is about to
//! expire.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use portcullis_oidc::Claims;
use portcullis_session::store::{AnyStore, Located, RedisStore, SessionStore, StoreError};
use portcullis_session::{CodecError, SessionState, chunk};

use crate::AppState;
use crate::cookies::RequestCookies;
use crate::identity::Identity;
use crate::metrics::StoreOp;
use crate::refresh::Outcome;

/// The outcome of looking for a session. `Valid` passes; `StoreDown` is a 503 (never
/// "logged out", so never a login loop); everything else means "no session" (401).
#[derive(Debug)]
pub enum Lookup {
    /// No session cookie.
    Missing,
    /// A cookie was there but did not open (garbage, tampered, unknown key).
    Undecodable(CodecError),
    /// The cookie opened but the store no longer has the session (signed out, revoked).
    Gone,
    /// The absolute session lifetime is over.
    Expired,
    /// The provider refused the refresh token: the session was ended.
    Revoked,
    /// The ID token expired and could not be refreshed.
    TokenExpired,
    /// The token lacks the configured username claim.
    NoIdentity,
    /// The session store failed.
    StoreDown(String),
    /// A bearer token that did not verify (reason for logs).
    BadBearer(String),
    /// A bearer token whose issuer's keys are not available yet.
    BearerUnavailable,
    /// A usable session.
    Valid(Box<Loaded>),
}

/// A session opened and made ready to answer with: identity and response headers are
/// computed once per distinct cookie value and shared (see [`PreparedCache`]).
#[derive(Debug)]
pub struct Prepared {
    /// The session.
    pub state: SessionState,
    /// Identity from its ID token.
    pub identity: Identity,
    /// The token and identity headers `/oauth2/auth` answers with.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Prepared {
    /// Reads the identity and builds the headers; `None` without the username claim.
    pub fn new(state: &AppState, session: SessionState) -> Option<Self> {
        let claims = Claims::from_verified_jwt(&session.id_token)?;
        let identity = Identity::from_claims(&claims, &state.settings.claims)?;
        let headers = crate::handlers::auth::identity_headers(
            &state.settings.headers,
            &session.id_token,
            &identity,
        );
        Some(Self {
            state: session,
            identity,
            headers,
        })
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
struct Cached {
    prepared: Arc<Prepared>,
    /// Redis store: the opened ticket, and the sealed bytes `prepared` came from.
    redis: Option<(Arc<Located>, Arc<str>)>,
}

impl PreparedCache {
    /// A cache of at most `entries` sessions (a few KB each).
    pub fn new(entries: usize) -> Self {
        Self {
            inner: quick_cache::sync::Cache::new(entries.max(1)),
        }
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

/// A usable session.
#[derive(Debug)]
pub struct Loaded {
    /// The session, its identity and headers (refreshed if it needed to be).
    pub prepared: Arc<Prepared>,
    /// The cookie value the request carried (joined from chunks).
    pub cookie: String,
    /// A new cookie value to send back (the cookie store after a refresh).
    pub set_cookie: Option<String>,
}

impl Lookup {
    /// A short, stable reason for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Lookup::Missing => "no session cookie",
            Lookup::Undecodable(CodecError::UnknownKey) => {
                "session cookie sealed with an unknown key"
            }
            Lookup::Undecodable(_) => "session cookie did not open",
            Lookup::Gone => "session no longer exists (signed out or revoked)",
            Lookup::Expired => "session expired",
            Lookup::Revoked => "refresh token refused; session ended",
            Lookup::TokenExpired => "ID token expired",
            Lookup::NoIdentity => "ID token lacks the username claim",
            Lookup::StoreDown(_) => "session store unavailable",
            Lookup::BadBearer(_) => "bearer token rejected",
            Lookup::BearerUnavailable => "bearer token issuer not discovered yet",
            Lookup::Valid(_) => "valid",
        }
    }

    /// Whether the response should expire the session cookies: the session is known to
    /// be over. A cookie that merely does not open is left alone: during a rolling key
    /// rotation another replica may still open it ("loses nothing").
    pub fn clears_cookie(&self) -> bool {
        matches!(self, Lookup::Gone | Lookup::Expired | Lookup::Revoked)
    }
}

/// The session cookie value of a request (joined from chunks), if any.
pub fn cookie_value(state: &AppState, cookies: &RequestCookies<'_>) -> Option<String> {
    chunk::join(&state.settings.cookie.name, |n| cookies.get(n))
}

/// Authenticates a request: its bearer token when bearer tokens are enabled and it
/// carries one (then no cookie is looked at: an invalid token is a 401, never a
/// fallback), else its session cookie.
pub async fn authenticate(
    state: &AppState,
    headers: &http::HeaderMap,
    cookies: &RequestCookies<'_>,
    now: u64,
) -> Lookup {
    // Without a bearer header (the common case) nothing is verified or allocated.
    let bearer = if state.settings.bearer.enabled && crate::bearer::bearer_token(headers).is_some()
    {
        Box::pin(state.bearer.authenticate(state, headers, now)).await
    } else {
        crate::bearer::Outcome::Absent
    };
    match bearer {
        crate::bearer::Outcome::Absent => load(state, cookies, now).await,
        crate::bearer::Outcome::Valid(prepared) => {
            tracing::Span::current().record("user", prepared.identity.user.as_str());
            Lookup::Valid(Box::new(Loaded {
                prepared,
                cookie: String::new(),
                set_cookie: None,
            }))
        }
        crate::bearer::Outcome::Invalid(reason) => Lookup::BadBearer(reason),
        crate::bearer::Outcome::Unavailable => Lookup::BearerUnavailable,
    }
}

/// Finds, opens, refreshes if due, and checks the session of a request at `now`.
pub async fn load(state: &AppState, cookies: &RequestCookies<'_>, now: u64) -> Lookup {
    let Some(cookie) = cookie_value(state, cookies) else {
        return Lookup::Missing;
    };
    let cached = state.prepared.inner.get(&cookie);
    let opened = match &state.store {
        AnyStore::Cookie(_) => match cached {
            Some(c) => Ok(c.prepared),
            None => open_cookie(state, &cookie).await,
        },
        AnyStore::Redis(redis) => open_redis(state, redis, &cookie, cached).await,
    };
    let mut prepared = match opened {
        Ok(p) => p,
        Err(lookup) => {
            if matches!(lookup, Lookup::Gone) {
                state.prepared.inner.remove(&cookie);
            }
            return lookup;
        }
    };
    if prepared.state.is_expired(now) {
        return Lookup::Expired;
    }
    let mut set_cookie = None;
    if prepared
        .state
        .needs_refresh(now, state.settings.refresh_before.as_secs())
    {
        match state
            .refresher
            .refresh(state, &cookie, &prepared.state)
            .await
        {
            Outcome::Refreshed {
                session: new,
                cookie: new_cookie,
            } => {
                let Some(p) = Prepared::new(state, *new) else {
                    return Lookup::NoIdentity;
                };
                prepared = Arc::new(p);
                // A new cookie value is a new cookie-store session. (A Redis ticket
                // stays; its entry is renewed when the next fetch shows new bytes.)
                if let Some(c) = &new_cookie {
                    state.prepared.inner.insert(
                        c.clone(),
                        Cached {
                            prepared: Arc::clone(&prepared),
                            redis: None,
                        },
                    );
                }
                set_cookie = new_cookie;
            }
            Outcome::Revoked => return Lookup::Revoked,
            // Logged where it happened; the current token serves while it is valid.
            Outcome::Unavailable(_) => {}
        }
    }
    if !prepared.state.id_token_valid(now) {
        return Lookup::TokenExpired;
    }
    tracing::Span::current().record("user", prepared.identity.user.as_str());
    Lookup::Valid(Box::new(Loaded {
        prepared,
        cookie,
        set_cookie,
    }))
}

/// Opens and prepares a cookie-store session (not in the cache yet).
async fn open_cookie(state: &AppState, cookie: &str) -> Result<Arc<Prepared>, Lookup> {
    let session = match state
        .metrics
        .store(StoreOp::Load, state.store.load(cookie))
        .await
    {
        Ok(Some(s)) => s,
        Ok(None) => return Err(Lookup::Gone),
        Err(e) => return Err(store_error(e)),
    };
    let prepared = Arc::new(Prepared::new(state, session).ok_or(Lookup::NoIdentity)?);
    state.prepared.inner.insert(
        cookie.to_owned(),
        Cached {
            prepared: Arc::clone(&prepared),
            redis: None,
        },
    );
    Ok(prepared)
}

/// Fetches a Redis session (every request: one `HGET`) and reuses the cached
/// preparation when the stored bytes are the ones it was made from.
async fn open_redis(
    state: &AppState,
    redis: &RedisStore,
    cookie: &str,
    cached: Option<Cached>,
) -> Result<Arc<Prepared>, Lookup> {
    let (at, known) = match cached.and_then(|c| Some((c.redis?, c.prepared))) {
        Some(((at, sealed), prepared)) => (at, Some((sealed, prepared))),
        None => (Arc::new(redis.locate(cookie).map_err(store_error)?), None),
    };
    let sealed = match state.metrics.store(StoreOp::Load, redis.fetch(&at)).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(Lookup::Gone),
        Err(e) => return Err(store_error(e)),
    };
    if let Some((known_sealed, prepared)) = known
        && *known_sealed == *sealed
    {
        return Ok(prepared);
    }
    let session = redis.open(&at, &sealed).map_err(store_error)?;
    let prepared = Arc::new(Prepared::new(state, session).ok_or(Lookup::NoIdentity)?);
    state.prepared.inner.insert(
        cookie.to_owned(),
        Cached {
            prepared: Arc::clone(&prepared),
            redis: Some((at, sealed.into())),
        },
    );
    Ok(prepared)
}

fn store_error(e: StoreError) -> Lookup {
    match e {
        StoreError::Undecodable(e) => Lookup::Undecodable(e),
        e => Lookup::StoreDown(e.to_string()),
    }
}

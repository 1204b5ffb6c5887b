//! Loading the session a request carries, refreshing it when its ID token is about to
//! expire.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use portcullis_oidc::Claims;
use portcullis_session::store::{AnyStore, SessionStore, StoreError};
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

/// Prepared sessions of the cookie store, by cookie value.
///
/// The cookie *is* the session there, authenticated by AES-GCM: a value that opened
/// once opens to the same session every time, so decrypting, parsing the ID token's
/// claims and building the headers again on every request of every dashboard is
/// waste. Time checks (lifetime, expiry, refresh) still run on every request. Not
/// used with Redis, where revocation must be seen on the next request.
pub struct PreparedCache {
    inner: quick_cache::sync::Cache<String, Arc<Prepared>>,
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
    let cacheable = matches!(state.store, AnyStore::Cookie(_));
    let cached = if cacheable {
        state.prepared.inner.get(&cookie)
    } else {
        None
    };
    let mut prepared = match cached {
        Some(p) => p,
        None => {
            let session = match state
                .metrics
                .store(StoreOp::Load, state.store.load(&cookie))
                .await
            {
                Ok(Some(s)) => s,
                Ok(None) => return Lookup::Gone,
                Err(StoreError::Undecodable(e)) => return Lookup::Undecodable(e),
                Err(e) => return Lookup::StoreDown(e.to_string()),
            };
            let Some(p) = Prepared::new(state, session) else {
                return Lookup::NoIdentity;
            };
            let p = Arc::new(p);
            if cacheable {
                state.prepared.inner.insert(cookie.clone(), Arc::clone(&p));
            }
            p
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
                if let (true, Some(c)) = (cacheable, &new_cookie) {
                    state
                        .prepared
                        .inner
                        .insert(c.clone(), Arc::clone(&prepared));
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

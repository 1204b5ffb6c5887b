//! Loading the session a request carries, refreshing it when its ID token is about to
//! expire.

use portcullis_oidc::Claims;
use portcullis_session::store::{SessionStore, StoreError};
use portcullis_session::{CodecError, SessionState, chunk};

use crate::AppState;
use crate::cookies::RequestCookies;
use crate::identity::Identity;
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
    /// A usable session.
    Valid(Box<Loaded>),
}

/// A usable session and who it belongs to.
#[derive(Debug)]
pub struct Loaded {
    /// The session (refreshed if it needed to be).
    pub state: SessionState,
    /// Identity from its ID token.
    pub identity: Identity,
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

/// Finds, opens, refreshes if due, and checks the session of a request at `now`.
pub async fn load(state: &AppState, cookies: &RequestCookies<'_>, now: u64) -> Lookup {
    let Some(cookie) = cookie_value(state, cookies) else {
        return Lookup::Missing;
    };
    let mut session = match state.store.load(&cookie).await {
        Ok(Some(s)) => s,
        Ok(None) => return Lookup::Gone,
        Err(StoreError::Undecodable(e)) => return Lookup::Undecodable(e),
        Err(e) => return Lookup::StoreDown(e.to_string()),
    };
    if session.is_expired(now) {
        return Lookup::Expired;
    }
    let mut set_cookie = None;
    if session.needs_refresh(now, state.settings.refresh_before.as_secs()) {
        match state.refresher.refresh(state, &cookie, &session).await {
            Outcome::Refreshed {
                session: new,
                cookie,
            } => {
                session = *new;
                set_cookie = cookie;
            }
            Outcome::Revoked => return Lookup::Revoked,
            // Logged where it happened; the current token serves while it is valid.
            Outcome::Unavailable(_) => {}
        }
    }
    if !session.id_token_valid(now) {
        return Lookup::TokenExpired;
    }
    let Some(identity) = Claims::from_verified_jwt(&session.id_token)
        .and_then(|claims| Identity::from_claims(&claims, &state.settings.claims))
    else {
        return Lookup::NoIdentity;
    };
    Lookup::Valid(Box::new(Loaded {
        state: session,
        identity,
        cookie,
        set_cookie,
    }))
}

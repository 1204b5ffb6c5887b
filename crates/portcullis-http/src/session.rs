//! Loading the session a request carries.

use portcullis_oidc::Claims;
use portcullis_session::{CodecError, SessionState, chunk};

use crate::AppState;
use crate::cookies::RequestCookies;
use crate::identity::Identity;

/// The outcome of looking for a session. Everything except `Valid` means "no session"
/// (401); the variants feed logs and metrics.
#[derive(Debug)]
pub enum Lookup {
    /// No session cookie.
    Missing,
    /// A cookie was there but did not open (garbage, tampered, unknown key).
    Undecodable(CodecError),
    /// The absolute session lifetime is over.
    Expired,
    /// The ID token expired and cannot be forwarded.
    TokenExpired,
    /// The token lacks the configured username claim.
    NoIdentity,
    /// A usable session.
    Valid(Box<Loaded>),
}

/// A usable session and who it belongs to.
#[derive(Debug)]
pub struct Loaded {
    /// The opened session.
    pub state: SessionState,
    /// Identity from its ID token.
    pub identity: Identity,
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
            Lookup::Expired => "session expired",
            Lookup::TokenExpired => "ID token expired",
            Lookup::NoIdentity => "ID token lacks the username claim",
            Lookup::Valid(_) => "valid",
        }
    }
}

/// Finds, opens and checks the session cookie(s) of a request at time `now`.
pub fn load(state: &AppState, cookies: &RequestCookies<'_>, now: u64) -> Lookup {
    let name = &state.settings.cookie.name;
    let Some(sealed) = chunk::join(name, |n| cookies.get(n)) else {
        return Lookup::Missing;
    };
    let session: SessionState = match state.keyring.open_json(name, &sealed) {
        Ok(s) => s,
        Err(e) => return Lookup::Undecodable(e),
    };
    if session.is_expired(now) {
        return Lookup::Expired;
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
    }))
}

//! [`Sessions::load`] and [`Sessions::authenticate`] over the cookie store, without a
//! server or a provider: every outcome a cookie can have.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use portcullis_session::store::{AnyStore, CookieStore, SessionStore};
use portcullis_session::{Key, Keyring, SessionState};

use super::*;
use crate::identity::TokenFormat;
use crate::observe::Unobserved;

const NOW: u64 = 1_800_000_000;

fn settings() -> SessionSettings {
    SessionSettings {
        claims: ClaimSettings {
            username: "email".into(),
            groups: "groups".into(),
        },
        headers: HeaderSettings {
            token: "Authorization".into(),
            token_format: TokenFormat::Bearer,
        },
        lifetime: Duration::from_secs(3600),
        refresh: RefreshSettings {
            before: Duration::from_secs(60),
            grace: Duration::from_secs(10),
            wait: Duration::from_secs(1),
        },
        bearer: BearerSettings::default(),
    }
}

fn sessions_with_key(byte: u8) -> Sessions {
    let keyring = Arc::new(Keyring::new(&[Key::from_bytes([byte; 32])]).unwrap());
    let store = AnyStore::Cookie(CookieStore::new(keyring, "_portcullis"));
    Sessions::new(settings(), store, Arc::new(Unobserved))
}

/// An unsigned JWT with these claims (the store holds tokens verified at sign-in; the
/// lookup only reads their claims).
fn jwt(claims: serde_json::Value) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.sig",
        b64(br#"{"alg":"RS256"}"#),
        b64(claims.to_string().as_bytes())
    )
}

fn state(claims: serde_json::Value, token_exp: u64, refresh: bool) -> SessionState {
    SessionState {
        id: "sid-1".into(),
        id_token: jwt(claims),
        id_token_expires_at: token_exp,
        refresh_token: refresh.then(|| "rt".into()),
        created_at: NOW - 10,
        expires_at: NOW + 3600,
        grant: None,
    }
}

fn alice() -> serde_json::Value {
    serde_json::json!({"email": "alice@example.test", "groups": ["platform", "dev"]})
}

async fn cookie_of(s: &Sessions, session: &SessionState) -> String {
    s.store()
        .create(session, "alice@example.test")
        .await
        .unwrap()
}

#[tokio::test]
async fn a_valid_cookie_session_answers_its_identity_and_headers() {
    let s = sessions_with_key(7);
    let cookie = cookie_of(&s, &state(alice(), NOW + 600, true)).await;
    let Lookup::Valid(loaded) = s.load(Some(&cookie), NOW).await else {
        panic!("expected a valid session");
    };
    assert_eq!(loaded.prepared.identity.user, "alice@example.test");
    assert_eq!(loaded.prepared.identity.groups, ["platform", "dev"]);
    assert!(loaded.set_cookie.is_none());
    let auth = loaded.prepared.headers["authorization"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(auth.starts_with("Bearer ey"));
    // The second lookup is served from the prepared cache: the same value.
    let Lookup::Valid(again) = s.load(Some(&cookie), NOW).await else {
        panic!("expected a valid session");
    };
    assert!(Arc::ptr_eq(&loaded.prepared, &again.prepared));
}

#[tokio::test]
async fn every_way_a_cookie_fails_has_its_own_outcome() {
    let s = sessions_with_key(7);
    assert!(matches!(s.load(None, NOW).await, Lookup::Missing));
    assert!(matches!(
        s.load(Some("garbage"), NOW).await,
        Lookup::Undecodable(_)
    ));

    // Sealed with a key this process does not have.
    let other = sessions_with_key(9);
    let foreign = cookie_of(&other, &state(alice(), NOW + 600, true)).await;
    let unknown = s.load(Some(&foreign), NOW).await;
    assert_eq!(
        unknown.reason(),
        "session cookie sealed with an unknown key"
    );
    assert!(
        !unknown.clears_cookie(),
        "another replica may still open it"
    );

    // Past the absolute lifetime.
    let cookie = cookie_of(&s, &state(alice(), NOW + 600, true)).await;
    let expired = s.load(Some(&cookie), NOW + 3600).await;
    assert!(matches!(expired, Lookup::Expired) && expired.clears_cookie());

    // The ID token lacks the username claim.
    let nameless = cookie_of(
        &s,
        &state(serde_json::json!({"sub": "x"}), NOW + 600, false),
    )
    .await;
    assert!(matches!(
        s.load(Some(&nameless), NOW).await,
        Lookup::NoIdentity
    ));

    // The ID token expired and there is no refresh token: never answered with.
    let stale = cookie_of(&s, &state(alice(), NOW - 1, false)).await;
    assert!(matches!(
        s.load(Some(&stale), NOW).await,
        Lookup::TokenExpired
    ));
}

#[tokio::test]
async fn a_due_refresh_without_a_provider_keeps_the_session_while_its_token_is_valid() {
    let s = sessions_with_key(7);
    // Within `refresh_before` of expiry, and no provider discovered yet: an outage,
    // which never logs anyone out while the current token is valid.
    let cookie = cookie_of(&s, &state(alice(), NOW + 30, true)).await;
    let Lookup::Valid(loaded) = s.load(Some(&cookie), NOW).await else {
        panic!("an outage must not end a session whose token is valid");
    };
    assert!(loaded.set_cookie.is_none());
    // Once the token is past its expiry the same outage means 401, not a stale token.
    assert!(matches!(
        s.load(Some(&cookie), NOW + 30).await,
        Lookup::TokenExpired
    ));
}

#[tokio::test]
async fn bearer_tokens_are_ignored_unless_enabled() {
    let s = sessions_with_key(7);
    let cookie = cookie_of(&s, &state(alice(), NOW + 600, true)).await;
    // Bearer authentication is off: the token is not looked at and the cookie decides.
    let lookup = s.authenticate(Some("not-a-jwt"), Some(&cookie), NOW).await;
    assert!(matches!(lookup, Lookup::Valid(_)));
    assert!(matches!(
        s.authenticate(Some("not-a-jwt"), None, NOW).await,
        Lookup::Missing
    ));
}

//! Signing kubectl in through Portcullis (OAuth 2.0 for native apps, RFC 8252, with
//! PKCE, RFC 7636): the decision half of `/oauth2/cli/*`.
//!
//! A CLI session is a session like a browser's: in the store, on the user's shared
//! provider grant (so signing kubectl in never logs a browser out, and the other way
//! round), listed and revoked with the others. What the CLI holds is an opaque
//! credential issued by Portcullis (the session's sealed ticket); the provider's
//! refresh token never leaves the server. That needs the Redis store: the cookie store
//! has no server side to share a grant through (two holders of one rotating refresh
//! token would log each other out).
//!
//! The one-time code of the loopback redirect is a 32-byte random value; Redis keeps,
//! under its hash, for 60 s, the approving browser session's cookie, the PKCE challenge
//! and the redirect URI, sealed with a key derived from the code itself. So the code
//! is single use (`GETDEL`), bound to its challenge and redirect URI, and a Redis dump
//! alone does not let anyone redeem it.

use std::time::Duration;

use portcullis_session::store::{AnyStore, StoreError};
use portcullis_session::{Key, Keyring, SessionState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::sessions::{Lookup, Sessions};

/// How long a one-time code can be redeemed.
pub const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// Why a CLI request was refused, as the token endpoint's `error` (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// A malformed request (`invalid_request`), with what is wrong.
    InvalidRequest(&'static str),
    /// A code or credential that is not (or no longer) good (`invalid_grant`).
    InvalidGrant(&'static str),
    /// The store (or the provider) cannot answer now: try again (a 503).
    Unavailable(String),
    /// CLI sign-in needs the Redis store.
    NeedsRedis,
    /// Device flow: the user has not approved yet (`authorization_pending`).
    AuthorizationPending,
    /// Device flow: polling too fast; wait the (now longer) interval (`slow_down`).
    SlowDown,
    /// Device flow: the user denied the request (`access_denied`).
    AccessDenied,
    /// Device flow: the device code expired or was used (`expired_token`).
    ExpiredToken,
}

impl CliError {
    /// The OAuth `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            CliError::InvalidRequest(_) | CliError::NeedsRedis => "invalid_request",
            CliError::InvalidGrant(_) => "invalid_grant",
            CliError::Unavailable(_) => "temporarily_unavailable",
            CliError::AuthorizationPending => "authorization_pending",
            CliError::SlowDown => "slow_down",
            CliError::AccessDenied => "access_denied",
            CliError::ExpiredToken => "expired_token",
        }
    }

    /// A description for the user (no secrets).
    pub fn description(&self) -> String {
        match self {
            CliError::InvalidRequest(m) | CliError::InvalidGrant(m) => (*m).to_owned(),
            CliError::Unavailable(_) => "sessions cannot be checked right now; try again".into(),
            CliError::NeedsRedis => {
                "kubectl sign-in needs session.store = \"redis\" on the server".into()
            }
            CliError::AuthorizationPending => "waiting for the user to approve".into(),
            CliError::SlowDown => "polling too fast; wait longer between requests".into(),
            CliError::AccessDenied => "the user denied the sign-in".into(),
            CliError::ExpiredToken => {
                "the device code expired or was used; run portcullis login --device again".into()
            }
        }
    }
}

/// What the token endpoint hands the CLI.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The ID token the API servers verify.
    pub id_token: String,
    /// Its expiry (unix seconds).
    pub expires_at: u64,
    /// The CLI's credential for later refreshes (opaque; a sealed ticket).
    pub credential: String,
    /// Whose it is.
    pub user: String,
    /// The CLI session's id (for the audit trail, hashed there).
    pub session_id: String,
}

/// Checks a loopback redirect URI (RFC 8252 §7.3): `http`, the host `127.0.0.1` or
/// `[::1]` exactly (not `localhost`, which a hosts file may point anywhere), an
/// explicit port, a path, and nothing else (no user info, no fragment).
pub fn loopback_redirect(raw: &str) -> Result<Url, &'static str> {
    if raw.len() > 512 || raw.chars().any(|c| c.is_control() || c == '\\') {
        return Err("redirect_uri must be a short plain URL");
    }
    let url = Url::parse(raw).map_err(|_| "redirect_uri is not a URL")?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        _ => false,
    };
    if url.scheme() != "http" || !loopback {
        return Err("redirect_uri must be http://127.0.0.1:<port>/… or http://[::1]:<port>/…");
    }
    if url.port().is_none() {
        return Err("redirect_uri needs the loopback listener's port");
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err("redirect_uri must not carry user info or a fragment");
    }
    // What was parsed is what was sent: no normalisation games.
    if url.as_str() != raw {
        return Err("redirect_uri must be in normal form");
    }
    Ok(url)
}

/// Checks a PKCE S256 challenge's form: 43 base64url characters (a SHA-256).
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `verifier` (43–128 unreserved characters) hashes to `challenge`
/// (constant time in the compared values).
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    use base64::Engine;
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    well_formed && constant_time_eq(computed.as_bytes(), challenge.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
}

/// What a one-time code stands for (sealed under a key derived from the code).
#[derive(Serialize, Deserialize)]
struct CodeGrant {
    /// The approving browser session's cookie value.
    c: String,
    /// PKCE challenge.
    p: String,
    /// The redirect URI it was issued for.
    r: String,
    /// The CLI's host as it reported it (for `sessions list`).
    #[serde(default)]
    h: String,
}

const CODE_KIND: &str = "cli-code";

pub(crate) fn code_id(code: &str) -> String {
    let digest = Sha256::digest(code.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn code_keyring(code: &str) -> Result<Keyring, CliError> {
    let key = Key::from_base64(code).map_err(|_| CliError::InvalidGrant("unknown code"))?;
    Keyring::new(&[key]).ok_or(CliError::InvalidGrant("unknown code"))
}

pub(crate) fn unavailable(e: StoreError) -> CliError {
    CliError::Unavailable(e.to_string())
}

impl Sessions {
    /// Issues the one-time code for a CLI sign-in the user approved in the browser
    /// session `cookie`, bound to `challenge` and `redirect_uri`.
    pub async fn issue_cli_code(
        &self,
        cookie: &str,
        challenge: &str,
        redirect_uri: &str,
        client_host: &str,
    ) -> Result<String, CliError> {
        let AnyStore::Redis(redis) = self.store() else {
            return Err(CliError::NeedsRedis);
        };
        let code = portcullis_session::codec::random_token(32)
            .map_err(|e| CliError::Unavailable(e.to_string()))?;
        let sealed = code_keyring(&code)?
            .seal_json(
                CODE_KIND,
                &CodeGrant {
                    c: cookie.to_owned(),
                    p: challenge.to_owned(),
                    r: redirect_uri.to_owned(),
                    h: client_host.to_owned(),
                },
            )
            .map_err(|e| CliError::Unavailable(e.to_string()))?;
        redis
            .one_time()
            .put(CODE_KIND, &code_id(&code), &sealed, CODE_LIFETIME)
            .await
            .map_err(unavailable)?;
        Ok(code)
    }

    /// Redeems a one-time code (once): checks the PKCE verifier and the redirect URI,
    /// then creates the CLI session on the approving session's grant.
    pub async fn redeem_cli_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        now: u64,
    ) -> Result<Issued, CliError> {
        let AnyStore::Redis(redis) = self.store() else {
            return Err(CliError::NeedsRedis);
        };
        if code.len() != 43 {
            return Err(CliError::InvalidGrant("unknown code"));
        }
        let sealed = redis
            .one_time()
            .take(CODE_KIND, &code_id(code))
            .await
            .map_err(unavailable)?
            .ok_or(CliError::InvalidGrant("unknown, used or expired code"))?;
        let grant: CodeGrant = code_keyring(code)?
            .open_json(CODE_KIND, &sealed)
            .map_err(|_| CliError::InvalidGrant("unknown code"))?;
        if !verifier_matches(verifier, &grant.p) {
            return Err(CliError::InvalidGrant(
                "code_verifier does not match the challenge",
            ));
        }
        if !constant_time_eq(grant.r.as_bytes(), redirect_uri.as_bytes()) {
            return Err(CliError::InvalidGrant(
                "redirect_uri differs from the authorization request",
            ));
        }
        self.cli_session_from(grant.c, &grant.h, now).await
    }

    /// Creates a CLI session on the grant of the approving browser session `cookie`
    /// (a loopback code or a device approval), labelled with the CLI's `client_host`.
    pub(crate) async fn cli_session_from(
        &self,
        cookie: String,
        client_host: &str,
        now: u64,
    ) -> Result<Issued, CliError> {
        let AnyStore::Redis(redis) = self.store() else {
            return Err(CliError::NeedsRedis);
        };
        let browser = match self.load(Some(&cookie), now).await {
            Lookup::Valid(loaded) => loaded,
            Lookup::StoreDown(e) => return Err(CliError::Unavailable(e)),
            _ => {
                return Err(CliError::InvalidGrant(
                    "the approving browser session has ended",
                ));
            }
        };
        let prepared = &browser.prepared;
        let session = SessionState {
            id: SessionState::new_id().map_err(|e| CliError::Unavailable(e.to_string()))?,
            created_at: now,
            expires_at: now + self.settings().lifetime.as_secs(),
            ..prepared.state.clone()
        };
        let credential = match self.create(&session, &prepared.identity.user).await {
            Ok(c) => c,
            Err(StoreError::GrantEnded) => {
                return Err(CliError::InvalidGrant(
                    "the approving browser session has ended",
                ));
            }
            Err(e) => return Err(unavailable(e)),
        };
        let described = redis
            .describe(
                &session.id,
                &[("k", "cli"), ("cl", client_host), ("lu", &now.to_string())],
            )
            .await;
        if let Err(e) = described {
            tracing::warn!(error = %e, "could not label a CLI session for sessions list");
        }
        Ok(Issued {
            id_token: prepared.state.id_token.clone(),
            expires_at: prepared.state.id_token_expires_at,
            credential,
            user: prepared.identity.user.clone(),
            session_id: session.id.clone(),
        })
    }

    /// The current ID token of a CLI session, refreshed with the provider when due
    /// (single flight, shared with the user's other sessions).
    pub async fn refresh_cli(&self, credential: &str, now: u64) -> Result<Issued, CliError> {
        let AnyStore::Redis(redis) = self.store() else {
            return Err(CliError::NeedsRedis);
        };
        match self.load(Some(credential), now).await {
            Lookup::Valid(loaded) => {
                let touched = redis
                    .describe(&loaded.prepared.state.id, &[("lu", &now.to_string())])
                    .await;
                if let Err(e) = touched {
                    tracing::debug!(error = %e, "could not record a CLI session's last use");
                }
                Ok(Issued {
                    id_token: loaded.prepared.state.id_token.clone(),
                    expires_at: loaded.prepared.state.id_token_expires_at,
                    credential: credential.to_owned(),
                    user: loaded.prepared.identity.user.clone(),
                    session_id: loaded.prepared.state.id.clone(),
                })
            }
            Lookup::StoreDown(e) => Err(CliError::Unavailable(e)),
            other => {
                tracing::info!(reason = other.reason(), "CLI refresh refused");
                Err(CliError::InvalidGrant(
                    "the CLI session has ended (signed out, revoked or expired); run portcullis login",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_ip_redirects_with_a_port() {
        for ok in [
            "http://127.0.0.1:8000/callback",
            "http://[::1]:41234/cb",
            "http://127.0.0.1:1/",
        ] {
            assert!(loopback_redirect(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://localhost:8000/cb",
            "https://127.0.0.1:8000/cb",
            "http://127.0.0.1/cb",
            "http://127.0.0.2:8000/cb",
            "http://127.0.0.1.evil.example:8000/cb",
            "http://evil.example/?x=http://127.0.0.1:1/",
            "http://user@127.0.0.1:8000/cb",
            "http://127.0.0.1:8000/cb#frag",
            "http://0x7f.0.0.1:8000/cb",
            "http://2130706433:8000/cb",
            "http://127.0.0.1:8000\\@evil.example/",
            "//127.0.0.1:8000/cb",
            "javascript:alert(1)",
            "",
        ] {
            assert!(loopback_redirect(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pkce_s256() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(valid_challenge(challenge));
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX",
            challenge
        ));
        assert!(!verifier_matches("short", challenge));
        assert!(!valid_challenge("plain-challenge"));
    }
}

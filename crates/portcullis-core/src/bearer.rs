//! Bearer tokens: `Authorization: Bearer <JWT>` from kubectl-style clients, CI jobs
//! and scripts, accepted without a session cookie when `bearer.enabled` is set.
//!
//! The token's unverified `iss` only picks which issuer's keys verify it; everything
//! (signature, issuer, audience, expiry) is then checked by `portcullis-oidc`. A
//! verified token is remembered until it expires, so a script hammering a dashboard
//! costs one signature check per token, not per request.

use std::sync::Arc;

use base64::Engine as _;
use http::HeaderMap;
use portcullis_oidc::{Claims, OidcSettings};
use portcullis_session::SessionState;

use crate::identity::{ClaimSettings, HeaderSettings};
use crate::prepared::Prepared;
use crate::provider::ProviderSlot;

/// Bearer tokens (`Authorization: Bearer <JWT>`) accepted instead of a session cookie.
#[derive(Debug, Clone, Default)]
pub struct BearerSettings {
    /// Off by default: only sessions pass.
    pub enabled: bool,
    /// The configured provider's issuer (`oidc.issuer_url`).
    pub issuer_url: String,
    /// Audiences accepted for tokens of the configured issuer (default: its client id).
    pub audiences: Vec<String>,
    /// Other issuers, each with its own audiences.
    pub extra_issuers: Vec<ExtraIssuer>,
}

/// An issuer besides the configured provider whose tokens are accepted as bearer
/// tokens (e.g. a CI system's OIDC issuer).
#[derive(Debug, Clone)]
pub struct ExtraIssuer {
    /// The issuer URL (`iss`), discovered like the main one.
    pub issuer_url: String,
    /// Accepted audiences.
    pub audiences: Vec<String>,
}

/// Issuers whose tokens are accepted and a cache of verified tokens.
pub struct Bearer {
    enabled: bool,
    issuer: String,
    audiences: Vec<String>,
    extra: Vec<Extra>,
    verified: quick_cache::sync::Cache<String, Arc<Prepared>>,
}

struct Extra {
    issuer: String,
    audiences: Vec<String>,
    slot: Arc<ProviderSlot>,
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bearer")
            .field("enabled", &self.enabled)
            .field("audiences", &self.audiences)
            .field(
                "extra_issuers",
                &self.extra.iter().map(|e| &e.issuer).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Default for Bearer {
    fn default() -> Self {
        Self::new(&BearerSettings::default())
    }
}

/// What a request's `Authorization` header amounts to.
#[derive(Debug)]
pub enum Outcome {
    /// No bearer token (or bearer tokens are not enabled): look for a session.
    Absent,
    /// A verified token.
    Valid(Arc<Prepared>),
    /// A token that did not verify (the reason is for logs only).
    Invalid(String),
    /// The issuer's keys are not available yet (discovery pending).
    Unavailable,
}

impl Bearer {
    /// From settings; extra issuers get empty slots, filled by [`Bearer::discoveries`].
    pub fn new(settings: &BearerSettings) -> Self {
        Self {
            enabled: settings.enabled,
            issuer: settings.issuer_url.clone(),
            audiences: settings.audiences.clone(),
            extra: settings
                .extra_issuers
                .iter()
                .map(|x| Extra {
                    issuer: x.issuer_url.clone(),
                    audiences: x.audiences.clone(),
                    slot: Arc::default(),
                })
                .collect(),
            verified: quick_cache::sync::Cache::new(4096),
        }
    }

    /// What the binary must discover in the background: one provider per extra issuer
    /// (its settings are built from `main`, with the issuer's URL and first audience).
    pub fn discoveries(&self, main: &OidcSettings) -> Vec<(OidcSettings, Arc<ProviderSlot>)> {
        self.extra
            .iter()
            .map(|x| {
                let settings = OidcSettings {
                    issuer_url: x.issuer.clone(),
                    client_id: x.audiences.first().cloned().unwrap_or_default(),
                    client_secret: String::new(),
                    redirect_url: main.redirect_url.clone(),
                    scopes: vec!["openid".into()],
                    timeout: main.timeout,
                    allow_unverified_email: main.allow_unverified_email,
                };
                (settings, Arc::clone(&x.slot))
            })
            .collect()
    }

    /// Whether bearer tokens are accepted at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Verifies a bearer token (`Absent` when bearer tokens are off). `main` is the
    /// configured provider; `claim_names` and `headers` shape the identity as for sessions.
    pub(crate) async fn verify(
        &self,
        token: &str,
        main: &ProviderSlot,
        now: u64,
        claim_names: &ClaimSettings,
        headers: &HeaderSettings,
    ) -> Outcome {
        if !self.enabled {
            return Outcome::Absent;
        }
        if let Some(p) = self.verified.get(token) {
            return if p.state.id_token_valid(now) {
                Outcome::Valid(p)
            } else {
                Outcome::Invalid("token expired".into())
            };
        }
        let Some(iss) = unverified_issuer(token) else {
            return Outcome::Invalid("not a JWT with an iss claim".into());
        };
        let main = main.get().filter(|p| p.settings().issuer_url == iss);
        let (provider, audiences) = if let Some(p) = main {
            (Arc::clone(p), &self.audiences)
        } else if iss == self.issuer {
            return Outcome::Unavailable;
        } else if let Some(x) = self.extra.iter().find(|x| x.issuer == iss) {
            match x.slot.get() {
                Some(p) => (Arc::clone(p), &x.audiences),
                None => return Outcome::Unavailable,
            }
        } else {
            return Outcome::Invalid("issuer not accepted".into());
        };
        if let Err(e) = provider.verify_bearer(token, audiences).await {
            return Outcome::Invalid(e.to_string());
        }
        let Some(claims) = Claims::from_verified_jwt(token) else {
            return Outcome::Invalid("claims did not parse".into());
        };
        if claims.email_verified() == Some(false) && !provider.settings().allow_unverified_email {
            return Outcome::Invalid("email_verified is false".into());
        }
        let Some(exp) = claims.expires_at() else {
            return Outcome::Invalid("no exp claim".into());
        };
        let session = SessionState {
            id: String::new(),
            id_token: token.to_owned(),
            id_token_expires_at: exp,
            refresh_token: None,
            created_at: now,
            expires_at: exp,
            grant: None,
        };
        let Some(prepared) = Prepared::new(session, claim_names, headers) else {
            return Outcome::Invalid("token lacks the username claim".into());
        };
        let prepared = Arc::new(prepared);
        self.verified
            .insert(token.to_owned(), Arc::clone(&prepared));
        Outcome::Valid(prepared)
    }
}

/// The token of `Authorization: Bearer <token>`, if the header has that form.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The `iss` claim of a JWT, read WITHOUT verification (to choose the verifier only).
fn unverified_issuer(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("iss")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn header_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert("authorization", "Bearer a.b.c".parse().unwrap());
        assert_eq!(bearer_token(&h), Some("a.b.c"));
        h.insert("authorization", "bearer   a.b.c ".parse().unwrap());
        assert_eq!(bearer_token(&h), Some("a.b.c"));
        h.insert("authorization", "Basic YTpi".parse().unwrap());
        assert_eq!(bearer_token(&h), None);
        h.insert("authorization", "Bearer ".parse().unwrap());
        assert_eq!(bearer_token(&h), None);
    }

    #[test]
    fn unverified_issuer_reads_only_well_formed_tokens() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let t = format!("{}.{}.sig", b64("{}"), b64(r#"{"iss":"https://i"}"#));
        assert_eq!(unverified_issuer(&t).as_deref(), Some("https://i"));
        assert_eq!(unverified_issuer("a.b"), None);
        assert_eq!(unverified_issuer(&format!("{t}.x")), None);
        assert_eq!(unverified_issuer("a.!!.c"), None);
        let no_iss = format!("{}.{}.sig", b64("{}"), b64(r#"{"sub":"x"}"#));
        assert_eq!(unverified_issuer(&no_iss), None);
    }
}

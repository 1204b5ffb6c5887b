//! Who a session belongs to, read from its verified ID token, and the header values
//! that tell an upstream (and nginx, through `auth_request`) who that is.

use http::{HeaderName, HeaderValue};
use portcullis_oidc::Claims;
use serde::Serialize;

/// Identity headers, in the names oauth2-proxy made familiar.
pub const USER: &str = "x-auth-request-user";
/// The user's email.
pub const EMAIL: &str = "x-auth-request-email";
/// Comma-separated groups.
pub const GROUPS: &str = "x-auth-request-groups";
/// `preferred_username`.
pub const PREFERRED_USERNAME: &str = "x-auth-request-preferred-username";

/// Claim names.
#[derive(Debug, Clone)]
pub struct ClaimSettings {
    /// The claim that names the user (`X-Auth-Request-User`); Kubernetes'
    /// `--oidc-username-claim` should match.
    pub username: String,
    /// The claim with group names; Kubernetes' `--oidc-groups-claim` should match.
    pub groups: String,
}

/// How the ID token is written into its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// `Bearer <id_token>`: what the Dashboard and the Kubernetes API server take.
    Bearer,
    /// The token alone: for consumers that add the scheme themselves (Headlamp's
    /// `-proxy-auth-token-header`).
    Raw,
}

/// Response headers of `/oauth2/auth`.
#[derive(Debug, Clone)]
pub struct HeaderSettings {
    /// The header that carries the ID token (default `Authorization`).
    pub token: String,
    /// Its value format.
    pub token_format: TokenFormat,
}

/// The identity forwarded to upstreams and shown by `/oauth2/userinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The value of the configured username claim (default `email`).
    pub user: String,
    /// `email`, if present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The configured groups claim.
    pub groups: Vec<String>,
    /// `preferred_username`, if present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
}

impl Identity {
    /// Builds the identity; `None` when the username claim is missing (a provider or
    /// configuration mistake that must not let an anonymous session through).
    pub fn from_claims(claims: &Claims, names: &ClaimSettings) -> Option<Self> {
        let user = claims.string(&names.username).filter(|u| !u.is_empty())?;
        Some(Self {
            user,
            email: claims.string("email"),
            groups: claims.string_list(&names.groups),
            preferred_username: claims.string("preferred_username"),
        })
    }
}

/// The token and identity headers for a session. Values that are not valid header
/// values (control characters from a strange provider) are left out rather than sent
/// broken.
pub fn identity_headers(
    settings: &HeaderSettings,
    id_token: &str,
    id: &Identity,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::with_capacity(5);
    let value = match settings.token_format {
        TokenFormat::Bearer => HeaderValue::try_from(format!("Bearer {id_token}")),
        TokenFormat::Raw => HeaderValue::try_from(id_token),
    };
    if let (Ok(name), Ok(value)) = (HeaderName::try_from(settings.token.as_str()), value) {
        out.push((name, value));
    }
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.push((HeaderName::from_static(name), v));
        }
    };
    put(USER, &id.user);
    if let Some(email) = &id.email {
        put(EMAIL, email);
    }
    if !id.groups.is_empty() {
        put(GROUPS, &id.groups.join(","));
    }
    if let Some(pu) = &id.preferred_username {
        put(PREFERRED_USERNAME, pu);
    }
    out
}

//! Who a session belongs to, read from its verified ID token.

use portcullis_oidc::Claims;
use serde::Serialize;

use crate::settings::ClaimSettings;

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

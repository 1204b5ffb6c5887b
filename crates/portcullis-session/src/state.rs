//! The session model: what a sealed session cookie (or, later, a store entry) holds.
//!
//! It keeps the tokens and the times that bound the session, and nothing derived from
//! them: identity (user, email, groups) is read from the verified ID token's claims, so a
//! user in many groups does not pay for them twice in cookie size (nginx rejects a
//! `Cookie` header above 8 KiB with its default `large_client_header_buffers`).

use serde::{Deserialize, Serialize};

/// One signed-in session. Field names are short on purpose: they are sealed into a
/// cookie on every login and refresh.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    /// The raw ID token (a JWT) as the provider issued it, verified when it was received.
    #[serde(rename = "it")]
    pub id_token: String,
    /// When the ID token expires (unix seconds, its `exp` claim). It is never forwarded
    /// after this instant.
    #[serde(rename = "ie")]
    pub id_token_expires_at: u64,
    /// The refresh token, when the provider issued one (`offline_access`).
    #[serde(rename = "rt", default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the user signed in (unix seconds).
    #[serde(rename = "ca")]
    pub created_at: u64,
    /// Absolute end of the session (unix seconds): no refresh extends it.
    #[serde(rename = "ea")]
    pub expires_at: u64,
}

impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are secrets: show only their presence.
        f.debug_struct("SessionState")
            .field("id_token", &"<redacted>")
            .field("id_token_expires_at", &self.id_token_expires_at)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl SessionState {
    /// Whether the session itself is over at `now` (unix seconds).
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// Whether the ID token may still be forwarded at `now` (unix seconds).
    pub fn id_token_valid(&self, now: u64) -> bool {
        now < self.id_token_expires_at
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn debug_hides_tokens() {
        let s = SessionState {
            id_token: "secret.jwt.value".into(),
            id_token_expires_at: 10,
            refresh_token: Some("refresh-secret".into()),
            created_at: 1,
            expires_at: 20,
        };
        let d = format!("{s:?}");
        assert!(!d.contains("secret.jwt") && !d.contains("refresh-secret"));
        assert!(s.id_token_valid(9) && !s.id_token_valid(10));
        assert!(!s.is_expired(19) && s.is_expired(20));
    }
}

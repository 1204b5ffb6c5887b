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
    /// A random id, fixed at sign-in and kept across refreshes: the key of the session
    /// in a server-side store and of its refresh coordination.
    #[serde(rename = "id")]
    pub id: String,
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
    /// The provider grant this session shares with the user's other sessions (Redis
    /// store), or `None` when the session holds its own tokens (the cookie store, and
    /// Redis sessions created before grants were shared). Never sealed into a cookie.
    #[serde(skip)]
    pub grant: Option<GrantRef>,
}

/// Where a session's tokens live when they are shared: the grant's id and the sealed
/// bytes the tokens were read from, so that writing a refresh back can check that no
/// newer sign-in replaced the grant in between (compare-and-set).
#[derive(Clone, PartialEq, Eq)]
pub struct GrantRef {
    /// The grant's id: a hash of the provider's issuer and the user's `sub`.
    pub id: String,
    /// The sealed grant as read (empty for a grant about to be created).
    pub seen: std::sync::Arc<str>,
}

impl GrantRef {
    /// The grant of the user `sub` at `issuer`: one per user, whatever the device.
    pub fn for_user(issuer: &str, sub: &str) -> Self {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(issuer.as_bytes());
        h.update([0]);
        h.update(sub.as_bytes());
        let digest = h.finalize();
        Self {
            id: digest[..16].iter().map(|b| format!("{b:02x}")).collect(),
            seen: std::sync::Arc::from(""),
        }
    }
}

impl std::fmt::Debug for GrantRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantRef")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are secrets: show only their presence.
        f.debug_struct("SessionState")
            .field("id", &self.id)
            .field("id_token", &"<redacted>")
            .field("id_token_expires_at", &self.id_token_expires_at)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("grant", &self.grant)
            .finish()
    }
}

impl SessionState {
    /// Whether the session itself is over at `now` (unix seconds).
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// A new random session id (16 bytes, base64url).
    pub fn new_id() -> Result<String, crate::codec::CodecError> {
        crate::codec::random_token(16)
    }

    /// Whether the ID token should be refreshed at `now`: it expires within `before`
    /// seconds (or already has), and there is a refresh token to do it with.
    pub fn needs_refresh(&self, now: u64, before: u64) -> bool {
        self.refresh_token.is_some() && self.id_token_expires_at <= now.saturating_add(before)
    }

    /// The key refreshes of this session are coordinated under: its grant when it
    /// shares one (every session of the user refreshes it once), else its own id.
    pub fn refresh_key(&self) -> &str {
        self.grant.as_ref().map_or(&self.id, |g| &g.id)
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
            id: "sid".into(),
            id_token: "secret.jwt.value".into(),
            id_token_expires_at: 10,
            refresh_token: Some("refresh-secret".into()),
            created_at: 1,
            expires_at: 20,
            grant: None,
        };
        let d = format!("{s:?}");
        assert!(!d.contains("secret.jwt") && !d.contains("refresh-secret"));
        assert!(s.id_token_valid(9) && !s.id_token_valid(10));
        assert!(!s.is_expired(19) && s.is_expired(20));
        assert!(!s.needs_refresh(4, 5) && s.needs_refresh(5, 5) && s.needs_refresh(11, 0));
    }
}

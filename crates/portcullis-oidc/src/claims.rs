//! Claims of an ID token, read as a plain JSON object.
//!
//! `openidconnect` verifies tokens but models only the standard claims; the claims that
//! name users and groups are configurable (`oidc.username_claim`, `oidc.groups_claim`),
//! so after verification the payload is also kept as a JSON map.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The claims object of a JWT.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claims(pub Map<String, Value>);

impl Claims {
    /// Reads the payload of a compact JWT WITHOUT verifying it.
    ///
    /// Only for tokens this process verified when it received them (they are then kept
    /// inside a sealed session, which is authenticated): never call this on a token that
    /// came from a client.
    pub fn from_verified_jwt(token: &str) -> Option<Self> {
        let mut parts = token.split('.');
        let (_header, payload) = (parts.next()?, parts.next()?);
        let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        match serde_json::from_slice(&bytes).ok()? {
            Value::Object(map) => Some(Self(map)),
            _ => None,
        }
    }

    /// A claim as a string (numbers and booleans are rendered, other types are `None`).
    pub fn string(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A claim as a list of strings: an array of strings, or a single string.
    pub fn string_list(&self, name: &str) -> Vec<String> {
        match self.0.get(name) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    /// `exp` in unix seconds.
    pub fn expires_at(&self) -> Option<u64> {
        self.0.get("exp")?.as_u64()
    }

    /// `iat` (unix seconds): with `exp`, the token's lifetime as issued.
    pub fn issued_at(&self) -> Option<u64> {
        self.0.get("iat")?.as_u64()
    }

    /// `email_verified`; providers send a boolean, some a string.
    pub fn email_verified(&self) -> Option<bool> {
        match self.0.get("email_verified")? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn jwt(payload: &str) -> String {
        format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn reads_claims() {
        let c = Claims::from_verified_jwt(&jwt(
            r#"{"sub":"x","exp":12,"groups":["a","b"],"email_verified":"false","n":3}"#,
        ))
        .unwrap();
        assert_eq!(c.string("sub").as_deref(), Some("x"));
        assert_eq!(c.string("n").as_deref(), Some("3"));
        assert_eq!(c.string_list("groups"), ["a", "b"]);
        assert_eq!(c.string_list("sub"), ["x"]);
        assert_eq!(c.expires_at(), Some(12));
        assert_eq!(c.email_verified(), Some(false));
        assert!(Claims::from_verified_jwt("garbage").is_none());
        assert!(Claims::from_verified_jwt(&jwt("[1]")).is_none());
    }
}

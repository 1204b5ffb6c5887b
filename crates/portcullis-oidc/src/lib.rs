//! The OpenID Connect relying party.
//!
//! This crate owns every conversation with the identity provider (Dex in production):
//! discovery, the JWKS cache, the authorization URL (PKCE S256, state, nonce), the code
//! exchange, the refresh grant, and full ID-token verification. It returns plain values
//! ([`TokenSet`], [`Claims`]) and knows nothing of cookies or HTTP routing.
//!
//! The `openidconnect` crate does the security-critical parsing and verification
//! (metadata, JWKS, JWT signatures and claims); the token endpoint call is made here
//! directly so that its failures can be classified precisely (see [`OidcError`]).
//!
//! # Layout
//! - [`provider`]: [`Provider`], the discovered issuer and its operations.
//! - [`claims`]: reading claims from a token this process already verified.
//! - [`http_client`]: the reqwest client (ring-only rustls, no redirects, timeouts).

pub mod claims;
pub mod http_client;
pub mod provider;

pub use claims::Claims;
pub use provider::{AuthRequest, OidcError, OidcSettings, Provider, TokenSet};

//! Sessions and the sealed cookie envelope.
//!
//! This crate owns what a session *is* ([`SessionState`]), how it is sealed into an
//! opaque, authenticated string ([`codec`]), and how a long sealed value is split over
//! several cookies and joined again ([`chunk`]). It knows nothing of HTTP frameworks or
//! OpenID Connect, so the code where security bugs live can be tested and fuzzed alone.
//!
//! # Layout
//! - [`codec`]: the versioned AES-256-GCM envelope and the [`Keyring`] (current key seals,
//!   every configured key opens, so secrets rotate without logging anyone out).
//! - [`chunk`]: pure split/join of a value across `NAME`, or `NAME_0`, `NAME_1`, ….
//! - [`state`]: the session model.
//! - [`store`]: where sessions live: in the cookie itself, or in Redis behind a ticket.

pub mod chunk;
pub mod codec;
pub mod state;
pub mod store;

pub use codec::{CodecError, Key, KeyError, Keyring};
pub use state::{GrantRef, SessionState};

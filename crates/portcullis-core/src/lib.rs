//! The decision at the heart of Portcullis, with no HTTP framework around it: whose
//! session a request carries, whether it is still good, refreshing it, whether policy
//! admits its user, and what identity and token go upstream.
//!
//! The HTTP face (`portcullis-http`) reads a request, asks this crate, and writes the
//! answer; everything here reports outcomes as its own types ([`sessions::Lookup`],
//! [`authz::Denial`], [`redirect::RedirectError`], the [`observe`] enums), which the
//! face turns into statuses, headers, pages and metrics.
//!
//! # Layout (each module imports only those listed before it)
//! - [`observe`]: the [`observe::Observer`] the face implements to count our work.
//! - [`audit`]: the audit trail's events (`portcullis::audit`).
//! - [`identity`]: who a verified ID token names, and the identity headers' values.
//! - [`authz`]: policy (groups, emails, domains) and skip-auth rules.
//! - [`redirect`]: the ONE validator for `rd` targets.
//! - [`provider`]: the provider handle, discovered in the background.
//! - [`prepared`]: a session opened once, and the cache of them.
//! - [`refresh`]: the refresh single flight, in a process and across replicas.
//! - [`bearer`]: bearer-token verification (tokens become prepared sessions too).
//! - `signed_out`: cookie-store sessions this process saw signed out.
//! - [`sessions`]: [`Sessions`], the lookup every endpoint asks, and its outcomes.
//! - [`cli`]: kubectl sign-in: loopback redirects, PKCE, one-time codes, CLI sessions.
//! - [`device`]: device authorization (RFC 8628) on top of [`cli`].
//!
//! # Invariants owned here
//! - An expired ID token is never answered with ([`sessions::Lookup::TokenExpired`]).
//! - One refresh per session at a time; a refresh token is never replayed by us.
//! - A store or provider outage never ends a session; only a refusal does.
//! - Policy fails closed; skip rules match only the decoded path.
//! - A redirect target leaves only for a whitelisted host.

pub mod audit;
pub mod authz;
pub mod bearer;
pub mod cli;
pub mod device;
pub mod identity;
pub mod observe;
pub mod prepared;
pub mod provider;
pub mod redirect;
pub mod refresh;
pub mod sessions;
mod signed_out;

pub use sessions::{Lookup, SessionSettings, Sessions};

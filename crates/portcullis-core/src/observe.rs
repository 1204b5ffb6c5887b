//! What the decision reports about its own work, for the HTTP face to count.
//!
//! The core knows no metrics library: it calls an [`Observer`] with closed enums
//! (store operations, provider calls, refresh outcomes), and the HTTP crate's
//! Prometheus registry implements it. A test can pass [`Unobserved`].

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use portcullis_oidc::OidcError;
use portcullis_oidc::provider::JwksObserver;

/// Receives the core's timings and outcomes. Calls are cheap and synchronous: they
/// run on the request path.
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// A session-store operation finished (`failed`: it erred; "no such session" is
    /// an answer, not an error).
    fn store_op(&self, op: StoreOp, started: Instant, failed: bool);
    /// A provider call finished (`failed`: unreachable or unverifiable; a refusal is
    /// the provider answering and is not a failure).
    fn provider_call(&self, call: ProviderCall, started: Instant, failed: bool);
    /// How a refresh ended for one request.
    fn refresh(&self, outcome: RefreshOutcome);
    /// An audit event was written (`crate::audit`).
    fn audit(&self, event: AuditEvent, outcome: Outcome) {
        let _ = (event, outcome);
    }
}

/// An observer that records nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unobserved;

impl Observer for Unobserved {
    fn store_op(&self, _: StoreOp, _: Instant, _: bool) {}
    fn provider_call(&self, _: ProviderCall, _: Instant, _: bool) {}
    fn refresh(&self, _: RefreshOutcome) {}
}

/// Times a session-store operation and reports it.
pub async fn store<T, E>(
    observer: &dyn Observer,
    op: StoreOp,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = Instant::now();
    let result = call.await;
    observer.store_op(op, started, result.is_err());
    result
}

/// Times a provider call and reports it. Refusals (`invalid_grant`, a bad code, an
/// unverified email) are the provider answering, not failing.
pub async fn provider<T>(
    observer: &dyn Observer,
    call: ProviderCall,
    fut: impl Future<Output = Result<T, OidcError>>,
) -> Result<T, OidcError> {
    let started = Instant::now();
    let result = fut.await;
    let failed = matches!(
        &result,
        Err(e) if !matches!(e, OidcError::Rejected { .. } | OidcError::EmailNotVerified)
    );
    observer.provider_call(call, started, failed);
    result
}

/// A callback reporting key-set refetches, for `Provider::observe_jwks_fetches`.
pub fn jwks_observer(observer: Arc<dyn Observer>) -> JwksObserver {
    Box::new(move |started, failed| observer.provider_call(ProviderCall::Jwks, started, failed))
}

/// How a refresh ended for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// This request called the provider and got new tokens.
    Refreshed,
    /// Another request's (or replica's) refresh served this one.
    Joined,
    /// The provider refused the refresh token: the session ended.
    InvalidGrant,
    /// The provider could not be used; the session stays while its token is valid.
    ProviderError,
}

impl RefreshOutcome {
    /// Every outcome, in a fixed order.
    pub const ALL: [RefreshOutcome; 4] = [
        RefreshOutcome::Refreshed,
        RefreshOutcome::Joined,
        RefreshOutcome::InvalidGrant,
        RefreshOutcome::ProviderError,
    ];

    /// A stable name (metric label, log field).
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshOutcome::Refreshed => "refreshed",
            RefreshOutcome::Joined => "joined",
            RefreshOutcome::InvalidGrant => "invalid_grant",
            RefreshOutcome::ProviderError => "provider_error",
        }
    }
}

/// A session-store operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// Open a session.
    Load,
    /// Write a new session.
    Create,
    /// Write a refreshed session.
    Update,
    /// Delete a session.
    Delete,
    /// Readiness check.
    Ping,
    /// Take the cross-replica refresh lock.
    Lock,
}

impl StoreOp {
    /// Every operation, in a fixed order.
    pub const ALL: [StoreOp; 6] = [
        StoreOp::Load,
        StoreOp::Create,
        StoreOp::Update,
        StoreOp::Delete,
        StoreOp::Ping,
        StoreOp::Lock,
    ];

    /// A stable name (metric label, log field).
    pub fn as_str(self) -> &'static str {
        match self {
            StoreOp::Load => "load",
            StoreOp::Create => "create",
            StoreOp::Update => "update",
            StoreOp::Delete => "delete",
            StoreOp::Ping => "ping",
            StoreOp::Lock => "lock",
        }
    }
}

/// A call to the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderCall {
    /// Discovery (metadata and the first key set).
    Discovery,
    /// A key-set refetch (unknown `kid`).
    Jwks,
    /// The code exchange at sign-in (including ID-token verification).
    Token,
    /// A refresh-token grant.
    Refresh,
}

impl ProviderCall {
    /// Every call, in a fixed order.
    pub const ALL: [ProviderCall; 4] = [
        ProviderCall::Discovery,
        ProviderCall::Jwks,
        ProviderCall::Token,
        ProviderCall::Refresh,
    ];

    /// A stable name (metric label, log field).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderCall::Discovery => "discovery",
            ProviderCall::Jwks => "jwks",
            ProviderCall::Token => "token",
            ProviderCall::Refresh => "refresh",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    /// A browser sign-in completed (or was refused at the callback).
    SignIn,
    /// A session was signed out.
    SignOut,
    /// A refresh with the provider (the request that made it).
    Refresh,
    /// Policy refused a signed-in user (403).
    PolicyDenial,
    /// A CLI token was issued for a loopback code or a device approval (or refused).
    CliToken,
    /// A CLI refresh was refused (the CLI session ended).
    CliRefresh,
    /// A CLI ended its own session.
    CliLogout,
    /// A user approved or denied a device.
    DeviceDecision,
    /// A user code was refused for too many wrong entries.
    DeviceCodeEntry,
    /// An operator revoked sessions (`portcullis sessions revoke`).
    Revoke,
}

impl AuditEvent {
    /// Every event, in a fixed order (metric series).
    pub const ALL: [AuditEvent; 10] = [
        AuditEvent::SignIn,
        AuditEvent::SignOut,
        AuditEvent::Refresh,
        AuditEvent::PolicyDenial,
        AuditEvent::CliToken,
        AuditEvent::CliRefresh,
        AuditEvent::CliLogout,
        AuditEvent::DeviceDecision,
        AuditEvent::DeviceCodeEntry,
        AuditEvent::Revoke,
    ];

    /// Its stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::SignIn => "sign_in",
            AuditEvent::SignOut => "sign_out",
            AuditEvent::Refresh => "refresh",
            AuditEvent::PolicyDenial => "policy_denial",
            AuditEvent::CliToken => "cli_token",
            AuditEvent::CliRefresh => "cli_refresh",
            AuditEvent::CliLogout => "cli_logout",
            AuditEvent::DeviceDecision => "device_decision",
            AuditEvent::DeviceCodeEntry => "device_code_entry",
            AuditEvent::Revoke => "revoke",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done as asked.
    Success,
    /// Refused (by us, the provider or the user).
    Refused,
    /// Could not be done (a store or provider failure).
    Failed,
}

impl Outcome {
    /// Every outcome, in a fixed order.
    pub const ALL: [Outcome; 3] = [Outcome::Success, Outcome::Refused, Outcome::Failed];

    /// Its stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

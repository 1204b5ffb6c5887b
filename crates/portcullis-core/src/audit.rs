//! The audit trail: one structured event per security-relevant act (sign-in and
//! sign-out, a provider refresh and its refusal, a policy denial, a CLI token issued
//! or refused, a device approval, a revocation), on its own log target
//! [`TARGET`], and counted through [`Observer::audit`].
//!
//! The format is stable (documented in the README): message `audit`, fields `event`,
//! `outcome`, `user`, `session` (the first 16 hex digits of the session id's SHA-256,
//! never the id), `session_kind` (`browser`/`cli`), `client_addr`, `host` (the
//! protected or cluster host, where known), `request_id`, `detail`. Never a token.
//!
//! The request id and client address come from the request's [`RequestContext`],
//! which the HTTP edge sets for the whole request, so the core's own events (a
//! refresh) carry them too.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::observe::Observer;
pub use crate::observe::{AuditEvent, Outcome};
use crate::prepared::Prepared;

/// The log target of audit events (always enabled at `info` unless `RUST_LOG` says
/// otherwise).
pub const TARGET: &str = "portcullis::audit";

/// What the edge knows of the request an event happens in, and what the request
/// learns of its user. It is the request's logging context too: the binary's log
/// formatter writes its id and user on every line written while the request is
/// handled ([`current`]), so no tracing span is opened per request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request id (ours or a trusted proxy's).
    pub request_id: Arc<str>,
    /// The connection's peer.
    pub client_addr: Option<IpAddr>,
    /// The session the request carried, once one was found ([`note_session`]): a
    /// reference count, not a copy of the user.
    pub session: std::cell::RefCell<Option<Arc<Prepared>>>,
}

impl RequestContext {
    /// The context of a request with id `request_id` from `client_addr`.
    pub fn new(request_id: Arc<str>, client_addr: Option<IpAddr>) -> Self {
        Self {
            request_id,
            client_addr,
            session: std::cell::RefCell::new(None),
        }
    }

    /// `f` of the session's user, if a session was found.
    pub fn with_user<R>(&self, f: impl FnOnce(Option<&str>) -> R) -> R {
        match self.session.try_borrow() {
            Ok(session) => f(session.as_deref().map(|p| p.identity.user.as_str())),
            Err(_) => f(None),
        }
    }
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// `f` (a request's handling) with `context` available to its audit events and log
/// lines; after it finished, `take_value` on the pinned future gives the context back.
pub fn scope<F: Future>(
    context: RequestContext,
    f: F,
) -> tokio::task::futures::TaskLocalFuture<RequestContext, F> {
    CONTEXT.scope(context, f)
}

/// `f` run with `context` as the current request's (for a line written outside the
/// request's future: the load-shed answer, a caught panic, the access line).
pub fn sync_scope<R>(context: RequestContext, f: impl FnOnce() -> R) -> R {
    CONTEXT.sync_scope(context, f)
}

/// `f` of the current request's context, or `None` outside a request.
pub fn current<R>(f: impl FnOnce(&RequestContext) -> R) -> Option<R> {
    CONTEXT.try_with(f).ok()
}

/// Records the session the current request carries (a no-op outside a request).
pub fn note_session(prepared: &Arc<Prepared>) {
    let _ = CONTEXT.try_with(|c| {
        if let Ok(mut slot) = c.session.try_borrow_mut() {
            *slot = Some(Arc::clone(prepared));
        }
    });
}

/// The first 16 hex digits of a session id's SHA-256: enough to match the lines of
/// one session (and `sessions list`), useless to act as it.
pub fn session_hash(id: &str) -> String {
    Sha256::digest(id.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One audit event, built then [`emit`](Event::emit)ted.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    event: AuditEvent,
    outcome: Outcome,
    user: &'a str,
    session: Option<&'a str>,
    session_kind: &'static str,
    host: &'a str,
    detail: &'a str,
}

impl<'a> Event<'a> {
    /// An event with nothing known yet but what and how.
    pub fn new(event: AuditEvent, outcome: Outcome) -> Self {
        Self {
            event,
            outcome,
            user: "",
            session: None,
            session_kind: "",
            host: "",
            detail: "",
        }
    }

    /// Whose.
    pub fn user(mut self, user: &'a str) -> Self {
        self.user = user;
        self
    }

    /// Which session (its id; only its hash is written).
    pub fn session(mut self, id: &'a str) -> Self {
        self.session = Some(id);
        self
    }

    /// The session is a browser's (`browser`) or a CLI's (`cli`).
    pub fn kind(mut self, kind: &'static str) -> Self {
        self.session_kind = kind;
        self
    }

    /// The protected or cluster host.
    pub fn host(mut self, host: &'a str) -> Self {
        self.host = host;
        self
    }

    /// A short reason or detail (never a secret).
    pub fn detail(mut self, detail: &'a str) -> Self {
        self.detail = detail;
        self
    }

    /// Writes the event and counts it.
    pub fn emit(self, observer: &dyn Observer) {
        observer.audit(self.event, self.outcome);
        let (request_id, client_addr) = CONTEXT
            .try_with(|c| (c.request_id.clone(), c.client_addr))
            .unwrap_or_else(|_| (Arc::from(""), None));
        let session = self.session.map(session_hash).unwrap_or_default();
        let client_addr = client_addr.map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(
            target: TARGET,
            event = self.event.as_str(),
            outcome = self.outcome.as_str(),
            user = self.user,
            session,
            session_kind = self.session_kind,
            client_addr,
            host = self.host,
            request_id = &*request_id,
            detail = self.detail,
            "audit"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_hashes_are_short_stable_and_not_the_id() {
        let h = session_hash("abc");
        assert_eq!(h.len(), 16);
        assert_eq!(h, session_hash("abc"));
        assert_ne!(h, session_hash("abd"));
        assert!(!h.contains("abc"));
    }

    #[test]
    fn names_are_distinct() {
        let names: std::collections::HashSet<_> =
            AuditEvent::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(names.len(), AuditEvent::ALL.len());
    }
}

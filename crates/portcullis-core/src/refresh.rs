//! Refreshing ID tokens without ever logging anyone out.
//!
//! Dex rotates the refresh token on every use: the old one stops working the moment
//! the new one is issued. So for one session there must be exactly ONE refresh at a
//! time, and every request that needed it must get its result — including requests
//! that arrive a little later still carrying the pre-refresh cookie.
//!
//! - **In a process** ([`Refresher`]): requests are grouped by *(grant or session id,
//!   hash of the refresh token)*: all sessions of a user that share a grant (Redis
//!   store) refresh it once. The first runs the refresh; the others await the same
//!   `OnceCell`. The outcome is kept for `refresh_grace`, so a request with the old
//!   cookie is served the new session (and its `Set-Cookie`) instead of replaying the
//!   rotated token.
//! - **Across replicas** (Redis store): the refresher takes the session's Redis lock
//!   (lease renewed while the provider call runs), the grant's when it shares one. A replica that finds the lock taken
//!   polls the stored session until the refresh token changes (someone refreshed) or
//!   the lock is free (then it tries again). Whoever gets the lock checks the stored
//!   session again first, so a refresh that already happened is never repeated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_oidc::OidcError;
use portcullis_session::store::{AnyStore, GrantEnd, RedisStore, SessionStore};
use portcullis_session::{GrantRef, SessionState};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::audit::Event;
use crate::observe::{
    self, AuditEvent, Observer, Outcome as AuditOutcome, ProviderCall, RefreshOutcome, StoreOp,
};
use crate::provider::ProviderSlot;

/// Lease of the cross-replica lock (renewed while held).
const LOCK_LEASE: Duration = Duration::from_secs(6);
/// How often a waiting replica looks at the stored session.
const POLL: Duration = Duration::from_millis(50);
/// How long a failed attempt (provider down) is remembered, so a burst of requests
/// does not hammer a provider that is already struggling.
const FAILURE_MEMORY: Duration = Duration::from_secs(5);

/// When and how patiently sessions are refreshed.
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    /// Refresh the ID token when it expires within this (or has expired).
    pub before: Duration,
    /// How long a refresh's result is kept for requests still carrying the
    /// pre-refresh cookie (they are served the new session instead of replaying the
    /// rotated refresh token).
    pub grace: Duration,
    /// How long a request waits for another replica's refresh before giving up (and
    /// serving the current token while it is valid).
    pub wait: Duration,
}

/// What one refresh works with, lent by the caller for its duration.
#[derive(Clone, Copy)]
pub(crate) struct RefreshDeps<'a> {
    pub(crate) store: &'a AnyStore,
    pub(crate) provider: &'a ProviderSlot,
    pub(crate) observer: &'a dyn Observer,
    pub(crate) settings: &'a RefreshSettings,
}

/// How one refresh ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// New tokens; `cookie` is the cookie value to send when it changed (cookie
    /// store), `None` when it did not (a Redis ticket stays the same).
    Refreshed {
        /// The refreshed session.
        session: Box<SessionState>,
        /// The new cookie value, if it changed.
        cookie: Option<String>,
    },
    /// The provider refused the refresh token (revoked, rotated away, user disabled):
    /// the session is over and has been deleted.
    Revoked,
    /// The provider (or the store) could not be used right now: keep the current
    /// session while its ID token is valid.
    Unavailable(String),
}

struct Slot {
    created: Instant,
    cell: Arc<OnceCell<Outcome>>,
}

/// Per-process single flight and recent outcomes.
#[derive(Default)]
pub struct Refresher {
    slots: Mutex<HashMap<String, Slot>>,
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher").finish_non_exhaustive()
    }
}

fn slot_key(session: &SessionState) -> String {
    let rt = session.refresh_token.as_deref().unwrap_or_default();
    let digest = Sha256::digest(rt.as_bytes());
    let hash: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}:{hash}", session.refresh_key())
}

impl Refresher {
    /// Refreshes `session` (loaded from `cookie`), or joins the refresh already under
    /// way for it, or reuses one that just finished.
    pub(crate) async fn refresh(
        &self,
        deps: RefreshDeps<'_>,
        cookie: &str,
        session: &SessionState,
    ) -> Outcome {
        let key = slot_key(session);
        let cell = {
            let mut slots = match self.slots.lock() {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            let grace = deps.settings.grace;
            slots.retain(|_, s| {
                let age = s.created.elapsed();
                match s.cell.get() {
                    None => true, // in flight
                    Some(Outcome::Unavailable(_)) => age < FAILURE_MEMORY,
                    Some(_) => age < grace,
                }
            });
            Arc::clone(
                &slots
                    .entry(key)
                    .or_insert_with(|| Slot {
                        created: Instant::now(),
                        cell: Arc::new(OnceCell::new()),
                    })
                    .cell,
            )
        };
        let mut ran = false;
        let outcome = cell
            .get_or_init(|| {
                ran = true;
                run(deps, cookie, session)
            })
            .await
            .clone();
        if !ran {
            deps.observer.refresh(RefreshOutcome::Joined);
        }
        outcome
    }
}

/// One refresh, coordinated through the store when it is shared.
async fn run(deps: RefreshDeps<'_>, cookie: &str, session: &SessionState) -> Outcome {
    match deps.store {
        AnyStore::Cookie(_) => call_provider(deps, cookie, session).await,
        AnyStore::Redis(redis) => {
            let deadline = Instant::now() + deps.settings.wait;
            loop {
                let lock = match observe::store(
                    deps.observer,
                    StoreOp::Lock,
                    redis.try_lock(&lock_name(session), LOCK_LEASE),
                )
                .await
                {
                    Ok(l) => l,
                    Err(e) => return Outcome::Unavailable(e.to_string()),
                };
                if let Some(mut lock) = lock {
                    // Someone may have refreshed between our load and our lock.
                    let current =
                        match observe::store(deps.observer, StoreOp::Load, deps.store.load(cookie))
                            .await
                        {
                            Ok(Some(c)) => c,
                            Ok(None) => {
                                lock.release().await;
                                return Outcome::Revoked;
                            }
                            Err(e) => {
                                lock.release().await;
                                return Outcome::Unavailable(e.to_string());
                            }
                        };
                    if current.refresh_token != session.refresh_token {
                        lock.release().await;
                        return refreshed_elsewhere(deps, current);
                    }
                    lock.keep_alive();
                    let outcome = call_provider(deps, cookie, &current).await;
                    lock.release().await;
                    return outcome;
                }
                // Another replica is refreshing: wait for its result.
                tokio::time::sleep(POLL).await;
                match observe::store(deps.observer, StoreOp::Load, deps.store.load(cookie)).await {
                    Ok(Some(current)) if current.refresh_token != session.refresh_token => {
                        return refreshed_elsewhere(deps, current);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return Outcome::Revoked,
                    Err(e) => return Outcome::Unavailable(e.to_string()),
                }
                if Instant::now() > deadline {
                    return Outcome::Unavailable(
                        "timed out waiting for another replica's refresh".into(),
                    );
                }
            }
        }
    }
}

/// The Redis lock a refresh of `session` takes: its grant's when it shares one.
fn lock_name(session: &SessionState) -> String {
    match &session.grant {
        Some(g) => format!("g:{}", g.id),
        None => session.id.clone(),
    }
}

fn refreshed_elsewhere(deps: RefreshDeps<'_>, current: SessionState) -> Outcome {
    deps.observer.refresh(RefreshOutcome::Joined);
    Outcome::Refreshed {
        session: Box::new(current),
        cookie: None,
    }
}

/// Whether a token-endpoint refusal means the refresh token is dead. Dex answers a
/// replayed, rotated-away token with `invalid_request`; RFC 6749 §5.2 says
/// `invalid_grant`. Anything else (`invalid_client`…) is a configuration or provider
/// problem that must not log users out.
fn is_fatal(error: &str) -> bool {
    matches!(error, "invalid_grant" | "invalid_request")
}

async fn call_provider(deps: RefreshDeps<'_>, cookie: &str, session: &SessionState) -> Outcome {
    let Some(provider) = deps.provider.get() else {
        deps.observer.refresh(RefreshOutcome::ProviderError);
        return Outcome::Unavailable("provider not discovered yet".into());
    };
    let Some(refresh_token) = session.refresh_token.as_deref() else {
        return Outcome::Unavailable("session has no refresh token".into());
    };
    match observe::provider(
        deps.observer,
        ProviderCall::Refresh,
        provider.refresh(refresh_token),
    )
    .await
    {
        Ok(tokens) => {
            deps.observer.refresh(RefreshOutcome::Refreshed);
            Event::new(AuditEvent::Refresh, AuditOutcome::Success)
                .session(&session.id)
                .emit(deps.observer);
            let new = SessionState {
                id: session.id.clone(),
                id_token: tokens.id_token,
                id_token_expires_at: tokens.id_token_expires_at,
                refresh_token: tokens.refresh_token,
                created_at: session.created_at,
                expires_at: session.expires_at,
                grant: session.grant.clone(),
            };
            tracing::info!(
                id_token_expires_in = new
                    .id_token_expires_at
                    .saturating_sub(portcullis_oidc::provider::unix_now()),
                "session refreshed"
            );
            match observe::store(
                deps.observer,
                StoreOp::Update,
                deps.store.update(cookie, &new),
            )
            .await
            {
                Ok(new_cookie) => Outcome::Refreshed {
                    cookie: (new_cookie != cookie).then_some(new_cookie),
                    session: Box::new(new),
                },
                Err(e) => {
                    // The provider rotated the token but we could not keep it: the
                    // session cannot be refreshed again. Say so loudly.
                    tracing::error!(error = %e, "refreshed tokens could not be stored; the session will end when its ID token expires");
                    Outcome::Refreshed {
                        session: Box::new(new),
                        cookie: None,
                    }
                }
            }
        }
        Err(OidcError::Rejected { error, .. }) if is_fatal(&error) => {
            if let (AnyStore::Redis(redis), Some(grant)) = (deps.store, &session.grant) {
                return refused_grant(deps, redis, grant, cookie, &error).await;
            }
            deps.observer.refresh(RefreshOutcome::InvalidGrant);
            Event::new(AuditEvent::Refresh, AuditOutcome::Refused)
                .session(&session.id)
                .detail(&error)
                .emit(deps.observer);
            if let Err(e) =
                observe::store(deps.observer, StoreOp::Delete, deps.store.delete(cookie)).await
            {
                tracing::warn!(error = %e, "could not delete a session whose refresh was refused");
            }
            tracing::info!(oauth_error = %error, "refresh token refused by the provider; session ended");
            Outcome::Revoked
        }
        Err(e) => {
            deps.observer.refresh(RefreshOutcome::ProviderError);
            Event::new(AuditEvent::Refresh, AuditOutcome::Failed)
                .session(&session.id)
                .detail("provider unavailable")
                .emit(deps.observer);
            tracing::warn!(error = %e, "refresh failed; the session stays usable while its ID token is valid");
            Outcome::Unavailable(e.to_string())
        }
    }
}

/// The provider refused a shared grant's refresh token. If a newer sign-in replaced
/// the grant meanwhile (Dex revoked our token when it issued that sign-in's), the
/// sessions move to the new grant; otherwise the grant ends with every session on it.
async fn refused_grant(
    deps: RefreshDeps<'_>,
    redis: &RedisStore,
    grant: &GrantRef,
    cookie: &str,
    error: &str,
) -> Outcome {
    match observe::store(deps.observer, StoreOp::Delete, redis.end_grant(grant)).await {
        Ok(GrantEnd::Ended(sessions)) => {
            deps.observer.refresh(RefreshOutcome::InvalidGrant);
            Event::new(AuditEvent::Refresh, AuditOutcome::Refused)
                .detail("grant ended")
                .emit(deps.observer);
            tracing::info!(oauth_error = %error, sessions, "refresh token refused by the provider; the user's grant and its sessions ended");
            Outcome::Revoked
        }
        Ok(GrantEnd::Replaced) => {
            match observe::store(deps.observer, StoreOp::Load, deps.store.load(cookie)).await {
                Ok(Some(current)) => {
                    tracing::info!(
                        "refresh token replaced by a newer sign-in of the same user; using its grant"
                    );
                    refreshed_elsewhere(deps, current)
                }
                Ok(None) => Outcome::Revoked,
                Err(e) => Outcome::Unavailable(e.to_string()),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not end a grant whose refresh was refused");
            Outcome::Unavailable(e.to_string())
        }
    }
}

//! The sessions requests carry: finding one, refreshing it when its ID token is about
//! to expire, and creating and ending them. [`Sessions`] is what the HTTP face asks;
//! its answer is a [`Lookup`], which the face turns into a status.

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use portcullis_oidc::Claims;
use portcullis_session::store::{AnyStore, Located, RedisStore, SessionStore, StoreError};
use portcullis_session::{CodecError, GrantRef, SessionState};

use crate::bearer::{self, Bearer, BearerSettings};
use crate::identity::{ClaimSettings, HeaderSettings};
use crate::observe::{self, Observer, StoreOp};
use crate::prepared::{Cached, Prepared, PreparedCache};
use crate::provider::ProviderSlot;
use crate::refresh::{Outcome, RefreshDeps, RefreshSettings, Refresher};
use crate::signed_out::EndedSessions;

/// What sessions are made of and how long they last.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Which ID-token claims name the user and their groups.
    pub claims: ClaimSettings,
    /// Names and format of the headers a session answers with.
    pub headers: HeaderSettings,
    /// Absolute session lifetime: a user signs in again after this, whatever refreshes do.
    pub lifetime: Duration,
    /// When and how patiently ID tokens are refreshed.
    pub refresh: RefreshSettings,
    /// Bearer-token authentication.
    pub bearer: BearerSettings,
}

/// The outcome of looking for a session. `Valid` passes; `StoreDown` is a 503 (never
/// "logged out", so never a login loop); everything else means "no session" (401).
#[derive(Debug)]
pub enum Lookup {
    /// No session cookie.
    Missing,
    /// A cookie was there but did not open (garbage, tampered, unknown key).
    Undecodable(CodecError),
    /// The cookie opened but the store no longer has the session (signed out, revoked).
    Gone,
    /// The absolute session lifetime is over.
    Expired,
    /// The provider refused the refresh token: the session was ended.
    Revoked,
    /// The ID token expired and could not be refreshed.
    TokenExpired,
    /// The token lacks the configured username claim.
    NoIdentity,
    /// The session store failed.
    StoreDown(String),
    /// A bearer token that did not verify (reason for logs).
    BadBearer(String),
    /// A bearer token whose issuer's keys are not available yet.
    BearerUnavailable,
    /// A usable session.
    Valid(Box<Loaded>),
}

/// A usable session.
#[derive(Debug)]
pub struct Loaded {
    /// The session, its identity and headers (refreshed if it needed to be).
    pub prepared: Arc<Prepared>,
    /// A new cookie value to send back (the cookie store after a refresh).
    pub set_cookie: Option<String>,
}

impl Lookup {
    /// A short, stable reason for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Lookup::Missing => "no session cookie",
            Lookup::Undecodable(CodecError::UnknownKey) => {
                "session cookie sealed with an unknown key"
            }
            Lookup::Undecodable(_) => "session cookie did not open",
            Lookup::Gone => "session no longer exists (signed out or revoked)",
            Lookup::Expired => "session expired",
            Lookup::Revoked => "refresh token refused; session ended",
            Lookup::TokenExpired => "ID token expired",
            Lookup::NoIdentity => "ID token lacks the username claim",
            Lookup::StoreDown(_) => "session store unavailable",
            Lookup::BadBearer(_) => "bearer token rejected",
            Lookup::BearerUnavailable => "bearer token issuer not discovered yet",
            Lookup::Valid(_) => "valid",
        }
    }

    /// Whether the response should expire the session cookies: the session is known to
    /// be over. A cookie that merely does not open is left alone: during a rolling key
    /// rotation another replica may still open it ("loses nothing").
    pub fn clears_cookie(&self) -> bool {
        matches!(self, Lookup::Gone | Lookup::Expired | Lookup::Revoked)
    }
}

/// The sessions of this process: the store they live in, the prepared-session cache,
/// the refresh single flight, the provider and the bearer-token verifier.
#[derive(Debug)]
pub struct Sessions {
    settings: SessionSettings,
    store: AnyStore,
    refresher: Refresher,
    prepared: PreparedCache,
    provider: ProviderSlot,
    bearer: Bearer,
    observer: Arc<dyn Observer>,
    warned_short_tokens: AtomicBool,
    ended: EndedSessions,
}

impl Sessions {
    /// Sessions in `store`, reporting to `observer`; the provider slot starts empty
    /// (filled by discovery).
    pub fn new(settings: SessionSettings, store: AnyStore, observer: Arc<dyn Observer>) -> Self {
        Self {
            bearer: Bearer::new(&settings.bearer),
            settings,
            store,
            refresher: Refresher::default(),
            prepared: PreparedCache::default(),
            provider: ProviderSlot::default(),
            observer,
            warned_short_tokens: AtomicBool::new(false),
            ended: EndedSessions::default(),
        }
    }

    /// The settings sessions run with.
    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    /// The store (for the operator's `sessions` commands).
    pub fn store(&self) -> &AnyStore {
        &self.store
    }

    /// The provider slot, filled once discovery succeeds.
    pub fn provider(&self) -> &ProviderSlot {
        &self.provider
    }

    /// The bearer-token verifier (its extra issuers are discovered by the binary).
    pub fn bearer(&self) -> &Bearer {
        &self.bearer
    }

    /// Where timings and outcomes are reported.
    pub fn observer(&self) -> &Arc<dyn Observer> {
        &self.observer
    }

    /// Authenticates a request: its bearer token when bearer tokens are enabled and it
    /// carries one (then the cookie is not looked at: an invalid token is a 401, never
    /// a fallback), else its session cookie value (joined from chunks).
    pub async fn authenticate(
        &self,
        bearer_token: Option<&str>,
        cookie: Option<&str>,
        now: u64,
    ) -> Lookup {
        // Without a bearer token (the common case) nothing is verified or allocated.
        let Some(token) = bearer_token.filter(|_| self.bearer.enabled()) else {
            return self.load(cookie, now).await;
        };
        let outcome = Box::pin(self.bearer.verify(
            token,
            &self.provider,
            now,
            &self.settings.claims,
            &self.settings.headers,
        ))
        .await;
        match outcome {
            bearer::Outcome::Absent => self.load(cookie, now).await,
            bearer::Outcome::Valid(prepared) => {
                crate::audit::note_session(&prepared);
                Lookup::Valid(Box::new(Loaded {
                    prepared,
                    set_cookie: None,
                }))
            }
            bearer::Outcome::Invalid(reason) => Lookup::BadBearer(reason),
            bearer::Outcome::Unavailable => Lookup::BearerUnavailable,
        }
    }

    /// Finds, opens, refreshes if due, and checks the session of a cookie at `now`.
    pub async fn load(&self, cookie: Option<&str>, now: u64) -> Lookup {
        let Some(cookie) = cookie else {
            return Lookup::Missing;
        };
        let cached = self.prepared.get(cookie);
        // The paths that wait on something (opening a cookie the cache lacks, Redis,
        // a refresh) run boxed: their state machines are large, and unboxed they made
        // every request's future several KB, copied on each move (about 0.4 µs of
        // the cached path, measured).
        let opened = match &self.store {
            AnyStore::Cookie(_) => match cached {
                Some(c) => Ok(c.prepared),
                None => Box::pin(self.open_cookie(cookie)).await,
            },
            AnyStore::Redis(redis) => Box::pin(self.open_redis(redis, cookie, cached)).await,
        };
        let mut prepared = match opened {
            Ok(p) => p,
            Err(lookup) => {
                if matches!(lookup, Lookup::Gone) {
                    self.prepared.remove(cookie);
                }
                return lookup;
            }
        };
        if prepared.state.is_expired(now) {
            return Lookup::Expired;
        }
        if self.ended.contains(&prepared.state.id, now) {
            return Lookup::Gone;
        }
        let mut set_cookie = None;
        let before = self.settings.refresh.before.as_secs();
        if prepared
            .state
            .needs_refresh(now, prepared.refresh_window(before))
        {
            let refresh = self
                .refresher
                .refresh(self.refresh_deps(), cookie, &prepared.state);
            match Box::pin(refresh).await {
                Outcome::Refreshed {
                    session: new,
                    cookie: new_cookie,
                } => {
                    // The refresh may have run for another session on the same grant:
                    // take its tokens, keep this session's own id and bounds.
                    let new = SessionState {
                        id: prepared.state.id.clone(),
                        created_at: prepared.state.created_at,
                        expires_at: prepared.state.expires_at,
                        ..*new
                    };
                    let Some(p) = self.prepare(new) else {
                        return Lookup::NoIdentity;
                    };
                    prepared = Arc::new(p);
                    // A new cookie value is a new cookie-store session. (A Redis ticket
                    // stays; its entry is renewed when the next fetch shows new bytes.)
                    if let Some(c) = &new_cookie {
                        self.prepared.insert(
                            c.clone(),
                            Cached {
                                prepared: Arc::clone(&prepared),
                                redis: None,
                            },
                        );
                    }
                    set_cookie = new_cookie;
                    // Signed out while the refresh ran: the sign-out wins.
                    if self.ended.contains(&prepared.state.id, now) {
                        return Lookup::Gone;
                    }
                }
                Outcome::Revoked => return Lookup::Revoked,
                // Logged where it happened; the current token serves while it is valid.
                Outcome::Unavailable(_) => {}
            }
        }
        if !prepared.state.id_token_valid(now) {
            return Lookup::TokenExpired;
        }
        crate::audit::note_session(&prepared);
        Lookup::Valid(Box::new(Loaded {
            prepared,
            set_cookie,
        }))
    }

    /// Stores a new session of `user`; returns the cookie value that refers to it.
    ///
    /// With the Redis store the session's tokens become the user's grant (keyed by the
    /// token's `iss` and `sub`), replacing the grant of the user's earlier sign-ins:
    /// the provider (Dex) has just revoked that grant's refresh token anyway.
    pub async fn create(&self, session: &SessionState, user: &str) -> Result<String, StoreError> {
        let mut session = session.clone();
        let claims = Claims::from_verified_jwt(&session.id_token);
        // A session made from another (a CLI sign-in) keeps the grant it joins.
        if matches!(self.store, AnyStore::Redis(_)) && session.grant.is_none() {
            session.grant = claims
                .as_ref()
                .and_then(|c| Some(GrantRef::for_user(&c.string("iss")?, &c.string("sub")?)));
        }
        if let Some(lifetime) = claims
            .as_ref()
            .and_then(|c| Some(c.expires_at()?.saturating_sub(c.issued_at()?)))
        {
            self.warn_if_tokens_are_short(lifetime);
        }
        observe::store(
            &*self.observer,
            StoreOp::Create,
            self.store.create(&session, user),
        )
        .await
    }

    /// Says once per process that the provider's ID tokens (`lifetime` seconds) are
    /// shorter than `refresh_before`, and what is done instead.
    fn warn_if_tokens_are_short(&self, lifetime: u64) {
        let before = self.settings.refresh.before.as_secs();
        if lifetime < before && !self.warned_short_tokens.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                id_token_lifetime_s = lifetime,
                refresh_before_s = before,
                refresh_at_remaining_s = lifetime / 3,
                "the provider's ID tokens live less than session.refresh_before; sessions are refreshed when a third of a token's lifetime remains"
            );
        }
    }

    /// Ends the session a cookie value refers to (sign-out, a new sign-in).
    ///
    /// The Redis store deletes it, and a refresh racing the sign-out cannot bring it
    /// back (updates write only to what exists). A cookie-store session lives in the
    /// cookie, so this process also remembers its id until its end: a request that
    /// still carries it (sent before the sign-out, or a refresh's `Set-Cookie` that
    /// lands after it) is refused here. Other replicas do not know (see README).
    ///
    /// Answers whose session it was when this process knows without asking anyone
    /// (it served the session, or the cookie holds it): for the audit trail, with no
    /// store fetch or refresh on the way out.
    pub async fn end(&self, cookie: &str) -> Result<Option<Arc<Prepared>>, StoreError> {
        let mut known = self.prepared.get(cookie).map(|c| c.prepared);
        if let AnyStore::Cookie(store) = &self.store
            && let Ok(Some(session)) = store.load(cookie).await
        {
            self.ended.insert(&session.id, session.expires_at);
            if known.is_none() {
                known = self.prepare(session).map(Arc::new);
            }
        }
        let result =
            observe::store(&*self.observer, StoreOp::Delete, self.store.delete(cookie)).await;
        self.prepared.remove(cookie);
        result.map(|()| known)
    }

    /// Whether the store can serve requests (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        observe::store(&*self.observer, StoreOp::Ping, self.store.ping()).await
    }

    fn prepare(&self, session: SessionState) -> Option<Prepared> {
        Prepared::new(session, &self.settings.claims, &self.settings.headers)
    }

    fn refresh_deps(&self) -> RefreshDeps<'_> {
        RefreshDeps {
            store: &self.store,
            provider: &self.provider,
            observer: &*self.observer,
            settings: &self.settings.refresh,
        }
    }

    /// Opens and prepares a cookie-store session (not in the cache yet).
    async fn open_cookie(&self, cookie: &str) -> Result<Arc<Prepared>, Lookup> {
        let session =
            match observe::store(&*self.observer, StoreOp::Load, self.store.load(cookie)).await {
                Ok(Some(s)) => s,
                Ok(None) => return Err(Lookup::Gone),
                Err(e) => return Err(store_error(e)),
            };
        let prepared = Arc::new(self.prepare(session).ok_or(Lookup::NoIdentity)?);
        self.prepared.insert(
            cookie.to_owned(),
            Cached {
                prepared: Arc::clone(&prepared),
                redis: None,
            },
        );
        Ok(prepared)
    }

    /// Fetches a Redis session (every request: one `HGET`) and reuses the cached
    /// preparation when the stored bytes are the ones it was made from.
    async fn open_redis(
        &self,
        redis: &RedisStore,
        cookie: &str,
        cached: Option<Cached>,
    ) -> Result<Arc<Prepared>, Lookup> {
        let (at, known): (Arc<Located>, _) = match cached.and_then(|c| Some((c.redis?, c.prepared)))
        {
            Some(((at, sealed), prepared)) => (at, Some((sealed, prepared))),
            None => (Arc::new(redis.locate(cookie).map_err(store_error)?), None),
        };
        let stored = match observe::store(&*self.observer, StoreOp::Load, redis.fetch(&at)).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(Lookup::Gone),
            Err(e) => return Err(store_error(e)),
        };
        if let Some((known_stored, prepared)) = known
            && *known_stored == stored
        {
            return Ok(prepared);
        }
        let session = redis.open(&at, &stored).map_err(store_error)?;
        let prepared = Arc::new(self.prepare(session).ok_or(Lookup::NoIdentity)?);
        self.prepared.insert(
            cookie.to_owned(),
            Cached {
                prepared: Arc::clone(&prepared),
                redis: Some((at, Arc::new(stored))),
            },
        );
        Ok(prepared)
    }
}

fn store_error(e: StoreError) -> Lookup {
    match e {
        StoreError::Undecodable(e) => Lookup::Undecodable(e),
        e => Lookup::StoreDown(e.to_string()),
    }
}

#[cfg(test)]
mod tests;

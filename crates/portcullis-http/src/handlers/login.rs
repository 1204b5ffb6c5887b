//! `/oauth2/start` and `/oauth2/callback`: the authorization-code flow.
//!
//! Each login attempt has its own CSRF cookie (`NAME_csrf_<state prefix>`) holding the
//! sealed state, nonce, PKCE verifier and validated `rd`, so several tabs can log in at
//! once without breaking each other, and nothing about the attempt lives on the server.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use portcullis_core::audit::{AuditEvent, Event, Outcome};
use portcullis_core::identity::Identity;
use portcullis_core::observe::ProviderCall;
use portcullis_oidc::OidcError;
use portcullis_oidc::provider::unix_now;
use portcullis_session::SessionState;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::answer::{append_set_cookies as append_cookies, redirect, safe_redirect};
use crate::cookies::{CookieWriter, RequestCookies, csrf_cookie_name};
use crate::metrics::LoginFailure;
use crate::pages::error_page;
use crate::request::{Ctx, query_param, session_cookie};
use crate::state::AppState;

/// What one login attempt must remember until the callback (sealed in its cookie).
#[derive(Serialize, Deserialize)]
struct LoginAttempt {
    /// OAuth `state`.
    s: String,
    /// OIDC `nonce`.
    n: String,
    /// PKCE verifier.
    v: String,
    /// Validated redirect target.
    rd: String,
    /// Expiry (unix seconds); the cookie's Max-Age is only advisory.
    exp: u64,
}

fn retry_link(rd: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    format!("/oauth2/start?rd={encoded}")
}

/// Deletes the session the request still carries, if any (best effort: a store outage
/// must not block a new sign-in; the old session then ends with its TTL).
async fn forget_previous_session(state: &AppState, cookies: &RequestCookies<'_>) {
    let Some(old) = session_cookie(state, cookies) else {
        return;
    };
    if let Err(e) = state.sessions.end(&old).await {
        tracing::debug!(error = %e, "could not delete the previous session");
    }
}

/// `/oauth2/start?rd=`: clears any existing session (no session fixation), remembers
/// the attempt in its own cookie, and sends the browser to the provider.
pub async fn start(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let ctx = Ctx::new(&state, &parts);
    let raw_rd = query_param(&parts, "rd").or_else(|| {
        ctx.fwd
            .header_raw(&parts.headers, "x-auth-request-redirect")
            .map(str::to_owned)
    });
    let rd = safe_redirect(&state, raw_rd.as_deref(), &ctx.request_id, "start");
    let Some(provider) = state.sessions.provider().get() else {
        tracing::warn!(request_id = %ctx.request_id, "login refused: provider not discovered yet");
        return error_page(
            &state.templates,
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in temporarily unavailable",
            "The identity provider has not been reached yet. Please try again in a moment.",
            &ctx.request_id,
            Some(&retry_link(&rd)),
        );
    };
    if !provider.reachable().await {
        tracing::warn!(request_id = %ctx.request_id, "login refused: provider unreachable");
        return error_page(
            &state.templates,
            StatusCode::BAD_GATEWAY,
            "Identity provider unavailable",
            "The identity provider cannot be reached right now. Please try again in a moment.",
            &ctx.request_id,
            Some(&retry_link(&rd)),
        );
    }
    let request = provider.authorization_request();
    let attempt = LoginAttempt {
        s: request.state.clone(),
        n: request.nonce,
        v: request.pkce_verifier,
        rd,
        exp: unix_now() + state.settings.cookie.csrf_lifetime.as_secs(),
    };
    let cookies = RequestCookies::parse(&parts.headers);
    let writer = CookieWriter::new(&state.settings.cookie, ctx.host.as_deref());
    let csrf = csrf_cookie_name(&state.settings.cookie.name, &request.state)
        .and_then(|name| {
            state
                .keyring
                .seal_json(&name, &attempt)
                .ok()
                .map(|sealed| (name, sealed))
        })
        .and_then(|(name, sealed)| writer.csrf(name, sealed));
    let Some(csrf) = csrf else {
        tracing::error!(request_id = %ctx.request_id, "could not seal the login attempt");
        return error_page(
            &state.templates,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Sign-in failed",
            "An internal error occurred.",
            &ctx.request_id,
            None,
        );
    };
    forget_previous_session(&state, &cookies).await;
    tracing::info!(request_id = %ctx.request_id, "login started");
    state.metrics.login_started();
    let mut response = redirect(request.url.as_str());
    append_cookies(&mut response, writer.clear_session(&cookies));
    append_cookies(&mut response, [csrf]);
    response
}

/// `/oauth2/sign_in?rd=`: the sign-in page, whose button starts the login; straight
/// to the provider when `pages.skip_sign_in_page` is set. `rd` is validated here too,
/// so the page never links onward to a place we did not whitelist.
pub async fn sign_in(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let ctx = Ctx::new(&state, &parts);
    let raw_rd = query_param(&parts, "rd");
    let rd = safe_redirect(&state, raw_rd.as_deref(), &ctx.request_id, "sign_in");
    let start = retry_link(&rd);
    if state.settings.pages.skip_sign_in_page {
        return redirect(&start);
    }
    crate::pages::sign_in_page(&state.templates, &start, &rd, &ctx.request_id)
}

/// `/oauth2/callback`: checks the attempt, exchanges the code, verifies the ID token,
/// writes the session and sends the user to the remembered, re-validated `rd`.
pub async fn callback(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let ctx = Ctx::new(&state, &parts);
    let rid = ctx.request_id.as_str();
    let default_rd = state.settings.redirect.default.clone();
    let cookies = RequestCookies::parse(&parts.headers);
    let writer = CookieWriter::new(&state.settings.cookie, ctx.host.as_deref());
    let oauth_state = query_param(&parts, "state");
    let csrf_name = oauth_state
        .as_deref()
        .and_then(|s| csrf_cookie_name(&state.settings.cookie.name, s));
    // Whatever happens next, this attempt is over: expire its cookie.
    let clear_csrf: Vec<HeaderValue> = csrf_name
        .iter()
        .filter(|n| cookies.get(n).is_some())
        .filter_map(|n| writer.removal(n.clone()))
        .collect();
    let fail = |status: StatusCode, title: &str, message: &str, retry: bool| {
        let mut r = error_page(
            &state.templates,
            status,
            title,
            message,
            rid,
            retry.then(|| retry_link(&default_rd)).as_deref(),
        );
        append_cookies(&mut r, clear_csrf.clone());
        r
    };

    if let Some(error) = query_param(&parts, "error") {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        tracing::info!(request_id = rid, error = %code, "provider returned an error to the callback");
        refused(
            &state,
            if code == "access_denied" {
                LoginFailure::Denied
            } else {
                LoginFailure::ProviderError
            },
        );
        let status = if code == "access_denied" {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        return fail(
            status,
            "Sign-in was not completed",
            &format!("The identity provider answered: {code}."),
            true,
        );
    }
    let (Some(code), Some(oauth_state), Some(csrf_name)) = (
        query_param(&parts, "code"),
        oauth_state.as_deref(),
        csrf_name.as_deref(),
    ) else {
        tracing::info!(request_id = rid, "callback without code or state");
        refused(&state, LoginFailure::InvalidRequest);
        return fail(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in response",
            "The sign-in response is missing its code or state.",
            true,
        );
    };
    let attempt: Option<LoginAttempt> = cookies
        .get(csrf_name)
        .and_then(|sealed| state.keyring.open_json(csrf_name, sealed).ok());
    let now = unix_now();
    let attempt = match attempt {
        Some(a) if bool::from(a.s.as_bytes().ct_eq(oauth_state.as_bytes())) && now < a.exp => a,
        other => {
            let reason = match other {
                None => "no matching login cookie",
                Some(a) if now >= a.exp => "login attempt expired",
                Some(_) => "state mismatch",
            };
            tracing::info!(request_id = rid, reason, "callback rejected");
            refused(
                &state,
                if reason == "login attempt expired" {
                    LoginFailure::Expired
                } else {
                    LoginFailure::StateMismatch
                },
            );
            return fail(
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "This sign-in attempt expired or was started in another browser. Please sign in again.",
                true,
            );
        }
    };
    let Some(provider) = state.sessions.provider().get() else {
        refused(&state, LoginFailure::ProviderError);
        return fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in temporarily unavailable",
            "The identity provider has not been reached yet.",
            true,
        );
    };
    let tokens = match state
        .metrics
        .provider(
            ProviderCall::Token,
            provider.exchange_code(&code, &attempt.v, &attempt.n),
        )
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(request_id = rid, error = %e, "code exchange failed");
            refused(&state, LoginFailure::from_oidc(&e));
            let (status, title, message) = match &e {
                OidcError::Unavailable(_) | OidcError::Discovery(_) => (
                    StatusCode::BAD_GATEWAY,
                    "Identity provider unavailable",
                    "The identity provider could not be reached. Please try again.",
                ),
                OidcError::Rejected { .. } => (
                    StatusCode::BAD_REQUEST,
                    "Sign-in was not completed",
                    "The identity provider refused this sign-in (it may have been used already). Please sign in again.",
                ),
                OidcError::EmailNotVerified => (
                    StatusCode::FORBIDDEN,
                    "Email not verified",
                    "Your identity provider reports that your email address is not verified.",
                ),
                OidcError::Config(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Sign-in failed",
                    "An internal error occurred.",
                ),
                OidcError::InvalidResponse(_) | OidcError::Verify(_) => (
                    StatusCode::BAD_GATEWAY,
                    "Invalid answer from the identity provider",
                    "The identity provider's answer could not be verified.",
                ),
            };
            return fail(
                status,
                title,
                message,
                status != StatusCode::INTERNAL_SERVER_ERROR,
            );
        }
    };
    let claim_names = &state.sessions.settings().claims;
    let Some(identity) = Identity::from_claims(&tokens.claims, claim_names) else {
        tracing::warn!(request_id = rid, claim = %claim_names.username, "ID token lacks the username claim");
        refused(&state, LoginFailure::NoIdentity);
        return fail(
            StatusCode::BAD_GATEWAY,
            "Incomplete identity",
            "The identity provider did not send the claim that names you.",
            false,
        );
    };
    let lifetime = state.sessions.settings().lifetime.as_secs();
    let id = match SessionState::new_id() {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(request_id = rid, error = %e, "no randomness for a session id");
            refused(&state, LoginFailure::Internal);
            return fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in failed",
                "An internal error occurred.",
                false,
            );
        }
    };
    let session = SessionState {
        id,
        id_token: tokens.id_token,
        id_token_expires_at: tokens.id_token_expires_at,
        refresh_token: tokens.refresh_token,
        created_at: now,
        expires_at: now + lifetime,
        grant: None,
    };
    // A previous session in this browser ends here (no fixation, no orphan in the store).
    forget_previous_session(&state, &cookies).await;
    let cookie_value = match state.sessions.create(&session, &identity.user).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(request_id = rid, error = %e, "could not store the new session");
            refused(&state, LoginFailure::StoreError);
            return fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in temporarily unavailable",
                "Your session could not be stored. Please try again in a moment.",
                true,
            );
        }
    };
    let Ok(session_cookies) = writer.session(&cookie_value, lifetime, &cookies) else {
        tracing::error!(request_id = rid, user = %identity.user, "session too large for cookies");
        refused(&state, LoginFailure::Internal);
        return fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Sign-in failed",
            "Your session is too large to store in cookies; the operator can switch to the Redis session store.",
            false,
        );
    };
    let mut response = match state.settings.authz.policy.check(&identity) {
        Ok(()) => {
            let rd = safe_redirect(&state, Some(&attempt.rd), rid, "callback");
            tracing::info!(request_id = rid, user = %identity.user, "login completed");
            state.metrics.login_completed();
            Event::new(AuditEvent::SignIn, Outcome::Success)
                .user(&identity.user)
                .session(&session.id)
                .kind("browser")
                .emit(&**state.sessions.observer());
            redirect(&rd)
        }
        Err(denial) => {
            // The session is kept so `/oauth2/auth` answers 403 (not 401, which would
            // loop through the login again); the user sees why.
            tracing::info!(request_id = rid, user = %identity.user, reason = denial.reason(), "login completed but access denied");
            state.metrics.login_failed(LoginFailure::Denied);
            Event::new(AuditEvent::PolicyDenial, Outcome::Refused)
                .user(&identity.user)
                .session(&session.id)
                .kind("browser")
                .detail(denial.reason())
                .emit(&**state.sessions.observer());
            error_page(
                &state.templates,
                StatusCode::FORBIDDEN,
                "Access denied",
                &format!(
                    "You are signed in as {}, but {}.",
                    identity.user,
                    denial.reason()
                ),
                rid,
                None,
            )
        }
    };
    append_cookies(&mut response, session_cookies);
    append_cookies(&mut response, clear_csrf);
    response
}

/// A sign-in that did not complete: counted, and on the audit trail.
fn refused(state: &AppState, reason: LoginFailure) {
    state.metrics.login_failed(reason);
    Event::new(AuditEvent::SignIn, Outcome::Refused)
        .detail(reason.label())
        .emit(&**state.sessions.observer());
}

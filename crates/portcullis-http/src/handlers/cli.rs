//! kubectl sign-in, the HTTP face (RFC 8252 with PKCE): `/oauth2/cli/authorize` (the
//! consent page and its POST), `/oauth2/cli/token` (code and refresh grants) and
//! `/oauth2/clusters`. The decisions (loopback check, PKCE, one-time codes, CLI
//! sessions on the user's shared grant) are `portcullis_core::cli`'s.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use portcullis_core::Lookup;
use portcullis_core::audit::{AuditEvent, Event, Outcome};
use portcullis_core::cli::{self, CliError, Issued};
use portcullis_core::identity::Identity;
use portcullis_oidc::provider::unix_now;
use serde::{Deserialize, Serialize};

use crate::answer::redirect;
use crate::cookies::RequestCookies;
use crate::pages;
use crate::request::{self, session_cookie};
use crate::settings::ClusterSettings;
use crate::state::AppState;

/// How long the consent form may be submitted after it was shown.
const CONSENT_LIFETIME: u64 = 300;
/// The sealed name of the consent form's CSRF token.
const CONSENT_NAME: &str = "portcullis-cli-consent";

/// The parameters of an authorization request, as the CLI sent them.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthorizeParams {
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
    #[serde(default)]
    state: String,
    /// The host the CLI runs on, as it reports it (shown, never trusted).
    #[serde(default)]
    client_host: String,
}

/// What the consent form's CSRF token seals: the session it was shown to, the exact
/// request, and its expiry.
#[derive(Serialize, Deserialize)]
struct Consent {
    sid: String,
    params: AuthorizeParams,
    exp: u64,
}

pub(crate) fn bad_request(state: &AppState, request_id: &str, message: &str) -> Response {
    pages::error_page(
        &state.templates,
        StatusCode::BAD_REQUEST,
        "Invalid kubectl sign-in request",
        message,
        request_id,
        None,
    )
}

/// Checks what RFC 8252 and PKCE require of the request; the redirect URI once valid.
fn check(params: &AuthorizeParams) -> Result<(), &'static str> {
    cli::loopback_redirect(&params.redirect_uri)?;
    if params.code_challenge_method != "S256" || !cli::valid_challenge(&params.code_challenge) {
        return Err("PKCE is required: code_challenge_method=S256 and a code_challenge");
    }
    if params.state.is_empty() || params.state.len() > 256 {
        return Err("state is required (at most 256 characters)");
    }
    if params.client_host.len() > 255 {
        return Err("client_host is too long");
    }
    Ok(())
}

/// The clusters `identity` may use.
pub(crate) fn clusters_for<'a>(
    state: &'a AppState,
    identity: &Identity,
) -> Vec<&'a ClusterSettings> {
    state
        .settings
        .clusters
        .iter()
        .filter(|c| c.policy.is_open() || c.policy.check(identity).is_ok())
        .collect()
}

/// `GET /oauth2/cli/authorize`: validates the request; without a session, signs the
/// user in first and comes back; with one, shows the consent page.
pub async fn authorize(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let request_id = request::request_id();
    let params: AuthorizeParams = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    if let Err(m) = check(&params) {
        tracing::info!(request_id, reason = m, "kubectl sign-in refused");
        return bad_request(&state, &request_id, m);
    }
    let loaded = match crate::answer::page_session(&state, &parts, &request_id).await {
        Ok(loaded) => loaded,
        Err(answer) => return answer,
    };
    let consent = Consent {
        sid: loaded.prepared.state.id.clone(),
        params: params.clone(),
        exp: unix_now() + CONSENT_LIFETIME,
    };
    let csrf = match state.keyring.seal_json(CONSENT_NAME, &consent) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(request_id, error = %e, "could not seal the consent form");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let identity = &loaded.prepared.identity;
    let clusters: Vec<&str> = clusters_for(&state, identity)
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    pages::cli_consent_page(
        &state.templates,
        &pages::Consent {
            user: &identity.user,
            groups: &identity.groups,
            client_host: &params.client_host,
            clusters: &clusters,
            csrf: &csrf,
        },
        &request_id,
    )
}

/// The consent form's fields.
#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
}

/// `POST /oauth2/cli/authorize`: the user's answer on the consent page. Approved: a
/// redirect to the CLI's loopback listener with a one-time code.
pub async fn approve(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let request_id = request::request_id();
    let bytes = match axum::body::to_bytes(body, 16 * 1024).await {
        Ok(b) => b,
        Err(_) => return bad_request(&state, &request_id, "The form is too large."),
    };
    let Ok(form) = serde_urlencoded::from_bytes::<ConsentForm>(&bytes) else {
        return bad_request(&state, &request_id, "The form is malformed.");
    };
    let (loaded, cookie) = match form_session(&state, &parts, &request_id).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    // The token was made for this session's consent page, recently: a forged or
    // replayed form (another user's, another site's) fails here.
    let consent: Option<Consent> = state.keyring.open_json(CONSENT_NAME, &form.csrf).ok();
    let Some(consent) = consent.filter(|c| {
        c.exp > unix_now()
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                c.sid.as_bytes(),
                loaded.prepared.state.id.as_bytes(),
            ))
    }) else {
        tracing::info!(
            request_id,
            "kubectl consent refused: bad or expired CSRF token"
        );
        return forbidden(
            &state,
            &request_id,
            "This form has expired or is not yours.",
        );
    };
    let params = consent.params;
    if check(&params).is_err() {
        return bad_request(&state, &request_id, "The request is invalid.");
    }
    let mut target = match cli::loopback_redirect(&params.redirect_uri) {
        Ok(u) => u,
        Err(m) => return bad_request(&state, &request_id, m),
    };
    if form.decision != "approve" {
        target
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("state", &params.state);
        return redirect(target.as_str());
    }
    match state
        .sessions
        .issue_cli_code(
            &cookie,
            &params.code_challenge,
            &params.redirect_uri,
            &params.client_host,
        )
        .await
    {
        Ok(code) => {
            tracing::info!(request_id, user = %loaded.prepared.identity.user, client_host = %params.client_host, "kubectl sign-in approved");
            target
                .query_pairs_mut()
                .append_pair("code", &code)
                .append_pair("state", &params.state);
            redirect(target.as_str())
        }
        Err(CliError::NeedsRedis) => bad_request(
            &state,
            &request_id,
            "kubectl sign-in needs the Redis session store on this server.",
        ),
        Err(e) => {
            tracing::warn!(request_id, error = ?e, "kubectl sign-in: could not issue a code");
            crate::answer::unavailable(&state, &Lookup::StoreDown(e.description()), &request_id)
        }
    }
}

/// The browser session a form (the kubectl consent, the device decision) was posted
/// from, with its cookie value, or the answer to send instead: 503 when sessions
/// cannot be checked, else 403 (a posted form is not carried through a sign-in).
pub(crate) async fn form_session<'a>(
    state: &AppState,
    parts: &'a http::request::Parts,
    request_id: &str,
) -> Result<
    (
        Box<portcullis_core::sessions::Loaded>,
        std::borrow::Cow<'a, str>,
    ),
    Response,
> {
    let cookies = RequestCookies::parse(&parts.headers);
    let cookie = session_cookie(state, &cookies);
    match (
        state.sessions.load(cookie.as_deref(), unix_now()).await,
        cookie,
    ) {
        (Lookup::Valid(loaded), Some(cookie)) => Ok((loaded, cookie)),
        (lookup @ Lookup::StoreDown(_), _) => {
            Err(crate::answer::unavailable(state, &lookup, request_id))
        }
        _ => Err(forbidden(
            state,
            request_id,
            "You are not signed in any more.",
        )),
    }
}

pub(crate) fn forbidden(state: &AppState, request_id: &str, message: &str) -> Response {
    pages::error_page(
        &state.templates,
        StatusCode::FORBIDDEN,
        "Not allowed",
        message,
        request_id,
        None,
    )
}

/// The token endpoint's form (RFC 6749 §4.1.3 and §6).
#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    code_verifier: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    refresh_token: String,
    #[serde(default)]
    device_code: String,
}

/// The device authorization grant's type (RFC 8628 §3.4).
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub(crate) fn token_error(e: &CliError) -> Response {
    let status = match e {
        CliError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut r = (
        status,
        Json(serde_json::json!({"error": e.code(), "error_description": e.description()})),
    )
        .into_response();
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
}

pub(crate) fn token_answer(issued: &Issued) -> Response {
    let now = unix_now();
    let mut r = Json(serde_json::json!({
        "token_type": "Bearer",
        "id_token": issued.id_token,
        "expires_in": issued.expires_at.saturating_sub(now),
        "expires_at": issued.expires_at,
        "refresh_token": issued.credential,
        "user": issued.user,
    }))
    .into_response();
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
}

/// `POST /oauth2/cli/token`: `authorization_code` (with `code_verifier`) and
/// `refresh_token` grants; answers the ID token, its expiry and the CLI credential.
pub async fn token(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let body = request.into_body();
    let request_id = request::request_id();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024).await else {
        return token_error(&CliError::InvalidRequest("the request is too large"));
    };
    let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(&bytes) else {
        return token_error(&CliError::InvalidRequest("the form is malformed"));
    };
    let now = unix_now();
    let (outcome, event) = match form.grant_type.as_str() {
        "authorization_code" => (
            state
                .sessions
                .redeem_cli_code(&form.code, &form.code_verifier, &form.redirect_uri, now)
                .await,
            AuditEvent::CliToken,
        ),
        DEVICE_GRANT => (
            state.sessions.poll_device(&form.device_code, now).await,
            AuditEvent::CliToken,
        ),
        "refresh_token" => (
            state.sessions.refresh_cli(&form.refresh_token, now).await,
            AuditEvent::CliRefresh,
        ),
        _ => (
            Err(CliError::InvalidRequest(
                "grant_type must be authorization_code, refresh_token or the device code grant",
            )),
            AuditEvent::CliToken,
        ),
    };
    let observer = &**state.sessions.observer();
    match outcome {
        Ok(issued) => {
            // Issuing is an event; a CLI refresh answering the current token is not.
            if event == AuditEvent::CliToken {
                Event::new(event, Outcome::Success)
                    .user(&issued.user)
                    .session(&issued.session_id)
                    .kind("cli")
                    .detail(&form.grant_type)
                    .emit(observer);
            }
            token_answer(&issued)
        }
        // The device flow's waiting answers are the protocol, not refusals.
        Err(e @ (CliError::AuthorizationPending | CliError::SlowDown)) => token_error(&e),
        Err(e) => {
            tracing::info!(request_id, grant_type = %form.grant_type, error = e.code(), reason = %e.description(), "kubectl token refused");
            let outcome = if matches!(e, CliError::Unavailable(_)) {
                Outcome::Failed
            } else {
                Outcome::Refused
            };
            Event::new(event, outcome)
                .kind("cli")
                .detail(e.code())
                .emit(observer);
            token_error(&e)
        }
    }
}

/// The CLI credential a request carries as `Authorization: Bearer` (a sealed ticket;
/// a JWT there is a bearer ID token, not ours).
fn cli_credential(headers: &http::HeaderMap) -> Option<&str> {
    portcullis_core::bearer::bearer_token(headers).filter(|t| !t.contains('.'))
}

/// `POST /oauth2/cli/logout` (`Authorization: Bearer <CLI credential>`): ends that
/// CLI session; the user's other sessions stay.
pub async fn logout(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let request_id = request::request_id();
    let Some(credential) = cli_credential(&parts.headers) else {
        return token_error(&CliError::InvalidRequest(
            "send the CLI credential as a bearer token",
        ));
    };
    match state.sessions.end(credential).await {
        Ok(ended) => {
            tracing::info!(request_id, "CLI session ended by its client");
            let mut event = Event::new(AuditEvent::CliLogout, Outcome::Success).kind("cli");
            if let Some(p) = &ended {
                event = event.user(&p.identity.user).session(&p.state.id);
            }
            event.emit(&**state.sessions.observer());
            StatusCode::NO_CONTENT.into_response()
        }
        Err(portcullis_session::store::StoreError::Undecodable(_)) => {
            token_error(&CliError::InvalidGrant("unknown credential"))
        }
        Err(e) => token_error(&CliError::Unavailable(e.to_string())),
    }
}

/// One cluster as `/oauth2/clusters` lists it.
#[derive(Serialize)]
struct ClusterView<'a> {
    name: &'a str,
    server: &'a str,
    description: &'a str,
    certificate_authority_data: Option<String>,
}

/// `GET /oauth2/clusters`: the clusters the caller may use (a browser session, or a
/// CLI credential as `Authorization: Bearer`).
pub async fn clusters(State(state): State<Arc<AppState>>, request: Request) -> Response {
    use base64::Engine;
    let (parts, _body) = request.into_parts();
    let cookies = RequestCookies::parse(&parts.headers);
    let now = unix_now();
    let credential = cli_credential(&parts.headers).map(str::to_owned);
    let lookup = match credential {
        Some(c) => state.sessions.load(Some(&c), now).await,
        None => request::authenticate(&state, &parts.headers, &cookies, now).await,
    };
    match &lookup {
        Lookup::Valid(loaded) => {
            let identity = &loaded.prepared.identity;
            let list: Vec<ClusterView<'_>> = clusters_for(&state, identity)
                .into_iter()
                .map(|c| ClusterView {
                    name: &c.name,
                    server: &c.server,
                    description: &c.description,
                    certificate_authority_data: c
                        .certificate_authority
                        .as_ref()
                        .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem)),
                })
                .collect();
            Json(serde_json::json!({"user": identity.user, "groups": identity.groups, "clusters": list}))
                .into_response()
        }
        Lookup::StoreDown(_) | Lookup::BearerUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": "sessions cannot be checked right now"})),
        )
            .into_response(),
        _ => (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "unauthenticated"})),
        )
            .into_response(),
    }
}

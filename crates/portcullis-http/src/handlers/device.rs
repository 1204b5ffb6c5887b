//! Device authorization (RFC 8628), the HTTP face: `POST /oauth2/device/code` (the CLI
//! asks for codes), `/oauth2/device` (a signed-in user types the code, sees who asks,
//! approves or denies). The token endpoint's `device_code` grant is in
//! [`super::cli::token`]; the decisions are `portcullis_core::device`'s.
//!
//! Both form posts carry a CSRF token sealed for the viewing session (and, at the
//! decision, for the one request found), valid five minutes: a forged or replayed form
//! cannot approve a device.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use portcullis_core::Lookup;
use portcullis_core::audit::{AuditEvent, Event, Outcome};
use portcullis_core::cli::CliError;
use portcullis_core::device::{self, EntryError};
use portcullis_oidc::provider::unix_now;
use serde::{Deserialize, Serialize};

use super::cli::{bad_request, clusters_for, forbidden, form_session, token_error};
use crate::cli_pages::{DevicePage, device_page};
use crate::pages;
use crate::request;
use crate::state::AppState;

/// How long a device form may be submitted after it was shown.
const FORM_LIFETIME: u64 = 300;
/// The sealed name of the device forms' CSRF token.
const FORM_NAME: &str = "portcullis-device-form";

/// What a device form's CSRF token seals.
#[derive(Serialize, Deserialize)]
struct FormToken {
    /// The session it was shown to.
    sid: String,
    /// The request found (decision step), empty on the entry step.
    dev: String,
    exp: u64,
}

#[derive(Deserialize)]
struct StartForm {
    #[serde(default)]
    client_host: String,
}

/// `POST /oauth2/device/code`: a device code for the CLI, a user code for the user.
pub async fn start(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let body = request.into_body();
    let request_id = request::request_id();
    let Ok(bytes) = axum::body::to_bytes(body, 4 * 1024).await else {
        return token_error(&CliError::InvalidRequest("the request is too large"));
    };
    let form = serde_urlencoded::from_bytes::<StartForm>(&bytes);
    let Some(form) = form.ok().filter(|f| f.client_host.len() <= 255) else {
        return token_error(&CliError::InvalidRequest(
            "client_host is malformed or too long",
        ));
    };
    match state
        .sessions
        .start_device(&form.client_host, unix_now())
        .await
    {
        Ok(started) => {
            let verification_uri = format!("{}/oauth2/device", state.settings.auth_origin);
            let complete = format!("{verification_uri}?user_code={}", started.user_code);
            tracing::info!(request_id, client_host = %form.client_host, "device authorization started");
            let mut r = Json(serde_json::json!({
                "device_code": started.device_code,
                "user_code": started.user_code,
                "verification_uri": verification_uri,
                "verification_uri_complete": complete,
                "expires_in": started.expires_in,
                "interval": started.interval,
            }))
            .into_response();
            r.headers_mut().insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            );
            r
        }
        Err(e) => {
            tracing::warn!(
                request_id,
                error = e.code(),
                "device authorization not started"
            );
            token_error(&e)
        }
    }
}

/// The sealed CSRF token; `None` (logged) when sealing fails.
fn seal(state: &AppState, token: &FormToken, request_id: &str) -> Option<String> {
    state
        .keyring
        .seal_json(FORM_NAME, token)
        .map_err(|e| tracing::error!(request_id, error = %e, "could not seal the device form"))
        .ok()
}

/// `GET /oauth2/device[?user_code=…]`: the code entry form; signs the user in first.
pub async fn page(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let request_id = request::request_id();
    let loaded = match crate::answer::page_session(&state, &parts, &request_id).await {
        Ok(loaded) => loaded,
        Err(answer) => return answer,
    };
    #[derive(Deserialize, Default)]
    struct Query {
        #[serde(default)]
        user_code: String,
    }
    let query: Query = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let typed = device::normalize_user_code(&query.user_code)
        .map(|c| device::format_user_code(&c))
        .unwrap_or_default();
    let token = FormToken {
        sid: loaded.prepared.state.id.clone(),
        dev: String::new(),
        exp: unix_now() + FORM_LIFETIME,
    };
    let csrf = match seal(&state, &token, &request_id) {
        Some(c) => c,
        None => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    device_page(
        &state.templates,
        &DevicePage {
            step: "enter",
            user_code: &typed,
            csrf: &csrf,
            ..DevicePage::default()
        },
        &request_id,
    )
}

/// The device forms' fields.
#[derive(Deserialize)]
struct SubmitForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    step: String,
    #[serde(default)]
    user_code: String,
    #[serde(default)]
    decision: String,
}

/// `POST /oauth2/device`: a typed code (then the confirmation), or the decision.
pub async fn submit(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let request_id = request::request_id();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024).await else {
        return bad_request(&state, &request_id, "The form is too large.");
    };
    let Ok(form) = serde_urlencoded::from_bytes::<SubmitForm>(&bytes) else {
        return bad_request(&state, &request_id, "The form is malformed.");
    };
    let (loaded, cookie) = match form_session(&state, &parts, &request_id).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let sid = &loaded.prepared.state.id;
    let token: Option<FormToken> = state.keyring.open_json(FORM_NAME, &form.csrf).ok();
    let Some(token) = token.filter(|t| {
        t.exp > unix_now()
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                t.sid.as_bytes(),
                sid.as_bytes(),
            ))
    }) else {
        tracing::info!(request_id, "device form refused: bad or expired CSRF token");
        return forbidden(
            &state,
            &request_id,
            "This form has expired or is not yours.",
        );
    };
    let identity = &loaded.prepared.identity;
    let clusters: Vec<&str> = clusters_for(&state, identity)
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let fresh = |dev: &str| {
        seal(
            &state,
            &FormToken {
                sid: sid.clone(),
                dev: dev.to_owned(),
                exp: unix_now() + FORM_LIFETIME,
            },
            &request_id,
        )
    };
    if form.step == "enter" && token.dev.is_empty() {
        let found = state.sessions.find_device(&form.user_code, sid).await;
        let error = match found {
            Ok(pending) => {
                let shown = device::normalize_user_code(&form.user_code)
                    .map(|c| device::format_user_code(&c))
                    .unwrap_or_default();
                let csrf = match fresh(&pending.id) {
                    Some(c) => c,
                    None => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                };
                return device_page(
                    &state.templates,
                    &DevicePage {
                        step: "confirm",
                        user_code: &shown,
                        user: &identity.user,
                        groups: &identity.groups,
                        client_host: &pending.client_host,
                        clusters: &clusters,
                        csrf: &csrf,
                        ..DevicePage::default()
                    },
                    &request_id,
                );
            }
            Err(EntryError::TooManyAttempts) => {
                Event::new(AuditEvent::DeviceCodeEntry, Outcome::Refused)
                    .user(&identity.user)
                    .session(sid)
                    .detail("too many wrong codes")
                    .emit(&**state.sessions.observer());
                return pages::error_page(
                    &state.templates,
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many wrong codes",
                    "Too many wrong codes were entered from this session. Wait ten minutes, or start a new sign-in on the device.",
                    &request_id,
                    None,
                );
            }
            Err(EntryError::Unavailable(e)) => {
                return crate::answer::unavailable(&state, &Lookup::StoreDown(e), &request_id);
            }
            Err(EntryError::Unknown) => {
                "That code is not valid (it may have expired): check it, or start again on the device."
            }
            Err(EntryError::Malformed) => "A code is eight letters, like BCDF-GHJK.",
        };
        tracing::info!(request_id, user = %identity.user, "device code entry refused");
        let csrf = match fresh("") {
            Some(c) => c,
            None => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
        let mut r = device_page(
            &state.templates,
            &DevicePage {
                step: "enter",
                error,
                csrf: &csrf,
                ..DevicePage::default()
            },
            &request_id,
        );
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return r;
    }
    if form.step != "decide" || token.dev.is_empty() {
        return bad_request(&state, &request_id, "The form is incomplete.");
    }
    let approve = form.decision == "approve";
    let decided = state
        .sessions
        .decide_device(&token.dev, approve.then_some(&*cookie))
        .await;
    let outcome = if approve { "approved" } else { "denied" };
    match decided {
        Ok(()) => {
            let result = if approve {
                Outcome::Success
            } else {
                Outcome::Refused
            };
            Event::new(AuditEvent::DeviceDecision, result)
                .user(&identity.user)
                .session(sid)
                .kind("browser")
                .detail(outcome)
                .emit(&**state.sessions.observer());
            device_page(
                &state.templates,
                &DevicePage {
                    step: "done",
                    outcome,
                    ..DevicePage::default()
                },
                &request_id,
            )
        }
        Err(CliError::Unavailable(e)) => {
            crate::answer::unavailable(&state, &Lookup::StoreDown(e), &request_id)
        }
        Err(_) => bad_request(
            &state,
            &request_id,
            "This sign-in request has expired or was already decided.",
        ),
    }
}

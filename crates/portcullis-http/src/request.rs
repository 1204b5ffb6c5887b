//! Per-request facts every handler needs, and the one call from the face into the
//! core's session lookup.

use http::HeaderMap;
use http::request::Parts;
use portcullis_core::Lookup;
use portcullis_core::bearer::bearer_token;
use portcullis_session::chunk;

use crate::cookies::RequestCookies;
use crate::forwarded::Forwarded;
use crate::state::AppState;

/// Per-request facts every handler needs.
pub(crate) struct Ctx {
    pub fwd: Forwarded,
    pub host: Option<String>,
    pub request_id: String,
}

impl Ctx {
    pub(crate) fn new(state: &AppState, parts: &Parts) -> Self {
        let fwd = Forwarded::from_parts(parts, &state.settings.trusted_proxies);
        Self {
            host: fwd.host(&parts.headers),
            request_id: request_id(),
            fwd,
        }
    }
}

/// The request id the edge assigned, from the request's context (empty outside the
/// service stack). Not a request extension: inserting one cost every request an
/// allocation, for the few handlers that show the id.
pub(crate) fn request_id() -> String {
    portcullis_core::audit::current(|c| c.request_id.to_string()).unwrap_or_default()
}

/// The first value of query parameter `name`.
pub(crate) fn query_param(parts: &Parts, name: &str) -> Option<String> {
    let query = parts.uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The session cookie value of a request (joined from chunks; borrowed when it is
/// one cookie), if any.
pub fn session_cookie<'a>(
    state: &AppState,
    cookies: &RequestCookies<'a>,
) -> Option<std::borrow::Cow<'a, str>> {
    chunk::join(&state.settings.cookie.name, |n| cookies.get(n))
}

/// Asks the core who the request is: its bearer token (when enabled), else its
/// session cookie.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    cookies: &RequestCookies<'_>,
    now: u64,
) -> Lookup {
    state
        .sessions
        .authenticate(
            bearer_token(headers),
            session_cookie(state, cookies).as_deref(),
            now,
        )
        .await
}

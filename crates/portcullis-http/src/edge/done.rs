//! What the edge does after the answer: marks its secrets, echoes the request id,
//! counts the request and writes its access line.

use axum::extract::MatchedPath;
use axum::response::Response;
use http::{HeaderMap, HeaderName, header};
use portcullis_core::audit::{self, RequestContext};
use std::time::Instant;

use crate::metrics::UNMATCHED;
use crate::request_id;
use crate::state::AppState;

/// The target of access lines: `log.level = "info,portcullis::access=off"` keeps
/// every other line (nginx's own access log may already say it all).
pub const ACCESS: &str = "portcullis::access";

/// Marks every value of the headers named in `names` sensitive, in one walk over the
/// map (a request or answer has a handful of headers): `HeaderMap::entry`, once per
/// name, hashed it, probed, and first checked for room to insert.
pub(super) fn mark_sensitive(headers: &mut HeaderMap, names: [&HeaderName; 2]) {
    for (name, value) in headers.iter_mut() {
        if names.contains(&name) {
            value.set_sensitive(true);
        }
    }
}

/// The route a request matched, for metrics and the access line: axum's template,
/// or the fixed path of a route [`crate::hot`] dispatched itself.
#[derive(Debug, Clone)]
pub(crate) enum RouteName {
    Matched(MatchedPath),
    Fixed(&'static str),
}

impl RouteName {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Matched(m) => m.as_str(),
            Self::Fixed(s) => s,
        }
    }
}

/// What the edge keeps of a request until its answer.
pub(super) struct Done {
    /// The request id as a header value, to echo.
    pub(super) echo: Option<http::HeaderValue>,
    pub(super) method: http::Method,
    pub(super) route: Option<RouteName>,
    pub(super) started: Instant,
    /// The URI, when an access line may be written.
    pub(super) uri: Option<http::Uri>,
    /// The request's context, once the handler gave it back.
    pub(super) context: Option<RequestContext>,
}

impl Done {
    /// Marks the answer's secrets, echoes the id, counts the request and writes its
    /// access line.
    pub(super) fn finish(self, state: &AppState, mut response: Response) -> Response {
        let headers = response.headers_mut();
        mark_sensitive(headers, [&header::SET_COOKIE, &header::AUTHORIZATION]);
        if let Some(echo) = self.echo {
            headers.insert(request_id::HEADER_NAME, echo);
        }
        let status = response.status();
        let route = self.route.as_ref().map(RouteName::as_str);
        // One clock reading for the histogram and the access line.
        let elapsed = self.started.elapsed();
        if !crate::ablation::ablation().no_metrics {
            state.metrics.request(route, &self.method, status, elapsed);
        }
        let Some(uri) = self.uri else {
            return response;
        };
        let route = route.unwrap_or(UNMATCHED);
        let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let status = status.as_u16();
        let (method, path) = (self.method.as_str(), uri.path());
        let sink = crate::access::sink()
            .filter(|_| status >= 500 || tracing::enabled!(target: ACCESS, tracing::Level::INFO));
        let context = self
            .context
            .unwrap_or_else(|| RequestContext::new("".into(), None));
        if let Some(sink) = sink {
            context.with_user(|user| {
                sink.write(&crate::access::AccessLine {
                    warn: status >= 500,
                    method,
                    path,
                    route,
                    status,
                    latency_us,
                    request_id: &context.request_id,
                    user,
                });
            });
        } else {
            // Within the request's context, so the line carries its id and user.
            audit::sync_scope(context, || {
                if status >= 500 {
                    tracing::warn!(target: ACCESS, %method, %path, %route, status, latency_us, "finished processing request");
                } else {
                    tracing::info!(target: ACCESS, %method, %path, %route, status, latency_us, "finished processing request");
                }
            });
        }
        response
    }
}

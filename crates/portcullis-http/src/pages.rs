//! Minimal HTML pages for the few answers a person sees (errors, denial, sign-in
//! problems). No external assets; every dynamic value is escaped.

use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;

/// An error page with the request id, so a user can quote it and an operator can find
/// the matching log line.
pub fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    request_id: &str,
    retry: Option<&str>,
) -> Response {
    let retry = retry
        .map(|href| format!(r#"<p><a href="{}">Sign in again</a></p>"#, escape(href)))
        .unwrap_or_default();
    let body = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Portcullis</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a}}code{{background:#eee;padding:0 .3em}}</style>
</head><body><main>
<h1>{title}</h1>
<p>{message}</p>
{retry}
<p><small>Request id: <code id="request-id">{rid}</code> · HTTP {code}</small></p>
</main></body></html>
"#,
        title = escape(title),
        message = escape(message),
        rid = escape(request_id),
        code = status.as_u16(),
    );
    let mut response = (status, Html(body)).into_response();
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

/// HTML-escapes text for element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            escape(r#"<a href="x">'&"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
    }
}

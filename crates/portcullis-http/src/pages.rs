//! The pages a person sees: the sign-in page and error pages (denied, provider down,
//! internal error…), each showing the request id so a user can quote it and an
//! operator can find the matching log line.
//!
//! HTML comes from minijinja templates with auto-escaping: built-in ones, or an
//! operator's `sign_in.html` / `error.html` from `pages.templates_dir` (loaded and
//! checked at start-up, so a broken template fails `config check`, not a request).
//! No external assets: styles are inline, there are no scripts.

use std::path::Path;

use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use minijinja::{Environment, context};

use portcullis_core::authz::Denial;

pub(crate) const BASE_STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a;background:#fff;line-height:1.5}\
h1{font-size:1.6rem}code{background:#eee;padding:0 .3em;border-radius:3px}\
.button{display:inline-block;background:#0b5cad;color:#fff;padding:.6rem 1.2rem;border-radius:4px;text-decoration:none;font-weight:600;border:0;font-size:1rem}\
.button:hover{background:#084a8c}a:focus,.button:focus{outline:3px solid #f9a825;outline-offset:2px}\
@media (prefers-color-scheme: dark){body{background:#121212;color:#eee}code{background:#333}}";

/// The built-in error page. Variables: `title`, `message`, `status`, `request_id`,
/// `retry_url` (optional), `sign_out_url` (optional), `style`.
pub const ERROR_TEMPLATE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · Portcullis</title>
<style>{{ style }}</style>
</head>
<body>
<main>
<h1>{{ title }}</h1>
<p>{{ message }}</p>
{% if retry_url %}<p><a class="button" href="{{ retry_url }}">Sign in again</a></p>{% endif %}
{% if sign_out_url %}<p><a href="{{ sign_out_url }}">Sign out and use another account</a></p>{% endif %}
<p><small>Request id: <code id="request-id">{{ request_id }}</code> · HTTP {{ status }}</small></p>
</main>
</body>
</html>
"#;

/// The built-in sign-in page. Variables: `start_url` (the provider redirect, with
/// `rd`), `rd` (where the user goes afterwards), `request_id`, `style`.
pub const SIGN_IN_TEMPLATE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Portcullis</title>
<style>{{ style }}</style>
</head>
<body>
<main>
<h1>Sign in</h1>
<p>You need to sign in to continue.</p>
<p><a class="button" id="sign-in" href="{{ start_url }}">Sign in with your organisation account</a></p>
<p><small>Request id: <code id="request-id">{{ request_id }}</code></small></p>
</main>
</body>
</html>
"#;

/// The built-in consent page of a kubectl sign-in. Variables: `user`, `groups`,
/// `client_host`, `clusters`, `csrf`, `request_id`, `style`.
pub const CLI_CONSENT_TEMPLATE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign kubectl in · Portcullis</title>
<style>{{ style }}</style>
</head>
<body>
<main>
<h1>Sign kubectl in?</h1>
<p>A command line on <strong id="client-host">{{ client_host or "an unnamed host" }}</strong> asks to act as
<strong id="user">{{ user }}</strong>{% if groups %} (groups: {{ groups | join(", ") }}){% endif %}.</p>
{% if clusters %}<p>It will reach these clusters:</p>
<ul id="clusters">{% for c in clusters %}<li>{{ c }}</li>{% endfor %}</ul>
{% else %}<p id="clusters">No cluster is configured for you.</p>{% endif %}
<p>Only approve if you just ran <code>portcullis login</code> yourself.</p>
<form method="post" action="/oauth2/cli/authorize">
<input type="hidden" name="csrf" value="{{ csrf }}">
<button class="button" id="approve" name="decision" value="approve">Approve</button>
<button id="deny" name="decision" value="deny">Deny</button>
</form>
<p><small>Request id: <code id="request-id">{{ request_id }}</code></small></p>
</main>
</body>
</html>
"#;

/// What the consent page shows.
#[derive(Debug)]
pub struct Consent<'a> {
    /// Who signs in.
    pub user: &'a str,
    /// Their groups.
    pub groups: &'a [String],
    /// The CLI's host as it reported it.
    pub client_host: &'a str,
    /// The clusters the user may use.
    pub clusters: &'a [&'a str],
    /// The form's CSRF token.
    pub csrf: &'a str,
}

/// The consent page of a kubectl sign-in. Its form may lead (by redirect) to the
/// CLI's loopback listener, which the page's `form-action` allows.
pub fn cli_consent_page(
    templates: &Templates,
    consent: &Consent<'_>,
    request_id: &str,
) -> Response {
    let ctx = context! {
        user => consent.user,
        groups => consent.groups,
        client_host => consent.client_host,
        clusters => consent.clusters,
        csrf => consent.csrf,
        request_id,
        style => BASE_STYLE,
    };
    match templates.render("cli_consent.html", ctx) {
        Ok(body) => {
            let mut r = html(StatusCode::OK, body);
            r.headers_mut().insert(
                http::header::CONTENT_SECURITY_POLICY,
                http::HeaderValue::from_static(
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http://127.0.0.1:* http://[::1]:*; frame-ancestors 'none'",
                ),
            );
            r
        }
        Err(e) => {
            tracing::error!(request_id, error = %e, "consent template failed");
            error_page(
                templates,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                "The consent page could not be shown.",
                request_id,
                None,
            )
        }
    }
}

/// The page templates in use.
pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

impl Default for Templates {
    fn default() -> Self {
        // The built-in templates are tested; they cannot fail to parse.
        Self::load(None).unwrap_or_else(|_| Self {
            env: Environment::new(),
        })
    }
}

impl Templates {
    /// The built-in templates, with `sign_in.html`, `error.html`, `cli_consent.html`,
    /// `device.html` and `kubeconfig.html` from `dir`
    /// replacing them where present. Errors name the file and the problem.
    pub fn load(dir: Option<&Path>) -> Result<Self, String> {
        let mut env = Environment::new();
        for (name, builtin) in [
            ("error.html", ERROR_TEMPLATE),
            ("sign_in.html", SIGN_IN_TEMPLATE),
            ("cli_consent.html", CLI_CONSENT_TEMPLATE),
        ]
        .into_iter()
        .chain(crate::cli_templates::TEMPLATES)
        {
            let source = match dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(path) => std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                None => builtin.to_owned(),
            };
            env.add_template_owned(name, source)
                .map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(Self { env })
    }

    pub(crate) fn render(
        &self,
        name: &str,
        ctx: minijinja::Value,
    ) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    response
}

/// An error page. `retry` links to a new sign-in.
pub fn error_page(
    templates: &Templates,
    status: StatusCode,
    title: &str,
    message: &str,
    request_id: &str,
    retry: Option<&str>,
) -> Response {
    render_error(templates, status, title, message, request_id, retry, None)
}

fn render_error(
    templates: &Templates,
    status: StatusCode,
    title: &str,
    message: &str,
    request_id: &str,
    retry: Option<&str>,
    sign_out: Option<&str>,
) -> Response {
    let ctx = context! {
        title, message, request_id,
        status => status.as_u16(),
        retry_url => retry,
        sign_out_url => sign_out,
        style => BASE_STYLE,
    };
    match templates.render("error.html", ctx) {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(request_id, error = %e, "error template failed; using the plain page");
            html(
                status,
                format!(
                    "<!doctype html><html lang=\"en\"><title>{t}</title><h1>{t}</h1><p>Request id: {r}</p></html>",
                    t = escape(title),
                    r = escape(request_id)
                ),
            )
        }
    }
}

/// The 403 page for a signed-in user that policy refuses, with a sign-out link so
/// they can switch accounts.
pub fn denied_page(templates: &Templates, denial: Denial, request_id: &str) -> Response {
    render_error(
        templates,
        StatusCode::FORBIDDEN,
        "Access denied",
        &format!(
            "You are signed in, but you may not use this application ({}). Ask your administrator for access.",
            denial.reason()
        ),
        request_id,
        None,
        Some("/oauth2/sign_out"),
    )
}

/// The sign-in page; `start_url` goes to the provider and back to the target.
pub fn sign_in_page(
    templates: &Templates,
    start_url: &str,
    rd: &str,
    request_id: &str,
) -> Response {
    let ctx = context! { start_url, rd, request_id, style => BASE_STYLE };
    match templates.render("sign_in.html", ctx) {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => {
            tracing::error!(request_id, error = %e, "sign-in template failed");
            error_page(
                templates,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                "The sign-in page could not be shown.",
                request_id,
                None,
            )
        }
    }
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
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            escape(r#"<a href="x">'&"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
    }

    #[test]
    fn builtin_templates_escape_values() {
        let t = Templates::load(None).unwrap();
        let r = t
            .render(
                "error.html",
                context! { title => "<script>", message => "m", request_id => "r\"id", status => 403, style => "" },
            )
            .unwrap();
        assert!(r.contains("&lt;script&gt;"));
        assert!(!r.contains("<script>"));
        assert!(r.contains("r&#34;id") || r.contains("r&quot;id"));
        assert!(!r.contains("Sign in again"));
    }

    #[test]
    fn operator_templates_replace_builtins_and_errors_are_reported() {
        let dir = std::env::temp_dir().join(format!("portcullis-tpl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sign_in.html"), "<p id=custom>{{ start_url }}</p>").unwrap();
        let t = Templates::load(Some(&dir)).unwrap();
        let r = t
            .render(
                "sign_in.html",
                context! { start_url => "/oauth2/start?rd=%2F&x=<" },
            )
            .unwrap();
        // minijinja also escapes '/', which browsers decode in attributes.
        assert_eq!(
            r,
            "<p id=custom>&#x2f;oauth2&#x2f;start?rd=%2F&amp;x=&lt;</p>"
        );
        // error.html still built in.
        assert!(t.env.get_template("error.html").is_ok());
        std::fs::write(dir.join("error.html"), "{% if %}").unwrap();
        let err = Templates::load(Some(&dir)).unwrap_err();
        assert!(err.starts_with("error.html"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! The pages of the command-line half: device approval (`/oauth2/device`) and the
//! kubeconfig page (`/oauth2/kubeconfig`). Built-in templates, replaceable like the
//! others from `pages.templates_dir` (`device.html`, `kubeconfig.html`).

use axum::response::Response;
use http::StatusCode;
use minijinja::context;

use crate::pages::{BASE_STYLE, Templates, error_page, html};

/// What the device page shows.
#[derive(Debug, Default)]
pub struct DevicePage<'a> {
    /// `enter`, `confirm` or `done`.
    pub step: &'a str,
    /// The code as typed (or shown on confirmation).
    pub user_code: &'a str,
    /// Why the code was not taken.
    pub error: &'a str,
    /// The signed-in user and their groups.
    pub user: &'a str,
    /// Their groups.
    pub groups: &'a [String],
    /// The CLI's host as it reported it.
    pub client_host: &'a str,
    /// The clusters the user may use.
    pub clusters: &'a [&'a str],
    /// The form's CSRF token.
    pub csrf: &'a str,
    /// `approved` or `denied` (step `done`).
    pub outcome: &'a str,
}

/// Renders `name` with `ctx`, or the internal-error page.
fn render(templates: &Templates, name: &str, ctx: minijinja::Value, request_id: &str) -> Response {
    match templates.render(name, ctx) {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => {
            tracing::error!(request_id, template = name, error = %e, "template failed");
            error_page(
                templates,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                "The page could not be shown.",
                request_id,
                None,
            )
        }
    }
}

/// The device page at one of its steps.
pub fn device_page(templates: &Templates, page: &DevicePage<'_>, request_id: &str) -> Response {
    let ctx = context! {
        step => page.step,
        user_code => page.user_code,
        error => page.error,
        user => page.user,
        groups => page.groups,
        client_host => page.client_host,
        clusters => page.clusters,
        csrf => page.csrf,
        outcome => page.outcome,
        request_id,
        style => BASE_STYLE,
    };
    render(templates, "device.html", ctx, request_id)
}

/// One cluster on the kubeconfig page.
#[derive(Debug, serde::Serialize)]
pub struct ClusterLine<'a> {
    /// Its name (the kubectl context).
    pub name: &'a str,
    /// The API server.
    pub server: &'a str,
    /// The operator's description.
    pub description: &'a str,
}

/// The kubeconfig page.
pub fn kubeconfig_page(
    templates: &Templates,
    user: &str,
    groups: &[String],
    server: &str,
    clusters: &[ClusterLine<'_>],
    request_id: &str,
) -> Response {
    let ctx = context! { user, groups, server, clusters, request_id, style => BASE_STYLE };
    render(templates, "kubeconfig.html", ctx, request_id)
}

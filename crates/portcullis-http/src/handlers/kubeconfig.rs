//! `/oauth2/kubeconfig`: after web sign-in, the user's clusters with the commands that
//! sign kubectl in, and a kubeconfig download (`?download=1`) holding exec entries
//! only: no token, so it can be mailed around, and every call still signs in through
//! this server.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::cli::clusters_for;
use crate::cli_pages::{ClusterLine, kubeconfig_page};
use crate::request;
use crate::settings::ClusterSettings;
use crate::state::AppState;

/// The user entry's name for this server, as `portcullis login` names it.
fn user_name(server: &str) -> String {
    let host = url::Url::parse(server)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| server.to_owned());
    format!("portcullis@{host}")
}

/// A kubeconfig for `clusters` whose one user runs `portcullis kubectl-credential`.
pub fn kubeconfig(server: &str, clusters: &[&ClusterSettings]) -> Result<String, String> {
    use base64::Engine;
    let user = user_name(server);
    let cluster_entries: Vec<_> = clusters
        .iter()
        .map(|c| {
            let mut cluster = json!({ "server": c.server });
            if let Some(pem) = &c.certificate_authority {
                cluster["certificate-authority-data"] =
                    json!(base64::engine::general_purpose::STANDARD.encode(pem));
            }
            json!({ "name": c.name, "cluster": cluster })
        })
        .collect();
    let contexts: Vec<_> = clusters
        .iter()
        .map(|c| json!({ "name": c.name, "context": { "cluster": c.name, "user": user } }))
        .collect();
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": cluster_entries,
        "contexts": contexts,
        "current-context": clusters.first().map(|c| c.name.as_str()),
        "users": [{
            "name": user,
            "user": { "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "portcullis",
                "args": ["kubectl-credential", "--server", server],
                "interactiveMode": "IfAvailable",
                "provideClusterInfo": false,
            }},
        }],
    });
    serde_yaml::to_string(&doc).map_err(|e| e.to_string())
}

/// `GET /oauth2/kubeconfig[?download=1]`.
pub async fn page(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let request_id = request::request_id();
    let loaded = match crate::answer::page_session(&state, &parts, &request_id).await {
        Ok(loaded) => loaded,
        Err(answer) => return answer,
    };
    let identity = &loaded.prepared.identity;
    let clusters = clusters_for(&state, identity);
    let server = &state.settings.auth_origin;
    if parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "download=1"))
    {
        return match kubeconfig(server, &clusters) {
            Ok(yaml) => {
                let mut r = (StatusCode::OK, yaml).into_response();
                let h = r.headers_mut();
                h.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/yaml"),
                );
                h.insert(
                    http::header::CONTENT_DISPOSITION,
                    http::HeaderValue::from_static("attachment; filename=\"kubeconfig\""),
                );
                h.insert(
                    http::header::CACHE_CONTROL,
                    http::HeaderValue::from_static("no-store"),
                );
                r
            }
            Err(e) => {
                tracing::error!(request_id, error = %e, "could not write a kubeconfig");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        };
    }
    let lines: Vec<ClusterLine<'_>> = clusters
        .iter()
        .map(|c| ClusterLine {
            name: &c.name,
            server: &c.server,
            description: &c.description,
        })
        .collect();
    kubeconfig_page(
        &state.templates,
        &identity.user,
        &identity.groups,
        server,
        &lines,
        &request_id,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_download_holds_exec_entries_and_no_token() {
        let c = ClusterSettings {
            name: "c1".into(),
            server: "https://c1.example:6443".into(),
            certificate_authority: Some("-----BEGIN CERTIFICATE-----\nx\n".into()),
            description: String::new(),
            policy: Default::default(),
        };
        let yaml = kubeconfig("https://auth.example.com", &[&c]).unwrap();
        let v: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://c1.example:6443"
        );
        assert_eq!(
            v["contexts"][0]["context"]["user"],
            "portcullis@auth.example.com"
        );
        let exec = &v["users"][0]["user"]["exec"];
        assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(exec["args"][2], "https://auth.example.com");
        assert!(!yaml.contains("token"), "{yaml}");
    }
}

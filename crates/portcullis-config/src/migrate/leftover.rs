//! Whatever no translator took: an option at oauth2-proxy's default needs nothing;
//! any other value is reported with the reason Portcullis has no equivalent.

use super::ctx::{Ctx, NOBODY};
use super::duration::parse_go;
use super::emit::list;
use super::input::Setting;
use super::options::Kind;

/// Options that restrict who may sign in: dropping them would admit more people, so
/// the output fails closed instead.
const RESTRICTING: &[&str] = &[
    "keycloak_groups",
    "allowed_roles",
    "github_org",
    "github_team",
    "github_repo",
    "github_users",
    "gitlab_groups",
    "gitlab_projects",
    "google_groups",
    "bitbucket_team",
    "bitbucket_repository",
    "entra_id_allowed_tenants",
    "htpasswd_file",
];

/// Why an option has no Portcullis equivalent (by config key prefix or key).
fn reason(cfg: &str) -> &'static str {
    match cfg {
        "trusted_ips" => "skipping authentication by source address is deliberately not offered",
        "api_routes" => {
            "not needed: Portcullis answers 401 instead of a redirect to requests asking for JSON (Accept: application/json, XMLHttpRequest, fetch)"
        }
        "proxy_prefix" | "ping_path" | "ready_path" | "ping_user_agent" | "gcp_healthchecks" => {
            "the paths are fixed: /oauth2/*, /ping and /ready"
        }
        "provider_ca_files" | "use_system_trust_store" => {
            "TLS to the provider uses the system roots: set SSL_CERT_FILE to a bundle holding your CA"
        }
        "ssl_insecure_skip_verify"
        | "insecure_oidc_skip_issuer_verification"
        | "ssl_upstream_insecure_skip_verify"
        | "redis_insecure_skip_tls_verify" => "certificates and the issuer are always verified",
        "skip_oidc_discovery"
        | "oidc_jwks_url"
        | "login_url"
        | "redeem_url"
        | "profile_url"
        | "validate_url"
        | "oidc_public_key_files"
        | "skip_claims_from_profile_url"
        | "oidc_enabled_signing_algs"
        | "oidc_audience_claims" => {
            "Portcullis always uses OIDC discovery and the ID token's standard claims"
        }
        "approval_prompt" | "prompt" | "acr_values" | "auth_request_response_mode" | "resource" => {
            "Portcullis sends no extra authorization parameters"
        }
        "real_client_ip_header" => "Portcullis makes no decision on the client's address",
        "cookie_path" => "the session cookie's path is always /",
        "cookie_csrf_samesite" | "cookie_csrf_per_request_limit" => {
            "the CSRF cookie follows the session cookie's settings"
        }
        "pass_host_header" => "the original Host header is always passed to upstreams",
        "proxy_websockets" | "flush_interval" => {
            "WebSockets are always tunnelled and bodies streamed"
        }
        "session_cookie_minimal" => "sessions keep the tokens a refresh needs",
        "force_https" => "redirect HTTP to HTTPS in the proxy or load balancer in front",
        "backend_logout_url" => "sign-out ends the Portcullis session only",
        "relative_redirect_url" => "oidc.redirect_url is always absolute",
        "encode_state"
        | "allow_query_semicolons"
        | "force_json_errors"
        | "disable_keep_alives"
        | "errors_to_info_log"
        | "logging_local_time"
        | "silence_ping_logging"
        | "request_id_header" => "no equivalent setting",
        "pass_basic_auth" | "set_basic_auth" | "basic_auth_password" | "prefer_email_to_user" => {
            "no HTTP Basic credentials are sent; the user is X-Auth-Request-User (oidc.username_claim)"
        }
        "show_debug_on_error" => {
            "error pages never show internals; the request id links them to the log"
        }
        "metrics_secure_address" | "metrics_tls_cert_file" | "metrics_tls_key_file" => {
            "the metrics listener is plain HTTP (server.metrics_listen): keep it on an internal port"
        }
        "tls_min_version" | "tls_cipher_suites" => {
            "TLS 1.2 and 1.3 with rustls's safe defaults, not configurable"
        }
        "redis_connection_idle_timeout" => {
            "only redis.timeout (connect and command) is configurable"
        }
        "display_htpasswd_form" | "htpasswd_user_groups" => "no htpasswd sign-in",
        "custom_sign_in_logo" | "banner" | "footer" => {
            "put it in your own sign_in.html (pages.templates_dir)"
        }
        "jwt_key"
        | "jwt_key_file"
        | "pubjwk_url"
        | "signature_key"
        | "google_service_account_json"
        | "google_admin_email"
        | "google_target_principal"
        | "google_use_application_default_credentials"
        | "google_use_organization_id"
        | "google_admin_api_user_scope"
        | "github_token"
        | "azure_tenant"
        | "azure_graph_group_field"
        | "entra_id_federated_token_auth"
        | "provider_display_name"
        | "force_code_challenge_method"
        | "bearer_token_login_fallback"
        | "https_address" => "provider- or mode-specific: no Portcullis equivalent",
        c if c.starts_with("logging_")
            || c.ends_with("_logging_format")
            || c == "exclude_logging_paths" =>
        {
            "logs go to stdout/stderr as text or JSON (log.format); let the platform collect and filter them"
        }
        c if RESTRICTING.contains(&c) => {
            "a provider-specific restriction: use groups from the ID token (authz.allowed_groups) instead"
        }
        _ => "no Portcullis equivalent",
    }
}

/// Whether a given value is oauth2-proxy's default (so nothing changes without it).
fn at_default(x: &Setting) -> bool {
    let d = x.opt.default;
    match x.opt.kind {
        Kind::List => x.list().iter().all(|v| v.is_empty()) && d.is_empty() || x.list() == [d],
        Kind::Duration => parse_go(&x.text()) == parse_go(d),
        Kind::Bool => Some(x.flag()) == super::input::parse_bool(d),
        Kind::Str | Kind::Int => x.text() == d,
    }
}

/// Cosmetic options: without them only the looks of a page or a log line change.
const COSMETIC: &[(&str, &str)] = &[
    (
        "provider_display_name",
        "the sign-in page names no provider; customise it with pages.templates_dir",
    ),
    ("logging_local_time", "log timestamps are UTC"),
    (
        "silence_ping_logging",
        "filter /ping and /ready lines with log.level or in the log collector",
    ),
];

/// Reports every setting still in `c`; then closes access when needed.
pub(crate) fn finish(c: &mut Ctx) {
    for x in c.rest() {
        if let Some((_, why)) = COSMETIC.iter().find(|(k, _)| *k == x.opt.cfg) {
            c.out.note("pages", &format!("{}: {why}.", x.origin));
            continue;
        }
        if at_default(&x) && !x.opt.secret {
            c.out.note(
                "server",
                &format!(
                    "{}: oauth2-proxy's default value, nothing to translate.",
                    x.origin
                ),
            );
            continue;
        }
        if x.opt.secret && x.text().is_empty() {
            continue;
        }
        c.out.untranslated(&x.origin.to_string(), reason(x.opt.cfg));
        if RESTRICTING.contains(&x.opt.cfg) {
            c.fail_closed(&x.origin.to_string());
        }
    }
    if !c.closed.is_empty() {
        let why = c.closed.join(", ");
        c.out.set("authz", "allowed_emails", list([NOBODY]), "fail-closed placeholder", &[
            &format!("NOBODY IS ADMITTED until you replace this: the source restricted access in ways not translated ({why}). List the addresses to admit, or delete this line once groups express the restriction."),
        ]);
    }
}

//! oauth2-proxy's (legacy, TOML) options: flag name, config-file key, value kind and
//! default, as its `pkg/apis/options` flag sets define them. The environment name is
//! `OAUTH2_PROXY_` + the config key in upper case (viper's `AutomaticEnv`).

/// How a value is parsed (pflag and viper semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--flag`, `--flag=false`; in files a TOML boolean.
    Bool,
    /// One string.
    Str,
    /// Repeatable flag (each occurrence split on commas), comma-separated in the
    /// environment, a TOML array (or a comma-separated string) in the file.
    List,
    /// A Go duration (`168h`, `1h30m`, `15m`).
    Duration,
    /// An integer.
    Int,
}

/// One oauth2-proxy option.
#[derive(Debug)]
pub(crate) struct Opt {
    /// The flag without dashes, e.g. `cookie-secret`.
    pub flag: &'static str,
    /// The config-file key, e.g. `cookie_secret`.
    pub cfg: &'static str,
    pub kind: Kind,
    /// oauth2-proxy's default, as text (`""` for none or an empty list).
    pub default: &'static str,
    /// Whether the value is a secret (or may hold one): never written anywhere.
    pub secret: bool,
}

const fn o(flag: &'static str, cfg: &'static str, kind: Kind, default: &'static str) -> Opt {
    Opt {
        flag,
        cfg,
        kind,
        default,
        secret: false,
    }
}

const fn secret(flag: &'static str, cfg: &'static str, kind: Kind) -> Opt {
    Opt {
        flag,
        cfg,
        kind,
        default: "",
        secret: true,
    }
}

use Kind::{Bool, Duration, Int, List, Str};

/// Every legacy option of oauth2-proxy 7.x.
pub(crate) const OPTIONS: &[Opt] = &[
    // Upstreams
    o("flush-interval", "flush_interval", Duration, "1s"),
    o("pass-host-header", "pass_host_header", Bool, "true"),
    o("proxy-websockets", "proxy_websockets", Bool, "true"),
    o(
        "ssl-upstream-insecure-skip-verify",
        "ssl_upstream_insecure_skip_verify",
        Bool,
        "false",
    ),
    o("upstream", "upstreams", List, ""),
    o("upstream-timeout", "upstream_timeout", Duration, "30s"),
    o("disable-keep-alives", "disable_keep_alives", Bool, "false"),
    // Headers
    o("pass-basic-auth", "pass_basic_auth", Bool, "true"),
    o("pass-access-token", "pass_access_token", Bool, "false"),
    o("pass-user-headers", "pass_user_headers", Bool, "true"),
    o(
        "pass-authorization-header",
        "pass_authorization_header",
        Bool,
        "false",
    ),
    o("set-basic-auth", "set_basic_auth", Bool, "false"),
    o("set-xauthrequest", "set_xauthrequest", Bool, "false"),
    o(
        "set-authorization-header",
        "set_authorization_header",
        Bool,
        "false",
    ),
    o(
        "prefer-email-to-user",
        "prefer_email_to_user",
        Bool,
        "false",
    ),
    secret("basic-auth-password", "basic_auth_password", Str),
    o(
        "skip-auth-strip-headers",
        "skip_auth_strip_headers",
        Bool,
        "true",
    ),
    // Server
    o("metrics-address", "metrics_address", Str, ""),
    o("metrics-secure-address", "metrics_secure_address", Str, ""),
    o("metrics-tls-cert-file", "metrics_tls_cert_file", Str, ""),
    o("metrics-tls-key-file", "metrics_tls_key_file", Str, ""),
    o("http-address", "http_address", Str, "127.0.0.1:4180"),
    o("https-address", "https_address", Str, ":443"),
    o("tls-cert-file", "tls_cert_file", Str, ""),
    o("tls-key-file", "tls_key_file", Str, ""),
    o("tls-min-version", "tls_min_version", Str, ""),
    o("tls-cipher-suite", "tls_cipher_suites", List, ""),
    // Provider
    o("client-id", "client_id", Str, ""),
    secret("client-secret", "client_secret", Str),
    o("client-secret-file", "client_secret_file", Str, ""),
    o("keycloak-group", "keycloak_groups", List, ""),
    o("azure-tenant", "azure_tenant", Str, "common"),
    o(
        "azure-graph-group-field",
        "azure_graph_group_field",
        Str,
        "",
    ),
    o(
        "entra-id-allowed-tenant",
        "entra_id_allowed_tenants",
        List,
        "",
    ),
    o(
        "entra-id-federated-token-auth",
        "entra_id_federated_token_auth",
        Bool,
        "false",
    ),
    o("bitbucket-team", "bitbucket_team", Str, ""),
    o("bitbucket-repository", "bitbucket_repository", Str, ""),
    o("github-org", "github_org", Str, ""),
    o("github-team", "github_team", Str, ""),
    o("github-repo", "github_repo", Str, ""),
    secret("github-token", "github_token", Str),
    o("github-user", "github_users", List, ""),
    o("gitlab-group", "gitlab_groups", List, ""),
    o("gitlab-project", "gitlab_projects", List, ""),
    o("google-group", "google_groups", List, ""),
    o("google-admin-email", "google_admin_email", Str, ""),
    o(
        "google-service-account-json",
        "google_service_account_json",
        Str,
        "",
    ),
    o(
        "google-use-application-default-credentials",
        "google_use_application_default_credentials",
        Bool,
        "false",
    ),
    o(
        "google-target-principal",
        "google_target_principal",
        Str,
        "",
    ),
    o(
        "google-use-organization-id",
        "google_use_organization_id",
        Bool,
        "false",
    ),
    o(
        "google-admin-api-user-scope",
        "google_admin_api_user_scope",
        Str,
        "",
    ),
    o("provider", "provider", Str, "google"),
    o("provider-display-name", "provider_display_name", Str, ""),
    o("provider-ca-file", "provider_ca_files", List, ""),
    o(
        "use-system-trust-store",
        "use_system_trust_store",
        Bool,
        "false",
    ),
    o("oidc-issuer-url", "oidc_issuer_url", Str, ""),
    o(
        "insecure-oidc-allow-unverified-email",
        "insecure_oidc_allow_unverified_email",
        Bool,
        "false",
    ),
    o(
        "insecure-oidc-skip-issuer-verification",
        "insecure_oidc_skip_issuer_verification",
        Bool,
        "false",
    ),
    o(
        "insecure-oidc-skip-nonce",
        "insecure_oidc_skip_nonce",
        Bool,
        "true",
    ),
    o("skip-oidc-discovery", "skip_oidc_discovery", Bool, "false"),
    o("oidc-jwks-url", "oidc_jwks_url", Str, ""),
    o("oidc-email-claim", "oidc_email_claim", Str, "email"),
    o("oidc-groups-claim", "oidc_groups_claim", Str, "groups"),
    o("oidc-audience-claim", "oidc_audience_claims", List, "aud"),
    o("oidc-extra-audience", "oidc_extra_audiences", List, ""),
    o("oidc-public-key-file", "oidc_public_key_files", List, ""),
    o(
        "oidc-enabled-signing-alg",
        "oidc_enabled_signing_algs",
        List,
        "",
    ),
    o("login-url", "login_url", Str, ""),
    o(
        "auth-request-response-mode",
        "auth_request_response_mode",
        Str,
        "",
    ),
    o("redeem-url", "redeem_url", Str, ""),
    o("profile-url", "profile_url", Str, ""),
    o(
        "skip-claims-from-profile-url",
        "skip_claims_from_profile_url",
        Bool,
        "false",
    ),
    o("resource", "resource", Str, ""),
    o("validate-url", "validate_url", Str, ""),
    o("scope", "scope", Str, ""),
    o("prompt", "prompt", Str, ""),
    o("approval-prompt", "approval_prompt", Str, "force"),
    o("user-id-claim", "user_id_claim", Str, "email"),
    o("allowed-group", "allowed_groups", List, ""),
    o("allowed-role", "allowed_roles", List, ""),
    o("backend-logout-url", "backend_logout_url", Str, ""),
    o("acr-values", "acr_values", Str, ""),
    secret("jwt-key", "jwt_key", Str),
    o("jwt-key-file", "jwt_key_file", Str, ""),
    o("pubjwk-url", "pubjwk_url", Str, ""),
    o("code-challenge-method", "code_challenge_method", Str, ""),
    o(
        "force-code-challenge-method",
        "force_code_challenge_method",
        Str,
        "",
    ),
    // Options
    o("proxy-prefix", "proxy_prefix", Str, "/oauth2"),
    o("ping-path", "ping_path", Str, "/ping"),
    o("ping-user-agent", "ping_user_agent", Str, ""),
    o("ready-path", "ready_path", Str, "/ready"),
    o("reverse-proxy", "reverse_proxy", Bool, "false"),
    o(
        "real-client-ip-header",
        "real_client_ip_header",
        Str,
        "X-Real-IP",
    ),
    o("trusted-proxy-ip", "trusted_proxy_ips", List, ""),
    o("trusted-ip", "trusted_ips", List, ""),
    o("force-https", "force_https", Bool, "false"),
    o("redirect-url", "redirect_url", Str, ""),
    o(
        "relative-redirect-url",
        "relative_redirect_url",
        Bool,
        "false",
    ),
    o(
        "authenticated-emails-file",
        "authenticated_emails_file",
        Str,
        "",
    ),
    o("email-domain", "email_domains", List, ""),
    o("whitelist-domain", "whitelist_domains", List, ""),
    o("htpasswd-file", "htpasswd_file", Str, ""),
    o("htpasswd-user-group", "htpasswd_user_groups", List, ""),
    o("api-route", "api_routes", List, ""),
    o("skip-auth-regex", "skip_auth_regex", List, ""),
    o("skip-auth-route", "skip_auth_routes", List, ""),
    o(
        "skip-jwt-bearer-tokens",
        "skip_jwt_bearer_tokens",
        Bool,
        "false",
    ),
    o(
        "bearer-token-login-fallback",
        "bearer_token_login_fallback",
        Bool,
        "true",
    ),
    o("extra-jwt-issuers", "extra_jwt_issuers", List, ""),
    o(
        "skip-provider-button",
        "skip_provider_button",
        Bool,
        "false",
    ),
    o(
        "ssl-insecure-skip-verify",
        "ssl_insecure_skip_verify",
        Bool,
        "false",
    ),
    o("skip-auth-preflight", "skip_auth_preflight", Bool, "false"),
    o("force-json-errors", "force_json_errors", Bool, "false"),
    o("encode-state", "encode_state", Bool, "false"),
    o(
        "allow-query-semicolons",
        "allow_query_semicolons",
        Bool,
        "false",
    ),
    secret("signature-key", "signature_key", Str),
    o("gcp-healthchecks", "gcp_healthchecks", Bool, "false"),
    // Sessions and Redis
    o("session-store-type", "session_store_type", Str, "cookie"),
    o(
        "session-cookie-minimal",
        "session_cookie_minimal",
        Bool,
        "false",
    ),
    secret("redis-connection-url", "redis_connection_url", Str),
    o("redis-username", "redis_username", Str, ""),
    secret("redis-password", "redis_password", Str),
    o("redis-use-sentinel", "redis_use_sentinel", Bool, "false"),
    secret("redis-sentinel-password", "redis_sentinel_password", Str),
    o(
        "redis-sentinel-master-name",
        "redis_sentinel_master_name",
        Str,
        "",
    ),
    o("redis-ca-path", "redis_ca_path", Str, ""),
    o(
        "redis-insecure-skip-tls-verify",
        "redis_insecure_skip_tls_verify",
        Bool,
        "false",
    ),
    secret(
        "redis-sentinel-connection-urls",
        "redis_sentinel_connection_urls",
        List,
    ),
    o("redis-use-cluster", "redis_use_cluster", Bool, "false"),
    secret(
        "redis-cluster-connection-urls",
        "redis_cluster_connection_urls",
        List,
    ),
    o(
        "redis-connection-idle-timeout",
        "redis_connection_idle_timeout",
        Int,
        "0",
    ),
    // Cookie
    o("cookie-name", "cookie_name", Str, "_oauth2_proxy"),
    secret("cookie-secret", "cookie_secret", Str),
    o("cookie-secret-file", "cookie_secret_file", Str, ""),
    o("cookie-domain", "cookie_domains", List, ""),
    o("cookie-path", "cookie_path", Str, "/"),
    o("cookie-expire", "cookie_expire", Duration, "168h"),
    o("cookie-refresh", "cookie_refresh", Duration, "0s"),
    o("cookie-secure", "cookie_secure", Bool, "true"),
    o("cookie-httponly", "cookie_httponly", Bool, "true"),
    o("cookie-samesite", "cookie_samesite", Str, ""),
    o(
        "cookie-csrf-per-request",
        "cookie_csrf_per_request",
        Bool,
        "false",
    ),
    o(
        "cookie-csrf-per-request-limit",
        "cookie_csrf_per_request_limit",
        Int,
        "0",
    ),
    o("cookie-csrf-expire", "cookie_csrf_expire", Duration, "15m"),
    o("cookie-csrf-samesite", "cookie_csrf_samesite", Str, ""),
    // Logging
    o("auth-logging", "auth_logging", Bool, "true"),
    o("auth-logging-format", "auth_logging_format", Str, ""),
    o("standard-logging", "standard_logging", Bool, "true"),
    o(
        "standard-logging-format",
        "standard_logging_format",
        Str,
        "",
    ),
    o("request-logging", "request_logging", Bool, "true"),
    o("request-logging-format", "request_logging_format", Str, ""),
    o("errors-to-info-log", "errors_to_info_log", Bool, "false"),
    o("exclude-logging-path", "exclude_logging_paths", List, ""),
    o("logging-local-time", "logging_local_time", Bool, "true"),
    o(
        "silence-ping-logging",
        "silence_ping_logging",
        Bool,
        "false",
    ),
    o(
        "request-id-header",
        "request_id_header",
        Str,
        "X-Request-Id",
    ),
    o("logging-filename", "logging_filename", Str, ""),
    o("logging-max-size", "logging_max_size", Int, "100"),
    o("logging-max-age", "logging_max_age", Int, "7"),
    o("logging-max-backups", "logging_max_backups", Int, "0"),
    o("logging-compress", "logging_compress", Bool, "false"),
    // Templates
    o("custom-templates-dir", "custom_templates_dir", Str, ""),
    o("custom-sign-in-logo", "custom_sign_in_logo", Str, ""),
    o("banner", "banner", Str, ""),
    o("footer", "footer", Str, ""),
    o(
        "display-htpasswd-form",
        "display_htpasswd_form",
        Bool,
        "true",
    ),
    o("show-debug-on-error", "show_debug_on_error", Bool, "false"),
];

/// The option whose flag is `flag`.
pub(crate) fn by_flag(flag: &str) -> Option<&'static Opt> {
    OPTIONS.iter().find(|o| o.flag == flag)
}

/// The option whose config-file key is `cfg`.
pub(crate) fn by_cfg(cfg: &str) -> Option<&'static Opt> {
    OPTIONS.iter().find(|o| o.cfg == cfg)
}

#![allow(clippy::unwrap_used)]
use super::settings::MAX_WORKER_THREADS;
use super::*;
use crate::schema::Scopes;

fn good() -> Config {
    let mut c = Config::default();
    c.oidc.issuer_url = "https://dex.example.com".into();
    c.oidc.client_id = "portcullis".into();
    c.oidc.client_secret = "s3cret".into();
    c.oidc.redirect_url = "https://auth.example.com/oauth2/callback".into();
    c.cookie.secrets = vec![Key::from_bytes([1; 32]).to_base64()];
    c.cookie.domains = vec![".example.com".into()];
    c.redirect.whitelist_domains = vec![".example.com".into()];
    c
}

#[test]
fn good_config_validates() {
    let s = validate(&good()).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:4180");
    assert_eq!(
        s.oidc.scopes,
        ["openid", "email", "profile", "groups", "offline_access"]
    );
    assert_eq!(s.keys.len(), 1);
}

#[test]
fn every_problem_is_reported() {
    let mut c = good();
    c.server.listen = "nope".into();
    c.server.trusted_proxies = vec!["10.0.0.0/8".into(), "bad".into()];
    c.oidc.issuer_url = String::new();
    c.oidc.client_secret_file = "/x".into();
    c.oidc.scopes = Scopes::Text("email".into());
    c.cookie.secrets = vec!["short".into()];
    c.cookie.samesite = "sometimes".into();
    c.redirect.whitelist_domains = vec!["*.example.com".into(), "https://x.com".into()];
    c.headers.token = "bad header".into();
    let errors = validate(&c).unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for k in [
        "server.listen",
        "server.trusted_proxies",
        "oidc.issuer_url",
        "oidc.client_secret",
        "oidc.scopes",
        "cookie.secrets[0]",
        "cookie.samesite",
        "redirect.whitelist_domains",
        "headers.token",
    ] {
        assert!(keys.contains(&k), "missing {k} in {errors:?}");
    }
    assert_eq!(
        keys.iter()
            .filter(|k| **k == "redirect.whitelist_domains")
            .count(),
        2
    );
    assert!(!format!("{errors:?}").contains("s3cret"));
}

#[test]
fn published_key_is_refused_and_strings_are_lenient() {
    let mut c = good();
    c.cookie.secrets = vec!["REPLACEwithTheOutputOfPortcullisSecret00000=".into()];
    let errors = validate(&c).unwrap_err();
    assert!(
        errors[0].message.contains("published example key"),
        "{errors:?}"
    );

    let parsed: Config =
        toml::from_str("[oidc]\nclient_secret = 12345\n[cookie]\nsecrets = \"abc\"").unwrap();
    assert_eq!(parsed.oidc.client_secret, "12345");
    assert_eq!(parsed.cookie.secrets, ["abc"]);
}

#[test]
fn redis_topologies() {
    let mut c = good();
    c.session.store = "redis".into();
    assert!(
        validate(&c)
            .unwrap_err()
            .iter()
            .any(|e| e.key == "redis.url")
    );
    c.redis.url = "redis://:pw@r:6379/0".into();
    assert!(validate(&c).is_ok());
    c.redis.mode = "sentinel".into();
    let keys: Vec<String> = validate(&c)
        .unwrap_err()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["redis.nodes", "redis.sentinel_master"]);
    c.redis.nodes = vec!["redis://s1:26379".into()];
    c.redis.sentinel_master = "mymaster".into();
    assert!(validate(&c).is_ok());
    c.redis.mode = "cluster".into();
    c.redis.nodes = vec!["http://n1".into()];
    let errors = validate(&c).unwrap_err();
    assert_eq!(errors[0].key, "redis.nodes");
    c.redis.mode = "ring".into();
    assert!(
        validate(&c)
            .unwrap_err()
            .iter()
            .any(|e| e.key == "redis.mode")
    );
    assert!(
        !format!("{:?}", validate(&c)).contains("pw"),
        "passwords never echoed"
    );
}

#[test]
fn serving_defaults() {
    let s = validate(&good()).unwrap();
    assert!(s.serving.metrics_listen.is_none());
    assert!(s.serving.tls.is_none());
    assert_eq!(s.serving.max_header_bytes, 16384);
    assert_eq!(s.serving.shutdown_delay, Duration::from_secs(5));
    assert_eq!(s.serving.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(s.http.limits.max_concurrent_requests, 1024);
    assert_eq!(s.http.limits.request_timeout, Duration::from_secs(30));
    assert_eq!(s.http.limits.max_body_bytes, 64 * 1024);
}

fn error_keys(c: &Config) -> Vec<String> {
    validate(c)
        .unwrap_err()
        .into_iter()
        .map(|e| e.key)
        .collect()
}

#[test]
fn metrics_listen_is_an_address_apart_from_listen() {
    let mut c = good();
    c.server.metrics_listen = "0.0.0.0:9090".into();
    let s = validate(&c).unwrap();
    assert_eq!(s.serving.metrics_listen.unwrap().port(), 9090);
    c.server.metrics_listen = "localhost:9090".into();
    assert_eq!(error_keys(&c), ["server.metrics_listen"]);
    c.server.metrics_listen = c.server.listen.clone();
    let errors = validate(&c).unwrap_err();
    assert!(errors[0].message.contains("must differ"), "{errors:?}");
}

#[test]
fn tls_files_come_in_pairs_and_are_pem() {
    let dir = std::env::temp_dir().join(format!("portcullis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let mut c = good();
    c.server.tls_cert_file = cert.display().to_string();
    assert_eq!(error_keys(&c), ["server.tls_key_file"]);
    c.server.tls_cert_file = String::new();
    c.server.tls_key_file = key.display().to_string();
    assert_eq!(error_keys(&c), ["server.tls_cert_file"]);
    c.server.tls_cert_file = cert.display().to_string();
    let tls = validate(&c).unwrap().serving.tls.unwrap();
    assert_eq!((tls.cert, tls.key), (cert.clone(), key.clone()));
    // Swapped files: each lacks the block it should have.
    c.server.tls_cert_file = key.display().to_string();
    c.server.tls_key_file = cert.display().to_string();
    assert_eq!(
        error_keys(&c),
        ["server.tls_cert_file", "server.tls_key_file"]
    );
    c.server.tls_cert_file = dir.join("missing.pem").display().to_string();
    let errors = validate(&c).unwrap_err();
    assert!(errors[0].message.contains("cannot read"), "{errors:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn limits_and_shutdown_bounds() {
    let mut c = good();
    c.server.max_header_bytes = 4096;
    c.server.max_concurrent_requests = 0;
    c.server.request_timeout = Duration::from_millis(10);
    c.server.shutdown_timeout = Duration::ZERO;
    c.server.shutdown_delay = Duration::from_secs(3600);
    c.server.worker_threads = MAX_WORKER_THREADS + 1;
    assert_eq!(
        error_keys(&c),
        [
            "server.max_header_bytes",
            "server.max_concurrent_requests",
            "server.worker_threads",
            "server.request_timeout",
            "server.shutdown_timeout",
            "server.shutdown_delay",
        ]
    );
    c.server.max_header_bytes = MAX_HEADER_BYTES + 1;
    c.server.max_concurrent_requests = 1;
    c.server.request_timeout = Duration::from_secs(1);
    c.server.shutdown_timeout = Duration::from_secs(1);
    c.server.shutdown_delay = Duration::ZERO;
    c.server.worker_threads = 1;
    assert_eq!(error_keys(&c), ["server.max_header_bytes"]);
    c.server.max_header_bytes = MIN_HEADER_BYTES;
    let s = validate(&c).unwrap();
    assert_eq!(s.serving.shutdown_delay, Duration::ZERO);
    assert_eq!(s.serving.worker_threads, 1);
    assert_eq!(s.http.limits.max_concurrent_requests, 1);
    // Durations are read in the humantime form, as every other duration.
    let parsed: Config = toml::from_str(
        "[server]\nrequest_timeout = \"2s\"\nshutdown_delay = \"250ms\"\nshutdown_timeout = \"1m\"",
    )
    .unwrap();
    assert_eq!(parsed.server.request_timeout, Duration::from_secs(2));
    assert_eq!(parsed.server.shutdown_delay, Duration::from_millis(250));
    assert_eq!(parsed.server.shutdown_timeout, Duration::from_secs(60));
}

#[test]
fn samesite_none_needs_secure() {
    let mut c = good();
    c.cookie.samesite = "none".into();
    c.cookie.secure = false;
    assert!(
        validate(&c)
            .unwrap_err()
            .iter()
            .any(|e| e.key == "cookie.samesite")
    );
}

#[test]
fn clusters_are_validated() {
    use crate::schema::Cluster;
    let mut c = good();
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    c.clusters = vec![
        Cluster {
            name: "prod-eu".into(),
            server: "https://prod-eu.example.com:6443/".into(),
            certificate_authority: pem.into(),
            allowed_groups: vec!["platform".into()],
            ..Cluster::default()
        },
        Cluster {
            name: "dev".into(),
            server: "https://dev.example.com".into(),
            ..Cluster::default()
        },
    ];
    let s = validate(&c).unwrap();
    assert_eq!(s.http.clusters.len(), 2);
    assert_eq!(
        s.http.clusters[0].server,
        "https://prod-eu.example.com:6443"
    );
    assert_eq!(
        s.http.clusters[0].certificate_authority.as_deref(),
        Some(pem)
    );
    assert!(!s.http.clusters[0].policy.is_open() && s.http.clusters[1].policy.is_open());

    c.clusters = vec![
        Cluster {
            name: "Prod EU".into(),
            server: "ftp://x".into(),
            certificate_authority: "/nonexistent/ca.pem".into(),
            ..Cluster::default()
        },
        Cluster {
            name: "dev".into(),
            server: "https://u:p@dev.example.com".into(),
            certificate_authority: "-----BEGIN KEY-----".into(),
            ..Cluster::default()
        },
        Cluster {
            name: "dev".into(),
            server: "https://dev.example.com".into(),
            ..Cluster::default()
        },
    ];
    let errors = validate(&c).unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for k in [
        "clusters[0].name",
        "clusters[0].server",
        "clusters[0].certificate_authority",
        "clusters[1].server",
        "clusters[1].certificate_authority",
        "clusters[2].name",
    ] {
        assert!(keys.contains(&k), "missing {k} in {errors:?}");
    }
}

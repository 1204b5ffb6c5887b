//! Micro-benchmarks of what `/oauth2/auth` does on every request of every dashboard:
//! opening the session cookie, validating a redirect (start/sign-out), building the
//! response headers, and the whole handler in process (no sockets).
//!
//! Run with `cargo bench -p portcullis-http`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use portcullis_core::SessionSettings;
use portcullis_core::authz::AuthzSettings;
use portcullis_core::identity::{ClaimSettings, HeaderSettings, TokenFormat, identity_headers};
use portcullis_core::redirect::{RedirectSettings, Whitelist, validate_redirect};
use portcullis_core::refresh::RefreshSettings;
use portcullis_http::AppState;
use portcullis_http::settings::{CookieSettings, HttpSettings, SameSite};
use portcullis_session::store::{AnyStore, CookieStore};
use portcullis_session::{Key, Keyring, SessionState};
use tower::ServiceExt;

/// An ID token shaped like Dex's (RS256 signature length, a few groups). Its
/// signature is not checked on this path: the session was verified at sign-in.
fn id_token(groups: usize) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#);
    let groups: Vec<String> = (0..groups)
        .map(|i| format!("team-{i:04}-kubernetes-readers"))
        .collect();
    let payload = serde_json::json!({
        "iss": "https://dex.example.com", "sub": "CiQ4YjI0ZTM0Zi0xNmRlLTRhZTgtYWI2Mi1jOWM1ZTU5OGE2ZGMSBWxvY2Fs",
        "aud": "portcullis", "exp": 4_000_000_000u64, "iat": 1_700_000_000u64, "at_hash": "x1y2z3",
        "email": "alice@example.com", "email_verified": true, "name": "Alice Admin",
        "preferred_username": "alice", "groups": groups,
    });
    let payload = b64.encode(payload.to_string());
    format!("{header}.{payload}.{}", b64.encode([7u8; 256]))
}

fn state() -> (Arc<AppState>, String) {
    let keyring = Arc::new(Keyring::new(&[Key::from_bytes([1; 32])]).unwrap());
    let session = SessionState {
        id: "sid".into(),
        id_token: id_token(5),
        id_token_expires_at: 4_000_000_000,
        refresh_token: Some("ChlhbGljZS1yZWZyZXNoLXRva2VuLWZvci1iZW5jaBIZbXZ3".into()),
        created_at: 1_700_000_000,
        expires_at: 4_000_000_000,
        grant: None,
    };
    let cookie = keyring.seal_json("_portcullis", &session).unwrap();
    let settings = HttpSettings {
        trusted_proxies: vec![],
        cookie: CookieSettings {
            name: "_portcullis".into(),
            domains: vec![".example.com".into()],
            secure: true,
            same_site: SameSite::Lax,
            csrf_lifetime: Duration::from_secs(900),
            chunk_size: 3800,
        },
        redirect: RedirectSettings {
            whitelist: Whitelist::parse([".example.com"]).unwrap(),
            default: "/".into(),
        },
        authz: AuthzSettings::default(),
        auth_origin: "https://auth.example.com".into(),
        pages: Default::default(),
        upstreams: vec![],
        clusters: vec![],
        limits: Default::default(),
    };
    let sessions = SessionSettings {
        claims: ClaimSettings {
            username: "email".into(),
            groups: "groups".into(),
        },
        headers: HeaderSettings {
            token: "Authorization".into(),
            token_format: TokenFormat::Bearer,
        },
        lifetime: Duration::from_secs(43_200),
        refresh: RefreshSettings {
            before: Duration::from_secs(60),
            grace: Duration::from_secs(60),
            wait: Duration::from_secs(15),
        },
        bearer: Default::default(),
    };
    let store = AnyStore::Cookie(CookieStore::new(Arc::clone(&keyring), "_portcullis"));
    let state = Arc::new(AppState::new(settings, sessions, keyring, store));
    (state, cookie)
}

fn benches(c: &mut Criterion) {
    let (state, cookie) = state();
    c.bench_function("open session cookie (5 groups)", |b| {
        b.iter(|| {
            state
                .keyring
                .open_json::<SessionState>("_portcullis", &cookie)
                .unwrap()
        })
    });
    let whitelist = Whitelist::parse([".example.com", "auth.example.com"]).unwrap();
    c.bench_function("validate redirect (absolute, whitelisted)", |b| {
        b.iter(|| {
            validate_redirect(
                "https://dashboard.c1.example.com/#/workloads?namespace=default",
                &whitelist,
            )
            .unwrap()
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let loaded = rt.block_on(async {
        let mut headers = http::HeaderMap::new();
        headers.insert("cookie", format!("_portcullis={cookie}").parse().unwrap());
        let cookies = portcullis_http::cookies::RequestCookies::parse(&headers);
        let value = portcullis_http::request::session_cookie(&state, &cookies);
        match state.sessions.load(value.as_deref(), 1_800_000_000).await {
            portcullis_core::Lookup::Valid(l) => l,
            other => panic!("{}", other.reason()),
        }
    });
    c.bench_function("build /oauth2/auth response headers", |b| {
        b.iter(|| {
            let p = &loaded.prepared;
            identity_headers(
                &state.sessions.settings().headers,
                &p.state.id_token,
                &p.identity,
            )
        })
    });
    let app = portcullis_http::app(Arc::clone(&state));
    let handler = |b: &mut criterion::Bencher<'_>| {
        b.to_async(&rt).iter(|| {
            let req = Request::get("/oauth2/auth")
                .header("host", "auth.example.com")
                .header("cookie", format!("_portcullis={cookie}"))
                .body(Body::empty())
                .unwrap();
            let app = app.clone();
            async move {
                let r = app.oneshot(req).await.unwrap();
                assert_eq!(r.status(), 202);
            }
        })
    };
    c.bench_function("/oauth2/auth handler, valid session (in process)", handler);
    // The same with the access log on, as `log.level = "info"` runs it: formatted
    // in full, written to a sink (the runtime is this thread's, so the thread's
    // default subscriber applies).
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::sink)
        .finish();
    let logging = tracing::subscriber::set_default(subscriber);
    c.bench_function(
        "/oauth2/auth handler, valid session, access log on (in process)",
        handler,
    );
    drop(logging);
    let quiet = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,portcullis::access=off",
        ))
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::sink)
        .finish();
    let logging = tracing::subscriber::set_default(quiet);
    c.bench_function(
        "/oauth2/auth handler, valid session, info logging without access lines (in process)",
        handler,
    );
    drop(logging);
    let json = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .with_writer(std::io::sink)
        .finish();
    let _logging = tracing::subscriber::set_default(json);
    c.bench_function(
        "/oauth2/auth handler, valid session, JSON access log on (in process)",
        handler,
    );
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);

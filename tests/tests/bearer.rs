//! Bearer tokens (`Authorization: Bearer <JWT>`) for kubectl-style clients, CI jobs
//! and scripts, with real tokens from real providers: accepted when valid; refused
//! when expired, for another audience, from another issuer, `alg: none`, with a bad
//! signature or a tampered payload.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine as _;
use portcullis_e2e::client::http;
use portcullis_e2e::idp::{CLIENT_ID, CLIENT_SECRET, Idp, IdpOptions};
use portcullis_e2e::portcullis_server::{Options, Portcullis};
use reqwest::StatusCode;

const KUBECTL: &str = "kubectl:kubectl-secret:";

async fn auth(p: &Portcullis, path: &str, bearer: &str) -> reqwest::Response {
    http()
        .get(format!("{}{path}", p.public_url))
        .header("authorization", format!("Bearer {bearer}"))
        .send()
        .await
        .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

#[tokio::test]
async fn bearer_tokens_valid_and_invalid() {
    let Some(idp) = Idp::start(IdpOptions {
        clients: vec![KUBECTL.into()],
        ..Default::default()
    })
    .await
    else {
        return;
    };
    // A second provider: configured as an extra issuer for the kubectl audience.
    let other = Idp::start(IdpOptions {
        clients: vec![KUBECTL.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    // A third one nobody trusts.
    let stranger = Idp::start(IdpOptions::default()).await.unwrap();
    let p = Portcullis::start(Options::new(&idp.issuer).with(&format!(
        r#"
        [bearer]
        enabled = true
        audiences = ["{CLIENT_ID}"]
        [[bearer.extra_issuers]]
        issuer_url = "{}"
        audiences = ["kubectl"]
        "#,
        other.issuer
    )))
    .await;
    // Valid: a token for Portcullis' own client, from a real login.
    let token = idp.id_token(CLIENT_ID, CLIENT_SECRET, "alice").await;
    let r = auth(&p, "/oauth2/auth", &token).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        r.headers()["authorization"].to_str().unwrap(),
        format!("Bearer {token}"),
        "the same token is passed on"
    );
    assert_eq!(r.headers()["x-auth-request-email"], "alice@example.test");
    assert_eq!(
        r.headers()["x-auth-request-groups"],
        "platform-admins,developers"
    );
    // Cached: the second request is answered the same way.
    assert_eq!(
        auth(&p, "/oauth2/auth", &token).await.status(),
        StatusCode::ACCEPTED
    );
    // Policy applies to bearer identities too.
    assert_eq!(
        auth(&p, "/oauth2/auth?allowed_groups=contractors", &token)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    // userinfo and forward-auth take it as well.
    let r = auth(&p, "/oauth2/userinfo", &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["email"],
        "alice@example.test"
    );
    assert_eq!(
        auth(&p, "/oauth2/forward_auth", &token).await.status(),
        StatusCode::OK
    );

    // Wrong audience: a kubectl token from the main issuer (only `portcullis` is
    // accepted there).
    let kubectl_token = idp.id_token("kubectl", "kubectl-secret", "bob").await;
    assert_eq!(
        auth(&p, "/oauth2/auth", &kubectl_token).await.status(),
        StatusCode::UNAUTHORIZED,
        "wrong audience"
    );
    // Extra issuer, its own audience: accepted.
    let extra_token = other.id_token("kubectl", "kubectl-secret", "bob").await;
    let r = portcullis_e2e::eventually(
        "extra issuer discovered",
        Duration::from_secs(20),
        || async {
            let r = auth(&p, "/oauth2/auth", &extra_token).await;
            (r.status() != StatusCode::SERVICE_UNAVAILABLE).then_some(r)
        },
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "extra issuer token");
    assert_eq!(r.headers()["x-auth-request-email"], "bob@example.test");
    // Extra issuer, but the main client's audience: refused.
    let other_portcullis = other.id_token(CLIENT_ID, CLIENT_SECRET, "bob").await;
    assert_eq!(
        auth(&p, "/oauth2/auth", &other_portcullis).await.status(),
        StatusCode::UNAUTHORIZED,
        "audience of the extra issuer is kubectl only"
    );
    // Wrong issuer: a perfectly valid token from a provider nobody configured.
    let foreign = stranger.id_token(CLIENT_ID, CLIENT_SECRET, "alice").await;
    assert_eq!(
        auth(&p, "/oauth2/auth", &foreign).await.status(),
        StatusCode::UNAUTHORIZED,
        "wrong issuer"
    );
    // Forged issuer: the stranger's token relabelled with our issuer does not verify.
    let mut parts = segments(&foreign);
    let mut claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&parts[1])
            .unwrap(),
    )
    .unwrap();
    claims["iss"] = serde_json::Value::String(idp.issuer.clone());
    parts[1] = b64(claims.to_string().as_bytes());
    assert_eq!(
        auth(&p, "/oauth2/auth", &parts.join(".")).await.status(),
        StatusCode::UNAUTHORIZED,
        "relabelled issuer"
    );

    // alg: none, with the valid token's claims and no signature.
    let parts = segments(&token);
    let none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    assert_eq!(
        auth(&p, "/oauth2/auth", &none).await.status(),
        StatusCode::UNAUTHORIZED,
        "alg none"
    );
    // HS256 "signed" with the client secret, which a public verifier must refuse.
    let hs = format!("{}.{}.{}", b64(br#"{"alg":"HS256"}"#), parts[1], parts[2]);
    assert_eq!(
        auth(&p, "/oauth2/auth", &hs).await.status(),
        StatusCode::UNAUTHORIZED,
        "alg HS256"
    );
    // A flipped byte in the signature.
    let mut sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&parts[2])
        .unwrap();
    sig[10] ^= 0x01;
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
    assert_eq!(
        auth(&p, "/oauth2/auth", &bad_sig).await.status(),
        StatusCode::UNAUTHORIZED,
        "bad signature"
    );
    // A tampered payload under the original signature.
    let mut claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&parts[1])
            .unwrap(),
    )
    .unwrap();
    claims["email"] = serde_json::Value::String("root@example.test".into());
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(
        auth(&p, "/oauth2/auth", &tampered).await.status(),
        StatusCode::UNAUTHORIZED,
        "tampered payload"
    );
    // Not a JWT.
    assert_eq!(
        auth(&p, "/oauth2/auth", "not-a-jwt").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The original token still works after all that (nothing was poisoned).
    assert_eq!(
        auth(&p, "/oauth2/auth", &token).await.status(),
        StatusCode::ACCEPTED
    );
    // Scripts get a JSON 401 from forward-auth, never a redirect.
    let r = auth(&p, "/oauth2/forward_auth", &bad_sig).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("location").is_none());
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
}

/// An expired token is refused, including one that was accepted (and cached) while
/// it was valid.
#[tokio::test]
async fn expired_bearer_tokens_are_refused() {
    let Some(idp) = Idp::start(IdpOptions {
        // Long enough to be accepted right after issuance on a loaded machine.
        id_token_ttl: Some(5),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let p = Portcullis::start(Options::new(&idp.issuer).with("[bearer]\nenabled = true")).await;
    let token = idp.id_token(CLIENT_ID, CLIENT_SECRET, "alice").await;
    assert_eq!(
        auth(&p, "/oauth2/auth", &token).await.status(),
        StatusCode::ACCEPTED
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        auth(&p, "/oauth2/auth", &token).await.status(),
        StatusCode::UNAUTHORIZED,
        "expired (cached) token"
    );
    // A fresh Portcullis (no cache) refuses it as well.
    let q = Portcullis::start(Options::new(&idp.issuer).with("[bearer]\nenabled = true")).await;
    assert_eq!(
        auth(&q, "/oauth2/auth", &token).await.status(),
        StatusCode::UNAUTHORIZED,
        "expired token"
    );
}

/// Without `bearer.enabled`, a valid token is not a way in.
#[tokio::test]
async fn bearer_tokens_are_off_by_default() {
    let Some(idp) = Idp::start(IdpOptions::default()).await else {
        return;
    };
    let p = Portcullis::start(Options::new(&idp.issuer)).await;
    let token = idp.id_token(CLIENT_ID, CLIENT_SECRET, "alice").await;
    assert_eq!(
        auth(&p, "/oauth2/auth", &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

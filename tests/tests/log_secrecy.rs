//! Tokens, cookies and secrets never appear in the logs: a full login, refresh,
//! userinfo and sign-out run against the real binary with DEBUG logging everywhere,
//! then the log is searched for every secret the test can name.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use portcullis_e2e::client::Agent;
use portcullis_e2e::idp::{CLIENT_SECRET, Idp, IdpOptions};
use portcullis_e2e::portcullis_server::Options;
use portcullis_e2e::process::Replica;
use portcullis_session::{Keyring, SessionState};

#[tokio::test]
async fn no_secret_reaches_the_log() {
    let Some(idp) = Idp::start(IdpOptions {
        id_token_ttl: Some(6),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let opts = Options::new(&idp.issuer).with("[session]\nrefresh_before = \"5s\"");
    let log = portcullis_e2e::nginx::tempdir("secrecy").join("portcullis.log");
    let replica = Replica::start_logging(&opts, "debug", Some(&log)).await;
    let base = replica.public_url();

    let mut agent = Agent::new();
    let landing = agent.sign_in(&base, "alice").await;
    assert_eq!(landing.status, reqwest::StatusCode::FOUND);
    let first_cookie = agent.site.get("_portcullis").unwrap().to_owned();
    let first: SessionState = Keyring::new(&opts.keys)
        .unwrap()
        .open_json("_portcullis", &first_cookie)
        .unwrap();
    let r1 = agent.get(&format!("{base}/oauth2/auth")).await;
    tokio::time::sleep(Duration::from_millis(4300)).await; // refresh due (a third of 6 s left)
    let r2 = agent.get(&format!("{base}/oauth2/auth")).await;
    assert_eq!(r2.status(), reqwest::StatusCode::ACCEPTED);
    let second_cookie = agent.site.get("_portcullis").unwrap().to_owned();
    assert_ne!(first_cookie, second_cookie, "a refresh happened");
    let second: SessionState = Keyring::new(&opts.keys)
        .unwrap()
        .open_json("_portcullis", &second_cookie)
        .unwrap();
    agent.get(&format!("{base}/oauth2/userinfo")).await;
    agent.get(&format!("{base}/oauth2/sign_out")).await;
    // A hostile, token-looking rd and a garbage cookie, to make the error paths log.
    agent
        .get(&format!(
            "{base}/oauth2/sign_out?rd=https://evil.example/{}",
            first.id_token
        ))
        .await;
    let mut garbage = Agent::new();
    garbage
        .site
        .set("_portcullis", &format!("{}x", second_cookie));
    garbage.get(&format!("{base}/oauth2/auth")).await;

    assert_eq!(
        replica.terminate().await,
        Some(0),
        "graceful exit flushes the log"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().count() > 20,
        "debug logging produced output:\n{text}"
    );
    assert!(
        text.contains("session refreshed"),
        "the refresh is logged (without tokens)"
    );

    let bearer1 = r1.headers()["authorization"]
        .to_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    let mut secrets: Vec<(&str, String)> = vec![
        ("client secret", CLIENT_SECRET.to_owned()),
        ("cookie secret", opts.keys[0].to_base64()),
        ("first session cookie", first_cookie.clone()),
        ("refreshed session cookie", second_cookie.clone()),
        ("first ID token", first.id_token.clone()),
        ("refreshed ID token", second.id_token.clone()),
        ("bearer header value", bearer1),
        ("first refresh token", first.refresh_token.clone().unwrap()),
        (
            "refreshed refresh token",
            second.refresh_token.clone().unwrap(),
        ),
    ];
    // Tokens are long: also look for any 24-character piece of their signatures, so a
    // truncated or partial print is caught too.
    let sig = first.id_token.rsplit('.').next().unwrap().to_owned();
    secrets.push(("ID token signature fragment", sig[..24].to_owned()));
    for (what, secret) in &secrets {
        assert!(secret.len() >= 8, "{what} too short to search for");
        assert!(!text.contains(secret.as_str()), "{what} appears in the log");
    }
}

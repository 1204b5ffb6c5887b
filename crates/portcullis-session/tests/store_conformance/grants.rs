//! One provider grant per user (Redis store): every session of a user shares it, a new
//! sign-in replaces it for all of them, a refresh written back never overwrites a newer
//! sign-in, sign-out ends one session, and the grant goes with its last session.

use portcullis_session::store::{GrantEnd, SessionStore};
use portcullis_session::{GrantRef, SessionState};

use super::{redis_server, redis_store, session};

fn on_grant(user_token: &str, sub: &str) -> SessionState {
    let mut s = session(user_token);
    s.grant = Some(GrantRef::for_user("https://issuer.test", sub));
    s
}

fn tokens(s: &SessionState) -> (String, Option<String>) {
    (s.id_token.clone(), s.refresh_token.clone())
}

async fn raw(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/0"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn keys(port: u16, pattern: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut raw(port).await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_users_sessions_share_one_grant() {
    let Some(server) = redis_server() else { return };
    let store = redis_store(server.port, "g1:").await;

    // The laptop signs in, then the desktop: the desktop's tokens are now the user's.
    let laptop_s = on_grant("laptop", "alice-sub");
    let laptop = store.create(&laptop_s, "alice@example.test").await.unwrap();
    let desktop_s = on_grant("desktop", "alice-sub");
    let desktop = store
        .create(&desktop_s, "alice@example.test")
        .await
        .unwrap();
    let seen = store.load(&laptop).await.unwrap().unwrap();
    assert_eq!(
        tokens(&seen),
        tokens(&desktop_s),
        "the laptop moved to the new grant"
    );
    assert_eq!(seen.id, laptop_s.id, "but stays its own session");
    assert_eq!(seen.expires_at, laptop_s.expires_at);
    assert_eq!(
        keys(server.port, "g1:g:*").await.len(),
        1,
        "one grant for the user"
    );

    // Another user has their own grant.
    let bob = store
        .create(&on_grant("bob", "bob-sub"), "bob@example.test")
        .await
        .unwrap();
    assert_eq!(keys(server.port, "g1:g:*").await.len(), 2);

    // A refresh through the laptop is seen by the desktop.
    let mut refreshed = seen.clone();
    refreshed.id_token = "header.refreshed-id-token.sig".into();
    refreshed.refresh_token = Some("refreshed-refresh-token".into());
    assert_eq!(store.update(&laptop, &refreshed).await.unwrap(), laptop);
    let on_desktop = store.load(&desktop).await.unwrap().unwrap();
    assert_eq!(tokens(&on_desktop), tokens(&refreshed));
    assert_eq!(on_desktop.id, desktop_s.id);

    // A refresh that started from tokens a newer sign-in has replaced is not written:
    // the newer sign-in's refresh token is the only live one at a Dex-like provider.
    let phone_s = on_grant("phone", "alice-sub");
    let phone = store.create(&phone_s, "alice@example.test").await.unwrap();
    let mut stale = on_desktop.clone();
    stale.refresh_token = Some("stale-refresh-token".into());
    store.update(&desktop, &stale).await.unwrap();
    assert_eq!(
        tokens(&store.load(&desktop).await.unwrap().unwrap()),
        tokens(&phone_s)
    );

    // `sessions list` still shows one line per device.
    assert_eq!(
        store.list_user("alice@example.test").await.unwrap().len(),
        3
    );

    // Signing out one device ends that session only.
    store.delete(&laptop).await.unwrap();
    assert_eq!(store.load(&laptop).await.unwrap(), None);
    assert!(store.load(&desktop).await.unwrap().is_some());
    // A refresh finishing after the sign-out does not bring the session back.
    store.update(&laptop, &refreshed).await.unwrap();
    assert_eq!(store.load(&laptop).await.unwrap(), None);

    // The grant goes with the user's last session.
    store.delete(&desktop).await.unwrap();
    assert_eq!(keys(server.port, "g1:g:*").await.len(), 2);
    store.delete(&phone).await.unwrap();
    assert_eq!(
        keys(server.port, "g1:g:*").await.len(),
        1,
        "only bob's grant is left"
    );
    assert!(store.load(&bob).await.unwrap().is_some());
}

#[tokio::test]
async fn a_refused_grant_ends_every_session_on_it_unless_replaced() {
    let Some(server) = redis_server() else { return };
    let store = redis_store(server.port, "g2:").await;
    let a = store
        .create(&on_grant("a", "carol"), "carol@example.test")
        .await
        .unwrap();
    let b = store
        .create(&on_grant("b", "carol"), "carol@example.test")
        .await
        .unwrap();
    let seen = store.load(&a).await.unwrap().unwrap();

    // A newer sign-in replaced the grant after `seen` was read: nothing ends.
    let c = store
        .create(&on_grant("c", "carol"), "carol@example.test")
        .await
        .unwrap();
    let grant = seen.grant.clone().unwrap();
    assert!(matches!(
        store.end_grant(&grant).await.unwrap(),
        GrantEnd::Replaced
    ));
    assert!(store.load(&a).await.unwrap().is_some());

    // Refused while still current: the grant and all three sessions end.
    let current = store.load(&b).await.unwrap().unwrap().grant.unwrap();
    assert!(matches!(
        store.end_grant(&current).await.unwrap(),
        GrantEnd::Ended(3)
    ));
    for cookie in [&a, &b, &c] {
        assert_eq!(store.load(cookie).await.unwrap(), None);
    }
    assert!(
        store
            .list_user("carol@example.test")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        keys(server.port, "g2:*").await.is_empty(),
        "nothing is left behind"
    );
}

#[tokio::test]
async fn revoking_a_user_ends_their_grant_and_old_sessions_keep_working() {
    let Some(server) = redis_server() else { return };
    let store = redis_store(server.port, "g3:").await;
    // A session from before grants were shared holds its own tokens, and still works.
    let legacy_s = session("legacy");
    let legacy = store.create(&legacy_s, "dave@example.test").await.unwrap();
    let shared = store
        .create(&on_grant("new", "dave"), "dave@example.test")
        .await
        .unwrap();
    assert_eq!(store.load(&legacy).await.unwrap(), Some(legacy_s.clone()));
    let mut refreshed = legacy_s.clone();
    refreshed.refresh_token = Some("legacy2".into());
    store.update(&legacy, &refreshed).await.unwrap();
    assert_eq!(store.load(&legacy).await.unwrap(), Some(refreshed));
    assert!(store.load(&shared).await.unwrap().is_some());

    assert_eq!(store.revoke_user("dave@example.test").await.unwrap(), 2);
    assert_eq!(store.load(&legacy).await.unwrap(), None);
    assert_eq!(store.load(&shared).await.unwrap(), None);
    assert!(
        keys(server.port, "g3:*").await.is_empty(),
        "the grant went too"
    );
}

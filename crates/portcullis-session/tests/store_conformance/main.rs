//! One conformance suite, run against every session store: the cookie store in
//! process, the Redis store against a real `redis-server` on loopback.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use portcullis_session::store::{
    CookieStore, RedisSettings, RedisStore, SessionStore, StoreError, Topology,
};
use portcullis_session::{Key, Keyring, SessionState};

fn session(user_token: &str) -> SessionState {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    SessionState {
        id: SessionState::new_id().unwrap(),
        id_token: format!("header.{user_token}-id-token.sig"),
        id_token_expires_at: now + 60,
        refresh_token: Some(format!("{user_token}-refresh-token")),
        created_at: now,
        expires_at: now + 3600,
        grant: None,
    }
}

fn keyring() -> Arc<Keyring> {
    Arc::new(Keyring::new(&[Key::generate().unwrap()]).unwrap())
}

/// What differs between stores, stated rather than hidden.
struct Expect {
    /// Deleting ends the session server-side (false: only the cookie can be dropped).
    delete_ends_session: bool,
}

/// The behaviour every store must have.
async fn conformance<S: SessionStore>(store: &S, expect: Expect) {
    // Round trip.
    let s = session("alice");
    let cookie = store.create(&s, "alice@example.test").await.unwrap();
    assert!(
        !cookie.contains("alice-refresh-token") && !cookie.contains("id-token"),
        "cookie is opaque"
    );
    assert_eq!(store.load(&cookie).await.unwrap(), Some(s.clone()));

    // Update keeps the id; the returned cookie (new or same) loads the new state.
    let mut refreshed = s.clone();
    refreshed.id_token = "header.alice2-id-token.sig".into();
    refreshed.refresh_token = Some("alice2-refresh-token".into());
    let cookie2 = store.update(&cookie, &refreshed).await.unwrap();
    assert_eq!(store.load(&cookie2).await.unwrap(), Some(refreshed.clone()));

    // Two sessions are independent.
    let other = session("bob");
    let other_cookie = store.create(&other, "bob@example.test").await.unwrap();
    assert_ne!(other_cookie, cookie);
    assert_eq!(store.load(&other_cookie).await.unwrap(), Some(other));

    // Garbage and foreign cookies do not open.
    for bad in ["", "garbage", &"x".repeat(5000)] {
        assert!(
            matches!(store.load(bad).await, Err(StoreError::Undecodable(_))),
            "{bad:.20}"
        );
    }
    let foreign = CookieStore::new(keyring(), "_portcullis")
        .create(&s, "x")
        .await
        .unwrap();
    assert!(matches!(
        store.load(&foreign).await,
        Err(StoreError::Undecodable(_))
    ));

    // Delete.
    store.delete(&cookie2).await.unwrap();
    store.delete(&cookie2).await.unwrap(); // twice is fine
    let after = store.load(&cookie2).await.unwrap();
    if expect.delete_ends_session {
        assert_eq!(after, None, "deleted session is gone");
        // A late update (a refresh finishing after sign-out) must not resurrect it.
        store.update(&cookie2, &refreshed).await.unwrap();
        assert_eq!(store.load(&cookie2).await.unwrap(), None);
    } else {
        assert!(
            after.is_some(),
            "a stateless store cannot end a session server-side"
        );
    }
    store.ping().await.unwrap();
}

#[tokio::test]
async fn cookie_store_conforms() {
    conformance(
        &CookieStore::new(keyring(), "_portcullis"),
        Expect {
            delete_ends_session: false,
        },
    )
    .await;
}

// === redis ===

struct RedisServer {
    port: u16,
    child: Child,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_server() -> Option<RedisServer> {
    let bin = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(bin) = bin else {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("redis-server is required under CI (apt-get install redis-server)");
        }
        eprintln!("SKIPPED: redis-server not installed");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = RedisServer {
        port,
        child: spawn_redis(bin, port),
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis-server did not start");
}

fn spawn_redis(bin: &str, port: u16) -> Child {
    Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

async fn store_for(topology: Topology, prefix: &str) -> RedisStore {
    RedisStore::new(
        &RedisSettings {
            topology,
            key_prefix: prefix.into(),
            timeout: Duration::from_secs(2),
        },
        keyring(),
        "_portcullis",
    )
    .await
    .unwrap()
}

async fn redis_store(port: u16, prefix: &str) -> RedisStore {
    store_for(
        Topology::Standalone(format!("redis://127.0.0.1:{port}/0")),
        prefix,
    )
    .await
}

#[tokio::test]
async fn redis_store_conforms() {
    let Some(server) = redis_server() else { return };
    conformance(
        &redis_store(server.port, "portcullis:").await,
        Expect {
            delete_ends_session: true,
        },
    )
    .await;
}

/// A dump of Redis alone reveals no tokens: sessions are sealed with per-session
/// secrets that only the cookies hold, grants with the cookie keyring that only the
/// processes hold.
#[tokio::test]
async fn redis_dump_reveals_no_tokens() {
    let Some(server) = redis_server() else { return };
    let store = redis_store(server.port, "p:").await;
    let s = session("carol");
    store.create(&s, "carol@example.test").await.unwrap();
    // A session whose tokens live in the user's shared grant.
    let mut shared = session("erin");
    shared.grant = Some(portcullis_session::GrantRef::for_user(
        "https://i.test",
        "erin",
    ));
    store.create(&shared, "erin@example.test").await.unwrap();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/0", server.port)).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let mut dump = keys.join(" ");
    for k in &keys {
        let t: String = redis::cmd("TYPE")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        let v: Vec<String> = match t.as_str() {
            "hash" => redis::cmd("HVALS")
                .arg(k)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "set" => redis::cmd("SMEMBERS")
                .arg(k)
                .query_async(&mut conn)
                .await
                .unwrap(),
            _ => vec![
                redis::cmd("GET")
                    .arg(k)
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
            ],
        };
        dump.push_str(&v.join(" "));
        let ttl: i64 = redis::cmd("TTL")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(
            ttl > 0 && ttl <= 3600,
            "{k} expires with the session (ttl {ttl})"
        );
    }
    assert!(
        keys.iter().any(|k| k.starts_with("p:g:")),
        "a grant is stored"
    );
    for secret in [
        "carol-refresh-token",
        "carol-id-token",
        "carol@example.test",
        "erin-refresh-token",
        "erin-id-token",
        "erin@example.test",
    ] {
        assert!(!dump.contains(secret), "{secret} readable in Redis");
    }
}

/// Listing and revoking by user and by id.
#[tokio::test]
async fn redis_revocation() {
    let Some(server) = redis_server() else { return };
    revocation_suite(&redis_store(server.port, "portcullis:").await).await;
}

async fn revocation_suite(store: &RedisStore) {
    let a1 = store
        .create(&session("a1"), "alice@example.test")
        .await
        .unwrap();
    let a2 = store
        .create(&session("a2"), "Alice@Example.test")
        .await
        .unwrap();
    let b = store
        .create(&session("b"), "bob@example.test")
        .await
        .unwrap();
    let listed = store.list_user("alice@example.test").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(store.revoke_user("alice@example.test").await.unwrap(), 2);
    assert_eq!(store.load(&a1).await.unwrap(), None);
    assert_eq!(store.load(&a2).await.unwrap(), None);
    assert!(
        store.load(&b).await.unwrap().is_some(),
        "other users untouched"
    );
    assert!(
        store
            .list_user("alice@example.test")
            .await
            .unwrap()
            .is_empty()
    );
    let bob = store.list_user("bob@example.test").await.unwrap();
    assert!(store.revoke_id(&bob[0].id).await.unwrap());
    assert_eq!(store.load(&b).await.unwrap(), None);
    assert!(!store.revoke_id(&bob[0].id).await.unwrap());
}

/// The refresh lock: exclusive, renewed while held, released only by its holder.
#[tokio::test]
async fn redis_refresh_lock() {
    let Some(server) = redis_server() else { return };
    let store = redis_store(server.port, "portcullis:").await;
    let other_replica = redis_store(server.port, "portcullis:").await;
    lock_suite(&store, &other_replica).await;
}

async fn lock_suite(store: &RedisStore, other_replica: &RedisStore) {
    let lease = Duration::from_millis(300);
    let mut lock = store
        .try_lock("sid", lease)
        .await
        .unwrap()
        .expect("first taker wins");
    assert!(
        other_replica
            .try_lock("sid", lease)
            .await
            .unwrap()
            .is_none(),
        "exclusive"
    );
    assert!(
        other_replica
            .try_lock("other", lease)
            .await
            .unwrap()
            .is_some(),
        "per session"
    );
    lock.keep_alive();
    tokio::time::sleep(lease * 3).await;
    assert!(
        other_replica
            .try_lock("sid", lease)
            .await
            .unwrap()
            .is_none(),
        "renewed while held"
    );
    lock.release().await;
    let second = other_replica.try_lock("sid", lease).await.unwrap();
    assert!(second.is_some(), "free after release");
    // A lock whose holder vanished expires with its lease.
    drop(second);
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert!(store.try_lock("sid", lease).await.unwrap().is_some());
}

/// Redis down: a clear `Unavailable`, not "no session"; back up: works again without
/// a new store (the connection manager reconnects).
#[tokio::test]
async fn redis_outage_and_recovery() {
    let Some(server) = redis_server() else { return };
    let port = server.port;
    let store = redis_store(port, "portcullis:").await;
    let cookie = store
        .create(&session("d"), "dave@example.test")
        .await
        .unwrap();
    drop(server);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(matches!(
        store.load(&cookie).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    // Same port, fresh (empty) server.
    let bin = "/usr/bin/redis-server";
    let _restarted = RedisServer {
        port,
        child: spawn_redis(bin, port),
    };
    let mut ok = false;
    for _ in 0..100 {
        if store.ping().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "store recovers on its own");
    assert_eq!(
        store.load(&cookie).await.unwrap(),
        None,
        "the empty server has no session"
    );
}

mod grants;
mod topologies;

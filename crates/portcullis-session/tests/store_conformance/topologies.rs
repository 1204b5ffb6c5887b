//! The Redis store on a Cluster and behind Sentinel.

use super::*;

fn redis_cli(args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "portcullis-redis-{tag}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn start_node(port: u16, args: &[String]) -> RedisServer {
    let child = Command::new("/usr/bin/redis-server")
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let server = RedisServer { port, child };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis node {port} did not start");
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A real 3-node Redis Cluster (no replicas), created with `redis-cli --cluster`.
async fn cluster() -> Option<(Vec<RedisServer>, Vec<String>)> {
    redis_server()?; // presence check (and CI requirement)
    let dir = temp_dir("cluster");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let nodes: Vec<RedisServer> = ports
        .iter()
        .map(|p| {
            let args: Vec<String> = [
                "--port",
                &p.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "2000",
                "--cluster-config-file",
                &format!("nodes-{p}.conf"),
                "--dir",
                &dir.display().to_string(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            start_node(*p, &args)
        })
        .collect();
    let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
    create.extend(ports.iter().map(|p| format!("127.0.0.1:{p}")));
    create.extend(["--cluster-replicas", "0", "--cluster-yes"].map(String::from));
    let out = redis_cli(&create.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.contains("All 16384 slots covered"),
        "cluster create: {out}"
    );
    let p0 = ports[0].to_string();
    eventually("cluster_state:ok", || {
        redis_cli(&["-p", &p0, "cluster", "info"]).contains("cluster_state:ok")
    })
    .await;
    Some((
        nodes,
        ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect(),
    ))
}

/// The same behaviour on a real Redis Cluster, where a session's keys live in
/// different slots (and nodes).
#[tokio::test]
async fn redis_cluster_conforms() {
    let Some((_nodes, seeds)) = cluster().await else {
        return;
    };
    let store = store_for(Topology::Cluster(seeds.clone()), "portcullis:").await;
    conformance(
        &store,
        Expect {
            delete_ends_session: true,
        },
    )
    .await;
    // A fresh prefix: the conformance run above left a session of bob's behind, and
    // the revocation suite counts sessions per user.
    revocation_suite(&store_for(Topology::Cluster(seeds.clone()), "revocation:").await).await;
    lock_suite(
        &store,
        &store_for(Topology::Cluster(seeds), "portcullis:").await,
    )
    .await;
}

/// Sentinel: a master, a replica and a sentinel. The store finds the master through
/// the sentinel, and keeps working (with its sessions) after a failover.
#[tokio::test]
async fn redis_sentinel_conforms_and_survives_failover() {
    if redis_server().is_none() {
        return;
    }
    let dir = temp_dir("sentinel");
    let (m, r, s) = (free_port(), free_port(), free_port());
    let base = |p: u16| -> Vec<String> {
        [
            "--port",
            &p.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let _master = start_node(m, &base(m));
    let mut replica_args = base(r);
    replica_args.extend([
        "--replicaof".to_owned(),
        "127.0.0.1".to_owned(),
        m.to_string(),
    ]);
    let _replica = start_node(r, &replica_args);
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {s}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {m} 1\n\
             sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n"
        ),
    )
    .unwrap();
    let _sentinel = start_node(s, &[conf.display().to_string(), "--sentinel".to_owned()]);
    let (mp, sp) = (m.to_string(), s.to_string());
    eventually("replica in sync", || {
        redis_cli(&["-p", &mp, "info", "replication"]).contains("connected_slaves:1")
    })
    .await;
    eventually("sentinel sees the replica", || {
        redis_cli(&["-p", &sp, "sentinel", "replicas", "mymaster"]).contains(&r.to_string())
    })
    .await;

    let topology = Topology::Sentinel {
        sentinels: vec![format!("redis://127.0.0.1:{s}")],
        master: "mymaster".into(),
        auth: None,
    };
    let store = store_for(topology, "portcullis:").await;
    conformance(
        &store,
        Expect {
            delete_ends_session: true,
        },
    )
    .await;
    let before = store
        .create(&session("erin"), "erin@example.test")
        .await
        .unwrap();
    let rp = r.to_string();
    eventually("replicated", || {
        redis_cli(&["-p", &rp, "dbsize"]).trim() != "0"
    })
    .await;

    let out = redis_cli(&["-p", &sp, "sentinel", "failover", "mymaster"]);
    assert!(out.contains("OK"), "failover: {out}");
    eventually("replica promoted", || {
        redis_cli(&["-p", &sp, "sentinel", "get-master-addr-by-name", "mymaster"]).contains(&rp)
    })
    .await;
    // The first commands may still reach the demoted master; the store looks the master
    // up again and carries on.
    let mut ok = false;
    for _ in 0..100 {
        if let Ok(c) = store.create(&session("frank"), "frank@example.test").await {
            ok = store.load(&c).await.ok().flatten().is_some();
            if ok {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "writes work against the new master");
    assert!(
        store.load(&before).await.unwrap().is_some(),
        "sessions survive the failover"
    );
}

//! The `[redis]` keys: URLs and topologies.

use portcullis_session::store::Topology;

use super::report::Errors;

fn redis_url_ok(u: &str) -> bool {
    url::Url::parse(u)
        .is_ok_and(|u| matches!(u.scheme(), "redis" | "rediss") && u.host_str().is_some())
}

/// The Redis deployment. URLs are never echoed: they may carry passwords.
pub(super) fn redis_topology(e: &mut Errors, r: &crate::schema::Redis) -> Option<Topology> {
    match r.mode.as_str() {
        "standalone" => {
            if redis_url_ok(&r.url) {
                Some(Topology::Standalone(r.url.clone()))
            } else {
                e.push(
                    "redis.url",
                    "must be a redis:// or rediss:// URL when session.store = \"redis\"",
                );
                None
            }
        }
        "sentinel" | "cluster" => {
            let mut ok = true;
            if r.nodes.is_empty() || !r.nodes.iter().all(|n| redis_url_ok(n)) {
                e.push(
                    "redis.nodes",
                    format!("{} mode needs redis:// or rediss:// node URLs", r.mode),
                );
                ok = false;
            }
            if r.mode == "cluster" {
                return ok.then(|| Topology::Cluster(r.nodes.clone()));
            }
            if r.sentinel_master.is_empty() {
                e.push("redis.sentinel_master", "is required in sentinel mode");
                ok = false;
            }
            if !r.url.is_empty() && !redis_url_ok(&r.url) {
                e.push(
                    "redis.url",
                    "must be a redis:// or rediss:// URL (credentials for the master)",
                );
                ok = false;
            }
            ok.then(|| Topology::Sentinel {
                sentinels: r.nodes.clone(),
                master: r.sentinel_master.clone(),
                auth: (!r.url.is_empty()).then(|| r.url.clone()),
            })
        }
        other => {
            e.push(
                "redis.mode",
                format!("{other:?} is not standalone, sentinel or cluster"),
            );
            None
        }
    }
}

//! `portcullis kubectl-credential`: the exec credential plugin kubectl runs before
//! its requests (client.authentication.k8s.io `ExecCredential`, v1 and v1beta1).

use crate::cache::Cache;
use crate::server::{Failure, Server, Tokens};

/// How often the plugin may open a sign-in per server.
const SIGN_IN_WINDOW: u64 = 60;

/// The plugin: prints an `ExecCredential` with a token valid for a while yet,
/// refreshing it through Portcullis first when it is close to expiry. Parallel calls
/// wait on the cache's lock, so they make one refresh. Without a session, an
/// interactive call signs in again (at most once a minute per server); any other
/// fails with the command to run.
pub async fn credential(server_url: &str) -> Result<(), String> {
    let cache = Cache::for_server(server_url)?;
    let _lock = cache.lock()?;
    let now = crate::host::unix_now();
    let tokens = match cache.load()? {
        None => sign_in_again(&cache, server_url, "not signed in", now).await?,
        Some(tokens) if tokens.expires_at <= now + refresh_margin(&tokens.id_token) => {
            let server = Server::new(server_url)?;
            match server.refresh(&tokens.refresh_token).await {
                Ok(fresh) => {
                    cache.store(&fresh)?;
                    fresh
                }
                Err(Failure::Refused(why)) => {
                    cache.clear()?;
                    let why = format!("your Portcullis session has ended ({why})");
                    sign_in_again(&cache, server_url, &why, now).await?
                }
                // Keep serving the cached token while it is valid; the server may be
                // back before it expires.
                Err(e) if tokens.expires_at > now => {
                    eprintln!("portcullis: could not refresh ({e}); using the cached token");
                    tokens
                }
                Err(e) => return Err(format!("could not refresh: {e}")),
            }
        }
        Some(tokens) => tokens,
    };
    println!(
        "{}",
        exec_credential(&exec_api_version(), &tokens.id_token, tokens.expires_at)
    );
    Ok(())
}

/// Whether kubectl runs us with a terminal the user can answer on
/// (`KUBERNETES_EXEC_INFO`'s `spec.interactive`).
fn interactive() -> bool {
    std::env::var("KUBERNETES_EXEC_INFO")
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["spec"]["interactive"].as_bool())
        .unwrap_or(false)
}

/// No usable session: sign in through the browser when the call is interactive and
/// no sign-in was opened this last minute; otherwise the error naming the command.
async fn sign_in_again(
    cache: &Cache,
    server_url: &str,
    why: &str,
    now: u64,
) -> Result<Tokens, String> {
    let hint = format!("{why}; run: portcullis login --server {server_url}");
    if !interactive() {
        return Err(hint);
    }
    if !cache.claim_sign_in(now, SIGN_IN_WINDOW)? {
        return Err(format!(
            "{hint} (a sign-in was opened less than a minute ago)"
        ));
    }
    eprintln!("portcullis: {why}; signing in again.");
    let server = Server::new(server_url)?;
    let tokens = crate::login::browser_sign_in(&server, false).await?;
    cache.store(&tokens)?;
    Ok(tokens)
}

/// `portcullis logout`: ends the CLI session on the server and clears the cache.
pub async fn logout(server_url: &str) -> Result<(), String> {
    let cache = Cache::for_server(server_url)?;
    let _lock = cache.lock()?;
    if let Some(tokens) = cache.load()? {
        let server = Server::new(server_url)?;
        if let Err(e) = server.logout(&tokens.refresh_token).await {
            eprintln!("portcullis: the server did not confirm the logout ({e})");
        }
    }
    cache.clear()?;
    eprintln!("Signed out of {server_url}.");
    Ok(())
}

/// How long before its expiry a token is refreshed: a third of its lifetime, at most
/// 30 s (so the API server never receives an expired one). The server refreshes
/// within the smaller of `session.refresh_before` and that same third, so when the
/// plugin asks, the server's token is due too.
fn refresh_margin(id_token: &str) -> u64 {
    use base64::Engine;
    let lifetime = id_token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| Some(v["exp"].as_u64()?.saturating_sub(v["iat"].as_u64()?)))
        .unwrap_or(90);
    (lifetime / 3).min(30)
}

/// The API version kubectl asked for (`KUBERNETES_EXEC_INFO`), `v1` by default.
fn exec_api_version() -> String {
    std::env::var("KUBERNETES_EXEC_INFO")
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["apiVersion"].as_str().map(str::to_owned))
        .filter(|v| v.starts_with("client.authentication.k8s.io/"))
        .unwrap_or_else(|| "client.authentication.k8s.io/v1".into())
}

/// The `ExecCredential` JSON kubectl reads.
pub fn exec_credential(api_version: &str, token: &str, expires_at: u64) -> String {
    serde_json::json!({
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "status": {"token": token, "expirationTimestamp": rfc3339(expires_at)},
    })
    .to_string()
}

/// Unix seconds as RFC 3339 UTC (`2026-12-03T18:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_credentials() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_320_800), "2026-12-03T18:00:00Z");
        let c: serde_json::Value = serde_json::from_str(&exec_credential(
            "client.authentication.k8s.io/v1beta1",
            "t",
            0,
        ))
        .unwrap_or_default();
        assert_eq!(c["kind"], "ExecCredential");
        assert_eq!(c["apiVersion"], "client.authentication.k8s.io/v1beta1");
        assert_eq!(c["status"]["token"], "t");
        assert_eq!(refresh_margin("garbage"), 30);
    }
}

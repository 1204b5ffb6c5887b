//! What the local machine gives the client: `$HOME`, randomness and the clock.

use std::path::PathBuf;

/// `$HOME`, where kubeconfig and the cache live by default.
pub(crate) fn home() -> Result<PathBuf, String> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| "HOME is not set".to_owned())
}

/// A random URL-safe token of `bytes` random bytes.
pub(crate) fn random(bytes: usize) -> Result<String, String> {
    use base64::Engine;
    let mut b = vec![0u8; bytes];
    getrandom::getrandom(&mut b).map_err(|e| format!("no randomness: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// Seconds since the epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

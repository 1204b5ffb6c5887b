//! The token cache: one file per server under `~/.kube/cache/portcullis/` (directory
//! 0700, files 0600), holding the CLI credential and the current ID token, and a lock
//! file so that parallel kubectl calls make one refresh.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::server::Tokens;

/// The cache of one server.
pub struct Cache {
    file: PathBuf,
    lock: PathBuf,
    attempt: PathBuf,
}

impl Cache {
    /// The cache of `server`, under `$PORTCULLIS_CACHE_DIR` or `~/.kube/cache/portcullis`.
    pub fn for_server(server: &str) -> Result<Self, String> {
        let dir = match std::env::var_os("PORTCULLIS_CACHE_DIR") {
            Some(d) => PathBuf::from(d),
            None => crate::host::home()?.join(".kube/cache/portcullis"),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        private(&dir, 0o700)?;
        let digest = Sha256::digest(server.trim_end_matches('/').as_bytes());
        let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            file: dir.join(format!("{name}.json")),
            lock: dir.join(format!("{name}.lock")),
            attempt: dir.join(format!("{name}.login-attempt")),
        })
    }

    /// Takes the cache's lock until the returned guard is dropped (waits for another
    /// kubectl call's refresh to finish).
    pub fn lock(&self) -> Result<File, String> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.lock)
            .map_err(|e| format!("cannot open {}: {e}", self.lock.display()))?;
        f.lock()
            .map_err(|e| format!("cannot lock {}: {e}", self.lock.display()))?;
        Ok(f)
    }

    /// The cached tokens, if any. A cache file others can read is refused (and said
    /// so): it holds a credential.
    pub fn load(&self) -> Result<Option<Tokens>, String> {
        let meta = match std::fs::metadata(&self.file) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", self.file.display())),
        };
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(format!(
                "{} is readable by others (mode {:o}); remove it and run portcullis login again",
                self.file.display(),
                meta.permissions().mode() & 0o777
            ));
        }
        let text = std::fs::read_to_string(&self.file)
            .map_err(|e| format!("cannot read {}: {e}", self.file.display()))?;
        Ok(serde_json::from_str(&text).ok())
    }

    /// Writes the tokens (atomically, mode 0600).
    pub fn store(&self, tokens: &Tokens) -> Result<(), String> {
        let text = serde_json::to_string(tokens).map_err(|e| e.to_string())?;
        write_private(&self.file, text.as_bytes())
    }

    /// Claims the right to open a sign-in from the plugin: `false` when one was opened
    /// less than `window_secs` ago (background tools call kubectl in loops; one tab
    /// a minute per server, never a storm). Call with the lock held.
    pub fn claim_sign_in(&self, now: u64, window_secs: u64) -> Result<bool, String> {
        let last = std::fs::read_to_string(&self.attempt)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok());
        if last.is_some_and(|t| now < t + window_secs && t <= now) {
            return Ok(false);
        }
        write_private(&self.attempt, now.to_string().as_bytes())?;
        Ok(true)
    }

    /// Forgets the tokens.
    pub fn clear(&self) -> Result<(), String> {
        match std::fs::remove_file(&self.file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {}: {e}", self.file.display())),
        }
    }
}

fn private(path: &Path, mode: u32) -> Result<(), String> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot restrict {}: {e}", path.display()))
}

/// Writes `bytes` to `path` atomically (a temporary file renamed over it), mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

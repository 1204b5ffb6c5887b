//! Device authorization (RFC 8628), served by Portcullis itself: `portcullis login
//! --device` on a machine with no browser asks for a device code, the user types the
//! short user code on `/oauth2/device` in a signed-in browser anywhere, approves, and
//! the polling CLI gets a CLI session on that browser session's grant.
//!
//! Redis holds, for ten minutes: the request under the hash of its device code (the
//! user code, the CLI's reported host, the state, the approval sealed with the cookie
//! keyring, the poll clock), and an index from the user code to that hash, deleted at
//! the decision so a code is entered once. Wrong codes count against the entering
//! session ([`MAX_FAILED_ENTRIES`] per window), so guessing another user's pending code
//! is bounded; the user-code space is 20^8 (about 2.6e10).

use std::time::Duration;

use portcullis_session::store::{AnyStore, RedisStore};
use serde::{Deserialize, Serialize};

use crate::cli::{CliError, Issued, code_id, unavailable};
use crate::sessions::Sessions;

/// How long a device code and its user code live.
pub const DEVICE_LIFETIME: Duration = Duration::from_secs(600);
/// The polling interval the CLI is told (seconds); `slow_down` adds five.
pub const POLL_INTERVAL: u64 = 5;
/// Wrong user codes one browser session may enter per window before it is refused.
pub const MAX_FAILED_ENTRIES: u64 = 5;
/// The window of [`MAX_FAILED_ENTRIES`].
pub const FAILED_ENTRY_WINDOW: Duration = Duration::from_secs(600);

/// Consonants only (no words, no 0/O or 1/I look-alikes), RFC 8628 §6.1.
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;

const REQUEST_KIND: &str = "device";
const INDEX_KIND: &str = "device-user";
const FAILED_KIND: &str = "device-failed";
/// The sealed name of an approval (the approving session's cookie).
const APPROVAL_NAME: &str = "portcullis-device-approval";

/// What `POST /oauth2/device/code` answers.
#[derive(Debug, Clone)]
pub struct DeviceStart {
    /// The secret the CLI polls with.
    pub device_code: String,
    /// What the user types, `XXXX-XXXX`.
    pub user_code: String,
    /// Seconds until both expire.
    pub expires_in: u64,
    /// Seconds between polls.
    pub interval: u64,
}

/// A pending request, as the approval page shows it.
#[derive(Debug, Clone)]
pub struct PendingDevice {
    /// The request's id (the hash of its device code), for the decision form.
    pub id: String,
    /// The CLI's host as it reported it.
    pub client_host: String,
}

/// Why a user code was not accepted on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryError {
    /// Not a code of our alphabet and length.
    Malformed,
    /// No pending request has it (wrong, expired or already decided).
    Unknown,
    /// Too many wrong codes from this session recently.
    TooManyAttempts,
    /// Redis cannot answer.
    Unavailable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Status {
    Pending,
    Approved,
    Denied,
}

/// The request as Redis keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    /// The user code (normal form, no dash).
    u: String,
    /// The CLI's reported host.
    h: String,
    s: Status,
    /// The approving session's cookie, sealed with the cookie keyring.
    #[serde(default)]
    c: String,
    /// The last poll (unix seconds) and the interval in force.
    t: u64,
    i: u64,
}

/// The normal form of what a user typed: upper case, dashes and spaces dropped; `None`
/// unless it is eight letters of the alphabet.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// `XXXX-XXXX`, for display.
pub fn format_user_code(code: &str) -> String {
    let (a, b) = code.split_at(code.len().min(USER_CODE_LEN / 2));
    format!("{a}-{b}")
}

fn random_user_code() -> Result<String, CliError> {
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).map_err(|e| CliError::Unavailable(e.to_string()))?;
        // 240 = 12 × 20: rejecting the rest keeps every letter equally likely.
        for b in bytes.into_iter().filter(|b| *b < 240) {
            if code.len() < USER_CODE_LEN {
                code.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    Ok(code)
}

fn redis(sessions: &Sessions) -> Result<&RedisStore, CliError> {
    match sessions.store() {
        AnyStore::Redis(r) => Ok(r),
        _ => Err(CliError::NeedsRedis),
    }
}

async fn read(redis: &RedisStore, id: &str) -> Result<Option<Request>, CliError> {
    let raw = redis
        .one_time()
        .get(REQUEST_KIND, id)
        .await
        .map_err(unavailable)?;
    Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
}

async fn write(redis: &RedisStore, id: &str, request: &Request) -> Result<bool, CliError> {
    let raw = serde_json::to_string(request).map_err(|e| CliError::Unavailable(e.to_string()))?;
    redis
        .one_time()
        .replace(REQUEST_KIND, id, &raw)
        .await
        .map_err(unavailable)
}

impl Sessions {
    /// Starts a device authorization for a CLI on `client_host`.
    pub async fn start_device(&self, client_host: &str, now: u64) -> Result<DeviceStart, CliError> {
        let redis = redis(self)?;
        let once = redis.one_time();
        let device_code = portcullis_session::codec::random_token(32)
            .map_err(|e| CliError::Unavailable(e.to_string()))?;
        let id = code_id(&device_code);
        // A fresh user code, retried on the (rare) clash with a pending one.
        let mut user_code = random_user_code()?;
        let mut tries = 0;
        while !once
            .put_new(INDEX_KIND, &user_code, &id, DEVICE_LIFETIME)
            .await
            .map_err(unavailable)?
        {
            tries += 1;
            if tries > 5 {
                return Err(CliError::Unavailable("no free user code".into()));
            }
            user_code = random_user_code()?;
        }
        let request = Request {
            u: user_code.clone(),
            h: client_host.to_owned(),
            s: Status::Pending,
            c: String::new(),
            t: now,
            i: POLL_INTERVAL,
        };
        let raw =
            serde_json::to_string(&request).map_err(|e| CliError::Unavailable(e.to_string()))?;
        once.put(REQUEST_KIND, &id, &raw, DEVICE_LIFETIME)
            .await
            .map_err(unavailable)?;
        Ok(DeviceStart {
            device_code,
            user_code: format_user_code(&user_code),
            expires_in: DEVICE_LIFETIME.as_secs(),
            interval: POLL_INTERVAL,
        })
    }

    /// Finds the pending request a user typed the code of, counting wrong codes
    /// against `session_id` (the entering browser session).
    pub async fn find_device(
        &self,
        typed: &str,
        session_id: &str,
    ) -> Result<PendingDevice, EntryError> {
        let redis = redis(self).map_err(|e| EntryError::Unavailable(e.description()))?;
        let once = redis.one_time();
        let down =
            |e: portcullis_session::store::StoreError| EntryError::Unavailable(e.to_string());
        let failed_key = code_id(session_id);
        let failures = once.get(FAILED_KIND, &failed_key).await.map_err(down)?;
        if failures.and_then(|f| f.parse::<u64>().ok()).unwrap_or(0) >= MAX_FAILED_ENTRIES {
            return Err(EntryError::TooManyAttempts);
        }
        let found = match normalize_user_code(typed) {
            Some(code) => once.get(INDEX_KIND, &code).await.map_err(down)?,
            None => None,
        };
        let request = match &found {
            Some(id) => read(redis, id)
                .await
                .map_err(|e| EntryError::Unavailable(e.description()))?,
            None => None,
        };
        match (found, request) {
            (Some(id), Some(r)) if r.s == Status::Pending => Ok(PendingDevice {
                id,
                client_host: r.h,
            }),
            _ => {
                once.count(FAILED_KIND, &failed_key, FAILED_ENTRY_WINDOW)
                    .await
                    .map_err(down)?;
                Err(if normalize_user_code(typed).is_some() {
                    EntryError::Unknown
                } else {
                    EntryError::Malformed
                })
            }
        }
    }

    /// Records the user's decision on request `id`: approved by the browser session
    /// `cookie`, or denied (`None`). Errors when it is no longer pending.
    pub async fn decide_device(&self, id: &str, approval: Option<&str>) -> Result<(), CliError> {
        let redis = redis(self)?;
        let Some(mut request) = read(redis, id).await? else {
            return Err(CliError::ExpiredToken);
        };
        if request.s != Status::Pending {
            return Err(CliError::ExpiredToken);
        }
        match approval {
            Some(cookie) => {
                request.s = Status::Approved;
                request.c = redis
                    .keyring()
                    .seal(APPROVAL_NAME, cookie.as_bytes())
                    .map_err(|e| CliError::Unavailable(e.to_string()))?;
            }
            None => request.s = Status::Denied,
        }
        if !write(redis, id, &request).await? {
            return Err(CliError::ExpiredToken);
        }
        redis
            .one_time()
            .delete(INDEX_KIND, &request.u)
            .await
            .map_err(unavailable)
    }

    /// One poll of the `device_code` grant: pending (or too fast), denied, expired, or
    /// the CLI session (once: the request is taken).
    pub async fn poll_device(&self, device_code: &str, now: u64) -> Result<Issued, CliError> {
        let redis = redis(self)?;
        if device_code.len() != 43 {
            return Err(CliError::InvalidGrant("unknown device code"));
        }
        let id = code_id(device_code);
        let Some(mut request) = read(redis, &id).await? else {
            return Err(CliError::ExpiredToken);
        };
        match request.s {
            Status::Pending => {
                let too_fast = now < request.t + request.i;
                if too_fast {
                    request.i += 5;
                }
                request.t = now;
                write(redis, &id, &request).await?;
                Err(if too_fast {
                    CliError::SlowDown
                } else {
                    CliError::AuthorizationPending
                })
            }
            Status::Denied => {
                redis
                    .one_time()
                    .delete(REQUEST_KIND, &id)
                    .await
                    .map_err(unavailable)?;
                Err(CliError::AccessDenied)
            }
            Status::Approved => {
                // Taken, so two polls (or replicas) cannot both make a session.
                let taken = redis
                    .one_time()
                    .take(REQUEST_KIND, &id)
                    .await
                    .map_err(unavailable)?;
                if taken.is_none() {
                    return Err(CliError::ExpiredToken);
                }
                let cookie = redis
                    .keyring()
                    .open(APPROVAL_NAME, &request.c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or(CliError::ExpiredToken)?;
                self.cli_session_from(cookie, &request.h, now).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_unambiguous_and_forgiving_to_type() {
        for _ in 0..200 {
            let code = random_user_code().unwrap();
            assert_eq!(code.len(), 8);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            let shown = format_user_code(&code);
            assert_eq!(shown.len(), 9);
            assert_eq!(normalize_user_code(&shown).as_deref(), Some(code.as_str()));
            assert_eq!(
                normalize_user_code(&shown.to_ascii_lowercase()).as_deref(),
                Some(code.as_str())
            );
        }
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GH0K",
            "BCDF GHJ1",
            "ⅫBCD-FGHJ",
        ] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
        assert_eq!(
            normalize_user_code(" bcdf ghjk ").as_deref(),
            Some("BCDFGHJK")
        );
    }

    #[test]
    fn every_letter_can_appear() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            seen.extend(random_user_code().unwrap().bytes());
        }
        assert_eq!(seen.len(), ALPHABET.len());
    }
}

//! What the Redis store writes and reads: the cookie's ticket, a session's own record,
//! a user's grant, and the views it answers with.

use serde::{Deserialize, Serialize};

/// What the cookie carries with the Redis store.
#[derive(Serialize, Deserialize)]
pub(super) struct Ticket {
    /// Session id.
    pub(super) i: String,
    /// Per-session secret (base64url, 32 bytes).
    pub(super) k: String,
    /// The grant the session's tokens live in (absent: the session holds them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) g: Option<String>,
}

/// What a session's own `d` holds when its tokens live in a grant.
#[derive(Serialize, Deserialize)]
pub(super) struct Record {
    #[serde(rename = "id")]
    pub(super) id: String,
    #[serde(rename = "ca")]
    pub(super) created_at: u64,
    #[serde(rename = "ea")]
    pub(super) expires_at: u64,
}

/// What a grant's `d` holds.
#[derive(Serialize, Deserialize)]
pub(super) struct Grant {
    #[serde(rename = "it")]
    pub(super) id_token: String,
    #[serde(rename = "ie")]
    pub(super) id_token_expires_at: u64,
    #[serde(rename = "rt", default, skip_serializing_if = "Option::is_none")]
    pub(super) refresh_token: Option<String>,
}

/// A session as stored: its own sealed record and, when it shares one, its grant's.
/// Equal values open to equal sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub(super) session: String,
    pub(super) grant: Option<String>,
}

/// How ending a grant after a refused refresh went.
#[derive(Debug)]
pub enum GrantEnd {
    /// The grant and every session on it are gone (how many sessions).
    Ended(usize),
    /// A newer sign-in (or refresh) replaced the grant after the refused token was
    /// read: nothing was ended, the sessions use the new grant.
    Replaced,
}

/// One session as listed by `portcullis sessions list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// Session id (what `sessions revoke --id` takes).
    pub id: String,
    /// Sign-in time (unix seconds).
    pub created_at: u64,
    /// Absolute end (unix seconds).
    pub expires_at: u64,
    /// `browser` or `cli`.
    pub kind: String,
    /// The CLI's host as it reported it (empty for browsers).
    pub client: String,
    /// When a CLI last asked for a token (unix seconds).
    pub last_used: Option<u64>,
}

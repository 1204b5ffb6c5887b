//! Cookie-store sessions this process saw signed out.
//!
//! A cookie-store session *is* its cookie: signing out can only ask the browser to drop
//! it. A request sent before the sign-out, or a refresh whose `Set-Cookie` reaches the
//! browser after the sign-out's, would otherwise bring the session back. So the ids of
//! sessions ended here are kept until the session's own end and refused. This holds in
//! one process; other replicas learn nothing (the Redis store has no such gap).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// At most this many ids are kept; beyond it the oldest-ending are forgotten first.
const MAX_ENTRIES: usize = 100_000;

/// Session ids ended in this process, with the unix second each session would have
/// ended anyway.
#[derive(Debug, Default)]
pub(crate) struct EndedSessions {
    ids: Mutex<HashMap<String, u64>>,
    /// Entries in `ids`, read without the lock: the hot path pays one atomic load
    /// while nobody has signed out.
    len: AtomicUsize,
}

impl EndedSessions {
    /// Remembers that session `id` ended; it would have expired at `until`.
    pub(crate) fn insert(&self, id: &str, until: u64) {
        let mut ids = match self.ids.lock() {
            Ok(ids) => ids,
            Err(poisoned) => poisoned.into_inner(),
        };
        if ids.len() >= MAX_ENTRIES {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            ids.retain(|_, end| *end > now);
            if ids.len() >= MAX_ENTRIES
                && let Some(first) = ids
                    .iter()
                    .min_by_key(|(_, end)| **end)
                    .map(|(k, _)| k.clone())
            {
                ids.remove(&first);
            }
        }
        ids.insert(id.to_owned(), until);
        self.len.store(ids.len(), Ordering::Relaxed);
    }

    /// Whether session `id` was ended here (and would still be alive at `now`).
    pub(crate) fn contains(&self, id: &str, now: u64) -> bool {
        if self.len.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let ids = match self.ids.lock() {
            Ok(ids) => ids,
            Err(poisoned) => poisoned.into_inner(),
        };
        ids.get(id).is_some_and(|end| *end > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_sessions_are_remembered_until_their_end() {
        let ended = EndedSessions::default();
        assert!(!ended.contains("a", 10));
        ended.insert("a", 100);
        assert!(ended.contains("a", 10));
        assert!(!ended.contains("b", 10));
        assert!(
            !ended.contains("a", 100),
            "past its end it would be expired anyway"
        );
    }
}

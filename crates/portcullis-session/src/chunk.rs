//! Splitting one long cookie value over several cookies, and joining it back.
//!
//! Browsers cap a cookie (name, value and attributes) at about 4096 bytes. A sealed
//! session carrying a large ID token (users in many groups) can exceed that, so it is
//! written as `NAME_0`, `NAME_1`, … and joined on read. A value that fits is written
//! under the plain `NAME`. These are pure functions: writing `Set-Cookie` headers,
//! including clearing chunks left over from a longer previous value, is the caller's job
//! (see [`stale_names`]).

/// Default largest value per cookie: leaves room under 4096 for the name and attributes.
pub const DEFAULT_CHUNK_SIZE: usize = 3800;
/// Most chunks we ever write or read; more means something is wrong (or hostile).
pub const MAX_CHUNKS: usize = 16;

/// Why a value could not be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The value needs more than [`MAX_CHUNKS`] cookies.
    #[error("value needs more than {MAX_CHUNKS} cookies")]
    TooLarge,
}

/// The name of chunk `i` of cookie `name`.
pub fn chunk_name(name: &str, i: usize) -> String {
    format!("{name}_{i}")
}

/// Splits `value` into `(cookie name, value)` pairs of at most `max` bytes each.
///
/// Values are ASCII (base64url), so splitting on byte boundaries is safe; a non-ASCII
/// value is split on character boundaries instead.
pub fn split(name: &str, value: &str, max: usize) -> Result<Vec<(String, String)>, ChunkError> {
    let max = max.max(1);
    if value.len() <= max {
        return Ok(vec![(name.to_owned(), value.to_owned())]);
    }
    let mut parts = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        let mut at = rest.len().min(max);
        while !rest.is_char_boundary(at) {
            at -= 1;
        }
        let (head, tail) = rest.split_at(at);
        parts.push(head);
        rest = tail;
    }
    if parts.len() > MAX_CHUNKS {
        return Err(ChunkError::TooLarge);
    }
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| (chunk_name(name, i), part.to_owned()))
        .collect())
}

/// Joins a value from the cookies a request carried; `get` looks a cookie up by name.
///
/// The plain `NAME` wins when present. Otherwise `NAME_0`, `NAME_1`, … are concatenated
/// until the first missing index. `None` when there is no such cookie at all or more
/// than [`MAX_CHUNKS`] chunks. A plain cookie is borrowed, not copied: it is every
/// request's session cookie, a few KB each.
pub fn join<'a>(
    name: &str,
    get: impl Fn(&str) -> Option<&'a str>,
) -> Option<std::borrow::Cow<'a, str>> {
    if let Some(v) = get(name) {
        return Some(std::borrow::Cow::Borrowed(v));
    }
    let mut out = String::new();
    for i in 0..=MAX_CHUNKS {
        match get(&chunk_name(name, i)) {
            Some(_) if i == MAX_CHUNKS => return None,
            Some(part) => out.push_str(part),
            None if i == 0 => return None,
            None => return Some(std::borrow::Cow::Owned(out)),
        }
    }
    None
}

/// Names among `present` (cookies the request carried) that belong to cookie `name` but
/// are not in `written`: they must be expired, or a shorter new value would be joined
/// with the tail of an older one.
pub fn stale_names<'a>(
    name: &str,
    present: impl IntoIterator<Item = &'a str>,
    written: &[String],
) -> Vec<String> {
    present
        .into_iter()
        .filter(|p| belongs_to(name, p) && !written.iter().any(|w| w == p))
        .map(str::to_owned)
        .collect()
}

/// Whether cookie `candidate` is `name` itself or one of its chunks `name_<digits>`.
pub fn belongs_to(name: &str, candidate: &str) -> bool {
    match candidate.strip_prefix(name) {
        Some("") => true,
        Some(rest) => rest.strip_prefix('_').is_some_and(|d| {
            !d.is_empty() && d.len() <= 2 && d.bytes().all(|b| b.is_ascii_digit())
        }),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn jar(pairs: &[(String, String)]) -> HashMap<String, String> {
        pairs.iter().cloned().collect()
    }

    #[test]
    fn short_value_uses_plain_name() {
        let parts = split("_p", "abc", 10).unwrap();
        assert_eq!(parts, vec![("_p".to_owned(), "abc".to_owned())]);
    }

    #[test]
    fn long_value_is_chunked_and_joined() {
        let value = "x".repeat(25);
        let parts = split("_p", &value, 10).unwrap();
        let names: Vec<_> = parts.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(names, ["_p_0", "_p_1", "_p_2"]);
        let j = jar(&parts);
        assert_eq!(join("_p", |n| j.get(n).map(String::as_str)).unwrap(), value);
    }

    #[test]
    fn join_stops_at_gap_and_missing() {
        let j: HashMap<String, String> = [("_p_0", "a"), ("_p_2", "c")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(join("_p", |n| j.get(n).map(String::as_str)).unwrap(), "a");
        assert_eq!(join("_q", |n| j.get(n).map(String::as_str)), None);
    }

    #[test]
    fn too_many_chunks() {
        assert_eq!(
            split("_p", &"x".repeat(MAX_CHUNKS * 10 + 1), 10),
            Err(ChunkError::TooLarge)
        );
        let j: HashMap<String, String> = (0..=MAX_CHUNKS)
            .map(|i| (chunk_name("_p", i), "x".to_owned()))
            .collect();
        assert_eq!(join("_p", |n| j.get(n).map(String::as_str)), None);
    }

    #[test]
    fn stale_chunks_are_found() {
        let present = ["_p_0", "_p_1", "_p_2", "_p_csrf_abc", "other", "_p"];
        let written = vec!["_p".to_owned()];
        assert_eq!(
            stale_names("_p", present, &written),
            ["_p_0", "_p_1", "_p_2"]
        );
        assert!(!belongs_to("_p", "_p_csrf_abc"));
        assert!(!belongs_to("_p", "_px"));
        assert!(belongs_to("_p", "_p_12"));
    }

    proptest! {
        #[test]
        fn split_join_round_trip(value in "[A-Za-z0-9_-]{1,2000}", max in 1usize..500) {
            match split("_p", &value, max) {
                Ok(parts) => {
                    prop_assert!(parts.iter().all(|(_, v)| v.len() <= max));
                    let j = jar(&parts);
                    let joined = join("_p", |n| j.get(n).map(String::as_str));
                    prop_assert_eq!(joined.as_deref(), Some(value.as_str()));
                }
                Err(ChunkError::TooLarge) => prop_assert!(value.len() > max * MAX_CHUNKS),
            }
        }
    }
}

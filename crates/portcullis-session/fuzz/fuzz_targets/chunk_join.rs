//! Joining chunks from arbitrary cookie sets never panics, and split/join round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_session::chunk;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Interpret the input as `name=value` lines: a hostile cookie jar.
    let jar: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let _ = chunk::join("_p", |n| jar.iter().find(|(k, _)| *k == n).map(|(_, v)| *v));
    let _ = chunk::stale_names("_p", jar.iter().map(|(k, _)| *k), &[]);
    if let Ok(parts) = chunk::split("_p", text, 64) {
        let joined = chunk::join("_p", |n| parts.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str()));
        if !text.is_empty() {
            assert_eq!(joined.as_deref(), Some(text));
        }
    }
});

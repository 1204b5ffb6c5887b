//! Policy query strings and skip-auth matching on arbitrary input never panic, and a
//! skip-auth match is never granted to a path that does not decode to the rule's
//! prefix, or that carries dot segments (oracle: an independent decoder).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::authz::{Policy, SkipRule, skip_auth};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Policy::from_query(Some(text), &["rd"]);
    static RULES: std::sync::OnceLock<Vec<SkipRule>> = std::sync::OnceLock::new();
    let rules = RULES.get_or_init(|| SkipRule::parse("GET /public/.*").into_iter().collect());
    if skip_auth(rules, "GET", text) {
        let path = text.split(['?', '#']).next().unwrap_or_default();
        let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
        assert!(decoded.starts_with("/public/"), "{text:?}");
        assert!(
            !decoded.split('/').any(|s| s == ".." || s == "."),
            "{text:?}"
        );
        assert!(!decoded.contains(['%', '\\']), "{text:?}");
    }
});

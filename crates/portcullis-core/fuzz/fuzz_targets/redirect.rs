//! The redirect validator never panics, and whatever it accepts stays on the auth host
//! or a whitelisted host once a browser resolves it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::redirect::{Whitelist, validate_redirect};

fuzz_target!(|data: &[u8]| {
    let Ok(rd) = std::str::from_utf8(data) else { return };
    let whitelist = Whitelist::parse([".example.com", "auth.example.com", "localhost:*"]).expect("whitelist");
    if let Ok(target) = validate_redirect(rd, &whitelist) {
        let base = url::Url::parse("https://auth.example.com/").expect("base");
        let resolved = base.join(target.as_str()).expect("accepted targets resolve");
        let host = resolved.host_str().unwrap_or_default();
        assert!(resolved.username().is_empty() && resolved.password().is_none(), "{rd:?}");
        assert!(
            host == "auth.example.com" || host.ends_with(".example.com") || host == "localhost",
            "{rd:?} escaped to {host}"
        );
        assert!(matches!(resolved.scheme(), "http" | "https"));
    }
});

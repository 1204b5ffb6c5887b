//! Opening arbitrary cookie values never panics and never succeeds without the key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_session::{Key, Keyring};

fuzz_target!(|data: &[u8]| {
    let ring = Keyring::new(&[Key::from_bytes([7; 32]), Key::from_bytes([9; 32])]).expect("keys");
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(ring.open("_portcullis", text).is_err(), "a forged value opened");
        let _ = ring.open_json::<portcullis_session::SessionState>("_portcullis", text);
    }
});

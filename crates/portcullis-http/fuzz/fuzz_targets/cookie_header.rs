//! Parsing arbitrary `Cookie` headers never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_http::cookies::RequestCookies;

fuzz_target!(|data: &[u8]| {
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_bytes(data) {
        headers.append(http::header::COOKIE, v);
    }
    let cookies = RequestCookies::parse(&headers);
    let _ = cookies.get("_portcullis");
    let _ = cookies.names().count();
});

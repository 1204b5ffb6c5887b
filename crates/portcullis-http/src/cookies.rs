//! Reading request cookies and writing `Set-Cookie` headers for sessions and logins.
//!
//! Cookie attributes follow RFC 6265 §4.1.2: `HttpOnly` always, `Secure` and `SameSite`
//! from configuration, `Domain` set to the configured parent domain matching the request
//! host, so one sign-in covers every sub-domain (every cluster's dashboard).

use cookie::Cookie;
use http::{HeaderMap, HeaderValue};
use portcullis_session::chunk;

use crate::settings::{CookieSettings, SameSite};

/// Most cookies we look at in one request; the rest are ignored.
const MAX_COOKIES: usize = 128;

/// A cookie name as text when it is all visible ASCII or tabs (the rule of
/// `HeaderValue::to_str`, which the parser before this one applied to whole headers).
fn visible_name(bytes: &[u8]) -> Option<&str> {
    let visible = |b: u8| b == b'\t' || (0x20..0x7f).contains(&b);
    if bytes.is_empty() || !bytes.iter().all(|&b| visible(b)) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// `bytes` without leading and trailing double quotes.
fn unquote(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b'"').unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b'"')
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// The cookies a request carried, borrowed from its `Cookie` headers.
///
/// Parsed per pair, not per header: every application on the parent domain sends its
/// cookies to us too, and one of them holding a byte that is not ASCII (UTF-8 or
/// Latin-1 text, which browsers send as they are) must not hide the session cookie
/// beside it (that was a 401 on every request: a login loop). Names are checked as
/// visible ASCII when parsed; a value becomes text only when asked for (`get`), so
/// the session cookie's few KB are read twice per request (the split, then UTF-8),
/// not five times. `Debug` shows names only.
#[derive(Default)]
pub struct RequestCookies<'a> {
    pairs: Vec<(&'a str, &'a [u8])>,
}

impl std::fmt::Debug for RequestCookies<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestCookies")
            .field(
                "names",
                &self.pairs.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<'a> RequestCookies<'a> {
    /// Parses every `Cookie` header (HTTP/2 may send several). Malformed pairs are
    /// skipped, never an error; at most [`MAX_COOKIES`] pairs are kept.
    pub fn parse(headers: &'a HeaderMap) -> Self {
        let mut pairs = Vec::new();
        for value in headers.get_all(http::header::COOKIE) {
            let mut rest = value.as_bytes();
            while pairs.len() < MAX_COOKIES {
                let (pair, next) = match memchr::memchr(b';', rest) {
                    Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                    None => (rest, None),
                };
                // `trim_ascii`: of the whitespace it knows, a header value holds only
                // spaces and tabs.
                if let Some(eq) = memchr::memchr(b'=', pair)
                    && let Some(name) = visible_name(pair[..eq].trim_ascii())
                {
                    pairs.push((name, unquote(pair[eq + 1..].trim_ascii())));
                }
                match next {
                    Some(next) => rest = next,
                    None => break,
                }
            }
        }
        Self { pairs }
    }

    /// The value of the first cookie called `name`, when it is UTF-8 text.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        let (_, value) = self.pairs.iter().find(|(n, _)| *n == name)?;
        std::str::from_utf8(value).ok()
    }

    /// Every cookie name present.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.pairs.iter().map(|(n, _)| *n)
    }
}

/// Builds `Set-Cookie` values for one response.
#[derive(Debug)]
pub struct CookieWriter<'s> {
    settings: &'s CookieSettings,
    domain: Option<String>,
}

impl<'s> CookieWriter<'s> {
    /// A writer for a request to `host`: picks the longest configured domain that
    /// `host` is inside, or none (a host-only cookie).
    pub fn new(settings: &'s CookieSettings, host: Option<&str>) -> Self {
        let domain = host.and_then(|h| {
            settings
                .domains
                .iter()
                .filter(|d| domain_matches(h, d))
                .max_by_key(|d| d.len())
                .map(|d| d.trim_start_matches('.').to_owned())
        });
        Self { settings, domain }
    }

    fn base<'c>(
        &self,
        name: String,
        value: String,
        same_site: SameSite,
    ) -> cookie::CookieBuilder<'c> {
        let mut builder = Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .secure(self.settings.secure || same_site == SameSite::None)
            .same_site(match same_site {
                SameSite::Lax => cookie::SameSite::Lax,
                SameSite::Strict => cookie::SameSite::Strict,
                SameSite::None => cookie::SameSite::None,
            });
        if let Some(d) = &self.domain {
            builder = builder.domain(d.clone());
        }
        builder
    }

    fn header(cookie: Cookie<'_>) -> Option<HeaderValue> {
        HeaderValue::from_str(&cookie.encoded().to_string()).ok()
    }

    /// Writes a sealed session value, split into chunks when needed, and expires any
    /// chunk of a previous, longer value that the request still carries.
    pub fn session(
        &self,
        sealed: &str,
        max_age_secs: u64,
        present: &RequestCookies<'_>,
    ) -> Result<Vec<HeaderValue>, chunk::ChunkError> {
        let name = &self.settings.name;
        let parts = chunk::split(name, sealed, self.settings.chunk_size)?;
        let written: Vec<String> = parts.iter().map(|(n, _)| n.clone()).collect();
        let max_age =
            cookie::time::Duration::seconds(i64::try_from(max_age_secs).unwrap_or(i64::MAX));
        let mut out: Vec<HeaderValue> = parts
            .into_iter()
            .filter_map(|(n, v)| {
                Self::header(
                    self.base(n, v, self.settings.same_site)
                        .max_age(max_age)
                        .build(),
                )
            })
            .collect();
        for stale in chunk::stale_names(name, present.names(), &written) {
            out.extend(self.removal(stale));
        }
        Ok(out)
    }

    /// Expires every session cookie (plain and chunks) the request carries, and the
    /// plain name even if absent (a cookie set under another path is still covered).
    pub fn clear_session(&self, present: &RequestCookies<'_>) -> Vec<HeaderValue> {
        let name = &self.settings.name;
        let mut names: Vec<String> = chunk::stale_names(name, present.names(), &[]);
        if !names.iter().any(|n| n == name) {
            names.push(name.clone());
        }
        names.into_iter().filter_map(|n| self.removal(n)).collect()
    }

    /// The per-login-attempt CSRF cookie. Always `SameSite=Lax` (or `None` when so
    /// configured): the callback is a cross-site navigation from the provider, which a
    /// `Strict` cookie would not survive.
    pub fn csrf(&self, name: String, sealed: String) -> Option<HeaderValue> {
        let same_site = match self.settings.same_site {
            SameSite::None => SameSite::None,
            _ => SameSite::Lax,
        };
        let max_age = cookie::time::Duration::seconds(
            i64::try_from(self.settings.csrf_lifetime.as_secs()).unwrap_or(i64::MAX),
        );
        Self::header(self.base(name, sealed, same_site).max_age(max_age).build())
    }

    /// A `Set-Cookie` that deletes cookie `name` (same `Domain` and `Path` as written).
    pub fn removal(&self, name: String) -> Option<HeaderValue> {
        let mut c = self
            .base(name, String::new(), self.settings.same_site)
            .build();
        c.make_removal();
        Self::header(c)
    }
}

/// Whether `host` is the domain or inside it (`.example.com` covers `example.com` and
/// `a.example.com`, never `badexample.com`).
fn domain_matches(host: &str, domain: &str) -> bool {
    let bare = domain.trim_start_matches('.');
    if bare.is_empty() {
        return false;
    }
    host.eq_ignore_ascii_case(bare)
        || (host.len() > bare.len()
            && host.as_bytes()[host.len() - bare.len() - 1] == b'.'
            && host[host.len() - bare.len()..].eq_ignore_ascii_case(bare))
}

/// The CSRF cookie name of the login attempt with this `state`. A prefix of the state
/// keeps concurrent attempts (several tabs) in separate cookies.
pub fn csrf_cookie_name(base: &str, state: &str) -> Option<String> {
    let id: String = state.chars().take(12).collect();
    (id.len() == 12
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| format!("{base}_csrf_{id}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    fn settings() -> CookieSettings {
        CookieSettings {
            name: "_p".into(),
            domains: vec![".example.com".into(), ".c1.example.com".into()],
            secure: true,
            same_site: SameSite::Lax,
            csrf_lifetime: Duration::from_secs(900),
            chunk_size: 10,
        }
    }

    #[test]
    fn domain_choice() {
        let s = settings();
        assert_eq!(
            CookieWriter::new(&s, Some("a.c1.example.com"))
                .domain
                .as_deref(),
            Some("c1.example.com")
        );
        assert_eq!(
            CookieWriter::new(&s, Some("auth.example.com"))
                .domain
                .as_deref(),
            Some("example.com")
        );
        assert_eq!(CookieWriter::new(&s, Some("badexample.com")).domain, None);
        assert_eq!(CookieWriter::new(&s, None).domain, None);
    }

    #[test]
    fn session_chunks_and_stale_removal() {
        let s = settings();
        let w = CookieWriter::new(&s, Some("auth.example.com"));
        let mut headers = HeaderMap::new();
        headers.insert(
            "cookie",
            "_p_0=a; _p_1=b; _p_2=c; _p_3=d; other=1".parse().unwrap(),
        );
        let present = RequestCookies::parse(&headers);
        let out = w.session(&"x".repeat(25), 60, &present).unwrap();
        let text: Vec<String> = out.iter().map(|h| h.to_str().unwrap().to_owned()).collect();
        assert!(text[0].starts_with("_p_0=xxxxxxxxxx;"), "{text:?}");
        assert!(
            text[0].contains("HttpOnly")
                && text[0].contains("Secure")
                && text[0].contains("Domain=example.com")
        );
        assert!(text[0].contains("SameSite=Lax") && text[0].contains("Max-Age=60"));
        assert_eq!(
            text.len(),
            4,
            "three chunks plus removal of the stale _p_3: {text:?}"
        );
        assert!(text[3].starts_with("_p_3=;") && text[3].contains("Max-Age=0"));
    }

    #[test]
    fn parse_is_lenient() {
        let mut headers = HeaderMap::new();
        headers.append("cookie", "a=1; junk; =x; b=\"2\"".parse().unwrap());
        headers.append("cookie", "c=3".parse().unwrap());
        let c = RequestCookies::parse(&headers);
        assert_eq!(
            (c.get("a"), c.get("b"), c.get("c"), c.get("junk")),
            (Some("1"), Some("2"), Some("3"), None)
        );
    }

    /// The parser before this one (whole headers, `str` methods), as the reference:
    /// on headers of visible ASCII the two must agree.
    fn reference(headers: &HeaderMap) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        for value in headers.get_all(http::header::COOKIE) {
            let Ok(value) = value.to_str() else {
                continue;
            };
            for pair in value.split(';') {
                if pairs.len() >= MAX_COOKIES {
                    break;
                }
                if let Some((name, val)) = pair.trim().split_once('=') {
                    let val = val.trim().trim_matches('"');
                    if !name.is_empty() {
                        pairs.push((name.trim().to_owned(), val.to_owned()));
                    }
                }
            }
        }
        pairs
    }

    fn parsed(headers: &HeaderMap) -> Vec<(String, String)> {
        let c = RequestCookies::parse(headers);
        c.pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), String::from_utf8_lossy(v).into_owned()))
            .collect()
    }

    #[test]
    fn a_foreign_cookie_that_is_not_ascii_does_not_hide_the_session() {
        for other in [&b"lang=Jos\xc3\xa9"[..], b"lang=Jos\xe9", b"n\xc3\xa4me=1"] {
            let mut value = b"a=1; ".to_vec();
            value.extend_from_slice(other);
            value.extend_from_slice(b"; _p=sealed");
            let mut headers = HeaderMap::new();
            headers.append("cookie", HeaderValue::from_bytes(&value).unwrap());
            let c = RequestCookies::parse(&headers);
            assert_eq!((c.get("a"), c.get("_p")), (Some("1"), Some("sealed")));
        }
        // A value that is UTF-8 text is text; one that is not is no value.
        let mut headers = HeaderMap::new();
        headers.append(
            "cookie",
            HeaderValue::from_bytes(b"u=Jos\xc3\xa9; l=Jos\xe9").unwrap(),
        );
        let c = RequestCookies::parse(&headers);
        assert_eq!((c.get("u"), c.get("l")), (Some("José"), None));
        // Names must be visible ASCII.
        assert_eq!(c.names().collect::<Vec<_>>(), ["u", "l"]);
        let mut headers = HeaderMap::new();
        headers.append(
            "cookie",
            HeaderValue::from_bytes(b"n\xe4me=1; b=2").unwrap(),
        );
        assert_eq!(
            RequestCookies::parse(&headers).names().collect::<Vec<_>>(),
            ["b"]
        );
    }

    #[test]
    fn at_most_max_cookies_are_kept() {
        let many: Vec<String> = (0..200).map(|i| format!("c{i}={i}")).collect();
        let mut headers = HeaderMap::new();
        headers.append("cookie", many[..150].join("; ").parse().unwrap());
        headers.append("cookie", many[150..].join("; ").parse().unwrap());
        let c = RequestCookies::parse(&headers);
        assert_eq!(c.names().count(), MAX_COOKIES);
        assert_eq!(parsed(&headers), reference(&headers));
    }

    #[test]
    fn debug_shows_names_not_values() {
        let mut headers = HeaderMap::new();
        headers.append("cookie", "_p=secret-session; b=2".parse().unwrap());
        let shown = format!("{:?}", RequestCookies::parse(&headers));
        assert!(shown.contains("_p") && !shown.contains("secret"), "{shown}");
    }

    proptest::proptest! {
        /// Visible ASCII and tabs, rich in the bytes the parser looks at.
        #[test]
        fn agrees_with_the_reference_on_ascii(
            values in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::sample::select(&[b'a', b'b', b'_', b'=', b';', b' ', b'\t', b'"', b'x', b'0'][..]),
                    0..60,
                ),
                1..3,
            )
        ) {
            let mut headers = HeaderMap::new();
            for v in &values {
                if let Ok(v) = HeaderValue::from_bytes(v) {
                    headers.append("cookie", v);
                }
            }
            proptest::prop_assert_eq!(parsed(&headers), reference(&headers));
        }

        /// Any bytes: never a panic, and what `get` answers is what was parsed.
        #[test]
        fn any_bytes_parse(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                headers.append("cookie", v);
            }
            let c = RequestCookies::parse(&headers);
            for name in c.names() {
                proptest::prop_assert!(name.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)));
                if let Some(v) = c.get(name) {
                    proptest::prop_assert!(!v.starts_with(' ') && !v.ends_with('"'));
                }
            }
        }
    }

    #[test]
    fn csrf_names() {
        assert_eq!(
            csrf_cookie_name("_p", "abcdefghijklmnop").as_deref(),
            Some("_p_csrf_abcdefghijkl")
        );
        assert_eq!(csrf_cookie_name("_p", "short"), None);
        assert_eq!(csrf_cookie_name("_p", "abc;efghijklmnop"), None);
    }
}

//! The one validator for post-login / post-logout redirect targets (the `rd`
//! query parameter) used by `/oauth2/start`, `/oauth2/callback` and
//! `/oauth2/sign_out`.
//!
//! # Why this is so strict
//!
//! Almost every redirect advisory oauth2-proxy ever published came from a
//! validator that *parsed* the target differently from the browser that later
//! followed it: `/\evil.com` and `/%09/evil.com` (browsers treat `\` as `/` and
//! strip tabs, so both become `//evil.com`), `/./\evil.com`, `//evil.com`,
//! userinfo tricks (`https://example.com@evil.com`), suffix matching that let
//! `.example.com` admit `badexample.com`, other schemes (`javascript:`,
//! `data:`), and hosts that are normalised after the check (IDN, percent
//! encoding, trailing dots, `0x7f.1`). Instead of trying to predict every
//! browser quirk we only admit a small, boring grammar and reject everything
//! else: a target either is a plain absolute path on the auth host or an
//! `http(s)` URL whose host is spelled in canonical lower-case ASCII and is on
//! the whitelist. When in doubt, we reject.
//!
//! # Accepted forms of `rd` (after query decoding)
//!
//! * **Relative**: starts with exactly one `/`. The path part (before `?` or
//!   `#`) is ASCII, contains no `.` / `..` segments and no percent-encoded
//!   `/`, `\`, `.`, `%`, space or control character, and no malformed escape.
//!   Query and fragment may contain any percent-encoding but must be ASCII.
//!   Relative targets are returned unchanged and never consult the whitelist,
//!   because they cannot leave the auth host.
//! * **Absolute**: `http://` or `https://` (scheme case-insensitive) followed
//!   by `host[:port]` with no userinfo, no percent-encoding, no trailing dot,
//!   no IPv6 literal; the host is a lower-case-able DNS name of `[a-z0-9-]`
//!   labels or a canonical dotted-quad IPv4 address. The path obeys the same
//!   rules as a relative path. The host and port must be admitted by the
//!   [`Whitelist`]. The `url` crate's serialization is returned, so what we
//!   checked is byte-for-byte what the browser receives.
//!
//! The whole string must be at most 2048 bytes and contain no whitespace
//! (Unicode included), no control character and no `\` anywhere.

use std::fmt;

use url::{Host, Url};

mod whitelist;

use whitelist::{HostKind, classify_host, parse_port};
pub use whitelist::{Whitelist, WhitelistEntry, WhitelistError};

/// Redirect policy.
#[derive(Debug, Clone)]
pub struct RedirectSettings {
    /// Hosts absolute `rd` URLs may point to.
    pub whitelist: Whitelist,
    /// Where to go when `rd` is missing or rejected (a path on the auth host).
    pub default: String,
}

/// Longest `rd` (and longest serialized result) we accept. Redirect targets
/// end up in cookies/state and `Location` headers; anything longer is either
/// an attack or a bug, and a cap keeps those bounded.
const MAX_REDIRECT_LEN: usize = 2048;

// ---------------------------------------------------------------------------
// Redirect validation
// ---------------------------------------------------------------------------

/// Why a redirect target was refused. Deliberately coarse and `Copy`: it is
/// for logs and metrics, never echoed with the attacker's input.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum RedirectError {
    /// No target at all.
    #[error("redirect target is empty")]
    Empty,
    /// More than 2048 bytes (input or serialized result).
    #[error("redirect target is too long")]
    TooLong,
    /// Browsers strip or reinterpret tabs, newlines and other whitespace
    /// (`/\t/evil.com` becomes `//evil.com`), and CR/LF would split headers.
    #[error("redirect target contains whitespace or control characters")]
    ControlOrWhitespace,
    /// Browsers treat `\` as `/` in http(s) URLs (`/\evil.com`).
    #[error("redirect target contains a backslash")]
    Backslash,
    /// `//host` is an absolute URL in disguise.
    #[error("redirect target is protocol-relative")]
    ProtocolRelative,
    /// `.` or `..` path segments (`/./\evil.com` style tricks, path escapes).
    #[error("redirect target contains a '.' or '..' path segment")]
    DotSegment,
    /// Percent-encoded `/`, `\`, `.`, `%`, space or control character in the
    /// path, which a decoding hop could turn back into a separator.
    #[error(
        "redirect target path contains a percent-encoded separator, dot, percent sign or control character"
    )]
    EncodedSeparator,
    /// Neither `/path` nor an `http(s)://` URL (e.g. `evil.com`, `../x`).
    #[error("redirect target is neither an absolute path nor an absolute http(s) URL")]
    NotAbsolutePath,
    /// `javascript:`, `data:`, `ftp:`, ...
    #[error("redirect target uses a scheme other than http or https")]
    UnsupportedScheme,
    /// `user@host` in the authority (`https://example.com@evil.com`).
    #[error("redirect target contains userinfo")]
    Userinfo,
    /// Host or port not in canonical form (empty, trailing dot, IPv6,
    /// percent-encoded, non-ASCII, non-canonical IPv4, bad port, ...).
    #[error("redirect target has an invalid or non-canonical host or port")]
    BadHost,
    /// Well-formed, but the host/port is not on the whitelist.
    #[error("redirect target host is not whitelisted")]
    NotWhitelisted,
    /// Raw non-ASCII outside an absolute URL's query/fragment; it would be
    /// re-encoded (or refused) somewhere downstream, so we never pass it on.
    #[error("redirect target contains non-ASCII characters")]
    NonAscii,
    /// Anything else we cannot parse unambiguously (`https:evil.com`,
    /// malformed percent escapes in the path, URL parser errors).
    #[error("redirect target cannot be parsed")]
    Unparseable,
}

/// The validated target: either a path on the auth host or an absolute
/// http(s) URL.
///
/// It can only be obtained from [`validate_redirect`], so holding one is proof
/// that the check ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectTarget(String);

impl RedirectTarget {
    /// The target, ready for a `Location` header (always printable ASCII).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The target as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for RedirectTarget {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedirectTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates a redirect target (`rd`, already query-decoded) against the
/// whitelist. See the module documentation for the exact grammar; on any
/// doubt the target is rejected and the caller should fall back to `/`.
pub fn validate_redirect(rd: &str, whitelist: &Whitelist) -> Result<RedirectTarget, RedirectError> {
    if rd.is_empty() {
        return Err(RedirectError::Empty);
    }
    if rd.len() > MAX_REDIRECT_LEN {
        return Err(RedirectError::TooLong);
    }
    // `char::is_control` covers C0, DEL and C1; `is_whitespace` covers
    // Unicode spaces (NBSP, U+2028, ideographic space, ...).
    if rd.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(RedirectError::ControlOrWhitespace);
    }
    if rd.contains('\\') {
        return Err(RedirectError::Backslash);
    }
    if rd.starts_with('/') {
        validate_relative(rd)
    } else {
        validate_absolute(rd, whitelist)
    }
}

/// `/path[?query][#fragment]` on the auth host.
fn validate_relative(rd: &str) -> Result<RedirectTarget, RedirectError> {
    if rd.starts_with("//") {
        return Err(RedirectError::ProtocolRelative);
    }
    let (path, rest) = split_path(rd);
    check_path(path)?;
    // Returned unchanged, so it must already be header-safe ASCII.
    if !rest.is_ascii() {
        return Err(RedirectError::NonAscii);
    }
    Ok(RedirectTarget(rd.to_owned()))
}

/// `http(s)://host[:port][/path][?query][#fragment]`.
fn validate_absolute(rd: &str, whitelist: &Whitelist) -> Result<RedirectTarget, RedirectError> {
    let (scheme, default_port, rest) = if let Some(rest) = strip_prefix_ci(rd, "https://") {
        ("https", 443, rest)
    } else if let Some(rest) = strip_prefix_ci(rd, "http://") {
        ("http", 80, rest)
    } else if strip_prefix_ci(rd, "http:").is_some() || strip_prefix_ci(rd, "https:").is_some() {
        // `https:evil.com`, `http:/evil.com`: browsers and parsers disagree
        // about what these mean, so they mean nothing to us.
        return Err(RedirectError::Unparseable);
    } else if has_scheme(rd) {
        return Err(RedirectError::UnsupportedScheme);
    } else {
        return Err(RedirectError::NotAbsolutePath);
    };

    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (host, kind, port) = parse_authority(authority)?;
    let (path, _query_and_fragment) = split_path(tail);
    check_path(path)?;

    // Second opinion from the WHATWG parser: whatever it would normalise
    // differently from our raw reading (IPv4 shorthands, IDNA mapping, ...)
    // is a disagreement, and disagreements are rejected.
    let url = Url::parse(rd).map_err(map_parse_error)?;
    if url.scheme() != scheme || url.cannot_be_a_base() {
        return Err(RedirectError::Unparseable);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RedirectError::Userinfo);
    }
    if url.host_str() != Some(host.as_str()) {
        return Err(RedirectError::BadHost);
    }
    let kind_agrees = matches!(
        (url.host(), kind),
        (Some(Host::Domain(_)), HostKind::Dns) | (Some(Host::Ipv4(_)), HostKind::Ipv4)
    );
    if !kind_agrees || url.port_or_known_default() != Some(port.unwrap_or(default_port)) {
        return Err(RedirectError::BadHost);
    }

    if !whitelist.admits(default_port, &host, port) {
        return Err(RedirectError::NotWhitelisted);
    }
    let serialized = String::from(url);
    if serialized.len() > MAX_REDIRECT_LEN {
        return Err(RedirectError::TooLong);
    }
    Ok(RedirectTarget(serialized))
}

/// Splits the raw authority into (lower-case host, kind, explicit port).
fn parse_authority(authority: &str) -> Result<(String, HostKind, Option<u16>), RedirectError> {
    if authority.contains('@') {
        return Err(RedirectError::Userinfo);
    }
    if authority.is_empty() || !authority.is_ascii() || authority.contains(['%', '[', ']']) {
        return Err(RedirectError::BadHost);
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(parse_port(port).ok_or(RedirectError::BadHost)?)),
        None => (authority, None),
    };
    let host = host.to_ascii_lowercase();
    let kind = classify_host(&host).map_err(|_| RedirectError::BadHost)?;
    Ok((host, kind, port))
}

/// Path rules shared by relative targets and absolute URLs.
///
/// Rejects non-ASCII, malformed percent escapes, percent-encoded `/`, `\`,
/// `.`, `%` (double encoding), space and control characters, and `.` / `..`
/// segments. Any of these can turn into a different path — or a
/// protocol-relative URL — after one more decoding or normalisation step.
fn check_path(path: &str) -> Result<(), RedirectError> {
    if !path.is_ascii() {
        return Err(RedirectError::NonAscii);
    }
    let mut bytes = path.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            continue;
        }
        let hi = bytes.next().and_then(hex_value);
        let lo = bytes.next().and_then(hex_value);
        let (Some(hi), Some(lo)) = (hi, lo) else {
            return Err(RedirectError::Unparseable);
        };
        let decoded = hi * 16 + lo;
        if matches!(decoded, b'/' | b'\\' | b'.' | b'%' | b' ' | 0x7f) || decoded < 0x20 {
            return Err(RedirectError::EncodedSeparator);
        }
    }
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(RedirectError::DotSegment);
    }
    Ok(())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits at the first `?` or `#` into (path, query-and-fragment).
fn split_path(s: &str) -> (&str, &str) {
    s.split_at(s.find(['?', '#']).unwrap_or(s.len()))
}

/// ASCII-case-insensitive `strip_prefix`.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Whether `s` starts with an RFC 3986 scheme (`ALPHA *(ALPHA / DIGIT / "+" /
/// "-" / ".") ":"`), i.e. a browser would treat it as an absolute URL.
fn has_scheme(s: &str) -> bool {
    let Some(end) = s.find([':', '/', '?', '#']) else {
        return false;
    };
    if s.as_bytes().get(end) != Some(&b':') {
        return false;
    }
    let mut chars = s[..end].chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn map_parse_error(e: url::ParseError) -> RedirectError {
    match e {
        url::ParseError::EmptyHost
        | url::ParseError::IdnaError
        | url::ParseError::InvalidPort
        | url::ParseError::InvalidIpv4Address
        | url::ParseError::InvalidIpv6Address
        | url::ParseError::InvalidDomainCharacter => RedirectError::BadHost,
        _ => RedirectError::Unparseable,
    }
}

#[cfg(test)]
mod tests;

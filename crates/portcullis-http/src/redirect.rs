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
use std::net::Ipv4Addr;
use std::str::FromStr;

use url::{Host, Url};

/// Longest `rd` (and longest serialized result) we accept. Redirect targets
/// end up in cookies/state and `Location` headers; anything longer is either
/// an attack or a bug, and a cap keeps those bounded.
const MAX_REDIRECT_LEN: usize = 2048;

/// RFC 1035 limits. The `url` crate does not enforce them (WHATWG sets
/// `VerifyDnsLength` to false), so we do, to keep "valid host" unambiguous.
const MAX_HOST_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

// ---------------------------------------------------------------------------
// Host grammar shared by whitelist entries and redirect targets
// ---------------------------------------------------------------------------

/// What kind of host a canonical host string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostKind {
    Dns,
    Ipv4,
}

/// Classifies an already lower-cased host.
///
/// Accepts only DNS names made of non-empty `[a-z0-9-]` labels (no leading or
/// trailing hyphen, RFC 1035 lengths, no trailing dot) and IPv4 addresses in
/// canonical dotted-quad form. A host whose last label starts with a digit is
/// treated as an IPv4 attempt, exactly like the WHATWG URL parser does for
/// "ends in a number" hosts, and must then be canonical: this is what stops
/// `0x7f.1`, `127.1`, `2130706433` and `0177.0.0.1` from being checked as one
/// host and visited as `127.0.0.1`.
fn classify_host(host: &str) -> Result<HostKind, &'static str> {
    if host.is_empty() {
        return Err("the host is empty");
    }
    if host.len() > MAX_HOST_LEN {
        return Err("the host is longer than 253 characters");
    }
    if host.ends_with('.') {
        return Err("the host has a trailing dot");
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err("the host may only contain the characters a-z, 0-9, '-' and '.'");
    }
    let mut last = "";
    for label in host.split('.') {
        if label.is_empty() {
            return Err("the host has an empty label");
        }
        if label.len() > MAX_LABEL_LEN {
            return Err("a host label is longer than 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a host label starts or ends with '-'");
        }
        last = label;
    }
    if last.starts_with(|c: char| c.is_ascii_digit()) {
        return match host.parse::<Ipv4Addr>() {
            Ok(ip) if ip.to_string() == host => Ok(HostKind::Ipv4),
            _ => Err("a numeric host must be a canonical dotted-quad IPv4 address"),
        };
    }
    Ok(HostKind::Dns)
}

/// Parses a port written in canonical decimal: 1-65535, no sign, no leading
/// zero, not empty. The URL parser would silently normalise `:08443` or `:`,
/// and anything it normalises is something we did not check verbatim.
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

// ---------------------------------------------------------------------------
// Whitelist
// ---------------------------------------------------------------------------

/// Which ports an entry admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PortRule {
    /// No port written: only the scheme's default port (80 / 443).
    Default,
    /// `:port`: exactly that port (also when it is the scheme default and the
    /// URL leaves it implicit).
    Exact(u16),
    /// `:*`: any port.
    Any,
}

/// One entry of `redirect.whitelist_domains`.
///
/// # Syntax
///
/// | entry               | admits                                                        |
/// |---------------------|---------------------------------------------------------------|
/// | `host`              | exactly `host`, on the scheme's default port only             |
/// | `.parent`           | every sub-domain of `parent` at any depth, default port only  |
/// | `host:port`         | exactly `host`, on `port` only                                 |
/// | `.parent:port`      | every sub-domain of `parent`, on `port` only                   |
/// | `host:*`            | exactly `host`, on any port                                    |
/// | `.parent:*`         | every sub-domain of `parent`, on any port                      |
///
/// * `.example.com` admits `a.example.com` and `a.b.example.com`, but **not**
///   the apex `example.com` (list `example.com` as well to include it) and
///   never `badexample.com`: matching is on whole labels, not on a string
///   suffix.
/// * "Default port" means the URL has no port or names the scheme's default
///   (80 for `http`, 443 for `https`). `a.example.com:443` therefore admits
///   `https://a.example.com/` but not `http://a.example.com/`.
/// * Hosts are case-insensitive and stored lower-case. They must be ASCII
///   (write IDNs in punycode, `xn--...`), made of `[a-z0-9-]` labels, or be a
///   canonical IPv4 address (`127.0.0.1:8080`); an IPv4 address has no
///   sub-domains, so `.127.0.0.1` is rejected.
/// * Rejected: empty entries, whitespace, schemes (`https://...`), paths,
///   queries, fragments, userinfo (`user@host`), wildcards such as
///   `*.example.com` (write `.example.com`), a lone `.`, trailing dots,
///   IPv6 literals, and ports outside 1-65535 or not in canonical decimal.
///
/// Single-label parents such as `.internal` are allowed because in-cluster
/// setups use them; choose them deliberately, `.com` would admit half the
/// internet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WhitelistEntry {
    /// The exact host, or the parent domain when `subdomains` is set.
    host: String,
    /// Written with a leading `.`: admit strict sub-domains of `host`.
    subdomains: bool,
    port: PortRule,
}

impl WhitelistEntry {
    /// `host` must already be canonical (see [`classify_host`]); the caller
    /// checks that once for all entries.
    fn admits(
        &self,
        kind: HostKind,
        scheme_default_port: u16,
        host: &str,
        port: Option<u16>,
    ) -> bool {
        let host_ok = if self.subdomains {
            // Whole-label match: "<at least one label>." + parent. Comparing a
            // bare string suffix is what once let `.example.com` admit
            // `badexample.com`. IP addresses never have sub-domains.
            kind == HostKind::Dns
                && host
                    .strip_suffix(self.host.as_str())
                    .and_then(|prefix| prefix.strip_suffix('.'))
                    .is_some_and(|labels| !labels.is_empty())
        } else {
            host == self.host
        };
        if !host_ok {
            return false;
        }
        let effective = port.unwrap_or(scheme_default_port);
        match self.port {
            PortRule::Default => effective == scheme_default_port,
            PortRule::Exact(p) => effective == p,
            PortRule::Any => true,
        }
    }
}

/// Why a `redirect.whitelist_domains` entry was refused. Every variant that
/// can carry the entry does, so the configuration error points at the line.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum WhitelistError {
    /// `""`: an empty entry would be ambiguous (admit nothing? everything?).
    #[error("redirect whitelist entry is empty")]
    Empty,
    /// Whitespace or control characters: almost certainly a copy/paste error,
    /// and we do not guess by trimming.
    #[error("redirect whitelist entry {entry:?} contains whitespace or control characters")]
    ControlOrWhitespace {
        /// The offending entry.
        entry: String,
    },
    /// Non-ASCII host: redirect targets must be ASCII, so such an entry could
    /// never match; write the punycode (`xn--...`) form.
    #[error(
        "redirect whitelist entry {entry:?} contains non-ASCII characters; write internationalised domains in punycode (xn--...)"
    )]
    NonAscii {
        /// The offending entry.
        entry: String,
    },
    /// `https://example.com`: entries name hosts, not URLs.
    #[error(
        "redirect whitelist entry {entry:?} contains a scheme; list only the host (and optionally :port), e.g. \"example.com\""
    )]
    Scheme {
        /// The offending entry.
        entry: String,
    },
    /// `example.com/path`, `?`, `#` or `\`: entries cannot restrict paths.
    #[error(
        "redirect whitelist entry {entry:?} contains a path, query, fragment or backslash; list only the host (and optionally :port)"
    )]
    Path {
        /// The offending entry.
        entry: String,
    },
    /// `user@example.com`: userinfo has no meaning here and is a classic
    /// confusion vector.
    #[error("redirect whitelist entry {entry:?} contains userinfo ('@'); list only the host")]
    Userinfo {
        /// The offending entry.
        entry: String,
    },
    /// `*.example.com` and friends: the sub-domain syntax is a leading dot.
    #[error(
        "redirect whitelist entry {entry:?} uses a '*' wildcard in the host; write {suggestion:?} to admit every sub-domain (':*' is only valid as the port)"
    )]
    Wildcard {
        /// The offending entry.
        entry: String,
        /// What the user most likely meant.
        suggestion: String,
    },
    /// `.`: a sub-domain entry for the DNS root would admit everything.
    #[error(
        "redirect whitelist entry \".\" would admit every host; name a parent domain, e.g. \".example.com\""
    )]
    LoneDot,
    /// `example.com.`: fully-qualified spelling is not accepted in targets
    /// either, so this entry could only cause confusion.
    #[error("redirect whitelist entry {entry:?} ends with a dot; remove the trailing dot")]
    TrailingDot {
        /// The offending entry.
        entry: String,
    },
    /// `[::1]`: IPv6 literals are not supported as redirect targets.
    #[error(
        "redirect whitelist entry {entry:?} is an IPv6 literal; IPv6 redirect targets are not supported"
    )]
    Ipv6 {
        /// The offending entry.
        entry: String,
    },
    /// Port that is not `*` or canonical decimal 1-65535.
    #[error(
        "redirect whitelist entry {entry:?} has an invalid port; use 1-65535 without leading zeros, or '*' for any port"
    )]
    BadPort {
        /// The offending entry.
        entry: String,
    },
    /// Host that is not a valid DNS name or canonical IPv4 address.
    #[error("redirect whitelist entry {entry:?} has an invalid host: {reason}")]
    BadHost {
        /// The offending entry.
        entry: String,
        /// Why the host was refused.
        reason: &'static str,
    },
}

impl FromStr for WhitelistEntry {
    type Err = WhitelistError;

    /// Parses one configuration entry; see [`WhitelistEntry`] for the syntax.
    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let owned = || entry.to_owned();
        if entry.is_empty() {
            return Err(WhitelistError::Empty);
        }
        if entry.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(WhitelistError::ControlOrWhitespace { entry: owned() });
        }
        if !entry.is_ascii() {
            return Err(WhitelistError::NonAscii { entry: owned() });
        }
        let lower = entry.to_ascii_lowercase();
        if lower.contains("://") || lower.starts_with("http:") || lower.starts_with("https:") {
            return Err(WhitelistError::Scheme { entry: owned() });
        }
        if entry.contains(['/', '\\', '?', '#']) {
            return Err(WhitelistError::Path { entry: owned() });
        }
        if entry.contains('@') {
            return Err(WhitelistError::Userinfo { entry: owned() });
        }
        if entry.contains(['[', ']']) {
            return Err(WhitelistError::Ipv6 { entry: owned() });
        }

        let (host, port) = match lower.rsplit_once(':') {
            Some((host, port)) => {
                if host.contains(':') {
                    // A bare IPv6 address such as `::1` or `fe80::1:8080`.
                    return Err(WhitelistError::Ipv6 { entry: owned() });
                }
                let rule = if port == "*" {
                    PortRule::Any
                } else {
                    match parse_port(port) {
                        Some(p) => PortRule::Exact(p),
                        None => return Err(WhitelistError::BadPort { entry: owned() }),
                    }
                };
                (host, rule)
            }
            None => (lower.as_str(), PortRule::Default),
        };

        if host.contains('*') {
            let suggestion = match host.trim_start_matches('*').trim_start_matches('.') {
                "" => ".example.com".to_owned(),
                rest => format!(".{}", rest.replace('*', "")),
            };
            return Err(WhitelistError::Wildcard {
                entry: owned(),
                suggestion,
            });
        }
        if host == "." {
            return Err(WhitelistError::LoneDot);
        }
        if host.ends_with('.') {
            return Err(WhitelistError::TrailingDot { entry: owned() });
        }
        let (subdomains, name) = match host.strip_prefix('.') {
            Some(parent) => (true, parent),
            None => (false, host),
        };
        match classify_host(name) {
            Ok(HostKind::Dns) => {}
            Ok(HostKind::Ipv4) if !subdomains => {}
            Ok(HostKind::Ipv4) => {
                return Err(WhitelistError::BadHost {
                    entry: owned(),
                    reason: "an IPv4 address has no sub-domains; drop the leading dot",
                });
            }
            Err(reason) => {
                return Err(WhitelistError::BadHost {
                    entry: owned(),
                    reason,
                });
            }
        }
        Ok(Self {
            host: name.to_owned(),
            subdomains,
            port,
        })
    }
}

impl fmt::Display for WhitelistEntry {
    /// Canonical form, which parses back to an equal entry (lower-case host,
    /// leading dot for sub-domain entries, `:port` or `:*` when present).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subdomains {
            f.write_str(".")?;
        }
        f.write_str(&self.host)?;
        match self.port {
            PortRule::Default => Ok(()),
            PortRule::Exact(p) => write!(f, ":{p}"),
            PortRule::Any => f.write_str(":*"),
        }
    }
}

/// Configuration entries are plain strings; (de)serialising through
/// [`FromStr`] / [`Display`](fmt::Display) keeps exactly one parser.
impl serde::Serialize for WhitelistEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for WhitelistEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// The configured `redirect.whitelist_domains`: the hosts an absolute `rd`
/// may point to. An empty whitelist admits no absolute target (relative
/// targets are always allowed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Whitelist {
    entries: Vec<WhitelistEntry>,
}

impl Whitelist {
    /// Builds a whitelist from already-parsed entries.
    pub fn new(entries: Vec<WhitelistEntry>) -> Self {
        Self { entries }
    }

    /// Parses configuration entries, reporting **all** bad entries at once so
    /// an operator can fix the configuration in one go.
    pub fn parse<I: IntoIterator<Item = S>, S: AsRef<str>>(
        entries: I,
    ) -> Result<Self, Vec<WhitelistError>> {
        let mut ok = Vec::new();
        let mut errors = Vec::new();
        for entry in entries {
            match entry.as_ref().parse::<WhitelistEntry>() {
                Ok(e) => ok.push(e),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Self::new(ok))
        } else {
            Err(errors)
        }
    }

    /// Whether some entry admits `host` with the explicit `port` (if any) for
    /// a scheme whose default port is `scheme_default_port`.
    ///
    /// `host` must already be canonical lower-case ASCII (as produced by
    /// [`validate_redirect`]); anything else — upper case, trailing dot,
    /// empty labels, non-canonical IPv4, IPv6 — is never admitted, so a
    /// careless caller fails closed. `Some(0)` is never admitted either.
    pub fn admits(&self, scheme_default_port: u16, host: &str, port: Option<u16>) -> bool {
        if port == Some(0) {
            return false;
        }
        let Ok(kind) = classify_host(host) else {
            return false;
        };
        self.entries
            .iter()
            .any(|e| e.admits(kind, scheme_default_port, host, port))
    }
}

impl serde::Serialize for Whitelist {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.entries)
    }
}

impl<'de> serde::Deserialize<'de> for Whitelist {
    /// Deserialises a list of strings, reporting every bad entry in one error.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Vec::<String>::deserialize(deserializer)?;
        Self::parse(raw).map_err(|errors| {
            let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
            serde::de::Error::custom(messages.join("; "))
        })
    }
}

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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde::de::IntoDeserializer;

    use RedirectError::*;

    fn wl(entries: &[&str]) -> Whitelist {
        match Whitelist::parse(entries) {
            Ok(w) => w,
            Err(e) => panic!("test whitelist {entries:?} must parse: {e:?}"),
        }
    }

    /// Whitelist used by the main table.
    const MAIN: &[&str] = &[
        ".example.com",
        "auth.example.com",
        "localhost:*",
        ".example.test:*",
        "127.0.0.1:8080",
        "static.example.org:8443",
        "example.net",
    ];

    fn check_with(whitelist: &Whitelist, rd: &str, expected: Result<&str, RedirectError>) {
        let got = validate_redirect(rd, whitelist);
        let got = got.as_ref().map(RedirectTarget::as_str).map_err(|e| *e);
        assert_eq!(got, expected, "rd = {rd:?}");
    }

    fn check(rd: &str, expected: Result<&str, RedirectError>) {
        check_with(&wl(MAIN), rd, expected);
    }

    type Row = (&'static str, Result<&'static str, RedirectError>);

    #[rustfmt::skip]
    const TABLE: &[Row] = &[
        // --- legitimate relative targets -------------------------------
        ("/", Ok("/")),                                                        // root of the auth host
        ("/dashboard/#/workloads?namespace=default",
            Ok("/dashboard/#/workloads?namespace=default")),                   // SPA route lives in the fragment
        ("/dashboard/?namespace=kube-system", Ok("/dashboard/?namespace=kube-system")), // plain query
        ("/api/v1/namespaces/default/pods", Ok("/api/v1/namespaces/default/pods")),     // deep path
        ("/?next=%2Ffoo", Ok("/?next=%2Ffoo")),                                // encodings allowed in query
        ("/search?q=a%20b#frag%2e", Ok("/search?q=a%20b#frag%2e")),            // ... and in the fragment
        ("/a/b/c.d/..e/...", Ok("/a/b/c.d/..e/...")),                          // dots inside names are not dot segments
        ("/foo%3Fbar%23baz", Ok("/foo%3Fbar%23baz")),                          // encoded ? and # in path are harmless
        ("/#//evil.com", Ok("/#//evil.com")),                                  // `//` only in the fragment
        ("/?rd=//evil.com", Ok("/?rd=//evil.com")),                            // `//` only in the query
        ("/caf%C3%A9", Ok("/caf%C3%A9")),                                      // percent-encoded UTF-8 is fine
        ("/a//b", Ok("/a//b")),                                                // empty segment mid-path stays on host
        ("/javascript:alert(1)", Ok("/javascript:alert(1)")),                  // a path, not a scheme
        // --- length and empty ------------------------------------------
        ("", Err(Empty)),                                                      // nothing to redirect to
        // --- protocol-relative and backslashes --------------------------
        ("//evil.com", Err(ProtocolRelative)),                                 // scheme-relative URL
        ("///evil.com", Err(ProtocolRelative)),                                // browsers collapse extra slashes
        ("/\\evil.com", Err(Backslash)),                                       // browsers read `\` as `/`
        ("\\\\evil.com", Err(Backslash)),                                      // `\\evil.com`
        ("\\/evil.com", Err(Backslash)),                                       // `\/evil.com`
        ("/./\\evil.com", Err(Backslash)),                                     // dot-segment + backslash combo
        ("\\t/evil.com", Err(Backslash)),                                      // literal backslash-t, not a tab
        // --- control characters and whitespace --------------------------
        ("\t/evil.com", Err(ControlOrWhitespace)),                             // leading tab
        ("/\t/evil.com", Err(ControlOrWhitespace)),                            // tab stripped by browsers -> `//`
        ("/\n/evil.com", Err(ControlOrWhitespace)),                            // newline stripped by browsers
        ("/\r\nSet-Cookie:x", Err(ControlOrWhitespace)),                       // header splitting
        ("/ /evil.com", Err(ControlOrWhitespace)),                             // space
        ("/\u{a0}/evil.com", Err(ControlOrWhitespace)),                        // NBSP (Unicode whitespace)
        ("/\u{3000}/evil.com", Err(ControlOrWhitespace)),                      // ideographic space
        ("/\u{7f}evil", Err(ControlOrWhitespace)),                             // DEL
        ("/\u{0}", Err(ControlOrWhitespace)),                                  // NUL
        ("/x\u{85}", Err(ControlOrWhitespace)),                                // NEL (C1 control)
        ("https://a.example.com/\u{2028}", Err(ControlOrWhitespace)),          // line separator
        ("https:// a.example.com", Err(ControlOrWhitespace)),                  // space in authority
        ("https://a.example.com\t.evil.com/", Err(ControlOrWhitespace)),       // tab inside host
        // --- encoded separators in the path -----------------------------
        ("/%09/evil.com", Err(EncodedSeparator)),                              // encoded tab
        ("/%2f%2fevil.com", Err(EncodedSeparator)),                            // encoded `//`
        ("/%2F%2Fevil.com", Err(EncodedSeparator)),                            // upper-case hex
        ("/%5cevil.com", Err(EncodedSeparator)),                               // encoded backslash
        ("/%5C%5Cevil.com", Err(EncodedSeparator)),                            // upper-case encoded backslashes
        ("/%2e%2e/evil", Err(EncodedSeparator)),                               // encoded `..`
        ("/%2E/evil", Err(EncodedSeparator)),                                  // encoded `.`
        ("/%00evil", Err(EncodedSeparator)),                                   // encoded NUL
        ("/%0d%0aSet-Cookie:x", Err(EncodedSeparator)),                        // encoded CRLF
        ("/%20/evil.com", Err(EncodedSeparator)),                              // encoded space
        ("/%7f", Err(EncodedSeparator)),                                       // encoded DEL
        ("/%252f%252fevil.com", Err(EncodedSeparator)),                        // double encoding
        ("/%zz", Err(Unparseable)),                                            // malformed escape
        ("/%", Err(Unparseable)),                                              // truncated escape
        ("/%2", Err(Unparseable)),                                             // truncated escape
        // --- dot segments -------------------------------------------------
        ("/./evil", Err(DotSegment)),                                          // `.` segment
        ("/../evil", Err(DotSegment)),                                         // `..` segment
        ("/a/..", Err(DotSegment)),                                            // trailing `..`
        ("/a/./b", Err(DotSegment)),                                           // `.` mid-path
        // --- non-ASCII in relative targets ------------------------------
        ("/é", Err(NonAscii)),                                                 // raw UTF-8 in path
        ("/?q=é", Err(NonAscii)),                                              // raw UTF-8 in relative query
        ("/\u{202e}moc.live", Err(NonAscii)),                                  // RTL override (format char)
        // --- neither path nor URL ---------------------------------------
        ("evil.com", Err(NotAbsolutePath)),                                    // bare host
        ("dashboard", Err(NotAbsolutePath)),                                   // relative path
        ("./dashboard", Err(NotAbsolutePath)),                                 // dot-relative
        ("../evil", Err(NotAbsolutePath)),                                     // parent-relative
        ("?rd=/x", Err(NotAbsolutePath)),                                      // query-only reference
        ("#x", Err(NotAbsolutePath)),                                          // fragment-only reference
        // --- schemes -------------------------------------------------------
        ("javascript:alert(1)", Err(UnsupportedScheme)),                       // XSS
        ("JaVaScRiPt:alert(1)", Err(UnsupportedScheme)),                       // case games
        ("data:text/html,<script>alert(1)</script>", Err(UnsupportedScheme)),  // data URL
        ("ftp://a.example.com/", Err(UnsupportedScheme)),                      // wrong scheme, good host
        ("file:///etc/passwd", Err(UnsupportedScheme)),                        // local file
        ("ws://a.example.com/", Err(UnsupportedScheme)),                       // websocket
        ("httpx://a.example.com/", Err(UnsupportedScheme)),                    // look-alike scheme
        ("localhost:3000/x", Err(UnsupportedScheme)),                          // `localhost:` parses as a scheme
        ("https:evil.com", Err(Unparseable)),                                  // no `//`
        ("https:/evil.com", Err(Unparseable)),                                 // one slash
        ("http:\\\\evil.com", Err(Backslash)),                                 // `http:\\evil.com`
        ("https:/\\evil.com", Err(Backslash)),                                 // `https:/\evil.com`
        ("https:///evil.com", Err(BadHost)),                                   // empty authority
        ("https://", Err(BadHost)),                                            // nothing after scheme
        ("https://?x", Err(BadHost)),                                          // empty authority before query
        // --- legitimate absolute targets --------------------------------
        ("https://dashboard.c1.example.com/", Ok("https://dashboard.c1.example.com/")), // sub-domain
        ("https://dashboard.c1.example.com", Ok("https://dashboard.c1.example.com/")),  // path added by serializer
        ("HTTPS://DASHBOARD.C1.EXAMPLE.COM/", Ok("https://dashboard.c1.example.com/")), // case-folded
        ("https://dashboard.c1.example.com/#/workloads?namespace=default",
            Ok("https://dashboard.c1.example.com/#/workloads?namespace=default")),     // SPA fragment
        ("https://a.example.com:443/x", Ok("https://a.example.com/x")),        // explicit default port
        ("http://a.example.com/", Ok("http://a.example.com/")),                // http, default port 80
        ("http://a.example.com:80/", Ok("http://a.example.com/")),             // explicit 80
        ("https://xn--exmple-cua.example.com/", Ok("https://xn--exmple-cua.example.com/")), // punycode label
        ("https://auth.example.com/oauth2/sign_out", Ok("https://auth.example.com/oauth2/sign_out")), // exact entry
        ("http://localhost:3000/", Ok("http://localhost:3000/")),              // localhost:* any port
        ("https://localhost/", Ok("https://localhost/")),                      // localhost:* default port
        ("http://dashboard.c1.example.test:8080/", Ok("http://dashboard.c1.example.test:8080/")), // .example.test:*
        ("http://127.0.0.1:8080/", Ok("http://127.0.0.1:8080/")),              // IPv4 exact with port
        ("https://static.example.org:8443/app", Ok("https://static.example.org:8443/app")), // host:port
        ("https://example.net/", Ok("https://example.net/")),                  // exact apex entry
        ("https://a.example.com/?q=é", Ok("https://a.example.com/?q=%C3%A9")), // query re-encoded by url
        ("https://a.example.com/?next=//evil.com", Ok("https://a.example.com/?next=//evil.com")), // `//` in query only
        ("https://a.example.com?x=1", Ok("https://a.example.com/?x=1")),       // authority ends at `?`
        ("https://a.example.com#x", Ok("https://a.example.com/#x")),           // authority ends at `#`
        ("https://a-b.c1.example.com/p%3F", Ok("https://a-b.c1.example.com/p%3F")), // hyphen, encoded `?`
        // --- host matching attacks ----------------------------------------
        ("https://example.com/", Err(NotWhitelisted)),                         // apex not covered by `.example.com`
        ("https://badexample.com/", Err(NotWhitelisted)),                      // string-suffix trick
        ("https://evilexample.com/", Err(NotWhitelisted)),                     // string-suffix trick
        ("https://example.com.evil.com/", Err(NotWhitelisted)),                // whitelisted name as prefix
        ("https://evil.com/.example.com", Err(NotWhitelisted)),                // whitelisted name in path
        ("https://evil.com?.example.com", Err(NotWhitelisted)),                // ... in query
        ("https://evil.com#.example.com", Err(NotWhitelisted)),                // ... in fragment
        ("https://example.net.evil.com/", Err(NotWhitelisted)),                // exact entry as prefix
        ("https://xn--80ak6aa92e.com/", Err(NotWhitelisted)),                  // punycode, not whitelisted
        ("https://auth.example.com.evil.com/", Err(NotWhitelisted)),           // exact entry as prefix
        // --- userinfo -------------------------------------------------------
        ("https://dashboard.example.com@evil.com/", Err(Userinfo)),            // whitelisted name as userinfo
        ("https://a@evil.com", Err(Userinfo)),                                 // user only
        ("https://a:b@a.example.com/", Err(Userinfo)),                         // even to a good host
        ("https://a.example.com:8443@evil.com/", Err(Userinfo)),               // port-looking userinfo
        ("https://evil.com\\@a.example.com/", Err(Backslash)),                 // backslash/userinfo confusion
        // --- host encoding / normalisation tricks ------------------------
        ("https://evil.com%40a.example.com/", Err(BadHost)),                   // percent-encoded `@`
        ("https://a.example.com%2eevil.com/", Err(BadHost)),                   // percent-encoded dot
        ("https://a.example.com./", Err(BadHost)),                             // trailing dot
        ("https://a.example.com../", Err(BadHost)),                            // two trailing dots
        ("https://sub.example.com.:443/", Err(BadHost)),                       // trailing dot before port
        ("https://exämple.example.com/", Err(BadHost)),                        // raw IDN
        ("https://\u{ff45}xample.example.com/", Err(BadHost)),                 // full-width letter
        ("https://a_b.example.com/", Err(BadHost)),                            // underscore
        ("https://-a.example.com/", Err(BadHost)),                             // leading hyphen
        ("https://a..example.com/", Err(BadHost)),                             // empty label
        ("https://.example.com/", Err(BadHost)),                               // leading dot
        ("https://xn--a.example.com/", Err(BadHost)),                          // invalid punycode (IDNA error)
        ("https://0x7f.1/", Err(BadHost)),                                     // hex IPv4 shorthand
        ("https://127.1/", Err(BadHost)),                                      // short IPv4
        ("https://2130706433/", Err(BadHost)),                                 // integer IPv4
        ("https://0177.0.0.1/", Err(BadHost)),                                 // octal IPv4
        ("https://127.0.0.1.example.com.0/", Err(BadHost)),                    // numeric last label
        ("https://[::1]/", Err(BadHost)),                                      // IPv6 literal
        ("https://[::ffff:127.0.0.1]/", Err(BadHost)),                         // IPv4-mapped IPv6
        // --- ports ------------------------------------------------------------
        ("https://127.0.0.1/", Err(NotWhitelisted)),                           // entry is :8080 only
        ("http://127.0.0.1:8081/", Err(NotWhitelisted)),                       // wrong port
        ("https://a.example.com:8443/", Err(NotWhitelisted)),                  // port-less entry, other port
        ("http://a.example.com:443/", Err(NotWhitelisted)),                    // 443 is not http's default
        ("https://static.example.org/", Err(NotWhitelisted)),                  // entry is :8443 only
        ("https://a.example.com:/", Err(BadHost)),                             // empty port
        ("https://a.example.com:0443/", Err(BadHost)),                         // leading zero
        ("https://a.example.com:99999/", Err(BadHost)),                        // out of range
        ("https://a.example.com:0/", Err(BadHost)),                            // port zero
        ("https://a.example.com:+443/", Err(BadHost)),                         // signed port
        ("http://evil.com:80:80/", Err(BadHost)),                              // two ports
        // --- path rules inside absolute URLs -----------------------------
        ("https://a.example.com/%2e%2e/x", Err(EncodedSeparator)),             // encoded dot segment
        ("https://a.example.com/%2f%2fevil.com", Err(EncodedSeparator)),       // encoded `//`
        ("https://a.example.com/../x", Err(DotSegment)),                       // dot segment
        ("https://a.example.com/é", Err(NonAscii)),                            // raw UTF-8 path
        ("https://a.example.com/%zz", Err(Unparseable)),                       // malformed escape
    ];

    #[test]
    fn table_main_whitelist() {
        assert!(TABLE.len() >= 70, "table has {} rows", TABLE.len());
        for (rd, expected) in TABLE {
            check(rd, *expected);
        }
    }

    #[test]
    fn too_long() {
        let ok = format!("/{}", "a".repeat(MAX_REDIRECT_LEN - 1));
        check(&ok, Ok(ok.as_str())); // exactly at the limit
        let long = format!("/{}", "a".repeat(MAX_REDIRECT_LEN));
        check(&long, Err(TooLong)); // one byte over
        let long_url = format!("https://a.example.com/{}", "a".repeat(MAX_REDIRECT_LEN));
        check(&long_url, Err(TooLong));
        // Within the input limit, but the serialized query grows past it.
        let grows = format!("https://a.example.com/?{}", "é".repeat(1000));
        check(&grows, Err(TooLong));
    }

    #[test]
    fn any_port_parent() {
        let w = wl(&[".example.com:*"]);
        #[rustfmt::skip]
        let rows: &[Row] = &[
            ("https://dashboard.c1.example.com:8443/x", Ok("https://dashboard.c1.example.com:8443/x")), // any port
            ("https://dashboard.c1.example.com/", Ok("https://dashboard.c1.example.com/")),           // default port too
            ("http://dashboard.c1.example.com:8080/", Ok("http://dashboard.c1.example.com:8080/")),   // http, any port
            ("https://example.com:8443/", Err(NotWhitelisted)),                                        // apex still excluded
            ("https://localhost/", Err(NotWhitelisted)),                                               // unrelated host
            ("/", Ok("/")),                                                                            // relative always fine
        ];
        for (rd, expected) in rows {
            check_with(&w, rd, *expected);
        }
    }

    #[test]
    fn parent_alone_excludes_apex_and_apex_entry_includes_it() {
        let only_parent = wl(&[".example.com"]);
        check_with(&only_parent, "https://example.com/", Err(NotWhitelisted));
        check_with(
            &only_parent,
            "https://a.b.example.com/",
            Ok("https://a.b.example.com/"),
        );
        let both = wl(&["example.com", ".example.com"]);
        check_with(&both, "https://example.com/", Ok("https://example.com/"));
        check_with(
            &both,
            "https://a.example.com/",
            Ok("https://a.example.com/"),
        );
        check_with(&both, "https://badexample.com/", Err(NotWhitelisted));
    }

    #[test]
    fn empty_whitelist_admits_only_relative() {
        let empty = Whitelist::default();
        check_with(&empty, "/dashboard", Ok("/dashboard"));
        check_with(&empty, "https://a.example.com/", Err(NotWhitelisted));
        check_with(&empty, "http://localhost/", Err(NotWhitelisted));
    }

    #[test]
    fn admits_directly() {
        let w = wl(&[
            ".example.com",
            "exact.example.org:8443",
            "any.example.org:*",
            "10.0.0.1",
        ]);
        assert!(w.admits(443, "a.example.com", None));
        assert!(w.admits(443, "a.b.example.com", Some(443)));
        assert!(!w.admits(443, "a.example.com", Some(8443)));
        assert!(!w.admits(80, "a.example.com", Some(443)));
        assert!(!w.admits(443, "example.com", None));
        assert!(!w.admits(443, "badexample.com", None));
        assert!(!w.admits(443, ".example.com", None)); // empty first label
        assert!(!w.admits(443, "a..example.com", None)); // empty label
        assert!(!w.admits(443, "A.EXAMPLE.COM", None)); // not canonical: fail closed
        assert!(!w.admits(443, "a.example.com.", None)); // trailing dot
        assert!(!w.admits(443, "a.example.com", Some(0)));
        assert!(w.admits(443, "exact.example.org", Some(8443)));
        assert!(!w.admits(443, "exact.example.org", None));
        assert!(w.admits(80, "any.example.org", Some(1)));
        assert!(w.admits(443, "10.0.0.1", None));
        assert!(!w.admits(443, "10.0.0.01", None));
        assert!(!w.admits(443, "1.10.0.0.1", None));
    }

    #[test]
    fn entry_roundtrip_display() {
        for (input, canonical) in [
            ("Example.COM", "example.com"),
            (".Example.com", ".example.com"),
            (".example.com:*", ".example.com:*"),
            ("host:8080", "host:8080"),
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("xn--exmple-cua.example.com", "xn--exmple-cua.example.com"),
            (".internal", ".internal"),
            ("localhost:*", "localhost:*"),
        ] {
            let entry: WhitelistEntry = match input.parse() {
                Ok(e) => e,
                Err(e) => panic!("{input:?} must parse: {e}"),
            };
            assert_eq!(entry.to_string(), canonical);
            assert_eq!(canonical.parse::<WhitelistEntry>(), Ok(entry));
        }
    }

    #[test]
    fn entry_errors() {
        fn err(entry: &str) -> WhitelistError {
            match entry.parse::<WhitelistEntry>() {
                Ok(e) => panic!("{entry:?} must be rejected, got {e}"),
                Err(e) => e,
            }
        }
        let s = |x: &str| x.to_owned();
        assert_eq!(err(""), WhitelistError::Empty);
        assert_eq!(
            err(" example.com"),
            WhitelistError::ControlOrWhitespace {
                entry: s(" example.com")
            }
        );
        assert_eq!(
            err("example.com\n"),
            WhitelistError::ControlOrWhitespace {
                entry: s("example.com\n")
            }
        );
        assert_eq!(
            err("exämple.com"),
            WhitelistError::NonAscii {
                entry: s("exämple.com")
            }
        );
        assert_eq!(
            err("https://example.com"),
            WhitelistError::Scheme {
                entry: s("https://example.com")
            }
        );
        assert_eq!(
            err("HTTP:example.com"),
            WhitelistError::Scheme {
                entry: s("HTTP:example.com")
            }
        );
        assert_eq!(
            err("example.com/path"),
            WhitelistError::Path {
                entry: s("example.com/path")
            }
        );
        assert_eq!(
            err("example.com?x"),
            WhitelistError::Path {
                entry: s("example.com?x")
            }
        );
        assert_eq!(
            err("example.com\\x"),
            WhitelistError::Path {
                entry: s("example.com\\x")
            }
        );
        assert_eq!(
            err("user@example.com"),
            WhitelistError::Userinfo {
                entry: s("user@example.com")
            }
        );
        assert_eq!(
            err("*.example.com"),
            WhitelistError::Wildcard {
                entry: s("*.example.com"),
                suggestion: s(".example.com")
            }
        );
        assert_eq!(
            err("*.example.com:8443"),
            WhitelistError::Wildcard {
                entry: s("*.example.com:8443"),
                suggestion: s(".example.com")
            }
        );
        assert!(matches!(err("*"), WhitelistError::Wildcard { .. }));
        assert!(matches!(
            err("a*.example.com"),
            WhitelistError::Wildcard { .. }
        ));
        assert_eq!(err("."), WhitelistError::LoneDot);
        assert_eq!(err(".:*"), WhitelistError::LoneDot);
        assert_eq!(
            err("example.com."),
            WhitelistError::TrailingDot {
                entry: s("example.com.")
            }
        );
        assert_eq!(
            err(".example.com.:443"),
            WhitelistError::TrailingDot {
                entry: s(".example.com.:443")
            }
        );
        assert_eq!(
            err("[::1]:443"),
            WhitelistError::Ipv6 {
                entry: s("[::1]:443")
            }
        );
        assert_eq!(err("::1"), WhitelistError::Ipv6 { entry: s("::1") });
        for bad_port in [
            "example.com:",
            "example.com:0",
            "example.com:08080",
            "example.com:65536",
            "example.com:abc",
            "example.com:-1",
        ] {
            assert_eq!(
                err(bad_port),
                WhitelistError::BadPort { entry: s(bad_port) },
                "{bad_port}"
            );
        }
        for bad_host in [
            "..example.com",
            "a..b",
            "-a.example.com",
            "a-.example.com",
            "a_b.example.com",
            "127.1",
            "0x7f.1",
            "example.123",
            ".127.0.0.1",
            ":8080",
            "ex%41mple.com",
        ] {
            assert!(
                matches!(err(bad_host), WhitelistError::BadHost { .. }),
                "{bad_host}"
            );
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(matches!(err(&long_label), WhitelistError::BadHost { .. }));
        // The message names the entry and the fix.
        let msg = err("*.example.com").to_string();
        assert!(
            msg.contains("*.example.com") && msg.contains("\".example.com\""),
            "{msg}"
        );
    }

    #[test]
    fn whitelist_parse_reports_all_errors() {
        let result = Whitelist::parse([
            "good.example.com",
            "*.bad.com",
            "https://x.com",
            ".ok.com:*",
            "",
        ]);
        let errors = match result {
            Ok(w) => panic!("must fail, got {w:?}"),
            Err(e) => e,
        };
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(matches!(errors[0], WhitelistError::Wildcard { .. }));
        assert!(matches!(errors[1], WhitelistError::Scheme { .. }));
        assert_eq!(errors[2], WhitelistError::Empty);

        let ok = wl(&["Good.Example.com", ".ok.com:*"]);
        assert!(ok.admits(443, "good.example.com", None));
        assert!(ok.admits(80, "a.ok.com", Some(8080)));
        assert_eq!(Whitelist::new(Vec::new()), Whitelist::default());
    }

    #[test]
    fn serde_roundtrip() {
        type E = serde::de::value::Error;
        let entry =
            WhitelistEntry::deserialize(IntoDeserializer::<E>::into_deserializer(".Example.com:*"));
        assert_eq!(
            entry.map(|e| e.to_string()),
            Ok(".example.com:*".to_owned())
        );
        let bad =
            WhitelistEntry::deserialize(IntoDeserializer::<E>::into_deserializer("*.example.com"));
        assert!(bad.is_err());
        let list = Whitelist::deserialize(IntoDeserializer::<E>::into_deserializer(vec![
            "a.com", ".b.com",
        ]));
        assert_eq!(list, Ok(wl(&["a.com", ".b.com"])));
        let bad_list = Whitelist::deserialize(IntoDeserializer::<E>::into_deserializer(vec![
            "*.a.com", "b.com/x",
        ]));
        let msg = match bad_list {
            Ok(w) => panic!("must fail, got {w:?}"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains("*.a.com") && msg.contains("b.com/x"), "{msg}");
    }

    #[test]
    fn target_accessors() {
        let t = match validate_redirect("/x", &Whitelist::default()) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(t.as_str(), "/x");
        assert_eq!(t.as_ref(), "/x");
        assert_eq!(t.to_string(), "/x");
        assert_eq!(t.into_string(), "/x".to_owned());
    }

    // --- properties ---------------------------------------------------------

    const PROP_WL: &[&str] = &[".example.com", "auth.example.com", "localhost:*"];

    /// Strings glued together from the fragments attackers like, so that the
    /// properties see many near-miss and accepted inputs, not just noise.
    fn tricky() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "https://",
            "http://",
            "HTTPS://",
            "javascript:",
            "/",
            "//",
            "\\",
            ".",
            "..",
            "%2f",
            "%2e",
            "%5c",
            "%09",
            "%25",
            "%",
            "%41",
            "@",
            ":",
            "8443",
            "443",
            "80",
            "0",
            "?",
            "#",
            "example.com",
            ".example.com",
            "a.example.com",
            "auth.example.com",
            "evil.com",
            "localhost",
            "0x7f",
            "127.0.0.1",
            "[::1]",
            "é",
            "\t",
            " ",
            "\u{3000}",
            "xn--exmple-cua",
            "a",
            "-",
            "*",
            "A",
            ";",
            "&",
            "=",
        ]);
        prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
    }

    /// Mostly-valid absolute URLs and paths, so accepted outputs are common.
    fn plausible() -> impl Strategy<Value = String> {
        let scheme = prop::sample::select(vec!["https://", "http://", "HtTpS://"]);
        let suffix = prop::sample::select(vec![
            ".example.com",
            "example.com",
            ".example.com.evil.com",
            "",
            ".auth.example.com",
        ]);
        let label =
            prop::sample::select(vec!["a", "auth", "localhost", "x-y", "xn--exmple-cua", "A"]);
        let port = prop::option::of(prop::sample::select(vec!["80", "443", "8080", "0", "08"]));
        let path = "(/[a-zA-Z0-9%._~:-]{0,6}){0,3}";
        let tail = "([?#][a-zA-Z0-9%/?#=&.é]{0,8})?";
        let absolute = (scheme, label, suffix, port, path, tail).prop_map(|(s, l, x, p, pa, t)| {
            let port = p.map(|p| format!(":{p}")).unwrap_or_default();
            format!("{s}{l}{x}{port}{pa}{t}")
        });
        let relative = (
            "(/[a-zA-Z0-9%._~:\\\\-]{0,6}){1,3}",
            "([?#][a-zA-Z0-9%/?#=&.]{0,8})?",
        )
            .prop_map(|(p, t)| format!("{p}{t}"));
        prop_oneof![absolute, relative]
    }

    fn any_input() -> impl Strategy<Value = String> {
        // Weighted towards the structured generators so that every property
        // sees a healthy share of accepted targets.
        prop_oneof![
            1 => any::<String>(),
            1 => "\\PC{0,40}",
            2 => tricky(),
            4 => plausible(),
        ]
    }

    fn default_port(scheme: &str) -> u16 {
        if scheme == "https" { 443 } else { 80 }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// (a) Never panics, whatever the input.
        #[test]
        fn never_panics(rd in any_input()) {
            let _ = validate_redirect(&rd, &wl(PROP_WL));
        }

        /// (b) Accepted absolute URLs re-parse to a whitelisted host with no
        /// userinfo.
        #[test]
        fn absolute_ok_is_whitelisted(rd in any_input()) {
            let w = wl(PROP_WL);
            let Ok(t) = validate_redirect(&rd, &w) else { return Ok(()) };
            if !t.as_str().starts_with('/') {
                let url = Url::parse(t.as_str());
                prop_assert!(url.is_ok(), "{t:?} must re-parse");
                let url = url.map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(url.scheme() == "http" || url.scheme() == "https");
                prop_assert_eq!(url.username(), "");
                prop_assert_eq!(url.password(), None);
                let host = url.host_str().unwrap_or_default();
                prop_assert!(w.admits(default_port(url.scheme()), host, url.port()), "{t:?}");
            }
        }

        /// (c) Accepted relative targets start with exactly one `/`, and the
        /// second byte is not `\` either.
        #[test]
        fn relative_ok_is_single_slash(rd in any_input()) {
            if let Ok(t) = validate_redirect(&rd, &wl(PROP_WL)) {
                let s = t.as_str();
                prop_assert!(s.is_ascii() && !s.bytes().any(|b| b.is_ascii_control() || b == b' '));
                if s.starts_with('/') {
                    prop_assert_eq!(s, rd.as_str());
                    let second = s.as_bytes().get(1).copied();
                    prop_assert!(second != Some(b'/') && second != Some(b'\\'), "{s:?}");
                } else {
                    prop_assert!(s.starts_with("https://") || s.starts_with("http://"), "{s:?}");
                }
            }
        }

        /// (d) Resolving any accepted target against the auth host stays on
        /// the auth host or lands on a whitelisted host.
        #[test]
        fn resolution_stays_safe(rd in any_input()) {
            let w = wl(PROP_WL);
            if let Ok(t) = validate_redirect(&rd, &w) {
                let base = Url::parse("https://auth.example.com/")
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let joined = base.join(t.as_str()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let host = joined.host_str().unwrap_or_default();
                prop_assert!(
                    host == "auth.example.com"
                        || w.admits(default_port(joined.scheme()), host, joined.port()),
                    "{t:?} resolved to {joined}"
                );
                prop_assert_eq!(joined.username(), "");
                prop_assert_eq!(joined.password(), None);
            }
        }

        /// Validation is idempotent: an accepted target is accepted unchanged.
        #[test]
        fn idempotent(rd in any_input()) {
            let w = wl(PROP_WL);
            if let Ok(t) = validate_redirect(&rd, &w) {
                prop_assert_eq!(validate_redirect(t.as_str(), &w), Ok(t.clone()));
            }
        }

        /// Parsing a displayed entry gives the same entry back.
        #[test]
        fn entry_display_roundtrip(raw in "\\.?[a-zA-Z0-9-]{1,8}(\\.[a-zA-Z0-9-]{1,8}){0,3}(:(\\*|[0-9]{1,5}))?") {
            if let Ok(entry) = raw.parse::<WhitelistEntry>() {
                prop_assert_eq!(entry.to_string().parse::<WhitelistEntry>(), Ok(entry));
            }
        }
    }
}

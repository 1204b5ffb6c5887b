//! The host grammar shared by whitelist entries and redirect targets, and the
//! whitelist itself: which hosts (and ports) an absolute `rd` may point to.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// RFC 1035 limits. The `url` crate does not enforce them (WHATWG sets
/// `VerifyDnsLength` to false), so we do, to keep "valid host" unambiguous.
const MAX_HOST_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

// ---------------------------------------------------------------------------
// Host grammar shared by whitelist entries and redirect targets
// ---------------------------------------------------------------------------

/// What kind of host a canonical host string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HostKind {
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
pub(super) fn classify_host(host: &str) -> Result<HostKind, &'static str> {
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
pub(super) fn parse_port(s: &str) -> Option<u16> {
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

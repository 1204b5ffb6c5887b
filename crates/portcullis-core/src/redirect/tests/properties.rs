use super::*;

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
    let label = prop::sample::select(vec!["a", "auth", "localhost", "x-y", "xn--exmple-cua", "A"]);
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

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

mod properties;
mod whitelist;

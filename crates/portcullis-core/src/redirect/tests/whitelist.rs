use super::*;

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

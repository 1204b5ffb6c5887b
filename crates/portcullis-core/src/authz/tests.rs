#![allow(clippy::unwrap_used)]
use super::*;

fn id(email: &str, groups: &[&str]) -> Identity {
    Identity {
        user: email.into(),
        email: Some(email.into()),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        preferred_username: None,
    }
}

fn lists(g: &[&str], e: &[&str], d: &[&str]) -> Policy {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Policy::from_lists(&v(g), &v(e), &v(d))
}

#[test]
fn policy_table() {
    let open = Policy::default();
    let groups = lists(&["admins", "devs"], &[], &[]);
    let domains = lists(&[], &[], &["corp.com"]);
    let both = lists(&["devs"], &[], &["corp.com"]);
    let emails = lists(&[], &["Alice@corp.com"], &[]);
    assert_eq!(open.check(&id("a@x.com", &[])), Ok(()));
    assert_eq!(groups.check(&id("a@x.com", &["devs"])), Ok(()));
    assert_eq!(groups.check(&id("a@x.com", &["other"])), Err(Denial::Group));
    assert_eq!(groups.check(&id("a@x.com", &[])), Err(Denial::Group));
    assert_eq!(domains.check(&id("a@CORP.com", &[])), Ok(()));
    assert_eq!(
        domains.check(&id("a@evil.com@corp.com", &[])),
        Err(Denial::EmailDomain)
    );
    assert_eq!(
        domains.check(&id("a@corp.com.evil.com", &[])),
        Err(Denial::EmailDomain)
    );
    assert_eq!(
        domains.check(&id("@corp.com", &[])),
        Err(Denial::EmailDomain)
    );
    assert_eq!(both.check(&id("a@corp.com", &["x"])), Err(Denial::Group));
    assert_eq!(
        both.check(&id("a@x.com", &["devs"])),
        Err(Denial::EmailDomain)
    );
    assert_eq!(both.check(&id("a@corp.com", &["devs"])), Ok(()));
    assert_eq!(emails.check(&id("alice@CORP.com", &[])), Ok(()));
    assert_eq!(emails.check(&id("bob@corp.com", &[])), Err(Denial::Email));
    // Exactly one '@', even when the list holds the odd form.
    let odd = lists(&[], &["a@evil.com@corp.com"], &[]);
    assert_eq!(
        odd.check(&id("a@evil.com@corp.com", &[])),
        Err(Denial::Email)
    );
    let mut no_email = id("a@corp.com", &["devs"]);
    no_email.email = None;
    assert_eq!(emails.check(&no_email), Err(Denial::Email));
    assert_eq!(domains.check(&no_email), Err(Denial::EmailDomain));
}

/// The query-parameter table: OR within a parameter, AND across parameters and
/// with the global policy.
#[test]
fn query_parameter_table() {
    let alice = id("alice@example.test", &["platform-admins", "developers"]);
    let bob = id("bob@example.test", &["developers"]);
    let eve = id("eve@other.test", &["contractors"]);
    let global = lists(&[], &[], &["example.test", "other.test"]);
    // (query, alice, bob, eve)
    let table: &[(&str, bool, bool, bool)] = &[
        ("", true, true, true),
        ("allowed_groups=platform-admins", true, false, false),
        (
            "allowed_groups=platform-admins,contractors",
            true,
            false,
            true,
        ),
        (
            "allowed_groups=platform-admins%2Ccontractors",
            true,
            false,
            true,
        ),
        ("allowed_groups= developers , nobody", true, true, false),
        ("allowed_emails=bob@example.test", false, true, false),
        (
            "allowed_emails=BOB@example.test,eve@other.test",
            false,
            true,
            true,
        ),
        ("allowed_email_domains=other.test", false, false, true),
        (
            "allowed_email_domains=example.test&allowed_groups=developers",
            true,
            true,
            false,
        ),
        (
            "allowed_email_domains=example.test&allowed_groups=platform-admins",
            true,
            false,
            false,
        ),
        (
            "allowed_emails=eve@other.test&allowed_groups=developers",
            false,
            false,
            false,
        ),
        // Present but empty: nobody.
        ("allowed_groups=", false, false, false),
        ("allowed_groups=,", false, false, false),
        // A domain is not a suffix.
        ("allowed_email_domains=test", false, false, false),
        ("allowed_email_domains=@example.test", true, true, false),
    ];
    for (query, a, b, e) in table {
        let p = Policy::from_query(Some(query), &[]).unwrap();
        for (who, want) in [(&alice, a), (&bob, b), (&eve, e)] {
            let got = check_all(who, &[&global, &p]).is_ok();
            assert_eq!(got, *want, "query {query:?} for {}", who.user);
        }
    }
    // The global policy still applies.
    let strict_global = lists(&["developers"], &[], &[]);
    let p = Policy::from_query(Some("allowed_groups=contractors"), &[]).unwrap();
    assert!(check_all(&eve, &[&strict_global, &p]).is_err());
    assert!(check_all(&bob, &[&strict_global, &p]).is_err());
}

#[test]
fn query_parameter_errors() {
    assert_eq!(
        Policy::from_query(Some("allowed_group=admins"), &[]),
        Err(PolicyError::Unknown("allowed_group".into()))
    );
    assert_eq!(
        Policy::from_query(Some("allowed_groups=a&allowed_groups=b"), &[]),
        Err(PolicyError::Repeated("allowed_groups".into()))
    );
    assert!(Policy::from_query(Some("rd=/x&allowed_groups=a"), &["rd"]).is_ok());
    assert!(Policy::from_query(None, &[]).unwrap().is_open());
}

#[test]
fn skip_rule_table() {
    let rules: Vec<SkipRule> = ["GET /public/.*", "/healthz", "POST ^/hooks/[a-z]+$"]
        .iter()
        .map(|r| SkipRule::parse(r).unwrap())
        .collect();
    // (method, raw path as sent, skips)
    let table: &[(&str, &str, bool)] = &[
        ("GET", "/public/app.js", true),
        ("GET", "/public/", true),
        ("HEAD", "/public/app.js", false),
        ("POST", "/public/app.js", false),
        ("GET", "/healthz", true),
        ("DELETE", "/healthz", true),
        ("GET", "/healthz/", false),
        ("GET", "/healthzx", false),
        ("GET", "/x/healthz", false),
        ("POST", "/hooks/github", true),
        ("POST", "/hooks/github/x", false),
        // Never the query or the fragment.
        ("GET", "/admin?x=/public/a", false),
        ("GET", "/admin?/healthz", false),
        ("GET", "/admin#/public/a", false),
        ("GET", "/admin%23/public/a", false),
        ("GET", "/admin%3F/public/a", false),
        ("GET", "/healthz?x=1", true),
        // Decoded before matching.
        ("GET", "/%70ublic/app.js", true),
        ("GET", "/%68ealthz", true),
        // Ambiguous paths match nothing.
        ("GET", "/public/../admin", false),
        ("GET", "/public/%2e%2e/admin", false),
        ("GET", "/public%2F..%2Fadmin", false),
        ("GET", "/public/./x", false),
        ("GET", "/public/%252e%252e/admin", false),
        ("GET", "/public/a\\..\\admin", false),
        ("GET", "/public/%00", false),
        ("GET", "/public/%ff", false),
        ("GET", "public/app.js", false),
        ("GET", "", false),
    ];
    for (method, path, want) in table {
        assert_eq!(skip_auth(&rules, method, path), *want, "{method} {path}");
    }
    assert!(!skip_auth(&[], "GET", "/public/x"));
}

#[test]
fn skip_rule_parse_errors() {
    assert!(SkipRule::parse("healthz").is_err());
    assert!(SkipRule::parse("GET healthz").is_err());
    assert!(SkipRule::parse("GET /(").is_err());
    assert!(SkipRule::parse("get /x").is_err());
    let r = SkipRule::parse("^/x$").unwrap();
    assert!(skip_auth(std::slice::from_ref(&r), "GET", "/x"));
    assert!(!skip_auth(&[r], "GET", "/xy"));
}

//! Redirect whitelist, email domains, groups, skip-auth rules and bearer tokens,
//! translated by meaning: what oauth2-proxy admitted is what Portcullis admits, and
//! where that cannot be said, access fails closed.

use portcullis_core::authz::SkipRule;
use portcullis_core::redirect::Whitelist;

use super::ctx::Ctx;
use super::emit::{Table, list, s};

/// One `--whitelist-domain` entry as Portcullis entries. oauth2-proxy splits off a
/// numeric or `*` port; `.parent` and `*.parent` both admit the parent itself and its
/// sub-domains (`isHostnameAllowed`); a port-less entry admits URLs without a port.
pub(crate) fn whitelist_entry(entry: &str) -> Result<Vec<String>, String> {
    let entry = entry.trim();
    let (host, port) = match entry.rfind(':') {
        Some(i) if entry[i + 1..] == *"*" || entry[i + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            (&entry[..i], &entry[i + 1..])
        }
        _ => (entry, ""),
    };
    if host.starts_with('[') {
        return Err("IPv6 literals are not accepted by Portcullis".into());
    }
    if host.contains('/') || host.contains(':') {
        return Err(
            "has a scheme or path, so oauth2-proxy matched no host with it: dropped".into(),
        );
    }
    let suffix = if port.is_empty() {
        String::new()
    } else {
        format!(":{port}")
    };
    let out = match host.strip_prefix("*.").or_else(|| host.strip_prefix('.')) {
        Some(parent) => vec![format!("{parent}{suffix}"), format!(".{parent}{suffix}")],
        None => vec![format!("{host}{suffix}")],
    };
    Whitelist::parse(&out).map_err(|errs| {
        errs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    Ok(out)
}

/// `whitelist_domains` → `redirect.whitelist_domains`.
pub(crate) fn redirect(c: &mut Ctx) {
    let Some(w) = c.take("whitelist_domains") else {
        return;
    };
    let mut out = Vec::new();
    let mut parents = false;
    for entry in w.list().iter().filter(|e| !e.trim().is_empty()) {
        match whitelist_entry(entry) {
            Ok(e) => {
                parents |= e.len() == 2;
                for x in e {
                    if !out.contains(&x) {
                        out.push(x);
                    }
                }
            }
            Err(reason) => c
                .out
                .untranslated(&format!("{} entry {entry:?}", w.origin), &reason),
        }
    }
    let mut why = vec![
        "A port-less entry admits the scheme's default port only (oauth2-proxy: URLs without a port); `host:*` any port.",
    ];
    if parents {
        why.push("oauth2-proxy's `.example.com` and `*.example.com` admit example.com itself and its sub-domains; Portcullis's `.example.com` admits sub-domains only, so both are listed.");
    }
    c.out.set(
        "redirect",
        "whitelist_domains",
        list(out),
        &w.origin.to_string(),
        &why,
    );
}

/// `email_domains`, `authenticated_emails_file`, `allowed_groups`.
pub(crate) fn authz(c: &mut Ctx) {
    let domains = c.take("email_domains").filter(|d| !d.list().is_empty());
    let file = c
        .take("authenticated_emails_file")
        .filter(|f| !f.text().is_empty());
    let all = domains
        .as_ref()
        .is_some_and(|d| d.list().iter().any(|x| x == "*"));
    if let Some(d) = &domains {
        if all {
            c.out.note("authz", &format!(
                "allowed_email_domains: {} has `*` (any address): no email condition (an empty list).",
                d.origin
            ));
        } else {
            let mut exact = Vec::new();
            for x in d.list() {
                if x.starts_with('.') || x.starts_with("*.") {
                    c.out.untranslated(
                        &format!("{} entry {x:?}", d.origin),
                        "oauth2-proxy admitted every sub-domain's addresses; Portcullis matches email domains exactly: list each sub-domain",
                    );
                    c.fail_closed("an email sub-domain entry");
                } else if !x.is_empty() {
                    exact.push(x.to_ascii_lowercase());
                }
            }
            if !exact.is_empty() {
                c.out.set(
                    "authz",
                    "allowed_email_domains",
                    list(exact),
                    &d.origin.to_string(),
                    &["Compared exactly, case-insensitively, with the part after the only '@'."],
                );
            }
        }
    }
    match (&file, all) {
        (Some(f), true) => c.out.note(
            "authz",
            &format!("{}: not needed, `*` admits every address.", f.origin),
        ),
        (Some(f), false) => {
            c.out.untranslated(
                &f.origin.to_string(),
                "Portcullis reads no emails file: list its addresses in authz.allowed_emails (and mind that Portcullis requires allowed_emails AND allowed_email_domains, where oauth2-proxy accepted either)",
            );
            c.fail_closed("the authenticated-emails file");
        }
        (None, _) => {}
    }
    if domains.is_none() && file.is_none() {
        c.out.untranslated(
            "email_domains (not set)",
            "oauth2-proxy refuses to start without email_domains or authenticated_emails_file; no email condition is written",
        );
    }
    if let Some(g) = c.take("allowed_groups") {
        c.out.set(
            "authz",
            "allowed_groups",
            list(g.list()),
            &g.origin.to_string(),
            &["Any of; a refused user gets 403."],
        );
    }
}

/// Whether `re` has a `|` outside every group and class.
fn top_level_alternation(re: &str) -> bool {
    let (mut depth, mut class) = (0i32, false);
    let mut chars = re.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                chars.next();
            }
            '[' if !class => class = true,
            ']' if class => class = false,
            '(' if !class => depth += 1,
            ')' if !class => depth -= 1,
            '|' if !class && depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// Whether `re` ends with an unescaped `$`.
fn ends_anchored(re: &str) -> bool {
    re.ends_with('$')
        && re[..re.len() - 1]
            .chars()
            .rev()
            .take_while(|&c| c == '\\')
            .count()
            % 2
            == 0
}

/// Whether `re` starts with a literal character other than `/` that no quantifier
/// follows (so it can never match at the path's first character, always `/`).
fn starts_with_plain_literal(re: &str) -> bool {
    let mut chars = re.chars();
    let first_len = match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '-' => 1,
        Some('\\') if chars.next().is_some_and(|c| c == '.') => 2,
        _ => return false,
    };
    !re[first_len..].starts_with(['*', '?', '{'])
}

/// An oauth2-proxy path regex (unanchored, matched on the path) as a Portcullis rule
/// pattern (anchored at both ends, starting with `/`) that admits the same paths.
pub(crate) fn anchor_regex(re: &str) -> Result<String, String> {
    if top_level_alternation(re) {
        return Err("has a top-level `|`: write one rule per alternative".into());
    }
    let (start, body) = match re.strip_prefix('^') {
        Some(b) => (true, b),
        None => (false, re),
    };
    let (end, body) = if ends_anchored(body) {
        (true, &body[..body.len() - 1])
    } else {
        (false, body)
    };
    let tail = if end { "" } else { ".*" };
    let head = if let Some(rest) = body.strip_prefix(".+") {
        format!("/.*{rest}")
    } else if let Some(rest) = body
        .strip_prefix(".*")
        .filter(|r| starts_with_plain_literal(r))
    {
        format!("/.*{rest}")
    } else if start && body.starts_with('/') {
        body.to_owned()
    } else if !start && body.starts_with('/') && !body[1..].starts_with(['*', '?', '{', '+']) {
        format!("/(?:.*/)?{}", &body[1..])
    } else if !start && starts_with_plain_literal(body) {
        format!("/.*{body}")
    } else {
        return Err("cannot be rewritten as a Portcullis rule (anchored, starting with '/'): rewrite it by hand".into());
    };
    Ok(format!("{head}{tail}"))
}

/// One rule from `[METHOD ]regex`, checked by Portcullis's own parser.
fn rule(method: Option<&str>, re: &str) -> Result<String, String> {
    let pattern = anchor_regex(re)?;
    let rule = match method {
        Some(m) => format!("{m} {pattern}"),
        None => pattern,
    };
    SkipRule::parse(&rule).map_err(|e| format!("not a valid Portcullis rule: {e}"))?;
    Ok(rule)
}

/// `skip_auth_regex`, `skip_auth_routes`, `skip_auth_preflight` → `authz.skip_auth`.
pub(crate) fn skip_auth(c: &mut Ctx) {
    let mut rules = Vec::new();
    let mut sources = Vec::new();
    if let Some(r) = c.take("skip_auth_regex") {
        sources.push(r.origin.to_string());
        for re in r.list() {
            match rule(None, &re) {
                Ok(x) => rules.push(x),
                Err(e) => c
                    .out
                    .untranslated(&format!("{} entry {re:?}", r.origin), &e),
            }
        }
    }
    if let Some(r) = c.take("skip_auth_routes") {
        sources.push(r.origin.to_string());
        for route in r.list() {
            // oauth2-proxy splits at the first `=` or `!=` anywhere (method=regex).
            let negate = route.contains("!=");
            let split = route
                .find("!=")
                .map(|i| (i, 2))
                .or_else(|| route.find('=').map(|i| (i, 1)));
            let (method, re) = match split {
                Some((i, n)) => (
                    Some(route[..i].to_ascii_uppercase()),
                    route[i + n..].to_owned(),
                ),
                None => (None, route.clone()),
            };
            let what = format!("{} entry {route:?}", r.origin);
            if negate {
                c.out
                    .untranslated(&what, "negated rules (`!=`) have no Portcullis form");
                continue;
            }
            let method = method.filter(|m| !m.is_empty());
            if method
                .as_ref()
                .is_some_and(|m| !m.bytes().all(|b| b.is_ascii_uppercase()))
            {
                c.out.untranslated(&what, "oauth2-proxy reads the text before `=` as the method, which no request has: the rule never matched");
                continue;
            }
            match rule(method.as_deref(), &re) {
                Ok(x) => rules.push(x),
                Err(e) => c.out.untranslated(&what, &e),
            }
        }
    }
    if let (true, Some(p)) = c.take_flag("skip_auth_preflight", false) {
        sources.push(p.origin.to_string());
        rules.push("OPTIONS /.*".into());
    }
    if !sources.is_empty() {
        c.out.set("authz", "skip_auth", list(rules), &sources.join(", "), &[
            "oauth2-proxy's path regexes are unanchored (they match anywhere in the path); Portcullis anchors each rule at both ends, so each is rewritten to admit the same paths (`.*` where it was open). Paths with dot segments or double encoding match no rule.",
        ]);
    }
}

/// `skip_jwt_bearer_tokens`, `extra_jwt_issuers`, `oidc_extra_audiences`.
pub(crate) fn bearer(c: &mut Ctx, client_id: Option<&str>) {
    let (enabled, switch) = c.take_flag("skip_jwt_bearer_tokens", false);
    let issuers = c.take("extra_jwt_issuers");
    let audiences = c.take("oidc_extra_audiences");
    if let Some(sw) = &switch {
        c.out.set("bearer", "enabled", toml::Value::Boolean(enabled), &sw.origin.to_string(), &[
            "An invalid bearer token is a 401; Portcullis never falls back to the cookie or a sign-in (oauth2-proxy's bearer_token_login_fallback).",
        ]);
    }
    if !enabled {
        for x in issuers.iter().chain(audiences.iter()) {
            c.out.note(
                "bearer",
                &format!(
                    "{}: unused, as in oauth2-proxy, while bearer tokens are off.",
                    x.origin
                ),
            );
        }
        return;
    }
    if let Some(a) = audiences {
        let mut all: Vec<String> = client_id.map(str::to_owned).into_iter().collect();
        all.extend(a.list());
        c.out.set(
            "bearer",
            "audiences",
            list(all),
            &a.origin.to_string(),
            &["The client id and the extra audiences, as oauth2-proxy accepted them."],
        );
    }
    let Some(issuers) = issuers else {
        return;
    };
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for pair in issuers.list() {
        let Some((iss, aud)) = pair.split_once('=') else {
            c.out.untranslated(
                &format!("{} entry {pair:?}", issuers.origin),
                "not issuer=audience",
            );
            continue;
        };
        match grouped.iter_mut().find(|(i, _)| i == iss) {
            Some((_, auds)) => auds.push(aud.to_owned()),
            None => grouped.push((iss.to_owned(), vec![aud.to_owned()])),
        }
    }
    for (iss, auds) in grouped {
        let mut t = Table::default();
        t.comment("Discovered at <issuer_url>/.well-known/openid-configuration for its JWKS.");
        t.set("issuer_url", s(&iss), &issuers.origin.to_string());
        t.set("audiences", list(auds), &issuers.origin.to_string());
        c.out.table("bearer.extra_issuers", t);
    }
}

//! The provider, the client and its secret, cookies and the session lifetime.
//! Secrets are never written: the output names the environment variable to set and
//! where its value comes from.

use std::time::Duration;

use portcullis_session::Key;

use super::ctx::Ctx;
use super::duration::{human, parse_go};
use super::emit::{list, s};
use super::input::{Origin, Setting};

/// Where a secret's value is, in words an operator can act on.
fn secret_source(setting: &Setting) -> String {
    match &setting.origin {
        Origin::Env(var) => format!("the value of {var}"),
        Origin::Flag(flag) => format!("the value passed to --{flag} (e.g. its Kubernetes Secret)"),
        Origin::File(key) => format!("the value of `{key}` in the oauth2-proxy config file"),
    }
}

/// `provider`, `oidc_issuer_url`, the client and the OIDC claim options.
pub(crate) fn oidc(c: &mut Ctx) {
    let provider = c.take("provider");
    match provider.as_ref().map(Setting::text).as_deref() {
        Some("oidc") => {}
        Some(other) => c.out.untranslated(
            &provider.as_ref().map_or_else(String::new, |p| p.origin.to_string()),
            &format!(
                "provider {other:?}: Portcullis speaks plain OpenID Connect only (discovery of oidc.issuer_url); provider-specific lookups (groups, roles, organisations) are not done"
            ),
        ),
        None => c.out.untranslated(
            "provider (not set)",
            "oauth2-proxy's default provider is `google`; Portcullis speaks OpenID Connect only: use --provider=oidc with --oidc-issuer-url (Google: https://accounts.google.com)",
        ),
    }
    match c.take("oidc_issuer_url") {
        Some(u) => c.out.set(
            "oidc",
            "issuer_url",
            s(&u.text()),
            &u.origin.to_string(),
            &["Discovered at <issuer_url>/.well-known/openid-configuration; the discovered issuer must match."],
        ),
        None => c.out.untranslated(
            "oidc_issuer_url (not set)",
            "Portcullis needs the issuer: set oidc.issuer_url",
        ),
    }
    match c.take("client_id") {
        Some(id) => c.out.set("oidc", "client_id", s(&id.text()), &id.origin.to_string(), &[
            "While both proxies run, give Portcullis its own client at the provider: Dex keeps one refresh token per user and client.",
        ]),
        None => c.out.untranslated("client_id (not set)", "Portcullis needs oidc.client_id"),
    }
    client_secret(c);
    match c.take("redirect_url") {
        Some(u)
            if url::Url::parse(&u.text())
                .is_ok_and(|x| matches!(x.scheme(), "http" | "https") && x.host_str().is_some()) =>
        {
            c.out.set("oidc", "redirect_url", s(&u.text()), &u.origin.to_string(), &[]);
        }
        Some(u) if !u.text().is_empty() => c.out.untranslated(
            &u.origin.to_string(),
            "a relative redirect URL: oauth2-proxy completed it from the request's Host; Portcullis needs the absolute https://<auth host>/oauth2/callback",
        ),
        _ => c.out.untranslated(
            "redirect_url (not set)",
            "oauth2-proxy derives it from the request's Host; Portcullis needs it: set oidc.redirect_url to https://<auth host>/oauth2/callback",
        ),
    }
    if let Some(scope) = c.take("scope") {
        let mut scopes: Vec<String> = scope.text().split_whitespace().map(str::to_owned).collect();
        let mut why = Vec::new();
        if !scopes.iter().any(|x| x == "openid") {
            scopes.insert(0, "openid".into());
            why.push("`openid` added: OpenID Connect needs it.");
        }
        if !scopes.iter().any(|x| x == "offline_access") {
            why.push("Without `offline_access` Dex issues no refresh token: sessions end when the ID token expires.");
        }
        c.out.set(
            "oidc",
            "scopes",
            s(&scopes.join(" ")),
            &scope.origin.to_string(),
            &why,
        );
    } else {
        c.out.note(
            "oidc",
            "scopes: Portcullis's default \"openid email profile groups offline_access\" (oauth2-proxy's OIDC default is \"openid email profile\"; offline_access gives the refresh token).",
        );
    }
    if let Some(claim) = c.take("user_id_claim") {
        c.out.set(
            "oidc",
            "username_claim",
            s(&claim.text()),
            &claim.origin.to_string(),
            &["Sent as X-Auth-Request-User; match the API server's --oidc-username-claim."],
        );
    }
    if let Some(claim) = c.take("oidc_email_claim").filter(|x| x.text() != "email") {
        c.out.untranslated(
            &claim.origin.to_string(),
            "Portcullis reads the address from the `email` claim only (X-Auth-Request-Email and the email policies)",
        );
    }
    if let Some(claim) = c.take("oidc_groups_claim") {
        c.out.set(
            "oidc",
            "groups_claim",
            s(&claim.text()),
            &claim.origin.to_string(),
            &[],
        );
    }
    if let (v, Some(setting)) = c.take_flag("insecure_oidc_allow_unverified_email", false) {
        c.out.set(
            "oidc",
            "allow_unverified_email",
            toml::Value::Boolean(v),
            &setting.origin.to_string(),
            &[],
        );
    }
    if let Some(m) = c.take("code_challenge_method") {
        c.out.note(
            "oidc",
            &format!("{}: PKCE with S256 is always used.", m.origin),
        );
    }
    if let Some(m) = c.take("insecure_oidc_skip_nonce") {
        c.out.note(
            "oidc",
            &format!("{}: Portcullis always sends and checks a nonce.", m.origin),
        );
    }
}

/// `client_secret` / `client_secret_file`. oauth2-proxy uses the inline secret when
/// both are set; Portcullis takes exactly one.
fn client_secret(c: &mut Ctx) {
    let inline = c.take("client_secret").filter(|x| !x.text().is_empty());
    let file = c
        .take("client_secret_file")
        .filter(|x| !x.text().is_empty());
    match (inline, file) {
        (Some(secret), file) => {
            let from = secret_source(&secret);
            c.out.note(
                "oidc",
                &format!(
                    "client_secret: given inline ({}) and not written here. Set PORTCULLIS_OIDC__CLIENT_SECRET to {from}.{}",
                    secret.origin,
                    if file.is_some() {
                        " The client-secret file is not used: oauth2-proxy, too, prefers the inline secret."
                    } else {
                        ""
                    }
                ),
            );
            c.out.need_env("PORTCULLIS_OIDC__CLIENT_SECRET", &from);
        }
        (None, Some(file)) => c.out.set(
            "oidc",
            "client_secret_file",
            s(&file.text()),
            &file.origin.to_string(),
            &["The file's content (whitespace trimmed) is the client secret."],
        ),
        (None, None) => c.out.untranslated(
            "client_secret (not set)",
            "Portcullis needs the client secret: set PORTCULLIS_OIDC__CLIENT_SECRET or oidc.client_secret_file",
        ),
    }
}

/// Describes an oauth2-proxy cookie secret without revealing it: its key length as
/// oauth2-proxy reads it (`SecretBytes`: URL-safe base64 when that gives 16, 24 or 32
/// bytes, else the raw text) and whether Portcullis would accept it.
fn cookie_secret_form(secret: &str) -> String {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(secret.trim_end_matches('='))
        .ok()
        .filter(|b| matches!(b.len(), 16 | 24 | 32));
    let how = match &decoded {
        Some(b) => format!("oauth2-proxy base64-decoded it to a {}-byte key", b.len()),
        None => format!(
            "oauth2-proxy used its {} bytes of raw text as the key",
            secret.len()
        ),
    };
    if Key::from_base64(secret).is_ok() {
        format!(
            "{how}; Portcullis would accept it (base64 of 32 bytes), but give Portcullis a key of its own"
        )
    } else {
        format!("{how}; Portcullis needs base64 of exactly 32 random bytes, which it is not")
    }
}

/// Cookie name, domains, flags and the cookie secret.
pub(crate) fn cookie(c: &mut Ctx) {
    let secret = c.take("cookie_secret").filter(|x| !x.text().is_empty());
    let file = c
        .take("cookie_secret_file")
        .filter(|x| !x.text().is_empty());
    let mut why = String::from(
        "cookie.secrets: not written here. Generate a new key with `portcullis secret` and set PORTCULLIS_COOKIE__SECRETS='[\"<the key>\"]'. Sessions sealed by oauth2-proxy cannot be read, so users sign in once after the switch.",
    );
    match (&secret, &file) {
        (Some(s), _) => why.push_str(&format!(
            " The oauth2-proxy secret ({}): {}.",
            s.origin,
            cookie_secret_form(&s.text())
        )),
        (None, Some(f)) => why.push_str(&format!(
            " Portcullis reads cookie keys from no file ({}).",
            f.origin
        )),
        (None, None) => {}
    }
    c.out.note("cookie", &why);
    c.out.need_env(
        "PORTCULLIS_COOKIE__SECRETS",
        "'[\"<output of `portcullis secret`>\"]' (a new key: base64 of 32 random bytes)",
    );
    match c.take("cookie_name") {
        Some(n) => {
            let name = n.text();
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                c.out.set("cookie", "name", s(&name), &n.origin.to_string(), &[
                    "Running both proxies side by side on one cookie domain? Give Portcullis another name.",
                ]);
            } else {
                c.out.untranslated(&n.origin.to_string(), "Portcullis cookie names use only letters, digits, '_' and '-'");
            }
        }
        None => c.out.note("cookie", "name: Portcullis's default `_portcullis` (oauth2-proxy's is `_oauth2_proxy`), so both can run side by side."),
    }
    if let Some(d) = c.take("cookie_domains") {
        let (good, bad): (Vec<String>, Vec<String>) = d.list().into_iter().partition(|x| {
            let bare = x.trim_start_matches('.');
            (bare.contains('.') || bare == "localhost")
                && !bare.ends_with('.')
                && bare
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        });
        for x in bad {
            c.out.untranslated(
                &format!("{} entry {x:?}", d.origin),
                "not a domain like .example.com",
            );
        }
        c.out.set("cookie", "domains", list(good), &d.origin.to_string(), &[
            "The longest listed parent of the request's host is used; when none matches, Portcullis sets a host-only cookie (oauth2-proxy used the shortest listed domain).",
        ]);
    }
    if let (v, Some(setting)) = c.take_flag("cookie_secure", true) {
        c.out.set(
            "cookie",
            "secure",
            toml::Value::Boolean(v),
            &setting.origin.to_string(),
            &[],
        );
    }
    match c.take("cookie_samesite") {
        Some(x) if matches!(x.text().to_ascii_lowercase().as_str(), "lax" | "strict" | "none") => {
            c.out.set("cookie", "samesite", s(&x.text().to_ascii_lowercase()), &x.origin.to_string(), &[]);
        }
        Some(x) if x.text().is_empty() => c.out.note("cookie", &format!(
            "samesite: {} is empty (no attribute, which browsers treat as lax); Portcullis writes SameSite=Lax.",
            x.origin
        )),
        Some(x) => c.out.untranslated(&x.origin.to_string(), "not lax, strict or none"),
        None => {}
    }
    if let Some(x) = c.take("cookie_csrf_expire") {
        duration_key(c, &x, "cookie", "csrf_expire", 60, &[]);
    }
    if let (v, Some(setting)) = c.take_flag("cookie_httponly", true) {
        if v {
            c.out.note(
                "cookie",
                &format!(
                    "{}: Portcullis cookies are always HttpOnly.",
                    setting.origin
                ),
            );
        } else {
            c.out.untranslated(
                &setting.origin.to_string(),
                "Portcullis cookies are always HttpOnly (scripts cannot read them)",
            );
        }
    }
    if let Some(x) = c.take("cookie_csrf_per_request") {
        c.out.note(
            "cookie",
            &format!(
                "{}: Portcullis always uses one CSRF cookie per sign-in attempt.",
                x.origin
            ),
        );
    }
}

/// `section.key = <duration>` from a Go duration of at least `min` seconds.
fn duration_key(
    c: &mut Ctx,
    x: &Setting,
    section: &'static str,
    key: &str,
    min: u64,
    why: &[&str],
) {
    match parse_go(&x.text()) {
        Some(d) if d >= Duration::from_secs(min) => {
            c.out
                .set(section, key, s(&human(d)), &x.origin.to_string(), why);
        }
        _ => c.out.untranslated(
            &x.origin.to_string(),
            &format!("{section}.{key} must be a duration of at least {min}s"),
        ),
    }
}

/// `cookie_expire` → `session.lifetime` (written even when not given: oauth2-proxy's
/// default is a week, Portcullis's 12 hours), `cookie_refresh`, the store type.
pub(crate) fn session(c: &mut Ctx) {
    match c.take("cookie_expire") {
        Some(x) => duration_key(
            c,
            &x,
            "session",
            "lifetime",
            120,
            &[
                "The absolute session lifetime (oauth2-proxy's cookie expiry); also how long to keep a rotated-out cookie key.",
            ],
        ),
        None => c.out.set(
            "session",
            "lifetime",
            s("168h"),
            "oauth2-proxy's default cookie_expire (not set in the source)",
            &["Kept at oauth2-proxy's default; Portcullis's own default is 12h."],
        ),
    }
    if let Some(x) = c
        .take("cookie_refresh")
        .filter(|x| parse_go(&x.text()).is_some_and(|d| !d.is_zero()))
    {
        c.out.note("session", &format!(
            "{}: Portcullis has no periodic refresh. It refreshes when the ID token is within session.refresh_before (default 60s) of its expiry, once per session (single-flight).",
            x.origin
        ));
    }
    match c.take("session_store_type") {
        Some(x) if matches!(x.text().as_str(), "cookie" | "redis") => {
            c.redis_store = x.text() == "redis";
            c.out
                .set("session", "store", s(&x.text()), &x.origin.to_string(), &[]);
        }
        Some(x) => c.out.untranslated(
            &x.origin.to_string(),
            "Portcullis stores sessions in cookies or Redis only",
        ),
        None => {}
    }
}

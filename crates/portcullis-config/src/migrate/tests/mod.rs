//! The translator against real-world configurations (oauth2-proxy's own examples, the
//! Dex guide, the Helm chart's defaults), precedence, secrecy, unknown input and the
//! meaning of whitelist entries and skip-auth regexes, checked against oracles that
//! reimplement oauth2-proxy's matching.

#![allow(clippy::unwrap_used, clippy::result_large_err)]

use std::path::Path;

use super::*;

mod meaning;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

fn env(e: &[(&str, &str)]) -> Vec<(String, String)> {
    e.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn run(file: Option<&str>, e: &[(&str, &str)], a: &[&str]) -> Translation {
    translate(&Sources {
        file: file.map(str::to_owned),
        env: env(e),
        args: args(a),
    })
    .unwrap()
}

/// The output as a table (it must always be valid TOML).
fn table(t: &Translation) -> toml::Table {
    toml::from_str(&t.toml).unwrap_or_else(|e| panic!("not TOML: {e}\n{}", t.toml))
}

fn get<'a>(t: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut cur = t.get(path.split('.').next()?)?;
    for p in path.split('.').skip(1) {
        cur = cur.get(p)?;
    }
    Some(cur)
}

fn strs(v: Option<&toml::Value>) -> Vec<String> {
    v.and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn untranslated(t: &Translation) -> Vec<String> {
    t.untranslated.iter().map(|u| u.setting.clone()).collect()
}

/// The untranslated settings that came from flags (not the "(not set)" ones).
fn flagged(t: &Translation) -> Vec<String> {
    untranslated(t)
        .into_iter()
        .filter(|u| u.starts_with("--"))
        .collect()
}

/// Runs `config check`'s load + validate on the output with `vars` set (and
/// `files` created), as an operator following the output would.
fn check(t: &Translation, vars: &[(&str, &str)], files: &[(&str, &str)]) -> Result<(), String> {
    let mut result = Ok(());
    figment::Jail::expect_with(|jail| {
        jail.create_file("portcullis.toml", &t.toml)?;
        for (path, content) in files {
            jail.create_file(path, content)?;
        }
        for (k, v) in vars {
            jail.set_env(k, v);
        }
        result = crate::load(Some(Path::new("portcullis.toml")), &[])
            .map_err(|e| e.to_string())
            .and_then(|c| {
                crate::validate(&c)
                    .map(|_| ())
                    .map_err(|e| format!("{e:?}"))
            });
        Ok(())
    });
    result
}

const KEY: &str = "3q2-7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhs";

/// The Dex guide in oauth2-proxy's OpenID Connect provider documentation.
#[test]
fn dex_guide_flags() {
    let t = run(
        None,
        &[],
        &[
            "--provider",
            "oidc",
            "--provider-display-name",
            "My OIDC Provider",
            "--client-id",
            "oauth2-proxy",
            "--client-secret",
            "proxy",
            "--redirect-url",
            "http://127.0.0.1:4180/oauth2/callback",
            "--oidc-issuer-url",
            "http://127.0.0.1:5556/dex",
            "--cookie-secure=false",
            "--cookie-secret=secret",
            "--email-domain",
            "kilgore.trout",
        ],
    );
    assert!(t.untranslated.is_empty(), "{:?}", t.untranslated);
    let v = table(&t);
    assert_eq!(
        get(&v, "oidc.issuer_url").unwrap().as_str(),
        Some("http://127.0.0.1:5556/dex")
    );
    assert_eq!(
        get(&v, "oidc.client_id").unwrap().as_str(),
        Some("oauth2-proxy")
    );
    assert_eq!(get(&v, "cookie.secure").unwrap().as_bool(), Some(false));
    assert_eq!(
        strs(get(&v, "authz.allowed_email_domains")),
        ["kilgore.trout"]
    );
    assert_eq!(get(&v, "session.lifetime").unwrap().as_str(), Some("168h"));
    assert!(
        t.toml.contains("# --oidc-issuer-url"),
        "sources are named:\n{}",
        t.toml
    );
    assert!(get(&v, "oidc.client_secret").is_none() && !t.toml.contains("\"proxy\""));
    let vars: Vec<&str> = t.env.iter().map(|e| e.var.as_str()).collect();
    assert_eq!(
        vars,
        [
            "PORTCULLIS_OIDC__CLIENT_SECRET",
            "PORTCULLIS_COOKIE__SECRETS"
        ]
    );
    let secrets = format!("[\"{KEY}\"]");
    check(
        &t,
        &[
            ("PORTCULLIS_OIDC__CLIENT_SECRET", "proxy"),
            ("PORTCULLIS_COOKIE__SECRETS", &secrets),
        ],
        &[],
    )
    .unwrap();
    let err = check(&t, &[], &[]).unwrap_err();
    assert!(
        err.contains("client_secret") && err.contains("cookie.secrets"),
        "{err}"
    );
}

/// oauth2-proxy's contrib/local-environment/oauth2-proxy-nginx.cfg: strings where
/// booleans and lists are expected, as viper accepts them.
#[test]
fn contrib_nginx_example_file() {
    let file = r#"
http_address="0.0.0.0:4180"
cookie_secret="OQINaROshtE9TcZkNAm-5Zs2Pv3xaWytBmc5W7sPX7w="
email_domains="example.com"
cookie_secure="false"
upstreams="static://200"
cookie_domains=[".localtest.me"] # Required so cookie can be read on all subdomains.
whitelist_domains=[".localtest.me"] # Required to allow redirection back to original requested target.

# dex provider
client_secret="b2F1dGgyLXByb3h5LWNsaWVudC1zZWNyZXQK"
client_id="oauth2-proxy"
redirect_url="http://oauth2-proxy.localtest.me:8080/oauth2/callback"

oidc_issuer_url="http://dex.localtest.me:5556/dex"
provider="oidc"
provider_display_name="Dex"

# Enables the use of `X-Forwarded-*` headers to determine request correctly
reverse_proxy="true"
"#;
    let t = run(Some(file), &[], &[]);
    assert_eq!(
        untranslated(&t),
        ["config file `reverse_proxy`"],
        "trusted proxies cannot be inferred"
    );
    let v = table(&t);
    assert_eq!(
        get(&v, "server.listen").unwrap().as_str(),
        Some("0.0.0.0:4180")
    );
    assert_eq!(get(&v, "cookie.secure").unwrap().as_bool(), Some(false));
    assert_eq!(
        strs(get(&v, "authz.allowed_email_domains")),
        ["example.com"]
    );
    assert_eq!(
        strs(get(&v, "redirect.whitelist_domains")),
        ["localtest.me", ".localtest.me"]
    );
    assert!(
        v.get("upstreams").is_none(),
        "static://200 is a placeholder"
    );
    for secret in ["OQINaROshtE9TcZkNAm", "b2F1dGgyLXByb3h5"] {
        assert!(!t.toml.contains(secret));
    }
    assert!(
        t.toml.contains("would accept it"),
        "the cookie secret's form is described"
    );
}

/// The Helm chart's default values, rendered: flags from deployment.yaml, the Secret's
/// variables, and the default configFile.
#[test]
fn helm_chart_defaults() {
    let file = "email_domains = [ \"*\" ]\nupstreams = [ \"file:///dev/null\" ]\n";
    let t = run(
        Some(file),
        &[
            ("OAUTH2_PROXY_CLIENT_ID", "XXXXXXX"),
            ("OAUTH2_PROXY_CLIENT_SECRET", "XXXXXXXX-helm-client-secret"),
            ("OAUTH2_PROXY_COOKIE_SECRET", "XXXXXXXXXXXXXXXX-helm-cookie"),
            ("PATH", "/usr/bin"),
        ],
        &[
            "--http-address=0.0.0.0:4180",
            "--https-address=0.0.0.0:4443",
            "--metrics-address=0.0.0.0:44180",
            "--config=/etc/oauth2_proxy/oauth2_proxy.cfg",
        ],
    );
    assert_eq!(
        t.config_flag.as_deref(),
        Some("/etc/oauth2_proxy/oauth2_proxy.cfg")
    );
    assert_eq!(
        untranslated(&t),
        [
            "provider (not set)",
            "oidc_issuer_url (not set)",
            "redirect_url (not set)"
        ],
        "the chart's defaults leave oauth2-proxy on its google provider"
    );
    let v = table(&t);
    assert_eq!(
        get(&v, "server.listen").unwrap().as_str(),
        Some("0.0.0.0:4180")
    );
    assert_eq!(
        get(&v, "server.metrics_listen").unwrap().as_str(),
        Some("0.0.0.0:44180")
    );
    assert_eq!(get(&v, "oidc.client_id").unwrap().as_str(), Some("XXXXXXX"));
    assert!(v.get("upstreams").is_none() && get(&v, "authz.allowed_email_domains").is_none());
    assert!(!t.toml.contains("helm-client-secret") && !t.toml.contains("helm-cookie"));
    assert!(t.env[0].from.contains("OAUTH2_PROXY_CLIENT_SECRET"));
}

#[test]
fn precedence_flags_over_env_over_file() {
    let file =
        "client_id = \"file\"\nemail_domains = [\"file.example\"]\ncookie_name = \"from_file\"\n";
    let t = run(
        Some(file),
        &[
            ("OAUTH2_PROXY_CLIENT_ID", "env"),
            ("OAUTH2_PROXY_EMAIL_DOMAINS", "env.example,env2.example"),
        ],
        &[
            "--client-id=flag",
            "--email-domain=a.example",
            "--email-domain",
            "b.example,c.example",
        ],
    );
    let v = table(&t);
    assert_eq!(get(&v, "oidc.client_id").unwrap().as_str(), Some("flag"));
    assert_eq!(
        strs(get(&v, "authz.allowed_email_domains")),
        ["a.example", "b.example", "c.example"]
    );
    assert_eq!(get(&v, "cookie.name").unwrap().as_str(), Some("from_file"));
    assert!(t.toml.contains("client_id = \"flag\"  # --client-id"));
    let t = run(
        Some(file),
        &[("OAUTH2_PROXY_EMAIL_DOMAINS", "env.example,env2.example")],
        &[],
    );
    let v = table(&t);
    assert_eq!(
        strs(get(&v, "authz.allowed_email_domains")),
        ["env.example", "env2.example"]
    );
    assert_eq!(get(&v, "oidc.client_id").unwrap().as_str(), Some("file"));
    assert!(t.toml.contains("# OAUTH2_PROXY_EMAIL_DOMAINS"));
    assert!(t.toml.contains("# config file `client_id`"));
    // Boolean flags: bare, =false, and Go's single-dash form.
    let t = run(
        None,
        &[("OAUTH2_PROXY_COOKIE_SECURE", "true")],
        &["-cookie-secure=false", "--skip-provider-button"],
    );
    let v = table(&t);
    assert_eq!(get(&v, "cookie.secure").unwrap().as_bool(), Some(false));
    assert_eq!(
        get(&v, "pages.skip_sign_in_page").unwrap().as_bool(),
        Some(true)
    );
}

/// No secret value reaches the TOML, the reports or the variables' descriptions,
/// whatever carries it (including unknown or misspelt options and stray arguments).
#[test]
fn secrets_never_in_output() {
    let file = r#"
cookie_secret = "S3CRET-file-cookie"
redis_connection_url = "redis://:S3CRET-url-pw@redis:6379/0"
basic_auth_password = "S3CRET-basic"
cookie_secert = "S3CRET-typo-file"
"#;
    let t = run(
        Some(file),
        &[
            ("OAUTH2_PROXY_CLIENT_SECRET", "S3CRET-env-client"),
            ("OAUTH2_PROXY_REDIS_PASSWORD", "S3CRET-env-redis"),
            ("OAUTH2_PROXY_CLIENTSECRET", "S3CRET-env-typo"),
            ("OAUTH2_PROXY_GITHUB_TOKEN", "S3CRET-github"),
        ],
        &[
            "--session-store-type=redis",
            "--jwt-key=S3CRET-jwt",
            "--signature-key",
            "sha1:S3CRET-sig",
            "--client-secret-typo=S3CRET-flag-typo",
            "--cookie-secert",
            "S3CRET-stray",
            "--redis-use-sentinel",
            "--redis-sentinel-password=S3CRET-sentinel",
            "--redis-sentinel-connection-urls=redis://:S3CRET-node@s1:26379,redis://s2:26379",
            "--upstream=http://user:S3CRET-upstream@app:80/",
        ],
    );
    let everything = format!("{t:?}");
    assert!(
        !everything.contains("S3CRET"),
        "a secret leaked:\n{everything}"
    );
    let reported = untranslated(&t).join("\n");
    for name in [
        "config file `cookie_secert`",
        "OAUTH2_PROXY_CLIENTSECRET",
        "--client-secret-typo",
        "--cookie-secert",
        "a positional argument",
        "--jwt-key",
        "--signature-key",
        "OAUTH2_PROXY_GITHUB_TOKEN",
    ] {
        assert!(reported.contains(name), "{name} not reported in {reported}");
    }
    let vars: Vec<&str> = t.env.iter().map(|e| e.var.as_str()).collect();
    assert!(
        vars.contains(&"PORTCULLIS_REDIS__NODES") && vars.contains(&"PORTCULLIS_REDIS__URL"),
        "{vars:?}"
    );
}

#[test]
fn unknown_names_are_reported_with_hints() {
    let t = run(
        Some("emial_domains = [\"x\"]\nemail-domains = [\"y\"]\n"),
        &[
            ("OAUTH2_PROXY_EMAIL_DOMAIN", "x"),
            ("OAUTH2_PROXY_NOT_A_THING", "1"),
            ("HOME", "/root"),
        ],
        &["--email-domains=x", "--upstreams=http://a"],
    );
    let by: std::collections::BTreeMap<_, _> = t
        .untranslated
        .iter()
        .map(|u| (u.setting.as_str(), u.reason.as_str()))
        .collect();
    assert!(by["config file `emial_domains`"].contains("unknown"));
    assert!(by["config file `email-domains`"].contains("`email_domains`"));
    assert!(by["OAUTH2_PROXY_EMAIL_DOMAIN"].contains("OAUTH2_PROXY_EMAIL_DOMAINS"));
    assert!(by["OAUTH2_PROXY_NOT_A_THING"].contains("ignores"));
    assert!(by["--email-domains"].contains("--email-domain"));
    assert!(by["--upstreams"].contains("--upstream"));
    assert!(!by.contains_key("HOME"));
}

//! Configuration: the only crate that knows figment, TOML and environment names.
//!
//! Layers, lowest first: built-in defaults < the TOML file < environment variables
//! (`PORTCULLIS_` + the upper-cased path with `__` between sections, e.g.
//! `PORTCULLIS_OIDC__ISSUER_URL`) < command-line overrides. [`load`] merges them into
//! the [`schema::Config`] file schema; [`validate`] turns that into the plain settings
//! the runtime crates define, reporting *every* problem at once rather than the first.

pub mod migrate;
pub mod schema;
mod validate;

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

pub use schema::Config;
pub use validate::{
    ConfigError, LogFormat, MAX_HEADER_BYTES, MIN_HEADER_BYTES, ServeSettings, Settings,
    StoreChoice, TlsFiles, validate,
};

/// The prefix of environment variables.
pub const ENV_PREFIX: &str = "PORTCULLIS_";

/// Top-level sections of the schema, the only environment keys read.
const SECTIONS: &[&str] = &[
    "server",
    "oidc",
    "cookie",
    "session",
    "redis",
    "redirect",
    "authz",
    "headers",
    "log",
    "pages",
    "bearer",
    "upstreams",
];

/// A command-line override: a dotted key path and a value (TOML syntax when it parses
/// as TOML, a plain string otherwise).
#[derive(Debug, Clone)]
pub struct Override {
    /// Dotted path, e.g. `oidc.issuer_url`.
    pub key: String,
    /// The value, already typed.
    pub value: toml::Value,
}

impl std::str::FromStr for Override {
    type Err = String;

    /// Parses `key=value` as given to `--set`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key, raw) = s
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
        let key = key.trim();
        if key.is_empty()
            || !key
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(format!("invalid key {key:?}"));
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
        Ok(Self {
            key: key.to_owned(),
            value,
        })
    }
}

/// Everything that failed before validation could even start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// `--config` names a file that does not exist.
    #[error("configuration file {0} does not exist")]
    MissingFile(String),
    /// The merged layers do not fit the schema (unknown key, wrong type, bad TOML).
    #[error("{0}")]
    Figment(#[from] Box<figment::Error>),
}

/// Builds the layered figment. `env` is the environment to read (the process
/// environment in production; tests pass their own).
pub fn figment(file: Option<&Path>, overrides: &[Override]) -> Result<Figment, LoadError> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        if !path.exists() {
            return Err(LoadError::MissingFile(path.display().to_string()));
        }
        figment = figment.merge(Toml::file(path));
    }
    // Only variables naming a known section count, so unrelated `PORTCULLIS_*`
    // variables (the CLI's own `PORTCULLIS_CONFIG`, test settings) are not "unknown keys".
    figment = figment.merge(
        Env::prefixed(ENV_PREFIX)
            .filter(|k| {
                SECTIONS.iter().any(|s| {
                    k.as_str()
                        .to_ascii_lowercase()
                        .starts_with(&format!("{s}__"))
                })
            })
            .split("__"),
    );
    for o in overrides {
        figment = figment.merge(Serialized::default(&o.key, &o.value));
    }
    Ok(figment)
}

/// Loads the schema from all layers.
pub fn load(file: Option<&Path>, overrides: &[Override]) -> Result<Config, LoadError> {
    let config: Config = figment(file, overrides)?.extract().map_err(Box::new)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    // figment's Jail API returns its large error type by design.
    #![allow(clippy::unwrap_used, clippy::result_large_err)]
    use super::*;

    #[test]
    fn layers_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "p.toml",
                r#"
                [server]
                listen = "127.0.0.1:1111"
                [oidc]
                issuer_url = "https://file.example.com"
                client_id = "from-file"
                "#,
            )?;
            jail.set_env("PORTCULLIS_OIDC__CLIENT_ID", "from-env");
            jail.set_env("PORTCULLIS_CONFIG", "ignored.toml");
            jail.set_env("PORTCULLIS_COOKIE__DOMAINS", r#"[".a.com", ".b.com"]"#);
            let overrides = vec!["server.listen=127.0.0.1:2222".parse::<Override>().unwrap()];
            let c = load(Some(Path::new("p.toml")), &overrides).unwrap();
            assert_eq!(c.server.listen, "127.0.0.1:2222", "flag beats file");
            assert_eq!(
                c.oidc.issuer_url, "https://file.example.com",
                "file beats default"
            );
            assert_eq!(c.oidc.client_id, "from-env", "env beats file");
            assert_eq!(c.cookie.domains, vec![".a.com", ".b.com"]);
            assert_eq!(c.cookie.name, "_portcullis", "default kept");
            Ok(())
        });
    }

    #[test]
    fn missing_file_and_unknown_keys() {
        assert!(matches!(
            load(Some(Path::new("/nonexistent.toml")), &[]),
            Err(LoadError::MissingFile(_))
        ));
        figment::Jail::expect_with(|jail| {
            jail.create_file("p.toml", "[oidc]\nissuer_ulr = \"x\"\n")?;
            let err = load(Some(Path::new("p.toml")), &[])
                .unwrap_err()
                .to_string();
            assert!(err.contains("issuer_ulr"), "{err}");
            Ok(())
        });
    }

    /// Every key of the schema is documented in the example configuration.
    #[test]
    fn example_lists_every_key() {
        fn keys(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
            for (k, v) in table {
                let path = format!("{prefix}{k}");
                match v {
                    toml::Value::Table(t) => keys(&format!("{path}."), t, out),
                    _ => out.push(path),
                }
            }
        }
        let example: toml::Table = toml::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/portcullis.example.toml"
        )))
        .unwrap();
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        let (mut want, mut have) = (Vec::new(), Vec::new());
        keys("", &defaults, &mut want);
        keys("", &example, &mut have);
        let missing: Vec<&String> = want.iter().filter(|k| !have.contains(k)).collect();
        assert!(missing.is_empty(), "not in the example file: {missing:?}");
    }

    #[test]
    fn override_parsing() {
        let o: Override = "cookie.secure=false".parse().unwrap();
        assert_eq!(o.value, toml::Value::Boolean(false));
        let o: Override = "oidc.issuer_url=http://x:1/".parse().unwrap();
        assert_eq!(o.value, toml::Value::String("http://x:1/".into()));
        assert!("noequals".parse::<Override>().is_err());
        assert!("bad key=1".parse::<Override>().is_err());
    }
}

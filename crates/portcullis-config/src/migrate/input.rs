//! Reading oauth2-proxy's three sources the way it does: the TOML config file, then
//! `OAUTH2_PROXY_*` environment variables, then command-line flags (pflag syntax),
//! each replacing the value of the one before (viper's precedence). Values of unknown
//! names are never kept: only the name is reported.

use std::collections::BTreeMap;

use super::options::{Kind, Opt, by_cfg, by_flag};

/// A setting's value after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Bool(bool),
    /// Strings, durations and integers, as written.
    Str(String),
    List(Vec<String>),
}

/// Where a setting came from (what the output's comments cite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Flag(&'static str),
    Env(String),
    File(&'static str),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(name) => write!(f, "--{name}"),
            Origin::Env(var) => write!(f, "{var}"),
            Origin::File(key) => write!(f, "config file `{key}`"),
        }
    }
}

/// One oauth2-proxy option as finally set.
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    pub opt: &'static Opt,
    pub value: Value,
    pub origin: Origin,
}

impl Setting {
    /// The value as one string (a list joined with commas).
    pub fn text(&self) -> String {
        match &self.value {
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => s.clone(),
            Value::List(l) => l.join(","),
        }
    }

    /// The value as a list (a string is one item, an empty string none).
    pub fn list(&self) -> Vec<String> {
        match &self.value {
            Value::List(l) => l.clone(),
            Value::Str(s) if s.is_empty() => Vec::new(),
            Value::Str(s) => vec![s.clone()],
            Value::Bool(b) => vec![b.to_string()],
        }
    }

    /// The value as a boolean (Go's `strconv.ParseBool` forms; anything else false).
    pub fn flag(&self) -> bool {
        match &self.value {
            Value::Bool(b) => *b,
            Value::Str(s) => parse_bool(s).unwrap_or(false),
            Value::List(_) => false,
        }
    }
}

/// A problem with an input that is not a setting at all (reported, never dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejected {
    /// Where, e.g. `--cookie-secert` or `config file \`emial_domains\``.
    pub what: String,
    pub reason: String,
}

/// The merged sources.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    /// By config-file key.
    pub settings: BTreeMap<&'static str, Setting>,
    pub rejected: Vec<Rejected>,
    /// `--config FILE` among the flags.
    pub config_flag: Option<String>,
}

/// The input cannot be read at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    /// The config file is not TOML. Only the position and the parser's message are
    /// given: the offending line may hold a secret.
    #[error("the oauth2-proxy config file is not valid TOML (line {line}): {message}")]
    File { line: usize, message: String },
    /// A flag that takes a value was last on the command line.
    #[error("--{0} needs a value")]
    MissingValue(String),
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// pflag's `StringSlice`: one occurrence is a CSV record (commas split, double quotes
/// group).
fn csv_split(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Where a value came from, for messages about it.
fn describe(origin: &Origin) -> String {
    origin.to_string()
}

/// Reads `text` (a string from the environment or a flag) as `opt` expects, or says
/// why not (never quoting the value).
fn from_text(opt: &'static Opt, text: &str, origin: &Origin) -> Result<Value, Rejected> {
    let bad = |what: &str| Rejected {
        what: describe(origin),
        reason: format!("not {what}; oauth2-proxy would refuse to start"),
    };
    match opt.kind {
        Kind::Bool => parse_bool(text)
            .map(Value::Bool)
            .ok_or_else(|| bad("a boolean")),
        Kind::List => Ok(Value::List(
            text.split(',')
                .map(str::to_owned)
                .filter(|s| !s.is_empty())
                .collect(),
        )),
        Kind::Int if text.trim().parse::<i64>().is_err() => Err(bad("an integer")),
        Kind::Duration if super::duration::parse_go(text).is_none() => {
            Err(bad("a Go duration such as 168h"))
        }
        Kind::Str | Kind::Int | Kind::Duration => Ok(Value::Str(text.to_owned())),
    }
}

impl Merged {
    fn put(&mut self, opt: &'static Opt, value: Value, origin: Origin) {
        self.settings
            .insert(opt.cfg, Setting { opt, value, origin });
    }

    /// The config file's settings (lowest precedence).
    pub fn read_file(&mut self, text: &str) -> Result<(), InputError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| InputError::File {
            line: e.span().map_or(0, |s| {
                text[..s.start.min(text.len())].lines().count().max(1)
            }),
            message: e.message().to_owned(),
        })?;
        for (key, value) in table {
            let Some(opt) = by_cfg(&key) else {
                let hint = by_flag(&key.replace('_', "-"))
                    .or_else(|| by_cfg(&key.replace('-', "_")))
                    .map(|o| format!(" (the config-file key is `{}`)", o.cfg))
                    .unwrap_or_default();
                self.rejected.push(Rejected {
                    what: format!("config file `{key}`"),
                    reason: format!(
                        "unknown oauth2-proxy option{hint}; oauth2-proxy would refuse to start"
                    ),
                });
                continue;
            };
            let origin = Origin::File(opt.cfg);
            let parsed = match (opt.kind, value) {
                (Kind::Bool, toml::Value::Boolean(b)) => Ok(Value::Bool(b)),
                (Kind::List, toml::Value::Array(items)) => items
                    .into_iter()
                    .map(|v| match v {
                        toml::Value::String(s) => Ok(s),
                        _ => Err(()),
                    })
                    .collect::<Result<Vec<_>, ()>>()
                    .map(Value::List)
                    .map_err(|()| Rejected {
                        what: describe(&origin),
                        reason: "a list must hold strings only".into(),
                    }),
                (Kind::Int, toml::Value::Integer(i)) => Ok(Value::Str(i.to_string())),
                (_, toml::Value::String(s)) => from_text(opt, &s, &origin),
                _ => Err(Rejected {
                    what: describe(&origin),
                    reason: "has the wrong type; oauth2-proxy would refuse to start".into(),
                }),
            };
            match parsed {
                Ok(v) => self.put(opt, v, origin),
                Err(r) => self.rejected.push(r),
            }
        }
        Ok(())
    }

    /// `OAUTH2_PROXY_*` variables (over the file). Other variables are ignored, and so
    /// are empty ones, as viper does (`AllowEmptyEnv` is off).
    pub fn read_env(&mut self, env: &[(String, String)]) {
        for (var, value) in env {
            let Some(name) = var.strip_prefix("OAUTH2_PROXY_") else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            let key = name.to_ascii_lowercase();
            let Some(opt) = by_cfg(&key) else {
                let hint = by_flag(&key.replace('_', "-"))
                    .map(|o| {
                        format!(
                            " (oauth2-proxy reads OAUTH2_PROXY_{})",
                            o.cfg.to_ascii_uppercase()
                        )
                    })
                    .unwrap_or_default();
                self.rejected.push(Rejected {
                    what: var.clone(),
                    reason: format!(
                        "not an oauth2-proxy option{hint}; oauth2-proxy ignores it, so it is not translated"
                    ),
                });
                continue;
            };
            let origin = Origin::Env(var.clone());
            match from_text(opt, value, &origin) {
                Ok(v) => self.put(opt, v, origin),
                Err(r) => self.rejected.push(r),
            }
        }
    }

    /// Command-line flags (over everything). pflag syntax: `--name=value`,
    /// `--name value`, `--bool-flag`, `--bool-flag=false`; a repeated list flag adds
    /// to its list; `-name` (Go's `flag` syntax of old releases) is read the same way.
    pub fn read_flags(&mut self, args: &[String]) -> Result<(), InputError> {
        // Lists gather over all their occurrences before they replace lower layers.
        let mut lists: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if arg == "--" {
                for _ in &args[i..] {
                    self.rejected.push(Rejected {
                        what: "a positional argument".into(),
                        reason: "oauth2-proxy takes no positional arguments".into(),
                    });
                }
                break;
            }
            let Some(body) = arg
                .strip_prefix("--")
                .or_else(|| arg.strip_prefix('-').filter(|b| !b.is_empty()))
            else {
                self.rejected.push(Rejected {
                    what: "a positional argument".into(),
                    reason: "oauth2-proxy takes no positional arguments".into(),
                });
                continue;
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (body, None),
            };
            let meta = matches!(
                name,
                "config" | "alpha-config" | "version" | "convert-config-to-alpha" | "config-test"
            );
            let opt = by_flag(name);
            if opt.is_none() && !meta {
                let hint = by_cfg(&name.replace('-', "_"))
                    .map(|o| format!(" (the flag is --{})", o.flag))
                    .unwrap_or_default();
                self.rejected.push(Rejected {
                    what: format!("--{name}"),
                    reason: format!(
                        "unknown oauth2-proxy flag{hint}; oauth2-proxy would refuse to start"
                    ),
                });
                // An unknown flag's value (if separate) cannot be told from the next
                // flag; only `--name=value` keeps it attached.
                continue;
            }
            let is_bool = opt.is_some_and(|o| o.kind == Kind::Bool)
                || matches!(name, "version" | "convert-config-to-alpha" | "config-test");
            let value = match inline {
                Some(v) => v,
                None if is_bool => "true".to_owned(),
                None => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        v.clone()
                    }
                    None => return Err(InputError::MissingValue(name.to_owned())),
                },
            };
            let Some(opt) = opt else {
                match name {
                    "config" => self.config_flag = Some(value),
                    "alpha-config" => self.rejected.push(Rejected {
                        what: "--alpha-config".into(),
                        reason: "the alpha YAML configuration is not read; translate its legacy flags instead (oauth2-proxy --convert-config-to-alpha shows the mapping)".into(),
                    }),
                    _ => self.rejected.push(Rejected {
                        what: format!("--{name}"),
                        reason: "a command, not a setting: nothing to translate".into(),
                    }),
                }
                continue;
            };
            let origin = Origin::Flag(opt.flag);
            if opt.kind == Kind::List {
                lists.entry(opt.cfg).or_default().extend(csv_split(&value));
                continue;
            }
            match from_text(opt, &value, &origin) {
                Ok(v) => self.put(opt, v, origin),
                Err(r) => self.rejected.push(r),
            }
        }
        for (cfg, items) in lists {
            if let Some(opt) = by_cfg(cfg) {
                let items = items.into_iter().filter(|s| !s.is_empty()).collect();
                self.put(opt, Value::List(items), Origin::Flag(opt.flag));
            }
        }
        Ok(())
    }
}

//! Builds the Portcullis TOML: sections in the example file's order, each key with a
//! trailing comment naming its oauth2-proxy source and comment lines explaining any
//! change of meaning.

use std::collections::BTreeMap;

use super::report::{EnvNeed, Untranslated};

/// The sections, in the order of `config/portcullis.example.toml`.
pub(crate) const SECTIONS: &[&str] = &[
    "server", "oidc", "cookie", "session", "redis", "redirect", "authz", "headers", "log", "pages",
    "bearer",
];

#[derive(Debug, Default)]
struct Entry {
    comments: Vec<String>,
    /// `None`: comment lines only.
    line: Option<(String, toml::Value, String)>,
}

/// One `[[name]]` table.
#[derive(Debug, Default)]
pub(crate) struct Table {
    comments: Vec<String>,
    keys: Vec<(String, toml::Value, String)>,
}

impl Table {
    pub fn comment(&mut self, text: &str) {
        self.comments.push(text.to_owned());
    }

    pub fn set(&mut self, key: &str, value: toml::Value, source: &str) {
        self.keys.push((key.to_owned(), value, source.to_owned()));
    }
}

/// The output being built.
#[derive(Debug, Default)]
pub(crate) struct Out {
    sections: BTreeMap<&'static str, Vec<Entry>>,
    arrays: Vec<(&'static str, Table)>,
    pub untranslated: Vec<Untranslated>,
    pub env: Vec<EnvNeed>,
}

/// A string value.
pub(crate) fn s(v: &str) -> toml::Value {
    toml::Value::String(v.to_owned())
}

/// A list of strings.
pub(crate) fn list<I: IntoIterator<Item = S>, S: Into<String>>(v: I) -> toml::Value {
    toml::Value::Array(
        v.into_iter()
            .map(|x| toml::Value::String(x.into()))
            .collect(),
    )
}

impl Out {
    /// `section.key = value  # source`, with `why` as comment lines above it.
    pub fn set(
        &mut self,
        section: &'static str,
        key: &str,
        value: toml::Value,
        source: &str,
        why: &[&str],
    ) {
        self.sections.entry(section).or_default().push(Entry {
            comments: why.iter().map(|w| (*w).to_owned()).collect(),
            line: Some((key.to_owned(), value, source.to_owned())),
        });
    }

    /// Comment lines in `section` (what was deliberately not written, and why).
    pub fn note(&mut self, section: &'static str, text: &str) {
        self.sections.entry(section).or_default().push(Entry {
            comments: vec![text.to_owned()],
            line: None,
        });
    }

    /// Appends a `[[name]]` table.
    pub fn table(&mut self, name: &'static str, table: Table) {
        self.arrays.push((name, table));
    }

    /// Records a setting that cannot be translated.
    pub fn untranslated(&mut self, setting: &str, reason: &str) {
        self.untranslated.push(Untranslated {
            setting: setting.to_owned(),
            reason: reason.to_owned(),
        });
    }

    /// Records an environment variable the operator must set.
    pub fn need_env(&mut self, var: &str, from: &str) {
        self.env.push(EnvNeed {
            var: var.to_owned(),
            from: from.to_owned(),
        });
    }

    /// The TOML text.
    pub fn render(&self) -> String {
        let mut t = String::new();
        t.push_str("# Portcullis configuration, translated from oauth2-proxy by\n");
        t.push_str("# `portcullis config from-oauth2-proxy`. Each setting's comment names its\n");
        t.push_str(
            "# source; every key not written keeps its default (config/portcullis.example.toml).\n",
        );
        t.push_str("# Check it: portcullis config check --config <this file>\n");
        if !self.env.is_empty() {
            t.push_str(
                "#\n# Secrets are not written here. Before `config check` or `serve`, set:\n",
            );
            for e in &self.env {
                push_comment(&mut t, &format!("  {}  <- {}", e.var, e.from));
            }
        }
        if !self.untranslated.is_empty() {
            t.push_str("#\n# NOT translated (review each before switching):\n");
            for u in &self.untranslated {
                push_comment(&mut t, &format!("  - {}: {}", u.setting, u.reason));
            }
        }
        for section in SECTIONS {
            let Some(entries) = self.sections.get(section) else {
                continue;
            };
            t.push_str(&format!("\n[{section}]\n"));
            for e in entries {
                for c in &e.comments {
                    push_comment(&mut t, c);
                }
                if let Some((key, value, source)) = &e.line {
                    t.push_str(&format!("{key} = {value}  # {}\n", one_line(source)));
                }
            }
        }
        for (name, table) in &self.arrays {
            t.push_str(&format!("\n[[{name}]]\n"));
            for c in &table.comments {
                push_comment(&mut t, c);
            }
            for (key, value, source) in &table.keys {
                t.push_str(&format!("{key} = {value}  # {}\n", one_line(source)));
            }
        }
        t
    }
}

/// `# text`, one comment line per line of `text`.
fn push_comment(t: &mut String, text: &str) {
    for line in text.lines() {
        t.push_str("# ");
        t.push_str(&one_line(line));
        t.push('\n');
    }
}

/// Control characters (a stray `\r` would end a TOML comment) as `?`.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

//! Validation problems, collected rather than returned one at a time.

use std::time::Duration;

/// One configuration problem: the key and what is wrong. Never contains secret values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path.
    pub key: String,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

pub(crate) struct Errors(pub(crate) Vec<ConfigError>);

impl Errors {
    pub(crate) fn push(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(ConfigError {
            key: key.to_owned(),
            message: message.into(),
        });
    }
}

pub(crate) fn positive(errors: &mut Errors, key: &str, d: Duration, min: Duration) {
    if d < min {
        errors.push(key, format!("must be at least {}s", min.as_secs()));
    }
}

//! What a translation hands back: the Portcullis TOML, what could not be translated
//! (and why), and what the operator must set in the environment before it runs.

/// An oauth2-proxy setting (or unknown input) that has no Portcullis equivalent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untranslated {
    /// Where it came from: `--flag`, `OAUTH2_PROXY_…` or the config file's key.
    pub setting: String,
    /// Why it is not translated and what to do instead.
    pub reason: String,
}

/// An environment variable Portcullis needs, because its value is a secret that the
/// output must not contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvNeed {
    /// e.g. `PORTCULLIS_OIDC__CLIENT_SECRET`.
    pub var: String,
    /// Where its value comes from, e.g. "the value of OAUTH2_PROXY_CLIENT_SECRET".
    pub from: String,
}

/// The result of [`translate`](super::translate).
#[derive(Debug, Clone)]
pub struct Translation {
    /// Portcullis TOML; every translated key carries a comment naming its source.
    /// Never contains a secret.
    pub toml: String,
    /// Settings that could not be translated; empty means everything was.
    pub untranslated: Vec<Untranslated>,
    /// Variables to set for Portcullis (the file passes `portcullis config check`
    /// once they are set).
    pub env: Vec<EnvNeed>,
    /// The config file named by a `--config` among the flags, for the caller to read.
    pub config_flag: Option<String>,
}

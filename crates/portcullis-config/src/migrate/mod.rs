//! `portcullis config from-oauth2-proxy`: oauth2-proxy's configuration (its TOML
//! config file, `OAUTH2_PROXY_*` environment variables and flags, merged in its
//! precedence: flags > environment > file) translated into Portcullis TOML.
//!
//! Pure: text in, text out. Translation is by meaning (what oauth2-proxy admitted is
//! what Portcullis admits); secrets are never written, only the environment variable
//! to set; what has no equivalent is listed with the reason, never dropped, and
//! access restrictions that cannot be translated make the output admit nobody.

mod ctx;
mod duration;
mod emit;
mod identity;
mod input;
mod leftover;
mod options;
mod policy;
mod report;
mod serving;

pub use input::InputError;
pub use report::{EnvNeed, Translation, Untranslated};

/// The three sources, as oauth2-proxy would read them.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// The config file's text (`--config`), if any.
    pub file: Option<String>,
    /// Environment variables; only `OAUTH2_PROXY_*` ones are read.
    pub env: Vec<(String, String)>,
    /// The command-line flags (without the program name).
    pub args: Vec<String>,
}

/// Translates oauth2-proxy's configuration. Fails only when an input cannot be read at
/// all (the file is not TOML, a flag lacks its value).
pub fn translate(src: &Sources) -> Result<Translation, InputError> {
    let mut merged = input::Merged::default();
    if let Some(text) = &src.file {
        merged.read_file(text)?;
    }
    merged.read_env(&src.env);
    merged.read_flags(&src.args)?;
    let input::Merged {
        settings,
        rejected,
        config_flag,
    } = merged;
    let client_id = settings.get("client_id").map(input::Setting::text);
    let mut c = ctx::Ctx::new(settings);
    for r in rejected {
        c.out.untranslated(&r.what, &r.reason);
    }
    identity::oidc(&mut c);
    identity::cookie(&mut c);
    identity::session(&mut c);
    serving::server(&mut c);
    serving::redis(&mut c);
    serving::upstreams(&mut c);
    serving::headers(&mut c);
    serving::log_and_pages(&mut c);
    policy::redirect(&mut c);
    policy::authz(&mut c);
    policy::skip_auth(&mut c);
    policy::bearer(&mut c, client_id.as_deref());
    leftover::finish(&mut c);
    Ok(Translation {
        toml: c.out.render(),
        untranslated: c.out.untranslated,
        env: c.out.env,
        config_flag,
    })
}

#[cfg(test)]
mod tests;

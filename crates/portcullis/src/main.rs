//! `portcullis`: single sign-on in front of every cluster's dashboard.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis_config::{Override, load, validate};

#[derive(Parser, Debug)]
#[command(
    name = "portcullis",
    version,
    about = "Central OIDC auth-request proxy for Kubernetes dashboards"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, short, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    /// Override any key: `--set oidc.issuer_url=https://dex.example.com` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<Override>,
    /// Shorthand for `--set server.listen=ADDR`.
    #[arg(long)]
    listen: Option<String>,
}

impl ConfigArgs {
    fn overrides(&self) -> Vec<Override> {
        let mut o = self.set.clone();
        if let Some(listen) = &self.listen {
            o.push(Override {
                key: "server.listen".into(),
                value: toml::Value::String(listen.clone()),
            });
        }
        o
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Serve(ConfigArgs),
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a new random cookie secret (base64 of 32 bytes).
    Secret,
    /// List or revoke server-side sessions (needs `session.store = "redis"`).
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// kubectl sign-in (client side): `login`, `kubectl-credential`, `logout`.
    #[command(flatten)]
    Kubectl(portcullis_kubectl::Command),
}

#[derive(Subcommand, Debug)]
enum SessionsCommand {
    /// List the sessions of a user.
    List {
        /// The user, as the username claim names them (default: their email).
        #[arg(long)]
        user: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Revoke sessions: every session of a user, or one by id. Every replica refuses
    /// them from the next request.
    Revoke {
        /// Revoke every session of this user.
        #[arg(long, conflicts_with = "id", required_unless_present = "id")]
        user: Option<String>,
        /// Revoke this session id (from `sessions list`).
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Load and validate the configuration, printing every problem (exit status 2 if any).
    Check(ConfigArgs),
    /// Translate an oauth2-proxy configuration into Portcullis TOML
    ///
    /// Reads oauth2-proxy's config file (--config), its OAUTH2_PROXY_* environment
    /// variables (from this process, unless --no-env; and from --env-file) and its
    /// flags (after `--`), merged as oauth2-proxy does: flags over environment over
    /// file. Writes the TOML to stdout (or -o), each setting commented with its
    /// source. Secrets are never written: the output names the PORTCULLIS_*
    /// variables to set instead. Settings without an equivalent are listed on stderr
    /// with the reason; restrictions that cannot be translated make the output admit
    /// nobody until edited. Exit status: 0 all translated, 2 something was not,
    /// 1 the input could not be read.
    ///
    /// Example: portcullis config from-oauth2-proxy --config oauth2-proxy.cfg -o
    /// portcullis.toml -- --provider=oidc --email-domain='*'
    #[command(name = "from-oauth2-proxy", verbatim_doc_comment)]
    FromOauth2Proxy(MigrateArgs),
}

#[derive(clap::Args, Debug)]
struct MigrateArgs {
    /// oauth2-proxy's TOML config file (what it reads with --config).
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// KEY=VALUE lines (e.g. a Kubernetes env rendered to a file, `docker --env-file`)
    /// read as oauth2-proxy's environment, over the process environment.
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// Ignore OAUTH2_PROXY_* variables of this process.
    #[arg(long)]
    no_env: bool,
    /// Write the TOML here instead of stdout.
    #[arg(long, short, value_name = "OUT")]
    output: Option<PathBuf>,
    /// oauth2-proxy's command-line flags, after `--`.
    #[arg(
        last = true,
        value_name = "OAUTH2_PROXY_FLAGS",
        allow_hyphen_values = true
    )]
    flags: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Secret => match portcullis_session::Key::generate() {
            Ok(k) => {
                println!("{}", k.to_base64());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Config {
            command: ConfigCommand::Check(args),
        } => match load_settings(&args) {
            Ok(_) => {
                println!("configuration OK");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Config {
            command: ConfigCommand::FromOauth2Proxy(args),
        } => from_oauth2_proxy(&args),
        Command::Sessions { command } => sessions(command),
        Command::Kubectl(command) => match portcullis_kubectl::run(command) {
            0 => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        },
        Command::Serve(args) => {
            let settings = match load_settings(&args) {
                Ok(s) => s,
                Err(code) => return code,
            };
            // Held until main returns, so buffered log lines are flushed at exit.
            let _log_guard = portcullis::init_logging(&settings.log_level, settings.log_format);
            let runtime = match runtime(serving_runtime(settings.serving.worker_threads)) {
                Ok(r) => r,
                Err(code) => return code,
            };
            match runtime.block_on(run(settings)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "portcullis stopped with an error");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `config from-oauth2-proxy`: reads the sources, writes the TOML, lists on stderr
/// what was not translated and which variables to set (names only, never values).
fn from_oauth2_proxy(args: &MigrateArgs) -> ExitCode {
    use portcullis_config::migrate::{Sources, translate};
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|e| {
            eprintln!("error: cannot read {}: {e}", path.display());
            ExitCode::FAILURE
        })
    };
    let mut src = Sources {
        args: args.flags.clone(),
        ..Sources::default()
    };
    if !args.no_env {
        src.env = std::env::vars()
            .filter(|(k, _)| k.starts_with("OAUTH2_PROXY_"))
            .collect();
    }
    if let Some(path) = &args.env_file {
        let text = match read(path) {
            Ok(t) => t,
            Err(code) => return code,
        };
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim();
                let unquoted = v
                    .strip_prefix('"')
                    .and_then(|x| x.strip_suffix('"'))
                    .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                    .unwrap_or(v);
                src.env.push((k.trim().to_owned(), unquoted.to_owned()));
            }
        }
    }
    // Our --config, else a --config among oauth2-proxy's own flags.
    let from_flags = args.config.is_none();
    let file = args.config.clone().or_else(|| {
        translate(&src)
            .ok()
            .and_then(|t| t.config_flag)
            .map(PathBuf::from)
    });
    if let Some(path) = &file {
        match read(path) {
            Ok(t) => src.file = Some(t),
            Err(code) => {
                if from_flags {
                    eprintln!(
                        "(named by --config among oauth2-proxy's flags: give a local copy with --config before `--`)"
                    );
                }
                return code;
            }
        }
    }
    let t = match translate(&src) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let written = match &args.output {
        Some(path) => std::fs::write(path, &t.toml)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(t.toml.as_bytes())
                .map_err(|e| e.to_string())
        }
    };
    if let Err(e) = written {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    if !t.env.is_empty() {
        eprintln!("Set before `portcullis config check` / `serve` (secrets are not in the file):");
        for e in &t.env {
            eprintln!("  {}  <- {}", e.var, e.from);
        }
    }
    if t.untranslated.is_empty() {
        eprintln!("Every setting was translated.");
        return ExitCode::SUCCESS;
    }
    eprintln!("{} setting(s) not translated:", t.untranslated.len());
    for u in &t.untranslated {
        eprintln!("  - {}: {}", u.setting, u.reason);
    }
    ExitCode::from(2)
}

/// Loads and validates; on failure prints every problem and returns exit status 2.
fn load_settings(args: &ConfigArgs) -> Result<portcullis_config::Settings, ExitCode> {
    let config = load(args.config.as_deref(), &args.overrides()).map_err(|e| {
        eprintln!("configuration error: {e}");
        ExitCode::from(2)
    })?;
    validate(&config).map_err(|errors| {
        eprintln!("configuration has {} problem(s):", errors.len());
        for e in &errors {
            eprintln!("  - {e}");
        }
        ExitCode::from(2)
    })
}

/// The runtime that serves: one thread needs no scheduler shared between threads, so
/// `worker_threads = 1` gets the single-threaded runtime; 0 leaves Tokio's default
/// (one worker per CPU the process may use).
fn serving_runtime(worker_threads: usize) -> tokio::runtime::Builder {
    match worker_threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if n > 1 {
                builder.worker_threads(n);
            }
            builder
        }
    }
}

/// Builds a Tokio runtime, or reports why not (exit status 1).
fn runtime(mut builder: tokio::runtime::Builder) -> Result<tokio::runtime::Runtime, ExitCode> {
    builder.enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the runtime: {e}");
        ExitCode::FAILURE
    })
}

/// An operator's revocation on the audit trail (stderr, JSON: the CLI's stdout is
/// its answer).
fn audit_revoke(state: &portcullis_http::AppState, user: &str, id: Option<&str>, detail: &str) {
    use portcullis_core::audit::{AuditEvent, Event, Outcome};
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "off,portcullis::audit=info",
        ))
        .try_init();
    let mut event = Event::new(AuditEvent::Revoke, Outcome::Success)
        .user(user)
        .detail(detail);
    if let Some(id) = id {
        event = event.session(id);
    }
    event.emit(&**state.sessions.observer());
}

fn sessions(command: SessionsCommand) -> ExitCode {
    let args = match &command {
        SessionsCommand::List { config, .. } | SessionsCommand::Revoke { config, .. } => config,
    };
    let settings = match load_settings(args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let runtime = match runtime(tokio::runtime::Builder::new_current_thread()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let state = match portcullis::state(&settings).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let portcullis_session::store::AnyStore::Redis(store) = state.sessions.store() else {
            eprintln!(
                "error: sessions live in cookies (session.store = \"cookie\"); listing and revocation need session.store = \"redis\""
            );
            return ExitCode::from(2);
        };
        let result = match command {
            SessionsCommand::List { user, .. } => store.list_user(&user).await.map(|list| {
                println!(
                    "{:<24} {:<8} {:<12} {:<12} {:<12} CLIENT",
                    "SESSION ID", "KIND", "CREATED", "EXPIRES", "LAST USED"
                );
                for s in &list {
                    let last = s.last_used.map_or("-".to_owned(), |t| t.to_string());
                    println!(
                        "{:<24} {:<8} {:<12} {:<12} {:<12} {}",
                        s.id, s.kind, s.created_at, s.expires_at, last, s.client
                    );
                }
                println!("{} session(s) for {user}", list.len());
            }),
            SessionsCommand::Revoke { user: Some(user), .. } => {
                store.revoke_user(&user).await.map(|n| {
                    audit_revoke(&state, &user, None, &format!("{n} session(s)"));
                    println!("revoked {n} session(s) of {user}");
                })
            }
            SessionsCommand::Revoke { id: Some(id), .. } => store.revoke_id(&id).await.map(|found| {
                if found {
                    audit_revoke(&state, "", Some(&id), "by id");
                    println!("revoked session {id}");
                } else {
                    println!("no session {id}");
                }
            }),
            SessionsCommand::Revoke { .. } => {
                eprintln!("error: give --user or --id");
                return ExitCode::from(2);
            }
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn run(settings: portcullis_config::Settings) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    let state = portcullis::state(&settings).await?;
    portcullis::serve(listener, state, settings, portcullis::shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::runtime::RuntimeFlavor;

    fn built(worker_threads: usize) -> tokio::runtime::Runtime {
        runtime(serving_runtime(worker_threads)).expect("runtime")
    }

    #[test]
    fn worker_threads_choose_the_runtime() {
        let one = built(1);
        assert_eq!(one.handle().runtime_flavor(), RuntimeFlavor::CurrentThread);
        let three = built(3);
        assert_eq!(three.handle().runtime_flavor(), RuntimeFlavor::MultiThread);
        assert_eq!(three.metrics().num_workers(), 3);
        let per_cpu = built(0);
        assert_eq!(
            per_cpu.handle().runtime_flavor(),
            RuntimeFlavor::MultiThread
        );
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(per_cpu.metrics().num_workers(), cpus);
    }
}

//! The command-line half of Portcullis: kubectl signs in through the central server,
//! so no laptop holds a client secret or talks to the provider.
//!
//! - [`login`]: `portcullis login --server URL [CLUSTERS…]`: a loopback redirect with
//!   PKCE (RFC 8252) through the user's browser, then kubeconfig for the clusters.
//! - [`credential`]: `portcullis kubectl-credential --server URL`, the exec plugin
//!   kubectl runs: a cached ID token, refreshed through Portcullis a little before it
//!   expires, one refresh at a time across parallel kubectl calls (a file lock).
//! - [`device`]: `portcullis login --device`: a code typed in a browser elsewhere
//!   (RFC 8628), for machines with no browser.
//! - [`kubeconfig`]: merging our entries into a kubeconfig, keeping everything else.
//! - [`cache`]: the per-server token cache under `~/.kube/cache/portcullis/`.
//! - [`server`]: the HTTP calls to Portcullis.
//!
//! It depends on no server crate: it speaks to Portcullis over HTTP only.

pub mod cache;
pub mod credential;
pub mod device;
mod host;
pub mod kubeconfig;
pub mod login;
pub mod server;

/// The subcommands this crate adds to `portcullis`.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Sign kubectl in through Portcullis and write kubeconfig for your clusters.
    Login(login::LoginArgs),
    /// The kubectl exec credential plugin (kubeconfig runs it; not for people).
    KubectlCredential {
        /// The Portcullis server (`https://auth.example.com`).
        #[arg(long)]
        server: String,
    },
    /// End the CLI session on the server and forget the cached token.
    Logout {
        /// The Portcullis server.
        #[arg(long)]
        server: String,
    },
}

/// Runs a subcommand; the process's exit status.
pub fn run(command: Command) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Login(args) => login::login(args).await,
            Command::KubectlCredential { server } => credential::credential(&server).await,
            Command::Logout { server } => credential::logout(&server).await,
        }
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("portcullis: {e}");
            1
        }
    }
}

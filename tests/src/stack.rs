//! The deployment the issue describes, on loopback: the provider, one central
//! Portcullis behind nginx, and the dashboards of two clusters
//! (`dashboard.c1.example.test`, `dashboard.c2.example.test`).

use crate::dashboard::Dashboard;
use crate::idp::{CLIENT_ID, Idp, IdpOptions};
use crate::nginx::{Nginx, Site};
use crate::portcullis_server::{Options, Portcullis};

/// Everything running; stopped on drop.
#[derive(Debug)]
pub struct Clusters {
    /// The provider.
    pub idp: Idp,
    /// Portcullis, trusting nginx (127.0.0.1) for forwarded headers.
    pub portcullis: Portcullis,
    /// nginx with the deploy snippets; every host listens on `nginx.port`.
    pub nginx: Nginx,
    /// The dashboards of c1 and c2.
    pub dashboards: Vec<Dashboard>,
}

impl Clusters {
    /// Starts the stack; `extra` is TOML merged into Portcullis' settings. `None`
    /// (skip) when a component is missing outside CI.
    pub async fn start(extra: &str) -> Option<Self> {
        Self::start_with(IdpOptions::default(), extra).await
    }

    /// [`Clusters::start`] with provider options (short token lifetimes…).
    pub async fn start_with(idp: IdpOptions, extra: &str) -> Option<Self> {
        let idp = Idp::start(idp).await?;
        let nginx_port = crate::free_port();
        let portcullis = Portcullis::start(Options {
            public_port: Some(nginx_port),
            ..Options::new(&idp.issuer).with(&format!(
                "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n{extra}"
            ))
        })
        .await;
        let mut dashboards = Vec::new();
        let mut sites = Vec::new();
        for name in ["c1", "c2"] {
            let d = Dashboard::start(name, &idp.issuer, CLIENT_ID).await;
            sites.push(Site {
                host: format!("dashboard.{name}.example.test"),
                upstream_port: d.port,
            });
            dashboards.push(d);
        }
        let nginx = Nginx::start(nginx_port, portcullis.addr.port(), &sites).await?;
        Some(Self {
            idp,
            portcullis,
            nginx,
            dashboards,
        })
    }

    /// `http://dashboard.<cluster>.example.test:<nginx port><path>`.
    pub fn url(&self, cluster: &str, path: &str) -> String {
        format!(
            "http://dashboard.{cluster}.example.test:{}{path}",
            self.nginx.port
        )
    }
}

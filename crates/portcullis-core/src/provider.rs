//! The provider handle: discovered in the background with back-off, so the process
//! starts (and reports not-ready on `/ready`) while the provider is unreachable, rather
//! than crash-looping.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use portcullis_oidc::{OidcSettings, Provider};

use crate::observe::{self, Observer, ProviderCall};

/// Holds the provider once discovery has succeeded.
#[derive(Debug, Default)]
pub struct ProviderSlot {
    cell: OnceLock<Arc<Provider>>,
}

impl ProviderSlot {
    /// The provider, if discovered.
    pub fn get(&self) -> Option<&Arc<Provider>> {
        self.cell.get()
    }

    /// Installs a provider (the first call wins).
    pub fn set(&self, provider: Arc<Provider>) {
        let _ = self.cell.set(provider);
    }
}

/// Runs discovery until it succeeds: 0.5 s, doubling to at most 30 s between attempts.
pub async fn discover_until_ready(
    slot: &ProviderSlot,
    settings: OidcSettings,
    observer: Arc<dyn Observer>,
) {
    let mut delay = Duration::from_millis(500);
    let mut attempt = 1u32;
    loop {
        match observe::provider(
            &*observer,
            ProviderCall::Discovery,
            Provider::discover(settings.clone()),
        )
        .await
        {
            Ok(provider) => {
                tracing::info!(issuer = %settings.issuer_url, attempt, "provider discovered; ready");
                provider.observe_jwks_fetches(observe::jwks_observer(Arc::clone(&observer)));
                slot.set(Arc::new(provider));
                return;
            }
            Err(e) => {
                tracing::warn!(issuer = %settings.issuer_url, attempt, retry_in_ms = delay.as_millis() as u64, error = %e, "provider discovery failed; not ready");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
        attempt += 1;
    }
}

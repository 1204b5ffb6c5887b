//! The cookie store: the session itself, sealed, is the cookie value.

use std::sync::Arc;

use super::contract::{SessionStore, StoreError};
use crate::{Keyring, SessionState};

/// Seals whole sessions into cookie values under the cookie's name.
#[derive(Debug, Clone)]
pub struct CookieStore {
    keyring: Arc<Keyring>,
    name: String,
}

impl CookieStore {
    /// A store sealing with `keyring`, binding values to the cookie `name`.
    pub fn new(keyring: Arc<Keyring>, name: &str) -> Self {
        Self {
            keyring,
            name: name.to_owned(),
        }
    }

    fn seal(&self, session: &SessionState) -> Result<String, StoreError> {
        self.keyring
            .seal_json(&self.name, session)
            .map_err(StoreError::Seal)
    }
}

impl SessionStore for CookieStore {
    async fn create(&self, session: &SessionState, _user: &str) -> Result<String, StoreError> {
        self.seal(session)
    }

    async fn load(&self, cookie: &str) -> Result<Option<SessionState>, StoreError> {
        self.keyring
            .open_json(&self.name, cookie)
            .map(Some)
            .map_err(StoreError::Undecodable)
    }

    async fn update(&self, _cookie: &str, session: &SessionState) -> Result<String, StoreError> {
        self.seal(session)
    }

    /// Nothing to delete server-side: the caller expires the cookie.
    async fn delete(&self, _cookie: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

//! The translation's working state: the merged oauth2-proxy settings still to be
//! handled, and the output being built. Each translator `take`s what it handles, so
//! whatever is left at the end is reported, never silently dropped.

use std::collections::BTreeMap;

use super::emit::Out;
use super::input::Setting;

/// The address that admits nobody: written when the source restricted access in a way
/// that is not translated, so the output fails closed until an operator decides.
pub(crate) const NOBODY: &str = "nobody@admits-nobody.invalid";

#[derive(Debug)]
pub(crate) struct Ctx {
    settings: BTreeMap<&'static str, Setting>,
    pub out: Out,
    /// Why access was closed (see [`NOBODY`]).
    pub closed: Vec<String>,
    /// `session_store_type = redis` was given.
    pub redis_store: bool,
}

impl Ctx {
    pub fn new(settings: BTreeMap<&'static str, Setting>) -> Self {
        Self {
            settings,
            out: Out::default(),
            closed: Vec::new(),
            redis_store: false,
        }
    }

    /// Removes and returns the setting with config key `cfg`, if it was given.
    pub fn take(&mut self, cfg: &str) -> Option<Setting> {
        self.settings.remove(cfg)
    }

    /// A boolean setting's value, `default` when not given; taken.
    pub fn take_flag(&mut self, cfg: &str, default: bool) -> (bool, Option<Setting>) {
        let s = self.take(cfg);
        (s.as_ref().map_or(default, Setting::flag), s)
    }

    /// Records that access must stay closed until `why` is dealt with.
    pub fn fail_closed(&mut self, why: &str) {
        self.closed.push(why.to_owned());
    }

    /// What no translator took.
    pub fn rest(&mut self) -> Vec<Setting> {
        std::mem::take(&mut self.settings).into_values().collect()
    }
}

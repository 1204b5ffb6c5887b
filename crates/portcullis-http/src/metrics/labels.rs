//! Label sets and the closed enums the face records (the core's own enums,
//! `portcullis_core::observe`, name themselves with `as_str`).

use std::sync::Arc;

use http::StatusCode;
use portcullis_oidc::OidcError;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

/// A `&'static str` label value; the enums below turn into these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Name(pub(crate) &'static str);

impl EncodeLabelValue for Name {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.0, encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct HttpLabels {
    pub(crate) route: Arc<str>,
    pub(crate) method: Name,
    pub(crate) status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub(crate) route: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct DecisionLabels {
    pub(crate) decision: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct LoginLabels {
    pub(crate) outcome: Name,
    pub(crate) reason: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct AuditLabels {
    pub(crate) event: Name,
    pub(crate) outcome: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    pub(crate) outcome: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct StoreLabels {
    pub(crate) store: Name,
    pub(crate) op: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct CallLabels {
    pub(crate) call: Name,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct VersionLabels {
    pub(crate) version: Name,
}

/// What an auth endpoint answered. `/oauth2/auth` records one per request; a future
/// forward-auth endpoint records the same with [`Metrics::auth_decision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// 2xx: the user passes.
    Allowed,
    /// 401: no usable session.
    Unauthenticated,
    /// 403: signed in, refused by policy.
    Denied,
    /// Anything else (503 while the store is down, timeouts).
    Error,
}

impl Decision {
    pub(crate) const ALL: [Decision; 4] = [
        Decision::Allowed,
        Decision::Unauthenticated,
        Decision::Denied,
        Decision::Error,
    ];

    /// The decision an auth endpoint's status stands for.
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            s if s.is_success() => Decision::Allowed,
            StatusCode::UNAUTHORIZED => Decision::Unauthenticated,
            StatusCode::FORBIDDEN => Decision::Denied,
            _ => Decision::Error,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Unauthenticated => "unauthenticated",
            Decision::Denied => "denied",
            Decision::Error => "error",
        }
    }
}

/// Why a login failed (the `reason` label of `portcullis_logins_total{outcome="failed"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// The callback's state matched no login cookie (another browser, a replay).
    StateMismatch,
    /// The login attempt outlived `cookie.csrf_expire`.
    Expired,
    /// The callback lacked its code or state.
    InvalidRequest,
    /// The provider failed, refused the code, or its answer did not verify.
    ProviderError,
    /// The provider says the email is not verified.
    EmailUnverified,
    /// The user, or authz, refused access.
    Denied,
    /// The ID token lacks the username claim.
    NoIdentity,
    /// The session could not be stored.
    StoreError,
    /// Everything else (no randomness, a session too large for cookies…).
    Internal,
}

impl LoginFailure {
    pub(crate) const ALL: [LoginFailure; 9] = [
        LoginFailure::StateMismatch,
        LoginFailure::Expired,
        LoginFailure::InvalidRequest,
        LoginFailure::ProviderError,
        LoginFailure::EmailUnverified,
        LoginFailure::Denied,
        LoginFailure::NoIdentity,
        LoginFailure::StoreError,
        LoginFailure::Internal,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            LoginFailure::StateMismatch => "state_mismatch",
            LoginFailure::Expired => "expired",
            LoginFailure::InvalidRequest => "invalid_request",
            LoginFailure::ProviderError => "provider_error",
            LoginFailure::EmailUnverified => "email_unverified",
            LoginFailure::Denied => "denied",
            LoginFailure::NoIdentity => "no_identity",
            LoginFailure::StoreError => "store_error",
            LoginFailure::Internal => "internal",
        }
    }

    /// The failure a code-exchange error stands for.
    pub fn from_oidc(e: &OidcError) -> Self {
        match e {
            OidcError::EmailNotVerified => LoginFailure::EmailUnverified,
            OidcError::Config(_) => LoginFailure::Internal,
            _ => LoginFailure::ProviderError,
        }
    }
}

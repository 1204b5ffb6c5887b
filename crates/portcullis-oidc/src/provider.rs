//! The discovered provider and the operations Portcullis needs from it.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use openidconnect::core::{
    CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl, JsonWebKeySetUrl, Nonce,
    PkceCodeChallenge, SignatureVerificationError,
};
use serde::Deserialize;
use url::Url;

use crate::claims::Claims;
use crate::http_client::{self, TransportError};

/// Least time between two JWKS fetches triggered by an unknown `kid`, so tokens with
/// made-up key ids cannot make us hammer the provider.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Largest token response we read (a token response is a few KiB).
const MAX_TOKEN_RESPONSE: usize = 256 * 1024;

/// What the relying party needs to know, built by `portcullis-config`.
#[derive(Clone)]
pub struct OidcSettings {
    /// The issuer, exactly as it appears in the provider's `iss` claim.
    pub issuer_url: String,
    /// This client's id at the provider (for Dex: a static client).
    pub client_id: String,
    /// This client's secret; sent with HTTP Basic to the token endpoint.
    pub client_secret: String,
    /// Where the provider sends the browser back (`/oauth2/callback` on the auth host).
    pub redirect_url: String,
    /// Scopes requested at login. `openid` is added when missing.
    pub scopes: Vec<String>,
    /// Bound on every provider call.
    pub timeout: Duration,
    /// Accept ID tokens whose `email_verified` is `false` (default: refuse).
    pub allow_unverified_email: bool,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_url", &self.redirect_url)
            .field("scopes", &self.scopes)
            .field("timeout", &self.timeout)
            .field("allow_unverified_email", &self.allow_unverified_email)
            .finish()
    }
}

/// Why a provider operation failed. The variants say *who* failed, which decides the
/// status a user sees: the provider being down is a 502, a refused grant ends a session.
/// Display strings never contain tokens, codes or secrets.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// A setting is unusable (bad URL).
    #[error("invalid OIDC setting: {0}")]
    Config(String),
    /// Discovery or JWKS could not be fetched or parsed.
    #[error("provider discovery failed: {0}")]
    Discovery(String),
    /// The provider could not be reached, timed out, or answered 5xx.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The token endpoint refused the grant with an OAuth error (RFC 6749 §5.2), e.g.
    /// `invalid_grant` for a used code or a rotated-away refresh token.
    #[error("provider refused the grant: {error} (HTTP {status})")]
    Rejected {
        /// The OAuth `error` code.
        error: String,
        /// HTTP status of the refusal.
        status: u16,
    },
    /// The token response was not what the protocol requires (no `id_token`, bad JSON).
    #[error("provider sent an invalid token response: {0}")]
    InvalidResponse(String),
    /// The ID token failed verification (signature, `iss`, `aud`, `exp`, `nonce`).
    #[error("ID token verification failed: {0}")]
    Verify(String),
    /// `email_verified` is false and unverified emails are not allowed.
    #[error("the provider says the user's email is not verified")]
    EmailNotVerified,
}

impl OidcError {
    /// Whether this is the provider being unreachable or broken, as opposed to a refusal.
    pub fn is_outage(&self) -> bool {
        matches!(self, OidcError::Unavailable(_) | OidcError::Discovery(_))
    }
}

/// The start of one login: the URL to send the browser to, and the secrets to keep (in
/// the per-attempt CSRF cookie) until the callback.
#[derive(Clone)]
pub struct AuthRequest {
    /// The provider's authorization URL with all parameters.
    pub url: Url,
    /// The `state` parameter, echoed by the provider (CSRF protection, RFC 6749 §10.12).
    pub state: String,
    /// The `nonce` bound into the ID token (OIDC Core §3.1.2.1).
    pub nonce: String,
    /// The PKCE verifier (RFC 7636), sent at code exchange.
    pub pkce_verifier: String,
}

/// Tokens from a successful code exchange or refresh, the ID token already verified.
#[derive(Clone)]
pub struct TokenSet {
    /// The raw ID token.
    pub id_token: String,
    /// Its `exp` (unix seconds).
    pub id_token_expires_at: u64,
    /// The refresh token, if the provider issued one.
    pub refresh_token: Option<String>,
    /// The verified claims.
    pub claims: Claims,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("id_token_expires_at", &self.id_token_expires_at)
            .field("refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// How long a reachability probe's answer is reused (logins are rare; a stale "up"
/// would send browsers to a dead provider).
const PROBE_TTL: Duration = Duration::from_secs(1);
/// Bound on one probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

struct JwksCache {
    keys: Arc<CoreJsonWebKeySet>,
    fetched_at: Instant,
}

/// A discovered provider. Cheap to share (`Arc<Provider>`); all methods take `&self`.
pub struct Provider {
    settings: OidcSettings,
    http: reqwest::Client,
    issuer: IssuerUrl,
    authorization_endpoint: Url,
    token_endpoint: Url,
    jwks_uri: JsonWebKeySetUrl,
    signing_algs: Vec<CoreJwsSigningAlgorithm>,
    jwks: RwLock<JwksCache>,
    probe: std::sync::Mutex<Option<(Instant, bool)>>,
    jwks_observer: std::sync::OnceLock<JwksObserver>,
}

/// Told of every key-set refetch: when it started and whether it failed. A plain
/// callback, so this crate needs no metrics library.
pub type JwksObserver = Box<dyn Fn(Instant, bool) + Send + Sync>;

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.issuer.as_str())
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Fetches the discovery document and the JWKS. Fails if the provider is unreachable
    /// or its metadata's `issuer` differs from the configured one (OIDC Discovery §4.3).
    pub async fn discover(settings: OidcSettings) -> Result<Self, OidcError> {
        // Building the client reads the system's CA certificates (a directory of
        // files), so it runs on the blocking pool: a single-threaded runtime keeps
        // answering requests while discovery retries.
        let timeout = settings.timeout;
        let http = tokio::task::spawn_blocking(move || http_client::build(timeout))
            .await
            .map_err(|e| OidcError::Config(e.to_string()))?
            .map_err(|e| OidcError::Config(e.to_string()))?;
        let issuer = IssuerUrl::new(settings.issuer_url.clone())
            .map_err(|e| OidcError::Config(e.to_string()))?;
        let client = http.clone();
        let call = move |req| http_client::send(client.clone(), req);
        let metadata = CoreProviderMetadata::discover_async(issuer.clone(), &call)
            .await
            .map_err(|e| OidcError::Discovery(error_chain(&e)))?;
        let token_endpoint = metadata
            .token_endpoint()
            .map(|u| u.url().clone())
            .ok_or_else(|| OidcError::Discovery("metadata has no token_endpoint".into()))?;
        let signing_algs = metadata.id_token_signing_alg_values_supported().clone();
        Ok(Self {
            authorization_endpoint: metadata.authorization_endpoint().url().clone(),
            token_endpoint,
            jwks_uri: metadata.jwks_uri().clone(),
            signing_algs,
            jwks: RwLock::new(JwksCache {
                keys: Arc::new(metadata.jwks().clone()),
                fetched_at: Instant::now(),
            }),
            issuer,
            http,
            settings,
            probe: std::sync::Mutex::new(None),
            jwks_observer: std::sync::OnceLock::new(),
        })
    }

    /// Whether the provider answers right now (its discovery document, within 2 s),
    /// remembered for 1 s. Used before sending a browser to sign in, so a provider
    /// outage is a clear error page here rather than a dead end at the provider.
    pub async fn reachable(&self) -> bool {
        let cached = self.probe.lock().ok().and_then(|guard| *guard);
        if let Some((_, ok)) = cached.filter(|(at, _)| at.elapsed() < PROBE_TTL) {
            return ok;
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.as_str().trim_end_matches('/')
        );
        let ok = http_client::probe(&self.http, &url, PROBE_TIMEOUT).await;
        if let Ok(mut guard) = self.probe.lock() {
            *guard = Some((Instant::now(), ok));
        }
        ok
    }

    /// The configured settings.
    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// Builds a fresh authorization request: new state, nonce and PKCE pair each time,
    /// so concurrent logins (several tabs) never share secrets.
    pub fn authorization_request(&self) -> AuthRequest {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = CsrfToken::new_random_len(32);
        let nonce = Nonce::new_random_len(32);
        let mut url = self.authorization_endpoint.clone();
        let mut scopes: Vec<&str> = self.settings.scopes.iter().map(String::as_str).collect();
        if !scopes.contains(&"openid") {
            scopes.insert(0, "openid");
        }
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.redirect_url)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", state.secret())
            .append_pair("nonce", nonce.secret())
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        AuthRequest {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Exchanges an authorization code (RFC 6749 §4.1.3, with the PKCE verifier) and
    /// verifies the ID token against `nonce`.
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<TokenSet, OidcError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.settings.redirect_url.as_str()),
            ("code_verifier", pkce_verifier),
        ];
        let response = self.token_request(&form).await?;
        let id_token = response
            .id_token
            .ok_or_else(|| OidcError::InvalidResponse("no id_token in token response".into()))?;
        let expected = Nonce::new(nonce.to_owned());
        self.verify_id_token(&id_token, Some(&expected)).await?;
        self.token_set(id_token, response.refresh_token)
    }

    /// Uses a refresh token (RFC 6749 §6). Providers that rotate refresh tokens (Dex)
    /// return a new one that replaces the old; the old one stops working.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, OidcError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        let response = self.token_request(&form).await?;
        let id_token = response
            .id_token
            .ok_or_else(|| OidcError::InvalidResponse("no id_token in refresh response".into()))?;
        self.verify_id_token(&id_token, None).await?;
        // A provider that does not rotate keeps the old refresh token valid.
        let refresh = response
            .refresh_token
            .or_else(|| Some(refresh_token.to_owned()));
        self.token_set(id_token, refresh)
    }

    fn token_set(
        &self,
        id_token: String,
        refresh_token: Option<String>,
    ) -> Result<TokenSet, OidcError> {
        let claims = Claims::from_verified_jwt(&id_token).ok_or_else(|| {
            OidcError::InvalidResponse("ID token payload is not a JSON object".into())
        })?;
        if !self.settings.allow_unverified_email && claims.email_verified() == Some(false) {
            return Err(OidcError::EmailNotVerified);
        }
        let id_token_expires_at = claims
            .expires_at()
            .ok_or_else(|| OidcError::InvalidResponse("ID token has no exp".into()))?;
        Ok(TokenSet {
            id_token,
            id_token_expires_at,
            refresh_token,
            claims,
        })
    }

    /// Verifies an ID token's signature, `iss`, `aud`, `exp` and, when given, `nonce`
    /// (OIDC Core §3.1.3.7). An unknown `kid` triggers one JWKS refetch (key rotation),
    /// at most once per [`JWKS_REFETCH_INTERVAL`].
    pub async fn verify_id_token(
        &self,
        token: &str,
        nonce: Option<&Nonce>,
    ) -> Result<(), OidcError> {
        let parsed: CoreIdToken = token
            .parse()
            .map_err(|_| OidcError::Verify("ID token is not a well-formed JWT".into()))?;
        self.with_key_refetch(|| self.verify_with_cached_keys(&parsed, nonce))
            .await
    }

    /// Verifies a JWT presented as a bearer token: signature (asymmetric algorithms
    /// only, never `none` or an HMAC keyed by a client secret), `iss`, `exp`, and an
    /// `aud` that contains one of `audiences` (every other audience in the token must
    /// be accepted too). No nonce: the token was not issued to us in a login.
    pub async fn verify_bearer(&self, token: &str, audiences: &[String]) -> Result<(), OidcError> {
        let parsed: CoreIdToken = token
            .parse()
            .map_err(|_| OidcError::Verify("bearer token is not a well-formed JWT".into()))?;
        self.with_key_refetch(|| self.verify_bearer_with_cached_keys(&parsed, audiences))
            .await
    }

    /// Runs `verify` against the cached keys; on an unknown `kid`, refetches the JWKS
    /// (rate-limited) and runs it once more.
    async fn with_key_refetch(
        &self,
        verify: impl Fn() -> Result<(), ClaimsVerificationError>,
    ) -> Result<(), OidcError> {
        match verify() {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                if self.refetch_jwks().await? {
                    verify().map_err(|e| OidcError::Verify(e.to_string()))
                } else {
                    Err(OidcError::Verify(
                        "no JWKS key matches the token's key id".into(),
                    ))
                }
            }
            other => other.map_err(|e| OidcError::Verify(e.to_string())),
        }
    }

    /// The key set in use (a clone of the `Arc`, so no lock is held while verifying).
    fn cached_keys(&self) -> Arc<CoreJsonWebKeySet> {
        match self.jwks.read() {
            Ok(cache) => Arc::clone(&cache.keys),
            Err(poisoned) => Arc::clone(&poisoned.into_inner().keys),
        }
    }

    fn verify_bearer_with_cached_keys(
        &self,
        token: &CoreIdToken,
        audiences: &[String],
    ) -> Result<(), ClaimsVerificationError> {
        let keys = self.cached_keys();
        let algs: Vec<CoreJwsSigningAlgorithm> = self
            .signing_algs
            .iter()
            .filter(|a| {
                !matches!(
                    a,
                    CoreJwsSigningAlgorithm::HmacSha256
                        | CoreJwsSigningAlgorithm::HmacSha384
                        | CoreJwsSigningAlgorithm::HmacSha512
                        | CoreJwsSigningAlgorithm::None
                )
            })
            .cloned()
            .collect();
        let mut last = ClaimsVerificationError::InvalidAudience("no audience accepted".into());
        for audience in audiences {
            let verifier = CoreIdTokenVerifier::new_public_client(
                ClientId::new(audience.clone()),
                self.issuer.clone(),
                (*keys).clone(),
            )
            .set_other_audience_verifier_fn(|other| audiences.iter().any(|a| a == other.as_str()));
            let verifier = if algs.is_empty() {
                verifier
            } else {
                verifier.set_allowed_algs(algs.clone())
            };
            match token.claims(&verifier, |_: Option<&Nonce>| Ok(())) {
                Ok(_) => return Ok(()),
                // Another accepted audience may be the one the token names.
                Err(e @ ClaimsVerificationError::InvalidAudience(_)) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    fn verify_with_cached_keys(
        &self,
        token: &CoreIdToken,
        nonce: Option<&Nonce>,
    ) -> Result<(), ClaimsVerificationError> {
        let keys = self.cached_keys();
        let verifier = CoreIdTokenVerifier::new_confidential_client(
            ClientId::new(self.settings.client_id.clone()),
            ClientSecret::new(self.settings.client_secret.clone()),
            self.issuer.clone(),
            (*keys).clone(),
        );
        let verifier = if self.signing_algs.is_empty() {
            verifier
        } else {
            verifier.set_allowed_algs(self.signing_algs.clone())
        };
        match nonce {
            Some(expected) => token.claims(&verifier, expected).map(|_| ()),
            // Refreshed ID tokens need not carry a nonce (OIDC Core §12.2).
            None => token
                .claims(&verifier, |_: Option<&Nonce>| Ok(()))
                .map(|_| ()),
        }
    }

    /// Installs the observer of key-set refetches (the first call wins).
    pub fn observe_jwks_fetches(&self, observer: JwksObserver) {
        let _ = self.jwks_observer.set(observer);
    }

    /// Refetches the JWKS unless it was fetched very recently. Returns whether it did.
    async fn refetch_jwks(&self) -> Result<bool, OidcError> {
        let recent = match self.jwks.read() {
            Ok(cache) => cache.fetched_at.elapsed() < JWKS_REFETCH_INTERVAL,
            Err(_) => false,
        };
        if recent {
            return Ok(false);
        }
        let client = self.http.clone();
        let call = move |req| http_client::send(client.clone(), req);
        let started = Instant::now();
        let fetched = CoreJsonWebKeySet::fetch_async(&self.jwks_uri, &call).await;
        if let Some(observe) = self.jwks_observer.get() {
            observe(started, fetched.is_err());
        }
        let keys = fetched.map_err(|e| OidcError::Discovery(error_chain(&e)))?;
        tracing::info!(
            keys = keys.keys().len(),
            "refetched provider JWKS after an unknown key id"
        );
        let mut cache = match self.jwks.write() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        *cache = JwksCache {
            keys: Arc::new(keys),
            fetched_at: Instant::now(),
        };
        Ok(true)
    }

    /// POSTs to the token endpoint with client_secret_basic (RFC 6749 §2.3.1) and
    /// classifies the outcome.
    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, OidcError> {
        let credentials = format!(
            "{}:{}",
            form_urlencode(&self.settings.client_id),
            form_urlencode(&self.settings.client_secret)
        );
        let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
        let response = self
            .http
            .post(self.token_endpoint.clone())
            .header(http::header::AUTHORIZATION, format!("Basic {basic}"))
            .header(http::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(describe_transport(&TransportError::Request(e))))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| OidcError::Unavailable(describe_transport(&TransportError::Request(e))))?;
        if body.len() > MAX_TOKEN_RESPONSE {
            return Err(OidcError::InvalidResponse(
                "token response too large".into(),
            ));
        }
        if status.is_server_error() {
            return Err(OidcError::Unavailable(format!(
                "token endpoint answered HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            let error = serde_json::from_slice::<ErrorResponse>(&body)
                .map(|e| sanitize_code(&e.error))
                .unwrap_or_else(|_| "unparseable_error".to_owned());
            return Err(OidcError::Rejected {
                error,
                status: status.as_u16(),
            });
        }
        serde_json::from_slice(&body)
            .map_err(|_| OidcError::InvalidResponse("token response is not valid JSON".into()))
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

/// OAuth error codes are `%x20-21 / %x23-5B / %x5D-7E`; keep logs clean of anything else.
fn sanitize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect()
}

/// `application/x-www-form-urlencoded` encoding, required for Basic credentials by
/// RFC 6749 §2.3.1.
fn form_urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn describe_transport(e: &TransportError) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else {
        error_chain(e)
    }
}

/// Renders an error and its sources on one line (no secrets are in these errors: they
/// come from transport and parsing, never from request bodies).
/// An error and its sources, `outer: inner: …`, for log lines.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Seconds since the unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

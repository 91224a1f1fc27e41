//! An OpenID Connect provider's discovery document and keys, cached.
//!
//! Threat model and availability: the provider's metadata comes over the
//! network, and the provider may be down or slow.
//!
//! - The document's `issuer` must equal the configured issuer exactly
//!   (openidconnect checks it), or, for a templated issuer (Microsoft's
//!   `{tenantid}`), the configured template.
//! - Once a copy is loaded, requests never wait for the provider: a copy
//!   older than the TTL is still served while a refresh runs in the
//!   background; a failed refresh keeps the last good copy and backs off
//!   (1 s, doubling, at most 60 s) before the next attempt.
//! - Before the first copy, callers wait for one fetch together (never one
//!   fetch after another); while backing off after a failure they fail at
//!   once with the last error.
//! - An unknown `kid` (keys rotated at the provider, or a forged token)
//!   fetches the JWKS again at most once per [`JWKS_REFETCH_MIN_INTERVAL`]
//!   (and not while backing off), so a flood of tokens with made-up key ids
//!   costs the provider at most one fetch per period.

use super::client_assertion::Assertions;
use super::client_auth::{ClientAuth, Credentials};
use super::error::ProtocolError;
use super::http::{HttpClient, HttpError};
use super::jwk::ProviderKey;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreClaimName, CoreClaimType, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreSubjectIdentifierType,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, ClientSecret, DiscoveryError, EmptyExtraTokenFields,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, JsonWebKeySet,
    ProviderMetadata, RedirectUrl, StandardErrorResponse, StandardTokenResponse,
};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Discovery fields Keyway reads beyond OpenID Connect Discovery 1.0.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraMetadata {
    /// RFC 9207: the provider sends `iss` in authorization responses.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// RFC 7009 revocation endpoint.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// RP-initiated logout endpoint.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// RFC 9126 pushed authorization request endpoint.
    #[serde(default)]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// RFC 9126: the provider accepts only pushed requests.
    #[serde(default)]
    pub require_pushed_authorization_requests: Option<bool>,
    /// RFC 9449: the algorithms of DPoP proofs the provider accepts.
    #[serde(default)]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// RFC 8414: the PKCE methods the provider accepts.
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// The `prompt` values it takes ("Initiating User Registration via
    /// OpenID Connect 1.0"), when it lists them.
    #[serde(default)]
    pub prompt_values_supported: Option<Vec<String>>,
}

impl AdditionalProviderMetadata for ExtraMetadata {}

/// Provider metadata with [`ExtraMetadata`] and Keyway's key type.
pub type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    ProviderKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// A token response whose ID token carries [`super::claims::KeywayClaims`].
pub(crate) type TokenResponse = StandardTokenResponse<
    IdTokenFields<
        super::claims::KeywayClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

/// The openidconnect client as built from discovery.
pub(crate) type OidcClient = openidconnect::Client<
    super::claims::KeywayClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    ProviderKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The JWKS is fetched again at most this often on unknown `kid`s.
pub(crate) const JWKS_REFETCH_MIN_INTERVAL: Duration = Duration::from_secs(10);
/// The longest wait between attempts after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One loaded copy: the metadata, its keys and the client built from it.
#[derive(Debug)]
pub struct Discovered {
    /// The provider's metadata (with its JWKS).
    pub metadata: Metadata,
    /// The client built from it.
    pub client: OidcClient,
    /// How Keyway authenticates to this provider.
    pub credentials: Credentials,
    /// When the document was fetched.
    pub fetched_at: Instant,
}

impl Discovered {
    /// The issuer identifier, exactly as the provider states it.
    pub fn issuer(&self) -> &str {
        self.metadata.issuer().as_str()
    }

    /// A copy made from a document (with its keys) given directly, not
    /// fetched: for fuzz targets and tests.
    pub fn from_parts(metadata: Metadata, client: ClientBase) -> Self {
        let discovery = Discovery::new(
            "fuzz",
            metadata.issuer().as_str(),
            None,
            client,
            Duration::MAX,
        );
        discovery.build(metadata, Instant::now())
    }

    /// Whether authorization responses must carry `iss` (RFC 9207).
    pub fn requires_iss(&self) -> bool {
        self.metadata
            .additional_metadata()
            .authorization_response_iss_parameter_supported
            .unwrap_or(false)
    }
}

/// What the cache knows.
#[derive(Debug, Default)]
struct State {
    current: Option<Arc<Discovered>>,
    /// A background refresh is running.
    refreshing: bool,
    /// Failed attempts in a row, and when the next attempt may be made.
    failures: u32,
    not_before: Option<Instant>,
    last_error: Option<String>,
    /// Completed attempts of the first load (to share one attempt's result).
    attempts: u64,
    /// When the JWKS was last fetched because of an unknown `kid`.
    jwks_refetched_at: Option<Instant>,
}

/// What a provider needs to build its client.
#[derive(Debug, Clone)]
pub struct ClientBase {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub secret: crate::secret::Secret,
    /// The provider's redirect URI.
    pub redirect_uri: url::Url,
}

/// How the client authenticates beyond [`ClientBase`], and what the
/// provider must advertise for the configured profile and DPoP.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientSetup {
    /// The configured method (`None`: negotiated).
    pub method: Option<crate::config::ClientAuthMethod>,
    /// The `private_key_jwt` signing key.
    pub key: Option<crate::jose::PrivateKey>,
    /// The `aud` of client assertions.
    pub audience: Option<crate::config::AssertionAudience>,
    /// `profile = "fapi2"`.
    pub fapi2: bool,
    /// `dpop = true`.
    pub dpop: bool,
}

impl ClientSetup {
    /// What discovery lacks of what this setup needs (names of metadata).
    fn missing(&self, metadata: &Metadata) -> Vec<&'static str> {
        let extra = metadata.additional_metadata();
        let has = |list: &Option<Vec<String>>, v: &str| {
            list.as_ref().is_some_and(|l| l.iter().any(|x| x == v))
        };
        let mut missing = Vec::new();
        if self.dpop && !has(&extra.dpop_signing_alg_values_supported, "ES256") {
            missing.push("dpop_signing_alg_values_supported with ES256 (DPoP)");
        }
        if !self.fapi2 {
            return missing;
        }
        if extra.pushed_authorization_request_endpoint.is_none() {
            missing.push("pushed_authorization_request_endpoint (PAR)");
        }
        if extra.authorization_response_iss_parameter_supported != Some(true) {
            missing.push("authorization_response_iss_parameter_supported = true (RFC 9207 iss)");
        }
        if !has(&extra.code_challenge_methods_supported, "S256") {
            missing.push("code_challenge_methods_supported with S256 (PKCE)");
        }
        let methods = metadata.token_endpoint_auth_methods_supported();
        if !methods.is_some_and(|m| m.contains(&CoreClientAuthMethod::PrivateKeyJwt)) {
            missing.push("token_endpoint_auth_methods_supported with private_key_jwt");
        }
        if let (Some(algs), Some(key)) = (
            metadata.token_endpoint_auth_signing_alg_values_supported(),
            &self.key,
        ) {
            let name = key.alg().name();
            if !algs.iter().any(|a| serde_plain_name(a) == name) {
                missing.push(
                    "token_endpoint_auth_signing_alg_values_supported with the key's algorithm",
                );
            }
        }
        missing
    }
}

/// The JOSE name of an algorithm as discovery spells it.
fn serde_plain_name(alg: &CoreJwsSigningAlgorithm) -> String {
    serde_json::to_value(alg)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The cached discovery of one provider.
#[derive(Debug)]
pub(crate) struct Discovery {
    provider_id: String,
    issuer: String,
    issuer_template: Option<String>,
    base: ClientBase,
    setup: ClientSetup,
    ttl: Duration,
    state: Mutex<State>,
    first_load: tokio::sync::Mutex<()>,
    jwks_refetch: tokio::sync::Mutex<()>,
}

impl Discovery {
    /// A cache with nothing loaded yet.
    pub(crate) fn new(
        provider_id: &str,
        issuer: &str,
        issuer_template: Option<&str>,
        base: ClientBase,
        ttl: Duration,
    ) -> Self {
        Self {
            provider_id: provider_id.to_owned(),
            issuer: issuer.to_owned(),
            issuer_template: issuer_template.map(str::to_owned),
            base,
            setup: ClientSetup::default(),
            ttl,
            state: Mutex::default(),
            first_load: tokio::sync::Mutex::new(()),
            jwks_refetch: tokio::sync::Mutex::new(()),
        }
    }

    /// The same cache for a client set up as `setup` says.
    pub(crate) fn with_setup(mut self, setup: ClientSetup) -> Self {
        self.setup = setup;
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a copy is loaded.
    pub(crate) fn is_ready(&self) -> bool {
        self.state().current.is_some()
    }

    /// The current copy. Never waits for the provider once one is loaded
    /// (a stale copy starts a background refresh); before that, waits for
    /// one fetch shared by all callers.
    pub(crate) async fn get(
        self: &Arc<Self>,
        http: &HttpClient,
    ) -> Result<Arc<Discovered>, ProtocolError> {
        if let Some(current) = self.current_or_refresh(http) {
            return Ok(current);
        }
        let seen = self.state().attempts;
        let _first = self.first_load.lock().await;
        {
            let state = self.state();
            if let Some(current) = &state.current {
                return Ok(current.clone());
            }
            if state.attempts != seen || state.not_before.is_some_and(|t| Instant::now() < t) {
                // Another caller's attempt just failed, or we are backing off.
                return Err(self.last_error(&state));
            }
        }
        let result = self.fetch(http).await;
        let mut state = self.state();
        state.attempts += 1;
        match result {
            Ok(d) => {
                let d = Arc::new(d);
                Self::succeeded(&mut state, d.clone());
                Ok(d)
            }
            Err(e) => {
                Self::failed(&mut state, &e);
                Err(e)
            }
        }
    }

    /// The loaded copy, starting a background refresh when it is stale.
    fn current_or_refresh(self: &Arc<Self>, http: &HttpClient) -> Option<Arc<Discovered>> {
        let mut state = self.state();
        let current = state.current.clone()?;
        let stale = current.fetched_at.elapsed() >= self.ttl;
        let allowed = state.not_before.is_none_or(|t| Instant::now() >= t);
        if stale && allowed && !state.refreshing {
            state.refreshing = true;
            let this = self.clone();
            let http = http.clone();
            tokio::spawn(async move {
                let result = this.fetch(&http).await;
                let mut state = this.state();
                state.refreshing = false;
                match result {
                    Ok(d) => Self::succeeded(&mut state, Arc::new(d)),
                    Err(e) => {
                        tracing::warn!(provider = %this.provider_id, error = %e, "discovery refresh failed; serving the last good copy");
                        Self::failed(&mut state, &e);
                    }
                }
            });
        }
        Some(current)
    }

    fn succeeded(state: &mut State, d: Arc<Discovered>) {
        state.current = Some(d);
        state.failures = 0;
        state.not_before = None;
        state.last_error = None;
    }

    fn failed(state: &mut State, e: &ProtocolError) {
        state.failures = state.failures.saturating_add(1);
        let backoff =
            Duration::from_secs(1 << state.failures.min(6).saturating_sub(1)).min(MAX_BACKOFF);
        state.not_before = Some(Instant::now() + backoff);
        state.last_error = Some(e.to_string());
    }

    fn last_error(&self, state: &State) -> ProtocolError {
        ProtocolError::Provider(format!(
            "discovery of `{}` is not loaded ({})",
            self.provider_id,
            state.last_error.as_deref().unwrap_or("not fetched yet")
        ))
    }

    /// Fetches the JWKS again after an unknown `kid` (see the module docs
    /// for the limits); returns the (possibly unchanged) current copy.
    pub(crate) async fn refetch_jwks(
        &self,
        http: &HttpClient,
        seen: &Arc<Discovered>,
    ) -> Result<Arc<Discovered>, ProtocolError> {
        let _one = self.jwks_refetch.lock().await;
        let current = {
            let state = self.state();
            let current = state.current.clone().unwrap_or_else(|| seen.clone());
            let recent = state
                .jwks_refetched_at
                .is_some_and(|t| t.elapsed() < JWKS_REFETCH_MIN_INTERVAL);
            let backing_off = state.not_before.is_some_and(|t| Instant::now() < t);
            if !Arc::ptr_eq(&current, seen) || recent || backing_off {
                return Ok(current);
            }
            current
        };
        let fetched = JsonWebKeySet::fetch_async(current.metadata.jwks_uri(), &http.oidc()).await;
        let mut state = self.state();
        state.jwks_refetched_at = Some(Instant::now());
        match fetched {
            Ok(jwks) => {
                let metadata = current.metadata.clone().set_jwks(jwks);
                let d = Arc::new(self.build(metadata, current.fetched_at));
                tracing::info!(provider = %self.provider_id, "JWKS fetched again after an unknown key id");
                state.current = Some(d.clone());
                Ok(d)
            }
            Err(e) => {
                let e = discovery_error(&self.provider_id, e);
                Self::failed(&mut state, &e);
                Err(e)
            }
        }
    }

    async fn fetch(&self, http: &HttpClient) -> Result<Discovered, ProtocolError> {
        let issuer = IssuerUrl::new(self.issuer.clone())
            .map_err(|e| ProtocolError::Provider(format!("bad issuer URL: {e}")))?;
        let metadata = match &self.issuer_template {
            Some(template) => self.discover_templated(http, &issuer, template).await?,
            None => Metadata::discover_async(issuer, &http.oidc())
                .await
                .map_err(|e| discovery_error(&self.provider_id, e))?,
        };
        let missing = self.setup.missing(&metadata);
        if !missing.is_empty() {
            let profile = if self.setup.fapi2 {
                "profile = \"fapi2\""
            } else {
                "dpop = true"
            };
            return Err(ProtocolError::Provider(format!(
                "discovery of `{}`: {profile} needs what the provider does not advertise: {}",
                self.provider_id,
                missing.join(", ")
            )));
        }
        tracing::info!(provider = %self.provider_id, issuer = %metadata.issuer().as_str(), "discovery loaded");
        Ok(self.build(metadata, Instant::now()))
    }

    /// Microsoft's multi-tenant endpoints publish a templated issuer
    /// (`{tenantid}`) that cannot equal the URL it is served from: the
    /// document's issuer must equal the template instead (and each ID
    /// token's issuer the template with its own `tid`).
    async fn discover_templated(
        &self,
        http: &HttpClient,
        issuer: &IssuerUrl,
        template: &str,
    ) -> Result<Metadata, ProtocolError> {
        let url = issuer
            .join(".well-known/openid-configuration")
            .map_err(|e| ProtocolError::Provider(format!("bad issuer URL: {e}")))?;
        let (status, body) = http
            .send(http.reqwest().get(url))
            .await
            .map_err(|e| e.during("discovery"))?;
        if !status.is_success() {
            return Err(ProtocolError::Provider(format!(
                "discovery of `{}`: HTTP {status}",
                self.provider_id
            )));
        }
        let metadata: Metadata = serde_json::from_slice(&body).map_err(|_| {
            ProtocolError::Provider(format!(
                "discovery of `{}`: the document is not valid",
                self.provider_id
            ))
        })?;
        if metadata.issuer().as_str() != template {
            return Err(ProtocolError::Provider(format!(
                "discovery of `{}`: the document's issuer is not the expected template",
                self.provider_id
            )));
        }
        let jwks = JsonWebKeySet::fetch_async(metadata.jwks_uri(), &http.oidc())
            .await
            .map_err(|e| discovery_error(&self.provider_id, e))?;
        Ok(metadata.set_jwks(jwks))
    }

    fn build(&self, metadata: Metadata, fetched_at: Instant) -> Discovered {
        let auth = ClientAuth::configured_or(
            self.setup.method,
            metadata
                .token_endpoint_auth_methods_supported()
                .map(Vec::as_slice),
        );
        // The assertion methods never send the secret itself.
        let secret = auth
            .sends_secret()
            .then(|| ClientSecret::new(self.base.secret.expose().to_owned()));
        let client = OidcClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.base.client_id.clone()),
            secret,
        )
        .set_redirect_uri(RedirectUrl::from_url(self.base.redirect_uri.clone()))
        .set_auth_type(auth.auth_type());
        let assertions = (!auth.sends_secret()).then(|| Assertions {
            key: self.setup.key.clone(),
            audience: self
                .setup
                .audience
                .unwrap_or(crate::config::AssertionAudience::Issuer),
            issuer: metadata.issuer().as_str().to_owned(),
            token_endpoint: metadata.token_endpoint().map(|u| u.as_str().to_owned()),
        });
        Discovered {
            metadata,
            client,
            credentials: Credentials {
                client_id: self.base.client_id.clone(),
                secret: self.base.secret.clone(),
                auth,
                assertions,
            },
            fetched_at,
        }
    }
}

fn discovery_error(provider: &str, e: DiscoveryError<HttpError>) -> ProtocolError {
    match e {
        DiscoveryError::Request(HttpError::Timeout) => ProtocolError::Timeout,
        DiscoveryError::Request(e) => {
            ProtocolError::Provider(format!("discovery of `{provider}`: {e}"))
        }
        DiscoveryError::Response(status, _, msg) => {
            ProtocolError::Provider(format!("discovery of `{provider}`: HTTP {status}: {msg}"))
        }
        DiscoveryError::Parse(e) => ProtocolError::Provider(format!(
            "discovery of `{provider}`: bad JSON at {}",
            e.path()
        )),
        other => ProtocolError::Provider(format!("discovery of `{provider}`: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(extra: serde_json::Value) -> Metadata {
        let mut doc = serde_json::json!({
            "issuer": "https://idp.example",
            "authorization_endpoint": "https://idp.example/auth",
            "token_endpoint": "https://idp.example/token",
            "jwks_uri": "https://idp.example/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        serde_json::from_value(doc).unwrap()
    }

    #[test]
    fn fapi2_needs_par_iss_s256_private_key_jwt_and_dpop_advertised() {
        let fapi2 = ClientSetup {
            fapi2: true,
            dpop: true,
            ..ClientSetup::default()
        };
        let bare = fapi2.missing(&metadata(serde_json::json!({})));
        assert_eq!(bare.len(), 5, "{bare:?}");
        let full = metadata(serde_json::json!({
            "pushed_authorization_request_endpoint": "https://idp.example/par",
            "authorization_response_iss_parameter_supported": true,
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "dpop_signing_alg_values_supported": ["ES256"],
        }));
        assert!(fapi2.missing(&full).is_empty());
        let dpop_only = ClientSetup {
            dpop: true,
            ..ClientSetup::default()
        };
        let missing = dpop_only.missing(&metadata(serde_json::json!({
            "dpop_signing_alg_values_supported": ["EdDSA"],
        })));
        assert_eq!(
            missing,
            ["dpop_signing_alg_values_supported with ES256 (DPoP)"]
        );
        assert!(
            ClientSetup::default()
                .missing(&metadata(serde_json::json!({})))
                .is_empty()
        );
    }
}

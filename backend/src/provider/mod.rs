//! Identity providers: discovery (cached with a TTL), JWKS (cached, fetched
//! again once on an unknown `kid`), the openidconnect client of each, and ID
//! token validation.
//!
//! Threat model: the provider's metadata and tokens come over the network.
//! Discovery is checked by openidconnect (the document's `issuer` must equal
//! the configured one); ID tokens are checked for signature against the
//! provider's JWKS with an allow-list of asymmetric algorithms (never `none`,
//! never HMAC, so a public key cannot be used as an HMAC secret), `iss`,
//! `aud` (no untrusted extra audience), `azp`, `exp`, `iat` within a bounded
//! skew, and `nonce`.

pub mod flows;
pub mod http;
pub mod jwk;
pub mod presets;

use crate::config::{Endpoints, ProviderSettings};
use crate::error::Error;
use http::{HttpClient, HttpError};
use keyway_shared::ProviderKind;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreIdToken, CoreIdTokenClaims, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClaimsVerificationError, ClientId, ClientSecret, DiscoveryError,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, JsonWebKeySet, Nonce,
    ProviderMetadata, RedirectUrl, SignatureVerificationError,
};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use url::Url;

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
    /// RFC 7662 introspection endpoint.
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    /// RFC 9126 pushed authorization request endpoint.
    #[serde(default)]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// RFC 9126: the provider accepts only pushed requests.
    #[serde(default)]
    pub require_pushed_authorization_requests: Option<bool>,
}

impl AdditionalProviderMetadata for ExtraMetadata {}

/// Provider metadata with [`ExtraMetadata`].
pub type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    jwk::ProviderKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The openidconnect client as built from discovery: `CoreClient` with
/// [`jwk::ProviderKey`] as its key type.
pub type OidcClient = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    CoreAuthDisplay,
    openidconnect::core::CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    jwk::ProviderKey,
    openidconnect::core::CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    openidconnect::core::CoreTokenResponse,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// ID token signature algorithms Keyway accepts: asymmetric only.
pub const ALLOWED_ALGS: &[CoreJwsSigningAlgorithm] = &[
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// How far in the future an ID token's `iat` may be (clock skew).
pub const IAT_FUTURE_SKEW: Duration = Duration::from_secs(300);
/// How old an ID token's `iat` may be when it arrives.
pub const IAT_MAX_AGE: Duration = Duration::from_secs(600);
/// The JWKS is fetched again at most this often on unknown `kid`s.
pub const JWKS_REFETCH_MIN_INTERVAL: Duration = Duration::from_secs(10);

/// What discovery produced for one provider.
#[derive(Debug)]
pub struct Discovered {
    /// The provider's metadata (with its JWKS).
    pub metadata: Metadata,
    /// The client built from it.
    pub client: OidcClient,
    /// When the document was fetched.
    pub fetched_at: Instant,
    /// When the JWKS was fetched.
    pub jwks_fetched_at: Instant,
    /// When the JWKS was last fetched again after an unknown `kid` (the
    /// rate limit of [`Provider::refetch_jwks`]); `None` until the first time.
    pub jwks_refetched_at: Option<Instant>,
}

impl Discovered {
    /// The issuer identifier, exactly as the provider states it.
    pub fn issuer(&self) -> &str {
        self.metadata.issuer().as_str()
    }

    /// Whether authorization responses must carry `iss` (RFC 9207).
    pub fn requires_iss(&self) -> bool {
        self.metadata
            .additional_metadata()
            .authorization_response_iss_parameter_supported
            .unwrap_or(false)
    }
}

/// One configured provider and its cached discovery.
#[derive(Debug)]
pub struct Provider {
    /// Its configuration.
    pub settings: ProviderSettings,
    redirect_uri: RedirectUrl,
    ttl: Duration,
    cache: RwLock<Option<Arc<Discovered>>>,
    fetching: tokio::sync::Mutex<()>,
    oauth2_client: Option<flows::OAuth2Client>,
}

impl Provider {
    /// A provider whose discovery is not fetched yet.
    pub fn new(settings: ProviderSettings, redirect_uri: &Url, ttl: Duration) -> Self {
        let mut provider = Self {
            settings,
            redirect_uri: RedirectUrl::from_url(redirect_uri.clone()),
            ttl,
            cache: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
            oauth2_client: None,
        };
        provider.oauth2_client = provider.build_oauth2_client();
        provider
    }

    /// The provider id.
    pub fn id(&self) -> &str {
        &self.settings.id
    }

    /// OIDC or plain OAuth2.
    pub fn kind(&self) -> ProviderKind {
        self.settings.kind
    }

    /// Whether discovery has been loaded at least once.
    pub fn is_ready(&self) -> bool {
        self.kind() == ProviderKind::Oauth2 || self.cache.read().expect("cache lock").is_some()
    }

    fn cached(&self) -> Option<Arc<Discovered>> {
        self.cache.read().expect("cache lock").clone()
    }

    /// The discovered metadata and client: from the cache while fresh, else
    /// fetched once (concurrent callers wait for the same fetch). A failed
    /// refresh keeps serving the stale document.
    pub async fn discovered(&self, http: &HttpClient) -> Result<Arc<Discovered>, Error> {
        if self.kind() == ProviderKind::Oauth2 {
            return Err(Error::Internal(format!(
                "`{}` is a plain OAuth 2.0 provider: no discovery",
                self.id()
            )));
        }
        if let Some(d) = self.cached()
            && d.fetched_at.elapsed() < self.ttl
        {
            return Ok(d);
        }
        let _guard = self.fetching.lock().await;
        if let Some(d) = self.cached()
            && d.fetched_at.elapsed() < self.ttl
        {
            return Ok(d);
        }
        match self.fetch(http).await {
            Ok(d) => {
                let d = Arc::new(d);
                *self.cache.write().expect("cache lock") = Some(d.clone());
                Ok(d)
            }
            Err(e) => match self.cached() {
                Some(stale) => {
                    tracing::warn!(provider = %self.id(), error = %e, "discovery refresh failed; keeping the cached document");
                    Ok(stale)
                }
                None => Err(e),
            },
        }
    }

    async fn fetch(&self, http: &HttpClient) -> Result<Discovered, Error> {
        let Endpoints::Discover(issuer) = &self.settings.endpoints else {
            return Err(Error::Internal(
                "no discovery for a plain OAuth 2.0 provider".into(),
            ));
        };
        // openidconnect compares the document's issuer with this string exactly:
        // keep the configured form (without a trailing slash unless given).
        let issuer_str = issuer.as_str();
        let issuer_str = if issuer.path() == "/" {
            issuer_str.trim_end_matches('/')
        } else {
            issuer_str
        };
        let issuer_url = IssuerUrl::new(issuer_str.to_owned())
            .map_err(|e| Error::ProviderError(format!("bad issuer URL: {e}")))?;
        let metadata = if self.settings.issuer_template.is_some() {
            // Microsoft's multi-tenant endpoints publish a templated issuer
            // (`{tenantid}`) that cannot equal the URL it is served from; the
            // ID token's issuer is checked against the template instead.
            self.discover_templated(http, &issuer_url).await?
        } else {
            Metadata::discover_async(issuer_url, &http.oidc())
                .await
                .map_err(|e| discovery_error(self.id(), e))?
        };
        let client = self.build_client(&metadata);
        let now = Instant::now();
        tracing::info!(provider = %self.id(), issuer = %metadata.issuer().as_str(), "discovery loaded");
        Ok(Discovered {
            metadata,
            client,
            fetched_at: now,
            jwks_fetched_at: now,
            jwks_refetched_at: None,
        })
    }

    async fn discover_templated(
        &self,
        http: &HttpClient,
        issuer: &IssuerUrl,
    ) -> Result<Metadata, Error> {
        let url = issuer
            .join(".well-known/openid-configuration")
            .map_err(|e| Error::ProviderError(format!("bad issuer URL: {e}")))?;
        let (_, body) = http::send_to_provider(http.reqwest().get(url), "discovery").await?;
        let metadata: Metadata = serde_json::from_slice(&body)
            .map_err(|_| Error::ProviderError("discovery document is not valid".into()))?;
        if Some(metadata.issuer().as_str()) != self.settings.issuer_template.as_deref() {
            return Err(Error::ProviderError(
                "the discovery document's issuer is not the expected template".into(),
            ));
        }
        let jwks = JsonWebKeySet::fetch_async(metadata.jwks_uri(), &http.oidc())
            .await
            .map_err(|e| discovery_error(self.id(), e))?;
        Ok(metadata.set_jwks(jwks))
    }

    /// Whether `iss` (of an authorization response or ID token) is this provider's issuer.
    pub fn issuer_matches(&self, expected: &str, got: &str) -> bool {
        match &self.settings.issuer_template {
            None => expected == got,
            Some(template) => {
                let (prefix, suffix) = template.split_once("{tenantid}").unwrap_or((template, ""));
                got.strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix(suffix))
                    .is_some_and(|tid| {
                        !tid.is_empty()
                            && tid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
            }
        }
    }

    fn build_client(&self, metadata: &Metadata) -> OidcClient {
        let client = OidcClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(
                self.settings.client_secret.expose().to_owned(),
            )),
        )
        .set_redirect_uri(self.redirect_uri.clone());
        // Client authentication as the provider advertises (basic is the RFC default).
        let methods = metadata.token_endpoint_auth_methods_supported();
        let basic_ok = methods.is_none_or(|m| m.contains(&CoreClientAuthMethod::ClientSecretBasic));
        let post_ok = methods.is_some_and(|m| m.contains(&CoreClientAuthMethod::ClientSecretPost));
        if !basic_ok && post_ok {
            client.set_auth_type(openidconnect::AuthType::RequestBody)
        } else {
            client
        }
    }

    /// Fetches the JWKS again (after an unknown `kid`): the first time at
    /// once (the provider may have rotated its keys just after discovery),
    /// then at most once per [`JWKS_REFETCH_MIN_INTERVAL`], so tokens with
    /// made-up key ids cannot make the BFF fetch per request. Returns the
    /// (possibly unchanged) discovery.
    pub async fn refetch_jwks(
        &self,
        http: &HttpClient,
        seen: &Arc<Discovered>,
    ) -> Result<Arc<Discovered>, Error> {
        let _guard = self.fetching.lock().await;
        let current = self.cached().unwrap_or_else(|| seen.clone());
        if !Arc::ptr_eq(&current, seen)
            || current
                .jwks_refetched_at
                .is_some_and(|t| t.elapsed() < JWKS_REFETCH_MIN_INTERVAL)
        {
            return Ok(current);
        }
        let jwks = JsonWebKeySet::fetch_async(current.metadata.jwks_uri(), &http.oidc())
            .await
            .map_err(|e| discovery_error(self.id(), e))?;
        let metadata = current.metadata.clone().set_jwks(jwks);
        let client = self.build_client(&metadata);
        tracing::info!(provider = %self.id(), "JWKS fetched again after an unknown key id");
        let now = Instant::now();
        let d = Arc::new(Discovered {
            metadata,
            client,
            fetched_at: current.fetched_at,
            jwks_fetched_at: now,
            jwks_refetched_at: Some(now),
        });
        *self.cache.write().expect("cache lock") = Some(d.clone());
        Ok(d)
    }

    /// Validates an ID token; on an unknown `kid` fetches the JWKS once and tries again.
    pub async fn verify_id_token(
        &self,
        http: &HttpClient,
        disc: &Arc<Discovered>,
        id_token: &CoreIdToken,
        nonce: &Nonce,
    ) -> Result<CoreIdTokenClaims, Error> {
        let template = self.settings.issuer_template.as_deref();
        match verify_with(disc, &self.settings.client_id, template, id_token, nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // The token names a key the provider does not publish: if the
                // JWKS cannot be fetched again, the token is unverifiable.
                let fresh = self.refetch_jwks(http, disc).await.map_err(|e| {
                    Error::InvalidIdToken(format!(
                        "no key of the provider matches and the JWKS could not be fetched again ({e})"
                    ))
                })?;
                verify_with(&fresh, &self.settings.client_id, template, id_token, nonce)
                    .map_err(id_token_error)
            }
            other => other.map_err(id_token_error),
        }
    }
}

/// Checks an ID token against one discovery (JWKS, algorithm allow-list,
/// `iss`, `aud`, `azp`, `exp`, `iat`, `nonce`), without refetching anything.
pub fn verify_with(
    disc: &Discovered,
    client_id: &str,
    issuer_template: Option<&str>,
    id_token: &CoreIdToken,
    nonce: &Nonce,
) -> Result<CoreIdTokenClaims, ClaimsVerificationError> {
    let advertised = disc.metadata.id_token_signing_alg_values_supported();
    let algs: Vec<_> = ALLOWED_ALGS
        .iter()
        .filter(|a| advertised.contains(a))
        .cloned()
        .collect();
    let verifier = disc
        .client
        .id_token_verifier()
        .set_allowed_algs(algs)
        .set_issue_time_verifier_fn(|iat| {
            let now = chrono::Utc::now();
            let skew = chrono_secs(IAT_FUTURE_SKEW);
            if iat > now + skew {
                Err(format!("issued in the future ({iat})"))
            } else if iat < now - chrono_secs(IAT_MAX_AGE) {
                Err(format!("issued too long ago ({iat})"))
            } else {
                Ok(())
            }
        });
    let verifier = verifier.require_issuer_match(issuer_template.is_none());
    let claims = id_token.claims(&verifier, nonce)?.clone();
    if let Some(template) = issuer_template {
        // Multi-tenant: iss must be the template with the token's own tenant.
        let tid = verified_claim(&id_token.to_string(), "tid")
            .ok_or_else(|| ClaimsVerificationError::InvalidIssuer("no tid claim".into()))?;
        if claims.issuer().as_str() != template.replace("{tenantid}", &tid) {
            return Err(ClaimsVerificationError::InvalidIssuer(
                "iss does not match the token's tenant".into(),
            ));
        }
    }
    // OpenID Connect Core 3.1.3.7 steps 4-5, which openidconnect leaves to the client.
    let azp = claims.authorized_party().map(|a| a.as_str());
    if claims.audiences().len() > 1 && azp.is_none() {
        return Err(ClaimsVerificationError::InvalidAudience(
            "several audiences and no azp".into(),
        ));
    }
    if let Some(azp) = azp
        && azp != client_id
    {
        return Err(ClaimsVerificationError::InvalidAudience(
            "azp is another client".into(),
        ));
    }
    Ok(claims)
}

/// Reads one string claim of a JWT whose signature has already been verified.
pub fn verified_claim(jwt: &str, name: &str) -> Option<String> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get(name)?.as_str().map(str::to_owned)
}

fn chrono_secs(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(d.as_secs() as i64)
}

fn id_token_error(e: ClaimsVerificationError) -> Error {
    // The messages of openidconnect name the failed check, never the token;
    // a signature failure also names its cause (disallowed `alg`, no key...).
    match e {
        ClaimsVerificationError::SignatureVerification(inner) => {
            Error::InvalidIdToken(format!("signature verification failed: {inner}"))
        }
        other => Error::InvalidIdToken(other.to_string()),
    }
}

fn discovery_error(provider: &str, e: DiscoveryError<HttpError>) -> Error {
    match e {
        DiscoveryError::Request(HttpError::Timeout) => Error::ProviderTimeout,
        DiscoveryError::Request(e) => {
            Error::ProviderError(format!("discovery of `{provider}`: {e}"))
        }
        DiscoveryError::Response(status, _, msg) => {
            Error::ProviderError(format!("discovery of `{provider}`: HTTP {status}: {msg}"))
        }
        DiscoveryError::Parse(e) => Error::ProviderError(format!(
            "discovery of `{provider}`: bad JSON at {}",
            e.path()
        )),
        other => Error::ProviderError(format!("discovery of `{provider}`: {other}")),
    }
}

/// All configured providers, in configuration order.
#[derive(Debug, Default)]
pub struct Providers {
    list: Vec<Arc<Provider>>,
}

impl Providers {
    /// Wraps the configured providers.
    pub fn new(settings: &[ProviderSettings], redirect_uri: &Url, ttl: Duration) -> Self {
        Self {
            list: settings
                .iter()
                .map(|s| Arc::new(Provider::new(s.clone(), redirect_uri, ttl)))
                .collect(),
        }
    }

    /// By id, or the first one when `id` is `None`.
    pub fn get(&self, id: Option<&str>) -> Option<&Arc<Provider>> {
        match id {
            None => self.list.first(),
            Some(id) => self.list.iter().find(|p| p.id() == id),
        }
    }

    /// Every provider.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.list.iter()
    }

    /// Whether every provider's discovery is loaded.
    pub fn all_ready(&self) -> bool {
        self.list.iter().all(|p| p.is_ready())
    }
}

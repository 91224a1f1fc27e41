//! Identity providers: the protocol, decided once per provider when the
//! configuration is loaded. A [`Provider`] is an OpenID Connect provider
//! ([`oidc`], found by discovery) or a plain OAuth 2.0 one ([`oauth2`],
//! configured endpoints); each flow is one method that hands over to the
//! kind's own. Around them: the outbound HTTP client ([`http`]), the
//! discovery cache ([`discovery`]), one client authentication for every
//! endpoint ([`client_auth`]), one verifier for every signed token
//! ([`verify`]) and RSA keys checked by `ring` ([`jwk`]).
//!
//! Threat model: everything a provider sends is untrusted input. Every call
//! has a timeout, a response size cap and follows no redirect; discovery's
//! issuer must be the configured one; signed tokens are checked as
//! [`verify`] says; a provider error is passed on only as a plain RFC 6749
//! code; no token, code or secret ever reaches a message or a log.

pub(crate) mod api_client;
pub(crate) mod claims;
pub(crate) mod client_assertion;
pub(crate) mod client_auth;
pub(crate) mod discovery;
pub(crate) mod dpop;
pub(crate) mod error;
pub(crate) mod http;
pub(crate) mod jwk;
pub(crate) mod login_params;
pub(crate) mod oauth2;
pub(crate) mod oidc;
pub(crate) mod par;
pub(crate) mod revocation;
pub mod verify;

use crate::config::{Protocol, ProviderSettings};
use crate::secret::Secret;
use claims::{Identity, VerifiedClaims};
use discovery::{ClientBase, ClientSetup, Discovery};
use dpop::{DpopKey, Peer};
use error::{ProtocolError, RefreshError};
use http::HttpClient;
use keyway_shared::ProviderKind;
use login_params::{AuthLevel, AuthParams, LoginSupport};
use revocation::TokenKind;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// A started authorization request: where to send the browser and what the
/// callback will need.
#[derive(Debug)]
pub(crate) struct AuthRequest {
    /// Where to send the browser.
    pub url: Url,
    /// The `state`.
    pub state: String,
    /// The OIDC nonce (none for plain OAuth 2.0).
    pub nonce: Option<String>,
    /// The PKCE verifier.
    pub verifier: String,
    /// The issuer the request went to (none for plain OAuth 2.0).
    pub issuer: Option<String>,
}

/// What the login kept from its start, for the callback.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending<'a> {
    /// The PKCE verifier.
    pub verifier: &'a str,
    /// The OIDC nonce.
    pub nonce: Option<&'a str>,
    /// The issuer the login went to.
    pub issuer: Option<&'a str>,
    /// The login's DPoP key (its thumbprint went out as `dpop_jkt`).
    pub dpop: Option<&'a DpopKey>,
}

/// The provider's answer as the SPA relayed it.
#[derive(Debug)]
pub(crate) struct Callback {
    /// The authorization code.
    pub code: String,
    /// The authorization response's `iss` (RFC 9207), if any.
    pub iss: Option<String>,
}

/// What a login's session knows for a refresh: what checks the new ID
/// token, and the key its tokens are bound to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoginFacts<'a> {
    /// The subject that signed in.
    pub sub: &'a str,
    /// The nonce of the login, if any.
    pub nonce: Option<&'a str>,
    /// The session's DPoP key, if its tokens are bound.
    pub dpop: Option<&'a DpopKey>,
}

/// Tokens from a token endpoint.
#[derive(Debug, Clone)]
pub(crate) struct TokenSet {
    /// Access token.
    pub access_token: Secret,
    /// Refresh token, if any.
    pub refresh_token: Option<Secret>,
    /// Lifetime of the access token, if said.
    pub expires_in: Option<Duration>,
    /// The ID token (verified before it gets here).
    pub id_token: Option<Secret>,
}

impl TokenSet {
    /// The tokens of a token response (its ID token, if any, verified by the caller).
    fn of<T: openidconnect::OAuth2TokenResponse>(t: &T, id_token: Option<String>) -> Self {
        // (The token type of a DPoP request is checked when it is answered:
        // `oidc::check_binding`.)
        TokenSet {
            access_token: Secret::new(t.access_token().secret().clone()),
            refresh_token: t.refresh_token().map(|r| Secret::new(r.secret().clone())),
            expires_in: t.expires_in(),
            id_token: id_token.map(Secret::new),
        }
    }
}

/// A completed login at the provider.
#[derive(Debug)]
pub(crate) struct LoggedIn {
    /// The tokens.
    pub tokens: TokenSet,
    /// Who signed in.
    pub identity: Identity,
    /// The provider's session id (`sid`), for back-channel logout.
    pub sid: Option<String>,
    /// The login's nonce, kept to check refreshed ID tokens.
    pub nonce: Option<String>,
    /// The ID token's `acr` and `auth_time` (none for plain OAuth 2.0).
    pub level: AuthLevel,
}

/// A provider's protocol and its state.
#[derive(Debug)]
enum Kind {
    Oidc(oidc::Oidc),
    OAuth2(Box<oauth2::OAuth2>),
}

/// One configured provider.
#[derive(Debug)]
pub(crate) struct Provider {
    settings: Arc<ProviderSettings>,
    kind: Kind,
    /// The key the BFF's own client-credentials tokens are bound to (DPoP).
    client_dpop: Option<DpopKey>,
}

impl Provider {
    /// A provider whose discovery (if OIDC) is not fetched yet.
    pub(crate) fn new(settings: ProviderSettings, discovery_ttl: Duration) -> Self {
        let settings = Arc::new(settings);
        let kind = match &settings.protocol {
            Protocol::Oidc(o) => {
                let base = ClientBase {
                    client_id: settings.client_id.clone(),
                    secret: settings.client_secret.clone().unwrap_or_default(),
                    redirect_uri: settings.redirect_uri.clone(),
                };
                let setup = ClientSetup {
                    method: settings.client_auth,
                    key: settings.private_keys.first().cloned(),
                    audience: Some(settings.assertion_audience),
                    fapi2: settings.profile == Some(crate::config::Profile::Fapi2),
                    dpop: settings.dpop,
                };
                let discovery = Discovery::new(
                    &settings.id,
                    &o.issuer,
                    o.issuer_template.as_deref(),
                    base,
                    discovery_ttl,
                )
                .with_setup(setup);
                Kind::Oidc(oidc::Oidc::new(
                    settings.clone(),
                    o.clone(),
                    Arc::new(discovery),
                ))
            }
            Protocol::OAuth2(o) => Kind::OAuth2(Box::new(oauth2::OAuth2::new(
                settings.clone(),
                (**o).clone(),
            ))),
        };
        let client_dpop = settings.dpop.then(DpopKey::generate);
        Self {
            settings,
            kind,
            client_dpop,
        }
    }

    /// The key the BFF's own client-credentials tokens are bound to, when
    /// the provider binds tokens (DPoP).
    pub(crate) fn client_dpop_key(&self) -> Option<&DpopKey> {
        self.client_dpop.as_ref()
    }

    /// A new key for a login's tokens, when the provider binds tokens.
    pub(crate) fn new_login_key(&self) -> Option<DpopKey> {
        self.settings.dpop.then(DpopKey::generate)
    }

    /// The provider id.
    pub(crate) fn id(&self) -> &str {
        &self.settings.id
    }

    /// Its configuration.
    pub(crate) fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    /// OIDC or plain OAuth 2.0.
    pub(crate) fn kind(&self) -> ProviderKind {
        self.settings.kind()
    }

    /// Whether the provider can serve logins (OIDC: discovery loaded).
    pub(crate) fn is_ready(&self) -> bool {
        match &self.kind {
            Kind::Oidc(o) => o.discovery().is_ready(),
            Kind::OAuth2(_) => true,
        }
    }

    /// Loads discovery in the background until it succeeds (OIDC only).
    pub(crate) fn preload(&self, http: &HttpClient) {
        let Kind::Oidc(o) = &self.kind else {
            return;
        };
        let discovery = o.discovery().clone();
        let http = http.clone();
        let id = self.id().to_owned();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            while let Err(e) = discovery.get(&http).await {
                tracing::warn!(provider = %id, error = %e, "discovery failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        });
    }

    /// Starts an authorization request: PKCE S256, `state`, for OIDC a
    /// nonce and the login options `params` (checked against
    /// [`Provider::login_support`] by the caller), and with DPoP the key's
    /// thumbprint (`dpop_jkt`).
    pub(crate) async fn authorization_request(
        &self,
        http: &HttpClient,
        params: &AuthParams,
        dpop: Option<&DpopKey>,
    ) -> Result<AuthRequest, ProtocolError> {
        match &self.kind {
            Kind::Oidc(o) => o.authorization_request(http, params, dpop).await,
            Kind::OAuth2(o) => Ok(o.authorization_request()),
        }
    }

    /// Which login options the provider takes (OIDC: from discovery).
    pub(crate) async fn login_support(
        &self,
        http: &HttpClient,
    ) -> Result<LoginSupport, ProtocolError> {
        match &self.kind {
            Kind::Oidc(o) => o.login_support(http).await,
            Kind::OAuth2(_) => Ok(LoginSupport::none()),
        }
    }

    /// Completes a login: checks the response's issuer, exchanges the code
    /// once (with the verifier and the client's credentials), and finds out
    /// who signed in (the verified ID token, or the user endpoint).
    pub(crate) async fn complete_login(
        &self,
        http: &HttpClient,
        callback: Callback,
        pending: &Pending<'_>,
    ) -> Result<LoggedIn, ProtocolError> {
        match &self.kind {
            Kind::Oidc(o) => o.complete_login(http, callback, pending).await,
            Kind::OAuth2(o) => o.complete_login(http, callback, pending).await,
        }
    }

    /// Uses a refresh token; a new ID token is verified before it is returned.
    pub(crate) async fn refresh(
        &self,
        http: &HttpClient,
        refresh: &Secret,
        login: &LoginFacts<'_>,
    ) -> Result<TokenSet, RefreshError> {
        match &self.kind {
            Kind::Oidc(o) => o.refresh(http, refresh, login).await,
            Kind::OAuth2(o) => o.refresh(http, refresh).await,
        }
    }

    /// A client-credentials token of the BFF itself.
    pub(crate) async fn client_credentials(
        &self,
        http: &HttpClient,
        scopes: &[String],
    ) -> Result<TokenSet, ProtocolError> {
        match &self.kind {
            Kind::Oidc(o) => {
                o.client_credentials(http, scopes, self.client_dpop.as_ref())
                    .await
            }
            Kind::OAuth2(o) => o.client_credentials(http, scopes).await,
        }
    }

    /// The user's information at the provider, fetched with the access
    /// token (and a proof of `dpop`, for bound tokens); its subject must be
    /// `sub`.
    pub(crate) async fn userinfo(
        &self,
        http: &HttpClient,
        access_token: &Secret,
        sub: &str,
        dpop: Option<&DpopKey>,
    ) -> Result<serde_json::Value, ProtocolError> {
        match &self.kind {
            Kind::Oidc(o) => o.userinfo(http, access_token, sub, dpop).await,
            Kind::OAuth2(o) => o.userinfo(http, access_token, sub).await,
        }
    }

    /// Revokes a token (RFC 7009); `None` when the provider has no
    /// revocation endpoint.
    pub(crate) async fn revoke(
        &self,
        http: &HttpClient,
        token: &Secret,
        kind: TokenKind,
    ) -> Option<Result<(), String>> {
        match &self.kind {
            Kind::Oidc(o) => o.revoke(http, token, kind).await,
            Kind::OAuth2(o) => o.revoke(http, token, kind).await,
        }
    }

    /// The provider's end-session URL, when it has one (OIDC).
    pub(crate) async fn end_session_url(
        &self,
        http: &HttpClient,
        id_token: Option<&Secret>,
        post_logout: &Url,
    ) -> Option<Url> {
        match &self.kind {
            Kind::Oidc(o) => o.end_session_url(http, id_token, post_logout).await,
            Kind::OAuth2(_) => None,
        }
    }
}

/// The scopes to send: `openid` is added by openidconnect itself.
fn scopes_of(settings: &ProviderSettings) -> impl Iterator<Item = String> + '_ {
    settings
        .scopes
        .iter()
        .filter(|s| s.as_str() != "openid")
        .cloned()
}

/// Fetches JSON from a provider's user endpoint with the access token; a
/// bound token goes with a proof of its key (`dpop`: the key and the
/// provider's id), and a nonce challenge is answered once.
async fn get_json(
    http: &HttpClient,
    url: Url,
    access_token: &Secret,
    dpop: Option<(&DpopKey, &str)>,
) -> Result<serde_json::Value, ProtocolError> {
    let nonces = http.dpop_nonces();
    let mut retried = false;
    let (status, body) = loop {
        let mut request = http
            .reqwest()
            .get(url.clone())
            .header("accept", "application/json");
        request = match dpop {
            None => request.bearer_auth(access_token.expose()),
            Some((key, _)) => {
                let proof = key
                    .proof(
                        "GET",
                        &url,
                        Some(access_token.expose()),
                        nonces.get(&url).as_deref(),
                    )
                    .map_err(ProtocolError::Provider)?;
                let auth = dpop::authorization(access_token).map_err(ProtocolError::Provider)?;
                request.header("authorization", auth).header("dpop", proof)
            }
        };
        let (status, headers, body) = http
            .send_full(request)
            .await
            .map_err(|e| e.during("user endpoint"))?;
        let Some((_, provider)) = dpop else {
            break (status, body);
        };
        nonces.remember(&url, &headers);
        if retried || !dpop::is_resource_challenge(status, &headers) {
            break (status, body);
        }
        nonces.count_retry(Peer::Provider(provider));
        retried = true;
    };
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(ProtocolError::AccessTokenRejected);
    }
    if !status.is_success() {
        return Err(ProtocolError::Provider(format!(
            "user endpoint answered HTTP {status}"
        )));
    }
    serde_json::from_slice(&body)
        .map_err(|_| ProtocolError::Provider("the user endpoint's answer is not JSON".into()))
}

/// All configured providers, in configuration order.
#[derive(Debug, Default)]
pub(crate) struct Providers {
    list: Vec<Arc<Provider>>,
}

impl Providers {
    /// The configured providers.
    pub(crate) fn new(settings: &[ProviderSettings], discovery_ttl: Duration) -> Self {
        Self {
            list: settings
                .iter()
                .map(|s| Arc::new(Provider::new(s.clone(), discovery_ttl)))
                .collect(),
        }
    }

    /// By id, or the first one when `id` is `None`.
    pub(crate) fn get(&self, id: Option<&str>) -> Option<&Arc<Provider>> {
        match id {
            None => self.list.first(),
            Some(id) => self.list.iter().find(|p| p.id() == id),
        }
    }

    /// Every provider.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.list.iter()
    }

    /// The public keys of every provider's `private_key_jwt` keys, each key
    /// id once, in configuration order (the JWK set at `/bff/jwks`).
    pub(crate) fn public_jwks(&self) -> Vec<&jsonwebtoken::jwk::Jwk> {
        let mut seen = std::collections::HashSet::new();
        self.list
            .iter()
            .flat_map(|p| p.settings.private_keys.iter())
            .filter(|k| seen.insert(k.kid().to_owned()))
            .map(|k| k.public_jwk())
            .collect()
    }

    /// Whether there is exactly one provider (its callback is `/callback`).
    pub(crate) fn single(&self) -> bool {
        self.list.len() == 1
    }

    /// Whether every provider can serve logins.
    pub(crate) fn all_ready(&self) -> bool {
        self.list.iter().all(|p| p.is_ready())
    }

    /// Verifies a back-channel logout token: the provider is the one whose
    /// issuer (or issuer template) and client id the token names — read
    /// unverified only to choose — and that provider's verifier decides.
    pub(crate) async fn verify_logout_token(
        &self,
        http: &HttpClient,
        token: &str,
    ) -> Result<(Arc<Provider>, VerifiedClaims), ProtocolError> {
        let invalid = |why: &str| ProtocolError::InvalidLogoutToken(why.to_owned());
        if token.len() > 16 * 1024 {
            return Err(invalid("too long"));
        }
        let parsed = verify::SignedToken::from_str(token)
            .map_err(|_| invalid("not a signed JWT with the expected claims"))?;
        let (iss, aud) = verify::addressed_to(token).ok_or_else(|| invalid("no iss or aud"))?;
        let (provider, oidc) = self
            .list
            .iter()
            .find_map(|p| match &p.kind {
                Kind::Oidc(o) if o.addressed_by(&iss, &aud) => Some((p, o)),
                _ => None,
            })
            .ok_or_else(|| invalid("iss and aud name no configured provider"))?;
        let claims = oidc.verify_logout_token(http, &parsed).await?;
        Ok((provider.clone(), claims))
    }
}

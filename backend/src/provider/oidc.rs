//! The flows of an OpenID Connect provider, on openidconnect's client built
//! from discovery: the authorization request (pushed when enabled or
//! required), the code exchange and the ID token, refresh (and its ID token,
//! OpenID Connect Core §12.2), client credentials, userinfo, revocation,
//! the end-session URL and back-channel logout tokens.

use super::claims::{Identity, VerifiedClaims};
use super::discovery::{Discovered, Discovery, TokenResponse};
use super::dpop::{DpopKey, Peer, USE_DPOP_NONCE};
use super::error::{ProtocolError, RefreshError, error_code_of, refresh_error, token_error};
use super::http::{HttpClient, HttpError};
use super::login_params::{AuthLevel, AuthParams, LoginSupport};
use super::revocation::{self, TokenKind};
use super::verify::{self, Expect, Refusal, SignedToken};
use super::{AuthRequest, Callback, LoggedIn, LoginFacts, Pending, TokenSet};
use crate::config::{OidcSettings, ProviderSettings};
use crate::secret::Secret;
use keyway_shared::Prompt;
use openidconnect::core::{CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClientId, CsrfToken, EndSessionUrl, LoginHint,
    LogoutRequest, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, RefreshToken, RequestTokenError, Scope, StandardErrorResponse,
    TokenResponse as _,
};
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use url::Url;

/// How a token request fails.
type TokenError = RequestTokenError<HttpError, StandardErrorResponse<CoreErrorResponseType>>;

/// RFC 9449 §5: a token asked for with a proof must come back DPoP-bound;
/// a bearer token would be usable by anyone who sees it.
fn check_binding(response: &TokenResponse, dpop: bool) -> Result<(), TokenError> {
    let bound = response.token_type().as_ref().eq_ignore_ascii_case("dpop");
    if dpop && !bound {
        return Err(RequestTokenError::Other(
            "the provider answered a DPoP token request with a token that is not DPoP-bound".into(),
        ));
    }
    Ok(())
}

/// An OpenID Connect provider.
#[derive(Debug)]
pub(crate) struct Oidc {
    settings: Arc<ProviderSettings>,
    oidc: OidcSettings,
    discovery: Arc<Discovery>,
}

impl Oidc {
    /// The provider of `settings`, whose discovery is not loaded yet.
    pub(crate) fn new(
        settings: Arc<ProviderSettings>,
        oidc: OidcSettings,
        discovery: Arc<Discovery>,
    ) -> Self {
        Self {
            settings,
            oidc,
            discovery,
        }
    }

    /// The discovery cache.
    pub(crate) fn discovery(&self) -> &Arc<Discovery> {
        &self.discovery
    }

    pub(super) async fn authorization_request(
        &self,
        http: &HttpClient,
        params: &AuthParams,
        dpop: Option<&DpopKey>,
    ) -> Result<AuthRequest, ProtocolError> {
        let disc = self.discovery.get(http).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = disc
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge)
            .add_scopes(super::scopes_of(&self.settings).map(Scope::new));
        for (k, v) in &self.settings.auth_params {
            if !params.overrides(k) {
                request = request.add_extra_param(k.clone(), v.clone());
            }
        }
        if let Some(prompt) = params.prompt {
            request = request.add_prompt(match prompt {
                Prompt::None => CoreAuthPrompt::None,
                Prompt::Login => CoreAuthPrompt::Login,
                Prompt::Consent => CoreAuthPrompt::Consent,
                Prompt::SelectAccount => CoreAuthPrompt::SelectAccount,
                Prompt::Create => CoreAuthPrompt::Extension(prompt.as_str().to_owned()),
            });
        }
        if let Some(max_age) = params.max_age {
            request = request.set_max_age(max_age);
        }
        for acr in &params.acr_values {
            request = request.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
        }
        if let Some(hint) = &params.login_hint {
            request = request.set_login_hint(LoginHint::new(hint.clone()));
        }
        if let Some(key) = dpop {
            // RFC 9449 §10: the code is bound to the key that redeems it.
            request = request.add_extra_param("dpop_jkt", key.jkt().to_owned());
        }
        let (url, state, nonce) = request.url();
        let url = self.maybe_push(http, &disc, url).await?;
        Ok(AuthRequest {
            url,
            state: state.secret().clone(),
            nonce: Some(nonce.secret().clone()),
            verifier: verifier.secret().clone(),
            issuer: Some(disc.issuer().to_owned()),
        })
    }

    /// The login options this provider takes, from its discovery.
    pub(super) async fn login_support(
        &self,
        http: &HttpClient,
    ) -> Result<LoginSupport, ProtocolError> {
        let disc = self.discovery.get(http).await?;
        Ok(LoginSupport {
            oidc: true,
            prompts: disc
                .metadata
                .additional_metadata()
                .prompt_values_supported
                .clone(),
            acr_values: disc
                .metadata
                .acr_values_supported()
                .map(|list| list.iter().map(|a| a.as_str().to_owned()).collect()),
        })
    }

    /// RFC 9126: pushed when enabled (or required by the provider) and advertised.
    async fn maybe_push(
        &self,
        http: &HttpClient,
        disc: &Discovered,
        url: Url,
    ) -> Result<Url, ProtocolError> {
        let extra = disc.metadata.additional_metadata();
        let required = extra.require_pushed_authorization_requests.unwrap_or(false);
        match extra.pushed_authorization_request_endpoint.as_deref() {
            Some(endpoint) if self.settings.par || required => {
                let authorize = disc.metadata.authorization_endpoint().url();
                super::par::push(http, &disc.credentials, endpoint, authorize, &url).await
            }
            _ => Ok(url),
        }
    }

    /// Mix-up defence (RFC 9207) before anything is sent to the provider:
    /// `iss`, when present or promised by discovery, must be the issuer the
    /// login went to, and the provider's issuer must not have changed.
    fn check_issuer(
        &self,
        disc: &Discovered,
        iss: Option<&str>,
        pending: &Pending<'_>,
    ) -> Result<(), ProtocolError> {
        let expected = pending.issuer.unwrap_or_default();
        match iss {
            Some(iss) if !self.issuer_matches(expected, iss) => {
                return Err(ProtocolError::IssuerMismatch("iss is another issuer"));
            }
            None if disc.requires_iss() || self.settings.profile.is_some() => {
                return Err(ProtocolError::IssuerMismatch(
                    "the provider sends iss, but the response has none",
                ));
            }
            _ => {}
        }
        if disc.issuer() != expected {
            return Err(ProtocolError::IssuerMismatch(
                "the provider's issuer changed since the login started",
            ));
        }
        Ok(())
    }

    /// Whether `got` (an authorization response's `iss`) is `expected`, or
    /// for a templated issuer, the template with some tenant.
    fn issuer_matches(&self, expected: &str, got: &str) -> bool {
        match &self.oidc.issuer_template {
            None => expected == got,
            Some(template) => verify::matches_template(template, got),
        }
    }

    pub(super) async fn complete_login(
        &self,
        http: &HttpClient,
        callback: Callback,
        pending: &Pending<'_>,
    ) -> Result<LoggedIn, ProtocolError> {
        let disc = self.discovery.get(http).await?;
        self.check_issuer(&disc, callback.iss.as_deref(), pending)?;
        let sender = http.oidc_with(pending.dpop.cloned());
        let (client, code) = (&disc.client, &callback.code);
        let response = self
            .token_request(http, &disc, pending.dpop, |extra| {
                let code = AuthorizationCode::new(code.clone());
                let verifier = PkceCodeVerifier::new(pending.verifier.to_owned());
                let sender = &sender;
                async move {
                    let mut request = client.exchange_code(code).map_err(no_token_endpoint)?;
                    for (k, v) in extra {
                        request = request.add_extra_param(k, v);
                    }
                    request
                        .set_pkce_verifier(verifier)
                        .request_async(sender)
                        .await
                }
            })
            .await
            .map_err(token_error)?;
        let id_token = response.id_token().ok_or_else(|| {
            ProtocolError::InvalidIdToken("the token response has no id_token".into())
        })?;
        let nonce = pending.nonce.unwrap_or_default();
        let claims = self
            .verify(http, disc, id_token, Expect::Login { nonce })
            .await
            .map_err(ProtocolError::InvalidIdToken)?;
        Ok(LoggedIn {
            tokens: TokenSet::of(&response, Some(id_token.to_string())),
            identity: Identity::of_id_token(&claims),
            sid: claims.additional_claims().sid.clone(),
            nonce: pending.nonce.map(str::to_owned),
            level: AuthLevel {
                acr: claims.auth_context_ref().map(|a| a.as_str().to_owned()),
                auth_time: claims
                    .auth_time()
                    .and_then(|t| u64::try_from(t.timestamp()).ok()),
            },
        })
    }

    /// Sends a token request that `send` makes with the authentication
    /// parameters it is given (a fresh client assertion each time, if any)
    /// through the DPoP-aware adapter; a DPoP nonce challenge gets one
    /// retry with a fresh proof, and a DPoP request must get a bound token.
    async fn token_request<F, Fut>(
        &self,
        http: &HttpClient,
        disc: &Discovered,
        dpop: Option<&DpopKey>,
        send: F,
    ) -> Result<TokenResponse, TokenError>
    where
        F: Fn(Vec<(String, String)>) -> Fut,
        Fut: Future<Output = Result<TokenResponse, TokenError>>,
    {
        let token_url = disc
            .metadata
            .token_endpoint()
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default();
        let params = || {
            disc.credentials
                .token_params(&token_url)
                .map_err(RequestTokenError::Other)
        };
        let response = match send(params()?).await {
            Err(RequestTokenError::ServerResponse(r))
                if dpop.is_some() && error_code_of(&r).as_deref() == Some(USE_DPOP_NONCE) =>
            {
                http.dpop_nonces()
                    .count_retry(Peer::Provider(&self.settings.id));
                send(params()?).await?
            }
            other => other?,
        };
        check_binding(&response, dpop.is_some())?;
        Ok(response)
    }

    /// Verifies a signed token; on an unknown `kid` fetches the JWKS again
    /// (rate-limited by [`Discovery::refetch_jwks`]) and tries once more.
    pub(super) async fn verify(
        &self,
        http: &HttpClient,
        disc: Arc<Discovered>,
        token: &SignedToken,
        expect: Expect<'_>,
    ) -> Result<VerifiedClaims, String> {
        let client_id = &self.settings.client_id;
        match verify::verify(&disc, &self.oidc, client_id, token, expect) {
            Ok(claims) => Ok(claims),
            Err(Refusal::Invalid(why)) => Err(why),
            Err(Refusal::UnknownKey) => {
                let fresh = self.discovery.refetch_jwks(http, &disc).await.map_err(|e| {
                    format!("no key of the provider matches and the JWKS could not be fetched again ({e})")
                })?;
                verify::verify(&fresh, &self.oidc, client_id, token, expect).map_err(|r| match r {
                    Refusal::UnknownKey => {
                        "no key of the provider matches the token's key id".into()
                    }
                    Refusal::Invalid(why) => why,
                })
            }
        }
    }

    pub(super) async fn refresh(
        &self,
        http: &HttpClient,
        refresh: &Secret,
        login: &LoginFacts<'_>,
    ) -> Result<TokenSet, RefreshError> {
        let disc = self.discovery.get(http).await?;
        let sender = http.oidc_with(login.dpop.cloned());
        let (client, token) = (
            &disc.client,
            &RefreshToken::new(refresh.expose().to_owned()),
        );
        let response = self
            .token_request(http, &disc, login.dpop, |extra| {
                let sender = &sender;
                async move {
                    let mut request = client
                        .exchange_refresh_token(token)
                        .map_err(no_token_endpoint)?;
                    for (k, v) in extra {
                        request = request.add_extra_param(k, v);
                    }
                    request.request_async(sender).await
                }
            })
            .await
            .map_err(refresh_error)?;
        // OpenID Connect Core §12.2: a new ID token is checked before it
        // replaces the login's (or is ever sent as id_token_hint).
        let id_token = match response.id_token() {
            Some(token) => {
                let expect = Expect::Refresh {
                    sub: login.sub,
                    nonce: login.nonce,
                };
                self.verify(http, disc, token, expect)
                    .await
                    .map_err(RefreshError::InvalidIdToken)?;
                Some(token.to_string())
            }
            None => None,
        };
        Ok(TokenSet::of(&response, id_token))
    }

    pub(super) async fn client_credentials(
        &self,
        http: &HttpClient,
        scopes: &[String],
        dpop: Option<&DpopKey>,
    ) -> Result<TokenSet, ProtocolError> {
        let disc = self.discovery.get(http).await?;
        let sender = http.oidc_with(dpop.cloned());
        let client = &disc.client;
        let response = self
            .token_request(http, &disc, dpop, |extra| {
                let sender = &sender;
                async move {
                    let mut request = client
                        .exchange_client_credentials()
                        .map_err(no_token_endpoint)?
                        .add_scopes(scopes.iter().cloned().map(Scope::new));
                    for (k, v) in extra {
                        request = request.add_extra_param(k, v);
                    }
                    request.request_async(sender).await
                }
            })
            .await
            .map_err(|e| match token_error(e) {
                ProtocolError::TokenExchange(why) => {
                    ProtocolError::Provider(format!("client credentials: {why}"))
                }
                other => other,
            })?;
        Ok(TokenSet::of(&response, None))
    }

    pub(super) async fn userinfo(
        &self,
        http: &HttpClient,
        access_token: &Secret,
        sub: &str,
        dpop: Option<&DpopKey>,
    ) -> Result<serde_json::Value, ProtocolError> {
        let disc = self.discovery.get(http).await?;
        let url = disc
            .metadata
            .userinfo_endpoint()
            .map(|u| u.url().clone())
            .ok_or_else(|| {
                ProtocolError::Provider("the provider has no userinfo endpoint".into())
            })?;
        let dpop = dpop.map(|k| (k, self.settings.id.as_str()));
        let json = super::get_json(http, url, access_token, dpop).await?;
        // OpenID Connect Core 5.3.2: the userinfo sub must be the ID token's.
        if json.get("sub").and_then(|s| s.as_str()) != Some(sub) {
            return Err(ProtocolError::Provider(
                "userinfo names another subject".into(),
            ));
        }
        Ok(json)
    }

    pub(super) async fn revoke(
        &self,
        http: &HttpClient,
        token: &Secret,
        kind: TokenKind,
    ) -> Option<Result<(), String>> {
        let disc = self.discovery.get(http).await.ok()?;
        let endpoint = disc
            .metadata
            .additional_metadata()
            .revocation_endpoint
            .as_deref()?;
        let endpoint = Url::parse(endpoint).ok()?;
        Some(revocation::revoke(http, &disc.credentials, &endpoint, token, kind).await)
    }

    /// RP-Initiated Logout: the end-session URL with `id_token_hint`,
    /// `post_logout_redirect_uri`, `client_id` and a fresh `state`.
    pub(super) async fn end_session_url(
        &self,
        http: &HttpClient,
        id_token: Option<&Secret>,
        post_logout: &Url,
    ) -> Option<Url> {
        let disc = self.discovery.get(http).await.ok()?;
        let endpoint = disc
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .as_deref()?;
        let mut request = LogoutRequest::from(EndSessionUrl::new(endpoint.to_owned()).ok()?)
            .set_post_logout_redirect_uri(PostLogoutRedirectUrl::from_url(post_logout.clone()))
            .set_client_id(ClientId::new(self.settings.client_id.clone()))
            .set_state(CsrfToken::new_random());
        if let Some(token) = id_token.and_then(|t| SignedToken::from_str(t.expose()).ok()) {
            request = request.set_id_token_hint(&token);
        }
        Some(request.http_get_url())
    }

    /// Whether a logout token names this provider and client: its `iss`
    /// (or, templated, any tenant's) and `aud` — read without verifying,
    /// only to choose which provider verifies it.
    pub(super) fn addressed_by(&self, iss: &str, aud: &[String]) -> bool {
        let issuer_ok = match &self.oidc.issuer_template {
            None => iss == self.oidc.issuer,
            Some(template) => verify::matches_template(template, iss),
        };
        issuer_ok && aud.iter().any(|a| *a == self.settings.client_id)
    }

    pub(super) async fn verify_logout_token(
        &self,
        http: &HttpClient,
        token: &SignedToken,
    ) -> Result<VerifiedClaims, ProtocolError> {
        let disc = self.discovery.get(http).await?;
        self.verify(http, disc, token, Expect::Logout)
            .await
            .map_err(ProtocolError::InvalidLogoutToken)
    }
}

/// A client built without a token endpoint (discovery always has one).
fn no_token_endpoint(e: openidconnect::ConfigurationError) -> TokenError {
    RequestTokenError::Other(format!("no token endpoint: {e}"))
}

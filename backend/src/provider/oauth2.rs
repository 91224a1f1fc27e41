//! The flows of a plain OAuth 2.0 provider (GitHub and the like), on
//! oauth2's client built from the configured endpoints: no discovery, no ID
//! token; the user comes from the provider's user endpoint, read with the
//! configured claim map.

use super::claims::Identity;
use super::client_auth::{ClientAuth, Credentials};
use super::error::{ProtocolError, RefreshError, refresh_error, token_error};
use super::http::HttpClient;
use super::revocation::{self, TokenKind};
use super::{AuthRequest, Callback, LoggedIn, Pending, TokenSet};
use crate::config::{OAuth2Settings, ProviderSettings};
use crate::secret::Secret;
use oauth2::{
    AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RefreshToken, Scope,
};
use serde_json::Value;
use std::sync::Arc;

/// The oauth2 client of a plain OAuth 2.0 provider.
type Client = oauth2::basic::BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// A plain OAuth 2.0 provider.
#[derive(Debug)]
pub(crate) struct OAuth2 {
    settings: Arc<ProviderSettings>,
    oauth2: OAuth2Settings,
    client: Client,
    credentials: Credentials,
}

impl OAuth2 {
    /// The provider of `settings`.
    pub(crate) fn new(settings: Arc<ProviderSettings>, oauth2: OAuth2Settings) -> Self {
        // Nothing is advertised: the configured method, else RFC 6749's
        // default, basic (the assertion methods are refused for plain OAuth
        // 2.0 providers when the configuration is read).
        let auth = ClientAuth::configured_or(settings.client_auth, None);
        let secret = settings.client_secret.clone().unwrap_or_default();
        let client =
            oauth2::basic::BasicClient::new(oauth2::ClientId::new(settings.client_id.clone()))
                .set_client_secret(oauth2::ClientSecret::new(secret.expose().to_owned()))
                .set_auth_uri(oauth2::AuthUrl::from_url(
                    oauth2.endpoints.authorization.clone(),
                ))
                .set_token_uri(oauth2::TokenUrl::from_url(oauth2.endpoints.token.clone()))
                .set_redirect_uri(oauth2::RedirectUrl::from_url(settings.redirect_uri.clone()))
                .set_auth_type(auth.auth_type());
        let credentials = Credentials {
            client_id: settings.client_id.clone(),
            secret,
            auth,
            assertions: None,
        };
        Self {
            settings,
            oauth2,
            client,
            credentials,
        }
    }

    pub(super) fn authorization_request(&self) -> AuthRequest {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .client
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge)
            .add_scopes(super::scopes_of(&self.settings).map(Scope::new));
        for (k, v) in &self.settings.auth_params {
            request = request.add_extra_param(k.clone(), v.clone());
        }
        let (url, state) = request.url();
        AuthRequest {
            url,
            state: state.secret().clone(),
            nonce: None,
            verifier: verifier.secret().clone(),
            issuer: None,
        }
    }

    pub(super) async fn complete_login(
        &self,
        http: &HttpClient,
        callback: Callback,
        pending: &Pending<'_>,
    ) -> Result<LoggedIn, ProtocolError> {
        // A plain OAuth 2.0 provider has no issuer: an `iss` belongs to another provider.
        if callback.iss.is_some() {
            return Err(ProtocolError::IssuerMismatch(
                "iss on a response to a plain OAuth 2.0 login",
            ));
        }
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(callback.code))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.to_owned()))
            .request_async(&http.oidc())
            .await
            .map_err(token_error)?;
        let tokens = TokenSet::of(&response, None);
        let identity = self.identity(http, &tokens.access_token).await?;
        Ok(LoggedIn {
            tokens,
            identity,
            sid: None,
            nonce: None,
            level: Default::default(),
        })
    }

    /// The user, from the user endpoint with the claim map (and, for GitHub,
    /// the primary verified e-mail from its e-mail list).
    async fn identity(
        &self,
        http: &HttpClient,
        access_token: &Secret,
    ) -> Result<Identity, ProtocolError> {
        let endpoints = &self.oauth2.endpoints;
        let user = super::get_json(http, endpoints.user.clone(), access_token, None).await?;
        let mut identity = Identity::of_user_json(&user, &self.oauth2.claims).ok_or_else(|| {
            ProtocolError::Provider("the user endpoint's answer has no subject".into())
        })?;
        if let Some(emails) = &endpoints.emails {
            let list = super::get_json(http, emails.clone(), access_token, None).await?;
            let primary = list.as_array().and_then(|a| {
                a.iter().find(|m| {
                    m.get("primary") == Some(&Value::Bool(true))
                        && m.get("verified") == Some(&Value::Bool(true))
                })
            });
            identity.email = primary
                .and_then(|m| m.get("email"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            identity.email_verified = identity.email.as_ref().map(|_| true);
        }
        Ok(identity)
    }

    pub(super) async fn refresh(
        &self,
        http: &HttpClient,
        refresh: &Secret,
    ) -> Result<TokenSet, RefreshError> {
        self.client
            .exchange_refresh_token(&RefreshToken::new(refresh.expose().to_owned()))
            .request_async(&http.oidc())
            .await
            .map(|r| TokenSet::of(&r, None))
            .map_err(refresh_error)
    }

    pub(super) async fn client_credentials(
        &self,
        http: &HttpClient,
        scopes: &[String],
    ) -> Result<TokenSet, ProtocolError> {
        self.client
            .exchange_client_credentials()
            .add_scopes(scopes.iter().cloned().map(Scope::new))
            .request_async(&http.oidc())
            .await
            .map(|r| TokenSet::of(&r, None))
            .map_err(|e| match token_error(e) {
                ProtocolError::TokenExchange(why) => {
                    ProtocolError::Provider(format!("client credentials: {why}"))
                }
                other => other,
            })
    }

    /// The user endpoint's JSON; its subject (by the claim map) must be the session's.
    pub(super) async fn userinfo(
        &self,
        http: &HttpClient,
        access_token: &Secret,
        sub: &str,
    ) -> Result<Value, ProtocolError> {
        let json =
            super::get_json(http, self.oauth2.endpoints.user.clone(), access_token, None).await?;
        let got = Identity::of_user_json(&json, &self.oauth2.claims).map(|i| i.sub);
        if got.as_deref() != Some(sub) {
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
        let endpoint = self.oauth2.endpoints.revocation.as_ref()?;
        Some(revocation::revoke(http, &self.credentials, endpoint, token, kind).await)
    }
}

//! The protocol operations of a provider, the same for OpenID Connect and
//! plain OAuth 2.0 callers: the authorization request (with PAR when
//! enabled), the code exchange, refresh, client credentials, and the user of
//! a plain OAuth 2.0 provider.
//!
//! OpenID Connect goes through the openidconnect client built from
//! discovery; plain OAuth 2.0 through an oauth2 client built from the
//! configured endpoints. Either way PKCE S256 and `state` are always used.

use super::http::{HttpClient, HttpError, send_to_provider};
use super::{Discovered, Provider};
use crate::config::Endpoints;
use crate::error::{Error, clean_error_code};
use crate::secret::Secret;
use crate::session::Identity;
use keyway_shared::ProviderKind;
use oauth2::{
    AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RefreshToken,
    RequestTokenError, Scope,
};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{Nonce, OAuth2TokenResponse, TokenResponse};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The oauth2 client of a plain OAuth 2.0 provider.
pub type OAuth2Client = oauth2::basic::BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// A started authorization request.
#[derive(Debug)]
pub struct AuthRequest {
    /// Where to send the browser.
    pub url: Url,
    /// The `state`.
    pub state: String,
    /// The OIDC nonce (none for plain OAuth 2.0).
    pub nonce: Option<String>,
    /// The PKCE verifier.
    pub verifier: String,
    /// The issuer the request went to (empty for plain OAuth 2.0).
    pub issuer: String,
}

/// Tokens from a token endpoint.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// Access token.
    pub access_token: Secret,
    /// Refresh token, if any.
    pub refresh_token: Option<Secret>,
    /// Lifetime of the access token, if said.
    pub expires_in: Option<Duration>,
    /// The raw ID token (OIDC).
    pub id_token: Option<String>,
}

fn token_set<T: OAuth2TokenResponse>(t: &T, id_token: Option<String>) -> TokenSet {
    TokenSet {
        access_token: Secret::new(t.access_token().secret().clone()),
        refresh_token: t.refresh_token().map(|r| Secret::new(r.secret().clone())),
        expires_in: t.expires_in(),
        id_token,
    }
}

/// Why a refresh failed.
#[derive(Debug)]
pub enum RefreshError {
    /// The provider refused the refresh token (`invalid_grant`): the session is over.
    Refused,
    /// Anything else (network, provider fault): the session stays.
    Failed(Error),
}

/// Maps a token-endpoint failure; never quotes the response body.
pub fn token_error<T: oauth2::ErrorResponse>(e: RequestTokenError<HttpError, T>) -> Error {
    match e {
        RequestTokenError::Request(HttpError::Timeout) => Error::ProviderTimeout,
        RequestTokenError::Request(e) => Error::TokenExchangeFailed(e.to_string()),
        RequestTokenError::ServerResponse(r) => Error::TokenExchangeFailed(format!(
            "the token endpoint answered `{}`",
            clean_error_code(&error_code_of(&r).unwrap_or_else(|| "error response".into()))
        )),
        RequestTokenError::Parse(e, _) => {
            Error::TokenExchangeFailed(format!("unparsable token response at {}", e.path()))
        }
        RequestTokenError::Other(e) => Error::TokenExchangeFailed(e),
    }
}

fn error_code_of<T: serde::Serialize>(r: &T) -> Option<String> {
    serde_json::to_value(r)
        .ok()?
        .get("error")?
        .as_str()
        .map(str::to_owned)
}

impl Provider {
    /// Builds the oauth2 client of a plain OAuth 2.0 provider.
    pub(super) fn build_oauth2_client(&self) -> Option<OAuth2Client> {
        let Endpoints::OAuth2(e) = &self.settings.endpoints else {
            return None;
        };
        Some(
            oauth2::basic::BasicClient::new(oauth2::ClientId::new(self.settings.client_id.clone()))
                .set_client_secret(oauth2::ClientSecret::new(
                    self.settings.client_secret.expose().to_owned(),
                ))
                .set_auth_uri(oauth2::AuthUrl::from_url(e.authorization.clone()))
                .set_token_uri(oauth2::TokenUrl::from_url(e.token.clone()))
                .set_redirect_uri(self.redirect_uri.clone()),
        )
    }

    fn oauth2(&self) -> Result<&OAuth2Client, Error> {
        self.oauth2_client
            .as_ref()
            .ok_or_else(|| Error::Internal("no OAuth 2.0 client".into()))
    }

    fn discovered_oidc(&self) -> bool {
        self.kind() == ProviderKind::Oidc
    }

    /// Starts an authorization request: PKCE S256, `state`, and for OIDC a nonce.
    pub async fn authorization_request(&self, http: &HttpClient) -> Result<AuthRequest, Error> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let scopes = self
            .settings
            .scopes
            .iter()
            .filter(|s| s.as_str() != "openid")
            .map(|s| Scope::new(s.clone()));
        if self.discovered_oidc() {
            let disc = self.discovered(http).await?;
            let mut request = disc
                .client
                .authorize_url(
                    CoreAuthenticationFlow::AuthorizationCode,
                    CsrfToken::new_random,
                    Nonce::new_random,
                )
                .set_pkce_challenge(challenge)
                .add_scopes(scopes);
            for (k, v) in &self.settings.auth_params {
                request = request.add_extra_param(k.clone(), v.clone());
            }
            let (url, state, nonce) = request.url();
            let url = self.maybe_push(http, &disc, url).await?;
            Ok(AuthRequest {
                url,
                state: state.secret().clone(),
                nonce: Some(nonce.secret().clone()),
                verifier: verifier.secret().clone(),
                issuer: disc.issuer().to_owned(),
            })
        } else {
            let mut request = self
                .oauth2()?
                .authorize_url(CsrfToken::new_random)
                .set_pkce_challenge(challenge)
                .add_scopes(scopes);
            for (k, v) in &self.settings.auth_params {
                request = request.add_extra_param(k.clone(), v.clone());
            }
            let (url, state) = request.url();
            Ok(AuthRequest {
                url,
                state: state.secret().clone(),
                nonce: None,
                verifier: verifier.secret().clone(),
                issuer: String::new(),
            })
        }
    }

    /// RFC 9126: when enabled (or required by the provider) and advertised,
    /// pushes the request's parameters and sends the browser with only
    /// `client_id` and `request_uri`.
    async fn maybe_push(
        &self,
        http: &HttpClient,
        disc: &Discovered,
        url: Url,
    ) -> Result<Url, Error> {
        let extra = disc.metadata.additional_metadata();
        let required = extra.require_pushed_authorization_requests.unwrap_or(false);
        let Some(endpoint) = extra.pushed_authorization_request_endpoint.as_deref() else {
            return Ok(url);
        };
        if !self.settings.par && !required {
            return Ok(url);
        }
        let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let request = http
            .reqwest()
            .post(endpoint)
            .basic_auth(
                form_encode(&self.settings.client_id),
                Some(form_encode(self.settings.client_secret.expose())),
            )
            .form(&params);
        let (status, body) = send_to_provider(request, "PAR").await?;
        let json: Value = serde_json::from_slice(&body)
            .map_err(|_| Error::ProviderError("PAR answer is not JSON".into()))?;
        if !status.is_success() {
            let code = json
                .get("error")
                .and_then(Value::as_str)
                .map(clean_error_code)
                .unwrap_or_default();
            return Err(Error::ProviderError(format!(
                "PAR refused: HTTP {status} {code}"
            )));
        }
        let request_uri = json
            .get("request_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::ProviderError("PAR answer has no request_uri".into()))?;
        let mut pushed = disc.metadata.authorization_endpoint().url().clone();
        pushed
            .query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("request_uri", request_uri);
        Ok(pushed)
    }

    /// Exchanges an authorization code, once, with the PKCE verifier and the client secret.
    pub async fn exchange_code(
        &self,
        http: &HttpClient,
        disc: Option<&Arc<Discovered>>,
        code: String,
        verifier: &str,
    ) -> Result<TokenSet, Error> {
        let verifier = PkceCodeVerifier::new(verifier.to_owned());
        let code = AuthorizationCode::new(code);
        match disc {
            Some(disc) => {
                let response = disc
                    .client
                    .exchange_code(code)
                    .map_err(|e| Error::ProviderError(format!("no token endpoint: {e}")))?
                    .set_pkce_verifier(verifier)
                    .request_async(&http.oidc())
                    .await
                    .map_err(token_error)?;
                Ok(token_set(
                    &response,
                    response.id_token().map(|t| t.to_string()),
                ))
            }
            None => {
                let response = self
                    .oauth2()?
                    .exchange_code(code)
                    .set_pkce_verifier(verifier)
                    .request_async(&http.oidc())
                    .await
                    .map_err(token_error)?;
                Ok(token_set(&response, None))
            }
        }
    }

    /// Uses a refresh token.
    pub async fn refresh(
        &self,
        http: &HttpClient,
        refresh: &Secret,
    ) -> Result<TokenSet, RefreshError> {
        let token = RefreshToken::new(refresh.expose().to_owned());
        if self.discovered_oidc() {
            let disc = self.discovered(http).await.map_err(RefreshError::Failed)?;
            let request = disc.client.exchange_refresh_token(&token).map_err(|e| {
                RefreshError::Failed(Error::ProviderError(format!("no token endpoint: {e}")))
            })?;
            request
                .request_async(&http.oidc())
                .await
                .map(|r| token_set(&r, r.id_token().map(|t| t.to_string())))
                .map_err(refresh_error)
        } else {
            let client = self.oauth2().map_err(RefreshError::Failed)?;
            client
                .exchange_refresh_token(&token)
                .request_async(&http.oidc())
                .await
                .map(|r| token_set(&r, None))
                .map_err(refresh_error)
        }
    }

    /// A client-credentials token of the BFF itself.
    pub async fn client_credentials(
        &self,
        http: &HttpClient,
        scopes: &[String],
    ) -> Result<TokenSet, Error> {
        let scopes = scopes.iter().map(|s| Scope::new(s.clone()));
        let map = |e| match token_error(e) {
            Error::TokenExchangeFailed(why) => {
                Error::ProviderError(format!("client credentials: {why}"))
            }
            other => other,
        };
        if self.discovered_oidc() {
            let disc = self.discovered(http).await?;
            let request = disc
                .client
                .exchange_client_credentials()
                .map_err(|e| Error::ProviderError(format!("no token endpoint: {e}")))?
                .add_scopes(scopes);
            request
                .request_async(&http.oidc())
                .await
                .map(|r| token_set(&r, None))
                .map_err(map)
        } else {
            let request = self
                .oauth2()?
                .exchange_client_credentials()
                .add_scopes(scopes);
            request
                .request_async(&http.oidc())
                .await
                .map(|r| token_set(&r, None))
                .map_err(map)
        }
    }

    /// The endpoint that returns the user: OIDC userinfo, or the configured user endpoint.
    pub async fn user_endpoint(&self, http: &HttpClient) -> Result<Url, Error> {
        match &self.settings.endpoints {
            Endpoints::OAuth2(e) => Ok(e.user.clone()),
            Endpoints::Discover(_) => {
                let disc = self.discovered(http).await?;
                disc.metadata
                    .userinfo_endpoint()
                    .map(|u| u.url().clone())
                    .ok_or_else(|| {
                        Error::ProviderError("the provider has no userinfo endpoint".into())
                    })
            }
        }
    }

    /// The RFC 7009 revocation endpoint, if the provider has one.
    pub async fn revocation_endpoint(&self, http: &HttpClient) -> Option<Url> {
        match &self.settings.endpoints {
            Endpoints::OAuth2(e) => e.revocation.clone(),
            Endpoints::Discover(_) => {
                let disc = self.discovered(http).await.ok()?;
                Url::parse(
                    disc.metadata
                        .additional_metadata()
                        .revocation_endpoint
                        .as_deref()?,
                )
                .ok()
            }
        }
    }

    /// Fetches JSON from a user endpoint with the access token.
    pub async fn get_json(
        &self,
        http: &HttpClient,
        url: Url,
        access_token: &Secret,
    ) -> Result<Value, Error> {
        let request = http
            .reqwest()
            .get(url)
            .bearer_auth(access_token.expose())
            .header("accept", "application/json");
        let (status, body) = send_to_provider(request, "user endpoint").await?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(Error::SessionExpired(
                "the provider no longer accepts the access token",
            ));
        }
        if !status.is_success() {
            return Err(Error::ProviderError(format!(
                "user endpoint answered HTTP {status}"
            )));
        }
        serde_json::from_slice(&body)
            .map_err(|_| Error::ProviderError("the user endpoint's answer is not JSON".into()))
    }

    /// The user of a plain OAuth 2.0 provider, read from its user endpoint
    /// with the configured claim mapping (and, for GitHub, the primary
    /// verified e-mail from its e-mail list).
    pub async fn oauth2_identity(
        &self,
        http: &HttpClient,
        access_token: &Secret,
    ) -> Result<Identity, Error> {
        let Endpoints::OAuth2(e) = &self.settings.endpoints else {
            return Err(Error::Internal("not a plain OAuth 2.0 provider".into()));
        };
        let user = self.get_json(http, e.user.clone(), access_token).await?;
        let mut identity = map_identity(&user, &self.settings.claims).ok_or_else(|| {
            Error::ProviderError("the user endpoint's answer has no subject".into())
        })?;
        if let Some(emails) = &e.emails {
            let list = self.get_json(http, emails.clone(), access_token).await?;
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
}

fn refresh_error<T: oauth2::ErrorResponse>(e: RequestTokenError<HttpError, T>) -> RefreshError {
    if let RequestTokenError::ServerResponse(r) = &e
        && error_code_of(r).as_deref() == Some("invalid_grant")
    {
        return RefreshError::Refused;
    }
    RefreshError::Failed(match token_error(e) {
        Error::TokenExchangeFailed(why) => Error::ProviderError(format!("refresh failed: {why}")),
        other => other,
    })
}

/// RFC 6749 2.3.1: client id and secret are form-encoded before basic auth.
pub fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn first_string(v: &Value, keys: &[String]) -> Option<String> {
    keys.iter().find_map(|k| match v.get(k)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// Reads the user from a user endpoint's JSON with a claim map.
pub fn map_identity(v: &Value, claims: &crate::config::ClaimMap) -> Option<Identity> {
    Some(Identity {
        sub: first_string(v, &claims.sub)?,
        name: first_string(v, &claims.name),
        email: first_string(v, &claims.email),
        email_verified: v.get("email_verified").and_then(Value::as_bool),
        picture: first_string(v, &claims.picture),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClaimMap;

    #[test]
    fn github_user_maps_numeric_id_and_login_fallback() {
        let claims = crate::provider::presets::resolve("github", &Default::default())
            .unwrap()
            .claims;
        let v = serde_json::json!({"id": 583231, "login": "octocat", "name": null, "avatar_url": "https://a/x.png"});
        let id = map_identity(&v, &claims).unwrap();
        assert_eq!(id.sub, "583231");
        assert_eq!(id.name.as_deref(), Some("octocat"));
        assert_eq!(id.picture.as_deref(), Some("https://a/x.png"));
        assert!(
            map_identity(&serde_json::json!({"login": "x"}), &claims).is_none(),
            "no id, no user"
        );
        assert_eq!(
            map_identity(&serde_json::json!({"sub": "s"}), &ClaimMap::default())
                .unwrap()
                .sub,
            "s"
        );
    }
}

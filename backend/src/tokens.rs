//! The token lifecycle: refresh before use (single flight per session),
//! revocation (RFC 7009) and the end-session URL (RP-initiated logout).

use crate::app::App;
use crate::error::Error;
use crate::login::token_error;
use crate::secret::Secret;
use crate::session::{SessionData, now_secs};
use openidconnect::core::CoreRevocableToken;
use openidconnect::{AccessToken, OAuth2TokenResponse, RefreshToken, RevocationUrl};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use tower_sessions::session::Id;
use url::Url;

/// One lock per session that is refreshing, so that concurrent requests of a
/// session in this process send one refresh grant.
#[derive(Debug, Default)]
pub struct RefreshFlights {
    locks: Mutex<HashMap<Id, Weak<tokio::sync::Mutex<()>>>>,
}

impl RefreshFlights {
    fn lock_for(&self, id: Id) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.locks.lock().expect("flight map");
        map.retain(|_, w| w.strong_count() > 0);
        if let Some(existing) = map.get(&id).and_then(Weak::upgrade) {
            return existing;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(id, Arc::downgrade(&lock));
        lock
    }
}

/// Whether an access token must be refreshed before use: it expires within
/// the skew, the skew being at most half of the token's lifetime.
pub fn needs_refresh(data: &SessionData, skew_secs: u64, now: u64) -> bool {
    let Some(expires_at) = data.tokens.access_expires_at else {
        return false;
    };
    let lifetime = expires_at.saturating_sub(data.tokens.access_issued_at);
    let skew = skew_secs.min(lifetime / 2);
    now + skew >= expires_at
}

/// Returns the session with an access token fit for use, refreshing it first
/// when needed. A refused refresh ends the session (`401 session_expired`).
pub async fn ensure_fresh(app: &App, id: Id, data: SessionData) -> Result<SessionData, Error> {
    let skew = app.config.refresh_skew.as_secs();
    if !needs_refresh(&data, skew, now_secs()) {
        return Ok(data);
    }
    let lock = app.refresh_flights.lock_for(id);
    let _guard = lock.lock().await;
    // Someone else may have refreshed while this request waited.
    let Some((_, data)) = app.sessions.load(&id.to_string()).await? else {
        return Err(Error::SessionExpired(
            "the session ended while waiting for a refresh",
        ));
    };
    if !needs_refresh(&data, skew, now_secs()) {
        return Ok(data);
    }
    let Some(refresh_token) = data.tokens.refresh_token.clone() else {
        return Err(Error::SessionExpired(
            "access token expired and there is no refresh token",
        ));
    };
    let provider = app
        .providers
        .get(Some(&data.provider))
        .ok_or(Error::UnknownProvider)?
        .clone();
    let disc = provider.discovered(&app.http).await?;
    let token = RefreshToken::new(refresh_token.expose().to_owned());
    let request = disc
        .client
        .exchange_refresh_token(&token)
        .map_err(|e| Error::ProviderError(format!("no token endpoint: {e}")))?;
    match request.request_async(&app.http.oidc()).await {
        Ok(response) => {
            let now = now_secs();
            let mut data = data;
            data.tokens.access_token = Secret::new(response.access_token().secret().clone());
            data.tokens.access_issued_at = now;
            data.tokens.access_expires_at = response.expires_in().map(|d| now + d.as_secs());
            // A rotated refresh token replaces the old one in the same write.
            if let Some(new_refresh) = response.refresh_token() {
                data.tokens.refresh_token = Some(Secret::new(new_refresh.secret().clone()));
            }
            app.sessions.save(id, &data).await?;
            tracing::info!(provider = %data.provider, "access token refreshed");
            Ok(data)
        }
        Err(openidconnect::RequestTokenError::ServerResponse(r))
            if matches!(
                r.error(),
                openidconnect::core::CoreErrorResponseType::InvalidGrant
            ) =>
        {
            app.sessions.delete(id).await?;
            tracing::info!(provider = %data.provider, "refresh refused (invalid_grant); session ended");
            Err(Error::SessionExpired(
                "the provider refused the refresh token",
            ))
        }
        Err(e) => Err(match token_error(e) {
            Error::TokenExchangeFailed(why) => {
                Error::ProviderError(format!("refresh failed: {why}"))
            }
            other => other,
        }),
    }
}

/// Revokes the session's refresh and access tokens where the provider has a
/// revocation endpoint. Failures are logged, never fatal to logout.
pub async fn revoke(app: &App, data: &SessionData) {
    let Some(provider) = app.providers.get(Some(&data.provider)).cloned() else {
        return;
    };
    let Ok(disc) = provider.discovered(&app.http).await else {
        return;
    };
    let Some(url) = disc
        .metadata
        .additional_metadata()
        .revocation_endpoint
        .clone()
    else {
        return;
    };
    let Ok(url) = RevocationUrl::new(url) else {
        return;
    };
    let client = disc.client.clone().set_revocation_url(url.clone());
    let mut tokens = Vec::new();
    if let Some(r) = &data.tokens.refresh_token {
        tokens.push(CoreRevocableToken::from(RefreshToken::new(
            r.expose().to_owned(),
        )));
    }
    tokens.push(CoreRevocableToken::from(AccessToken::new(
        data.tokens.access_token.expose().to_owned(),
    )));
    let loopback_http = url.url().scheme() == "http" && crate::config::is_loopback_host(url.url());
    for token in tokens {
        let kind = match token {
            CoreRevocableToken::RefreshToken(_) => "refresh_token",
            _ => "access_token",
        };
        let result = if loopback_http {
            // oauth2 (rightly) refuses a plain-http revocation URL. Keyway
            // allows http only for loopback providers (development and tests),
            // and there sends the same RFC 7009 request itself.
            revoke_over_loopback_http(app, &provider.settings, url.url(), &token, kind).await
        } else {
            match client.revoke_token(token) {
                Ok(req) => req
                    .request_async(&app.http.oidc())
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        };
        match result {
            Ok(()) => tracing::info!(provider = %data.provider, token = kind, "token revoked"),
            Err(e) => {
                tracing::warn!(provider = %data.provider, token = kind, error = %e, "revocation failed")
            }
        }
    }
}

async fn revoke_over_loopback_http(
    app: &App,
    settings: &crate::config::ProviderSettings,
    url: &Url,
    token: &CoreRevocableToken,
    hint: &str,
) -> Result<(), String> {
    let value = match token {
        CoreRevocableToken::RefreshToken(t) => t.secret().clone(),
        CoreRevocableToken::AccessToken(t) => t.secret().clone(),
        _ => return Err("unsupported token type".into()),
    };
    let response = app
        .http
        .reqwest()
        .post(url.clone())
        .basic_auth(
            percent_encode_form(&settings.client_id),
            Some(percent_encode_form(settings.client_secret.expose())),
        )
        .form(&[("token", value.as_str()), ("token_type_hint", hint)])
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", response.status()))
    }
}

/// RFC 6749 2.3.1: client id and secret are form-encoded before basic auth.
fn percent_encode_form(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The provider's end-session URL for this session, when it has one.
pub async fn end_session_url(app: &App, data: &SessionData) -> Option<String> {
    let provider = app.providers.get(Some(&data.provider))?.clone();
    let disc = provider.discovered(&app.http).await.ok()?;
    let endpoint = disc
        .metadata
        .additional_metadata()
        .end_session_endpoint
        .clone()?;
    let mut url = Url::parse(&endpoint).ok()?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(id_token) = &data.tokens.id_token {
            q.append_pair("id_token_hint", id_token.expose());
        }
        q.append_pair("post_logout_redirect_uri", app.config.public_url.as_str());
        q.append_pair("client_id", &provider.settings.client_id);
        q.append_pair("state", openidconnect::CsrfToken::new_random().secret());
    }
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Identity, Tokens};

    fn data(issued: u64, expires: Option<u64>) -> SessionData {
        SessionData {
            identity: Identity {
                sub: "s".into(),
                name: None,
                email: None,
                email_verified: None,
                picture: None,
            },
            provider: "p".into(),
            sid: None,
            tokens: Tokens {
                access_token: Secret::new("a"),
                access_expires_at: expires,
                access_issued_at: issued,
                refresh_token: None,
                id_token: None,
            },
            created_at: issued,
            last_seen: issued,
        }
    }

    #[test]
    fn skew_is_capped_at_half_the_lifetime() {
        // 10 s token, 60 s skew: refresh only in its last 5 s.
        let d = data(1000, Some(1010));
        assert!(!needs_refresh(&d, 60, 1004));
        assert!(needs_refresh(&d, 60, 1005));
        // 1 h token: refresh in its last 60 s.
        let d = data(0, Some(3600));
        assert!(!needs_refresh(&d, 60, 3539));
        assert!(needs_refresh(&d, 60, 3540));
        assert!(!needs_refresh(&data(0, None), 60, 99999));
    }
}

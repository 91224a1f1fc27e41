//! The token lifecycle: refresh before use (single flight per session, in
//! this process and across instances sharing the store), revocation (RFC
//! 7009) and the end-session URL (RP-initiated logout).

use crate::app::App;
use crate::error::Error;
use crate::metrics::RefreshOutcome;
use crate::provider::flows::{RefreshError, form_encode};
use crate::secret::Secret;
use crate::session::{SessionData, now_secs};
use keyway_shared::ProviderKind;
use openidconnect::core::CoreRevocableToken;
use openidconnect::{AccessToken, RefreshToken, RevocationUrl};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
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

/// How long the store-wide refresh lock of a session is held at most.
pub const REFRESH_LOCK_TTL: Duration = Duration::from_secs(15);

/// Returns the session with an access token fit for use, refreshing it first
/// when needed. A refused refresh ends the session (`401 session_expired`).
///
/// Single flight: requests of one session in this process queue on one
/// in-process lock; instances sharing the store take a short store lock, and
/// an instance that finds it held waits for the other's refresh and reads
/// the refreshed tokens from the store instead of spending the refresh token
/// a second time.
pub async fn ensure_fresh(
    app: &App,
    id: Id,
    data: Arc<SessionData>,
) -> Result<Arc<SessionData>, Error> {
    let skew = app.config.refresh_skew.as_secs();
    if !needs_refresh(&data, skew, now_secs()) {
        return Ok(data);
    }
    let lock = app.refresh_flights.lock_for(id);
    let _guard = lock.lock().await;
    let deadline = tokio::time::Instant::now() + REFRESH_LOCK_TTL;
    let mut wait = Duration::from_millis(20);
    let store_lock = loop {
        // Someone else may have refreshed while this request waited.
        let Some((_, data)) = app.sessions.load(&id.to_string()).await? else {
            return Err(Error::SessionExpired(
                "the session ended while waiting for a refresh",
            ));
        };
        if !needs_refresh(&data, skew, now_secs()) {
            return Ok(data);
        }
        match app
            .sessions
            .try_lock(&format!("refresh:{id}"), REFRESH_LOCK_TTL)
            .await?
        {
            Some(l) => break (l, data),
            None if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(500));
            }
            None => return Err(Error::ProviderTimeout),
        }
    };
    let (store_lock, data) = store_lock;
    let result = refresh_now(app, id, data).await;
    let _ = store_lock.release().await;
    result
}

async fn refresh_now(app: &App, id: Id, data: Arc<SessionData>) -> Result<Arc<SessionData>, Error> {
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
    match provider.refresh(&app.http, &refresh_token).await {
        Ok(response) => {
            let now = now_secs();
            let mut data = Arc::unwrap_or_clone(data);
            data.tokens.access_token = response.access_token;
            data.tokens.access_issued_at = now;
            data.tokens.access_expires_at = response.expires_in.map(|d| now + d.as_secs());
            // A rotated refresh token replaces the old one in the same write.
            if let Some(new_refresh) = response.refresh_token {
                data.tokens.refresh_token = Some(new_refresh);
            }
            if let Some(id_token) = response.id_token {
                data.tokens.id_token = Some(Secret::new(id_token));
            }
            app.metrics
                .refresh(&data.provider, RefreshOutcome::Succeeded);
            app.sessions.save(id, &data).await?;
            tracing::info!(provider = %data.provider, "access token refreshed");
            Ok(Arc::new(data))
        }
        Err(RefreshError::Refused) => {
            app.metrics.refresh(&data.provider, RefreshOutcome::Refused);
            app.sessions.delete(id).await?;
            tracing::info!(provider = %data.provider, "refresh refused (invalid_grant); session ended");
            Err(Error::SessionExpired(
                "the provider refused the refresh token",
            ))
        }
        Err(RefreshError::Failed(e)) => {
            app.metrics.refresh(&data.provider, RefreshOutcome::Failed);
            Err(e)
        }
    }
}

/// Revokes the session's refresh and access tokens where the provider has a
/// revocation endpoint. Failures are logged, never fatal to logout.
pub async fn revoke(app: &App, data: &SessionData) {
    let Some(provider) = app.providers.get(Some(&data.provider)).cloned() else {
        return;
    };
    let Some(url) = provider.revocation_endpoint(&app.http).await else {
        return;
    };
    let mut tokens = Vec::new();
    if let Some(r) = &data.tokens.refresh_token {
        tokens.push(CoreRevocableToken::from(RefreshToken::new(
            r.expose().to_owned(),
        )));
    }
    tokens.push(CoreRevocableToken::from(AccessToken::new(
        data.tokens.access_token.expose().to_owned(),
    )));
    let loopback_http = url.scheme() == "http" && crate::config::is_loopback_host(&url);
    let client = match provider.kind() {
        ProviderKind::Oidc if !loopback_http => match provider.discovered(&app.http).await {
            Ok(disc) => Some(
                disc.client
                    .clone()
                    .set_revocation_url(RevocationUrl::from_url(url.clone())),
            ),
            Err(_) => None,
        },
        _ => None,
    };
    for token in tokens {
        let kind = match token {
            CoreRevocableToken::RefreshToken(_) => "refresh_token",
            _ => "access_token",
        };
        let result = match &client {
            Some(client) => match client.revoke_token(token) {
                Ok(req) => req
                    .request_async(&app.http.oidc())
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            // oauth2 (rightly) refuses a plain-http revocation URL; Keyway
            // allows http only for loopback providers (development and tests)
            // and there sends the same RFC 7009 request itself, as it does for
            // plain OAuth 2.0 providers with a configured revocation endpoint.
            None => revoke_directly(app, &provider.settings, &url, &token, kind).await,
        };
        app.metrics.revocation(&data.provider, result.is_ok());
        match result {
            Ok(()) => tracing::info!(provider = %data.provider, token = kind, "token revoked"),
            Err(e) => {
                tracing::warn!(provider = %data.provider, token = kind, error = %e, "revocation failed")
            }
        }
    }
}

async fn revoke_directly(
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
            form_encode(&settings.client_id),
            Some(form_encode(settings.client_secret.expose())),
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

/// The provider's end-session URL for this session, when it has one.
pub async fn end_session_url(app: &App, data: &SessionData) -> Option<String> {
    let provider = app.providers.get(Some(&data.provider))?.clone();
    if provider.kind() != ProviderKind::Oidc {
        return None;
    }
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

    fn data(issued: u64, expires: Option<u64>) -> SessionData {
        SessionData::for_test("s", issued, expires)
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

//! The BFF's own client-credentials tokens, per API: asked for once, reused
//! until [`super::freshness::due`] says so (single flight per API), so a
//! burst of requests costs the provider one token request.

use super::freshness;
use crate::app::App;
use crate::config::ApiSettings;
use crate::error::Error;
use crate::secret::Secret;
use crate::session::data::now_secs;
use std::collections::HashMap;
use std::sync::Arc;

/// How long a client token without `expires_in` is used (seconds).
pub(crate) const DEFAULT_LIFETIME: u64 = 300;

/// A cached token: the token, when it was obtained, when it expires.
type Slot = Arc<tokio::sync::Mutex<Option<(Secret, u64, u64)>>>;

/// Client-credentials tokens of the BFF itself, per API.
#[derive(Debug, Default)]
pub(crate) struct ClientTokens {
    slots: std::sync::Mutex<HashMap<String, Slot>>,
}

impl ClientTokens {
    fn slot(&self, api: &str) -> Slot {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(api.to_owned())
            .or_default()
            .clone()
    }
}

/// The client token for `api`: the cached one while fresh, else a new one.
pub(crate) async fn token(app: &App, api: &ApiSettings) -> Result<Secret, Error> {
    let slot = app.client_tokens.slot(&api.name);
    let mut guard = slot.lock().await;
    let skew = app.config.refresh_skew.as_secs();
    if let Some((token, issued, expires)) = guard.as_ref()
        && !freshness::due(*issued, Some(*expires), skew, now_secs())
    {
        return Ok(token.clone());
    }
    let provider = app
        .providers
        .get(Some(&api.provider))
        .ok_or(Error::UnknownProvider)?;
    let tokens = provider.client_credentials(&app.http, &api.scopes).await?;
    let issued = now_secs();
    let lifetime = tokens
        .expires_in
        .map(|d| d.as_secs())
        .unwrap_or(DEFAULT_LIFETIME);
    *guard = Some((tokens.access_token.clone(), issued, issued + lifetime));
    tracing::info!(api = %api.name, "client-credentials token obtained");
    Ok(tokens.access_token)
}

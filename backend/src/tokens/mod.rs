//! The token lifecycle after login: when a token is due ([`freshness`]),
//! refresh before use with single flight and compare-and-set saving
//! ([`refresh`]), revocation and the end-session URL ([`revoke`]), the BFF's
//! own client-credentials tokens ([`client`]), the key bound tokens are
//! bound to ([`binding`]), and logout, which uses them.

pub(crate) mod binding;
pub(crate) mod client;
pub(crate) mod freshness;
pub(crate) mod refresh;
pub(crate) mod revoke;
pub(crate) mod store_retry;

use crate::app::App;
use crate::error::Error;
use crate::session::Session;
use std::time::Duration;

/// Logs a session out: deletes it (the cookie no longer works, on any
/// instance), revokes its tokens where the provider can, and returns the
/// provider's end-session URL, if any.
pub(crate) async fn logout(app: &App, session: &Session) -> Result<Option<String>, Error> {
    app.sessions.delete(session.id).await?;
    let data = &session.data;
    let end_session_url = revoke::end_session_url(app, data).await;
    // Bounded by the HTTP timeout; the session is already gone.
    let bound = app.config.http_timeout + Duration::from_secs(1);
    let _ = tokio::time::timeout(bound, revoke::revoke_all(app, data)).await;
    tracing::info!(provider = %data.provider, "logged out");
    Ok(end_session_url)
}

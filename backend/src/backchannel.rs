//! OpenID Connect Back-Channel Logout 1.0: `POST /bff/backchannel-logout`.
//!
//! The provider calls this server to server with a `logout_token` (a JWT);
//! no browser is involved, so no CSRF header: the token's signature is the
//! authentication. The provider is the one whose issuer and client id the
//! token names (two clients at one issuer both work; Microsoft's templated
//! issuer resolves), and its verifier checks the token like any signed token
//! of that provider plus the rules of the spec's section 2.6
//! ([`crate::provider::verify`]). A token's `jti` is accepted once: it is
//! kept in the store's replay cache until the token expires. Then every
//! session of that `sid` (else of that `sub`) is destroyed, on every
//! instance.

use crate::app::App;
use crate::error::Error;
use crate::provider::error::ProtocolError;

/// Validates the token and destroys the matching sessions; returns how many.
pub(crate) async fn logout(app: &App, token: &str) -> Result<usize, Error> {
    let (provider, claims) = app.providers.verify_logout_token(&app.http, token).await?;
    let extra = claims.additional_claims();
    let jti = extra.jti.as_deref().unwrap_or_default();
    let until = claims.expiration().timestamp().max(0) as u64;
    let once = format!("jti\0{}\0{jti}", provider.id());
    if !app.sessions.claim_once(&once, until).await? {
        return Err(ProtocolError::InvalidLogoutToken("jti already used".into()).into());
    }
    let ids = match &extra.sid {
        Some(sid) => app.sessions.sessions_by_sid(provider.id(), sid).await?,
        None => {
            let sub = claims.subject().as_str();
            app.sessions.sessions_by_sub(provider.id(), sub).await?
        }
    };
    let mut destroyed = 0;
    for id in ids {
        if app.sessions.delete(id).await? {
            destroyed += 1;
        }
    }
    tracing::info!(provider = %provider.id(), sessions = destroyed, "back-channel logout");
    Ok(destroyed)
}

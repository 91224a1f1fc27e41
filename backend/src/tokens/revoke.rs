//! Ending a session's tokens at the provider: revocation (RFC 7009) of the
//! refresh and access tokens, and the RP-initiated logout URL.

use crate::app::App;
use crate::provider::revocation::TokenKind;
use crate::session::data::SessionData;

/// Revokes the session's refresh token (first: revoking it usually ends the
/// whole grant) and access token, where the provider has a revocation
/// endpoint. Failures are logged and counted, never fatal.
pub(crate) async fn revoke_all(app: &App, data: &SessionData) {
    let Some(provider) = app.providers.get(Some(&data.provider)) else {
        return;
    };
    let tokens = data
        .tokens
        .refresh_token
        .iter()
        .map(|t| (t, TokenKind::Refresh))
        .chain([(&data.tokens.access_token, TokenKind::Access)]);
    for (token, kind) in tokens {
        let Some(result) = provider.revoke(&app.http, token, kind).await else {
            return;
        };
        app.metrics.revocation(&data.provider, result.is_ok());
        match result {
            Ok(()) => {
                tracing::info!(provider = %data.provider, token = kind.hint(), "token revoked")
            }
            Err(e) => {
                tracing::warn!(provider = %data.provider, token = kind.hint(), error = %e, "revocation failed")
            }
        }
    }
}

/// The provider's end-session URL for this session, when it has one: with
/// `id_token_hint`, `post_logout_redirect_uri` (the app's origin),
/// `client_id` and a fresh `state`.
pub(crate) async fn end_session_url(app: &App, data: &SessionData) -> Option<String> {
    let provider = app.providers.get(Some(&data.provider))?;
    provider
        .end_session_url(
            &app.http,
            data.tokens.id_token.as_ref(),
            &app.config.public_url,
        )
        .await
        .map(|u| u.to_string())
}

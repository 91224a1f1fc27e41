//! Token revocation (RFC 7009): one path for every provider, authenticated
//! the way the token endpoint is ([`super::client_auth`]).
//!
//! Keyway sends this request itself rather than through oauth2's
//! `revoke_token`, which refuses plain-http revocation URLs even on
//! loopback, where Keyway allows http for development: one path for
//! development and production keeps the path production takes under test.

use super::client_auth::Credentials;
use super::http::HttpClient;
use crate::secret::Secret;
use url::Url;

/// Which token is revoked (`token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A refresh token (revoking it usually ends the grant).
    Refresh,
    /// An access token.
    Access,
}

impl TokenKind {
    /// The RFC 7009 hint.
    pub(crate) fn hint(self) -> &'static str {
        match self {
            TokenKind::Refresh => "refresh_token",
            TokenKind::Access => "access_token",
        }
    }
}

/// Revokes one token at `endpoint`. The error names the step, never the token.
pub(crate) async fn revoke(
    http: &HttpClient,
    credentials: &Credentials,
    endpoint: &Url,
    token: &Secret,
    kind: TokenKind,
) -> Result<(), String> {
    let form = vec![
        ("token".to_owned(), token.expose().to_owned()),
        ("token_type_hint".to_owned(), kind.hint().to_owned()),
    ];
    let request = credentials.post_form(http.reqwest(), endpoint.as_str(), form)?;
    let (status, _) = http.send(request).await.map_err(|e| e.to_string())?;
    // RFC 7009 2.2: 200 whether or not the token was valid.
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

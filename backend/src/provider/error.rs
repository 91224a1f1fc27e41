//! What can go wrong when talking to a provider. Messages name the check or
//! the step that failed, never a token, a code, a secret or a response body.

/// A failure of the protocol with a provider.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The provider did not answer within the configured timeout.
    #[error("the provider timed out")]
    Timeout,
    /// The provider answered with an error or garbage, or could not be reached.
    #[error("provider error: {0}")]
    Provider(String),
    /// The token endpoint refused the authorization code or failed.
    #[error("token exchange failed: {0}")]
    TokenExchange(String),
    /// An ID token failed validation (the reason names the check).
    #[error("invalid ID token: {0}")]
    InvalidIdToken(String),
    /// The authorization response came from another issuer than the login's.
    #[error("issuer mismatch: {0}")]
    IssuerMismatch(&'static str),
    /// A back-channel logout token failed validation.
    #[error("invalid logout token: {0}")]
    InvalidLogoutToken(String),
    /// The provider no longer accepts the session's access token.
    #[error("the provider no longer accepts the access token")]
    AccessTokenRejected,
}

/// Why a refresh failed: the difference decides whether the session ends.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RefreshError {
    /// The provider refused the refresh token (`invalid_grant`).
    #[error("the provider refused the refresh token")]
    Refused,
    /// The refresh answered an ID token that fails OpenID Connect Core
    /// §12.2 (another subject, issuer, audience...): the tokens are not kept.
    #[error("the refreshed ID token is invalid: {0}")]
    InvalidIdToken(String),
    /// Anything else (network, provider fault): the session stays.
    #[error(transparent)]
    Failed(#[from] ProtocolError),
}

/// Keeps a provider's `error` code only when it is a plain RFC 6749 code
/// (lowercase letters, digits, `_`), else `provider_error`.
pub(crate) fn clean_error_code(code: &str) -> String {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit());
    if ok {
        code.to_owned()
    } else {
        keyway_shared::codes::PROVIDER_ERROR.to_owned()
    }
}

/// Keeps a provider's `error_description` printable and short.
pub(crate) fn clean_description(text: &str) -> Option<String> {
    let cleaned: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
    let trimmed = cleaned.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Maps a token-endpoint failure; never quotes the response body.
pub(crate) fn token_error<T: oauth2::ErrorResponse>(
    e: oauth2::RequestTokenError<super::http::HttpError, T>,
) -> ProtocolError {
    use oauth2::RequestTokenError;
    match e {
        RequestTokenError::Request(super::http::HttpError::Timeout) => ProtocolError::Timeout,
        RequestTokenError::Request(e) => ProtocolError::TokenExchange(e.to_string()),
        RequestTokenError::ServerResponse(r) => ProtocolError::TokenExchange(format!(
            "the token endpoint answered `{}`",
            clean_error_code(&error_code_of(&r).unwrap_or_else(|| "error response".into()))
        )),
        RequestTokenError::Parse(e, _) => {
            ProtocolError::TokenExchange(format!("unparsable token response at {}", e.path()))
        }
        RequestTokenError::Other(e) => ProtocolError::TokenExchange(e),
    }
}

/// A refresh failure: `invalid_grant` means the refresh token is dead.
pub(crate) fn refresh_error<T: oauth2::ErrorResponse>(
    e: oauth2::RequestTokenError<super::http::HttpError, T>,
) -> RefreshError {
    if let oauth2::RequestTokenError::ServerResponse(r) = &e
        && error_code_of(r).as_deref() == Some("invalid_grant")
    {
        return RefreshError::Refused;
    }
    RefreshError::Failed(match token_error(e) {
        ProtocolError::TokenExchange(why) => {
            ProtocolError::Provider(format!("refresh failed: {why}"))
        }
        other => other,
    })
}

/// The `error` code of a provider's error response.
pub(crate) fn error_code_of<T: serde::Serialize>(r: &T) -> Option<String> {
    serde_json::to_value(r)
        .ok()?
        .get("error")?
        .as_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_codes_are_passed_on_only_when_plain() {
        assert_eq!(clean_error_code("access_denied"), "access_denied");
        assert_eq!(
            clean_error_code("interaction_required"),
            "interaction_required"
        );
        assert_eq!(clean_error_code("<script>"), "provider_error");
        assert_eq!(clean_error_code(""), "provider_error");
        assert_eq!(clean_description("a\u{7}b\nc").as_deref(), Some("abc"));
    }
}

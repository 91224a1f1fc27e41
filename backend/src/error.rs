//! The one error type of the BFF and its mapping to HTTP responses.
//!
//! Every failure a handler can meet is an [`Error`] variant; [`IntoResponse`]
//! turns it into the contract's `{"error", "message"}` body with the right
//! status, and logs it once with the reason. Messages never carry a token, a
//! code, a cookie value or a secret: variants hold only descriptions made by
//! Keyway or by libraries that do not quote what they check.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keyway_shared::{ErrorBody, codes};

/// Everything that can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A state-changing request without `X-CSRF: 1`.
    #[error("the X-CSRF: 1 header is missing")]
    CsrfHeaderMissing,
    /// A state-changing request from another site.
    #[error("cross-site request refused")]
    CrossSite,
    /// The session store did not answer.
    #[error("session store unavailable: {0}")]
    StoreUnavailable(String),
    /// No provider with that id.
    #[error("unknown provider")]
    UnknownProvider,
    /// `return_to` is not a same-origin relative path.
    #[error("invalid return_to: {0}")]
    InvalidReturnTo(&'static str),
    /// State unknown, reused, or not started by this browser.
    #[error("invalid state: {0}")]
    InvalidState(&'static str),
    /// The pending login is older than its lifetime.
    #[error("login expired")]
    LoginExpired,
    /// `iss` of the authorization response is not the login's provider.
    #[error("issuer mismatch: {0}")]
    IssuerMismatch(&'static str),
    /// The ID token failed validation (the reason names the check).
    #[error("invalid ID token: {0}")]
    InvalidIdToken(String),
    /// The provider answered the authorization request with an error.
    #[error("provider refused the login: {code}")]
    ProviderDenied {
        /// The provider's error code, checked to be a plain code.
        code: String,
        /// The provider's description, cleaned for display.
        description: Option<String>,
    },
    /// The token endpoint refused the code or failed.
    #[error("token exchange failed: {0}")]
    TokenExchangeFailed(String),
    /// A provider did not answer in time.
    #[error("provider timed out")]
    ProviderTimeout,
    /// A provider answered with an error or garbage.
    #[error("provider error: {0}")]
    ProviderError(String),
    /// No session.
    #[error("not signed in")]
    Unauthenticated,
    /// The session ended (lifetime over, refresh refused).
    #[error("session expired: {0}")]
    SessionExpired(&'static str),
    /// No API with that name.
    #[error("unknown API")]
    UnknownApi,
    /// The upstream API failed.
    #[error("upstream error: {0}")]
    Upstream(String),
    /// The upstream API timed out.
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// The back-channel logout token failed validation.
    #[error("invalid logout token: {0}")]
    InvalidLogoutToken(String),
    /// The request is malformed.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The request body is too large.
    #[error("request body too large")]
    PayloadTooLarge,
    /// No such route.
    #[error("not found")]
    NotFound,
    /// Method not allowed.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A fault of Keyway itself.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The status code and contract code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &str) {
        use Error::*;
        match self {
            CsrfHeaderMissing => (StatusCode::FORBIDDEN, codes::CSRF_HEADER_MISSING),
            CrossSite => (StatusCode::FORBIDDEN, codes::CROSS_SITE_REQUEST),
            StoreUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                codes::SESSION_STORE_UNAVAILABLE,
            ),
            UnknownProvider => (StatusCode::BAD_REQUEST, codes::UNKNOWN_PROVIDER),
            InvalidReturnTo(_) => (StatusCode::BAD_REQUEST, codes::INVALID_RETURN_TO),
            InvalidState(_) => (StatusCode::BAD_REQUEST, codes::INVALID_STATE),
            LoginExpired => (StatusCode::BAD_REQUEST, codes::LOGIN_EXPIRED),
            IssuerMismatch(_) => (StatusCode::BAD_REQUEST, codes::ISSUER_MISMATCH),
            InvalidIdToken(_) => (StatusCode::BAD_REQUEST, codes::INVALID_ID_TOKEN),
            ProviderDenied { code, .. } => (StatusCode::BAD_REQUEST, code.as_str()),
            TokenExchangeFailed(_) => (StatusCode::BAD_GATEWAY, codes::TOKEN_EXCHANGE_FAILED),
            ProviderTimeout => (StatusCode::GATEWAY_TIMEOUT, codes::PROVIDER_TIMEOUT),
            ProviderError(_) => (StatusCode::BAD_GATEWAY, codes::PROVIDER_ERROR),
            Unauthenticated => (StatusCode::UNAUTHORIZED, codes::UNAUTHENTICATED),
            SessionExpired(_) => (StatusCode::UNAUTHORIZED, codes::SESSION_EXPIRED),
            UnknownApi => (StatusCode::NOT_FOUND, codes::UNKNOWN_API),
            Upstream(_) => (StatusCode::BAD_GATEWAY, codes::UPSTREAM_ERROR),
            UpstreamTimeout => (StatusCode::GATEWAY_TIMEOUT, codes::UPSTREAM_ERROR),
            InvalidLogoutToken(_) => (StatusCode::BAD_REQUEST, codes::INVALID_LOGOUT_TOKEN),
            InvalidRequest(_) => (StatusCode::BAD_REQUEST, codes::INVALID_REQUEST),
            PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, codes::PAYLOAD_TOO_LARGE),
            NotFound => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, codes::METHOD_NOT_ALLOWED),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL),
        }
    }

    /// The text for a person.
    pub fn message(&self) -> String {
        use Error::*;
        match self {
            CsrfHeaderMissing => "This request needs the header `X-CSRF: 1`.".into(),
            CrossSite => "Requests from other sites are not accepted.".into(),
            StoreUnavailable(_) => "Sessions are unavailable right now. Please try again in a moment.".into(),
            UnknownProvider => "There is no sign-in provider with that id.".into(),
            InvalidReturnTo(why) => format!("return_to must be a path on this site, like /profile ({why})."),
            InvalidState(_) => "This sign-in response does not belong to a sign-in started in this browser. Please sign in again.".into(),
            LoginExpired => "The sign-in took too long. Please sign in again.".into(),
            IssuerMismatch(_) => "The sign-in response came from another provider than the one the sign-in started with.".into(),
            InvalidIdToken(_) => "The provider's identity token failed validation.".into(),
            ProviderDenied { code, description } => {
                let base = if code == codes::ACCESS_DENIED {
                    "You declined the sign-in at the provider (or it was refused).".to_owned()
                } else {
                    format!("The provider refused the sign-in ({code}).")
                };
                match description {
                    Some(d) => format!("{base} The provider said: {d}"),
                    None => base,
                }
            }
            TokenExchangeFailed(_) => "The provider refused to complete the sign-in. Please sign in again.".into(),
            ProviderTimeout => "The provider did not answer in time. Please try again.".into(),
            ProviderError(_) => "The provider answered with an error.".into(),
            Unauthenticated => "You are not signed in.".into(),
            SessionExpired(_) => "Your session has ended. Please sign in again.".into(),
            UnknownApi => "There is no API with that name.".into(),
            Upstream(_) => "The API behind this path failed.".into(),
            UpstreamTimeout => "The API behind this path did not answer in time.".into(),
            InvalidLogoutToken(_) => "The logout token failed validation.".into(),
            InvalidRequest(why) => format!("The request is malformed: {why}."),
            PayloadTooLarge => "The request body is too large.".into(),
            NotFound => "Nothing here.".into(),
            MethodNotAllowed => "This method is not allowed here.".into(),
            Internal(_) => "Something went wrong on our side.".into(),
        }
    }

    /// The contract's body for this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.status_and_code().1.to_owned(),
            message: self.message(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = code, reason = %self, "request failed");
        } else if matches!(self, Error::Unauthenticated | Error::NotFound) {
            tracing::debug!(error = code, reason = %self, "request refused");
        } else {
            tracing::warn!(error = code, reason = %self, "request refused");
        }
        let mut response = (status, Json(self.body())).into_response();
        response.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        response
    }
}

/// Keeps a provider's `error` code only when it is a plain RFC 6749 code.
pub fn clean_error_code(code: &str) -> String {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit());
    if ok {
        code.to_owned()
    } else {
        codes::PROVIDER_ERROR.to_owned()
    }
}

/// Keeps a provider's `error_description` printable and short.
pub fn clean_description(text: &str) -> Option<String> {
    let cleaned: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
    let trimmed = cleaned.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
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

    #[test]
    fn statuses_follow_the_contract() {
        assert_eq!(
            Error::CsrfHeaderMissing.status_and_code(),
            (StatusCode::FORBIDDEN, "csrf_header_missing")
        );
        assert_eq!(
            Error::ProviderTimeout.status_and_code().0,
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            Error::StoreUnavailable("x".into()).status_and_code().0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let denied = Error::ProviderDenied {
            code: "access_denied".into(),
            description: None,
        };
        assert_eq!(denied.body().error, "access_denied");
    }
}

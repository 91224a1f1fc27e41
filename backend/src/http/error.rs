//! The one place that turns errors into HTTP responses: the contract's
//! `{"error", "message"}` body with the right status, `Cache-Control:
//! no-store`, and one log line with the reason (which never carries a
//! token, a code, a cookie value or a secret).

use crate::error::Error;
use crate::provider::error::ProtocolError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyway_shared::{ErrorBody, codes};

/// Everything a request can be refused with: the features' errors, and the
/// refusals of the HTTP layer itself.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// A feature's error.
    #[error(transparent)]
    Domain(#[from] Error),
    /// A state-changing request without `X-CSRF: 1`.
    #[error("the X-CSRF: 1 header is missing")]
    CsrfHeaderMissing,
    /// A state-changing request from another site.
    #[error("cross-site request refused")]
    CrossSite,
    /// No such route.
    #[error("not found")]
    NotFound,
    /// Method not allowed.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request's headers are larger than allowed.
    #[error("the request headers are too large")]
    HeadersTooLarge,
}

impl From<crate::session::store::StoreError> for ApiError {
    fn from(e: crate::session::store::StoreError) -> Self {
        ApiError::Domain(e.into())
    }
}

impl From<ProtocolError> for ApiError {
    fn from(e: ProtocolError) -> Self {
        ApiError::Domain(e.into())
    }
}

/// The status of a feature's error.
pub(crate) fn status_of(e: &Error) -> StatusCode {
    use Error::*;
    match e {
        Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        Protocol(p) => match p {
            ProtocolError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ProtocolError::Provider(_) | ProtocolError::TokenExchange(_) => StatusCode::BAD_GATEWAY,
            ProtocolError::InvalidIdToken(_)
            | ProtocolError::IssuerMismatch(_)
            | ProtocolError::InvalidLogoutToken(_) => StatusCode::BAD_REQUEST,
            ProtocolError::AccessTokenRejected => StatusCode::UNAUTHORIZED,
        },
        UnknownProvider
        | InvalidReturnTo(_)
        | InvalidState(_)
        | LoginExpired
        | CallbackProviderMismatch(_)
        | ProviderDenied { .. }
        | InvalidRequest(_) => StatusCode::BAD_REQUEST,
        SessionProviderMismatch => StatusCode::FORBIDDEN,
        Unauthenticated | SessionExpired(_) | StepUpRequired(_) => StatusCode::UNAUTHORIZED,
        UnknownSession => StatusCode::NOT_FOUND,
        UnknownApi => StatusCode::NOT_FOUND,
        Upstream(_) => StatusCode::BAD_GATEWAY,
        UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        RequestBodyTimeout => StatusCode::REQUEST_TIMEOUT,
        Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// The status, the contract's code and the text for a person.
    pub(crate) fn parts(&self) -> (StatusCode, &str, String) {
        match self {
            ApiError::Domain(e) => (status_of(e), e.code(), e.message()),
            ApiError::CsrfHeaderMissing => (
                StatusCode::FORBIDDEN,
                codes::CSRF_HEADER_MISSING,
                "This request needs the header `X-CSRF: 1`.".into(),
            ),
            ApiError::CrossSite => (
                StatusCode::FORBIDDEN,
                codes::CROSS_SITE_REQUEST,
                "Requests from other sites are not accepted.".into(),
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                codes::NOT_FOUND,
                "Nothing here.".into(),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                codes::METHOD_NOT_ALLOWED,
                "This method is not allowed here.".into(),
            ),
            ApiError::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                codes::HEADERS_TOO_LARGE,
                "The request's headers are too large.".into(),
            ),
        }
    }

    /// The contract's body (with a step-up's `acr_values` and `max_age`).
    fn body(&self) -> ErrorBody {
        let (_, code, message) = self.parts();
        let mut body = ErrorBody::new(code, message);
        if let ApiError::Domain(Error::StepUpRequired(step_up)) = self {
            body.acr_values = step_up.acr_values.clone();
            body.max_age = step_up.max_age;
        }
        body
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        ApiError::Domain(self).into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, _) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = code, reason = %self, "request failed");
        } else if matches!(
            self,
            ApiError::Domain(Error::Unauthenticated) | ApiError::NotFound
        ) {
            tracing::debug!(error = code, reason = %self, "request refused");
        } else {
            tracing::warn!(error = code, reason = %self, "request refused");
        }
        let body = self.body();
        let mut response = (status, Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body will not be read: end the connection.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_contract() {
        assert_eq!(ApiError::CsrfHeaderMissing.parts().0, StatusCode::FORBIDDEN);
        assert_eq!(
            ApiError::CsrfHeaderMissing.body().error,
            "csrf_header_missing"
        );
        assert_eq!(
            status_of(&ProtocolError::Timeout.into()),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            status_of(&crate::session::store::StoreError("x".into()).into()),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status_of(&Error::SessionProviderMismatch),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status_of(&Error::CallbackProviderMismatch("x")),
            StatusCode::BAD_REQUEST
        );
        let denied = Error::ProviderDenied {
            code: "access_denied".into(),
            description: None,
        };
        assert_eq!(ApiError::from(denied).body().error, "access_denied");
        let step_up = ApiError::from(Error::StepUpRequired(crate::error::StepUp {
            acr_values: Some("urn:mfa".into()),
            max_age: Some(300),
            source: "policy",
        }));
        assert_eq!(step_up.parts().0, StatusCode::UNAUTHORIZED);
        let body = serde_json::to_value(step_up.body()).unwrap();
        assert_eq!(body["error"], "step_up_required");
        assert_eq!(body["acr_values"], "urn:mfa");
        assert_eq!(body["max_age"], 300);
        assert_eq!(status_of(&Error::UnknownSession), StatusCode::NOT_FOUND);
    }
}

//! Extractors: the request's session, and JSON and query parsing whose
//! failures are the contract's errors.

use super::error::ApiError;
use crate::app::App;
use crate::error::Error;
use crate::session::{Session, cookie};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The signed-in session of the request (`401 unauthenticated` without
/// one). Loading it records its use (the idle timeout), compare-and-set.
#[derive(Debug, Clone)]
pub(crate) struct CurrentSession(pub Session);

impl FromRequestParts<App> for CurrentSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        <Self as OptionalFromRequestParts<App>>::from_request_parts(parts, app)
            .await?
            .ok_or(ApiError::Domain(Error::Unauthenticated))
    }
}

impl OptionalFromRequestParts<App> for CurrentSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Option<Self>, ApiError> {
        let Some(value) = cookie::read(&parts.headers, app.cookies.session_name()) else {
            return Ok(None);
        };
        let Some(session) = app.sessions.load(&value).await? else {
            return Ok(None);
        };
        Ok(app.sessions.touch(session).await?.map(CurrentSession))
    }
}

/// `axum::Json` whose rejections are the contract's errors (400
/// `invalid_request`, 413, 408).
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::Domain(Error::PayloadTooLarge);
    }
    if let JsonRejection::BytesRejection(b) = &r
        && crate::proxy::caused_by::<tower_http::timeout::TimeoutError>(b)
    {
        return ApiError::Domain(Error::RequestBodyTimeout);
    }
    // Describe the failure without quoting the input.
    let why = match r {
        JsonRejection::MissingJsonContentType(_) => "expected Content-Type: application/json",
        JsonRejection::JsonSyntaxError(_) => "the body is not valid JSON",
        JsonRejection::JsonDataError(_) => "the JSON does not have the expected fields",
        _ => "the body cannot be read",
    };
    ApiError::Domain(Error::InvalidRequest(why.into()))
}

/// `axum::extract::Query` whose rejections are the contract's errors.
#[derive(Debug)]
pub(crate) struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|_: QueryRejection| {
                ApiError::Domain(Error::InvalidRequest(
                    "the query string is malformed".into(),
                ))
            })
    }
}

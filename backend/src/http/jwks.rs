//! `GET /bff/jwks`: the public keys of Keyway's `private_key_jwt` client
//! authentication, as a JWK set, so that a provider can be registered with
//! `jwks_uri` pointing here. Every configured key is listed (the first of
//! each provider signs; the others stay published during a rotation).
//! Without any, `404`.

use super::error::ApiError;
use crate::app::App;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The media type of a JWK set (RFC 7517 §8.5.1).
const JWK_SET: &str = "application/jwk-set+json";

/// `GET /bff/jwks`.
pub(crate) async fn jwks(State(app): State<App>) -> Response {
    let keys = app.providers.public_jwks();
    if keys.is_empty() {
        return ApiError::NotFound.into_response();
    }
    let body = serde_json::json!({ "keys": keys }).to_string();
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(JWK_SET))],
        body,
    )
        .into_response()
}

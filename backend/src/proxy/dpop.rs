//! Calls to an API with a DPoP-bound token (RFC 9449 §7):
//! `Authorization: DPoP <token>` and a fresh proof of the token's key for
//! this method and URL, with `ath` and the API's last nonce. An API that
//! answers a nonce challenge gets the request once more with its nonce;
//! one that asks again is failing, and the browser gets `502`.
//!
//! The body is read first (bounded by the API's `max_body`, like a
//! streamed one) so that the retry can send it again.

use super::{caused_by, send_error, upstream_request};
use crate::app::App;
use crate::config::ApiSettings;
use crate::error::Error;
use crate::provider::dpop::{self, DpopKey, Peer};
use crate::secret::Secret;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use http_body_util::BodyExt;
use std::time::Instant;
use url::Url;

/// What one bound call is made of.
pub(crate) struct Call<'a> {
    /// The API.
    pub api: &'a ApiSettings,
    /// The key the token is bound to.
    pub key: &'a DpopKey,
    /// The access token.
    pub token: &'a Secret,
    /// The method.
    pub method: &'a Method,
    /// The upstream URI.
    pub uri: &'a axum::http::Uri,
    /// The same, as the URL a proof names.
    pub url: &'a Url,
}

/// Sends the call with `headers` (the allowed ones of the browser's
/// request) and `body`, answering one nonce challenge.
pub(crate) async fn send(
    app: &App,
    call: Call<'_>,
    headers: HeaderMap,
    body: Body,
    started: Instant,
) -> Result<axum::response::Response, Error> {
    let api = call.api;
    let body = http_body_util::Limited::new(body, api.max_body)
        .collect()
        .await
        .map_err(|e| {
            if caused_by::<tower_http::timeout::TimeoutError>(&*e) {
                Error::RequestBodyTimeout
            } else if caused_by::<http_body_util::LengthLimitError>(&*e) {
                Error::PayloadTooLarge
            } else {
                Error::InvalidRequest("the request body could not be read".into())
            }
        })?
        .to_bytes();
    let nonces = app.http.dpop_nonces();
    let auth = dpop::authorization(call.token).map_err(Error::Internal)?;
    let mut retried = false;
    loop {
        let nonce = nonces.get(call.url);
        let proof = call
            .key
            .proof(
                call.method.as_str(),
                call.url,
                Some(call.token.expose()),
                nonce.as_deref(),
            )
            .map_err(Error::Internal)?;
        let mut out = headers.clone();
        out.insert(header::AUTHORIZATION, auth.clone());
        out.insert(
            "dpop",
            HeaderValue::try_from(proof).map_err(|_| Error::Internal("bad DPoP proof".into()))?,
        );
        let request = upstream_request(call.method, call.uri, out, Body::from(body.clone()));
        let response = app
            .http
            .api()
            .send(request, api.timeout)
            .await
            .map_err(|e| send_error(&api.name, started, e))?;
        nonces.remember(call.url, response.headers());
        if !dpop::is_resource_challenge(response.status(), response.headers()) {
            return Ok(response);
        }
        if retried {
            tracing::warn!(api = %api.name, "the API asked for a new DPoP nonce again after one retry");
            return Err(Error::Upstream(
                "the API asked for a new DPoP nonce again after one retry".into(),
            ));
        }
        nonces.count_retry(Peer::Api(&api.name));
        retried = true;
    }
}

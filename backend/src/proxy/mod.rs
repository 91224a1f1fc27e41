//! The API proxy: `/bff/api/{name}/{*path}` forwards to the upstream
//! configured as `[[apis]] name`, with `Authorization: Bearer <token>`, or
//! for DPoP-bound tokens `Authorization: DPoP <token>` and a proof
//! ([`dpop`]).
//!
//! Threat model: the browser chooses only the path below the configured base
//! URL, never the host ([`path`]); headers cross only by allow-list, both
//! ways ([`headers`]). The user's access token goes only to the APIs of the
//! provider that issued it: a session of another provider is refused (`403
//! provider_mismatch`), never silently given the BFF's own token. Redirects
//! are not followed. Bodies stream both ways, bounded by the API's
//! `max_body` and timeout.

pub(crate) mod dpop;
pub mod headers;
pub mod path;
pub(crate) mod step_up;

use crate::app::App;
use crate::config::{ApiSettings, ApiToken};
use crate::error::Error;
use crate::provider::api_client::ApiCallError;
use crate::provider::dpop::DpopKey;
use crate::secret::Secret;
use crate::session::Session;
use crate::session::data::now_secs;
use crate::tokens;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Uri, header};
use axum::response::Response;
use std::time::Instant;

/// Forwards one request to the API `name` for the session (if any).
pub(crate) async fn forward(
    app: &App,
    name: &str,
    session: Option<Session>,
    peer: Option<std::net::IpAddr>,
    req: Request,
) -> Result<Response, Error> {
    let api = app
        .config
        .apis
        .iter()
        .find(|a| a.name == name)
        .ok_or(Error::UnknownApi)?;
    let rest = path::upstream_path(req.uri().path(), name)?;
    let called = path::upstream_uri(&api.base, rest, req.uri().query())?;
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        && len > api.max_body
    {
        return Err(Error::PayloadTooLarge);
    }
    let grant = token_for(app, api, session).await?;
    let (parts, body) = req.into_parts();
    let fwd = headers::Forwarded {
        origin: &app.forwarded,
        peer,
    };
    let out = headers::to_upstream(&parts.headers, &api.forward_headers, &fwd);
    let started = Instant::now();
    let to = Target {
        api,
        method: &parts.method,
        uri: &called,
        started,
    };
    let upstream = send(app, to, &grant, out, body).await?;
    let status = upstream.status();
    tracing::debug!(api = %name, status = status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "proxied");
    if grant.of_user && status == axum::http::StatusCode::UNAUTHORIZED {
        let challenges = upstream.headers().get_all(header::WWW_AUTHENTICATE);
        if let Some(step) =
            step_up::from_challenges(challenges.iter().filter_map(|v| v.to_str().ok()))
        {
            return Err(step_up_required(app, name, step));
        }
    }
    let (mut head, body) = upstream.into_parts();
    head.headers = headers::to_browser(&head.headers, &called, &api.url, name)
        .map_err(|_| Error::Upstream("the API redirected outside its own base URL".into()))?;
    Ok(Response::from_parts(head, body))
}

/// Where one proxied call goes.
struct Target<'a> {
    api: &'a ApiSettings,
    method: &'a axum::http::Method,
    uri: &'a Uri,
    started: Instant,
}

/// Sends the call: with a DPoP proof when the token is bound ([`dpop`]),
/// else with `Authorization: Bearer` and the body streamed.
async fn send(
    app: &App,
    to: Target<'_>,
    grant: &Grant,
    mut out: axum::http::HeaderMap,
    body: Body,
) -> Result<Response, Error> {
    if let Some(key) = &grant.key {
        // A proof names the URL (`htu`) and nonces are kept per origin.
        let url = url::Url::parse(&to.uri.to_string())
            .map_err(|_| Error::InvalidRequest("bad path".into()))?;
        let call = dpop::Call {
            api: to.api,
            key,
            token: &grant.token,
            method: to.method,
            uri: to.uri,
            url: &url,
        };
        return dpop::send(app, call, out, body, to.started).await;
    }
    out.insert(header::AUTHORIZATION, bearer(&grant.token)?);
    let limited = http_body_util::Limited::new(body, to.api.max_body);
    let request = upstream_request(to.method, to.uri, out, Body::new(limited));
    app.http
        .api()
        .send(request, to.api.timeout)
        .await
        .map_err(|e| send_error(&to.api.name, to.started, e))
}

/// The request to the upstream, at its absolute URI.
pub(crate) fn upstream_request(
    method: &axum::http::Method,
    uri: &Uri,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Request {
    let mut request = Request::new(body);
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = headers;
    request
}

/// Why a call to the upstream failed (the error's sources may hold the
/// browser's body stream's own error).
pub(crate) fn send_error(name: &str, started: Instant, e: ApiCallError) -> Error {
    tracing::warn!(api = %name, elapsed_ms = started.elapsed().as_millis() as u64, "upstream call failed");
    match e {
        ApiCallError::Timeout => Error::UpstreamTimeout,
        ApiCallError::Failed(e) if caused_by::<tower_http::timeout::TimeoutError>(&*e) => {
            Error::RequestBodyTimeout
        }
        ApiCallError::Failed(e) if caused_by::<http_body_util::LengthLimitError>(&*e) => {
            Error::PayloadTooLarge
        }
        ApiCallError::Failed(e) => Error::Upstream(error_chain(&*e)),
    }
}

/// An error and its sources, as one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Whether `e` or one of its sources is an `E`.
pub(crate) fn caused_by<E: std::error::Error + 'static>(
    e: &(dyn std::error::Error + 'static),
) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if s.is::<E>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// `Authorization: Bearer <token>`, marked sensitive (never logged).
fn bearer(token: &Secret) -> Result<HeaderValue, Error> {
    let value = format!("Bearer {}", token.expose());
    let mut value = HeaderValue::from_maybe_shared(axum::body::Bytes::from(value))
        .map_err(|_| Error::Internal("the access token is not a header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// A step-up refusal, logged and counted.
fn step_up_required(app: &App, api: &str, step: crate::error::StepUp) -> Error {
    tracing::info!(api = %api, source = step.source, acr_values = ?step.acr_values, max_age = ?step.max_age, "step-up required");
    app.metrics.step_up(api, step.source);
    Error::StepUpRequired(step)
}

/// The token of a call, the key it is bound to (DPoP), and whether it is
/// the user's.
struct Grant {
    token: Secret,
    key: Option<DpopKey>,
    of_user: bool,
}

/// The token for a call to `api`: the user's (refreshed first when due)
/// only if the session is of the API's provider and meets the API's
/// authentication level (else `401 step_up_required`, before anything is
/// sent); the BFF's own client-credentials token for `client`, and for
/// `user_or_client` when nobody is signed in. Bound tokens come with their
/// key: the session's, or the process's for client tokens.
async fn token_for(app: &App, api: &ApiSettings, session: Option<Session>) -> Result<Grant, Error> {
    let user = |session: Session| async move {
        if session.data.provider != api.provider {
            return Err(Error::SessionProviderMismatch);
        }
        let skew = app.config.clock_skew.as_secs();
        if let Some(step) = step_up::required(api, &session.data, now_secs(), skew) {
            return Err(step_up_required(app, &api.name, step));
        }
        let session = tokens::refresh::ensure_fresh(app, session).await?;
        let tokens = &session.data.tokens;
        Ok(Grant {
            token: tokens.access_token.clone(),
            key: tokens::binding::key_of(tokens.dpop_key.as_ref())?,
            of_user: true,
        })
    };
    match (api.token, session) {
        (ApiToken::Client, _) | (ApiToken::UserOrClient, None) => Ok(Grant {
            token: tokens::client::token(app, api).await?,
            key: app
                .providers
                .get(Some(&api.provider))
                .and_then(|p| p.client_dpop_key().cloned()),
            of_user: false,
        }),
        (ApiToken::User | ApiToken::UserOrClient, Some(session)) => user(session).await,
        (ApiToken::User, None) => Err(Error::Unauthenticated),
    }
}

//! Thin handlers: each reads the request, calls one feature, and writes the
//! contract's response.

use super::error::{ApiError, status_of};
use super::extract::{CurrentSession, JsonBody, QueryParams};
use crate::app::App;
use crate::error::Error;
use crate::metrics::BackchannelOutcome;
use crate::provider::error::ProtocolError;
use crate::{backchannel, login, own_sessions, proxy, tokens};
use axum::Json;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyway_shared::{
    CallbackRequest, LoginRequest, LoginResponse, LogoutResponse, ProviderInfo, SessionInfo,
    SessionsEnded,
};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Instant;

/// Liveness.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the session store answers and every provider can serve logins.
pub(crate) async fn readyz(State(app): State<App>) -> Response {
    let store = app.sessions.ping().await;
    let providers = app.providers.all_ready();
    let body = serde_json::json!({
        "session_store": store,
        "session_store_kind": app.sessions.store_kind(),
        "providers": providers,
    });
    let status = if store && providers {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Prometheus text exposition of this App's metrics.
pub(crate) async fn metrics(State(app): State<App>) -> Response {
    app.metrics.store_status(&app.sessions.status().await);
    let text = app.metrics.render(app.sessions.active_sessions());
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        text,
    )
        .into_response()
}

/// `GET /bff/providers`.
pub(crate) async fn providers(State(app): State<App>) -> Json<Vec<ProviderInfo>> {
    Json(
        app.providers
            .iter()
            .map(|p| ProviderInfo {
                id: p.id().to_owned(),
                name: p.settings().name.clone(),
                kind: p.kind(),
                preset: p.settings().preset.clone(),
            })
            .collect(),
    )
}

fn with_cookies(mut response: Response, cookies: Vec<HeaderValue>) -> Response {
    for c in cookies {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// `POST /bff/login`.
pub(crate) async fn login_start(
    State(app): State<App>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let options = login::options::RequestedOptions {
        prompt: body.prompt.as_deref(),
        max_age: body.max_age,
        acr_values: body.acr_values.as_deref(),
        login_hint: body.login_hint.as_deref(),
    };
    let started = login::start(
        &app,
        &headers,
        body.provider.as_deref(),
        body.return_to.as_deref(),
        &options,
    )
    .await?;
    let body = Json(LoginResponse {
        authorization_url: started.authorization_url,
    });
    Ok(with_cookies(body.into_response(), started.set_cookies))
}

/// The query of `GET /bff/login`.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    provider: Option<String>,
    return_to: Option<String>,
    prompt: Option<String>,
    max_age: Option<i64>,
    acr_values: Option<String>,
    login_hint: Option<String>,
}

/// `GET /bff/login?provider=&return_to=&prompt=&max_age=&acr_values=&login_hint=`:
/// `302` to the provider (links without JS).
pub(crate) async fn login_redirect(
    State(app): State<App>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<LoginQuery>,
) -> Result<Response, ApiError> {
    let provider = q.provider.as_deref().filter(|p| !p.is_empty());
    let options = login::options::RequestedOptions {
        prompt: q.prompt.as_deref(),
        max_age: q.max_age,
        acr_values: q.acr_values.as_deref(),
        login_hint: q.login_hint.as_deref(),
    };
    let started = login::start(&app, &headers, provider, q.return_to.as_deref(), &options).await?;
    let location = HeaderValue::try_from(started.authorization_url)
        .map_err(|_| Error::Internal("authorization URL is not a header value".into()))?;
    let response = (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    Ok(with_cookies(response, started.set_cookies))
}

async fn finish_callback(
    app: &App,
    headers: &HeaderMap,
    provider: Option<&str>,
    body: CallbackRequest,
) -> Response {
    let finished = login::callback(app, headers, provider, body).await;
    let response = match finished.result {
        Ok(body) => Json(body).into_response(),
        Err(e) => ApiError::Domain(e).into_response(),
    };
    with_cookies(response, finished.set_cookies)
}

/// `POST /bff/callback` (a deployment with a single provider).
pub(crate) async fn callback(
    State(app): State<App>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CallbackRequest>,
) -> Response {
    finish_callback(&app, &headers, None, body).await
}

/// `POST /bff/callback/{provider}`.
pub(crate) async fn callback_for(
    State(app): State<App>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CallbackRequest>,
) -> Response {
    finish_callback(&app, &headers, Some(&provider), body).await
}

/// `GET /bff/user`.
pub(crate) async fn user(
    State(app): State<App>,
    CurrentSession(session): CurrentSession,
) -> Json<keyway_shared::User> {
    Json(session.data.user(&app.config.session))
}

/// `GET /bff/userinfo`: the provider's userinfo with the session's access
/// token, refreshed first when due.
pub(crate) async fn userinfo(
    State(app): State<App>,
    CurrentSession(session): CurrentSession,
) -> Result<Response, ApiError> {
    let session = tokens::refresh::ensure_fresh(&app, session).await?;
    let data = &session.data;
    let provider = app
        .providers
        .get(Some(&data.provider))
        .ok_or(Error::UnknownProvider)?;
    let dpop = tokens::binding::key_of(data.tokens.dpop_key.as_ref())?;
    let json = provider
        .userinfo(
            &app.http,
            &data.tokens.access_token,
            &data.identity.sub,
            dpop.as_ref(),
        )
        .await?;
    Ok(Json(json).into_response())
}

/// `POST /bff/logout`.
pub(crate) async fn logout(
    State(app): State<App>,
    session: Option<CurrentSession>,
) -> Result<Response, ApiError> {
    let end_session_url = match session {
        Some(CurrentSession(session)) => tokens::logout(&app, &session).await?,
        None => None,
    };
    Ok((
        [(header::SET_COOKIE, app.cookies.clear_session())],
        Json(LogoutResponse { end_session_url }),
    )
        .into_response())
}

/// `GET /bff/sessions`: the signed-in user's sessions on every instance.
pub(crate) async fn sessions(
    State(app): State<App>,
    CurrentSession(session): CurrentSession,
) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    Ok(Json(own_sessions::list(&app, &session).await?))
}

/// `DELETE /bff/sessions/{handle}`: ends one of the user's sessions (the
/// current one too, whose cookie is then cleared).
pub(crate) async fn end_session(
    State(app): State<App>,
    CurrentSession(session): CurrentSession,
    Path(handle): Path<String>,
) -> Result<Response, ApiError> {
    let was_current = own_sessions::end(&app, &session, &handle).await?;
    let mut response = Json(SessionsEnded { ended: 1 }).into_response();
    if was_current {
        response
            .headers_mut()
            .append(header::SET_COOKIE, app.cookies.clear_session());
    }
    Ok(response)
}

/// `POST /bff/sessions/end-others`: ends every other session of the user.
pub(crate) async fn end_other_sessions(
    State(app): State<App>,
    CurrentSession(session): CurrentSession,
) -> Result<Json<SessionsEnded>, ApiError> {
    let ended = own_sessions::end_others(&app, &session).await?;
    Ok(Json(SessionsEnded { ended }))
}

/// `POST /bff/backchannel-logout` (form `logout_token=<JWT>`).
pub(crate) async fn backchannel_logout(
    State(app): State<App>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned());
    let result = match token {
        Some(token) => backchannel::logout(&app, &token).await,
        None => Err(ProtocolError::InvalidLogoutToken("no logout_token".into()).into()),
    };
    app.metrics.backchannel(match &result {
        Ok(_) => BackchannelOutcome::Succeeded,
        Err(Error::Protocol(ProtocolError::InvalidLogoutToken(_))) => BackchannelOutcome::Invalid,
        Err(_) => BackchannelOutcome::Failed,
    });
    result?;
    Ok(StatusCode::OK.into_response())
}

/// `ANY /bff/api/{name}/{*path}`, counted in the proxy metrics.
pub(crate) async fn api(
    State(app): State<App>,
    session: Option<CurrentSession>,
    req: Request,
) -> Response {
    // The peer's address, when served by Keyway's own server loop.
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    // The name from the raw path (no decoding: names are plain ASCII).
    let name = req
        .uri()
        .path()
        .trim_start_matches("/bff/api/")
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned();
    let started = Instant::now();
    let session = session.map(|CurrentSession(s)| s);
    let result = proxy::forward(&app, &name, session, peer, req).await;
    let status = match &result {
        Ok(r) => r.status(),
        Err(e) => status_of(e),
    };
    app.metrics
        .proxied(&name, status.as_u16(), started.elapsed());
    match result {
        Ok(r) => r,
        Err(e) => ApiError::Domain(e).into_response(),
    }
}

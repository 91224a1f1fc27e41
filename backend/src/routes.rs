//! The Axum router: thin handlers over `login`, `session` and `tokens`, and
//! the middleware stack (request ids, tracing, limits, CSRF, security headers).

use crate::app::App;
use crate::error::Error;
use crate::extract::{JsonBody, QueryParams};
use crate::guard;
use crate::login;
use crate::metrics::BackchannelOutcome;
use crate::session::{SessionData, cookie, now_secs};
use crate::static_files::StaticSite;
use crate::tokens;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use keyway_shared::{CallbackRequest, LoginRequest, LoginResponse, LogoutResponse, ProviderInfo};
use serde::Deserialize;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::session::Id;

/// Largest request body accepted (64 KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// Builds the whole router for an [`App`].
pub fn router(app: App) -> Router {
    let site = app
        .config
        .static_dir
        .as_deref()
        .map(|d| StaticSite::open(d).expect("static_dir was validated"));
    let csp = site
        .as_ref()
        .map(|s| s.csp.clone())
        .unwrap_or_else(|| crate::static_files::csp_for(&[]));

    let bff = Router::new()
        .route("/bff/providers", get(providers))
        .route("/bff/login", get(login_redirect).post(login_start))
        .route("/bff/callback", post(callback))
        .route("/bff/user", get(user))
        .route("/bff/userinfo", get(userinfo))
        .route("/bff/logout", post(logout))
        .route("/bff/backchannel-logout", post(backchannel_logout))
        .route("/bff/api/{name}", axum::routing::any(api))
        .route("/bff/api/{name}/{*rest}", axum::routing::any(api))
        .route(
            "/bff/{*rest}",
            axum::routing::any(|| async { Error::NotFound }),
        )
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));

    let mut router = Router::new()
        .merge(bff)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    router = match site {
        Some(site) => router.fallback(move |req: Request| {
            let site = site.clone();
            async move { site.serve(req).await }
        }),
        None => router.fallback(|| async { Error::NotFound }),
    };

    let request_id = HeaderName::from_static("x-request-id");
    let https = app.config.is_https();
    let stack = ServiceBuilder::new()
        .layer(middleware::from_fn(guard::sanitize_request_id))
        .layer(SetRequestIdLayer::new(request_id.clone(), guard::RequestIds::default()))
        .layer(SetSensitiveHeadersLayer::new([header::COOKIE, header::SET_COOKIE, header::AUTHORIZATION]))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                // The path only: a query may carry a code or state.
                tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
            })
            // One access-log line a request (in its span: with the request id).
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Millis)),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(CatchPanicLayer::custom(|_| Error::Internal("a handler panicked".into()).into_response()))
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, csp))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            if https { Some(HeaderValue::from_static("max-age=31536000; includeSubDomains")) } else { None },
        ))
        .layer(middleware::from_fn_with_state(app.clone(), guard::csrf))
        .layer(DefaultBodyLimit::max(MAX_BODY));

    router.layer(stack).with_state(app)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(app): State<App>) -> Response {
    let store = app.sessions.ping().await;
    let providers = app.providers.all_ready();
    let body = serde_json::json!({"session_store": store, "providers": providers});
    let status = if store && providers {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Prometheus text exposition of this App's metrics.
async fn metrics(State(app): State<App>) -> Response {
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

async fn providers(State(app): State<App>) -> Json<Vec<ProviderInfo>> {
    Json(
        app.providers
            .iter()
            .map(|p| ProviderInfo {
                id: p.id().to_owned(),
                name: p.settings.name.clone(),
                kind: p.kind(),
                preset: p.settings.preset.clone(),
            })
            .collect(),
    )
}

async fn login_start(
    State(app): State<App>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Response, Error> {
    let started = login::start(
        &app,
        &headers,
        body.provider.as_deref(),
        body.return_to.as_deref(),
    )
    .await?;
    Ok((
        [(header::SET_COOKIE, started.set_cookie)],
        Json(LoginResponse {
            authorization_url: started.authorization_url,
        }),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    provider: Option<String>,
    return_to: Option<String>,
}

async fn login_redirect(
    State(app): State<App>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<LoginQuery>,
) -> Result<Response, Error> {
    let provider = q.provider.as_deref().filter(|p| !p.is_empty());
    let started = login::start(&app, &headers, provider, q.return_to.as_deref()).await?;
    let location = HeaderValue::try_from(started.authorization_url)
        .map_err(|_| Error::Internal("authorization URL is not a header value".into()))?;
    // 302 Found, as the contract says (a plain link navigation).
    Ok((
        StatusCode::FOUND,
        [
            (header::SET_COOKIE, started.set_cookie),
            (header::LOCATION, location),
        ],
    )
        .into_response())
}

async fn callback(
    State(app): State<App>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CallbackRequest>,
) -> Result<Response, Error> {
    let done = login::callback(&app, &headers, body).await?;
    let mut response = Json(done.response).into_response();
    for c in done.set_cookies {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(response)
}

/// Loads the request's session, touching its idle time at most once a minute.
/// Loads the request's session and records the activity (idle timeout): the
/// store is written at most every `min(60 s, idle timeout / 4)`, not on every
/// request. Used by every handler that needs the signed-in user.
pub(crate) async fn current_session(
    app: &App,
    headers: &HeaderMap,
) -> Result<(Id, std::sync::Arc<SessionData>), Error> {
    let cookie = cookie::read(headers, app.cookies.session_name()).ok_or(Error::Unauthenticated)?;
    let (id, mut data) = app
        .sessions
        .load(&cookie)
        .await?
        .ok_or(Error::Unauthenticated)?;
    let now = now_secs();
    let touch_every = (app.config.session.idle_timeout.as_secs() / 4).clamp(1, 60);
    if now.saturating_sub(data.last_seen) >= touch_every {
        std::sync::Arc::make_mut(&mut data).last_seen = now;
        app.sessions.save(id, &data).await?;
    }
    Ok((id, data))
}

async fn user(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<keyway_shared::User>, Error> {
    let (_, data) = current_session(&app, &headers).await?;
    Ok(Json(data.user(&app.config.session)))
}

async fn userinfo(State(app): State<App>, headers: HeaderMap) -> Result<Response, Error> {
    let (id, data) = current_session(&app, &headers).await?;
    let data = tokens::ensure_fresh(&app, id, data).await?;
    let provider = app
        .providers
        .get(Some(&data.provider))
        .ok_or(Error::UnknownProvider)?
        .clone();
    let url = provider.user_endpoint(&app.http).await?;
    let json = provider
        .get_json(&app.http, url, &data.tokens.access_token)
        .await?;
    // OpenID Connect Core 5.3.2: the userinfo sub must be the ID token's; for
    // plain OAuth 2.0 the mapped subject must be the session's.
    let sub = match provider.kind() {
        keyway_shared::ProviderKind::Oidc => {
            json.get("sub").and_then(|s| s.as_str()).map(str::to_owned)
        }
        keyway_shared::ProviderKind::Oauth2 => {
            crate::provider::flows::map_identity(&json, &provider.settings.claims).map(|i| i.sub)
        }
    };
    if sub.as_deref() != Some(data.identity.sub.as_str()) {
        return Err(Error::ProviderError(
            "userinfo names another subject".into(),
        ));
    }
    Ok(Json(json).into_response())
}

async fn backchannel_logout(
    State(app): State<App>,
    body: axum::body::Bytes,
) -> Result<Response, Error> {
    // application/x-www-form-urlencoded: logout_token=<JWT>
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned());
    let result = match token {
        Some(token) => crate::backchannel::logout(&app, &token).await,
        None => Err(Error::InvalidLogoutToken("no logout_token".into())),
    };
    app.metrics.backchannel(match &result {
        Ok(_) => BackchannelOutcome::Succeeded,
        Err(Error::InvalidLogoutToken(_)) => BackchannelOutcome::Invalid,
        Err(_) => BackchannelOutcome::Failed,
    });
    result?;
    Ok(StatusCode::OK.into_response())
}

async fn api(State(app): State<App>, req: Request) -> Result<Response, Error> {
    // The name from the raw path (no decoding: names are plain ASCII).
    let name = req
        .uri()
        .path()
        .trim_start_matches("/bff/api/")
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned();
    crate::proxy::forward(State(app), name, req).await
}

async fn logout(State(app): State<App>, headers: HeaderMap) -> Result<Response, Error> {
    let mut end_session_url = None;
    if let Some(cookie) = cookie::read(&headers, app.cookies.session_name())
        && let Some((id, data)) = app.sessions.load(&cookie).await?
    {
        app.sessions.delete(id).await?;
        end_session_url = tokens::end_session_url(&app, &data).await;
        let app2 = app.clone();
        // Revocation is bounded by the HTTP timeout; the session is already gone.
        let _ = tokio::time::timeout(
            app.config.http_timeout + Duration::from_secs(1),
            tokens::revoke(&app2, &data),
        )
        .await;
        tracing::info!(provider = %data.provider, "logged out");
    }
    Ok((
        [(header::SET_COOKIE, app.cookies.clear_session())],
        Json(LogoutResponse { end_session_url }),
    )
        .into_response())
}

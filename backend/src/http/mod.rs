//! The HTTP layer: the only part of Keyway that knows about status codes,
//! headers and routes. The router ([`router`]), thin handlers
//! ([`handlers`]), extractors ([`extract`], among them the request's
//! session), the guard and security headers ([`middleware`]), the mapping of
//! every error to the contract's responses ([`error`]), the SPA's files
//! ([`static_files`]) and the server loop with its connection limits
//! ([`server`]).

pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod handlers;
pub(crate) mod jwks;
pub(crate) mod middleware;
pub(crate) mod server;
pub(crate) mod static_files;

use crate::app::App;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::routing::{any, delete, get, post};
use error::ApiError;
use static_files::StaticSite;
use std::sync::Arc;
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// Builds the whole router for an [`App`].
pub(crate) fn router(app: App) -> Result<Router, std::io::Error> {
    let site = match app.config.static_dir.as_deref() {
        Some(dir) => Some(StaticSite::open(dir)?),
        None => None,
    };
    let csp = site
        .as_ref()
        .map(|s| s.csp.clone())
        .unwrap_or_else(|| static_files::csp_for(&[]));

    let mut router = Router::new()
        .merge(bff_routes())
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics));
    router = match site {
        Some(site) => router.fallback(move |req: Request| {
            let site = site.clone();
            async move { site.serve(req).await }
        }),
        None => router.fallback(|| async { ApiError::NotFound }),
    };
    Ok(with_middleware(router, app, csp))
}

/// The contract's routes under `/bff/`, answered `no-store`.
fn bff_routes() -> Router<App> {
    Router::new()
        .route("/bff/providers", get(handlers::providers))
        .route(
            "/bff/login",
            get(handlers::login_redirect).post(handlers::login_start),
        )
        .route("/bff/callback", post(handlers::callback))
        .route("/bff/callback/{provider}", post(handlers::callback_for))
        .route("/bff/user", get(handlers::user))
        .route("/bff/userinfo", get(handlers::userinfo))
        .route("/bff/logout", post(handlers::logout))
        .route("/bff/sessions", get(handlers::sessions))
        .route(
            "/bff/sessions/end-others",
            post(handlers::end_other_sessions),
        )
        .route("/bff/sessions/{handle}", delete(handlers::end_session))
        .route(
            "/bff/backchannel-logout",
            post(handlers::backchannel_logout),
        )
        .route("/bff/jwks", get(jwks::jwks))
        .route("/bff/api/{name}", any(handlers::api))
        .route("/bff/api/{name}/{*rest}", any(handlers::api))
        .route("/bff/{*rest}", any(|| async { ApiError::NotFound }))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// What every request goes through, outermost first: the surface (request
/// ids, security headers), sensitive-header marking, the access log, panics
/// to 500, the guard, the body timeout and size limit.
fn with_middleware(router: Router<App>, app: App, csp: HeaderValue) -> Router {
    let guard = middleware::Guard {
        origin: app.config.public_url.origin().ascii_serialization(),
        max_body: app.config.server.max_body,
        max_header_bytes: app.config.server.max_header_bytes,
    };
    let surface = middleware::Surface::new(csp, app.config.is_https());
    let limits = app.config.server.clone();
    with_layers(router, guard, surface, &limits).with_state(app)
}

/// The layers of [`with_middleware`], for any router state.
fn with_layers<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    guard: middleware::Guard,
    surface: middleware::Surface,
    limits: &crate::config::ServerLimits,
) -> Router<S> {
    let stack = ServiceBuilder::new()
        .layer(middleware::SurfaceLayer(Arc::new(surface)))
        .layer(SetSensitiveHeadersLayer::new([header::COOKIE, header::SET_COOKIE, header::AUTHORIZATION]))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    // The path only: a query may carry a code or state.
                    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                })
                // One access-log line a request (in its span: with the request id).
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Millis)),
        )
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(crate::error::Error::Internal(
                "a handler panicked".into(),
            ))
        }))
        .layer(middleware::GuardLayer(Arc::new(guard)))
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .layer(DefaultBodyLimit::max(limits.max_body));
    router.layer(stack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use tower::ServiceExt;

    /// Every kind of answer (a handler's 200, an error, the 404 fallback, a
    /// guard refusal, a caught panic, a 405) carries every security header
    /// and a request id.
    #[tokio::test]
    async fn every_answer_has_the_security_headers_and_a_request_id() {
        let router: Router = Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route(
                "/error",
                get(|| async { ApiError::Domain(crate::error::Error::Unauthenticated) }),
            )
            .route(
                "/panic",
                get(|| async {
                    if true {
                        panic!("on purpose");
                    }
                    "unreachable"
                }),
            )
            .route("/bff/logout", post(|| async { "never" }))
            .fallback(|| async { ApiError::NotFound });
        let guard = middleware::Guard {
            origin: "https://app.example".into(),
            max_body: 1024,
            max_header_bytes: 8192,
        };
        let csp = HeaderValue::from_static("default-src 'self'");
        let surface = middleware::Surface::new(csp.clone(), true);
        let app = with_layers(router, guard, surface, &Default::default());
        let cases = [
            ("GET", "/ok", StatusCode::OK),
            ("GET", "/error", StatusCode::UNAUTHORIZED),
            ("GET", "/nothing-here", StatusCode::NOT_FOUND),
            ("POST", "/bff/logout", StatusCode::FORBIDDEN),
            ("GET", "/panic", StatusCode::INTERNAL_SERVER_ERROR),
            ("TRACE", "/ok", StatusCode::METHOD_NOT_ALLOWED),
        ];
        for (method, path, status) in cases {
            let req = axum::http::Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            let r = app.clone().oneshot(req).await.unwrap();
            assert_eq!(r.status(), status, "{method} {path}");
            let h = r.headers();
            assert_eq!(h["content-security-policy"], csp, "{method} {path}");
            assert_eq!(h["x-content-type-options"], "nosniff", "{method} {path}");
            assert_eq!(h["referrer-policy"], "no-referrer", "{method} {path}");
            assert_eq!(h["x-frame-options"], "DENY", "{method} {path}");
            assert_eq!(
                h["strict-transport-security"], "max-age=31536000; includeSubDomains",
                "{method} {path}"
            );
            assert!(h.contains_key("x-request-id"), "{method} {path}");
        }
        let req = axum::http::Request::builder()
            .uri("/error")
            .header("x-request-id", "mine-1")
            .body(Body::empty())
            .unwrap();
        let r = app.oneshot(req).await.unwrap();
        assert_eq!(r.headers()["x-request-id"], "mine-1");
    }
}

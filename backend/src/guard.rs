//! Request guards: CSRF defence and request ids.
//!
//! CSRF: every state-changing `/bff/*` request and every `/bff/api/*`
//! request must carry `X-CSRF: 1`. A custom header cannot be sent cross-site
//! without a CORS preflight, and Keyway answers no preflight with CORS
//! headers, so another site's page can never send it. As defence in depth a
//! request whose `Sec-Fetch-Site` says `cross-site`/`same-site`, or whose
//! `Origin` is not the public origin, is refused too. The one exception is
//! `/bff/backchannel-logout`, called server to server by the provider and
//! authenticated by the logout token's signature.

use crate::app::App;
use crate::error::Error;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keyway_shared::{CSRF_HEADER, CSRF_HEADER_VALUE};

/// Paths exempt from the CSRF header (server-to-server).
pub const CSRF_EXEMPT: &[&str] = &["/bff/backchannel-logout"];

/// Whether this request must carry the CSRF header.
pub fn needs_csrf(method: &Method, path: &str) -> bool {
    if !path.starts_with("/bff/") || CSRF_EXEMPT.contains(&path) {
        return false;
    }
    path.starts_with("/bff/api/")
        || !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The CSRF middleware.
pub async fn csrf(State(app): State<App>, req: Request, next: Next) -> Response {
    if needs_csrf(req.method(), req.uri().path()) {
        let headers = req.headers();
        if headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) != Some(CSRF_HEADER_VALUE) {
            return Error::CsrfHeaderMissing.into_response();
        }
        let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        if matches!(fetch_site, Some("cross-site") | Some("same-site")) {
            return Error::CrossSite.into_response();
        }
        if let Some(origin) = headers
            .get(axum::http::header::ORIGIN)
            .and_then(|v| v.to_str().ok())
        {
            let public = app.config.public_url.origin().ascii_serialization();
            if origin != public {
                return Error::CrossSite.into_response();
            }
        }
    }
    next.run(req).await
}

/// Makes the ids of requests that come without one: a random prefix drawn
/// once per process and a counter (`1f3a9c0e5b7d2468-2a`). Unique across
/// instances and restarts without a system call per request (a UUID v4
/// reads the OS random source each time); request ids are labels, not
/// secrets.
#[derive(Debug, Clone)]
pub struct RequestIds {
    prefix: std::sync::Arc<str>,
    next: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        Self {
            prefix: format!("{:016x}", rand::random::<u64>()).into(),
            next: Default::default(),
        }
    }
}

impl tower_http::request_id::MakeRequestId for RequestIds {
    fn make_request_id<B>(
        &mut self,
        _: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}

/// Drops an incoming `x-request-id` that is not a short printable token, so
/// that a client cannot inject text into log lines; a new id is made instead.
pub async fn sanitize_request_id(mut req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get("x-request-id")
        .is_none_or(|v: &HeaderValue| {
            v.len() <= 128
                && v.as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        });
    if !ok {
        req.headers_mut().remove("x-request-id");
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_differ() {
        use tower_http::request_id::MakeRequestId;
        let mut ids = RequestIds::default();
        let req = axum::http::Request::new(());
        let a = ids.make_request_id(&req).unwrap();
        let b = ids.make_request_id(&req).unwrap();
        assert_ne!(a.header_value(), b.header_value());
        let other = RequestIds::default().make_request_id(&req).unwrap();
        assert_ne!(a.header_value(), other.header_value(), "per-process prefix");
    }

    #[test]
    fn which_requests_need_the_header() {
        assert!(needs_csrf(&Method::POST, "/bff/login"));
        assert!(needs_csrf(&Method::POST, "/bff/logout"));
        assert!(needs_csrf(&Method::GET, "/bff/api/orders/x"));
        assert!(!needs_csrf(&Method::GET, "/bff/user"));
        assert!(!needs_csrf(&Method::GET, "/bff/login"));
        assert!(!needs_csrf(&Method::POST, "/bff/backchannel-logout"));
        assert!(!needs_csrf(&Method::POST, "/other"));
    }
}

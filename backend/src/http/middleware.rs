//! What every request goes through before a handler: the guard (methods,
//! sizes, CSRF, request-id hygiene), request ids, and the security headers
//! of every response.
//!
//! CSRF: every state-changing `/bff/*` request and every `/bff/api/*`
//! request must carry `X-CSRF: 1`. A custom header cannot be sent
//! cross-site without a CORS preflight, and Keyway answers no preflight with
//! CORS headers, so another site's page can never send it. As defence in
//! depth a request whose `Sec-Fetch-Site` says `cross-site`/`same-site`, or
//! whose `Origin` is not the public origin, is refused too. The one
//! exception is `/bff/backchannel-logout`, called server to server by the
//! provider and authenticated by the logout token's signature.

use super::error::ApiError;
use crate::error::Error;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keyway_shared::{CSRF_HEADER, CSRF_HEADER_VALUE};
use std::sync::Arc;

/// Paths exempt from the CSRF header (server-to-server).
pub(crate) const CSRF_EXEMPT: &[&str] = &["/bff/backchannel-logout"];

/// Whether this request must carry the CSRF header.
pub(crate) fn needs_csrf(method: &Method, path: &str) -> bool {
    if !path.starts_with("/bff/") || CSRF_EXEMPT.contains(&path) {
        return false;
    }
    path.starts_with("/bff/api/")
        || !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// What the guard checks against, built once.
#[derive(Debug)]
pub(crate) struct Guard {
    /// The public origin (`https://app.example.com`).
    pub origin: String,
    /// The largest body of `/bff/*` requests (the API proxy has its own).
    pub max_body: usize,
    /// The largest request head.
    pub max_header_bytes: usize,
}

impl Guard {
    fn check(&self, req: &Request) -> Result<(), ApiError> {
        if matches!(*req.method(), Method::CONNECT | Method::TRACE) {
            return Err(ApiError::MethodNotAllowed);
        }
        let headers = req.headers();
        let head: usize = headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum();
        if head > self.max_header_bytes {
            return Err(ApiError::HeadersTooLarge);
        }
        let path = req.uri().path();
        // A declared body over the limit is refused before a byte is read
        // (the API proxy checks its own per-API limit).
        if path.starts_with("/bff/")
            && !path.starts_with("/bff/api/")
            && declared_length(headers).is_some_and(|len| len > self.max_body as u64)
        {
            return Err(Error::PayloadTooLarge.into());
        }
        if needs_csrf(req.method(), path) {
            self.check_csrf(headers)?;
        }
        Ok(())
    }

    fn check_csrf(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) != Some(CSRF_HEADER_VALUE) {
            return Err(ApiError::CsrfHeaderMissing);
        }
        let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        if matches!(fetch_site, Some("cross-site") | Some("same-site")) {
            return Err(ApiError::CrossSite);
        }
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
            && origin != self.origin
        {
            return Err(ApiError::CrossSite);
        }
        Ok(())
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The guard: refuses what must not reach a handler.
pub(crate) async fn guard(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    match guard.check(&req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Drops an incoming `x-request-id` that is not a short printable token, so
/// a client cannot inject text into log lines (a new id is made instead).
pub(crate) async fn sanitize_request_id(mut req: Request) -> Request {
    let ok = req.headers().get("x-request-id").is_none_or(|v| {
        v.len() <= 128
            && v.as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
    });
    if !ok {
        req.headers_mut().remove("x-request-id");
    }
    req
}

/// Makes the ids of requests that come without one: a random prefix drawn
/// once per process and a counter (`1f3a9c0e5b7d2468-2a`). Unique across
/// instances and restarts without a system call per request; request ids
/// are labels, not secrets.
#[derive(Debug, Clone)]
pub(crate) struct RequestIds {
    prefix: Arc<str>,
    next: Arc<std::sync::atomic::AtomicU64>,
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

/// The security headers of every response, built once: CSP, `nosniff`,
/// `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`, and HSTS over
/// https (unless a handler set its own).
#[derive(Debug)]
pub(crate) struct SecurityHeaders {
    always: Vec<(HeaderName, HeaderValue)>,
    hsts: Option<HeaderValue>,
}

impl SecurityHeaders {
    /// The set for a deployment with this CSP, over https or not.
    pub(crate) fn new(csp: HeaderValue, https: bool) -> Self {
        Self {
            always: vec![
                (header::CONTENT_SECURITY_POLICY, csp),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
                (
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ),
                (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            ],
            hsts: https.then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains")),
        }
    }
}

/// Adds the security headers to a response.
pub(crate) async fn security_headers(
    State(set): State<Arc<SecurityHeaders>>,
    req: Request,
    next: Next,
) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in &set.always {
        headers.insert(name.clone(), value.clone());
    }
    if let Some(hsts) = &set.hsts
        && !headers.contains_key(header::STRICT_TRANSPORT_SECURITY)
    {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    response
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

    #[test]
    fn the_guard_refuses_connect_trace_big_heads_and_declared_big_bodies() {
        let guard = Guard {
            origin: "http://127.0.0.1:8080".into(),
            max_body: 1024,
            max_header_bytes: 4096,
        };
        let req = |method: Method, path: &str, headers: &[(&str, String)]| {
            let mut r = axum::http::Request::builder().method(method).uri(path);
            for (k, v) in headers {
                r = r.header(*k, v);
            }
            r.body(axum::body::Body::empty()).unwrap()
        };
        for m in [Method::CONNECT, Method::TRACE] {
            let e = guard.check(&req(m, "/", &[])).unwrap_err();
            assert_eq!(e.parts().0, axum::http::StatusCode::METHOD_NOT_ALLOWED);
        }
        let big = "x".repeat(5000);
        let e = guard
            .check(&req(Method::GET, "/", &[("x-big", big)]))
            .unwrap_err();
        assert_eq!(e.parts().1, "headers_too_large");
        let declared = [
            ("content-length", "10000000000".to_owned()),
            ("x-csrf", "1".to_owned()),
        ];
        let e = guard
            .check(&req(Method::POST, "/bff/login", &declared))
            .unwrap_err();
        assert_eq!(e.parts().1, "payload_too_large");
        assert!(
            guard
                .check(&req(Method::POST, "/bff/login", &[("x-csrf", "1".into())]))
                .is_ok()
        );
    }
}

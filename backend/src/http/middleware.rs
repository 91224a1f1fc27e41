//! What every request goes through before a handler, as two tower layers
//! written for it (each one service, no boxed future): the [`Surface`]
//! outermost (request ids in, request ids and security headers out, on
//! every response) and the [`Guard`] innermost (methods, sizes, CSRF).
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
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::future::Either;
use keyway_shared::{CSRF_HEADER, CSRF_HEADER_VALUE};
use std::future::{Future, Ready};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tower::{Layer, Service};

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
    fn check<B>(&self, req: &http::Request<B>) -> Result<(), ApiError> {
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

/// The guard as a tower layer: refuses what must not reach a handler, with
/// the contract's error, before the handler runs (no boxing, no clone of
/// the inner service per request).
#[derive(Debug, Clone)]
pub(crate) struct GuardLayer(pub(crate) Arc<Guard>);

impl<S> Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            inner,
            guard: self.0.clone(),
        }
    }
}

/// The service of [`GuardLayer`].
#[derive(Debug, Clone)]
pub(crate) struct GuardService<S> {
    inner: S,
    guard: Arc<Guard>,
}

impl<S, B> Service<http::Request<B>> for GuardService<S>
where
    S: Service<http::Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match self.guard.check(&req) {
            Ok(()) => Either::Right(self.inner.call(req)),
            Err(e) => Either::Left(std::future::ready(Ok(e.into_response()))),
        }
    }
}

/// The request-id header.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Whether an incoming `x-request-id` may be kept: a short printable token,
/// so a client cannot inject text into log lines (else a new id is made).
fn clean_request_id(value: &HeaderValue) -> bool {
    value.len() <= 128
        && value
            .as_bytes()
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// Makes the ids of requests that come without one: a random prefix drawn
/// once per process and a counter (`1f3a9c0e5b7d2468-2a`). Unique across
/// instances and restarts without a system call per request; request ids
/// are labels, not secrets.
#[derive(Debug)]
pub(crate) struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        Self {
            prefix: format!("{:016x}-", rand::random::<u64>()),
            next: AtomicU64::new(0),
        }
    }
}

impl RequestIds {
    /// The next id (one allocation: the value's own bytes).
    fn make(&self) -> HeaderValue {
        use std::fmt::Write;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(self.prefix.len() + 16);
        id.push_str(&self.prefix);
        let _ = write!(id, "{n:x}");
        HeaderValue::from_maybe_shared(Bytes::from(id))
            .unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

/// What every request and response gets, built once at start: the request
/// id (the client's, when clean, or a new one), kept on the request for the
/// log and returned on the response; and the security headers: CSP,
/// `nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`, and
/// HSTS over https (unless a handler set its own).
#[derive(Debug)]
pub(crate) struct Surface {
    ids: RequestIds,
    always: HeaderMap,
    hsts: Option<HeaderValue>,
}

impl Surface {
    /// The surface of a deployment with this CSP, over https or not.
    pub(crate) fn new(csp: HeaderValue, https: bool) -> Self {
        let mut always = HeaderMap::with_capacity(4);
        always.insert(header::CONTENT_SECURITY_POLICY, csp);
        always.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        always.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        always.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        Self {
            ids: RequestIds::default(),
            always,
            hsts: https.then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains")),
        }
    }

    /// The request's id: the client's when clean, else a new one, which
    /// replaces whatever the client sent.
    fn request_id(&self, headers: &mut HeaderMap) -> HeaderValue {
        if let Some(id) = headers.get(X_REQUEST_ID)
            && clean_request_id(id)
        {
            return id.clone();
        }
        let id = self.ids.make();
        headers.insert(X_REQUEST_ID, id.clone());
        id
    }

    /// Adds the security headers (replacing a handler's, except HSTS) and
    /// the request id (unless the handler answered its own).
    fn finish(&self, headers: &mut HeaderMap, id: Option<HeaderValue>) {
        for (name, value) in &self.always {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(hsts) = &self.hsts
            && !headers.contains_key(header::STRICT_TRANSPORT_SECURITY)
        {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
        if let Some(id) = id
            && !headers.contains_key(X_REQUEST_ID)
        {
            headers.insert(X_REQUEST_ID, id);
        }
    }
}

/// The outermost layer: [`Surface`] on every request and response, those
/// refused by the guard, caught panics and 404s included.
#[derive(Debug, Clone)]
pub(crate) struct SurfaceLayer(pub(crate) Arc<Surface>);

impl<S> Layer<S> for SurfaceLayer {
    type Service = SurfaceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SurfaceService {
            inner,
            surface: self.0.clone(),
        }
    }
}

/// The service of [`SurfaceLayer`].
#[derive(Debug, Clone)]
pub(crate) struct SurfaceService<S> {
    inner: S,
    surface: Arc<Surface>,
}

impl<S, B, R> Service<http::Request<B>> for SurfaceService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = SurfaceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let id = self.surface.request_id(req.headers_mut());
        SurfaceFuture {
            inner: self.inner.call(req),
            surface: self.surface.clone(),
            id: Some(id),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`SurfaceService`]: the inner answer, finished.
    pub(crate) struct SurfaceFuture<F> {
        #[pin]
        inner: F,
        surface: Arc<Surface>,
        id: Option<HeaderValue>,
    }
}

impl<F, R, E> Future for SurfaceFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        this.surface.finish(response.headers_mut(), this.id.take());
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_differ() {
        let ids = RequestIds::default();
        let (a, b) = (ids.make(), ids.make());
        assert_ne!(a, b);
        let other = RequestIds::default().make();
        assert_ne!(a, other, "per-process prefix");
        let text = a.to_str().unwrap();
        assert!(clean_request_id(&a), "{text}");
        assert_eq!(text.len(), 18, "16 hex digits, '-', the counter: {text}");
    }

    #[test]
    fn the_surface_keeps_clean_ids_and_replaces_others() {
        let surface = Surface::new(HeaderValue::from_static("default-src 'self'"), false);
        let mut headers = HeaderMap::new();
        headers.insert(X_REQUEST_ID, HeaderValue::from_static("abc-1.2:3_4"));
        assert_eq!(surface.request_id(&mut headers), "abc-1.2:3_4");
        for bad in ["a b", "x\"y", "<script>", &"a".repeat(129)] {
            headers.insert(X_REQUEST_ID, HeaderValue::from_str(bad).unwrap());
            let id = surface.request_id(&mut headers);
            assert_ne!(id, bad);
            assert_eq!(headers[X_REQUEST_ID], id, "the new id replaces {bad:?}");
        }
        headers.clear();
        let id = surface.request_id(&mut headers);
        assert_eq!(headers[X_REQUEST_ID], id);
    }

    #[test]
    fn the_surface_sets_every_header_and_keeps_a_handlers_hsts_and_id() {
        let csp = HeaderValue::from_static("default-src 'self'");
        let https = Surface::new(csp.clone(), true);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("x"),
        );
        https.finish(&mut headers, Some(HeaderValue::from_static("id-1")));
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], csp, "overridden");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(
            headers[header::STRICT_TRANSPORT_SECURITY],
            "max-age=31536000; includeSubDomains"
        );
        assert_eq!(headers[X_REQUEST_ID], "id-1");
        let mut own = HeaderMap::new();
        own.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=1"),
        );
        own.insert(X_REQUEST_ID, HeaderValue::from_static("own"));
        https.finish(&mut own, Some(HeaderValue::from_static("id-2")));
        assert_eq!(own[header::STRICT_TRANSPORT_SECURITY], "max-age=1");
        assert_eq!(own[X_REQUEST_ID], "own");
        let mut plain = HeaderMap::new();
        Surface::new(csp, false).finish(&mut plain, None);
        assert!(!plain.contains_key(header::STRICT_TRANSPORT_SECURITY));
        assert_eq!(plain.len(), 4);
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

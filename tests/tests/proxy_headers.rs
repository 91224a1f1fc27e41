//! Proxy headers and paths (issue 15, item 12; security checklist "API calls
//! through the BFF": hop-by-hop headers, the browser's cookies and its
//! forwarding headers are not forwarded upstream; no path segment an
//! upstream may read as `..` is passed on; the upstream's cookies, HSTS,
//! CORS and Clear-Site-Data never reach the browser).
//!
//! The upstream is a FAKE API started here (`RecordingApi`): it records
//! every request as it arrived and answers with the headers a careless API
//! sends. The user signs in at the lying provider (honest here), whose
//! access token is `at-<code>`, so the test knows which bearer the upstream
//! must get.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyway_tests::bff::{TestBff, env_for, reserve};
use keyway_tests::lying_provider::{Fault, LyingProvider};
use keyway_tests::raw_http::{RawConnection, request_head};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the fake API saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// The path as received (still encoded).
    path: String,
    /// Every header, names lower-case, in order (repeats kept).
    headers: Vec<(String, String)>,
}

impl Seen {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A FAKE upstream API on a free port under `/base`: records what it gets,
/// answers `/base/plain` with cookies, HSTS, CORS, Clear-Site-Data,
/// `X-Powered-By`, an ETag and a content type; `/base/away` with a
/// redirect to another origin; `/base/inside` with a redirect inside the
/// API.
struct RecordingApi {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RecordingApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const ETAG: &str = "\"v1-5f3a\"";
const CONTENT_TYPE: &str = "application/vnd.keyway-test+json";

async fn answer(State(seen): State<Arc<Mutex<Vec<Seen>>>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    seen.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        path: path.clone(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
            .collect(),
    });
    match path.as_str() {
        "/base/away" => (
            StatusCode::FOUND,
            [(header::LOCATION, "https://evil.example/phish")],
        )
            .into_response(),
        "/base/inside" => {
            (StatusCode::FOUND, [(header::LOCATION, "/base/items/7?x=1")]).into_response()
        }
        _ => (
            StatusCode::OK,
            [
                ("set-cookie", "upstream=1; Path=/; HttpOnly"),
                ("strict-transport-security", "max-age=63072000; preload"),
                ("access-control-allow-origin", "*"),
                ("access-control-allow-credentials", "true"),
                ("clear-site-data", "\"*\""),
                ("x-powered-by", "PHP/5.4.0"),
                ("etag", ETAG),
                ("content-type", CONTENT_TYPE),
            ],
            r#"{"ok":true}"#,
        )
            .into_response(),
    }
}

impl RecordingApi {
    async fn start() -> RecordingApi {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/base", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RecordingApi { base, seen, task }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

struct Setup {
    bff: TestBff,
    api: RecordingApi,
    /// The session cookie, `name=value`.
    cookie: String,
    /// The session's access token (what the upstream must get).
    access_token: String,
    _provider: LyingProvider,
}

/// The `name=value` parts of every `Set-Cookie` of a response (removals too).
fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::to_owned)
        .collect()
}

/// A BFF with the API `hdr` (`forward_headers = ["x-custom"]`) in front of a
/// [`RecordingApi`], and a session made by hand (no cookie jar), so that the
/// test can send its cookie itself, over reqwest or a raw socket.
async fn setup() -> Setup {
    let provider = LyingProvider::start(Fault::None).await;
    let api = RecordingApi::start().await;
    let reserved = reserve().await;
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SCOPES".into(), "openid profile".into());
    let toml = format!(
        r#"
        [[apis]]
        name = "hdr"
        url = "{}"
        forward_headers = ["x-custom"]
        "#,
        api.base
    );
    let bff = TestBff::start_with_file(reserved, &toml, &env)
        .await
        .expect("BFF");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(bff.url("/bff/login"))
        .header("x-csrf", "1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pending = set_cookies(&r).join("; ");
    let body: Value = r.json().await.unwrap();
    let cb = provider
        .authorize(body["authorization_url"].as_str().unwrap())
        .await;
    let r = http
        .post(bff.url("/bff/callback"))
        .header("x-csrf", "1")
        .header(header::COOKIE, pending)
        .json(&cb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("keyway="))
        .expect("a session cookie");
    Setup {
        bff,
        api,
        cookie,
        access_token: format!("at-{}", cb.code.unwrap()),
        _provider: provider,
    }
}

fn bff_addr(bff: &TestBff) -> SocketAddr {
    let host = bff.origin.host_str().unwrap();
    format!("{host}:{}", bff.origin.port().unwrap())
        .parse()
        .unwrap()
}

/// Sends `method path` over a raw socket (the path exactly as written, no
/// client normalising it) with the session cookie and `X-CSRF: 1`; returns
/// the status and the body.
async fn raw(s: &Setup, method: &str, path: &str) -> (Option<u16>, String) {
    let addr = bff_addr(&s.bff);
    let host = format!("{addr}");
    let head = request_head(
        method,
        path,
        &host,
        &[
            ("Cookie", s.cookie.as_str()),
            ("X-CSRF", "1"),
            ("Connection", "close"),
        ],
    );
    let mut connection = RawConnection::send_then_stall(addr, head).await.unwrap();
    let outcome = connection.wait_closed(Duration::from_secs(10)).await;
    assert!(!outcome.still_open(), "{method} {path}: no answer in 10 s");
    let text = outcome.received_text();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (outcome.status(), body.to_owned())
}

/// Item 12: of the upstream's answer the browser gets only what is content
/// (ETag, Content-Type): no cookie, HSTS, CORS, Clear-Site-Data or
/// `X-Powered-By`.
#[tokio::test]
async fn only_content_headers_of_the_upstream_reach_the_browser() {
    let s = setup().await;
    let r = reqwest::Client::new()
        .get(s.bff.url("/bff/api/hdr/plain"))
        .header(header::COOKIE, &s.cookie)
        .header("x-csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert_eq!(h["etag"], ETAG);
    assert_eq!(h["content-type"], CONTENT_TYPE);
    for gone in [
        "set-cookie",
        "strict-transport-security",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "clear-site-data",
        "x-powered-by",
    ] {
        assert!(h.get(gone).is_none(), "{gone} reached the browser: {h:?}");
    }
    assert_eq!(r.text().await.unwrap(), r#"{"ok":true}"#);
    assert_eq!(s.api.seen().len(), 1);
}

/// Item 12: a redirect inside the API comes back rewritten to the BFF's
/// path of the API; a redirect to another origin is refused as `502
/// upstream_error` (the browser is never sent elsewhere by an API).
#[tokio::test]
async fn redirects_stay_inside_the_api_or_are_refused() {
    let s = setup().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| {
        http.get(s.bff.url(path))
            .header(header::COOKIE, &s.cookie)
            .header("x-csrf", "1")
            .send()
    };
    let r = get("/bff/api/hdr/inside").await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/bff/api/hdr/items/7?x=1");

    let r = get("/bff/api/hdr/away").await.unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.headers().get("location").is_none());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "upstream_error", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

/// Item 12: the browser's forwarding headers, cookie, `Authorization` and
/// `X-CSRF` never reach the upstream; it gets Keyway's own `Forwarded`,
/// `X-Forwarded-Proto/Host/For` (once each) and Keyway's bearer; a header
/// of the API's `forward_headers` passes, an unlisted one does not.
#[tokio::test]
async fn the_browsers_forwarding_and_credentials_never_reach_the_upstream() {
    let s = setup().await;
    let r = reqwest::Client::new()
        .get(s.bff.url("/bff/api/hdr/plain"))
        .header(header::COOKIE, &s.cookie)
        .header("x-csrf", "1")
        .header("authorization", "Bearer from-the-browser")
        .header("forwarded", "for=6.6.6.6;host=evil.example;proto=https")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .header("x-real-ip", "6.6.6.6")
        .header("x-custom", "listed")
        .header("x-unlisted", "not listed")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = s.api.seen();
    assert_eq!(seen.len(), 1);
    let up = &seen[0];
    let host = format!("127.0.0.1:{}", s.bff.origin.port().unwrap());
    assert_eq!(up.path, "/base/plain");
    assert_eq!(
        up.all("authorization"),
        [format!("Bearer {}", s.access_token)]
    );
    assert_eq!(up.all("x-forwarded-proto"), ["http"]);
    assert_eq!(up.all("x-forwarded-host"), [host.as_str()]);
    assert_eq!(up.all("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(
        up.all("forwarded"),
        [format!("for=127.0.0.1;proto=http;host=\"{host}\"")]
    );
    assert_eq!(up.all("x-custom"), ["listed"]);
    for gone in ["x-real-ip", "cookie", "x-csrf", "x-unlisted"] {
        assert!(
            up.all(gone).is_empty(),
            "{gone} reached the upstream: {up:?}"
        );
    }
    let everything = format!("{:?}", up.headers);
    assert!(!everything.contains("6.6.6.6"), "{everything}");
    assert!(!everything.contains("evil.example"), "{everything}");
    assert!(!everything.contains("from-the-browser"), "{everything}");
    assert!(!everything.contains(&s.cookie), "{everything}");
}

/// Item 12: path segments some upstream reads as `..` or `.` — Tomcat's
/// path parameters, double encoding, overlong UTF-8 — sent raw over TCP are
/// `400 invalid_request`, and the upstream sees nothing; an ordinary path
/// over the same raw channel gets through.
#[tokio::test]
async fn dot_segments_in_any_disguise_are_refused() {
    let s = setup().await;
    for path in [
        "/bff/api/hdr/..;/x",
        "/bff/api/hdr/%252e%252e/x",
        "/bff/api/hdr/%c0%ae%c0%ae/x",
        "/bff/api/hdr/.;/x",
    ] {
        let (status, body) = raw(&s, "GET", path).await;
        assert_eq!(status, Some(400), "{path}: {body}");
        let body: Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: not JSON: {body}"));
        assert_eq!(body["error"], "invalid_request", "{path}: {body}");
        assert!(
            s.api.seen().is_empty(),
            "{path} reached the upstream: {:?}",
            s.api.seen()
        );
    }
    let (status, body) = raw(&s, "GET", "/bff/api/hdr/items/a.b").await;
    assert_eq!(status, Some(200), "control: {body}");
    assert_eq!(s.api.seen()[0].method, "GET");
    assert_eq!(s.api.seen()[0].path, "/base/items/a.b");
}

/// Item 12: `CONNECT` and `TRACE` are `405 method_not_allowed` (the
/// contract's JSON) on the SPA's root, a BFF route and an API path; the
/// upstream never sees them.
#[tokio::test]
async fn connect_and_trace_are_405_everywhere() {
    let s = setup().await;
    for method in ["CONNECT", "TRACE"] {
        for path in ["/", "/bff/user", "/bff/api/hdr/x"] {
            let (status, body) = raw(&s, method, path).await;
            assert_eq!(status, Some(405), "{method} {path}: {body}");
            let body: Value = serde_json::from_str(&body)
                .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {body}"));
            assert_eq!(body["error"], "method_not_allowed", "{method} {path}");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    assert!(s.api.seen().is_empty(), "{:?}", s.api.seen());
}

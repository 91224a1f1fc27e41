//! The API proxy's own client (hyper-util's pooled client over rustls):
//! an https API is trusted through the configured CA and only through it,
//! redirects are answered, never followed, and an API's timeout bounds both
//! its answer's head and its body.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use keyway_tests::bff::{SpaClient, TestBff, client_for, env_for, json_of, reserve};
use keyway_tests::provider::{ProviderConfig, TestProvider};
use keyway_tests::tls::{TestCa, TlsListener, install_crypto_provider};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What the API saw: calls, and the last `Authorization`.
#[derive(Default)]
struct Seen {
    calls: AtomicUsize,
    bearer: std::sync::Mutex<Option<String>>,
}

fn api_routes(seen: Arc<Seen>) -> Router {
    async fn item(State(seen): State<Arc<Seen>>, headers: HeaderMap) -> Response {
        seen.calls.fetch_add(1, Ordering::SeqCst);
        *seen.bearer.lock().unwrap() = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"ok":true}"#,
        )
            .into_response()
    }
    async fn moved(State(seen): State<Arc<Seen>>) -> Response {
        seen.calls.fetch_add(1, Ordering::SeqCst);
        (StatusCode::FOUND, [(header::LOCATION, "/item")]).into_response()
    }
    // Never answers: only the BFF's timeout ends the call.
    async fn silent() -> Response {
        std::future::pending::<()>().await;
        StatusCode::OK.into_response()
    }
    // Answers its head at once and never ends its body.
    async fn endless() -> Response {
        let stream = futures_util::stream::once(async {
            Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{\"part\":"))
        })
        .chain(futures_util::stream::pending());
        (
            [(header::CONTENT_TYPE, "application/json")],
            axum::body::Body::from_stream(stream),
        )
            .into_response()
    }
    Router::new()
        .route("/item", get(item))
        .route("/moved", get(moved))
        .route("/silent", get(silent))
        .route("/endless", get(endless))
        .with_state(seen)
}

/// An https API with a certificate of `ca` for `localhost`.
async fn tls_api(ca: &TestCa, seen: Arc<Seen>) -> (String, tokio::task::JoinHandle<()>) {
    let leaf = ca.leaf(&["localhost"]);
    let listener = TlsListener::bind("127.0.0.1:0".parse().unwrap(), leaf.server_config())
        .await
        .unwrap();
    let port = listener.addr().port();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, api_routes(seen)).await;
    });
    (format!("https://localhost:{port}"), task)
}

async fn plain_api(seen: Arc<Seen>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, api_routes(seen)).await;
    });
    (base, task)
}

/// A provider, and a BFF trusting `ca` with the APIs of `toml`, alice
/// signed in.
async fn signed_in(ca: &TestCa, toml: &str) -> (TestProvider, TestBff, SpaClient) {
    let reserved = reserve().await;
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&reserved.origin)],
        ..ProviderConfig::default()
    })
    .await
    .expect("provider");
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert(
        "KEYWAY_TLS_CA_FILE".into(),
        ca.ca_pem_path().display().to_string(),
    );
    let bff = TestBff::start_with_file(reserved, toml, &env)
        .await
        .expect("BFF");
    let spa = SpaClient::new(&bff);
    let r = spa.login(&provider, "alice", "wonderland").await;
    assert_eq!(r.status(), 200, "login");
    (provider, bff, spa)
}

/// `GET path` as the SPA calls an API (with `X-CSRF: 1`).
async fn api_get(spa: &SpaClient, bff: &TestBff, path: &str) -> reqwest::Response {
    spa.http
        .get(bff.url(path))
        .header("x-csrf", "1")
        .send()
        .await
        .expect("GET")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_api_is_trusted_through_the_configured_ca_only() {
    install_crypto_provider();
    let ca = TestCa::new();
    let other_ca = TestCa::new();
    let (trusted_seen, untrusted_seen) = (Arc::<Seen>::default(), Arc::<Seen>::default());
    let (trusted, _t1) = tls_api(&ca, trusted_seen.clone()).await;
    let (untrusted, _t2) = tls_api(&other_ca, untrusted_seen.clone()).await;
    let toml = format!(
        "[[apis]]\nname = \"secure\"\nurl = \"{trusted}\"\n\n[[apis]]\nname = \"stranger\"\nurl = \"{untrusted}\"\n"
    );
    let (_provider, bff, spa) = signed_in(&ca, &toml).await;

    let r = api_get(&spa, &bff, "/bff/api/secure/item").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"ok":true}"#);
    let bearer = trusted_seen.bearer.lock().unwrap().clone();
    assert!(
        bearer.is_some_and(|b| b.starts_with("Bearer ")),
        "the token went along"
    );

    let r = api_get(&spa, &bff, "/bff/api/stranger/item").await;
    let (status, body) = json_of(r).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "upstream_error", "{body}");
    assert_eq!(
        untrusted_seen.calls.load(Ordering::SeqCst),
        0,
        "no request crossed an untrusted TLS connection"
    );
    bff.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_answered_not_followed() {
    install_crypto_provider();
    let ca = TestCa::new();
    let seen = Arc::<Seen>::default();
    let (base, _task) = plain_api(seen.clone()).await;
    let toml = format!("[[apis]]\nname = \"r\"\nurl = \"{base}\"\n");
    let (_provider, bff, spa) = signed_in(&ca, &toml).await;
    let r = api_get(&spa, &bff, "/bff/api/r/moved").await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()[header::LOCATION], "/bff/api/r/item");
    assert_eq!(
        seen.calls.load(Ordering::SeqCst),
        1,
        "the BFF answered the redirect and did not call /item itself"
    );
    bff.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apis_timeout_bounds_the_head_and_the_body() {
    install_crypto_provider();
    let ca = TestCa::new();
    let seen = Arc::<Seen>::default();
    let (base, _task) = plain_api(seen).await;
    let toml = format!("[[apis]]\nname = \"slow\"\nurl = \"{base}\"\ntimeout = \"500ms\"\n");
    let (_provider, bff, spa) = signed_in(&ca, &toml).await;

    let started = Instant::now();
    let (status, body) = json_of(api_get(&spa, &bff, "/bff/api/slow/silent").await).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"], "upstream_error", "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let r = api_get(&spa, &bff, "/bff/api/slow/endless").await;
    assert_eq!(r.status(), 200, "the head came in time");
    // The body must fail (cut at the deadline), not hang: bounded here.
    let read = tokio::time::timeout(Duration::from_secs(10), r.bytes()).await;
    let read = read.expect("the body was cut within 10 s");
    assert!(
        read.is_err(),
        "a body cut at the deadline is an error, not an end"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    bff.stop().await;
}

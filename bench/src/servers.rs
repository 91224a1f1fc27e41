//! The two reference servers, each run as its own process
//! (`keyway-bench upstream`, `keyway-bench plain-proxy`): a minimal JSON
//! upstream and a plain reverse proxy to it with no authentication, built on
//! the same client as Keyway's proxy (reqwest over hyper, made by
//! `keyway_backend::provider::http::HttpClient`).

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use std::time::Duration;
use tokio::net::TcpListener;

/// The upstream's answer to every request: a small JSON document.
pub const UPSTREAM_BODY: &str =
    r#"{"id":7,"name":"widget","tags":["a","b","c"],"price":12.5,"in_stock":true}"#;

/// Headers a proxy does not forward (hop-by-hop, and the ones the client
/// recomputes).
const SKIP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Binds `listen`, prints `READY http://ADDR` on stdout and serves `app`.
async fn serve(listen: &str, app: Router) -> Result<(), String> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("bind {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("READY http://{addr}");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

/// Runs the upstream: every path answers [`UPSTREAM_BODY`].
pub async fn upstream(listen: &str) -> Result<(), String> {
    let app = Router::new()
        .fallback(|| async { ([(header::CONTENT_TYPE, "application/json")], UPSTREAM_BODY) });
    serve(listen, app).await
}

#[derive(Clone)]
struct Plain {
    client: reqwest::Client,
    base: String,
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (k, v) in from {
        if !SKIP.contains(&k.as_str()) {
            to.append(k.clone(), v.clone());
        }
    }
}

async fn forward(State(p): State<Plain>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    copy_headers(&parts.headers, &mut headers);
    let body = reqwest::Body::wrap_stream(http_body_util::BodyDataStream::new(body));
    let sent = p
        .client
        .request(parts.method, format!("{}{path}", p.base))
        .headers(headers)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(up) => {
            let mut response = Response::builder().status(up.status());
            if let Some(h) = response.headers_mut() {
                copy_headers(up.headers(), h);
            }
            response
                .body(Body::from_stream(
                    up.bytes_stream().map_err(std::io::Error::other),
                ))
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// Runs the plain proxy: `/X` goes to `upstream/X`, headers and bodies
/// streamed, no authentication, no logging, no metrics.
pub async fn plain_proxy(listen: &str, upstream: &str) -> Result<(), String> {
    let client =
        keyway_backend::internals::HttpClient::new(Duration::from_secs(10), &Default::default())?
            .reqwest()
            .clone();
    let state = Plain {
        client,
        base: upstream.trim_end_matches('/').to_owned(),
    };
    let app = Router::new().fallback(forward).with_state(state);
    serve(listen, app).await
}

//! The two reference servers, each run as its own process
//! (`keyway-bench upstream`, `keyway-bench plain-proxy`): a minimal JSON
//! upstream and a plain reverse proxy to it with no authentication, built on
//! the same client as Keyway's proxy (hyper-util's pooled client, made by
//! `keyway_backend::internals::HttpClient`).

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use keyway_backend::internals::ApiClient;
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
    client: ApiClient,
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
    let Ok(uri) = Uri::try_from(format!("{}{path}", p.base)) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut out = Request::new(body);
    *out.method_mut() = parts.method;
    *out.uri_mut() = uri;
    copy_headers(&parts.headers, out.headers_mut());
    match p.client.send(out, None).await {
        Ok(up) => {
            let (mut head, body) = up.into_parts();
            let mut headers = HeaderMap::with_capacity(head.headers.len());
            copy_headers(&head.headers, &mut headers);
            head.headers = headers;
            Response::from_parts(head, Body::new(body))
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// Runs the plain proxy: `/X` goes to `upstream/X`, headers and bodies
/// streamed, no authentication, no logging, no metrics; on the client of
/// Keyway's API proxy (hyper-util's pooled client, `ApiClient`).
pub async fn plain_proxy(listen: &str, upstream: &str) -> Result<(), String> {
    let client =
        keyway_backend::internals::HttpClient::new(Duration::from_secs(10), &Default::default())?
            .api()
            .clone();
    let state = Plain {
        client,
        base: upstream.trim_end_matches('/').to_owned(),
    };
    let app = Router::new().fallback(forward).with_state(state);
    serve(listen, app).await
}

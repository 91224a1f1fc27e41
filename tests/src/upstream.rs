//! An upstream API for proxy tests: it checks the bearer token by the
//! provider's introspection endpoint (RFC 7662) and records what reached it.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path (as received, still encoded).
    pub path: String,
    /// Query string.
    pub query: Option<String>,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The bearer token, if any.
    pub bearer: Option<String>,
    /// The provider's introspection of the bearer.
    pub introspection: serde_json::Value,
    /// When the request arrived (before its bearer was introspected).
    pub received_at: std::time::SystemTime,
}

#[derive(Clone)]
struct Ctx {
    seen: Arc<Mutex<Vec<Seen>>>,
    introspection_url: String,
    client_id: String,
    client_secret: String,
    http: reqwest::Client,
}

/// A running upstream.
#[derive(Debug)]
pub struct Upstream {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Upstream {
    /// Starts on a free port; bearer tokens are introspected with these client credentials.
    pub async fn start(introspection_url: &str, client_id: &str, client_secret: &str) -> Upstream {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let ctx = Ctx {
            seen: seen.clone(),
            introspection_url: introspection_url.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            http: crate::provider::TestProvider::browser(),
        };
        let app = axum::Router::new().fallback(handle).with_state(ctx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream { base, seen, task }
    }

    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(ctx): State<Ctx>, req: Request) -> Response {
    let received_at = std::time::SystemTime::now();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let introspection = match &bearer {
        Some(token) => ctx
            .http
            .post(&ctx.introspection_url)
            .basic_auth(&ctx.client_id, Some(&ctx.client_secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .ok()
            .map(|r| r.json::<serde_json::Value>())
            .map(|f| async { f.await.unwrap_or(serde_json::Value::Null) }),
        None => None,
    };
    let introspection = match introspection {
        Some(f) => f.await,
        None => serde_json::Value::Null,
    };
    let active = introspection["active"] == true;
    let seen = Seen {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        headers,
        bearer,
        introspection: introspection.clone(),
        received_at,
    };
    ctx.seen.lock().expect("seen").push(seen.clone());
    let body = axum::body::to_bytes(req.into_body(), 4 * 1024 * 1024)
        .await
        .map(|b| b.len())
        .unwrap_or(0);
    let status = if active { 200 } else { 401 };
    (
        axum::http::StatusCode::from_u16(status).expect("status"),
        [("set-cookie", "upstream=1; Path=/"), ("x-upstream", "yes")],
        axum::Json(serde_json::json!({
            "active": active,
            "sub": introspection.get("sub"),
            "client_id": introspection.get("client_id"),
            "path": seen.path,
            "query": seen.query,
            "body_bytes": body,
        })),
    )
        .into_response()
}

//! A FAKE GitHub, for the `github` preset's plain OAuth 2.0 code path only:
//! GitHub cannot run here. It behaves as GitHub documents its OAuth app flow:
//!
//! - `GET /login/oauth/authorize` approves at once as `octocat` and
//!   redirects to the `redirect_uri` with `code` and `state` (no `iss`);
//! - `POST /login/oauth/access_token` checks the client, the code, the
//!   redirect URI and the PKCE S256 verifier; it answers JSON only when asked
//!   with `Accept: application/json`, else `application/x-www-form-urlencoded`
//!   — and reports errors with HTTP 200 and an `error` member, as GitHub does;
//! - `GET /user` and `GET /user/emails` with the bearer token.
//!
//! It records what it received so tests can check what Keyway sent.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// What the fake saw at its token endpoint.
#[derive(Debug, Clone)]
pub struct TokenCall {
    /// The request's `Accept` header.
    pub accept: Option<String>,
    /// Whether the client authenticated (basic or form).
    pub client_authenticated: bool,
    /// Whether the PKCE verifier matched the challenge.
    pub pkce_ok: bool,
}

#[derive(Default)]
struct Inner {
    /// code -> (redirect_uri, code_challenge)
    codes: HashMap<String, (String, String)>,
    tokens: Vec<String>,
    token_calls: Vec<TokenCall>,
    authorize_queries: Vec<HashMap<String, String>>,
}

#[derive(Clone)]
struct Ctx {
    inner: Arc<Mutex<Inner>>,
    client_id: String,
    client_secret: String,
}

/// A running fake GitHub.
#[derive(Debug)]
pub struct FakeGitHub {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    inner: Arc<Mutex<Inner>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").finish_non_exhaustive()
    }
}

impl FakeGitHub {
    /// Starts on a free loopback port for one OAuth app.
    pub async fn start(client_id: &str, client_secret: &str) -> FakeGitHub {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let ctx = Ctx {
            inner: inner.clone(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        };
        let app = axum::Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .route("/user", get(user))
            .route("/user/emails", get(emails))
            .with_state(ctx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGitHub { base, inner, task }
    }

    /// The token endpoint calls seen so far.
    pub fn token_calls(&self) -> Vec<TokenCall> {
        self.inner.lock().expect("fake").token_calls.clone()
    }

    /// The authorization requests' query parameters seen so far.
    pub fn authorize_queries(&self) -> Vec<HashMap<String, String>> {
        self.inner.lock().expect("fake").authorize_queries.clone()
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn authorize(State(ctx): State<Ctx>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut inner = ctx.inner.lock().expect("fake");
    inner.authorize_queries.push(q.clone());
    if q.get("client_id") != Some(&ctx.client_id) {
        return (StatusCode::NOT_FOUND, "unknown client").into_response();
    }
    let (Some(redirect), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
        return (StatusCode::BAD_REQUEST, "missing redirect_uri or state").into_response();
    };
    let code = format!("code-{}", inner.codes.len() + 1);
    let challenge = q.get("code_challenge").cloned().unwrap_or_default();
    inner
        .codes
        .insert(code.clone(), (redirect.clone(), challenge));
    let mut target = url::Url::parse(redirect).expect("redirect_uri");
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state);
    Redirect::to(target.as_str()).into_response()
}

async fn access_token(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let expected_basic = format!("{}:{}", ctx.client_id, ctx.client_secret);
    let client_authenticated = basic.as_deref() == Some(expected_basic.as_str())
        || (form.get("client_id") == Some(&ctx.client_id)
            && form.get("client_secret") == Some(&ctx.client_secret));
    let mut inner = ctx.inner.lock().expect("fake");
    let entry = form.get("code").and_then(|c| inner.codes.remove(c));
    let pkce_ok = match (&entry, form.get("code_verifier")) {
        (Some((_, challenge)), Some(verifier)) => {
            use sha2_like::digest;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest(verifier.as_bytes()))
                == *challenge
        }
        _ => false,
    };
    inner.token_calls.push(TokenCall {
        accept: accept.clone(),
        client_authenticated,
        pkce_ok,
    });
    let redirect_ok = entry
        .as_ref()
        .is_some_and(|(r, _)| form.get("redirect_uri") == Some(r));
    let wants_json = accept
        .as_deref()
        .is_some_and(|a| a.contains("application/json"));
    let body: Vec<(&str, String)> = if !client_authenticated {
        vec![("error", "incorrect_client_credentials".into())]
    } else if entry.is_none() || !redirect_ok || !pkce_ok {
        vec![("error", "bad_verification_code".into())]
    } else {
        let token = format!("gho_fake{}", inner.tokens.len() + 1);
        inner.tokens.push(token.clone());
        vec![
            ("access_token", token),
            ("token_type", "bearer".into()),
            ("scope", "read:user,user:email".into()),
        ]
    };
    // GitHub answers 200 even for errors.
    if wants_json {
        let map: serde_json::Map<String, serde_json::Value> = body
            .into_iter()
            .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
            .collect();
        axum::Json(serde_json::Value::Object(map)).into_response()
    } else {
        let text = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(body)
            .finish();
        (
            [(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            text,
        )
            .into_response()
    }
}

fn authorized(ctx: &Ctx, headers: &HeaderMap) -> bool {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .map(str::to_owned);
    token.is_some_and(|t| ctx.inner.lock().expect("fake").tokens.contains(&t))
}

async fn user(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    if !authorized(&ctx, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"message": "Bad credentials"})),
        )
            .into_response();
    }
    axum::Json(serde_json::json!({
        "login": "octocat", "id": 583231, "name": "The Octocat", "email": null,
        "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4"
    }))
    .into_response()
}

async fn emails(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    if !authorized(&ctx, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"message": "Bad credentials"})),
        )
            .into_response();
    }
    axum::Json(serde_json::json!([
        {"email": "octocat@users.noreply.github.com", "primary": false, "verified": true, "visibility": null},
        {"email": "unverified@example.com", "primary": false, "verified": false, "visibility": null},
        {"email": "octocat@github.com", "primary": true, "verified": true, "visibility": "public"}
    ]))
    .into_response()
}

/// SHA-256 for the PKCE check (RFC 7636 S256), from the sha2 crate.
mod sha2_like {
    use sha2::{Digest, Sha256};

    /// The SHA-256 digest of `bytes`.
    pub fn digest(bytes: &[u8]) -> Vec<u8> {
        Sha256::digest(bytes).to_vec()
    }
}

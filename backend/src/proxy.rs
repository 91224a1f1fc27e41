//! The API proxy: `/bff/api/{name}/{*path}` forwards to the upstream
//! configured as `[[apis]] name`, with `Authorization: Bearer <token>`.
//!
//! Threat model: the browser chooses only the path below the configured base
//! URL, never the host. Paths whose segments decode to `.`/`..` or hide a `/`
//! or `\` are refused, so no request reaches another upstream or host. The
//! browser's cookies, `Authorization`, `X-CSRF`, `Host` and hop-by-hop
//! headers are not forwarded; the upstream's `Set-Cookie` is not passed
//! back. Redirects are not followed. Bodies stream both ways, bounded by the
//! API's `max_body` and timeout.

use crate::app::App;
use crate::config::{ApiSettings, ApiToken};
use crate::error::Error;
use crate::secret::Secret;
use crate::session::now_secs;
use crate::tokens;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use futures_util::TryStreamExt;
use percent_encoding::percent_decode_str;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Headers never forwarded in either direction (RFC 9110 7.6.1 hop-by-hop,
/// plus what belongs to the browser–BFF hop).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
const NOT_UPSTREAM: &[&str] = &[
    "host",
    "cookie",
    "authorization",
    "x-csrf",
    "content-length",
    "origin",
    "referer",
];
const NOT_DOWNSTREAM: &[&str] = &["set-cookie", "content-length"];

/// One cached client-credentials token and its expiry (seconds since the epoch).
type TokenSlot = Arc<tokio::sync::Mutex<Option<(Secret, u64)>>>;

/// Client-credentials tokens of the BFF itself, per API, cached until near expiry.
#[derive(Debug, Default)]
pub struct ClientTokens {
    cache: std::sync::Mutex<HashMap<String, TokenSlot>>,
}

impl ClientTokens {
    fn slot(&self, api: &str) -> TokenSlot {
        self.cache
            .lock()
            .expect("client token map")
            .entry(api.to_owned())
            .or_default()
            .clone()
    }
}

/// The raw (still percent-encoded) rest of the path after `/bff/api/{name}/`,
/// checked for traversal.
pub fn upstream_path<'a>(full_path: &'a str, name: &str) -> Result<&'a str, Error> {
    let prefix_len = "/bff/api/".len() + name.len();
    let rest = full_path.get(prefix_len..).unwrap_or("");
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    for segment in rest.split('/') {
        let decoded = percent_decode_str(segment).decode_utf8_lossy();
        if decoded == "."
            || decoded == ".."
            || decoded.contains('/')
            || decoded.contains('\\')
            || decoded.contains('\0')
        {
            return Err(Error::InvalidRequest(
                "the API path may not contain `.`, `..` or encoded slashes".into(),
            ));
        }
    }
    Ok(rest)
}

/// Joins the configured base URL and the checked path, keeping the query.
pub fn upstream_url(base: &url::Url, rest: &str, query: Option<&str>) -> String {
    let mut out = base.as_str().trim_end_matches('/').to_owned();
    if !rest.is_empty() {
        out.push('/');
        out.push_str(rest);
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Forwards one request, counting it in `keyway_proxy_requests_total` and
/// `keyway_proxy_request_duration_seconds` (time to the response headers).
pub async fn forward(
    State(app): State<App>,
    name: String,
    req: Request,
) -> Result<Response, Error> {
    let started = Instant::now();
    let result = forward_unmetered(&app, &name, req).await;
    let status = match &result {
        Ok(r) => r.status(),
        Err(e) => e.status_and_code().0,
    };
    app.metrics
        .proxied(&name, status.as_u16(), started.elapsed());
    result
}

async fn forward_unmetered(app: &App, name: &str, req: Request) -> Result<Response, Error> {
    // Borrowed from the configuration: nothing is copied per request.
    let api = app
        .config
        .apis
        .iter()
        .find(|a| a.name == name)
        .ok_or(Error::UnknownApi)?;
    let rest = upstream_path(req.uri().path(), name)?;
    let url = upstream_url(&api.url, rest, req.uri().query());
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        && len > api.max_body
    {
        return Err(Error::PayloadTooLarge);
    }
    let auth = token_for(app, api, req.headers()).await?;

    let (parts, body) = req.into_parts();
    let mut headers = HeaderMap::with_capacity(parts.headers.len() + 1);
    let connection_named = connection_tokens(&parts.headers);
    for (k, v) in parts.headers.iter() {
        let n = k.as_str();
        if HOP_BY_HOP.contains(&n)
            || NOT_UPSTREAM.contains(&n)
            || connection_named.iter().any(|c| c == n)
        {
            continue;
        }
        headers.append(k.clone(), v.clone());
    }
    headers.insert(header::AUTHORIZATION, auth);

    let limited = http_body_util::Limited::new(body, api.max_body);
    let stream = http_body_util::BodyDataStream::new(limited);
    let mut request = app
        .http
        .reqwest()
        .request(parts.method.clone(), &url)
        .headers(headers)
        .body(reqwest::Body::wrap_stream(stream));
    if let Some(t) = api.timeout {
        request = request.timeout(t);
    }
    let started = Instant::now();
    let result = request.send().await;
    let elapsed = started.elapsed();
    let upstream = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(api = %name, elapsed_ms = elapsed.as_millis() as u64, "upstream call failed");
            return Err(if e.is_timeout() {
                Error::UpstreamTimeout
            } else if is_body_limit(&e) {
                Error::PayloadTooLarge
            } else {
                Error::Upstream(e.without_url().to_string())
            });
        }
    };
    let status = upstream.status();
    // The access line (info) already has status and latency; this one adds the
    // upstream's own time, for debugging.
    tracing::debug!(api = %name, status = status.as_u16(), elapsed_ms = elapsed.as_millis() as u64, "proxied");
    let mut response = Response::builder().status(status);
    let connection_named = connection_tokens(upstream.headers());
    if let Some(h) = response.headers_mut() {
        for (k, v) in upstream.headers().iter() {
            let n = k.as_str();
            if HOP_BY_HOP.contains(&n)
                || NOT_DOWNSTREAM.contains(&n)
                || connection_named.iter().any(|c| c == n)
            {
                continue;
            }
            h.append(k.clone(), v.clone());
        }
    }
    let body = Body::from_stream(upstream.bytes_stream().map_err(std::io::Error::other));
    response
        .body(body)
        .map_err(|e| Error::Internal(e.to_string()))
}

fn is_body_limit(e: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| HeaderName::from_bytes(t.as_bytes()).is_ok())
        .collect()
}

/// `Authorization: Bearer <token>`, marked sensitive (never logged).
fn bearer(token: &Secret) -> Result<HeaderValue, Error> {
    let value = format!("Bearer {}", token.expose());
    let mut value = HeaderValue::from_maybe_shared(axum::body::Bytes::from(value))
        .map_err(|_| Error::Internal("the access token is not a header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The `Authorization` header for a call to `api`.
async fn token_for(
    app: &App,
    api: &ApiSettings,
    headers: &HeaderMap,
) -> Result<HeaderValue, Error> {
    let user_token = || async {
        let (id, data) = crate::routes::current_session(app, headers).await?;
        let data = tokens::ensure_fresh(app, id, data).await?;
        bearer(&data.tokens.access_token)
    };
    match api.token {
        ApiToken::User => user_token().await,
        ApiToken::Client => bearer(&client_token(app, api).await?),
        ApiToken::UserOrClient => match user_token().await {
            Err(Error::Unauthenticated) => bearer(&client_token(app, api).await?),
            other => other,
        },
    }
}

/// The BFF's own client-credentials token for an API: asked for once, reused
/// until it is within the refresh skew of expiring (single flight).
async fn client_token(app: &App, api: &ApiSettings) -> Result<Secret, Error> {
    let slot = app.client_tokens.slot(&api.name);
    let mut guard = slot.lock().await;
    let skew = app.config.refresh_skew.as_secs();
    if let Some((token, expires_at)) = guard.as_ref()
        && now_secs() + skew.min(expires_at.saturating_sub(now_secs()) / 2) < *expires_at
    {
        return Ok(token.clone());
    }
    let provider = app
        .providers
        .get(api.provider.as_deref())
        .ok_or(Error::UnknownProvider)?
        .clone();
    let response = provider.client_credentials(&app.http, &api.scopes).await?;
    let token = response.access_token;
    let expires_at = now_secs() + response.expires_in.map(|d| d.as_secs()).unwrap_or(300);
    *guard = Some((token.clone(), expires_at));
    tracing::info!(api = %api.name, "client-credentials token obtained");
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_is_refused() {
        for bad in [
            "/bff/api/orders/../x",
            "/bff/api/orders/a/%2e%2e/x",
            "/bff/api/orders/%2E%2E",
            "/bff/api/orders/a%2Fb",
            "/bff/api/orders/a%5cb",
            "/bff/api/orders/./x",
            "/bff/api/orders/%00",
        ] {
            assert!(upstream_path(bad, "orders").is_err(), "{bad}");
        }
        assert_eq!(
            upstream_path("/bff/api/orders/a/b%20c", "orders").unwrap(),
            "a/b%20c"
        );
        assert_eq!(upstream_path("/bff/api/orders", "orders").unwrap(), "");
    }

    #[test]
    fn joins_below_the_base() {
        let base = url::Url::parse("https://orders.internal/v1/").unwrap();
        assert_eq!(
            upstream_url(&base, "items/7", Some("a=1")),
            "https://orders.internal/v1/items/7?a=1"
        );
        assert_eq!(upstream_url(&base, "", None), "https://orders.internal/v1");
    }
}

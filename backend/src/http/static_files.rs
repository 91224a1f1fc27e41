//! Serving the built SPA (Trunk's `dist/`) and the security headers of every
//! response.
//!
//! Client routes (`/callback`, `/profile`, any path without a file extension)
//! fall back to `index.html`, served `no-cache` so a deploy is picked up at
//! once; Trunk's hashed files are cached for a year (`immutable`). The
//! Content-Security-Policy allows scripts from the origin and the wasm
//! (`'wasm-unsafe-eval'`); the small inline module script Trunk writes into
//! `index.html` to start the wasm is allowed by its SHA-256 hash, computed at
//! start-up, so no `'unsafe-inline'` is ever needed.

use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tower::ServiceExt;
use tower_http::services::ServeDir;

/// The SPA's files and the CSP that fits its `index.html`.
#[derive(Debug, Clone)]
pub(crate) struct StaticSite {
    dir: PathBuf,
    index: axum::body::Bytes,
    /// The Content-Security-Policy header value.
    pub csp: HeaderValue,
}

/// The CSP for pages whose inline scripts have these hashes.
pub(crate) fn csp_for(script_hashes: &[String]) -> HeaderValue {
    let mut script_src = String::from("'self' 'wasm-unsafe-eval'");
    for h in script_hashes {
        script_src.push_str(&format!(" 'sha256-{h}'"));
    }
    HeaderValue::from_str(&format!(
        "default-src 'self'; script-src {script_src}; style-src 'self'; img-src 'self' data: https:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ))
    .expect("ASCII")
}

/// The SHA-256 (base64) of each inline `<script>` body in an HTML page.
pub(crate) fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(tag_end) = after.find('>') else {
            break;
        };
        let tag = &after[..tag_end];
        let body_start = tag_end + 1;
        let Some(close) = after[body_start..].find("</script>") else {
            break;
        };
        let body = &after[body_start..body_start + close];
        if !tag.contains(" src=") && !body.trim().is_empty() {
            let digest = Sha256::digest(body.as_bytes());
            out.push(base64::engine::general_purpose::STANDARD.encode(digest));
        }
        rest = &after[body_start + close..];
    }
    out
}

impl StaticSite {
    /// Reads `index.html` of `dir` and prepares the CSP.
    pub(crate) fn open(dir: &Path) -> std::io::Result<Self> {
        let index = std::fs::read(dir.join("index.html"))?;
        let hashes = inline_script_hashes(&String::from_utf8_lossy(&index));
        Ok(Self {
            dir: dir.to_owned(),
            index: axum::body::Bytes::from(index),
            csp: csp_for(&hashes),
        })
    }

    /// Serves a request for a file or a client route.
    pub(crate) async fn serve(&self, req: Request<axum::body::Body>) -> Response {
        let path = req.uri().path().to_owned();
        let last = path.rsplit('/').next().unwrap_or("");
        if path == "/" || path == "/index.html" || !last.contains('.') {
            return self.index_response();
        }
        match ServeDir::new(&self.dir).oneshot(req).await {
            Ok(res) if res.status() == StatusCode::OK => {
                let mut res = res.into_response();
                let cache = if is_hashed(last) {
                    "public, max-age=31536000, immutable"
                } else {
                    "no-cache"
                };
                res.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
                res
            }
            Ok(res) => res.into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }

    fn index_response(&self) -> Response {
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            self.index.clone(),
        )
            .into_response()
    }
}

/// Whether a file name carries Trunk's content hash (`name-0123456789abcdef.ext`).
pub(crate) fn is_hashed(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("").trim_end_matches("_bg");
    stem.rsplit_once('-')
        .is_some_and(|(_, h)| h.len() >= 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_only_inline_scripts() {
        let html = r#"<script src="/a.js"></script><script type="module">init()</script>"#;
        let h = inline_script_hashes(html);
        assert_eq!(h.len(), 1);
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"init()"));
        assert_eq!(h[0], expected);
        let csp = csp_for(&h);
        let csp = csp.to_str().unwrap();
        assert!(csp.contains("'wasm-unsafe-eval'") && csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
    }

    #[test]
    fn recognises_trunk_hashes() {
        assert!(is_hashed("keyway-frontend-3f2a9c0d1e2b3a4f_bg.wasm"));
        assert!(is_hashed("keyway-frontend-3f2a9c0d1e2b3a4f.js"));
        assert!(!is_hashed("favicon.ico"));
    }
}

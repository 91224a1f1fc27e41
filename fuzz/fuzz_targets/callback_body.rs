//! The callback body (JSON → `CallbackRequest`) and the query strings Keyway
//! parses (`GET /bff/login?provider=&return_to=`, the provider's redirect).
//! Invariants: whatever parses survives a serialize/parse round trip
//! unchanged; the axum query extractor never panics and agrees with itself.
#![no_main]

use keyway_shared::{CallbackRequest, LoginRequest};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[derive(Debug, Deserialize, PartialEq)]
struct LoginQuery {
    provider: Option<String>,
    return_to: Option<String>,
}

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<CallbackRequest>(data) {
        let again = serde_json::to_vec(&req).expect("a parsed body serializes");
        let back: CallbackRequest = serde_json::from_slice(&again).expect("round trip parses");
        assert_eq!(req, back, "callback body round trip");
    }
    if let Ok(req) = serde_json::from_slice::<LoginRequest>(data) {
        let again = serde_json::to_vec(&req).expect("serializes");
        assert_eq!(
            req,
            serde_json::from_slice::<LoginRequest>(&again).expect("parses")
        );
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let uri = format!("/bff/login?{s}");
        if let Ok(uri) = uri.parse::<http::Uri>() {
            let a = axum::extract::Query::<LoginQuery>::try_from_uri(&uri).map(|q| q.0);
            let b = axum::extract::Query::<LoginQuery>::try_from_uri(&uri).map(|q| q.0);
            assert_eq!(a.is_ok(), b.is_ok());
            if let (Ok(a), Ok(b)) = (a, b) {
                assert_eq!(a, b);
                // What the login route does with the query next.
                if let Some(r) = a.return_to.as_deref()
                    && let Ok(v) = keyway_backend::internals::return_to::validate(r)
                {
                    assert!(v.starts_with('/') && !v.starts_with("//"));
                }
            }
        }
        // The provider's redirect back, parsed as the SPA (and the tests) do.
        if let Ok(url) = url::Url::parse(&format!("https://app.example/callback?{s}")) {
            for (k, v) in url.query_pairs() {
                let _ = (k.len(), v.len());
            }
        }
    }
});

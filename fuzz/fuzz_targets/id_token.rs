//! ID tokens: `CoreIdToken::from_str` (header and claims parsing), then what
//! Keyway does with one: `provider::verify_with` against a provider whose
//! JWKS holds the test key, and `verified_claim`. The input is a compact JWT,
//! or (when it holds NUL bytes) a header JSON, a claims JSON and a signature
//! that the target base64url-encodes. Invariant: nothing the fuzzer makes is
//! ever accepted (it cannot sign with the key): not `alg: none`, not HMAC
//! with the public key, not a token whose signature does not verify.
#![no_main]

use keyway_backend::provider::jwk::ProviderKey;
use keyway_backend::provider::{Discovered, Metadata, OidcClient, verified_claim, verify_with};
use libfuzzer_sys::fuzz_target;
use openidconnect::core::CoreIdToken;
use openidconnect::JsonWebKeySet;
use openidconnect::{ClientId, ClientSecret, Nonce};
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Instant;

static DISC: LazyLock<Discovered> = LazyLock::new(|| {
    let metadata: Metadata = serde_json::from_value(serde_json::json!({
        "issuer": "https://idp.example",
        "authorization_endpoint": "https://idp.example/auth",
        "token_endpoint": "https://idp.example/token",
        "jwks_uri": "https://idp.example/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"]
    }))
    .expect("metadata");
    let jwks: JsonWebKeySet<ProviderKey> = serde_json::from_str(include_str!(
        "../../tests/fixtures/lying-provider-jwks.json"
    ))
    .expect("jwks");
    let metadata = metadata.set_jwks(jwks);
    let client = OidcClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new("keyway".into()),
        Some(ClientSecret::new("keyway-secret".into())),
    );
    let now = Instant::now();
    Discovered {
        metadata,
        client,
        fetched_at: now,
        jwks_fetched_at: now,
        jwks_refetched_at: None,
    }
});

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let raw = if data.contains(&0) {
        let mut parts = data.splitn(3, |b| *b == 0);
        let h = parts.next().unwrap_or_default();
        let p = parts.next().unwrap_or_default();
        let s = parts.next().unwrap_or_default();
        format!("{}.{}.{}", b64(h), b64(p), b64(s))
    } else {
        match std::str::from_utf8(data) {
            Ok(s) => s.to_owned(),
            Err(_) => return,
        }
    };
    let _ = verified_claim(&raw, "sid");
    let Ok(token) = CoreIdToken::from_str(&raw) else {
        return;
    };
    // The provider advertises HS256 and none too: Keyway's allow-list must still refuse them.
    let result = verify_with(&DISC, "keyway", None, &token, &Nonce::new("n".into()));
    assert!(
        result.is_err(),
        "a token made by the fuzzer was accepted: {raw}"
    );
});

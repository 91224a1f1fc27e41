//! Back-channel logout tokens: the unverified routing read
//! (`verify::addressed_to`: which provider's verifier to use) and the one
//! verifier as for a logout token (`Expect::Logout`). The input is a compact
//! JWS, or (when it holds NUL bytes) a header JSON, a payload JSON and a
//! signature, which the target base64url-encodes. Invariants: the routing
//! read never panics and answers the payload's own `iss`; nothing the
//! fuzzer makes is accepted as a logout token.
#![no_main]

use keyway_backend::internals::verify::{self, Expect};
use keyway_backend::internals::{ClientBase, Discovered, Metadata, ProviderKey, SignedToken};
use keyway_backend::{OidcSettings, Secret};
use libfuzzer_sys::fuzz_target;
use openidconnect::JsonWebKeySet;
use std::str::FromStr;
use std::sync::LazyLock;


/// A provider that advertises HS256 and `none` beside RS256 and whose JWKS
/// holds the test key: Keyway's allow-list must still refuse the first two.
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
    Discovered::from_parts(
        metadata.set_jwks(jwks),
        ClientBase {
            client_id: "keyway".into(),
            secret: Secret::new("keyway-secret"),
            redirect_uri: url::Url::parse("https://app.example/callback").unwrap(),
        },
    )
});

static OIDC: LazyLock<OidcSettings> = LazyLock::new(|| OidcSettings {
    issuer: "https://idp.example".into(),
    issuer_template: None,
});

/// A compact JWT from the input, or (when it holds NUL bytes) a header
/// JSON, a claims JSON and a signature that are base64url-encoded.
fn token_of(data: &[u8]) -> Option<String> {
    if data.contains(&0) {
        let mut parts = data.splitn(3, |b| *b == 0);
        let h = parts.next().unwrap_or_default();
        let p = parts.next().unwrap_or_default();
        let s = parts.next().unwrap_or_default();
        Some(format!("{}.{}.{}", b64(h), b64(p), b64(s)))
    } else {
        std::str::from_utf8(data).ok().map(str::to_owned)
    }
}

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
    let Some(raw) = token_of(data) else {
        return;
    };
    if let Some((iss, aud)) = verify::addressed_to(&raw) {
        let _ = (iss.len(), aud.len());
    }
    let Ok(token) = SignedToken::from_str(&raw) else {
        return;
    };
    let result = verify::verify(&DISC, &OIDC, "keyway", &token, Expect::Logout);
    assert!(result.is_err(), "a logout token made by the fuzzer was accepted: {raw}");
});

//! Signing keys (issue 15, items 6 and 14; security checklist "Callback and
//! token exchange": ID token signature checked against the provider's JWKS,
//! `alg` from an allow-list — never HMAC).
//!
//! Against the LYING provider (`keyway_tests::lying_provider`):
//! - item 6: a JWKS whose RSA modulus or exponent carries a leading zero
//!   byte (as some providers publish it) is the same key: the login works;
//! - item 14: a provider that advertises `HS256` and signs the ID token with
//!   the client secret as HMAC key is refused (`400 invalid_id_token`, no
//!   session), although every claim is right.

use keyway_tests::bff::{SpaClient, TestBff, assert_error, env_for, json_of, reserve};
use keyway_tests::lying_provider::{Fault, LyingProvider, SUBJECT};

async fn liar(fault: Fault) -> (LyingProvider, TestBff) {
    let provider = LyingProvider::start(fault).await;
    let reserved = reserve().await;
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SCOPES".into(), "openid profile".into());
    let bff = TestBff::start(reserved, &env).await.expect("BFF starts");
    (provider, bff)
}

/// One whole login against the liar: the callback's status and body, and
/// the browser.
async fn login(provider: &LyingProvider, bff: &TestBff) -> (u16, serde_json::Value, SpaClient) {
    let spa = SpaClient::new(bff);
    let url = spa.start_login(None).await;
    let cb = provider.authorize(&url).await;
    let (status, body) = json_of(spa.callback(&cb).await).await;
    (status, body, spa)
}

async fn leading_zero_signs_in(fault: Fault) {
    let (provider, bff) = liar(fault).await;
    let (status, body, spa) = login(&provider, &bff).await;
    assert_eq!(status, 200, "{fault:?}: {body}");
    assert_eq!(body["user"]["sub"], SUBJECT);
    let (status, user) = json_of(spa.get("/bff/user").await).await;
    assert_eq!(status, 200, "{user}");
    assert!(provider.jwks_fetches() >= 1, "the JWKS was used");
}

/// Item 6: the JWKS publishes `n` with a leading zero byte: same key, the
/// signature verifies, the user signs in.
#[tokio::test]
async fn a_modulus_with_a_leading_zero_byte_signs_in() {
    leading_zero_signs_in(Fault::JwksLeadingZeroModulus).await;
}

/// Item 6: the JWKS publishes `e` as `AAEAAQ` (a leading zero byte): same
/// key, the user signs in.
#[tokio::test]
async fn an_exponent_with_a_leading_zero_byte_signs_in() {
    leading_zero_signs_in(Fault::JwksLeadingZeroExponent).await;
}

/// Item 14: `HS256` advertised, the ID token HMAC-signed with the client
/// secret (the key the token request itself authenticated with): refused,
/// no session, and the refusal names no secret.
#[tokio::test]
async fn an_id_token_hmac_signed_with_the_client_secret_is_refused() {
    let (provider, bff) = liar(Fault::Hs256WithClientSecret).await;
    let (status, body, spa) = login(&provider, &bff).await;
    assert_error(status, &body, 400, "invalid_id_token");
    assert_eq!(provider.token_requests(), 1, "the code was exchanged once");
    let (status, user) = json_of(spa.get("/bff/user").await).await;
    assert_error(status, &user, 401, "unauthenticated");
    let text = body.to_string();
    assert!(!text.contains("keyway-secret"), "{text}");
    assert!(!text.contains("eyJ"), "{text}");
}

//! Silent sign-in after a sign-out (issue 18): signing out at Keyway
//! revokes the session's refresh token, and the test provider
//! (oidc-provider) then drops the whole grant, so a `prompt=none` round
//! trip with the provider's session still alive answers `consent_required`:
//! the visitor stays signed out. Without the sign-out (the BFF's session
//! merely gone), the same round trip signs the user in again. What
//! docs/frontend.md says under "Login journeys".

use keyway_tests::bff::{SpaClient, assert_error, callback_request, json_of, stack};
use keyway_tests::provider::TestProvider;
use keyway_tests::walk::{Person, walk};
use serde_json::{Value, json};

/// Starts a login with `body`, walks the provider with `spa`'s provider
/// cookies (no page is expected to need an answer but a first login's),
/// and posts the callback: its status and JSON.
async fn journey(spa: &SpaClient, provider: &TestProvider, body: Value) -> (u16, Value) {
    let (s, started) = json_of(spa.post("/bff/login", &body).await).await;
    assert_eq!(s, 200, "{started}");
    let url = started["authorization_url"].as_str().expect("the URL");
    let person = Person::new("alice", "wonderland");
    let (back, _) = walk(provider, &spa.provider_browser, url, &person)
        .await
        .expect("the walk at the provider");
    json_of(spa.callback(&callback_request(&back)).await).await
}

#[tokio::test]
async fn after_a_sign_out_a_silent_sign_in_stays_signed_out() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    assert_eq!(journey(&spa, &provider, json!({})).await.0, 200);
    let revoked = provider.stats().await.unwrap()["refresh_tokens_revoked"]
        .as_u64()
        .unwrap();
    let (s, _) = json_of(spa.post("/bff/logout", &json!({})).await).await;
    assert_eq!(s, 200);
    let now = provider.stats().await.unwrap()["refresh_tokens_revoked"]
        .as_u64()
        .unwrap();
    assert_eq!(now, revoked + 1, "the sign-out revoked the refresh token");
    // The provider's session is alive (its cookies are in provider_browser),
    // but the grant is gone.
    let (s, v) = journey(&spa, &provider, json!({"prompt": "none"})).await;
    assert_error(s, &v, 400, "consent_required");
    assert_eq!(spa.get("/bff/user").await.status(), 401);
}

#[tokio::test]
async fn without_a_sign_out_a_silent_sign_in_signs_in_again() {
    let (provider, bff) = stack().await;
    let first = SpaClient::new(&bff);
    assert_eq!(journey(&first, &provider, json!({})).await.0, 200);
    // A browser without Keyway's cookie (lost, or timed out), the same
    // provider session.
    let mut fresh = SpaClient::new(&bff);
    fresh.provider_browser = first.provider_browser.clone();
    let (s, v) = journey(&fresh, &provider, json!({"prompt": "none"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(fresh.get("/bff/user").await.status(), 200);
}

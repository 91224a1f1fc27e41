//! Provider outages (issue 15, item 11): once discovery and the JWKS are
//! loaded, requests never wait for the provider; refreshes run in the
//! background, back off after failures, and a flood of tokens with unknown
//! key ids costs the provider at most one JWKS fetch per period. The
//! provider here is the LYING provider (a fake), whose discovery can hang.

use keyway_tests::bff::{SpaClient, TestBff, env_for, reserve};
use keyway_tests::lying_provider::{Fault, LogoutTokenHeader, LyingProvider};
use keyway_tests::wait::eventually;
use std::time::{Duration, Instant};

async fn stack(discovery_ttl: &str) -> (LyingProvider, TestBff) {
    let provider = LyingProvider::start(Fault::None).await;
    let reserved = reserve().await;
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SCOPES".into(), "openid profile".into());
    env.insert("KEYWAY_DISCOVERY_TTL".into(), discovery_ttl.into());
    // A hanging provider is given up on after 5 s.
    env.insert("KEYWAY_HTTP_TIMEOUT".into(), "5s".into());
    let bff = TestBff::start(reserved, &env).await.expect("BFF");
    (provider, bff)
}

/// A discovery document past its TTL is still served while the refresh,
/// which hangs at the provider, runs in the background: logins start at
/// once instead of waiting out the 5 s timeout, and the hanging provider
/// is asked again only after backing off, not by every request.
#[tokio::test]
async fn a_stale_discovery_is_served_while_the_provider_hangs() {
    let (provider, bff) = stack("1s").await;
    let spa = SpaClient::new(&bff);
    spa.start_login(None).await;
    let loaded = Instant::now();
    provider.hang_discovery();
    let fetched = provider.discovery_fetches();
    eventually(
        Duration::from_secs(5),
        "the document is past its TTL",
        || async { loaded.elapsed() > Duration::from_millis(1100) },
    )
    .await;
    // Twenty logins while the refresh hangs: none waits for it.
    for i in 0..20 {
        let started = Instant::now();
        let r = spa.post("/bff/login", &serde_json::json!({})).await;
        assert_eq!(r.status(), 200, "login {i}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "login {i} waited {:?} for the hanging provider",
            started.elapsed()
        );
    }
    // One refresh is in flight (hanging); nobody queued a second.
    assert_eq!(provider.discovery_fetches(), fetched + 1);
}

/// A flood of back-channel logout tokens under made-up key ids (anyone can
/// post them, unauthenticated) makes the BFF fetch the provider's JWKS at
/// most once per period, not once per token.
#[tokio::test]
async fn a_flood_of_unknown_key_ids_fetches_the_jwks_at_most_once() {
    let (provider, bff) = stack("1h").await;
    let before = provider.jwks_fetches();
    let http = reqwest::Client::new();
    let url = bff.url("/bff/backchannel-logout");
    let mut posts = Vec::new();
    for i in 0..50 {
        let claims = provider.logout_token_claims(Some("liar-user"), None);
        let header = LogoutTokenHeader {
            kid: Some(format!("made-up-{i}")),
            foreign_key: true,
            ..LogoutTokenHeader::default()
        };
        let token = provider.sign_logout_token(&claims, &header);
        posts.push(http.post(&url).form(&[("logout_token", token)]).send());
    }
    for r in futures_util::future::join_all(posts).await {
        assert_eq!(r.unwrap().status(), 400);
    }
    assert!(
        provider.jwks_fetches() - before <= 1,
        "{} JWKS fetches for 50 unknown key ids",
        provider.jwks_fetches() - before
    );
}

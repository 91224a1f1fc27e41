//! A refresh whose answer arrives while the session store is away: the
//! provider has already rotated the refresh token, so the answer must be
//! saved once the store is back (while the refresh lock holds), or the next
//! refresh would spend the old token again — which the provider answers by
//! revoking the grant and the user is signed out.

use keyway_tests::bff::{SpaClient, TestBff, client_for, env_for, json_of, reserve};
use keyway_tests::provider::{ProviderConfig, TestProvider, TokenDelay};
use keyway_tests::redis::RedisServer;
use keyway_tests::wait::eventually;
use std::time::Duration;

#[tokio::test]
async fn a_refresh_answered_during_a_store_outage_is_saved_when_the_store_is_back() {
    let mut redis = RedisServer::start().await.unwrap();
    let reserved = reserve().await;
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&reserved.origin)],
        access_token_ttl: 8,
        rotate_refresh_tokens: true,
        ..ProviderConfig::default()
    })
    .await
    .unwrap();
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SESSION_STORE".into(), redis.url());
    env.insert(
        "KEYWAY_SESSION_KEY".into(),
        keyway_tests::bff::TEST_SESSION_KEY.into(),
    );
    let bff = TestBff::start(reserved, &env).await.unwrap();
    let spa = SpaClient::new(&bff);
    let (s, body) = json_of(spa.login(&provider, "alice", "wonderland").await).await;
    assert_eq!(s, 200, "{body}");

    // The provider rotates at once and holds its answer for 1.5 s.
    provider
        .set_token_delay_at(Duration::from_millis(1500), TokenDelay::BeforeAnswer)
        .await
        .unwrap();
    let before = provider.token_requests("refresh_token").await.unwrap();
    let call = {
        let spa = spa.clone();
        tokio::spawn(async move {
            // Due after 4 s (half of the 8 s lifetime): this call refreshes.
            tokio::time::sleep(Duration::from_millis(4100)).await;
            json_of(spa.get("/bff/userinfo").await).await
        })
    };
    eventually(
        Duration::from_secs(10),
        "the provider has rotated",
        || async { provider.token_requests("refresh_token").await.unwrap() > before },
    )
    .await;
    // The store goes away before the answer arrives, and comes back.
    redis.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    redis.restart().await.unwrap();
    let (s, body) = call.await.unwrap();
    assert_eq!(
        s, 200,
        "the refreshed session was saved after the outage: {body}"
    );
    provider
        .set_token_delay_at(Duration::ZERO, TokenDelay::BeforeAnswer)
        .await
        .unwrap();

    // The next refresh spends the rotated token, not the old one.
    let refreshed = provider.token_requests("refresh_token").await.unwrap();
    eventually(
        Duration::from_secs(10),
        "another refresh went through",
        || {
            let spa = spa.clone();
            async move { spa.get("/bff/userinfo").await.status() == 200 }
        },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "a second refresh happened",
        || async {
            let (s, _) = json_of(spa.get("/bff/userinfo").await).await;
            s == 200 && provider.token_requests("refresh_token").await.unwrap() > refreshed
        },
    )
    .await;
    assert_eq!(
        provider.token_errors("refresh_token").await.unwrap(),
        0,
        "no refresh token was spent twice"
    );
    let (s, user) = json_of(spa.get("/bff/user").await).await;
    assert_eq!(s, 200, "still signed in: {user}");
}

//! The test provider's options for refresh-token races: rotation of every
//! refresh token, introspection of refresh tokens, counts of refresh grants,
//! and a test-only delay of the token endpoint. Talks to the provider
//! directly with reqwest (no BFF). Needs `npm ci --prefix tests/provider`.

use std::time::{Duration, Instant};

use keyway_tests::provider::{ClientConfig, ProviderConfig, TestProvider, TokenDelay};
use keyway_tests::wait::eventually;

const SCOPE: &str = "openid offline_access";

async fn provider(rotate: bool) -> TestProvider {
    TestProvider::start(ProviderConfig {
        rotate_refresh_tokens: rotate,
        ..ProviderConfig::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Signs alice in; returns her first refresh token.
async fn first_refresh_token(provider: &TestProvider) -> String {
    let tokens = provider
        .sign_in_tokens(&ClientConfig::default(), "alice", "wonderland", SCOPE)
        .await
        .unwrap();
    tokens["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh token: {tokens}"))
        .to_owned()
}

/// Refreshes and returns the refresh token of the (successful) answer.
async fn refresh_ok(provider: &TestProvider, refresh_token: &str) -> String {
    let (status, answer) = provider
        .refresh(&ClientConfig::default(), refresh_token)
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    assert!(answer["access_token"].is_string(), "{answer}");
    answer["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh token in {answer}"))
        .to_owned()
}

async fn active(provider: &TestProvider, refresh_token: &str) -> bool {
    provider
        .refresh_token_active(&ClientConfig::default(), refresh_token)
        .await
        .unwrap()
}

#[tokio::test]
async fn with_rotation_each_refresh_gives_a_new_token_and_retires_the_old_one() {
    let provider = provider(true).await;
    let rt0 = first_refresh_token(&provider).await;
    assert!(active(&provider, &rt0).await);

    let rt1 = refresh_ok(&provider, &rt0).await;
    assert_ne!(rt1, rt0);
    assert!(!active(&provider, &rt0).await, "the used token is retired");
    assert!(active(&provider, &rt1).await);

    let rt2 = refresh_ok(&provider, &rt1).await;
    assert_ne!(rt2, rt1);
    assert_ne!(rt2, rt0);
    assert!(!active(&provider, &rt1).await);
    assert!(active(&provider, &rt2).await);

    assert_eq!(provider.token_requests("refresh_token").await.unwrap(), 2);
    let introspection = provider
        .introspect_with_hint(&ClientConfig::default(), &rt2, "refresh_token")
        .await
        .unwrap();
    assert_eq!(introspection["sub"], "alice", "{introspection}");
}

#[tokio::test]
async fn with_rotation_reusing_a_retired_token_fails_and_revokes_the_grant() {
    let provider = provider(true).await;
    let rt0 = first_refresh_token(&provider).await;
    let rt1 = refresh_ok(&provider, &rt0).await;

    let (status, answer) = provider
        .refresh(&ClientConfig::default(), &rt0)
        .await
        .unwrap();
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "invalid_grant");
    assert!(
        !active(&provider, &rt1).await,
        "reuse detection revokes the newer token too"
    );
    assert_eq!(provider.token_requests("refresh_token").await.unwrap(), 2);
}

#[tokio::test]
async fn without_rotation_the_refresh_token_stays_the_same_and_active() {
    let provider = provider(false).await;
    let rt0 = first_refresh_token(&provider).await;
    let again = refresh_ok(&provider, &rt0).await;
    assert_eq!(again, rt0, "oidc-provider's default keeps a fresh token");
    assert!(active(&provider, &rt0).await);
    refresh_ok(&provider, &rt0).await;
    assert_eq!(provider.token_requests("refresh_token").await.unwrap(), 2);
}

#[tokio::test]
async fn unknown_and_revoked_refresh_tokens_are_inactive() {
    let provider = provider(false).await;
    assert!(!active(&provider, "not-a-refresh-token").await);
    let rt0 = first_refresh_token(&provider).await;
    provider.revoke_account("alice").await.unwrap();
    assert!(!active(&provider, &rt0).await);
}

#[tokio::test]
async fn a_token_delay_holds_token_answers_at_least_that_long() {
    let provider = provider(true).await;
    let rt0 = first_refresh_token(&provider).await;
    let delay = Duration::from_millis(700);

    provider.set_token_delay(delay).await.unwrap();
    let started = Instant::now();
    let rt1 = refresh_ok(&provider, &rt0).await;
    let took = started.elapsed();
    assert!(took >= delay, "answered after {took:?}, before {delay:?}");

    provider
        .set_token_delay_at(delay, TokenDelay::BeforeAnswer)
        .await
        .unwrap();
    let started = Instant::now();
    let rt2 = refresh_ok(&provider, &rt1).await;
    let took = started.elapsed();
    assert!(took >= delay, "answered after {took:?}, before {delay:?}");
    assert_ne!(rt2, rt1);

    // Off again: the token endpoint still works (no upper bound asserted).
    provider.set_token_delay(Duration::ZERO).await.unwrap();
    refresh_ok(&provider, &rt2).await;
    assert_eq!(provider.token_requests("refresh_token").await.unwrap(), 3);
}

#[tokio::test]
async fn a_delay_before_the_answer_rotates_while_the_client_still_waits() {
    let provider = provider(true).await;
    let rt0 = first_refresh_token(&provider).await;
    provider
        .set_token_delay_at(Duration::from_secs(8), TokenDelay::BeforeAnswer)
        .await
        .unwrap();

    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    let waiting = {
        let rt0 = rt0.clone();
        let provider = &provider;
        async move {
            let answer = provider.refresh(&ClientConfig::default(), &rt0).await;
            let _ = done_tx.send(());
            answer
        }
    };
    let watcher = async {
        // The old token is consumed before the answer leaves the provider.
        eventually(
            Duration::from_secs(6),
            "the old refresh token retired",
            || active_not(&provider, &rt0),
        )
        .await;
        assert!(
            done_rx.try_recv().is_err(),
            "the refresh was answered before the delay"
        );
    };
    let (answer, ()) = tokio::join!(waiting, watcher);
    let (status, answer) = answer.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_ne!(answer["refresh_token"].as_str().unwrap(), rt0);
}

async fn active_not(provider: &TestProvider, refresh_token: &str) -> bool {
    !active(provider, refresh_token).await
}

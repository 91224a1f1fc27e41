//! Two BFF instances behind one public origin sharing one Redis, as behind a
//! load balancer: each request of one browser may land on either.

use keyway_tests::bff::json_of;
use keyway_tests::bff::{SpaClient, TestBff, client_for, env_for, reserve};
use keyway_tests::provider::{Consent, ProviderConfig, TestProvider};
use keyway_tests::redis::RedisServer;
use serde_json::{Value, json};

const KEY: &str = keyway_tests::bff::TEST_SESSION_KEY;

/// Instances A and B (in-process, separate state) with A's origin as the
/// public URL of both, on one Redis.
async fn two_instances() -> (RedisServer, TestProvider, TestBff, TestBff) {
    two_instances_with_ttl(3600).await
}

/// Like [`two_instances`], with access tokens living `ttl` seconds.
async fn two_instances_with_ttl(ttl: u64) -> (RedisServer, TestProvider, TestBff, TestBff) {
    let redis = RedisServer::start().await.expect("redis-server starts");
    let a = reserve().await;
    let b = reserve().await;
    let public = a.origin.clone();
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&public)],
        access_token_ttl: ttl,
        ..ProviderConfig::default()
    })
    .await
    .expect("provider starts");
    let mut env = env_for(&public, &provider.issuer);
    env.insert("KEYWAY_SESSION_STORE".into(), redis.url());
    env.insert("KEYWAY_SESSION_KEY".into(), KEY.into());
    let bff_a = TestBff::start(a, &env).await.expect("A starts");
    let bff_b = TestBff::start(b, &env).await.expect("B starts");
    (redis, provider, bff_a, bff_b)
}

/// `GET path` on `bff` with the browser's cookies (the jar is per host, so
/// both instances on 127.0.0.1 get the same cookies, as behind one origin).
async fn get_on(spa: &SpaClient, bff: &TestBff, path: &str) -> (u16, Value) {
    json_of(spa.http.get(bff.url(path)).send().await.unwrap()).await
}

async fn post_on(spa: &SpaClient, bff: &TestBff, path: &str, body: &Value) -> (u16, Value) {
    json_of(
        spa.http
            .post(bff.url(path))
            .header("x-csrf", "1")
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn login_started_on_a_completes_on_b_and_logout_on_a_ends_it_on_b() {
    let (_redis, provider, a, b) = two_instances().await;
    let spa = SpaClient::new(&a);

    let url = spa.start_login(Some("/from-a")).await;
    let cb = spa
        .authorize(&provider, &url, "alice", "wonderland", Consent::Allow)
        .await;
    let (s, body) = post_on(
        &spa,
        &b,
        "/bff/callback",
        &serde_json::to_value(&cb).unwrap(),
    )
    .await;
    assert_eq!(s, 200, "B completes A's login: {body}");
    assert_eq!(body["return_to"], "/from-a");

    for bff in [&a, &b] {
        let (s, user) = get_on(&spa, bff, "/bff/user").await;
        assert_eq!(s, 200, "{user}");
        assert_eq!(user["sub"], "alice");
    }
    let (s, info) = get_on(&spa, &b, "/bff/userinfo").await;
    assert_eq!(s, 200, "{info}");

    // The state was used up on B: replaying the callback on A fails.
    let (s, _) = post_on(
        &spa,
        &a,
        "/bff/callback",
        &serde_json::to_value(&cb).unwrap(),
    )
    .await;
    assert_eq!(s, 400);

    let (s, body) = post_on(&spa, &a, "/bff/logout", &json!({})).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = get_on(&spa, &b, "/bff/user").await;
    assert_eq!(s, 401, "logout on A ends the session on B: {body}");
    assert_eq!(body["error"], "unauthenticated");
}

#[tokio::test]
async fn two_tabs_on_two_instances_each_complete() {
    let (_redis, provider, a, b) = two_instances().await;
    let spa = SpaClient::new(&a);
    // Tab 1 starts on A, tab 2 on B: both pending logins live in one record.
    let url_1 = spa.start_login(Some("/one")).await;
    let (s, started) = post_on(&spa, &b, "/bff/login", &json!({"return_to": "/two"})).await;
    assert_eq!(s, 200, "{started}");
    let url_2 = started["authorization_url"].as_str().unwrap().to_owned();
    let cb_1 = spa
        .authorize(&provider, &url_1, "alice", "wonderland", Consent::Allow)
        .await;
    let cb_2 = spa
        .authorize(&provider, &url_2, "alice", "wonderland", Consent::Allow)
        .await;
    let (s, body) = post_on(
        &spa,
        &a,
        "/bff/callback",
        &serde_json::to_value(&cb_2).unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["return_to"], "/two");
    let (s, body) = post_on(
        &spa,
        &b,
        "/bff/callback",
        &serde_json::to_value(&cb_1).unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["return_to"], "/one");
}

async fn refresh_grants(provider: &TestProvider) -> u64 {
    provider.stats().await.unwrap()["token_requests"]["refresh_token"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn one_refresh_across_instances_and_each_uses_the_other_s_result() {
    let (_redis, provider, a, b) = two_instances_with_ttl(4).await;
    let spa = SpaClient::new(&a);
    let url = spa.start_login(None).await;
    let cb = spa
        .authorize(&provider, &url, "alice", "wonderland", Consent::Allow)
        .await;
    let (s, _) = post_on(
        &spa,
        &a,
        "/bff/callback",
        &serde_json::to_value(&cb).unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    // Into the refresh window (the last half of the 4 s lifetime; the new
    // token then has 2 s before its own window), then both
    // instances at once.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..16 {
        let spa = spa.clone();
        let url = if i % 2 == 0 {
            a.url("/bff/userinfo")
        } else {
            b.url("/bff/userinfo")
        };
        set.spawn(async move { spa.http.get(url).send().await.unwrap().status().as_u16() });
    }
    let statuses = set.join_all().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        refresh_grants(&provider).await,
        1,
        "one refresh token spent once across both instances"
    );
    // The token B (or A) refreshed is the one the other uses: no second grant.
    let (s, _) = get_on(&spa, &a, "/bff/userinfo").await;
    assert_eq!(s, 200);
    let (s, _) = get_on(&spa, &b, "/bff/userinfo").await;
    assert_eq!(s, 200);
    assert_eq!(refresh_grants(&provider).await, 1);
}

#[tokio::test]
async fn backchannel_logout_reaches_sessions_created_on_either_instance() {
    let (_redis, provider, a, b) = two_instances().await;
    let on_a = SpaClient::new(&a);
    let on_b = SpaClient::new(&b);
    for (spa, bff) in [(&on_a, &a), (&on_b, &b)] {
        let url = {
            let (s, body) = post_on(spa, bff, "/bff/login", &json!({})).await;
            assert_eq!(s, 200);
            body["authorization_url"].as_str().unwrap().to_owned()
        };
        let cb = spa
            .authorize(&provider, &url, "alice", "wonderland", Consent::Allow)
            .await;
        let (s, _) = post_on(
            spa,
            bff,
            "/bff/callback",
            &serde_json::to_value(&cb).unwrap(),
        )
        .await;
        assert_eq!(s, 200);
    }
    let now = keyway_backend::internals::now_secs();
    let token = provider
        .sign_test_jwt(
            &json!({"iss": provider.issuer, "aud": "keyway", "iat": now, "exp": now + 60, "jti": "x", "sub": "alice",
                    "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}),
            false,
        )
        .await
        .unwrap();
    // The provider calls only instance B.
    let r = reqwest::Client::new()
        .post(b.url("/bff/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for spa in [&on_a, &on_b] {
        for bff in [&a, &b] {
            let (s, _) = get_on(spa, bff, "/bff/user").await;
            assert_eq!(
                s, 401,
                "a session of alice survived the back-channel logout"
            );
        }
    }
}

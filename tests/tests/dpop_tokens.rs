//! DPoP-bound tokens (RFC 9449, issue 17) against the real provider, whose
//! client is registered with `dpop_bound_access_tokens`, and a resource
//! server that checks proofs as RFC 9449 §7 says ([`DpopApi`]).
//!
//! The binding is confirmed from three sides: the `dpop_jkt` the login sent,
//! the provider's introspection of each access token (`cnf.jkt`), and the
//! key of every proof the API verified are one and the same thumbprint.

use keyway_tests::bff::{SpaClient, TestBff, assert_error, env_for, json_of, reserve};
use keyway_tests::dpop_api::{DpopApi, NonceMode};
use keyway_tests::fapi::{self, INTROSPECTOR_ID, INTROSPECTOR_SECRET, Registration};
use keyway_tests::lying_provider::{Fault, LyingProvider};
use keyway_tests::provider::{ProviderConfig, TestProvider};
use keyway_tests::wait::eventually;
use std::time::Duration;

/// The provider (a DPoP-bound client), an API in `mode`, and a BFF with
/// `dpop = true` whose API `orders` takes `token` tokens.
async fn stack(mode: NonceMode, token: &str, access_ttl: u64) -> (TestProvider, DpopApi, TestBff) {
    let reserved = reserve().await;
    let how = Registration {
        auth: "client_secret_basic",
        dpop: true,
        par: false,
    };
    let provider = TestProvider::start(ProviderConfig {
        clients: Vec::new(),
        extra_clients: vec![fapi::client(&reserved.origin, how), fapi::introspector()],
        access_token_ttl: access_ttl,
        ..ProviderConfig::default()
    })
    .await
    .expect("provider starts");
    let introspection = provider.endpoint("introspection_endpoint").unwrap();
    let api = DpopApi::start(&introspection, (INTROSPECTOR_ID, INTROSPECTOR_SECRET), mode).await;
    let toml = format!(
        "[[apis]]\nname = \"orders\"\nurl = \"{}/v1\"\ntoken = \"{token}\"\nscopes = [\"api\"]\n",
        api.base
    );
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_DPOP".into(), "true".into());
    let bff = TestBff::start_with_file(reserved, &toml, &env)
        .await
        .expect("BFF starts");
    (provider, api, bff)
}

/// The `dpop_jkt` of an authorization URL.
fn dpop_jkt(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "dpop_jkt")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no dpop_jkt in {url}"))
}

async fn metrics(bff: &TestBff) -> String {
    reqwest::get(bff.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn login_userinfo_api_calls_and_refresh_are_bound_to_the_logins_key() {
    let (provider, api, bff) = stack(NonceMode::Never, "user", 4).await;
    let spa = SpaClient::new(&bff);
    let url = spa.start_login(None).await;
    let jkt = dpop_jkt(&url);
    let cb = spa
        .authorize(
            &provider,
            &url,
            "alice",
            "wonderland",
            keyway_tests::provider::Consent::Allow,
        )
        .await;
    let (status, body) = json_of(spa.callback(&cb).await).await;
    assert_eq!(status, 200, "{body}");

    // Userinfo: the provider takes the bound token only with a proof.
    let (status, info) = json_of(spa.get("/bff/userinfo").await).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], "alice");

    let call = || async {
        spa.http
            .get(bff.url("/bff/api/orders/items?x=1"))
            .header("x-csrf", "1")
            .send()
            .await
            .unwrap()
    };
    let (status, first) = json_of(call().await).await;
    assert_eq!(status, 200, "{first}");
    let seen = api.seen();
    assert_eq!(seen[0].outcome, Ok(jkt.clone()), "{:?}", seen[0]);
    assert_eq!(seen[0].introspection["token_type"], "DPoP");
    assert_eq!(
        seen[0].introspection["cnf"]["jkt"],
        jkt.as_str(),
        "the provider bound the token to the login's key"
    );
    assert_eq!(
        seen[0].claims["htu"],
        format!("{}/v1/items", api.base),
        "htu has no query"
    );
    let first_token = seen[0].token.clone().unwrap();

    // The 4 s token is refreshed in its last 2 s: call until the provider saw a refresh.
    eventually(Duration::from_secs(20), "a refresh grant", || async {
        let (status, body) = json_of(call().await).await;
        assert_eq!(status, 200, "{body}");
        provider.token_requests("refresh_token").await.unwrap() >= 1
    })
    .await;
    let (status, _) = json_of(call().await).await;
    assert_eq!(status, 200);
    let last = api.seen().last().cloned().unwrap();
    assert_ne!(
        last.token.as_deref(),
        Some(first_token.as_str()),
        "a new access token"
    );
    assert_eq!(last.outcome, Ok(jkt.clone()), "{last:?}");
    assert_eq!(
        last.introspection["cnf"]["jkt"],
        jkt.as_str(),
        "the refreshed token is bound to the same key"
    );
    let text = metrics(&bff).await;
    assert!(
        text.contains(r#"keyway_refreshes_total{provider="default",outcome="succeeded"}"#),
        "{text}"
    );

    // A proof is good once: the same request replayed is refused by the API.
    let replay = reqwest::Client::new()
        .get(format!("{}/v1/items", api.base))
        .header(
            "authorization",
            format!("DPoP {}", last.token.clone().unwrap()),
        )
        .header("dpop", last.proof.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    assert_eq!(
        api.seen().last().unwrap().outcome,
        Err("jti replayed".into())
    );
}

#[tokio::test]
async fn the_bffs_own_client_credentials_token_is_bound_too() {
    let (_provider, api, bff) = stack(NonceMode::Never, "client", 3600).await;
    let r = reqwest::Client::new()
        .get(bff.url("/bff/api/orders/stock"))
        .header("x-csrf", "1")
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, 200, "{body}");
    let seen = &api.seen()[0];
    let jkt = seen.outcome.clone().expect("a valid proof");
    assert_eq!(seen.introspection["client_id"], "keyway");
    assert_eq!(seen.introspection["cnf"]["jkt"], jkt.as_str());
}

#[tokio::test]
async fn an_api_nonce_challenge_is_answered_once_and_remembered() {
    let (provider, api, bff) = stack(NonceMode::Once, "user", 3600).await;
    let spa = SpaClient::new(&bff);
    assert_eq!(
        spa.login(&provider, "alice", "wonderland").await.status(),
        200
    );
    for _ in 0..2 {
        let r = spa
            .http
            .post(bff.url("/bff/api/orders/items"))
            .header("x-csrf", "1")
            .body("same body twice")
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(r).await;
        assert_eq!(status, 200, "{body}");
    }
    let seen = api.seen();
    let outcomes: Vec<bool> = seen.iter().map(|s| s.outcome.is_ok()).collect();
    assert_eq!(
        outcomes,
        [false, true, true],
        "one challenge, one retry, then the nonce from the start: {seen:?}"
    );
    assert!(
        seen[0]
            .outcome
            .as_ref()
            .unwrap_err()
            .starts_with("use_dpop_nonce")
    );
    assert_eq!(seen[1].claims["nonce"], "nonce-1");
    assert_eq!(seen[2].claims["nonce"], "nonce-1");
    let text = metrics(&bff).await;
    assert!(
        text.contains(r#"keyway_dpop_nonce_retries_total{api="orders"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn an_api_that_asks_for_a_new_nonce_every_time_gets_one_retry_then_502() {
    let (provider, api, bff) = stack(NonceMode::Always, "user", 3600).await;
    let spa = SpaClient::new(&bff);
    assert_eq!(
        spa.login(&provider, "alice", "wonderland").await.status(),
        200
    );
    let r = spa
        .http
        .get(bff.url("/bff/api/orders/items"))
        .header("x-csrf", "1")
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_error(status, &body, 502, "upstream_error");
    assert_eq!(api.seen().len(), 2, "the first try and one retry, no more");
}

#[tokio::test]
async fn a_bearer_answer_to_a_dpop_token_request_is_refused() {
    let provider = LyingProvider::start(Fault::BearerToDpop).await;
    let reserved = reserve().await;
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SCOPES".into(), "openid profile".into());
    env.insert("KEYWAY_DPOP".into(), "true".into());
    let bff = TestBff::start(reserved, &env).await.expect("BFF starts");
    let spa = SpaClient::new(&bff);
    let url = spa.start_login(None).await;
    let cb = provider.authorize(&url).await;
    let (status, body) = json_of(spa.callback(&cb).await).await;
    assert_error(status, &body, 502, "token_exchange_failed");
    assert_eq!(
        provider.token_request_log().len(),
        1,
        "the code went to the token endpoint once"
    );
    assert!(spa.get("/bff/user").await.status() == 401, "no session");
}

#[tokio::test]
async fn every_instance_on_the_store_uses_the_tokens_another_bound() {
    let redis = keyway_tests::redis::RedisServer::start()
        .await
        .expect("redis-server starts");
    let (a, b) = (reserve().await, reserve().await);
    let public = a.origin.clone();
    let how = Registration {
        auth: "client_secret_basic",
        dpop: true,
        par: false,
    };
    let provider = TestProvider::start(ProviderConfig {
        clients: Vec::new(),
        extra_clients: vec![fapi::client(&public, how), fapi::introspector()],
        ..ProviderConfig::default()
    })
    .await
    .expect("provider starts");
    let introspection = provider.endpoint("introspection_endpoint").unwrap();
    let api = DpopApi::start(
        &introspection,
        (INTROSPECTOR_ID, INTROSPECTOR_SECRET),
        NonceMode::Never,
    )
    .await;
    let toml = format!("[[apis]]\nname = \"orders\"\nurl = \"{}/v1\"\n", api.base);
    let mut env = env_for(&public, &provider.issuer);
    env.insert("KEYWAY_DPOP".into(), "true".into());
    env.insert("KEYWAY_SESSION_STORE".into(), redis.url());
    env.insert(
        "KEYWAY_SESSION_KEY".into(),
        keyway_tests::bff::TEST_SESSION_KEY.into(),
    );
    let bff_a = TestBff::start_with_file(a, &toml, &env)
        .await
        .expect("A starts");
    let bff_b = TestBff::start_with_file(b, &toml, &env)
        .await
        .expect("B starts");

    // The login starts on A (the key is made there) and completes on B.
    let spa = SpaClient::new(&bff_a);
    let url = spa.start_login(None).await;
    let jkt = dpop_jkt(&url);
    let cb = spa
        .authorize(
            &provider,
            &url,
            "alice",
            "wonderland",
            keyway_tests::provider::Consent::Allow,
        )
        .await;
    let r = spa
        .http
        .post(bff_b.url("/bff/callback"))
        .header("x-csrf", "1")
        .json(&cb)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, 200, "{body}");
    for bff in [&bff_a, &bff_b, &bff_a] {
        let r = spa
            .http
            .get(bff.url("/bff/api/orders/x"))
            .header("x-csrf", "1")
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(r).await;
        assert_eq!(status, 200, "{body}");
    }
    let seen = api.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.outcome, Ok(jkt.clone()), "{s:?}");
    }
}

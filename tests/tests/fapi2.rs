//! `profile = "fapi2"` (issue 17) against the real provider in its FAPI 2.0
//! Security Profile mode: pushed requests required of the client,
//! `private_key_jwt` whose assertions must name the issuer, DPoP-bound
//! tokens, and a DPoP nonce required on every proof. Keyway with the
//! profile logs in, calls userinfo and an API, refreshes and logs out; the
//! same provider refuses Keyway without it, which shows it enforces what
//! the profile does.

use keyway_tests::bff::{Reserved, SpaClient, TestBff, assert_error, env_for, json_of, reserve};
use keyway_tests::dpop_api::{DpopApi, NonceMode};
use keyway_tests::fapi::{self, INTROSPECTOR_ID, INTROSPECTOR_SECRET, KeyFile, Registration};
use keyway_tests::provider::{ProviderConfig, TestProvider};
use keyway_tests::wait::eventually;
use std::collections::BTreeMap;
use std::time::Duration;

/// The provider in FAPI 2.0 mode with client `keyway` (`private_key_jwt`
/// at `/bff/jwks`, DPoP-bound, PAR required) for a BFF at `reserved`.
async fn fapi_provider(
    reserved: &Reserved,
    tweak: impl FnOnce(&mut ProviderConfig),
) -> TestProvider {
    let how = Registration {
        auth: "private_key_jwt",
        dpop: true,
        par: true,
    };
    let mut config = ProviderConfig {
        clients: Vec::new(),
        extra_clients: vec![fapi::client(&reserved.origin, how), fapi::introspector()],
        fapi2: true,
        dpop_nonce: true,
        ..ProviderConfig::default()
    };
    tweak(&mut config);
    TestProvider::start(config).await.expect("provider starts")
}

/// The BFF's settings: the key of `key`, no client secret, and `extra`.
fn env(
    reserved: &Reserved,
    provider: &TestProvider,
    key: &KeyFile,
    extra: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.remove("KEYWAY_CLIENT_SECRET");
    env.insert("KEYWAY_PRIVATE_KEY_FILE".into(), key.path());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    env
}

#[tokio::test]
async fn with_the_profile_login_userinfo_api_refresh_and_logout_work() {
    let reserved = reserve().await;
    let provider = fapi_provider(&reserved, |c| c.access_token_ttl = 4).await;
    let introspection = provider.endpoint("introspection_endpoint").unwrap();
    let api = DpopApi::start(
        &introspection,
        (INTROSPECTOR_ID, INTROSPECTOR_SECRET),
        NonceMode::Never,
    )
    .await;
    let key = KeyFile::p256();
    let toml = format!("[[apis]]\nname = \"orders\"\nurl = \"{}/v1\"\n", api.base);
    let env = env(&reserved, &provider, &key, &[("KEYWAY_PROFILE", "fapi2")]);
    let bff = TestBff::start_with_file(reserved, &toml, &env)
        .await
        .expect("BFF starts");

    let spa = SpaClient::new(&bff);
    let url = spa.start_login(None).await;
    assert!(url.contains("request_uri="), "pushed: {url}");
    let cb = spa
        .authorize(
            &provider,
            &url,
            "alice",
            "wonderland",
            keyway_tests::provider::Consent::Allow,
        )
        .await;
    assert!(cb.iss.is_some(), "the provider sends iss");
    let (status, body) = json_of(spa.callback(&cb).await).await;
    assert_eq!(status, 200, "{body}");
    let (status, info) = json_of(spa.get("/bff/userinfo").await).await;
    assert_eq!(
        (status, info["sub"].as_str()),
        (200, Some("alice")),
        "{info}"
    );

    let call = || async {
        let r = spa
            .http
            .get(bff.url("/bff/api/orders/a"))
            .header("x-csrf", "1")
            .send()
            .await
            .unwrap();
        json_of(r).await
    };
    let (status, body) = call().await;
    assert_eq!(status, 200, "{body}");
    let jkt = api.seen()[0].outcome.clone().expect("a verified proof");
    assert_eq!(api.seen()[0].introspection["cnf"]["jkt"], jkt.as_str());
    eventually(Duration::from_secs(20), "a refresh grant", || async {
        assert_eq!(call().await.0, 200);
        provider.token_requests("refresh_token").await.unwrap() >= 1
    })
    .await;
    assert_eq!(call().await.0, 200);
    let last = api.seen().last().cloned().unwrap();
    assert_eq!(
        last.outcome,
        Ok(jkt.clone()),
        "the refreshed token is bound to the same key: {last:?}"
    );

    // Every proof to the provider needs its nonce: the first token request was retried once.
    let metrics = reqwest::get(bff.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let retries = metrics
        .lines()
        .find(|l| l.starts_with(r#"keyway_dpop_nonce_retries_total{provider="default"}"#))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no retry counter: {metrics}"));
    assert!(retries >= 1, "{metrics}");

    let before = provider.stats().await.unwrap()["revocations"]
        .as_u64()
        .unwrap();
    let (status, body) = json_of(spa.post("/bff/logout", &serde_json::json!({})).await).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["end_session_url"]
            .as_str()
            .is_some_and(|u| u.starts_with(&provider.issuer))
    );
    let after = provider.stats().await.unwrap()["revocations"]
        .as_u64()
        .unwrap();
    assert!(after > before, "tokens revoked with an assertion");
    assert_eq!(spa.get("/bff/user").await.status(), 401);
}

#[tokio::test]
async fn the_provider_refuses_keyway_without_the_profile() {
    let reserved = reserve().await;
    let provider = fapi_provider(&reserved, |_| {}).await;
    let key = KeyFile::p256();
    let origin = reserved.origin.clone();
    let addr = reserved.listener.local_addr().unwrap();
    let mut reserved = Some(reserved);
    let mut start = async |extra: &[(&str, &str)], secret: bool| {
        let r = match reserved.take() {
            Some(r) => r,
            None => Reserved {
                listener: tokio::net::TcpListener::bind(addr)
                    .await
                    .expect("the same address"),
                origin: origin.clone(),
            },
        };
        let mut env = env(&r, &provider, &key, extra);
        if secret {
            env.remove("KEYWAY_PRIVATE_KEY_FILE");
            env.insert("KEYWAY_CLIENT_SECRET".into(), "keyway-secret".into());
        }
        TestBff::start(r, &env).await.expect("BFF starts")
    };

    // A plain confidential client (client_secret_basic): its pushed request is refused.
    let bff = start(&[("KEYWAY_PAR", "true")], true).await;
    let r = SpaClient::new(&bff)
        .post("/bff/login", &serde_json::json!({}))
        .await;
    let (status, body) = json_of(r).await;
    assert_error(status, &body, 502, "provider_error");
    bff.stop().await;

    // private_key_jwt and PAR, but bearer tokens: the code exchange is refused.
    let bff = start(&[("KEYWAY_PAR", "true")], false).await;
    let (status, body) = json_of(
        SpaClient::new(&bff)
            .login(&provider, "alice", "wonderland")
            .await,
    )
    .await;
    assert_error(status, &body, 502, "token_exchange_failed");
    bff.stop().await;

    // DPoP too, but assertions addressed to the token endpoint, not the issuer.
    let extra = [
        ("KEYWAY_PAR", "true"),
        ("KEYWAY_DPOP", "true"),
        ("KEYWAY_ASSERTION_AUDIENCE", "token_endpoint"),
    ];
    let bff = start(&extra, false).await;
    let r = SpaClient::new(&bff)
        .post("/bff/login", &serde_json::json!({}))
        .await;
    let (status, body) = json_of(r).await;
    assert_error(status, &body, 502, "provider_error");
    bff.stop().await;

    // The control: the same settings with the profile.
    let bff = start(&[("KEYWAY_PROFILE", "fapi2")], false).await;
    let (status, body) = json_of(
        SpaClient::new(&bff)
            .login(&provider, "alice", "wonderland")
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_profile_is_not_served_by_a_provider_that_lacks_what_it_needs() {
    let reserved = reserve().await;
    let provider = fapi_provider(&reserved, |c| c.disable_par = true).await;
    let key = KeyFile::p256();
    let env = env(&reserved, &provider, &key, &[("KEYWAY_PROFILE", "fapi2")]);
    let config = keyway_backend::Config::from_sources(None, &env).expect("a valid configuration");
    let base = reserved.origin.as_str().trim_end_matches('/').to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(keyway_backend::serve_on(reserved.listener, config, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    eventually(Duration::from_secs(10), "the BFF answers", || async {
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    // Discovery has no PAR endpoint: the provider is never ready, and a login fails.
    let r = http
        .post(format!("{base}/bff/login"))
        .header("x-csrf", "1")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_error(status, &body, 502, "provider_error");
    assert_eq!(
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    let _ = stop.send(());
    let _ = task.await;
}

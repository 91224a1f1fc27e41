//! The real test provider (`tests/provider/server.mjs`) served over https
//! with a certificate from a run-time test CA. Talks to it directly with
//! reqwest. Needs `npm ci --prefix tests/provider` (scripts/setup).

use keyway_tests::provider::{ClientConfig, ProviderConfig, ProviderTls, TestProvider};
use keyway_tests::tls::TestCa;
use serde_json::Value;

async fn tls_provider(ca: &TestCa) -> TestProvider {
    TestProvider::start(ProviderConfig {
        tls: Some(ProviderTls::issue(ca)),
        ..ProviderConfig::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn discovery_and_jwks_over_https_for_a_client_trusting_the_ca() {
    let ca = TestCa::new();
    let provider = tls_provider(&ca).await;
    assert!(
        provider.issuer.starts_with("https://127.0.0.1:"),
        "{}",
        provider.issuer
    );
    assert!(provider.ca_pem().is_some());

    let client = ca.client();
    let discovery: Value = client
        .get(format!(
            "{}/.well-known/openid-configuration",
            provider.issuer
        ))
        .send()
        .await
        .expect("discovery over https")
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], provider.issuer.as_str());
    for endpoint in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
        let url = discovery[endpoint].as_str().unwrap();
        assert!(url.starts_with("https://127.0.0.1:"), "{endpoint}: {url}");
    }

    let jwks: Value = client
        .get(discovery["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .expect("JWKS over https")
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    assert_eq!(keys[0]["kty"], "RSA");
    assert!(keys[0].get("d").is_none(), "no private part in the JWKS");

    let stats = provider.stats().await.unwrap();
    assert!(stats["discovery_requests"].as_u64().unwrap() >= 2);
    assert_eq!(stats["jwks_requests"], 1);
}

#[tokio::test]
async fn clients_that_do_not_trust_the_ca_are_refused() {
    let ca = TestCa::new();
    let provider = tls_provider(&ca).await;
    let url = format!("{}/.well-known/openid-configuration", provider.issuer);

    let stranger = TestCa::new();
    let error = stranger
        .client()
        .get(&url)
        .send()
        .await
        .expect_err("another CA's client is refused");
    assert!(error.is_connect(), "{error:?}");

    let _ = rustls::crypto::ring::default_provider().install_default();
    let platform = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(platform.get(&url).send().await.is_err());

    // Plain http to the https port gets no OpenID answer.
    let plain = url.replacen("https://", "http://", 1);
    let answered = platform.get(&plain).send().await;
    assert!(
        answered.is_err() || !answered.unwrap().status().is_success(),
        "plain http answered with success"
    );
}

#[tokio::test]
async fn sign_in_refresh_and_test_endpoints_work_the_same_over_https() {
    let ca = TestCa::new();
    let provider = tls_provider(&ca).await;
    let client = ClientConfig::default();
    let tokens = provider
        .sign_in_tokens(&client, "alice", "wonderland", "openid offline_access")
        .await
        .unwrap();
    assert!(tokens["id_token"].is_string(), "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token");
    assert!(
        provider
            .refresh_token_active(&client, refresh_token)
            .await
            .unwrap()
    );
    let (status, refreshed) = provider.refresh(&client, refresh_token).await.unwrap();
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        provider.token_requests("authorization_code").await.unwrap(),
        1
    );
    assert_eq!(provider.token_requests("refresh_token").await.unwrap(), 1);
}

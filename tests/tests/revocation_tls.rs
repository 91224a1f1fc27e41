//! Revocation over TLS (issue 14's done-clause; security checklist
//! "Session": logout revokes the refresh token, and the access token, where
//! the provider has a revocation endpoint).
//!
//! The real test provider is served over https with a certificate from a
//! run-time test CA, which Keyway trusts through `KEYWAY_TLS_CA_FILE` only
//! (the path a production deployment takes: an https revocation endpoint,
//! not the loopback http of the other tests). After a login, `POST
//! /bff/logout` must revoke both tokens at the provider: its revocation
//! count rises by 2 and introspection finds neither token active. The
//! tokens are read from the BFF's own session store (opened beside it with
//! the same key).

use keyway_backend::internals::{MemoryStore, Sessions};
use keyway_backend::{Builder, Config};
use keyway_tests::bff::{
    SpaClient, TEST_SESSION_KEY, TestBff, callback_request, client_for, env_for, json_of, reserve,
};
use keyway_tests::provider::{Consent, ProviderConfig, ProviderTls, TestProvider};
use keyway_tests::tls::TestCa;
use serde_json::json;

async fn revocations(provider: &TestProvider) -> u64 {
    provider.stats().await.unwrap()["revocations"]
        .as_u64()
        .unwrap_or(0)
}

/// Issue 14: logout over TLS revokes the refresh and access tokens.
#[tokio::test]
async fn logout_revokes_both_tokens_at_an_https_provider() {
    let ca = TestCa::new();
    let reserved = reserve().await;
    let client = client_for(&reserved.origin);
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client.clone()],
        tls: Some(ProviderTls::issue(&ca)),
        ..ProviderConfig::default()
    })
    .await
    .expect("provider over https");
    assert!(
        provider.issuer.starts_with("https://"),
        "{}",
        provider.issuer
    );
    let revocation = provider.endpoint("revocation_endpoint").unwrap();
    assert!(revocation.starts_with("https://"), "{revocation}");

    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert(
        "KEYWAY_TLS_CA_FILE".into(),
        ca.ca_pem_path().display().to_string(),
    );
    env.insert("KEYWAY_SESSION_KEY".into(), TEST_SESSION_KEY.into());
    let config = Config::from_sources(None, &env).expect("config");
    let store = MemoryStore::open();
    let sessions = Sessions::new(store.clone(), &config.session);
    let bff = TestBff::start_built(reserved, Builder::new(config).store(store))
        .await
        .expect("BFF trusting the test CA");

    let spa = SpaClient::new(&bff);
    let url = spa.start_login(None).await;
    let back = provider
        .sign_in(&url, "alice", "wonderland", Consent::Allow)
        .await
        .expect("sign-in at the https provider");
    let (status, body) = json_of(spa.callback(&callback_request(&back)).await).await;
    assert_eq!(status, 200, "{body}");

    let ids = sessions.sessions_by_sub("default", "alice").await.unwrap();
    assert_eq!(ids.len(), 1);
    let session = sessions.load_fresh(ids[0]).await.unwrap().expect("session");
    let access = session.data.tokens.access_token.expose().to_owned();
    let refresh = session
        .data
        .tokens
        .refresh_token
        .as_ref()
        .expect("a refresh token (offline_access)")
        .expose()
        .to_owned();
    assert!(
        provider
            .refresh_token_active(&client, &refresh)
            .await
            .unwrap()
    );
    assert_eq!(
        provider.introspect(&client, &access).await.unwrap()["active"],
        true
    );

    let before = revocations(&provider).await;
    let (status, body) = json_of(spa.post("/bff/logout", &json!({})).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        revocations(&provider).await - before,
        2,
        "the refresh token and the access token revoked over https"
    );
    assert!(
        !provider
            .refresh_token_active(&client, &refresh)
            .await
            .unwrap(),
        "the refresh token is still active"
    );
    assert_eq!(
        provider.introspect(&client, &access).await.unwrap()["active"],
        false,
        "the access token is still active"
    );
    assert_eq!(spa.get("/bff/user").await.status(), 401);
}

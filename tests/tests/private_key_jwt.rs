//! Client authentication with client assertions (RFC 7523, issue 17)
//! against the real provider: `private_key_jwt` with the client registered
//! by `jwks_uri` at the BFF's own `/bff/jwks`, for the token, PAR and
//! revocation endpoints; key rotation with the provider running on; and
//! `client_secret_jwt`.

use keyway_tests::bff::{Reserved, SpaClient, TestBff, env_for, json_of, reserve};
use keyway_tests::fapi::{self, KeyFile, Registration};
use keyway_tests::provider::{ProviderConfig, TestProvider};
use std::collections::BTreeMap;

/// A provider whose client `keyway` is registered as `how` for a BFF at
/// `reserved`.
async fn provider_for(reserved: &Reserved, how: Registration<'_>) -> TestProvider {
    TestProvider::start(ProviderConfig {
        clients: Vec::new(),
        extra_clients: vec![fapi::client(&reserved.origin, how)],
        ..ProviderConfig::default()
    })
    .await
    .expect("provider starts")
}

/// The BFF's settings: no client secret, the keys of `files` (the first signs).
fn key_env(
    reserved: &Reserved,
    provider: &TestProvider,
    files: &[&KeyFile],
) -> BTreeMap<String, String> {
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.remove("KEYWAY_CLIENT_SECRET");
    let paths: Vec<String> = files.iter().map(|f| f.path()).collect();
    env.insert("KEYWAY_PRIVATE_KEY_FILE".into(), paths.join(" "));
    env
}

/// The key ids `/bff/jwks` publishes, in order.
async fn published(bff: &TestBff) -> Vec<String> {
    let r = reqwest::get(bff.url("/bff/jwks")).await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/jwk-set+json");
    let (status, jwks) = json_of(r).await;
    assert_eq!(status, 200, "{jwks}");
    let keys = jwks["keys"].as_array().unwrap();
    for k in keys {
        assert!(
            k.get("d").is_none() && k.get("p").is_none(),
            "a private member: {k}"
        );
        assert_eq!(k["use"], "sig");
    }
    keys.iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn login_status(bff: &TestBff, provider: &TestProvider) -> (u16, serde_json::Value) {
    json_of(
        SpaClient::new(bff)
            .login(provider, "alice", "wonderland")
            .await,
    )
    .await
}

#[tokio::test]
async fn private_key_jwt_for_par_token_and_revocation_with_keys_at_bff_jwks() {
    let reserved = reserve().await;
    let how = Registration {
        par: true,
        ..Registration::default()
    };
    let provider = provider_for(&reserved, how).await;
    let key = KeyFile::p256();
    let mut env = key_env(&reserved, &provider, &[&key]);
    env.insert("KEYWAY_PAR".into(), "true".into());
    let bff = TestBff::start(reserved, &env).await.expect("BFF starts");
    assert_eq!(published(&bff).await.len(), 1);

    let spa = SpaClient::new(&bff);
    let url = spa.start_login(None).await;
    assert!(
        url.contains("request_uri="),
        "pushed, with a client assertion: {url}"
    );
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
    assert_eq!(status, 200, "the token endpoint took the assertion: {body}");

    let before = provider.stats().await.unwrap()["revocations"]
        .as_u64()
        .unwrap();
    let r = spa.post("/bff/logout", &serde_json::json!({})).await;
    assert_eq!(r.status(), 200);
    let after = provider.stats().await.unwrap()["revocations"]
        .as_u64()
        .unwrap();
    assert!(
        after > before,
        "revocation authenticated with an assertion ({before} -> {after})"
    );
}

#[tokio::test]
async fn keys_rotate_while_the_provider_runs_on() {
    let reserved = reserve().await;
    let addr = reserved.listener.local_addr().unwrap();
    let origin = reserved.origin.clone();
    let provider = provider_for(&reserved, Registration::default()).await;
    let (a, b, c) = (KeyFile::p256(), KeyFile::p256(), KeyFile::p256());
    // Each configuration is a restart of the BFF on the same address.
    let mut reserved = Some(reserved);
    let mut start = async |files: &[&KeyFile]| {
        let r = match reserved.take() {
            Some(r) => r,
            None => Reserved {
                listener: tokio::net::TcpListener::bind(addr)
                    .await
                    .expect("the same address again"),
                origin: origin.clone(),
            },
        };
        let env = key_env(&r, &provider, files);
        TestBff::start(r, &env).await.expect("BFF starts")
    };

    let bff = start(&[&a]).await;
    let kid_a = published(&bff).await[0].clone();
    assert_eq!(login_status(&bff, &provider).await.0, 200, "A signs");
    bff.stop().await;

    // A key the provider has not seen, at once: refused while the
    // provider's copy of /bff/jwks is fresh (it keeps it at least 60 s).
    let bff = start(&[&c]).await;
    let (status, body) = login_status(&bff, &provider).await;
    assert_eq!(status, 502, "an unknown key is refused: {body}");
    bff.stop().await;

    // The rotation: publish B beside A (A still signs)...
    let bff = start(&[&a, &b]).await;
    let kids = published(&bff).await;
    assert_eq!(kids[0], kid_a);
    let kid_b = kids[1].clone();
    assert_eq!(login_status(&bff, &provider).await.0, 200, "A still signs");
    bff.stop().await;
    // ...for longer than the provider keeps its copy...
    provider.expire_client_keys("keyway").await.unwrap();
    // ...then B signs, A stays published for assertions in flight...
    let bff = start(&[&b, &a]).await;
    assert_eq!(published(&bff).await, [kid_b.clone(), kid_a]);
    let (status, body) = login_status(&bff, &provider).await;
    assert_eq!(status, 200, "B signs: {body}");
    bff.stop().await;
    // ...and A goes.
    let bff = start(&[&b]).await;
    assert_eq!(published(&bff).await, [kid_b]);
    assert_eq!(login_status(&bff, &provider).await.0, 200, "B alone");
}

#[tokio::test]
async fn client_secret_jwt_logs_in() {
    let reserved = reserve().await;
    let how = Registration {
        auth: "client_secret_jwt",
        ..Registration::default()
    };
    let provider = provider_for(&reserved, how).await;
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_CLIENT_AUTH".into(), "client_secret_jwt".into());
    let bff = TestBff::start(reserved, &env).await.expect("BFF starts");
    let (status, body) = login_status(&bff, &provider).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        reqwest::get(bff.url("/bff/jwks")).await.unwrap().status(),
        404,
        "no key, no JWKS"
    );
}

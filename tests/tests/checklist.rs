//! Lines of the security checklist (docs/security.md) that no other test
//! file covers, each proved against a BFF wired to the lying provider's
//! honest mode (`Fault::None`), which records what it receives.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use keyway_tests::bff::{SpaClient, TestBff, env_for, reserve};
use keyway_tests::lying_provider::{Fault, LyingProvider};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

async fn honest(edit: impl FnOnce(&mut BTreeMap<String, String>)) -> (LyingProvider, TestBff) {
    let provider = LyingProvider::start(Fault::None).await;
    let reserved = reserve().await;
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SCOPES".into(), "openid profile".into());
    edit(&mut env);
    let bff = TestBff::start(reserved, &env).await.expect("BFF starts");
    (provider, bff)
}

#[tokio::test]
async fn pkce_s256_random_verifier_code_flow_and_client_authentication() {
    let (provider, bff) = honest(|_| {}).await;
    for _ in 0..2 {
        let spa = SpaClient::new(&bff);
        let url = spa.start_login(None).await;
        let cb = provider.authorize(&url).await;
        assert_eq!(spa.callback(&cb).await.status(), 200);
    }
    let auths = provider.authorize_requests();
    let tokens = provider.token_request_log();
    assert_eq!(auths.len(), 2);
    assert_eq!(tokens.len(), 2, "each code exchanged exactly once");
    for (a, t) in auths.iter().zip(&tokens) {
        // Authorization code flow only (no implicit, no hybrid, no password grant).
        assert_eq!(a["response_type"], "code");
        assert!(!a.contains_key("response_mode"), "{a:?}");
        assert_eq!(t.form["grant_type"], "authorization_code");
        assert!(!t.form.contains_key("password") && !t.form.contains_key("username"));
        // PKCE S256: the verifier is 43..=128 unreserved characters and hashes to the challenge.
        assert_eq!(a["code_challenge_method"], "S256");
        let verifier = &t.form["code_verifier"];
        assert!((43..=128).contains(&verifier.len()), "{}", verifier.len());
        assert!(
            verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        );
        assert_eq!(
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            a["code_challenge"]
        );
        // The client authenticates with client_secret_basic, as advertised.
        let basic = t.authorization.as_deref().expect("Authorization header");
        let decoded = STANDARD
            .decode(basic.strip_prefix("Basic ").expect("Basic"))
            .expect("base64");
        assert_eq!(decoded, b"keyway:keyway-secret");
        assert!(!t.form.contains_key("client_secret"));
    }
    // Fresh randomness per login: state, nonce and verifier all differ.
    for key in ["state", "nonce", "code_challenge"] {
        assert_ne!(auths[0][key], auths[1][key], "{key} repeated");
        assert!(auths[0][key].len() >= 22, "{key} too short");
    }
    assert_ne!(
        tokens[0].form["code_verifier"],
        tokens[1].form["code_verifier"]
    );
}

#[tokio::test]
async fn redirect_uri_comes_from_configuration_not_from_the_request() {
    let (provider, bff) = honest(|_| {}).await;
    let spa = SpaClient::new(&bff);
    let r = spa
        .http
        .post(bff.url("/bff/login"))
        .header("x-csrf", "1")
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .header("forwarded", "host=evil.example;proto=https")
        .json(&json!({}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    let url = url::Url::parse(body["authorization_url"].as_str().expect("url")).expect("url");
    let redirect = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned());
    assert_eq!(redirect, Some(bff.url("/callback")));
    let cb = provider.authorize(url.as_str()).await;
    assert_eq!(spa.callback(&cb).await.status(), 200);
    let auths = provider.authorize_requests();
    assert_eq!(auths[0]["redirect_uri"], bff.url("/callback"));
}

#[tokio::test]
async fn an_expired_login_is_refused_without_calling_the_provider() {
    // The default lifetime of a pending login is 10 minutes.
    let defaults = keyway_backend::Config::from_sources(
        None,
        &env_for(
            &url::Url::parse("http://127.0.0.1:8080").expect("url"),
            "http://127.0.0.1:1",
        ),
    )
    .expect("config");
    assert_eq!(defaults.session.login_timeout, Duration::from_secs(600));

    let (provider, bff) = honest(|env| {
        env.insert("KEYWAY_LOGIN_TIMEOUT".into(), "1s".into());
    })
    .await;
    let spa = SpaClient::new(&bff);
    let url = spa.start_login(None).await;
    let cb = provider.authorize(&url).await;
    // Let the 1 s lifetime pass (whole seconds are compared).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = spa.callback(&cb).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "login_expired", "{body}");
    assert_eq!(provider.token_requests(), 0, "the code was not exchanged");
    assert_eq!(spa.get("/bff/user").await.status(), 401);
    // Single use: the expired login is gone.
    let again: Value = spa.callback(&cb).await.json().await.expect("json");
    assert_eq!(again["error"], "invalid_state", "{again}");
}

#[tokio::test]
async fn logout_is_post_only() {
    let (provider, bff) = honest(|_| {}).await;
    let spa = SpaClient::new(&bff);
    let url = spa.start_login(None).await;
    let cb = provider.authorize(&url).await;
    assert_eq!(spa.callback(&cb).await.status(), 200);
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let r = spa
            .http
            .request(method.clone(), bff.url("/bff/logout"))
            .header("x-csrf", "1")
            .send()
            .await
            .expect("request");
        assert!(
            r.status() == 405 || r.status() == 404,
            "{method} /bff/logout: {}",
            r.status()
        );
    }
    assert_eq!(
        spa.get("/bff/user").await.status(),
        200,
        "the session survives a GET to /bff/logout"
    );
}

#[tokio::test]
async fn huge_headers_are_a_4xx_and_the_server_keeps_serving() {
    let (_provider, bff) = honest(|_| {}).await;
    let http = reqwest::Client::new();
    let huge = format!("keyway={}", "a".repeat(200 * 1024));
    match http
        .get(bff.url("/bff/user"))
        .header("cookie", huge)
        .send()
        .await
    {
        Ok(r) => assert!(r.status().is_client_error(), "{}", r.status()),
        // hyper may close the connection on an oversized head: also no growth, no panic.
        Err(e) => assert!(
            e.is_request() || e.is_connect() || e.is_body(),
            "unexpected error {e}"
        ),
    }
    let mut many = reqwest::header::HeaderMap::new();
    for i in 0..500 {
        many.insert(
            reqwest::header::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).expect("name"),
            reqwest::header::HeaderValue::from_static("1"),
        );
    }
    match http.get(bff.url("/bff/user")).headers(many).send().await {
        Ok(r) => assert!(r.status().is_client_error(), "{}", r.status()),
        Err(e) => assert!(e.is_request() || e.is_body(), "unexpected error {e}"),
    }
    let r = http.get(bff.url("/healthz")).send().await.expect("healthz");
    assert_eq!(r.status(), 200, "still serving");
}

#[tokio::test]
async fn https_deployment_sends_hsts_and_host_prefixed_secure_cookies() {
    // TLS terminated in front of the BFF: its public URL is https.
    let (_provider, bff) = honest(|env| {
        env.insert("KEYWAY_PUBLIC_URL".into(), "https://app.example".into());
    })
    .await;
    let http = reqwest::Client::new();
    let r = http.get(bff.url("/healthz")).send().await.expect("healthz");
    assert!(
        r.headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("max-age=")),
        "no HSTS: {:?}",
        r.headers()
    );
    let r = http
        .post(bff.url("/bff/login"))
        .header("x-csrf", "1")
        .json(&json!({}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200);
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("set-cookie")
        .to_owned();
    assert!(cookie.starts_with("__Host-keyway-login-"), "{cookie}");
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");

    // And a plain-http loopback deployment sends no HSTS.
    let (_p2, plain) = honest(|_| {}).await;
    let r = http
        .get(plain.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert!(r.headers().get("strict-transport-security").is_none());
}

#[test]
fn fuzz_targets_exist_for_every_outside_parser() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for target in [
        "callback_body",
        "return_to",
        "cookie",
        "logout_token",
        "id_token",
        "proxy_path",
    ] {
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "{target} missing"
        );
        let source = std::fs::read_to_string(root.join(format!("fuzz_targets/{target}.rs")))
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        assert!(source.contains("fuzz_target!"), "{target} is not a target");
        assert!(source.contains("assert"), "{target} checks no invariant");
    }
    let script = std::fs::read_to_string(root.join("../scripts/fuzz")).expect("scripts/fuzz");
    assert!(script.contains("max_total_time"), "scripts/fuzz is bounded");
}

//! Tests of the test provider fixture itself (`tests/provider/server.mjs`
//! driven through `keyway_tests::provider`). Needs `npm ci --prefix tests/provider`.

use std::collections::HashMap;

use keyway_tests::provider::{ClientConfig, Consent, ProviderConfig, TestProvider};
use serde_json::Value;
use url::Url;

/// RFC 7636 appendix B: a verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const STATE: &str = "state-123";
const NONCE: &str = "nonce-456";

async fn provider() -> TestProvider {
    TestProvider::start(ProviderConfig::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn client() -> ClientConfig {
    ClientConfig::default()
}

fn authorization_url(provider: &TestProvider, scope: &str) -> String {
    let mut url = Url::parse(&provider.endpoint("authorization_endpoint").unwrap()).unwrap();
    let client = client();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", &client.redirect_uris[0])
        .append_pair("scope", scope)
        .append_pair("state", STATE)
        .append_pair("nonce", NONCE)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    url.to_string()
}

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn token_request(provider: &TestProvider, form: &[(&str, &str)]) -> (u16, Value) {
    let client = client();
    let response = http()
        .post(provider.endpoint("token_endpoint").unwrap())
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Signs alice in and exchanges the code; returns the token response.
async fn alice_tokens(provider: &TestProvider) -> Value {
    let redirect = provider
        .sign_in(
            &authorization_url(provider, "openid profile email offline_access"),
            "alice",
            "wonderland",
            Consent::Allow,
        )
        .await
        .unwrap();
    let params = query(&redirect);
    let (status, tokens) = token_request(
        provider,
        &[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", &client().redirect_uris[0]),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "token response: {tokens}");
    tokens
}

fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn discovery_advertises_what_keyway_needs() {
    let provider = provider().await;
    let d = provider.discovery();
    assert_eq!(d["issuer"], provider.issuer.as_str());
    assert!(!provider.issuer.ends_with('/'));
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(d["backchannel_logout_supported"], true);
    for endpoint in [
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
        "pushed_authorization_request_endpoint",
        "userinfo_endpoint",
    ] {
        let url = provider.endpoint(endpoint).unwrap();
        assert!(url.starts_with(&provider.issuer), "{endpoint}: {url}");
    }
    assert_eq!(d["require_pushed_authorization_requests"], Value::Null);
}

#[tokio::test]
async fn alice_signs_in_and_gets_tokens_with_claims() {
    let provider = provider().await;
    let redirect = provider
        .sign_in(
            &authorization_url(&provider, "openid profile email offline_access"),
            "alice",
            "wonderland",
            Consent::Allow,
        )
        .await
        .unwrap();
    assert!(
        redirect
            .as_str()
            .starts_with("http://127.0.0.1:8080/callback?"),
        "{redirect}"
    );
    let params = query(&redirect);
    assert_eq!(params["state"], STATE);
    assert_eq!(params["iss"], provider.issuer);
    assert!(!params["code"].is_empty());

    let (status, tokens) = token_request(
        &provider,
        &[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", &client().redirect_uris[0]),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens} {}", provider.stderr_log());
    for field in ["id_token", "access_token", "refresh_token"] {
        assert!(tokens[field].is_string(), "no {field} in {tokens}");
    }
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], "alice");
    assert_eq!(id["nonce"], NONCE);
    assert_eq!(id["name"], "Alice Liddell");
    assert_eq!(id["email"], "alice@example.com");
    assert_eq!(id["email_verified"], true);

    let userinfo: Value = http()
        .get(provider.endpoint("userinfo_endpoint").unwrap())
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["family_name"], "Liddell");

    let stats = provider.stats().await.unwrap();
    assert_eq!(stats["token_requests"]["authorization_code"], 1, "{stats}");

    let introspection = provider
        .introspect(&client(), tokens["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["sub"], "alice");
}

#[tokio::test]
async fn a_wrong_password_gives_no_code() {
    let provider = provider().await;
    let result = provider
        .sign_in(
            &authorization_url(&provider, "openid"),
            "alice",
            "not-wonderland",
            Consent::Allow,
        )
        .await;
    let error = result.expect_err("a wrong password must not sign in");
    assert!(error.contains("Invalid username or password"), "{error}");
}

#[tokio::test]
async fn deny_gives_access_denied() {
    let provider = provider().await;
    let redirect = provider
        .sign_in(
            &authorization_url(&provider, "openid profile"),
            "bob",
            "builder",
            Consent::Deny,
        )
        .await
        .unwrap();
    let params = query(&redirect);
    assert_eq!(params["error"], "access_denied", "{redirect}");
    assert_eq!(params["state"], STATE);
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn a_second_sign_in_reuses_the_provider_session() {
    let provider = provider().await;
    let browser = TestProvider::browser();
    let url = authorization_url(&provider, "openid profile");
    let first = provider
        .sign_in_with(&browser, &url, "user42", "pw-42", Consent::Allow)
        .await
        .unwrap();
    assert!(query(&first).contains_key("code"), "{first}");
    // The wrong password is never asked for: the session and grant are reused.
    let second = provider
        .sign_in_with(&browser, &url, "user42", "wrong", Consent::Deny)
        .await
        .unwrap();
    assert!(query(&second).contains_key("code"), "{second}");
}

#[tokio::test]
async fn revoking_the_account_kills_its_refresh_token() {
    let provider = provider().await;
    let tokens = alice_tokens(&provider).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    let (status, refreshed) = token_request(
        &provider,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");

    provider.revoke_account("alice").await.unwrap();
    let (status, error) = token_request(
        &provider,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"], "invalid_grant");
    let stats = provider.stats().await.unwrap();
    assert_eq!(stats["token_requests"]["refresh_token"], 2, "{stats}");
}

#[tokio::test]
async fn client_credentials_tokens_are_introspectable() {
    let provider = provider().await;
    let (status, tokens) = token_request(
        &provider,
        &[("grant_type", "client_credentials"), ("scope", "api")],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap();
    let introspection = provider.introspect(&client(), token).await.unwrap();
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["scope"], "api");
    let inactive = provider.introspect(&client(), "not-a-token").await.unwrap();
    assert_eq!(inactive["active"], false);
}

#[tokio::test]
async fn backchannel_logout_reaches_a_loopback_client() {
    // A tiny receiver for logout tokens on a free loopback port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let app = axum::Router::new().route(
        "/bff/backchannel-logout",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                ""
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = ClientConfig {
        redirect_uris: vec![format!("{base}/callback")],
        post_logout_redirect_uris: vec![format!("{base}/")],
        backchannel_logout_uri: Some(format!("{base}/bff/backchannel-logout")),
        ..ClientConfig::default()
    };
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client.clone()],
        access_token_ttl: 5,
        ..ProviderConfig::default()
    })
    .await
    .unwrap();

    let mut url = Url::parse(&provider.endpoint("authorization_endpoint").unwrap()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", &client.redirect_uris[0])
        .append_pair("scope", "openid")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let browser = TestProvider::browser();
    let redirect = provider
        .sign_in_with(&browser, url.as_str(), "bob", "builder", Consent::Allow)
        .await
        .unwrap();
    let code = query(&redirect)["code"].clone();
    let response = http()
        .post(provider.endpoint("token_endpoint").unwrap())
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &client.redirect_uris[0]),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["expires_in"], 5, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();

    // RP-initiated logout: the confirmation page, then its "yes" button.
    let mut end = Url::parse(&provider.endpoint("end_session_endpoint").unwrap()).unwrap();
    end.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair(
            "post_logout_redirect_uri",
            &client.post_logout_redirect_uris[0],
        );
    let page = browser.get(end).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"logout\""), "{page}");
    let action = page
        .split("action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let xsrf = page
        .split("name=\"xsrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let confirm = Url::parse(&provider.issuer).unwrap().join(action).unwrap();
    let response = browser
        .post(confirm)
        .form(&[("xsrf", xsrf), ("logout", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let location = response.headers()["location"].to_str().unwrap();
    assert_eq!(location, client.post_logout_redirect_uris[0]);

    let body = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("a logout token within 10 s")
        .unwrap();
    let logout_token = body.strip_prefix("logout_token=").expect(&body);
    let claims = jwt_claims(logout_token);
    assert_eq!(claims["sub"], "bob");
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    let stats = provider.stats().await.unwrap();
    assert_eq!(stats["backchannel_logouts_sent"], 1, "{stats}");
    assert_eq!(stats["backchannel_logouts_failed"], 0, "{stats}");
}

#[tokio::test]
async fn pushed_requests_keep_offline_access_and_get_a_refresh_token() {
    let provider = TestProvider::start(ProviderConfig {
        require_par: true,
        ..ProviderConfig::default()
    })
    .await
    .unwrap();
    let client = client();
    assert_eq!(
        provider.discovery()["require_pushed_authorization_requests"],
        true
    );

    // A plain front-channel request is refused when PAR is required.
    let refused = provider
        .sign_in(
            &authorization_url(&provider, "openid offline_access"),
            "alice",
            "wonderland",
            Consent::Allow,
        )
        .await
        .unwrap();
    assert_eq!(query(&refused)["error"], "invalid_request", "{refused}");

    let pushed: Value = http()
        .post(
            provider
                .endpoint("pushed_authorization_request_endpoint")
                .unwrap(),
        )
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(&[
            ("response_type", "code"),
            ("client_id", &client.client_id),
            ("redirect_uri", &client.redirect_uris[0]),
            ("scope", "openid email offline_access"),
            ("state", STATE),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request_uri = pushed["request_uri"].as_str().expect("a request_uri");
    let mut url = Url::parse(&provider.endpoint("authorization_endpoint").unwrap()).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client.client_id)
        .append_pair("request_uri", request_uri);
    let redirect = provider
        .sign_in(url.as_str(), "user7", "pw-7", Consent::Allow)
        .await
        .unwrap();
    let params = query(&redirect);
    assert_eq!(params["iss"], provider.issuer);
    let (status, tokens) = token_request(
        &provider,
        &[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", &client.redirect_uris[0]),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], "user7");
    assert_eq!(id["email"], "user7@example.com");
}

//! Several providers at once, the mix-up defence between them, the `github`
//! preset's plain OAuth 2.0 path (against a FAKE GitHub: GitHub cannot run
//! here), and PAR (RFC 9126) against the real oidc-provider.

use keyway_shared::CallbackRequest;
use keyway_tests::bff::json_of;
use keyway_tests::bff::{
    SpaClient, TestBff, callback_request, client_for, client_for_provider, env_for, reserve,
};
use keyway_tests::fake_github::FakeGitHub;
use keyway_tests::provider::{Consent, ProviderConfig, TestProvider};
use serde_json::json;
use std::collections::BTreeMap;

async fn start_login(spa: &SpaClient, provider: &str) -> String {
    let (s, body) = json_of(spa.post("/bff/login", &json!({"provider": provider})).await).await;
    assert_eq!(s, 200, "{body}");
    body["authorization_url"].as_str().unwrap().to_owned()
}

/// Two oidc-providers with different issuers, and a BFF offering both.
async fn two_providers() -> (TestProvider, TestProvider, TestBff) {
    let reserved = reserve().await;
    let cfg = |id: &str| ProviderConfig {
        clients: vec![client_for_provider(&reserved.origin, id)],
        ..ProviderConfig::default()
    };
    let a = TestProvider::start(cfg("alpha")).await.unwrap();
    let b = TestProvider::start(cfg("beta")).await.unwrap();
    let toml = format!(
        r#"
        [[providers]]
        id = "alpha"
        name = "Alpha SSO"
        issuer = "{}"
        client_id = "keyway"
        client_secret_env = "ALPHA_SECRET"
        [[providers]]
        id = "beta"
        name = "Beta SSO"
        issuer = "{}"
        client_id = "keyway"
        client_secret_env = "BETA_SECRET"
        "#,
        a.issuer, b.issuer
    );
    let mut env = env_for(&reserved.origin, "unused");
    env.remove("KEYWAY_ISSUER");
    env.remove("KEYWAY_CLIENT_ID");
    env.remove("KEYWAY_CLIENT_SECRET");
    env.remove("KEYWAY_SCOPES");
    env.insert("ALPHA_SECRET".into(), "keyway-secret".into());
    env.insert("BETA_SECRET".into(), "keyway-secret".into());
    let bff = TestBff::start_with_file(reserved, &toml, &env)
        .await
        .unwrap();
    (a, b, bff)
}

#[tokio::test]
async fn two_providers_each_sign_in() {
    let (a, b, bff) = two_providers().await;
    let spa = SpaClient::new(&bff);
    let (_, list) = json_of(spa.get("/bff/providers").await).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["id"], "alpha");
    assert_eq!(list[1]["name"], "Beta SSO");
    for (id, provider, user, name) in [
        ("alpha", &a, "alice", "Alice Liddell"),
        ("beta", &b, "bob", "Bob the Builder"),
    ] {
        let spa = SpaClient::new(&bff);
        let url = start_login(&spa, id).await;
        assert!(url.starts_with(&provider.issuer), "{url}");
        let password = if user == "alice" {
            "wonderland"
        } else {
            "builder"
        };
        let cb = spa
            .authorize(provider, &url, user, password, Consent::Allow)
            .await;
        let (s, body) = json_of(spa.callback_for(id, &cb).await).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["user"]["provider"], id);
        assert_eq!(body["user"]["name"], name);
    }
}

#[tokio::test]
async fn mix_up_code_and_iss_from_another_provider_are_refused() {
    let (a, b, bff) = two_providers().await;
    let spa = SpaClient::new(&bff);
    // The victim starts a login with alpha...
    let url_a = start_login(&spa, "alpha").await;
    let state_a = url::Url::parse(&url_a)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    // ...and a response of beta (code, iss) arrives with alpha's state.
    let url_b = start_login(&spa, "beta").await;
    let cb_b = spa
        .authorize(&b, &url_b, "bob", "builder", Consent::Allow)
        .await;
    assert_eq!(cb_b.iss.as_deref(), Some(b.issuer.as_str()));
    let before_a = a.stats().await.unwrap()["token_requests"]["authorization_code"]
        .as_u64()
        .unwrap_or(0);
    let mixed = CallbackRequest {
        state: Some(state_a.clone()),
        ..cb_b.clone()
    };
    // At beta's redirect URI (where beta sends it), alpha's state is refused.
    let (s, body) = json_of(spa.callback_for("beta", &mixed).await).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"], "provider_mismatch");
    // Posted to alpha's callback instead, iss says it is beta's response.
    let url_a = start_login(&spa, "alpha").await;
    let state_a = url::Url::parse(&url_a)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let mixed = CallbackRequest {
        state: Some(state_a.clone()),
        ..cb_b.clone()
    };
    let (s, body) = json_of(spa.callback_for("alpha", &mixed).await).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"], "issuer_mismatch");
    assert_eq!(
        a.stats().await.unwrap()["token_requests"]["authorization_code"]
            .as_u64()
            .unwrap_or(0),
        before_a,
        "beta's code was never sent to alpha"
    );
    // Forging iss to alpha's does not help: alpha does not know beta's code.
    let url_a = start_login(&spa, "alpha").await;
    let state_a = url::Url::parse(&url_a)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let forged = CallbackRequest {
        state: Some(state_a),
        iss: Some(a.issuer.clone()),
        ..cb_b
    };
    let (s, body) = json_of(spa.callback_for("alpha", &forged).await).await;
    assert_eq!(s, 502, "{body}");
    assert_eq!(body["error"], "token_exchange_failed");
    assert_eq!(
        spa.get("/bff/user").await.status(),
        401,
        "no session from a mix-up"
    );
}

async fn github_stack() -> (FakeGitHub, TestBff) {
    let reserved = reserve().await;
    let fake = FakeGitHub::start("Iv1.test", "gh-secret").await;
    let toml = format!(
        r#"
        [[providers]]
        id = "github"
        preset = "github"
        client_id = "Iv1.test"
        client_secret_env = "GH_SECRET"
        # The preset's endpoints, moved to the fake:
        authorization_endpoint = "{base}/login/oauth/authorize"
        token_endpoint = "{base}/login/oauth/access_token"
        userinfo_endpoint = "{base}/user"
        emails_endpoint = "{base}/user/emails"
        "#,
        base = fake.base
    );
    let mut env: BTreeMap<String, String> = env_for(&reserved.origin, "unused");
    for k in [
        "KEYWAY_ISSUER",
        "KEYWAY_CLIENT_ID",
        "KEYWAY_CLIENT_SECRET",
        "KEYWAY_SCOPES",
    ] {
        env.remove(k);
    }
    env.insert("GH_SECRET".into(), "gh-secret".into());
    let bff = TestBff::start_with_file(reserved, &toml, &env)
        .await
        .unwrap();
    (fake, bff)
}

/// Follows the fake's authorize redirect (no login page: it approves at once).
async fn fake_authorize(url: &str) -> CallbackRequest {
    let r = keyway_tests::provider::TestProvider::browser()
        .get(url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    callback_request(&url::Url::parse(&location).unwrap())
}

#[tokio::test]
async fn github_preset_signs_in_through_plain_oauth2() {
    let (fake, bff) = github_stack().await;
    let spa = SpaClient::new(&bff);
    let (_, list) = json_of(spa.get("/bff/providers").await).await;
    assert_eq!(list[0]["kind"], "oauth2");
    assert_eq!(list[0]["name"], "GitHub");
    assert_eq!(
        list[0]["preset"], "github",
        "the SPA shows the preset's icon"
    );
    let url = start_login(&spa, "github").await;
    let q: std::collections::HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(
        q["code_challenge_method"], "S256",
        "PKCE on plain OAuth 2.0 too"
    );
    assert!(!q.contains_key("nonce"));
    assert_eq!(q["scope"], "read:user user:email");
    let cb = fake_authorize(&url).await;
    assert!(cb.iss.is_none());
    let (s, body) = json_of(spa.callback(&cb).await).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["user"]["sub"], "583231", "sub from the numeric id");
    assert_eq!(body["user"]["name"], "The Octocat");
    assert_eq!(
        body["user"]["email"], "octocat@github.com",
        "the primary verified e-mail"
    );
    assert_eq!(body["user"]["email_verified"], true);
    let calls = fake.token_calls();
    assert_eq!(calls.len(), 1);
    assert!(
        calls[0]
            .accept
            .as_deref()
            .unwrap_or("")
            .contains("application/json"),
        "Keyway asks for JSON"
    );
    assert!(
        calls[0].client_authenticated && calls[0].pkce_ok,
        "{calls:?}"
    );
    let (s, info) = json_of(spa.get("/bff/userinfo").await).await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["login"], "octocat");
}

#[tokio::test]
async fn fake_github_answers_form_encoded_unless_json_is_asked() {
    // The fake must behave like GitHub for the preset test to mean anything.
    let fake = FakeGitHub::start("Iv1.test", "gh-secret").await;
    let r = reqwest::Client::new()
        .post(format!("{}/login/oauth/access_token", fake.base))
        .form(&[
            ("client_id", "Iv1.test"),
            ("client_secret", "gh-secret"),
            ("code", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    assert_eq!(r.text().await.unwrap(), "error=bad_verification_code");
}

#[tokio::test]
async fn an_iss_on_a_plain_oauth2_callback_is_a_mix_up() {
    let (_fake, bff) = github_stack().await;
    let spa = SpaClient::new(&bff);
    let url = start_login(&spa, "github").await;
    let cb = fake_authorize(&url).await;
    let with_iss = CallbackRequest {
        iss: Some("https://evil.example".into()),
        ..cb
    };
    let (s, body) = json_of(spa.callback(&with_iss).await).await;
    assert_eq!(s, 400);
    assert_eq!(body["error"], "issuer_mismatch");
}

#[tokio::test]
async fn par_pushes_the_request_and_sends_only_request_uri() {
    let reserved = reserve().await;
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&reserved.origin)],
        ..ProviderConfig::default()
    })
    .await
    .unwrap();
    assert!(provider.discovery()["pushed_authorization_request_endpoint"].is_string());
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_PAR".into(), "true".into());
    let bff = TestBff::start(reserved, &env).await.unwrap();
    let spa = SpaClient::new(&bff);
    let url = spa.start_login(Some("/par")).await;
    let q: std::collections::HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert!(q.contains_key("request_uri"), "{url}");
    assert_eq!(q.get("client_id").map(String::as_str), Some("keyway"));
    for absent in ["code_challenge", "state", "nonce", "redirect_uri", "scope"] {
        assert!(
            !q.contains_key(absent),
            "{absent} in the browser redirect: {url}"
        );
    }
    let cb = spa
        .authorize(&provider, &url, "alice", "wonderland", Consent::Allow)
        .await;
    let (s, body) = json_of(spa.callback(&cb).await).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["return_to"], "/par");
}

#[tokio::test]
async fn a_provider_that_requires_par_gets_it_without_the_switch() {
    let reserved = reserve().await;
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&reserved.origin)],
        require_par: true,
        ..ProviderConfig::default()
    })
    .await
    .unwrap();
    let env = env_for(&reserved.origin, &provider.issuer);
    let bff = TestBff::start(reserved, &env).await.unwrap();
    let spa = SpaClient::new(&bff);
    let url = spa.start_login(None).await;
    assert!(url.contains("request_uri="), "{url}");
    let cb = spa
        .authorize(&provider, &url, "alice", "wonderland", Consent::Allow)
        .await;
    assert_eq!(spa.callback(&cb).await.status(), 200);
}

/// The full mix-up attack of RFC 9700 §4.4 with an honest provider that
/// sends no `iss` (GitHub; here its FAKE) and a malicious configured one
/// (the LYING provider, standing for an attacker's authorization server).
/// The victim starts a login with the malicious provider; it sends the
/// victim on to GitHub with the victim's state; GitHub sends the victim's
/// code back to GitHub's own redirect URI. Keyway must refuse it there —
/// the pending login went to the other provider — before any code reaches
/// the attacker's token endpoint; nothing in the response (no `iss`) could
/// have told it otherwise. With one shared `/callback`, the code went to the
/// attacker's token endpoint.
#[tokio::test]
async fn mix_up_without_iss_is_refused_by_the_redirect_uri() {
    use keyway_tests::lying_provider::{Fault, LyingProvider};
    let reserved = reserve().await;
    let fake = FakeGitHub::start("Iv1.test", "gh-secret").await;
    let evil = LyingProvider::start(Fault::None).await;
    let toml = format!(
        r#"
        [[providers]]
        id = "evil"
        issuer = "{evil}"
        client_id = "keyway"
        client_secret_env = "EVIL_SECRET"
        scopes = ["openid"]
        [[providers]]
        id = "github"
        preset = "github"
        client_id = "Iv1.test"
        client_secret_env = "GH_SECRET"
        authorization_endpoint = "{base}/login/oauth/authorize"
        token_endpoint = "{base}/login/oauth/access_token"
        userinfo_endpoint = "{base}/user"
        emails_endpoint = "{base}/user/emails"
        "#,
        evil = evil.issuer,
        base = fake.base
    );
    let mut env: BTreeMap<String, String> = env_for(&reserved.origin, "unused");
    for k in [
        "KEYWAY_ISSUER",
        "KEYWAY_CLIENT_ID",
        "KEYWAY_CLIENT_SECRET",
        "KEYWAY_SCOPES",
    ] {
        env.remove(k);
    }
    env.insert("GH_SECRET".into(), "gh-secret".into());
    env.insert("EVIL_SECRET".into(), "keyway-secret".into());
    let origin = reserved.origin.clone();
    let bff = TestBff::start_with_file(reserved, &toml, &env)
        .await
        .unwrap();

    // The victim starts a login with the malicious provider.
    let victim = SpaClient::new(&bff);
    let url = start_login(&victim, "evil").await;
    let state = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    // The attacker sends the victim to GitHub with the victim's state and
    // Keyway's own client id and GitHub redirect URI.
    let mut at_github = url::Url::parse(&format!("{}/login/oauth/authorize", fake.base)).unwrap();
    at_github
        .query_pairs_mut()
        .append_pair("client_id", "Iv1.test")
        .append_pair("redirect_uri", &format!("{origin}callback/github"))
        .append_pair("response_type", "code")
        .append_pair("state", &state);
    let back = fake_authorize(at_github.as_str()).await;
    assert!(back.iss.is_none(), "GitHub sends no iss");
    assert_eq!(back.state.as_deref(), Some(state.as_str()));
    // GitHub's redirect URI is /callback/github: the SPA posts it there.
    let (s, body) = json_of(victim.callback_for("github", &back).await).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"], "provider_mismatch");
    // The plain /bff/callback names no provider: refused with several.
    let (s, body) = json_of(victim.callback(&back).await).await;
    assert_eq!(s, 400, "{body}");
    assert_ne!(body["error"], "invalid_request", "{body}");
    assert_eq!(
        evil.token_requests(),
        0,
        "the victim's code reached the attacker"
    );
    assert!(
        fake.token_calls().is_empty(),
        "no code was redeemed anywhere"
    );
    assert_eq!(victim.get("/bff/user").await.status(), 401, "no session");
}

/// Issue 15 item 7: the provider's `error_description` reaches the user only
/// once the state matched a pending login of this browser; any page that
/// sends the browser to `/callback?error=...&error_description=...` gets
/// `invalid_state` and its text is not repeated.
#[tokio::test]
async fn a_provider_error_is_shown_only_when_its_state_matched() {
    let (fake, bff) = github_stack().await;
    let _ = fake;
    let spa = SpaClient::new(&bff);
    let planted = "Your account is locked: call +1-555-0100 now";
    for state in [None, Some("made-up-state".to_owned())] {
        let forged = CallbackRequest {
            error: Some("access_denied".into()),
            error_description: Some(planted.into()),
            state,
            ..CallbackRequest::default()
        };
        let (s, body) = json_of(spa.callback(&forged).await).await;
        assert_eq!(s, 400, "{body}");
        assert_eq!(body["error"], "invalid_state", "{body}");
        assert!(!body.to_string().contains("555-0100"), "{body}");
    }
    // With the state of a login this browser started: the provider's words.
    let url = spa.start_login(None).await;
    let state = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned());
    let real = CallbackRequest {
        error: Some("access_denied".into()),
        error_description: Some("The user said no".into()),
        state,
        ..CallbackRequest::default()
    };
    let (s, body) = json_of(spa.callback(&real).await).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"], "access_denied");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("The user said no"),
        "{body}"
    );
}

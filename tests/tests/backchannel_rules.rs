//! Back-channel logout rules (issue 15, item 3; security checklist
//! "Session": back-channel logout tokens — signature, `iss`, `aud`, `iat`,
//! `exp`, `events`, no `nonce`, `typ` when present, and a `jti` accepted
//! once).
//!
//! - Against the LYING provider (`keyway_tests::lying_provider`), whose key
//!   signs whatever logout token a test asks for: each rule is shown by one
//!   token that breaks only that rule (`400 invalid_logout_token`, the
//!   session lives on) next to a control token that differs only there
//!   (`200`, the session is gone).
//! - Two `[[providers]]` at ONE real issuer with two client ids: the logout
//!   token the provider itself sends for one client ends that client's
//!   session and not the other's, both ways.
//! - Microsoft's templated multi-tenant issuer (`microsoft` preset, tenant
//!   `common`, against the FAKE preset hosts): a logout token from a tenant
//!   resolves to that provider.

use keyway_backend::{Builder, Config};
use keyway_tests::bff::{
    SpaClient, TestBff, assert_error, client_for_provider, env_for, json_of, reserve,
};
use keyway_tests::lying_provider::{LogoutTokenHeader, LyingProvider, SUBJECT, sign_logout_token};
use keyway_tests::presets::{FakePresetHosts, MICROSOFT_TENANT_ID};
use keyway_tests::provider::{ClientConfig, Consent, ProviderConfig, TestProvider};
use keyway_tests::wait::eventually;
use serde_json::{Value, json};
use std::time::Duration;

/// Posts `logout_token` as the provider does: a form, no CSRF header, no cookie.
async fn backchannel(bff: &TestBff, token: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(bff.url("/bff/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .expect("POST /bff/backchannel-logout");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// Asserts the contract's refusal of a logout token.
fn assert_invalid(status: u16, body: &str) {
    assert_eq!(status, 400, "the logout token was not refused: {body:?}");
    let body: Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON ({status}): {body}"));
    assert_error(status, &body, 400, "invalid_logout_token");
}

async fn user_status(spa: &SpaClient) -> u16 {
    spa.get("/bff/user").await.status().as_u16()
}

/// A lying provider (an honest one here: `Fault::None`) and a BFF on it.
async fn liar() -> (LyingProvider, TestBff) {
    let provider = LyingProvider::start(keyway_tests::lying_provider::Fault::None).await;
    let reserved = reserve().await;
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SCOPES".into(), "openid profile".into());
    let bff = TestBff::start(reserved, &env).await.expect("BFF starts");
    (provider, bff)
}

/// A browser signed in at the lying provider (as [`SUBJECT`]).
async fn signed_in(provider: &LyingProvider, bff: &TestBff) -> SpaClient {
    let spa = SpaClient::new(bff);
    let url = spa.start_login(None).await;
    let cb = provider.authorize(&url).await;
    let (status, body) = json_of(spa.callback(&cb).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(user_status(&spa).await, 200);
    spa
}

fn valid_claims(provider: &LyingProvider) -> Value {
    provider.logout_token_claims(Some(SUBJECT), None)
}

fn remove(mut claims: Value, member: &str) -> Value {
    claims.as_object_mut().expect("claims").remove(member);
    claims
}

/// Item 3: a logout token without `exp` is refused (Back-Channel Logout 1.0
/// §2.4 makes it required); the same token with `exp` ends the session.
#[tokio::test]
async fn a_logout_token_without_exp_is_refused() {
    let (provider, bff) = liar().await;
    let spa = signed_in(&provider, &bff).await;
    let header = LogoutTokenHeader::default();

    let no_exp = sign_logout_token(&remove(valid_claims(&provider), "exp"), &header);
    let (status, body) = backchannel(&bff, &no_exp).await;
    assert_invalid(status, &body);
    assert_eq!(user_status(&spa).await, 200, "the session must live on");

    let control = sign_logout_token(&valid_claims(&provider), &header);
    let (status, body) = backchannel(&bff, &control).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(user_status(&spa).await, 401, "the session is gone");
}

/// Item 3: `typ`, when present, must be `logout+jwt` (§2.4 recommends it so
/// that no other kind of JWT, e.g. an access token `at+jwt`, can be passed
/// off as a logout token); `logout+jwt` and no `typ` at all are accepted.
#[tokio::test]
async fn typ_must_be_logout_jwt_when_present() {
    let (provider, bff) = liar().await;
    let spa = signed_in(&provider, &bff).await;

    let at_jwt = sign_logout_token(
        &valid_claims(&provider),
        &LogoutTokenHeader::with_typ(Some("at+jwt")),
    );
    let (status, body) = backchannel(&bff, &at_jwt).await;
    assert_invalid(status, &body);
    assert_eq!(user_status(&spa).await, 200, "the session must live on");

    let logout_jwt = sign_logout_token(
        &valid_claims(&provider),
        &LogoutTokenHeader::with_typ(Some("logout+jwt")),
    );
    let (status, body) = backchannel(&bff, &logout_jwt).await;
    assert_eq!(status, 200, "typ logout+jwt: {body}");
    assert_eq!(user_status(&spa).await, 401);

    let spa = signed_in(&provider, &bff).await;
    let no_typ = sign_logout_token(&valid_claims(&provider), &LogoutTokenHeader::with_typ(None));
    let (status, body) = backchannel(&bff, &no_typ).await;
    assert_eq!(status, 200, "no typ: {body}");
    assert_eq!(user_status(&spa).await, 401);
}

/// Item 3: a `jti` is accepted once: the first delivery ends the session,
/// the same token again is `400` and ends nothing (not the user's new
/// session either).
#[tokio::test]
async fn the_same_jti_is_accepted_once() {
    let (provider, bff) = liar().await;
    let first = signed_in(&provider, &bff).await;
    let token = sign_logout_token(&valid_claims(&provider), &LogoutTokenHeader::default());

    let (status, body) = backchannel(&bff, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(user_status(&first).await, 401, "the session is gone");

    let again = signed_in(&provider, &bff).await;
    let (status, body) = backchannel(&bff, &token).await;
    assert_invalid(status, &body);
    assert_eq!(
        user_status(&again).await,
        200,
        "a replayed logout token ended the new session"
    );
}

/// Item 3: a logout token carrying a `nonce` is refused (§2.4: it must not,
/// so that an ID token can never be used as a logout token).
#[tokio::test]
async fn a_logout_token_with_a_nonce_is_refused() {
    let (provider, bff) = liar().await;
    let spa = signed_in(&provider, &bff).await;
    let mut claims = valid_claims(&provider);
    claims["nonce"] = json!("n-0S6_WzA2Mj");
    let with_nonce = sign_logout_token(&claims, &LogoutTokenHeader::default());
    let (status, body) = backchannel(&bff, &with_nonce).await;
    assert_invalid(status, &body);
    assert_eq!(user_status(&spa).await, 200, "the session must live on");

    let control = sign_logout_token(&valid_claims(&provider), &LogoutTokenHeader::default());
    let (status, body) = backchannel(&bff, &control).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(user_status(&spa).await, 401);
}

/// Item 3: two clients of ONE issuer (two `[[providers]]`, same issuer,
/// client ids `keyway-a` and `keyway-b`, both registered at one real test
/// provider with back-channel logout). Ending the provider session of one
/// client's user makes the provider send a logout token for that client's
/// audience: it ends that session and not the other's, and vice versa, and
/// the provider saw every delivery accepted.
#[tokio::test]
async fn two_clients_at_one_issuer_each_get_their_own_logouts() {
    let reserved = reserve().await;
    let client = |id: &str| ClientConfig {
        client_id: format!("keyway-{id}"),
        ..client_for_provider(&reserved.origin, id)
    };
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client("a"), client("b")],
        ..ProviderConfig::default()
    })
    .await
    .expect("provider");
    let toml = format!(
        r#"
        [[providers]]
        id = "a"
        issuer = "{issuer}"
        client_id = "keyway-a"
        client_secret_env = "SECRET"
        [[providers]]
        id = "b"
        issuer = "{issuer}"
        client_id = "keyway-b"
        client_secret_env = "SECRET"
        "#,
        issuer = provider.issuer
    );
    let mut env = env_for(&reserved.origin, "unused");
    for k in [
        "KEYWAY_ISSUER",
        "KEYWAY_CLIENT_ID",
        "KEYWAY_CLIENT_SECRET",
        "KEYWAY_SCOPES",
    ] {
        env.remove(k);
    }
    env.insert("SECRET".into(), "keyway-secret".into());
    let bff = TestBff::start_with_file(reserved, &toml, &env)
        .await
        .expect("BFF");

    // Each browser signs in with one client (its own provider session).
    let sign_in = |id: &'static str| {
        let bff = &bff;
        let provider = &provider;
        async move {
            let spa = SpaClient::new(bff);
            let (s, body) = json_of(spa.post("/bff/login", &json!({"provider": id})).await).await;
            assert_eq!(s, 200, "{body}");
            let url = body["authorization_url"].as_str().unwrap().to_owned();
            let cb = spa
                .authorize(provider, &url, "alice", "wonderland", Consent::Allow)
                .await;
            let (s, body) = json_of(spa.callback_for(id, &cb).await).await;
            assert_eq!(s, 200, "{body}");
            spa
        }
    };
    let stats = |key: &'static str| {
        let provider = &provider;
        async move { provider.stats().await.unwrap()[key].as_u64().unwrap_or(0) }
    };

    let on_a = sign_in("a").await;
    let on_b = sign_in("b").await;
    provider
        .end_session_with(&on_b.provider_browser, "keyway-b")
        .await
        .expect("end B's provider session");
    eventually(
        Duration::from_secs(10),
        "B's session ended by its logout token",
        || async { user_status(&on_b).await == 401 },
    )
    .await;
    assert_eq!(
        user_status(&on_a).await,
        200,
        "B's logout ended A's session"
    );
    assert!(stats("backchannel_logouts_sent").await >= 1);

    let on_b_again = sign_in("b").await;
    provider
        .end_session_with(&on_a.provider_browser, "keyway-a")
        .await
        .expect("end A's provider session");
    eventually(
        Duration::from_secs(10),
        "A's session ended by its logout token",
        || async { user_status(&on_a).await == 401 },
    )
    .await;
    assert_eq!(
        user_status(&on_b_again).await,
        200,
        "A's logout ended B's session"
    );
    assert!(stats("backchannel_logouts_sent").await >= 2);
    assert_eq!(
        stats("backchannel_logouts_failed").await,
        0,
        "the BFF refused a logout token of the provider"
    );
}

/// Item 3 (templated issuer): with the `microsoft` preset and tenant
/// `common` (issuer template `https://login.microsoftonline.com/{tenantid}/v2.0`),
/// a logout token from a tenant — `iss` that template with the token's own
/// `tid`, signed by the key the (FAKE) Entra JWKS publishes — resolves to
/// the provider and is accepted; the same token whose `iss` names another
/// tenant than its `tid` is refused.
#[tokio::test]
async fn a_templated_issuer_resolves_for_logout_tokens() {
    let fake = FakePresetHosts::start().await;
    let reserved = reserve().await;
    let mut env = env_for(&reserved.origin, "unused");
    env.remove("KEYWAY_ISSUER");
    env.remove("KEYWAY_SCOPES");
    env.insert("KEYWAY_PROVIDER".into(), "microsoft".into());
    env.insert("KEYWAY_PROVIDER_TENANT".into(), "common".into());
    env.insert("KEYWAY_CLIENT_ID".into(), "ms-client".into());
    env.insert(
        "KEYWAY_TLS_CA_FILE".into(),
        fake.ca_pem_path().display().to_string(),
    );
    let config = Config::from_sources(None, &env).expect("config");
    let bff = TestBff::start_built(reserved, Builder::new(config).http_client(fake.resolver()))
        .await
        .expect("BFF starts with the fake Entra discovery");

    let kid = fake.document("entra-common").expect("entra-common").kid();
    let header = LogoutTokenHeader {
        kid: Some(kid),
        ..LogoutTokenHeader::default()
    };
    let now = keyway_backend::internals::now_secs();
    let claims = |iss_tenant: &str, jti: &str| {
        json!({
            "iss": format!("https://login.microsoftonline.com/{iss_tenant}/v2.0"),
            "aud": "ms-client",
            "tid": MICROSOFT_TENANT_ID,
            "sub": "entra-user",
            "iat": now,
            "exp": now + 120,
            "jti": jti,
            "events": { keyway_tests::lying_provider::BACKCHANNEL_LOGOUT_EVENT: {} },
        })
    };

    let other_tenant = sign_logout_token(
        &claims("72f988bf-86f1-41af-91ab-2d7cd011db47", "entra-1"),
        &header,
    );
    let (status, body) = backchannel(&bff, &other_tenant).await;
    assert_invalid(status, &body);

    let own_tenant = sign_logout_token(&claims(MICROSOFT_TENANT_ID, "entra-2"), &header);
    let (status, body) = backchannel(&bff, &own_tenant).await;
    assert_eq!(status, 200, "the tenant's logout token: {body}");
}

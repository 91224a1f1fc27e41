//! Presets really load (issue 15, item 5): every provider preset, configured
//! as a user would (`KEYWAY_PROVIDER` and its parameters, nothing else),
//! loads its discovery from the FAKE preset hosts
//! (`keyway_tests::presets::FakePresetHosts`: each real provider's document
//! with its exact issuer, over TLS from a test CA) and reaches a login URL:
//! `/readyz` is 200, `POST /bff/login` is 200, and the authorization URL is
//! the document's `authorization_endpoint` with the parameters of an
//! authorization code request with PKCE. GitHub (plain OAuth 2.0, no
//! discovery) reaches its fixed authorize URL.
//!
//! Auth0 is the case that failed before the fix: its issuer ends with a
//! slash (`https://acme.eu.auth0.com/`), and OpenID Connect compares issuers
//! as strings.

use keyway_backend::{Builder, Config};
use keyway_tests::bff::{TestBff, env_for, json_of, reserve};
use keyway_tests::presets::{
    AUTH0_DOMAIN, FakePresetHosts, KEYCLOAK_BASE, KEYCLOAK_REALM, MICROSOFT_TENANT_ID, OKTA_DOMAIN,
};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use url::Url;

const CLIENT_ID: &str = "preset-client";

/// A BFF with one provider, the preset `preset` with `params`
/// (`KEYWAY_PROVIDER_*` variables), whose outbound client resolves the fake
/// hosts and trusts the fake's CA.
async fn bff_for(fake: &FakePresetHosts, preset: &str, params: &[(&str, &str)]) -> TestBff {
    let reserved = reserve().await;
    let mut env = env_for(&reserved.origin, "unused");
    env.remove("KEYWAY_ISSUER");
    env.remove("KEYWAY_SCOPES");
    env.insert("KEYWAY_PROVIDER".into(), preset.into());
    env.insert("KEYWAY_CLIENT_ID".into(), CLIENT_ID.into());
    env.insert(
        "KEYWAY_TLS_CA_FILE".into(),
        fake.ca_pem_path().display().to_string(),
    );
    for (k, v) in params {
        env.insert((*k).into(), (*v).into());
    }
    let config = Config::from_sources(None, &env).unwrap_or_else(|e| panic!("{preset}: {e}"));
    TestBff::start_built(reserved, Builder::new(config).http_client(fake.resolver()))
        .await
        .unwrap_or_else(|e| panic!("{preset} {params:?}: the BFF did not become ready: {e}"))
}

/// `POST /bff/login`: 200 and the authorization URL.
async fn login_url(bff: &TestBff) -> Url {
    let r = reqwest::Client::new()
        .post(bff.url("/bff/login"))
        .header("x-csrf", "1")
        .json(&json!({}))
        .send()
        .await
        .expect("POST /bff/login");
    let (status, body) = json_of(r).await;
    assert_eq!(status, 200, "{body}");
    Url::parse(
        body["authorization_url"]
            .as_str()
            .expect("authorization_url"),
    )
    .expect("a URL")
}

fn query(url: &Url) -> HashMap<String, String> {
    let mut q = HashMap::new();
    for (k, v) in url.query_pairs() {
        assert!(
            q.insert(k.clone().into_owned(), v.into_owned()).is_none(),
            "{k} twice in {url}"
        );
    }
    q
}

fn without_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

/// The parameters every authorization code request with PKCE carries.
fn assert_code_request(bff: &TestBff, q: &HashMap<String, String>, scopes: &[&str]) {
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], bff.url("/callback"));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43, "S256 challenge: {q:?}");
    assert!(q["state"].len() >= 16, "state: {q:?}");
    let got: BTreeSet<&str> = q["scope"].split(' ').collect();
    let want: BTreeSet<&str> = scopes.iter().copied().collect();
    assert_eq!(got, want, "scope");
}

/// An OpenID Connect preset: discovery loaded from the fake's document
/// `document`, and a login URL at its `authorization_endpoint`.
async fn oidc_preset_reaches_login(preset: &str, params: &[(&str, &str)], document: &str) {
    let fake = FakePresetHosts::start().await;
    let doc = fake.document(document).expect("document").clone();
    let bff = bff_for(&fake, preset, params).await;
    let discovery = Url::parse(&doc.discovery_url).unwrap();
    assert!(
        fake.requests_at(discovery.host_str().unwrap(), discovery.path()) >= 1,
        "{preset}: discovery was not fetched from {discovery}"
    );
    let url = login_url(&bff).await;
    assert_eq!(
        without_query(&url),
        doc.document["authorization_endpoint"].as_str().unwrap(),
        "{preset}: {url}"
    );
    let q = query(&url);
    assert_code_request(&bff, &q, &["openid", "profile", "email"]);
    assert!(q["nonce"].len() >= 16, "OIDC nonce: {q:?}");
}

/// Google: issuer `https://accounts.google.com` (no slash), JWKS on another host.
#[tokio::test]
async fn google_reaches_a_login_url() {
    oidc_preset_reaches_login("google", &[], "google").await;
}

/// Microsoft `common`: a templated issuer (`{tenantid}`).
#[tokio::test]
async fn microsoft_common_reaches_a_login_url() {
    oidc_preset_reaches_login(
        "microsoft",
        &[("KEYWAY_PROVIDER_TENANT", "common")],
        "entra-common",
    )
    .await;
}

/// Microsoft with a tenant id: a plain issuer naming the tenant.
#[tokio::test]
async fn microsoft_tenant_reaches_a_login_url() {
    oidc_preset_reaches_login(
        "microsoft",
        &[("KEYWAY_PROVIDER_TENANT", MICROSOFT_TENANT_ID)],
        "entra-tenant",
    )
    .await;
}

/// GitLab.com (the default base URL).
#[tokio::test]
async fn gitlab_reaches_a_login_url() {
    oidc_preset_reaches_login("gitlab", &[], "gitlab").await;
}

/// Keycloak: base URL and realm.
#[tokio::test]
async fn keycloak_reaches_a_login_url() {
    oidc_preset_reaches_login(
        "keycloak",
        &[
            ("KEYWAY_PROVIDER_BASE_URL", KEYCLOAK_BASE),
            ("KEYWAY_PROVIDER_REALM", KEYCLOAK_REALM),
        ],
        "keycloak",
    )
    .await;
}

/// Auth0: a domain; the issuer ends with `/` — the case that failed before
/// the fix (the slash was trimmed, and the document's issuer then differed).
#[tokio::test]
async fn auth0_reaches_a_login_url() {
    oidc_preset_reaches_login(
        "auth0",
        &[("KEYWAY_PROVIDER_DOMAIN", AUTH0_DOMAIN)],
        "auth0",
    )
    .await;
}

/// Okta: the org authorization server (domain only).
#[tokio::test]
async fn okta_org_reaches_a_login_url() {
    oidc_preset_reaches_login(
        "okta",
        &[("KEYWAY_PROVIDER_DOMAIN", OKTA_DOMAIN)],
        "okta-org",
    )
    .await;
}

/// Okta: a custom authorization server (`default`).
#[tokio::test]
async fn okta_custom_authorization_server_reaches_a_login_url() {
    oidc_preset_reaches_login(
        "okta",
        &[
            ("KEYWAY_PROVIDER_DOMAIN", OKTA_DOMAIN),
            ("KEYWAY_PROVIDER_AUTHORIZATION_SERVER", "default"),
        ],
        "okta-default",
    )
    .await;
}

/// GitHub: plain OAuth 2.0 (nothing to discover), its own authorize URL and
/// scopes, PKCE, no nonce.
#[tokio::test]
async fn github_reaches_a_login_url() {
    let fake = FakePresetHosts::start().await;
    let bff = bff_for(&fake, "github", &[]).await;
    let url = login_url(&bff).await;
    assert_eq!(
        without_query(&url),
        "https://github.com/login/oauth/authorize"
    );
    let q = query(&url);
    assert_code_request(&bff, &q, &["read:user", "user:email"]);
    assert!(!q.contains_key("nonce"), "no nonce for plain OAuth 2.0");
}

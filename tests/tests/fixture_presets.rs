//! Tests of the FAKE preset discovery hosts (`keyway_tests::presets`): over
//! TLS with a test CA, every document is served on its own host and path
//! only, with the issuer string exactly as the real provider publishes it.

use std::collections::BTreeSet;

use keyway_tests::presets::{FakePresetHosts, MICROSOFT_TENANT_ID};
use serde_json::Value;
use url::Url;

/// The discovery URL and exact issuer of every preset, written out by hand
/// (not taken from the fixture's table) so a typo there fails here.
const EXPECTED: &[(&str, &str, &str)] = &[
    (
        "google",
        "https://accounts.google.com/.well-known/openid-configuration",
        "https://accounts.google.com",
    ),
    (
        "entra-common",
        "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration",
        "https://login.microsoftonline.com/{tenantid}/v2.0",
    ),
    (
        "entra-organizations",
        "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration",
        "https://login.microsoftonline.com/{tenantid}/v2.0",
    ),
    (
        "entra-consumers",
        "https://login.microsoftonline.com/consumers/v2.0/.well-known/openid-configuration",
        "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
    ),
    (
        "entra-tenant",
        "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0/.well-known/openid-configuration",
        "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
    ),
    (
        "gitlab",
        "https://gitlab.com/.well-known/openid-configuration",
        "https://gitlab.com",
    ),
    (
        "keycloak",
        "https://sso.example.com/realms/main/.well-known/openid-configuration",
        "https://sso.example.com/realms/main",
    ),
    (
        "auth0",
        "https://acme.eu.auth0.com/.well-known/openid-configuration",
        "https://acme.eu.auth0.com/",
    ),
    (
        "okta-org",
        "https://acme.okta.com/.well-known/openid-configuration",
        "https://acme.okta.com",
    ),
    (
        "okta-default",
        "https://acme.okta.com/oauth2/default/.well-known/openid-configuration",
        "https://acme.okta.com/oauth2/default",
    ),
];

async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn every_document_is_served_with_its_exact_issuer_and_a_jwks() {
    let fake = FakePresetHosts::start().await;
    let client = fake.client();
    assert_eq!(fake.documents().len(), EXPECTED.len());

    for (name, discovery_url, issuer) in EXPECTED {
        let preset = fake.document(name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(preset.discovery_url, *discovery_url);

        let (status, body) = get(&client, discovery_url).await;
        assert_eq!(status, 200, "{discovery_url}: {body}");
        let document: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(document["issuer"], *issuer, "{name}");
        assert_eq!(preset.issuer, *issuer);

        for member in [
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
        ] {
            let url = document[member]
                .as_str()
                .unwrap_or_else(|| panic!("{name} has no {member}"));
            assert!(url.starts_with("https://"), "{name} {member}: {url}");
        }
        for member in [
            "response_types_supported",
            "subject_types_supported",
            "id_token_signing_alg_values_supported",
        ] {
            assert!(
                document[member].as_array().is_some_and(|a| !a.is_empty()),
                "{name} has no {member}"
            );
        }
        assert!(
            document["response_types_supported"]
                .as_array()
                .unwrap()
                .contains(&Value::from("code")),
            "{name}"
        );
        assert!(
            document["id_token_signing_alg_values_supported"]
                .as_array()
                .unwrap()
                .contains(&Value::from("RS256")),
            "{name}"
        );

        let (status, body) = get(&client, document["jwks_uri"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{name} JWKS: {body}");
        let jwks: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(jwks["keys"][0]["kid"], preset.kid().as_str());
        assert_eq!(jwks["keys"][0]["kty"], "RSA");
    }
    assert_eq!(fake.requests("/.well-known/openid-configuration"), 4);
    assert_eq!(
        fake.requests_at("acme.okta.com", "/.well-known/openid-configuration"),
        1
    );
}

#[tokio::test]
async fn issuers_keep_each_providers_quirks() {
    let fake = FakePresetHosts::start().await;
    let issuer = |name: &str| fake.document(name).unwrap().issuer.clone();
    assert!(!issuer("google").ends_with('/'));
    assert!(!issuer("gitlab").ends_with('/'));
    assert!(issuer("auth0").ends_with('/'), "Auth0's issuer ends with /");
    assert!(issuer("entra-common").contains("{tenantid}"));
    assert!(issuer("entra-tenant").contains(MICROSOFT_TENANT_ID));
    // The tenant-specific document's endpoints name the tenant; the common
    // one's name `common`.
    let tenant = &fake.document("entra-tenant").unwrap().document;
    assert!(
        tenant["token_endpoint"]
            .as_str()
            .unwrap()
            .contains(MICROSOFT_TENANT_ID)
    );
    let common = &fake.document("entra-common").unwrap().document;
    assert_eq!(
        common["token_endpoint"],
        "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    );
    // Microsoft publishes no PKCE methods; the others do.
    assert!(common.get("code_challenge_methods_supported").is_none());
    for name in ["google", "gitlab", "keycloak", "auth0", "okta-org"] {
        let methods = &fake.document(name).unwrap().document["code_challenge_methods_supported"];
        assert!(
            methods.as_array().unwrap().contains(&Value::from("S256")),
            "{name}"
        );
    }
    // Auth0 and Keycloak advertise HS256 for ID tokens; Google does not.
    for (name, hs256) in [("auth0", true), ("keycloak", true), ("google", false)] {
        let algs = &fake.document(name).unwrap().document["id_token_signing_alg_values_supported"];
        assert_eq!(
            algs.as_array().unwrap().contains(&Value::from("HS256")),
            hs256,
            "{name}"
        );
    }
    // Google's JWKS lives on another host than its issuer.
    assert_eq!(
        fake.document("google").unwrap().jwks_uri,
        "https://www.googleapis.com/oauth2/v3/certs"
    );
}

#[tokio::test]
async fn a_document_is_served_for_its_own_host_only() {
    let fake = FakePresetHosts::start().await;
    let client = fake.client();
    // Each discovery path asked of every other host: 404.
    for preset in fake.documents() {
        let url = Url::parse(&preset.discovery_url).unwrap();
        let own = url.host_str().unwrap();
        for host in fake.hosts().iter().filter(|h| h.as_str() != own) {
            let mut elsewhere = url.clone();
            elsewhere.set_host(Some(host)).unwrap();
            let (status, _) = get(&client, elsewhere.as_str()).await;
            // Google, GitLab, Auth0 and the Okta org share the root path:
            // those hosts answer their own document.
            let shared_path = fake.documents().iter().any(|d| {
                let other = Url::parse(&d.discovery_url).unwrap();
                other.host_str() == Some(host.as_str()) && other.path() == url.path()
            });
            let expected = if shared_path { 200 } else { 404 };
            assert_eq!(status, expected, "{elsewhere}");
        }
    }
    // Routing is by the Host header: on a connection made for gitlab.com,
    // `Host: unknown.example` gets 404, `Host: sso.example.com` Keycloak's.
    let keycloak_path = "https://gitlab.com/realms/main/.well-known/openid-configuration";
    for (host, expected) in [("unknown.example", 404), ("sso.example.com", 200)] {
        let response = client
            .get(keycloak_path)
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "Host: {host}");
    }
    // A name the certificate does not hold is refused before any HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let by_ip = fake
        .ca()
        .client()
        .get(format!(
            "https://127.0.0.1:{}/.well-known/openid-configuration",
            fake.addr().port()
        ))
        .send()
        .await;
    assert!(by_ip.is_err(), "the certificate does not name 127.0.0.1");
    // Unknown paths on a served host.
    let (status, _) = get(&client, "https://accounts.google.com/o/oauth2/v2/auth").await;
    assert_eq!(status, 404);
    assert!(fake.requests("/o/oauth2/v2/auth") >= 1);
}

#[tokio::test]
async fn the_hosts_cover_every_endpoint_and_the_certificate_names_them() {
    let fake = FakePresetHosts::start().await;
    let hosts: BTreeSet<&str> = fake.hosts().iter().map(String::as_str).collect();
    for preset in fake.documents() {
        for value in preset.document.as_object().unwrap().values() {
            if let Some(url) = value.as_str().filter(|v| v.starts_with("https://")) {
                let host = Url::parse(url).unwrap().host_str().unwrap().to_owned();
                assert!(hosts.contains(host.as_str()), "{host} of {url}");
            }
        }
    }
    assert_eq!(fake.certificate().names(), fake.hosts());
    assert!(std::fs::read_to_string(fake.ca_pem_path()).unwrap() == fake.ca_pem());

    // A client that resolves the hosts but does not trust the CA is refused.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let untrusting = fake
        .hosts()
        .iter()
        .fold(reqwest::Client::builder().no_proxy(), |b, h| {
            b.resolve(h, fake.addr())
        })
        .build()
        .unwrap();
    assert!(
        untrusting
            .get("https://gitlab.com/.well-known/openid-configuration")
            .send()
            .await
            .is_err()
    );
    assert_eq!(
        fake.requests_at("gitlab.com", "/.well-known/openid-configuration"),
        0,
        "no request got through"
    );
}

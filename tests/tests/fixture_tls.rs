//! Tests of the run-time test CA (`keyway_tests::tls`): its certificates are
//! trusted by a client that trusts the CA, for exactly the names they were
//! issued for, and by nobody else.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use keyway_tests::tls::{TestCa, TlsListener};

/// Serves `GET /hello` over TLS with a leaf for `names` on a free loopback
/// port; returns the address (the server ends with the test's runtime).
async fn hello_server(ca: &TestCa, names: &[&str]) -> SocketAddr {
    let leaf = ca.leaf(names);
    let listener = TlsListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), leaf.server_config())
        .await
        .expect("bind");
    let addr = listener.addr();
    let app = Router::new().route("/hello", get(|| async { "hello over tls" }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[test]
fn pem_strings_and_files_agree() {
    let ca = TestCa::new();
    assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        std::fs::read_to_string(ca.ca_pem_path()).unwrap(),
        ca.ca_pem()
    );
    let leaf = ca.leaf(&["localhost", "127.0.0.1", "accounts.google.com"]);
    assert_eq!(
        leaf.names(),
        ["localhost", "127.0.0.1", "accounts.google.com"]
    );
    assert_eq!(
        std::fs::read_to_string(leaf.cert_path()).unwrap(),
        leaf.cert_pem()
    );
    assert_eq!(
        std::fs::read_to_string(leaf.key_path()).unwrap(),
        leaf.key_pem()
    );
    assert!(leaf.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_ne!(leaf.cert_pem(), ca.ca_pem());
    // A second leaf gets its own files.
    let other = ca.leaf(&["localhost"]);
    assert_ne!(other.cert_path(), leaf.cert_path());
}

#[test]
fn the_files_outlive_the_ca_while_a_leaf_is_held() {
    let ca = TestCa::new();
    let leaf = ca.leaf(&["127.0.0.1"]);
    let ca_path = ca.ca_pem_path().to_owned();
    drop(ca);
    assert!(leaf.cert_path().is_file());
    assert!(ca_path.is_file());
    let cert_path = leaf.cert_path().to_owned();
    drop(leaf);
    assert!(
        !cert_path.exists(),
        "the temporary files are removed at last"
    );
}

#[tokio::test]
async fn a_client_trusting_the_ca_connects_by_ip_and_by_dns_name() {
    let ca = TestCa::new();
    let addr = hello_server(&ca, &["127.0.0.1", "localhost", "accounts.google.com"]).await;

    let by_ip = ca
        .client()
        .get(format!("https://127.0.0.1:{}/hello", addr.port()))
        .send()
        .await
        .expect("https by IP");
    assert_eq!(by_ip.status(), 200);
    assert_eq!(by_ip.text().await.unwrap(), "hello over tls");

    let google = ca
        .client_builder()
        .resolve("accounts.google.com", addr)
        .build()
        .unwrap();
    let by_name = google
        .get("https://accounts.google.com/hello")
        .send()
        .await
        .expect("https by a resolved DNS name");
    assert_eq!(by_name.status(), 200);
}

#[tokio::test]
async fn clients_that_do_not_trust_the_ca_are_refused() {
    let ca = TestCa::new();
    let addr = hello_server(&ca, &["127.0.0.1"]).await;
    let url = format!("https://127.0.0.1:{}/hello", addr.port());

    // Trusting another test CA only.
    let stranger = TestCa::new();
    let error = stranger
        .client()
        .get(&url)
        .send()
        .await
        .expect_err("a certificate of an unknown CA is refused");
    assert!(error.is_connect(), "{error:?}");

    // The platform's trust store (reqwest's default).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let default = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(default.get(&url).send().await.is_err());
}

#[tokio::test]
async fn a_certificate_is_refused_for_a_name_it_was_not_issued_for() {
    let ca = TestCa::new();
    let addr = hello_server(&ca, &["accounts.google.com"]).await;
    let client = ca
        .client_builder()
        .resolve("gitlab.com", addr)
        .build()
        .unwrap();
    let error = client
        .get("https://gitlab.com/hello")
        .send()
        .await
        .expect_err("a name mismatch is refused");
    assert!(error.is_connect(), "{error:?}");
}

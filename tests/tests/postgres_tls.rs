//! The PostgreSQL store over TLS (`sslmode` in the URL, as sqlx reads it),
//! against a real server started with a certificate from the tests' CA.

use keyway_backend::internals::Sessions;
use keyway_backend::{SessionSettings, StoreSetting};
use keyway_tests::postgres::{PASSWORD, PgServer};
use keyway_tests::store_suite::{key_a, sample_session, settings};
use keyway_tests::tls::TestCa;

fn settings_for(url: &str) -> SessionSettings {
    SessionSettings {
        store: StoreSetting::parse(url).unwrap(),
        ..settings(vec![key_a()])
    }
}

fn verify_full_url(pg: &PgServer, ca: &TestCa) -> String {
    format!(
        "postgres://keyway:{PASSWORD}@127.0.0.1:{}/keyway?sslmode=verify-full&sslrootcert={}",
        pg.port(),
        ca.ca_pem_path().display()
    )
}

/// Keyway's connections of this server other than `psql`'s own, by whether
/// they use TLS: `(tls, plain)`.
fn keyway_connections(pg: &PgServer) -> (u32, u32) {
    let count = |tls: bool| {
        pg.psql(&format!(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE s.ssl = {tls} AND a.usename = 'keyway' AND a.pid <> pg_backend_pid() \
             AND a.backend_type = 'client backend'"
        ))
        .unwrap()
        .parse()
        .unwrap()
    };
    (count(true), count(false))
}

/// `sslmode=verify-full` with the server's CA: the schema is applied, a
/// session is written and read back, and every connection Keyway holds is
/// TLS (`pg_stat_ssl`).
#[tokio::test]
async fn verify_full_with_the_servers_ca_serves_over_tls_only() {
    let ca = TestCa::new();
    let pg = PgServer::start_with_tls(&ca.leaf(&["127.0.0.1", "localhost"]))
        .await
        .unwrap();
    let sessions = Sessions::open(&settings_for(&verify_full_url(&pg, &ca)))
        .await
        .expect("opens over TLS");
    assert!(sessions.ping().await, "ready over TLS");
    let created = sessions.create(sample_session("alice")).await.unwrap();
    let loaded = sessions
        .load(&created.id.to_string())
        .await
        .unwrap()
        .expect("the session is read back");
    assert_eq!(loaded.data.identity.sub, "alice");
    let (tls, plain) = keyway_connections(&pg);
    assert!(tls >= 1, "Keyway holds TLS connections: {tls}");
    assert_eq!(plain, 0, "no connection of Keyway's is in the clear");
}

/// A server whose certificate another CA issued is never trusted: start-up
/// stops with a clear message (without the password) and nothing is written.
#[tokio::test]
async fn verify_full_refuses_a_certificate_of_another_ca() {
    let ca = TestCa::new();
    let other = TestCa::new();
    let pg = PgServer::start_with_tls(&ca.leaf(&["127.0.0.1", "localhost"]))
        .await
        .unwrap();
    let e = Sessions::open(&settings_for(&verify_full_url(&pg, &other)))
        .await
        .expect_err("an untrusted server stops start-up (retrying would not help)");
    assert!(e.contains("PostgreSQL refused"), "{e}");
    assert!(!e.contains(PASSWORD), "{e}");
    assert_eq!(
        pg.psql(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = '_sqlx_migrations'"
        )
        .unwrap(),
        "0",
        "the schema was never applied through an untrusted connection"
    );
}

/// `sslmode=require` against a server without TLS does not fall back to a
/// plain connection: start-up stops.
#[tokio::test]
async fn require_refuses_a_server_without_tls() {
    let pg = PgServer::start().await.unwrap();
    let url = format!("{}?sslmode=require", pg.url());
    let e = Sessions::open(&settings_for(&url))
        .await
        .expect_err("a server without TLS stops start-up");
    assert!(e.contains("PostgreSQL refused"), "{e}");
    assert!(!e.contains(PASSWORD), "{e}");
    let (tls, plain) = keyway_connections(&pg);
    assert_eq!((tls, plain), (0, 0), "no connection was made in the clear");
}

//! `GET /metrics`: the counters move with real logins, refreshes, proxied
//! requests, revocations and back-channel logouts, and two BFFs in one
//! process (each with its own recorder) never see each other's counts.

use keyway_tests::bff::{SpaClient, TestBff, client_for, env_for, reserve, stack};
use keyway_tests::provider::{ProviderConfig, TestProvider};
use keyway_tests::upstream::Upstream;
use std::time::{Duration, Instant};

/// The value of one series (`name{labels}` exactly as rendered), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn scrape(bff: &TestBff) -> String {
    let r = reqwest::get(bff.url("/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.expect("text")
}

#[tokio::test]
async fn metrics_follow_logins_refreshes_proxy_and_logouts() {
    let reserved = reserve().await;
    let client = client_for(&reserved.origin);
    // Access tokens of 4 s: with the skew capped at half the lifetime, a
    // refresh happens within about 2 s.
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client.clone()],
        access_token_ttl: 4,
        ..ProviderConfig::default()
    })
    .await
    .expect("provider");
    let introspection = provider.endpoint("introspection_endpoint").unwrap();
    let upstream = Upstream::start(&introspection, &client.client_id, &client.client_secret).await;
    let toml = format!(
        "[[apis]]\nname = \"orders\"\nurl = \"{}/v1\"\n",
        upstream.base
    );
    let env = env_for(&reserved.origin, &provider.issuer);
    let bff = TestBff::start_with_file(reserved, &toml, &env)
        .await
        .expect("BFF");
    let (_other_provider, other_bff) = stack().await;

    let before = scrape(&bff).await;
    let started = r#"keyway_logins_total{provider="default",outcome="started",kind="interactive"}"#;
    let completed =
        r#"keyway_logins_total{provider="default",outcome="completed",kind="interactive"}"#;
    assert_eq!(value(&before, started), Some(0.0), "{before}");
    assert!(
        before.contains("# TYPE keyway_proxy_request_duration_seconds histogram"),
        "{before}"
    );

    // A refused callback (no pending login): failed, under its reason.
    let spa = SpaClient::new(&bff);
    let r = spa
        .post(
            "/bff/callback",
            &serde_json::json!({"code": "c", "state": "nope"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    // A provider error code made up by the caller (for a pending login of
    // this browser, with its state) is counted as provider_error.
    let url = spa.start_login(None).await;
    let state = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let r = spa
        .post(
            "/bff/callback",
            &serde_json::json!({"error": "made_up_code_42", "state": state}),
        )
        .await;
    assert_eq!(r.status(), 400);

    // A login.
    let r = spa.login(&provider, "alice", "wonderland").await;
    assert_eq!(r.status(), 200);
    // Proxied requests: one to a configured API, one to an unknown one.
    let r = spa
        .http
        .get(bff.url("/bff/api/orders/items"))
        .header("x-csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = spa
        .http
        .get(bff.url("/bff/api/nosuch/items"))
        .header("x-csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let text = scrape(&bff).await;
    assert_eq!(value(&text, started), Some(2.0), "{text}");
    assert_eq!(value(&text, completed), Some(1.0), "{text}");
    assert_eq!(
        value(
            &text,
            r#"keyway_logins_total{provider="unknown",outcome="failed",kind="unknown"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"keyway_logins_total{provider="default",outcome="failed",kind="interactive"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"keyway_login_failures_total{provider="unknown",reason="invalid_state"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"keyway_login_failures_total{provider="default",reason="provider_error"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains("made_up_code_42"), "{text}");
    assert_eq!(
        value(
            &text,
            r#"keyway_proxy_requests_total{api="orders",status="200"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"keyway_proxy_request_duration_seconds_count{api="orders"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("nosuch"),
        "an unknown API made a series: {text}"
    );
    assert_eq!(value(&text, "keyway_sessions_active"), Some(1.0), "{text}");

    // The refresh: poll the API until the BFF has refreshed (bounded).
    let refreshed = r#"keyway_refreshes_total{provider="default",outcome="succeeded"}"#;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = spa
            .http
            .get(bff.url("/bff/api/orders/again"))
            .header("x-csrf", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        if value(&scrape(&bff).await, refreshed) == Some(1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "no refresh was counted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A back-channel logout with a garbage token.
    let r = reqwest::Client::new()
        .post(bff.url("/bff/backchannel-logout"))
        .form(&[("logout_token", "not.a.jwt")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Logout revokes the refresh and the access token.
    let r = spa.post("/bff/logout", &serde_json::json!({})).await;
    assert_eq!(r.status(), 200);

    let text = scrape(&bff).await;
    assert_eq!(
        value(
            &text,
            r#"keyway_backchannel_logouts_total{outcome="invalid"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"keyway_revocations_total{provider="default",outcome="succeeded"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(value(&text, "keyway_sessions_active"), Some(0.0), "{text}");

    // The other BFF in this process counted none of it.
    let other = scrape(&other_bff).await;
    assert_eq!(value(&other, started), Some(0.0), "{other}");
    assert!(!other.contains("outcome=\"failed\"} 2"), "{other}");
    assert!(!other.contains("keyway_revocations_total"), "{other}");
}

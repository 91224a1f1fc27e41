//! Step-up at login against a LYING provider (`keyway_tests::lying_provider`):
//! an ID token whose `acr` is lower than the `acr_values` asked for, or whose
//! `auth_time` is older than `max_age` plus the clock skew, is refused with
//! `400 invalid_id_token` and no session, and the log names the check. The
//! control cases (the fixture's honest answer, an `auth_time` past `max_age`
//! but within the skew, a lower `acr` when none was asked or the provider's
//! `acr` is advisory) prove each refusal is due to its one lie.

use keyway_tests::bff::{SpaClient, TestBff, env_for, json_of, reserve};
use keyway_tests::captured_logs;
use keyway_tests::lying_provider::{Fault, LOWER_ACR, LyingProvider};
use serde_json::{Value, json};

const MFA: &str = "urn:liar:two-factor";

/// A lying provider and a BFF wired to it, with these extra settings.
async fn liar(fault: Fault, extra: &[(&str, &str)]) -> (LyingProvider, TestBff) {
    captured_logs::install();
    let provider = LyingProvider::start(fault).await;
    let reserved = reserve().await;
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SCOPES".into(), "openid profile".into());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    let bff = TestBff::start(reserved, &env).await.expect("BFF starts");
    (provider, bff)
}

/// What one login produced.
struct Outcome {
    status: u16,
    body: Value,
    user: (u16, Value),
    logs: String,
}

/// A login with the options `options` (`POST /bff/login`), through the
/// liar, to `POST /bff/callback` (with its own request id), then `GET
/// /bff/user`.
async fn login(provider: &LyingProvider, bff: &TestBff, options: Value) -> Outcome {
    let spa = SpaClient::new(bff);
    let (s, started) = json_of(spa.post("/bff/login", &options).await).await;
    assert_eq!(s, 200, "{started}");
    let url = started["authorization_url"].as_str().expect("the URL");
    let cb = provider.authorize(url).await;
    let request_id = captured_logs::request_id("levels");
    let r = spa
        .http
        .post(bff.url("/bff/callback"))
        .header("x-csrf", "1")
        .header("x-request-id", &request_id)
        .json(&cb)
        .send()
        .await
        .expect("callback");
    let (status, body) = json_of(r).await;
    let user = json_of(spa.get("/bff/user").await).await;
    Outcome {
        status,
        body,
        user,
        logs: captured_logs::lines_of(&request_id).join("\n"),
    }
}

fn assert_refused(o: &Outcome, reason: &str) {
    assert_eq!(o.status, 400, "{}", o.body);
    assert_eq!(o.body["error"], "invalid_id_token", "{}", o.body);
    assert_eq!(o.user.0, 401, "a session was created: {}", o.user.1);
    assert!(
        o.logs.contains("invalid_id_token") && o.logs.contains(reason),
        "no log line names {reason:?}:\n{}",
        o.logs
    );
    assert!(!o.logs.contains("eyJ"), "a JWT in the logs:\n{}", o.logs);
}

#[tokio::test]
async fn control_the_honest_answer_meets_what_was_asked() {
    let (provider, bff) = liar(Fault::None, &[]).await;
    let o = login(&provider, &bff, json!({"acr_values": MFA, "max_age": 300})).await;
    assert_eq!(o.status, 200, "{}", o.body);
    assert_eq!(o.user.0, 200);
    assert_eq!(o.user.1["acr"], MFA);
    assert!(o.user.1["auth_time"].as_u64().is_some(), "{}", o.user.1);
    // The provider was asked for both.
    let asked = provider.authorize_requests();
    assert_eq!(asked[0]["acr_values"], MFA);
    assert_eq!(asked[0]["max_age"], "300");
}

#[tokio::test]
async fn an_id_token_with_a_lower_acr_than_asked_is_refused() {
    let (provider, bff) = liar(Fault::LowerAcr, &[]).await;
    let o = login(&provider, &bff, json!({"acr_values": MFA})).await;
    assert_refused(&o, "acr is not among the acr_values asked for");
    // The same token when no level was asked for: nothing to fall short of.
    let o = login(&provider, &bff, json!({})).await;
    assert_eq!(o.status, 200, "{}", o.body);
    assert_eq!(o.user.1["acr"], LOWER_ACR);
}

#[tokio::test]
async fn a_lower_acr_is_kept_when_the_providers_acr_is_advisory() {
    let (provider, bff) = liar(Fault::LowerAcr, &[("KEYWAY_ACR_ADVISORY", "true")]).await;
    let o = login(&provider, &bff, json!({"acr_values": MFA})).await;
    assert_eq!(o.status, 200, "{}", o.body);
    assert_eq!(
        o.user.1["acr"], LOWER_ACR,
        "the level it has, not the one asked"
    );
}

#[tokio::test]
async fn an_auth_time_older_than_max_age_and_the_skew_is_refused() {
    let (provider, bff) = liar(Fault::AuthTimeAgo(3600), &[("KEYWAY_CLOCK_SKEW", "60s")]).await;
    let o = login(&provider, &bff, json!({"max_age": 300})).await;
    assert_refused(&o, "auth_time is older than the max_age asked for");
}

#[tokio::test]
async fn an_auth_time_past_max_age_but_within_the_skew_is_accepted() {
    // 330 s ago, max_age 300 s, skew 60 s: 30 s to spare.
    let (provider, bff) = liar(Fault::AuthTimeAgo(330), &[("KEYWAY_CLOCK_SKEW", "60s")]).await;
    let o = login(&provider, &bff, json!({"max_age": 300})).await;
    assert_eq!(o.status, 200, "{}", o.body);
    let auth_time = o.user.1["auth_time"].as_u64().expect("auth_time");
    let now = keyway_backend::internals::now_secs();
    assert!(now - auth_time >= 330, "{auth_time} vs {now}");
}

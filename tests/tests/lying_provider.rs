//! The BFF against a LYING provider (`keyway_tests::lying_provider`): every
//! forged or wrong ID token, and every broken token endpoint, must end in the
//! contract's error, no session, and a log line that names the reason but
//! never the token. The control case (`Fault::None`) proves that the fixture
//! itself is honest enough to sign someone in, so each refusal below is due
//! to its one fault.

use keyway_tests::bff::{SpaClient, TestBff, env_for, reserve};
use keyway_tests::captured_logs;
use keyway_tests::lying_provider::{Fault, LyingProvider};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A lying provider and a BFF wired to it (HTTP timeout 1 s).
async fn liar(fault: Fault) -> (LyingProvider, TestBff) {
    captured_logs::install();
    let provider = LyingProvider::start(fault).await;
    let reserved = reserve().await;
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_HTTP_TIMEOUT".into(), "1s".into());
    env.insert("KEYWAY_SCOPES".into(), "openid profile".into());
    let bff = TestBff::start(reserved, &env).await.expect("BFF starts");
    (provider, bff)
}

/// What one login against the liar produced.
struct Outcome {
    status: u16,
    body: Value,
    logs: Vec<String>,
    elapsed: Duration,
    spa: SpaClient,
}

/// Starts a login, follows the liar's redirect, posts the callback with a
/// fresh `x-request-id`, and collects that request's log lines.
async fn login(provider: &LyingProvider, bff: &TestBff) -> Outcome {
    let spa = SpaClient::new(bff);
    let url = spa.start_login(None).await;
    let cb = provider.authorize(&url).await;
    let request_id = captured_logs::request_id("liar");
    let started = Instant::now();
    let r = spa
        .http
        .post(bff.url("/bff/callback"))
        .header("x-csrf", "1")
        .header("x-request-id", &request_id)
        .json(&cb)
        .send()
        .await
        .expect("callback");
    let elapsed = started.elapsed();
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    Outcome {
        status,
        body,
        logs: captured_logs::lines_of(&request_id),
        elapsed,
        spa,
    }
}

/// The refusal checks every fault shares: status and code, a message, no
/// session, a log line naming `reason`, and no JWT in any log line.
async fn assert_refused(o: &Outcome, status: u16, code: &str, reason: &str) {
    assert_eq!(o.status, status, "{}", o.body);
    assert_eq!(o.body["error"], code, "{}", o.body);
    assert!(
        o.body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        o.body
    );
    assert!(
        !o.body.to_string().contains("eyJ"),
        "a JWT in the body: {}",
        o.body
    );
    let user = o.spa.get("/bff/user").await;
    assert_eq!(user.status(), 401, "a session was created");
    let joined = o.logs.join("\n");
    assert!(
        o.logs
            .iter()
            .any(|l| l.contains(code) && l.to_lowercase().contains(&reason.to_lowercase())),
        "no log line names {code} and {reason:?}:\n{joined}"
    );
    assert!(!joined.contains("eyJ"), "a JWT in the logs:\n{joined}");
}

async fn refused_id_token(fault: Fault, reason: &str) -> (LyingProvider, TestBff, Outcome) {
    let (provider, bff) = liar(fault).await;
    let o = login(&provider, &bff).await;
    assert_refused(&o, 400, "invalid_id_token", reason).await;
    (provider, bff, o)
}

#[tokio::test]
async fn control_an_honest_answer_of_the_fixture_signs_in() {
    let (provider, bff) = liar(Fault::None).await;
    let o = login(&provider, &bff).await;
    assert_eq!(o.status, 200, "{}", o.body);
    assert_eq!(o.body["user"]["sub"], "liar-user");
    let user: Value = o.spa.get("/bff/user").await.json().await.expect("json");
    assert_eq!(user["sub"], "liar-user");
    assert!(!o.logs.join("\n").contains("eyJ"));
}

#[tokio::test]
async fn id_token_with_a_bad_signature_is_refused() {
    refused_id_token(Fault::BadSignature, "signature").await;
}

#[tokio::test]
async fn id_token_with_alg_none_is_refused() {
    refused_id_token(Fault::AlgNone, "no signature").await;
}

#[tokio::test]
async fn id_token_hs256_signed_with_the_rsa_public_key_is_refused() {
    refused_id_token(Fault::Hs256WithPublicKey, "disallowed signature algorithm").await;
}

#[tokio::test]
async fn id_token_from_another_issuer_is_refused() {
    refused_id_token(Fault::WrongIssuer, "issuer").await;
}

#[tokio::test]
async fn id_token_for_another_audience_is_refused() {
    refused_id_token(Fault::WrongAudience, "audience").await;
}

#[tokio::test]
async fn id_token_with_several_audiences_and_no_azp_is_refused() {
    refused_id_token(Fault::AudiencesWithoutAzp, "audience").await;
}

#[tokio::test]
async fn expired_id_token_is_refused() {
    refused_id_token(Fault::Expired, "expired").await;
}

#[tokio::test]
async fn id_token_issued_in_the_future_is_refused() {
    refused_id_token(Fault::IssuedInFuture, "future").await;
}

#[tokio::test]
async fn id_token_without_nonce_is_refused() {
    refused_id_token(Fault::MissingNonce, "nonce").await;
}

#[tokio::test]
async fn id_token_with_another_nonce_is_refused() {
    refused_id_token(Fault::WrongNonce, "nonce").await;
}

#[tokio::test]
async fn unknown_kid_refetches_the_jwks_exactly_once_then_refuses() {
    let (provider, bff) = liar(Fault::UnknownKid).await;
    let before = provider.jwks_fetches();
    assert!(before >= 1, "discovery loaded the JWKS");
    let o = login(&provider, &bff).await;
    assert_refused(&o, 400, "invalid_id_token", "key").await;
    assert_eq!(
        provider.jwks_fetches(),
        before + 1,
        "one refetch for the unknown kid"
    );
    // A second token with an unknown kid right after: no fetch per request.
    let again = login(&provider, &bff).await;
    assert_refused(&again, 400, "invalid_id_token", "key").await;
    assert_eq!(
        provider.jwks_fetches(),
        before + 1,
        "the JWKS is not fetched again for every request"
    );
}

#[tokio::test]
async fn unknown_kid_with_the_jwks_endpoint_down_is_refused() {
    let (provider, bff) = liar(Fault::UnknownKid).await;
    let before = provider.jwks_fetches();
    provider.take_jwks_down();
    let o = login(&provider, &bff).await;
    assert_refused(&o, 400, "invalid_id_token", "JWKS could not be fetched").await;
    assert_eq!(provider.jwks_fetches(), before + 1, "one attempt only");
}

#[tokio::test]
async fn missing_iss_when_discovery_advertises_it_is_a_mix_up() {
    let (provider, bff) = liar(Fault::IssAdvertisedButMissing).await;
    let o = login(&provider, &bff).await;
    assert_refused(&o, 400, "issuer_mismatch", "the response has none").await;
    assert_eq!(provider.token_requests(), 0, "the code was not exchanged");
}

#[tokio::test]
async fn hanging_token_endpoint_is_a_504_within_the_timeout() {
    let (provider, bff) = liar(Fault::TokenEndpointHangs).await;
    let o = login(&provider, &bff).await;
    assert_refused(&o, 504, "provider_timeout", "timed out").await;
    assert_eq!(provider.token_requests(), 1);
    assert!(
        o.elapsed >= Duration::from_millis(900) && o.elapsed < Duration::from_secs(5),
        "answered after {:?} with a 1 s timeout",
        o.elapsed
    );
}

async fn garbage(fault: Fault) {
    let (provider, bff) = liar(fault).await;
    let o = login(&provider, &bff).await;
    assert_refused(&o, 502, "token_exchange_failed", "token exchange failed").await;
    assert_eq!(provider.token_requests(), 1);
}

#[tokio::test]
async fn html_from_the_token_endpoint_is_a_502() {
    garbage(Fault::TokenEndpointHtml).await;
}

#[tokio::test]
async fn invalid_json_from_the_token_endpoint_is_a_502() {
    garbage(Fault::TokenEndpointInvalidJson).await;
}

#[tokio::test]
async fn ten_mib_token_response_is_a_502() {
    garbage(Fault::TokenEndpointHuge).await;
}

/// After an honest login with a 2 s access token, waits until it is due
/// and calls `/bff/userinfo`, which refreshes first: the status and body,
/// and the browser, provider and BFF (kept running).
async fn refresh_after_login(fault: Fault) -> (u16, Value, SpaClient, LyingProvider, TestBff) {
    let (provider, bff) = liar(fault).await;
    let o = login(&provider, &bff).await;
    assert_eq!(o.status, 200, "{}", o.body);
    let signed_in = Instant::now();
    // Due once half of its 2 s life is over.
    keyway_tests::wait::eventually(
        Duration::from_secs(5),
        "the access token is due",
        || async { signed_in.elapsed() >= Duration::from_millis(1100) },
    )
    .await;
    let r = o.spa.get("/bff/userinfo").await;
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("json");
    assert_eq!(provider.token_requests(), 2, "the code, then one refresh");
    (status, body, o.spa, provider, bff)
}

/// The control of the refresh faults: an honest refreshed ID token (same
/// subject, no nonce) is kept and the session goes on.
#[tokio::test]
async fn an_honest_refreshed_id_token_is_kept() {
    let (status, body, spa, _provider, _bff) = refresh_after_login(Fault::RefreshHonest).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(spa.get("/bff/user").await.status(), 200);
}

/// Issue 15 item 4 (OpenID Connect Core §12.2): an ID token from a refresh
/// is verified like the login's before it replaces it — another subject,
/// another audience, a nonce that is not the login's, a bad signature: the
/// tokens are not kept and the session ends (`401 session_expired`).
#[tokio::test]
async fn a_refreshed_id_token_that_fails_validation_ends_the_session() {
    for fault in [
        Fault::RefreshOtherSubject,
        Fault::RefreshWrongAudience,
        Fault::RefreshOtherNonce,
        Fault::RefreshBadSignature,
    ] {
        let (status, body, spa, _provider, _bff) = refresh_after_login(fault).await;
        assert_eq!(status, 401, "{fault:?}: {body}");
        assert_eq!(body["error"], "session_expired", "{fault:?}");
        assert_eq!(
            spa.get("/bff/user").await.status(),
            401,
            "{fault:?}: the session goes on"
        );
    }
}

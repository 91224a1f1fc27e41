//! Token lifecycle and the API proxy against the real oidc-provider with
//! short-lived access tokens: refresh (counted at the provider), single
//! flight, refused refresh, revocation at logout, back-channel logout, and
//! `/bff/api` to an upstream that checks the bearer by introspection.

use keyway_tests::bff::{SpaClient, TestBff, client_for, env_for, reserve};
use keyway_tests::provider::{ClientConfig, ProviderConfig, TestProvider};
use keyway_tests::upstream::Upstream;
use keyway_tests::wait::eventually;
use serde_json::{Value, json};
use std::time::Duration;

struct Setup {
    provider: TestProvider,
    bff: TestBff,
    upstream: Upstream,
    other: Upstream,
    client: ClientConfig,
}

/// A provider whose access tokens live `ttl` seconds, an upstream, and a BFF
/// with `[[apis]]` `orders` (user token) and `svc` (client token).
async fn setup(ttl: u64) -> Setup {
    let reserved = reserve().await;
    let client = client_for(&reserved.origin);
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client.clone()],
        access_token_ttl: ttl,
        ..ProviderConfig::default()
    })
    .await
    .expect("provider");
    let introspection = provider.endpoint("introspection_endpoint").unwrap();
    let upstream = Upstream::start(&introspection, &client.client_id, &client.client_secret).await;
    let other = Upstream::start(&introspection, &client.client_id, &client.client_secret).await;
    let toml = format!(
        r#"
        [[apis]]
        name = "orders"
        url = "{}/v1"
        forward_headers = ["x-custom"]
        [[apis]]
        name = "svc"
        url = "{}/svc"
        token = "client"
        scopes = ["api"]
        [[apis]]
        name = "either"
        url = "{}/either"
        token = "user_or_client"
        scopes = ["api"]
        "#,
        upstream.base, upstream.base, upstream.base
    );
    let env = env_for(&reserved.origin, &provider.issuer);
    let bff = TestBff::start_with_file(reserved, &toml, &env)
        .await
        .expect("BFF");
    Setup {
        provider,
        bff,
        upstream,
        other,
        client,
    }
}

async fn stat(provider: &TestProvider, grant: &str) -> u64 {
    provider.stats().await.unwrap()["token_requests"][grant]
        .as_u64()
        .unwrap_or(0)
}

async fn api(spa: &SpaClient, bff: &TestBff, path: &str) -> reqwest::Response {
    spa.http
        .get(bff.url(path))
        .header("x-csrf", "1")
        .send()
        .await
        .unwrap()
}

async fn login(s: &Setup) -> SpaClient {
    let spa = SpaClient::new(&s.bff);
    let r = spa.login(&s.provider, "alice", "wonderland").await;
    assert_eq!(r.status(), 200);
    spa
}

#[tokio::test]
async fn userinfo_keeps_working_across_several_expiries() {
    let s = setup(4).await;
    let spa = login(&s).await;
    assert_eq!(stat(&s.provider, "refresh_token").await, 0);
    // 4 s tokens are refreshed when 2 s remain (the skew is capped at half the
    // lifetime): over ~9 s of use that is at least three refreshes.
    let until = tokio::time::Instant::now() + Duration::from_secs(9);
    let mut calls = 0;
    while tokio::time::Instant::now() < until {
        let r = spa.get("/bff/userinfo").await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "call {calls}: {body}");
        assert_eq!(body["sub"], "alice");
        calls += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let refreshes = stat(&s.provider, "refresh_token").await;
    assert!(
        refreshes >= 3,
        "only {refreshes} refresh grants over {calls} calls"
    );
    assert!(
        refreshes <= 6,
        "{refreshes} refresh grants: more than needed"
    );
}

#[tokio::test]
async fn twenty_concurrent_api_calls_at_expiry_refresh_once() {
    let s = setup(4).await;
    let spa = login(&s).await;
    // Let the token come within its refresh window (the last half of its 4 s
    // lifetime); the refreshed token then has 2 s before its own window, so
    // a slow burst cannot legitimately cause a second grant.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let spa = spa.clone();
        let url = s.bff.url(&format!("/bff/api/orders/items/{i}"));
        set.spawn(async move {
            spa.http
                .get(url)
                .header("x-csrf", "1")
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let statuses = set.join_all().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        stat(&s.provider, "refresh_token").await,
        1,
        "exactly one refresh grant"
    );
    assert_eq!(s.upstream.seen().len(), 20);
}

#[tokio::test]
async fn refused_refresh_ends_the_session() {
    let s = setup(2).await;
    let spa = login(&s).await;
    s.provider.revoke_account("alice").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = spa.get("/bff/userinfo").await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "session_expired", "{body}");
    let r = spa.get("/bff/user").await;
    assert_eq!(r.status(), 401, "the session is gone");
}

#[tokio::test]
async fn logout_revokes_the_tokens_at_the_provider() {
    let s = setup(3600).await;
    let spa = login(&s).await;
    let r = api(&spa, &s.bff, "/bff/api/orders/me").await;
    assert_eq!(r.status(), 200);
    let access = s.upstream.seen()[0].bearer.clone().unwrap();
    assert_eq!(
        s.provider.introspect(&s.client, &access).await.unwrap()["active"],
        true
    );
    let before = s.provider.stats().await.unwrap()["revocations"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(spa.post("/bff/logout", &json!({})).await.status(), 200);
    let after = s.provider.stats().await.unwrap()["revocations"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(after - before, 2, "refresh token and access token revoked");
    assert_eq!(
        s.provider.introspect(&s.client, &access).await.unwrap()["active"],
        false
    );
}

#[tokio::test]
async fn api_proxy_attaches_the_bearer_and_strips_browser_headers() {
    let s = setup(3600).await;
    let spa = login(&s).await;
    let r = spa
        .http
        .post(s.bff.url("/bff/api/orders/items?limit=5"))
        .header("x-csrf", "1")
        .header("authorization", "Bearer injected-by-the-browser")
        .header("connection", "x-secret-hop")
        .header("x-secret-hop", "1")
        .header("x-custom", "kept")
        .json(&json!({"item": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("set-cookie").is_none(),
        "the upstream's cookie must not reach the browser"
    );
    // Only allow-listed response headers come back.
    assert!(r.headers().get("x-upstream").is_none());
    assert!(r.headers().get("content-type").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["sub"], "alice");
    assert_eq!(body["body_bytes"], 10);
    let seen = &s.upstream.seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/items");
    assert_eq!(seen.query.as_deref(), Some("limit=5"));
    assert_eq!(seen.introspection["active"], true);
    assert_ne!(seen.bearer.as_deref(), Some("injected-by-the-browser"));
    let names: Vec<&str> = seen.headers.iter().map(|(k, _)| k.as_str()).collect();
    for banned in ["cookie", "x-csrf", "x-secret-hop", "connection"] {
        assert!(
            !names.contains(&banned),
            "{banned} reached the upstream: {names:?}"
        );
    }
    assert!(names.contains(&"x-custom"));
}

#[tokio::test]
async fn api_proxy_refusals() {
    let s = setup(3600).await;
    let anon = SpaClient::new(&s.bff);
    let r = api(&anon, &s.bff, "/bff/api/orders/x").await;
    assert_eq!(r.status(), 401);
    let spa = login(&s).await;
    // Every method needs the CSRF header, GET included.
    let r = spa
        .http
        .get(s.bff.url("/bff/api/orders/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = api(&spa, &s.bff, "/bff/api/nope/x").await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unknown_api");
    for attack in [
        "/bff/api/orders/../svc/x",
        "/bff/api/orders/%2e%2e/svc/x",
        "/bff/api/orders/a%2F..%2F..%2Fsvc",
        "/bff/api/orders/%5c..%5csvc",
        "/bff/api/orders/.%2e/.%2e/x",
        "/bff/api/orders/./x",
    ] {
        // Sent raw over TCP: an HTTP client library would normalise `..` first.
        let status = raw_get(&s.bff, attack).await;
        assert_eq!(status, 400, "{attack}");
    }
    assert!(
        s.upstream
            .seen()
            .iter()
            .all(|seen| seen.path.starts_with("/v1")),
        "{:?}",
        s.upstream.seen()
    );
    assert!(s.other.seen().is_empty());
}

/// A GET with `X-CSRF: 1` whose path is sent byte for byte; returns the status.
async fn raw_get(bff: &TestBff, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = bff.origin.socket_addrs(|| None).unwrap()[0];
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-CSRF: 1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn upstream_down_is_502() {
    let reserved = reserve().await;
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&reserved.origin)],
        ..ProviderConfig::default()
    })
    .await
    .unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let toml = format!("[[apis]]\nname = \"dead\"\nurl = \"http://{dead}/\"\n");
    let env = env_for(&reserved.origin, &provider.issuer);
    let bff = TestBff::start_with_file(reserved, &toml, &env)
        .await
        .unwrap();
    let spa = SpaClient::new(&bff);
    assert_eq!(
        spa.login(&provider, "alice", "wonderland").await.status(),
        200
    );
    let r = api(&spa, &bff, "/bff/api/dead/x").await;
    assert_eq!(r.status(), 502);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "upstream_error");
}

#[tokio::test]
async fn client_token_api_needs_no_session_and_is_fetched_once() {
    let s = setup(3600).await;
    let anon = SpaClient::new(&s.bff);
    for _ in 0..3 {
        let r = api(&anon, &s.bff, "/bff/api/svc/ping").await;
        assert_eq!(r.status(), 200);
    }
    let seen = s.upstream.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].introspection["active"], true);
    assert_eq!(seen[0].introspection["client_id"], "keyway");
    assert!(
        seen[0]
            .introspection
            .get("sub")
            .is_none_or(|v| v.is_null() || v == "keyway")
    );
    assert_eq!(
        stat(&s.provider, "client_credentials").await,
        1,
        "asked once, then cached"
    );
    // user_or_client: the client's token anonymously, the user's once signed in.
    let r = api(&anon, &s.bff, "/bff/api/either/x").await;
    assert_eq!(r.status(), 200);
    let spa = login(&s).await;
    let r = api(&spa, &s.bff, "/bff/api/either/x").await;
    assert_eq!(r.json::<Value>().await.unwrap()["sub"], "alice");
}

#[tokio::test]
async fn backchannel_logout_from_the_provider_destroys_the_session() {
    let s = setup(3600).await;
    let spa = login(&s).await;
    assert_eq!(spa.get("/bff/user").await.status(), 200);
    // The user signs out at the provider (not at the app): the provider
    // POSTs a logout token to /bff/backchannel-logout.
    s.provider
        .end_session_with(&spa.provider_browser, &s.client.client_id)
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the session outlived the back-channel logout",
        || async { spa.get("/bff/user").await.status() == 401 },
    )
    .await;
    assert!(
        s.provider.stats().await.unwrap()["backchannel_logouts_sent"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[tokio::test]
async fn forged_expired_or_nonce_logout_tokens_are_refused() {
    let s = setup(3600).await;
    let spa = login(&s).await;
    let now = keyway_backend::internals::now_secs();
    let good = json!({
        "iss": s.provider.issuer, "aud": "keyway", "iat": now, "exp": now + 120, "jti": "j1", "sub": "alice",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}}
    });
    let post = |token: String| {
        let url = s.bff.url("/bff/backchannel-logout");
        async move {
            reqwest::Client::new()
                .post(url)
                .form(&[("logout_token", token)])
                .send()
                .await
                .unwrap()
        }
    };
    let mut cases = Vec::new();
    cases.push((
        "forged",
        s.provider.sign_test_jwt(&good, true).await.unwrap(),
    ));
    let mut expired = good.clone();
    expired["iat"] = json!(now - 3600);
    expired["exp"] = json!(now - 3000);
    cases.push((
        "expired",
        s.provider.sign_test_jwt(&expired, false).await.unwrap(),
    ));
    let mut with_nonce = good.clone();
    with_nonce["nonce"] = json!("n");
    cases.push((
        "nonce",
        s.provider.sign_test_jwt(&with_nonce, false).await.unwrap(),
    ));
    let mut no_event = good.clone();
    no_event["events"] = json!({});
    cases.push((
        "no event",
        s.provider.sign_test_jwt(&no_event, false).await.unwrap(),
    ));
    let mut other_aud = good.clone();
    other_aud["aud"] = json!("someone-else");
    cases.push((
        "aud",
        s.provider.sign_test_jwt(&other_aud, false).await.unwrap(),
    ));
    cases.push(("garbage", "not.a.jwt".to_owned()));
    for (name, token) in cases {
        let r = post(token).await;
        assert_eq!(r.status(), 400, "{name}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "invalid_logout_token",
            "{name}"
        );
        assert_eq!(
            spa.get("/bff/user").await.status(),
            200,
            "{name} destroyed the session"
        );
    }
    // The same claims, properly signed, do log alice out (by sub).
    let r = post(s.provider.sign_test_jwt(&good, false).await.unwrap()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(spa.get("/bff/user").await.status(), 401);
}

#[tokio::test]
async fn without_a_refresh_token_the_session_ends_with_the_access_token() {
    let reserved = reserve().await;
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&reserved.origin)],
        access_token_ttl: 3,
        ..ProviderConfig::default()
    })
    .await
    .unwrap();
    let mut env = env_for(&reserved.origin, &provider.issuer);
    // No offline_access: oidc-provider issues no refresh token.
    env.insert("KEYWAY_SCOPES".into(), "openid profile email".into());
    let bff = TestBff::start(reserved, &env).await.unwrap();
    let spa = SpaClient::new(&bff);
    let before = keyway_backend::internals::now_secs();
    let r = spa.login(&provider, "alice", "wonderland").await;
    let body: Value = r.json().await.unwrap();
    let expires_at = body["user"]["expires_at"].as_u64().unwrap();
    assert!(
        expires_at >= before + 2 && expires_at <= before + 4,
        "expires_at {expires_at} is not the access token's end"
    );
    // Once the access token is over, so is the session.
    eventually(
        Duration::from_secs(8),
        "the session outlived its access token",
        || async { spa.get("/bff/user").await.status() == 401 },
    )
    .await;
}

#[tokio::test]
async fn idle_and_absolute_timeouts_are_reported_and_enforced() {
    let reserved = reserve().await;
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&reserved.origin)],
        ..ProviderConfig::default()
    })
    .await
    .unwrap();
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SESSION_IDLE_TIMEOUT".into(), "2s".into());
    env.insert("KEYWAY_SESSION_ABSOLUTE_TIMEOUT".into(), "1h".into());
    let bff = TestBff::start(reserved, &env).await.unwrap();
    let spa = SpaClient::new(&bff);
    let before = keyway_backend::internals::now_secs();
    assert_eq!(
        spa.login(&provider, "alice", "wonderland").await.status(),
        200
    );
    let user: Value = spa.get("/bff/user").await.json().await.unwrap();
    let expires_at = user["expires_at"].as_u64().unwrap();
    assert!(
        expires_at > before && expires_at <= before + 4,
        "idle end not reported: {expires_at} vs {before}"
    );
    // Used every 0.5 s, the session lives past its 2 s idle timeout...
    for _ in 0..8 {
        assert_eq!(
            spa.get("/bff/user").await.status(),
            200,
            "an active session ended"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // ...and left alone it ends.
    // (Not touched for longer than the idle timeout: this wait is the scenario.)
    tokio::time::sleep(Duration::from_millis(2500)).await;
    eventually(
        Duration::from_millis(5500),
        "an idle session did not end",
        || async { spa.get("/bff/user").await.status() == 401 },
    )
    .await;
}

#[tokio::test]
async fn the_absolute_timeout_ends_even_an_active_session() {
    let reserved = reserve().await;
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&reserved.origin)],
        ..ProviderConfig::default()
    })
    .await
    .unwrap();
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SESSION_IDLE_TIMEOUT".into(), "3s".into());
    env.insert("KEYWAY_SESSION_ABSOLUTE_TIMEOUT".into(), "5s".into());
    let bff = TestBff::start(reserved, &env).await.unwrap();
    let spa = SpaClient::new(&bff);
    let started = tokio::time::Instant::now();
    assert_eq!(
        spa.login(&provider, "alice", "wonderland").await.status(),
        200
    );
    let mut alive_past_idle = false;
    loop {
        let status = spa.get("/bff/user").await.status();
        if status == 401 {
            break;
        }
        if started.elapsed() > Duration::from_millis(3500) {
            alive_past_idle = true;
        }
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "the absolute timeout did not end the session"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        alive_past_idle,
        "activity should have kept the session past its idle timeout"
    );
}

//! The user's own sessions (issue 18): `GET /bff/sessions`, `DELETE
//! /bff/sessions/{handle}`, `POST /bff/sessions/end-others`, on Redis with
//! two BFF instances, against the real provider.

use keyway_tests::bff::{SpaClient, TestBff, assert_error, client_for, env_for, json_of, reserve};
use keyway_tests::provider::{ProviderConfig, TestProvider};
use keyway_tests::redis::RedisServer;
use keyway_tests::wait::eventually;
use serde_json::Value;
use std::time::Duration;

/// Two instances on one Redis, one public origin (as behind a load balancer).
async fn two_instances() -> (RedisServer, TestProvider, TestBff, TestBff) {
    let redis = RedisServer::start().await.expect("redis-server starts");
    let (a, b) = (reserve().await, reserve().await);
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&a.origin)],
        ..ProviderConfig::default()
    })
    .await
    .expect("provider starts");
    let mut env = env_for(&a.origin, &provider.issuer);
    env.insert("KEYWAY_SESSION_STORE".into(), redis.url());
    env.insert(
        "KEYWAY_SESSION_KEY".into(),
        keyway_tests::bff::TEST_SESSION_KEY.into(),
    );
    let bff_a = TestBff::start(a, &env).await.expect("A starts");
    let bff_b = TestBff::start(b, &env).await.expect("B starts");
    (redis, provider, bff_a, bff_b)
}

async fn get(spa: &SpaClient, bff: &TestBff, path: &str) -> (u16, Value) {
    json_of(spa.http.get(bff.url(path)).send().await.unwrap()).await
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    json_of(req.header("x-csrf", "1").send().await.unwrap()).await
}

/// A browser signed in as `user` through `bff`.
async fn signed_in(
    provider: &TestProvider,
    bff: &TestBff,
    user: &str,
    password: &str,
) -> SpaClient {
    let spa = SpaClient::new(bff);
    let r = spa.login(provider, user, password).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    spa
}

fn entries(list: &Value) -> &Vec<Value> {
    list.as_array().expect("a list")
}

#[tokio::test]
async fn two_browsers_see_and_end_each_others_sessions_on_two_instances() {
    let (_redis, provider, a, b) = two_instances().await;
    let first = signed_in(&provider, &a, "alice", "wonderland").await;
    let second = signed_in(&provider, &b, "alice", "wonderland").await;
    let bob = signed_in(&provider, &a, "bob", "builder").await;

    // Each browser sees both of alice's sessions, from either instance,
    // itself marked current; never a token or an id.
    let (s, list) = get(&first, &b, "/bff/sessions").await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(entries(&list).len(), 2, "{list}");
    let text = list.to_string();
    assert!(!text.contains("eyJ") && !text.contains("token"), "{text}");
    let mine: Vec<&Value> = entries(&list)
        .iter()
        .filter(|e| e["current"] == true)
        .collect();
    assert_eq!(mine.len(), 1, "{list}");
    for e in entries(&list) {
        assert_eq!(e["provider"], "default");
        assert!(e["created_at"].as_u64().unwrap() > 0 && e["last_seen_at"].as_u64().is_some());
        assert_eq!(e["handle"].as_str().unwrap().len(), 22);
    }
    let (_, seen_by_second) = get(&second, &a, "/bff/sessions").await;
    let second_handle = entries(&seen_by_second)
        .iter()
        .find(|e| e["current"] == true)
        .unwrap()["handle"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        entries(&list)
            .iter()
            .any(|e| e["handle"] == second_handle.as_str() && e["current"] == false),
        "the first browser sees the second's session: {list}"
    );
    // Bob sees only his own.
    let (_, bobs) = get(&bob, &b, "/bff/sessions").await;
    assert_eq!(entries(&bobs).len(), 1, "{bobs}");

    // Another user's handle is 404, and nothing ends.
    let (s, v) = send(
        bob.http
            .delete(a.url(&format!("/bff/sessions/{second_handle}"))),
    )
    .await;
    assert_error(s, &v, 404, "unknown_session");
    assert_eq!(get(&second, &b, "/bff/user").await.0, 200);
    // The CSRF rule of logout.
    let r = first
        .http
        .delete(a.url(&format!("/bff/sessions/{second_handle}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The first browser ends the second's session: its next call, on
    // either instance, is anonymous, and its tokens were revoked.
    let revocations = provider.stats().await.unwrap()["revocations"]
        .as_u64()
        .unwrap();
    let (s, v) = send(
        first
            .http
            .delete(a.url(&format!("/bff/sessions/{second_handle}"))),
    )
    .await;
    assert_eq!((s, v["ended"].as_u64()), (200, Some(1)), "{v}");
    for bff in [&b, &a] {
        eventually(
            Duration::from_secs(5),
            "the ended session is anonymous",
            || async { get(&second, bff, "/bff/user").await.0 == 401 },
        )
        .await;
    }
    let now = provider.stats().await.unwrap()["revocations"]
        .as_u64()
        .unwrap();
    assert!(
        now >= revocations + 2,
        "refresh and access token revoked: {revocations} -> {now}"
    );
    assert_eq!(get(&first, &b, "/bff/user").await.0, 200);
    let (_, list) = get(&first, &a, "/bff/sessions").await;
    assert_eq!(entries(&list).len(), 1, "{list}");
}

#[tokio::test]
async fn end_others_keeps_only_the_current_session() {
    let (_redis, provider, a, b) = two_instances().await;
    let first = signed_in(&provider, &a, "alice", "wonderland").await;
    let others = [
        signed_in(&provider, &b, "alice", "wonderland").await,
        signed_in(&provider, &a, "alice", "wonderland").await,
    ];
    let bob = signed_in(&provider, &b, "bob", "builder").await;
    let (s, v) = send(first.http.post(b.url("/bff/sessions/end-others"))).await;
    assert_eq!((s, v["ended"].as_u64()), (200, Some(2)), "{v}");
    for other in &others {
        eventually(
            Duration::from_secs(5),
            "the other session is anonymous",
            || async { get(other, &a, "/bff/user").await.0 == 401 },
        )
        .await;
    }
    assert_eq!(get(&first, &a, "/bff/user").await.0, 200);
    assert_eq!(
        get(&bob, &a, "/bff/user").await.0,
        200,
        "another user's session stays"
    );
    // Ending the current session by its handle signs this browser out.
    let (_, list) = get(&first, &a, "/bff/sessions").await;
    let handle = entries(&list)[0]["handle"].as_str().unwrap().to_owned();
    let r = first
        .http
        .delete(a.url(&format!("/bff/sessions/{handle}")))
        .header("x-csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cleared = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().contains("Max-Age=0"));
    assert!(cleared, "the cookie is cleared");
    assert_eq!(get(&first, &b, "/bff/user").await.0, 401);
    // Anonymous: 401.
    let (s, v) = get(&first, &a, "/bff/sessions").await;
    assert_error(s, &v, 401, "unauthenticated");
    let metrics = first
        .http
        .get(b.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"keyway_user_sessions_ended_total{how="others"} 2"#),
        "{metrics}"
    );
}

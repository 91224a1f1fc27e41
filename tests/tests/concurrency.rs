//! Many logins at once through the real oidc-provider and one BFF: 200
//! distinct users (`user0`..`user199`), every step of every flow in flight
//! together (at most 50 requests at a time), and afterwards every session
//! sees its own user — in `/bff/user` and in the provider's `/bff/userinfo`
//! (fetched with that session's access token) — and never another's.

use keyway_tests::bff::{SpaClient, stack};
use keyway_tests::provider::Consent;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const USERS: usize = 200;
const IN_FLIGHT: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_parallel_logins_each_see_only_their_own_user() {
    let (provider, bff) = stack().await;
    let provider = Arc::new(provider);
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut flows = JoinSet::new();
    for n in 0..USERS {
        let spa = SpaClient::new(&bff);
        let provider = provider.clone();
        let permits = permits.clone();
        flows.spawn(async move {
            let user = format!("user{n}");
            // A permit per step, not per flow: all 200 flows are under way
            // together, their steps interleaved.
            let url = {
                let _p = permits.acquire().await.expect("semaphore");
                spa.start_login(None).await
            };
            let cb = {
                let _p = permits.acquire().await.expect("semaphore");
                spa.authorize(&provider, &url, &user, &format!("pw-{n}"), Consent::Allow)
                    .await
            };
            let r = {
                let _p = permits.acquire().await.expect("semaphore");
                spa.callback(&cb).await
            };
            let status = r.status();
            let body: Value = r.json().await.expect("callback JSON");
            assert_eq!(status, 200, "{user}: {body}");
            assert_eq!(body["user"]["sub"], user.as_str(), "callback of {user}");
            (n, spa)
        });
    }
    let mut sessions = Vec::with_capacity(USERS);
    while let Some(done) = flows.join_next().await {
        sessions.push(done.expect("a login flow panicked"));
    }
    assert_eq!(sessions.len(), USERS);

    let mut checks = JoinSet::new();
    for (n, spa) in sessions {
        let permits = permits.clone();
        checks.spawn(async move {
            let user = format!("user{n}");
            let _p = permits.acquire().await.expect("semaphore");
            let me: Value = spa.get("/bff/user").await.json().await.expect("user JSON");
            assert_eq!(me["sub"], user.as_str(), "/bff/user of {user}: {me}");
            assert_eq!(me["email"], format!("{user}@example.com"), "{me}");
            let r = spa.get("/bff/userinfo").await;
            assert_eq!(r.status(), 200, "/bff/userinfo of {user}");
            let info: Value = r.json().await.expect("userinfo JSON");
            assert_eq!(
                info["sub"],
                user.as_str(),
                "/bff/userinfo of {user}: {info}"
            );
            n
        });
    }
    let mut seen = [false; USERS];
    while let Some(done) = checks.join_next().await {
        let n = done.expect("a session check panicked");
        assert!(!seen[n], "user{n} checked twice");
        seen[n] = true;
    }
    assert!(seen.iter().all(|s| *s), "every user was checked");
}

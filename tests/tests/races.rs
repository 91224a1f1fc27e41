//! State under concurrency (issue 15, items 8–10): a logout is never undone
//! by a write that was in flight, a rotated refresh token is never
//! overwritten by an older copy, a refresh reads what another instance
//! wrote from the store itself, and parallel logins each complete once.
//!
//! The provider rotates refresh tokens and can hold its token answers
//! (`TokenDelay::BeforeAnswer`: the old refresh token is already spent
//! while Keyway waits), which opens a window of known length for another
//! request to land in: the interleavings are made, not hoped for.

use async_trait::async_trait;
use keyway_backend::internals::{Session, SessionId, Sessions, now_secs};
use keyway_backend::{Payload, Record, Store, StoreError, Update};
use keyway_tests::bff::{Reserved, SpaClient, TestBff, client_for, env_for, reserve};
use keyway_tests::provider::{ClientConfig, Consent, ProviderConfig, TestProvider, TokenDelay};
use keyway_tests::store_suite::{
    KEY_A, Memory, Redis, Sqlite, Target, key_a, session_cookie, settings,
};
use keyway_tests::wait::eventually;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A provider that rotates refresh tokens and issues 2 s access tokens (due
/// for refresh after 1 s), and BFFs on one store.
struct Race {
    provider: TestProvider,
    client: ClientConfig,
    store: Arc<dyn Store>,
    sessions: Sessions,
    /// Two listeners for BFFs, registered at the provider.
    listeners: Mutex<Vec<Reserved>>,
}

impl Race {
    async fn new(store: Arc<dyn Store>) -> Race {
        let listeners = vec![reserve().await, reserve().await];
        let mut client = client_for(&listeners[0].origin);
        let second = client_for(&listeners[1].origin);
        client.redirect_uris.extend(second.redirect_uris);
        client
            .post_logout_redirect_uris
            .extend(second.post_logout_redirect_uris);
        let provider = TestProvider::start(ProviderConfig {
            clients: vec![client.clone()],
            access_token_ttl: 2,
            rotate_refresh_tokens: true,
            ..ProviderConfig::default()
        })
        .await
        .expect("provider");
        let sessions = Sessions::new(store.clone(), &settings(vec![key_a()]));
        Race {
            provider,
            client,
            store,
            sessions,
            listeners: Mutex::new(listeners),
        }
    }

    /// A BFF on the race's store (or on `store`), registered at the provider.
    async fn bff_on(&self, store: Arc<dyn Store>) -> TestBff {
        let reserved = self.listeners.lock().unwrap().remove(0);
        let mut env = env_for(&reserved.origin, &self.provider.issuer);
        env.insert("KEYWAY_SESSION_KEY".into(), KEY_A.into());
        // Touch (idle time) writes at most every second.
        env.insert("KEYWAY_SESSION_IDLE_TIMEOUT".into(), "4s".into());
        let config = keyway_backend::Config::from_sources(None, &env).expect("config");
        TestBff::start_built(reserved, keyway_backend::Builder::new(config).store(store))
            .await
            .expect("BFF")
    }

    async fn bff(&self) -> TestBff {
        self.bff_on(self.store.clone()).await
    }

    /// What the store holds for a cookie, read from the store itself.
    async fn stored(&self, cookie: &str) -> Option<Session> {
        let id: SessionId = cookie.parse().ok()?;
        self.sessions.load_fresh(id).await.expect("store answers")
    }

    /// Waits (bounded) until the session's access token is due for refresh.
    async fn until_due(&self, cookie: &str) {
        let session = self.stored(cookie).await.expect("signed in");
        let tokens = &session.data.tokens;
        let lifetime = tokens.access_expires_at.expect("expiry") - tokens.access_issued_at;
        let due_at = tokens.access_expires_at.unwrap() - lifetime / 2;
        eventually(
            Duration::from_secs(5),
            "the access token is due",
            || async move { now_secs() >= due_at },
        )
        .await;
    }

    async fn refresh_grants(&self) -> u64 {
        self.provider
            .token_requests("refresh_token")
            .await
            .expect("stats")
    }

    async fn revocations(&self) -> u64 {
        self.provider.stats().await.expect("stats")["revocations"]
            .as_u64()
            .unwrap_or(0)
    }
}

/// A fresh browser signed in as alice on `bff`; its session cookie.
async fn signed_in(race: &Race, bff: &TestBff) -> (SpaClient, String) {
    let spa = SpaClient::new(bff);
    let url = spa.start_login(None).await;
    let cb = spa
        .authorize(&race.provider, &url, "alice", "wonderland", Consent::Allow)
        .await;
    let r = spa.callback(&cb).await;
    assert_eq!(r.status(), 200);
    let cookie = session_cookie(&r);
    (spa, cookie)
}

/// Starts a refresh on `spa` (a `/bff/userinfo` call with a due token) that
/// the provider holds for `hold` after it has spent the old refresh token;
/// returns once the provider has the request.
async fn refresh_in_flight(
    race: &Race,
    spa: &SpaClient,
    hold: Duration,
) -> tokio::task::JoinHandle<u16> {
    race.provider
        .set_token_delay_at(hold, TokenDelay::BeforeAnswer)
        .await
        .unwrap();
    let before = race.refresh_grants().await;
    let spa2 = spa.clone();
    let task = tokio::spawn(async move { spa2.get("/bff/userinfo").await.status().as_u16() });
    eventually(
        Duration::from_secs(5),
        "the refresh reached the provider",
        || async { race.refresh_grants().await > before },
    )
    .await;
    task
}

/// Item 8: a logout that lands while a refresh is in flight stays a logout
/// (the refresh's write finds the session gone and revokes what it got), on
/// every store, with the answer held for several lengths.
async fn logout_during_a_refresh_is_never_undone(target: &dyn Target) {
    let race = Race::new(target.open().await).await;
    let bff = race.bff().await;
    for hold in [Duration::from_millis(150), Duration::from_millis(500)] {
        let (spa, cookie) = signed_in(&race, &bff).await;
        race.until_due(&cookie).await;
        let revoked_before = race.revocations().await;
        let refresh = refresh_in_flight(&race, &spa, hold).await;
        let r = spa.post("/bff/logout", &json!({})).await;
        assert_eq!(r.status(), 200);
        let refreshed = refresh.await.unwrap();
        race.provider.set_token_delay(Duration::ZERO).await.unwrap();
        assert_eq!(refreshed, 401, "the refresh reports the ended session");
        assert!(
            race.stored(&cookie).await.is_none(),
            "the logout was undone ({hold:?})"
        );
        let again = reqwest::Client::new()
            .get(bff.url("/bff/user"))
            .header("cookie", format!("keyway={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 401, "the old cookie works again ({hold:?})");
        // Logout revoked the old pair; the refresh revoked the new pair it got.
        assert_eq!(race.revocations().await - revoked_before, 4, "({hold:?})");
    }
}

/// Item 8: a back-channel logout (the provider ends the user's session)
/// during a refresh stays a logout too.
async fn backchannel_logout_during_a_refresh_is_never_undone(target: &dyn Target) {
    let race = Race::new(target.open().await).await;
    let bff = race.bff().await;
    let (spa, cookie) = signed_in(&race, &bff).await;
    race.until_due(&cookie).await;
    let refresh = refresh_in_flight(&race, &spa, Duration::from_millis(800)).await;
    race.provider
        .end_session_with(&spa.provider_browser, &race.client.client_id)
        .await
        .unwrap();
    eventually(
        Duration::from_secs(5),
        "the back-channel logout ended the session",
        || async { race.stored(&cookie).await.is_none() },
    )
    .await;
    let refreshed = refresh.await.unwrap();
    race.provider.set_token_delay(Duration::ZERO).await.unwrap();
    assert_ne!(refreshed, 200, "the refresh kept the session");
    assert!(
        race.stored(&cookie).await.is_none(),
        "the back-channel logout was undone"
    );
    assert_eq!(spa.get("/bff/user").await.status(), 401);
}

/// Item 8: an idle-time touch that lands while a refresh is in flight does
/// not lose the rotated refresh token: afterwards the stored refresh token
/// is the newest (active at the provider) and the touch's time is kept.
async fn touch_during_a_refresh_keeps_the_newest_refresh_token(target: &dyn Target) {
    let race = Race::new(target.open().await).await;
    let bff = race.bff().await;
    let (spa, cookie) = signed_in(&race, &bff).await;
    race.until_due(&cookie).await;
    let before = race.stored(&cookie).await.unwrap();
    let refresh = refresh_in_flight(&race, &spa, Duration::from_millis(500)).await;
    // The touch: more than a second since login, so it writes.
    assert_eq!(spa.get("/bff/user").await.status(), 200);
    let touched = race.stored(&cookie).await.unwrap();
    assert!(touched.version > before.version, "the touch wrote");
    assert_eq!(refresh.await.unwrap(), 200);
    race.provider.set_token_delay(Duration::ZERO).await.unwrap();
    let after = race.stored(&cookie).await.unwrap();
    let refresh_token = after
        .data
        .tokens
        .refresh_token
        .as_ref()
        .unwrap()
        .expose()
        .to_owned();
    assert_ne!(
        Some(refresh_token.as_str()),
        before
            .data
            .tokens
            .refresh_token
            .as_ref()
            .map(|t| t.expose()),
        "rotated"
    );
    assert!(
        race.provider
            .refresh_token_active(&race.client, &refresh_token)
            .await
            .unwrap(),
        "the stored refresh token is not the newest"
    );
    assert!(
        after.data.last_seen >= touched.data.last_seen,
        "the touch was lost"
    );
    // And the session keeps working through the next refresh.
    race.until_due(&cookie).await;
    assert_eq!(spa.get("/bff/userinfo").await.status(), 200);
}

/// Many requests of one session in parallel (truly: a multi-thread
/// runtime), one of them a logout: once the logout has answered, the
/// session is gone for good, whatever the others were doing.
async fn parallel_requests_and_a_logout(target: &dyn Target) {
    let race = Race::new(target.open().await).await;
    let bff = race.bff().await;
    for round in 0..5 {
        let (spa, cookie) = signed_in(&race, &bff).await;
        if round % 2 == 1 {
            race.until_due(&cookie).await; // some rounds race a refresh too
        }
        let mut tasks = Vec::new();
        for i in 0..12 {
            let spa = spa.clone();
            let path = if i % 2 == 0 {
                "/bff/userinfo"
            } else {
                "/bff/user"
            };
            tasks.push(tokio::spawn(async move {
                spa.get(path).await.status().as_u16()
            }));
        }
        let logout = {
            let spa = spa.clone();
            tokio::spawn(async move { spa.post("/bff/logout", &json!({})).await.status().as_u16() })
        };
        assert_eq!(logout.await.unwrap(), 200);
        for t in tasks {
            let status = t.await.unwrap();
            assert!([200, 401].contains(&status), "round {round}: {status}");
        }
        assert!(
            race.stored(&cookie).await.is_none(),
            "round {round}: the logout was undone"
        );
    }
}

macro_rules! on_every_store {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() { super::$test(&super::Memory).await; })*
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() { super::$test(&super::Sqlite::new()).await; })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() { super::$test(&super::Redis::start().await).await; })*
        }
    };
}

on_every_store!(
    logout_during_a_refresh_is_never_undone,
    backchannel_logout_during_a_refresh_is_never_undone,
    touch_during_a_refresh_keeps_the_newest_refresh_token,
    parallel_requests_and_a_logout,
);

// ------------------------------------------------- across instances (item 9)

/// A TEST FAKE of an instance's cache whose notice of a change was lost:
/// `load` keeps answering the first copy it read of each record, while
/// `load_fresh` (and every write) goes to the shared store.
#[derive(Debug)]
struct StaleReads {
    inner: Arc<dyn Store>,
    seen: Mutex<HashMap<String, Record>>,
}

#[async_trait]
impl Store for StaleReads {
    async fn load(&self, key: &str) -> Result<Option<Record>, StoreError> {
        if let Some(r) = self.seen.lock().unwrap().get(key) {
            return Ok(Some(r.clone()));
        }
        let r = self.inner.load(key).await?;
        if let Some(r) = &r {
            self.seen.lock().unwrap().insert(key.to_owned(), r.clone());
        }
        Ok(r)
    }
    async fn load_fresh(&self, key: &str) -> Result<Option<Record>, StoreError> {
        self.inner.load_fresh(key).await
    }
    async fn create(&self, k: &str, p: &Payload, e: u64) -> Result<bool, StoreError> {
        self.inner.create(k, p, e).await
    }
    async fn update(&self, k: &str, v: u64, p: &Payload, e: u64) -> Result<Update, StoreError> {
        self.inner.update(k, v, p, e).await
    }
    async fn delete(&self, k: &str) -> Result<bool, StoreError> {
        self.inner.delete(k).await
    }
    async fn index_add(&self, n: &str, m: &str, u: u64) -> Result<(), StoreError> {
        self.inner.index_add(n, m, u).await
    }
    async fn index_add_all(&self, e: &[(&str, &str)], u: u64) -> Result<(), StoreError> {
        self.inner.index_add_all(e, u).await
    }
    async fn index_members(&self, n: &str) -> Result<Vec<String>, StoreError> {
        self.inner.index_members(n).await
    }
    async fn try_lock(&self, n: &str, t: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.inner.try_lock(n, t, ttl).await
    }
    async fn unlock(&self, n: &str, t: &str) -> Result<(), StoreError> {
        self.inner.unlock(n, t).await
    }
    async fn claim_once(&self, n: &str, u: u64) -> Result<bool, StoreError> {
        self.inner.claim_once(n, u).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

/// Item 9 and item 8 across instances: instance B serves a stale copy of
/// the session (its cache missed A's refresh). When B's copy is due, B's
/// refresh reads the store itself under the lock, finds A's rotated tokens
/// fresh and spends nothing (with the old read, B would spend the rotated-
/// away refresh token: `invalid_grant`, and the provider would revoke the
/// whole grant). B's idle-time touch from its stale copy does not overwrite
/// A's newer tokens either.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_with_a_stale_copy_never_spends_or_overwrites_a_rotated_token() {
    let shared = Memory.open().await;
    let race = Race::new(shared.clone()).await;
    let a = race.bff().await;
    let stale = Arc::new(StaleReads {
        inner: shared.clone(),
        seen: Mutex::default(),
    });
    let b = race.bff_on(stale).await;
    let (spa_a, cookie) = signed_in(&race, &a).await;
    let on_b = |path: &str| {
        reqwest::Client::new()
            .get(b.url(path))
            .header("cookie", format!("keyway={cookie}"))
            .send()
    };
    // B reads (and from now on serves) the first copy.
    assert_eq!(on_b("/bff/user").await.unwrap().status(), 200);
    race.until_due(&cookie).await;
    // A refreshes: new access token, rotated refresh token, in the store.
    let grants = race.refresh_grants().await;
    assert_eq!(spa_a.get("/bff/userinfo").await.status(), 200);
    assert_eq!(race.refresh_grants().await, grants + 1);
    let rotated = race.stored(&cookie).await.unwrap();
    // B's copy is due; B's refresh must find A's tokens instead of
    // spending the old refresh token.
    let r = on_b("/bff/userinfo").await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(
        race.refresh_grants().await,
        grants + 1,
        "B spent a refresh token again"
    );
    // B's touch from its stale copy (more than a second old) changes nothing.
    assert_eq!(on_b("/bff/user").await.unwrap().status(), 200);
    let after = race.stored(&cookie).await.unwrap();
    assert_eq!(
        after.data.tokens.refresh_token.as_ref().map(|t| t.expose()),
        rotated
            .data
            .tokens
            .refresh_token
            .as_ref()
            .map(|t| t.expose()),
        "an older copy overwrote the rotated refresh token"
    );
    let token = after
        .data
        .tokens
        .refresh_token
        .as_ref()
        .unwrap()
        .expose()
        .to_owned();
    assert!(
        race.provider
            .refresh_token_active(&race.client, &token)
            .await
            .unwrap()
    );
}

// -------------------------------------------------- parallel logins (item 10)

/// Item 10 and the checklist's "several logins in parallel in one browser":
/// 8 tabs of one browser start logins and complete them truly in parallel
/// (threads, not a loop); each completes exactly once, with its own
/// return path, and replaying any callback fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_starts_and_callbacks_each_complete_once() {
    let race = Race::new(Memory.open().await).await;
    let bff = race.bff().await;
    let spa = SpaClient::new(&bff);
    let mut starts = Vec::new();
    for tab in 0..8 {
        let spa = spa.clone();
        starts.push(tokio::spawn(async move {
            (tab, spa.start_login(Some(&format!("/tab/{tab}"))).await)
        }));
    }
    let mut responses = Vec::new();
    for s in starts {
        let (tab, url) = s.await.unwrap();
        let cb = spa
            .authorize(&race.provider, &url, "alice", "wonderland", Consent::Allow)
            .await;
        responses.push((tab, cb));
    }
    let mut callbacks = Vec::new();
    for (tab, cb) in responses.clone() {
        let spa = spa.clone();
        callbacks.push(tokio::spawn(async move {
            let r = spa.callback(&cb).await;
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (tab, status, body)
        }));
    }
    for c in callbacks {
        let (tab, status, body) = c.await.unwrap();
        assert_eq!(status, 200, "tab {tab}: {body}");
        assert_eq!(body["return_to"], format!("/tab/{tab}"));
    }
    let mut replays = Vec::new();
    for (_, cb) in responses {
        let spa = spa.clone();
        replays.push(tokio::spawn(async move {
            spa.callback(&cb).await.status().as_u16()
        }));
    }
    for r in replays {
        assert_eq!(r.await.unwrap(), 400, "a callback completed twice");
    }
}

//! One suite, three stores: the same test bodies run against the memory,
//! SQLite and Redis stores (a real `redis-server`), through the real provider
//! where a login is involved; then the Redis-only outage and start-up tests.

use keyway_backend::config::{SessionKey, SessionSettings, StoreSetting};
use keyway_backend::secret::Secret;
use keyway_backend::session::{Id, Identity, SessionData, Sessions, Tokens, now_secs};
use keyway_tests::bff::{Reserved, SpaClient, TestBff, client_for, env_for, reserve};
use keyway_tests::bff::{assert_error, json_of};
use keyway_tests::provider::{ProviderConfig, TestProvider};
use keyway_tests::redis::{RedisServer, free_port};
use keyway_tests::wait::eventually;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// `KEYWAY_SESSION_KEY` of the suite (32 bytes 0..31) and another key.
const KEY_A: &str = keyway_tests::bff::TEST_SESSION_KEY;
fn key_a() -> SessionKey {
    SessionKey(std::array::from_fn(|i| i as u8))
}
fn key_b() -> SessionKey {
    SessionKey([7; 32])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Memory,
    Sqlite,
    Redis,
}

/// A store for one test: its setting, and what keeps it alive.
struct Store {
    kind: Kind,
    setting: String,
    dir: tempfile::TempDir,
    redis: Option<RedisServer>,
}

impl Store {
    async fn new(kind: Kind) -> Store {
        let dir = tempfile::tempdir().unwrap();
        let (setting, redis) = match kind {
            Kind::Memory => ("memory".to_owned(), None),
            Kind::Sqlite => (
                format!("sqlite://{}", dir.path().join("keyway.db").display()),
                None,
            ),
            Kind::Redis => {
                let r = RedisServer::start().await.expect("redis-server starts");
                (r.url(), Some(r))
            }
        };
        Store {
            kind,
            setting,
            dir,
            redis,
        }
    }

    /// Whether two openings of this store see the same data (as two instances would).
    fn shared(&self) -> bool {
        self.kind != Kind::Memory
    }

    fn apply(&self, env: &mut BTreeMap<String, String>) {
        env.insert("KEYWAY_SESSION_STORE".into(), self.setting.clone());
        env.insert("KEYWAY_SESSION_KEY".into(), KEY_A.into());
    }

    fn settings(&self, keys: Vec<SessionKey>) -> SessionSettings {
        SessionSettings {
            store: StoreSetting::parse(&self.setting).unwrap(),
            idle_timeout: Duration::from_secs(3600),
            absolute_timeout: Duration::from_secs(7200),
            login_timeout: Duration::from_secs(600),
            keys,
        }
    }

    /// Opens the store as one more instance would (memory: a new, empty one).
    async fn open(&self) -> Sessions {
        Sessions::open(&self.settings(vec![key_a()])).await.unwrap()
    }

    /// Everything the store holds on disk or in Redis, as raw bytes.
    fn raw_contents(&self) -> Vec<u8> {
        match self.kind {
            Kind::Memory => Vec::new(),
            Kind::Sqlite => {
                let mut all = Vec::new();
                for f in std::fs::read_dir(self.dir.path()).unwrap() {
                    all.extend(std::fs::read(f.unwrap().path()).unwrap());
                }
                all
            }
            Kind::Redis => {
                let mut all = Vec::new();
                for (k, v) in self.redis.as_ref().unwrap().contents().unwrap() {
                    all.extend(k.into_bytes());
                    all.push(b'\n');
                    all.extend(v);
                }
                all
            }
        }
    }
}

/// Generates one `#[tokio::test]` per store for each test body `async fn(Store)`.
macro_rules! store_tests {
    ($($test:ident),* $(,)?) => {
        store_tests!(@kind memory Memory $($test),*);
        store_tests!(@kind sqlite Sqlite $($test),*);
        store_tests!(@kind redis Redis $($test),*);
    };
    (@kind $module:ident $kind:ident $($test:ident),*) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Store::new(super::Kind::$kind).await).await;
                }
            )*
        }
    };
}

store_tests!(
    full_flow_login_user_userinfo_logout,
    garbage_session_cookie_is_anonymous,
    session_id_is_rotated_at_login,
    record_sealed_with_another_key_is_anonymous,
    login_index_finds_sessions_by_sid_and_sub,
    try_lock_is_exclusive_and_expires,
    raw_store_holds_no_token_or_cookie_in_the_clear,
    restart_keeps_the_session_on_persistent_stores,
);

// ---------------------------------------------------------------- helpers

fn contains_jwt(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .any(|w| w.starts_with("eyJ") && w.matches('.').count() >= 2)
}

/// The `keyway=` cookie value a response sets.
fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("keyway="))
        .and_then(|c| c.split(';').next())
        .filter(|v| !v.is_empty())
        .expect("a session cookie")
        .to_owned()
}

fn provider_config(origin: &url::Url) -> ProviderConfig {
    ProviderConfig {
        clients: vec![client_for(origin)],
        ..ProviderConfig::default()
    }
}

/// A provider and a BFF on `store`; also returns the BFF's environment.
async fn stack_on(store: &Store) -> (TestProvider, TestBff, BTreeMap<String, String>) {
    let reserved = reserve().await;
    let provider = TestProvider::start(provider_config(&reserved.origin))
        .await
        .expect("provider starts");
    let mut env = env_for(&reserved.origin, &provider.issuer);
    store.apply(&mut env);
    let bff = TestBff::start(reserved, &env).await.expect("BFF starts");
    (provider, bff, env)
}

/// Restarts a BFF on the same port with the same settings.
async fn restart(bff: TestBff, env: &BTreeMap<String, String>) -> TestBff {
    let origin = bff.origin.clone();
    bff.stop().await;
    let listener = tokio::net::TcpListener::bind(origin.socket_addrs(|| None).unwrap()[0])
        .await
        .unwrap();
    TestBff::start(Reserved { listener, origin }, env)
        .await
        .expect("BFF restarts")
}

fn sample_session(sub: &str) -> SessionData {
    let now = now_secs();
    SessionData {
        identity: Identity {
            sub: sub.into(),
            name: None,
            email: None,
            email_verified: None,
            picture: None,
        },
        provider: "default".into(),
        sid: Some("provider-sid".into()),
        tokens: Tokens {
            access_token: Secret::new("access-token-value"),
            access_expires_at: Some(now + 3600),
            access_issued_at: now,
            refresh_token: Some(Secret::new("refresh-token-value")),
            id_token: None,
        },
        created_at: now,
        last_seen: now,
    }
}

// ---------------------------------------------------------------- the suite

async fn full_flow_login_user_userinfo_logout(store: Store) {
    let (provider, bff, _) = stack_on(&store).await;
    let spa = SpaClient::new(&bff);
    let (s, body) = json_of(spa.get("/bff/user").await).await;
    assert_error(s, &body, 401, "unauthenticated");
    let (s, body) = json_of(spa.login(&provider, "alice", "wonderland").await).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["user"]["sub"], "alice");
    let (s, user) = json_of(spa.get("/bff/user").await).await;
    assert_eq!(s, 200, "{user}");
    assert_eq!(user["email"], "alice@example.com");
    let (s, info) = json_of(spa.get("/bff/userinfo").await).await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["sub"], "alice");
    let (s, body) = json_of(spa.post("/bff/logout", &json!({})).await).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = json_of(spa.get("/bff/user").await).await;
    assert_error(s, &body, 401, "unauthenticated");
}

async fn garbage_session_cookie_is_anonymous(store: Store) {
    let (_provider, bff, _) = stack_on(&store).await;
    let http = reqwest::Client::new();
    for cookie in [
        "keyway=garbage",
        "keyway=AAAAAAAAAAAAAAAAAAAAAA",
        "keyway=kws_AAAAAAAAAAAAAAAAAA",
        "keyway=%ZZ; keyway-login=%7F",
    ] {
        let r = http
            .get(bff.url("/bff/user"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let (s, b) = json_of(r).await;
        assert_error(s, &b, 401, "unauthenticated");
    }
}

async fn session_id_is_rotated_at_login(store: Store) {
    let (provider, bff, _) = stack_on(&store).await;
    let spa = SpaClient::new(&bff);
    let first = session_cookie(&spa.login(&provider, "alice", "wonderland").await);
    let second = session_cookie(&spa.login(&provider, "alice", "wonderland").await);
    assert_ne!(first, second);
    let old = reqwest::Client::new()
        .get(bff.url("/bff/user"))
        .header("cookie", format!("keyway={first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401, "the pre-login id is dead");
    let (s, user) = json_of(spa.get("/bff/user").await).await;
    assert_eq!(s, 200, "{user}");
}

async fn record_sealed_with_another_key_is_anonymous(store: Store) {
    let sessions = store.open().await;
    let id = sessions.create(&sample_session("alice")).await.unwrap();
    let text = id.to_string();
    assert!(sessions.load(&text).await.unwrap().is_some());
    // An instance with only another key: anonymous, not an error.
    let other = sessions.with_keys(&[key_b()]);
    assert!(other.load(&text).await.unwrap().is_none());
    // Rotation: new key first, old key still listed, reads the old record.
    let rotated = sessions.with_keys(&[key_b(), key_a()]);
    let (_, data) = rotated
        .load(&text)
        .await
        .unwrap()
        .expect("old key decrypts");
    assert_eq!(data.identity.sub, "alice");
    // A record written after rotation is out of reach of the old key alone.
    rotated.save(id, &data).await.unwrap();
    assert!(sessions.load(&text).await.unwrap().is_none());
    assert!(other.load(&text).await.unwrap().is_some());
    if store.shared() {
        // Over HTTP too: a BFF whose key cannot open the record treats the cookie as anonymous.
        let (_provider, bff, _) = {
            let reserved = reserve().await;
            let provider = TestProvider::start(provider_config(&reserved.origin))
                .await
                .unwrap();
            let mut env = env_for(&reserved.origin, &provider.issuer);
            store.apply(&mut env);
            env.insert(
                "KEYWAY_SESSION_KEY".into(),
                "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=".into(),
            );
            let bff = TestBff::start(reserved, &env).await.unwrap();
            (provider, bff, env)
        };
        let fresh = sessions.create(&sample_session("bob")).await.unwrap();
        let r = reqwest::Client::new()
            .get(bff.url("/bff/user"))
            .header("cookie", format!("keyway={fresh}"))
            .send()
            .await
            .unwrap();
        let (s, b) = json_of(r).await;
        assert_error(s, &b, 401, "unauthenticated");
    }
}

async fn login_index_finds_sessions_by_sid_and_sub(store: Store) {
    let sessions = store.open().await;
    let now = now_secs();
    let (a1, a2, other, old) = (Id::default(), Id::default(), Id::default(), Id::default());
    sessions
        .index_login("corp", Some("sid-1"), "alice", a1, now + 600)
        .await
        .unwrap();
    sessions
        .index_login("corp", Some("sid-2"), "alice", a2, now + 60)
        .await
        .unwrap();
    sessions
        .index_login("corp", None, "alice", a2, now + 60)
        .await
        .unwrap();
    sessions
        .index_login("home", Some("sid-1"), "alice", other, now + 600)
        .await
        .unwrap();
    sessions
        .index_login("corp", Some("sid-1"), "alice", old, now.saturating_sub(1))
        .await
        .unwrap();

    assert_eq!(
        sessions.sessions_by_sid("corp", "sid-1").await.unwrap(),
        [a1]
    );
    assert_eq!(
        sessions.sessions_by_sid("corp", "sid-2").await.unwrap(),
        [a2]
    );
    assert_eq!(
        sessions.sessions_by_sid("home", "sid-1").await.unwrap(),
        [other]
    );
    assert!(
        sessions
            .sessions_by_sid("corp", "nope")
            .await
            .unwrap()
            .is_empty()
    );
    let mut subs = sessions.sessions_by_sub("corp", "alice").await.unwrap();
    subs.sort_by_key(|i| i.0);
    let mut want = vec![a1, a2];
    want.sort_by_key(|i| i.0);
    assert_eq!(subs, want, "each id once, the expired one gone");
    assert!(
        sessions
            .sessions_by_sub("corp", "bob")
            .await
            .unwrap()
            .is_empty()
    );

    // After a key rotation, entries filed under the old key are still found.
    let rotated = sessions.with_keys(&[key_b(), key_a()]);
    assert_eq!(
        rotated.sessions_by_sid("corp", "sid-1").await.unwrap(),
        [a1]
    );
    // With an unrelated key, nothing is found (and nothing fails).
    assert!(
        sessions
            .with_keys(&[key_b()])
            .sessions_by_sub("corp", "alice")
            .await
            .unwrap()
            .is_empty()
    );
    if store.shared() {
        let second = store.open().await;
        assert_eq!(second.sessions_by_sid("corp", "sid-1").await.unwrap(), [a1]);
    }
}

async fn try_lock_is_exclusive_and_expires(store: Store) {
    let a = store.open().await;
    let b = if store.shared() {
        store.open().await
    } else {
        a.clone()
    };
    let held = a
        .try_lock("refresh:x", Duration::from_millis(400))
        .await
        .unwrap()
        .expect("free lock is taken");
    assert!(
        b.try_lock("refresh:x", Duration::from_secs(5))
            .await
            .unwrap()
            .is_none(),
        "exclusive across instances"
    );
    let other_key = a
        .try_lock("refresh:y", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(other_key.is_some(), "keys are independent");

    // It expires by itself (the holder is still alive but past its ttl).
    let deadline = Instant::now() + Duration::from_secs(5);
    let taken = loop {
        if let Some(lock) = b
            .try_lock("refresh:x", Duration::from_secs(30))
            .await
            .unwrap()
        {
            break lock;
        }
        assert!(Instant::now() < deadline, "the lock did not expire");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The first holder's late release does not free the new holder's lock.
    held.release().await.unwrap();
    assert!(
        a.try_lock("refresh:x", Duration::from_secs(5))
            .await
            .unwrap()
            .is_none()
    );
    // Release frees it at once.
    taken.release().await.unwrap();
    let again = a
        .try_lock("refresh:x", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("released lock is free");
    // Dropping frees it too (in the background for shared stores).
    drop(again);
    eventually(Duration::from_secs(5), "a dropped lock is freed", || {
        let b = b.clone();
        async move {
            b.try_lock("refresh:x", Duration::from_secs(1))
                .await
                .unwrap()
                .is_some()
        }
    })
    .await;
}

async fn raw_store_holds_no_token_or_cookie_in_the_clear(store: Store) {
    if !store.shared() {
        return; // nothing outside the process to read
    }
    let (provider, bff, _) = stack_on(&store).await;
    let spa = SpaClient::new(&bff);
    let r = spa.login(&provider, "alice", "wonderland").await;
    assert_eq!(r.status(), 200);
    let cookie = session_cookie(&r);
    // A pending login too, so that both namespaces have a record.
    spa.start_login(Some("/later")).await;
    let (_, data) = store
        .open()
        .await
        .load(&cookie)
        .await
        .unwrap()
        .expect("the session is in the store");
    // Index it as the callback does, so that the index is checked too.
    store
        .open()
        .await
        .index_login(
            "default",
            data.sid.as_deref(),
            "alice",
            cookie.parse().unwrap(),
            now_secs() + 60,
        )
        .await
        .unwrap();
    drop(bff);
    let raw = store.raw_contents();
    assert!(!raw.is_empty());
    let text = String::from_utf8_lossy(&raw);
    assert!(!contains_jwt(&text), "a JWT is stored in the clear");
    let access = data.tokens.access_token.expose();
    assert!(!text.contains(access), "the access token is in the clear");
    if let Some(refresh) = &data.tokens.refresh_token {
        assert!(
            !text.contains(refresh.expose()),
            "the refresh token is in the clear"
        );
    }
    assert!(
        !text.contains(&cookie),
        "a usable session id is in the store"
    );
    assert!(!text.contains("alice"), "the subject is in the clear");
    if store.kind == Kind::Redis {
        let keys: Vec<String> = store
            .redis
            .as_ref()
            .unwrap()
            .contents()
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(
            keys.iter().all(|k| k.starts_with("kws_")
                || k.starts_with("kwp_")
                || k.starts_with("keyway:")),
            "every key says what it is: {keys:?}"
        );
        assert!(keys.iter().any(|k| k.starts_with("kws_")), "{keys:?}");
        assert!(keys.iter().any(|k| k.starts_with("kwp_")), "{keys:?}");
        // Every key expires (TTL in seconds; -1 would mean never).
        let redis = store.redis.as_ref().unwrap();
        for k in &keys {
            let ttl: i64 = String::from_utf8_lossy(&redis.cli(&["TTL", k]).unwrap())
                .trim()
                .parse()
                .unwrap();
            assert!(ttl > 0, "{k} has TTL {ttl}");
        }
    }
}

async fn restart_keeps_the_session_on_persistent_stores(store: Store) {
    let (provider, bff, env) = stack_on(&store).await;
    let spa = SpaClient::new(&bff);
    let (s, body) = json_of(spa.login(&provider, "alice", "wonderland").await).await;
    assert_eq!(s, 200, "{body}");
    let bff = restart(bff, &env).await;
    let (s, user) = json_of(spa.get("/bff/user").await).await;
    if store.shared() {
        assert_eq!(s, 200, "{user}");
        assert_eq!(user["sub"], "alice");
        let (s, info) = json_of(spa.get("/bff/userinfo").await).await;
        assert_eq!(s, 200, "{info}");
    } else {
        // The memory store is the process: a restart signs everyone out, cleanly.
        assert_error(s, &user, 401, "unauthenticated");
    }
    drop(bff);
}

// ---------------------------------------------------------------- Redis only

#[tokio::test]
async fn redis_outage_is_503_and_the_service_recovers_by_itself() {
    let store = Store::new(Kind::Redis).await;
    let (provider, bff, _) = stack_on(&store).await;
    let spa = SpaClient::new(&bff);
    let (s, body) = json_of(spa.login(&provider, "alice", "wonderland").await).await;
    assert_eq!(s, 200, "{body}");
    let mut redis = store.redis.expect("redis");
    redis.stop().await.unwrap();

    let started = Instant::now();
    let (s, body) = json_of(spa.get("/bff/user").await).await;
    assert_error(s, &body, 503, "session_store_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
    let (s, body) = json_of(spa.post("/bff/login", &json!({})).await).await;
    assert_error(s, &body, 503, "session_store_unavailable");
    let (s, ready) = json_of(reqwest::get(bff.url("/readyz")).await.unwrap()).await;
    assert_eq!(s, 503, "{ready}");
    assert_eq!(ready["session_store"], false);
    let h = reqwest::get(bff.url("/healthz")).await.unwrap();
    assert_eq!(h.status(), 200, "live while the store is down");

    redis.restart().await.unwrap();
    eventually(
        Duration::from_secs(20),
        "the session is served again",
        || {
            let spa = spa.clone();
            async move { spa.get("/bff/user").await.status() == 200 }
        },
    )
    .await;
    let (s, user) = json_of(spa.get("/bff/user").await).await;
    assert_eq!(s, 200, "{user}");
    assert_eq!(
        user["sub"], "alice",
        "the saved session survived the outage"
    );
    let r = reqwest::get(bff.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
}

/// How many `GET`s the server has answered (`INFO commandstats`).
fn get_calls(redis: &RedisServer) -> u64 {
    let out = redis.cli(&["INFO", "commandstats"]).unwrap();
    String::from_utf8_lossy(&out)
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Two instances on one Redis: repeated reads of a session are served from
/// the instance's memory (no `GET`), and a change or deletion made by the
/// other instance reaches it through Redis's invalidation, well before the
/// cache's safety bound (`CACHE_MAX_AGE`, 2 s) would have.
#[tokio::test]
async fn redis_cache_serves_repeat_reads_and_follows_changes_made_elsewhere() {
    let store = Store::new(Kind::Redis).await;
    let redis = store.redis.as_ref().unwrap();
    let a = store.open().await;
    let b = store.open().await;
    let (a, b) = (&a, &b);
    eventually(Duration::from_secs(10), "change tracking is on", || async {
        a.cache_on() && b.cache_on()
    })
    .await;
    let id = a.create(&sample_session("alice")).await.unwrap();
    let text = id.to_string();
    let text = &text;
    assert!(b.load(text).await.unwrap().is_some());
    let before = get_calls(redis);
    for _ in 0..50 {
        assert!(b.load(text).await.unwrap().is_some());
    }
    let gets = get_calls(redis) - before;
    assert!(
        gets < 5,
        "{gets} GETs for 50 reads: the cache does not serve"
    );

    // Within 1 s: only an invalidation can do it (the bound is 2 s).
    let within = Duration::from_secs(1);
    let mut renamed = sample_session("alice");
    renamed.identity.name = Some("Alice L.".into());
    a.save(id, &renamed).await.unwrap();
    eventually(within, "b sees a's update", || async {
        let (_, data) = b.load(text).await.unwrap().expect("still signed in");
        data.identity.name.as_deref() == Some("Alice L.")
    })
    .await;
    // Read again (cached), then signed out on a: b follows.
    assert!(b.load(text).await.unwrap().is_some());
    a.delete(id).await.unwrap();
    eventually(within, "b forgets the session a deleted", || async {
        b.load(text).await.unwrap().is_none()
    })
    .await;
}

/// With a session in the Redis cache, an outage is still `503` at once (the
/// contract: a request that needs the store while it is unreachable): the
/// instance turns its cache off when the tracking connection fails, well
/// before the 2 s bound on a cached entry would have dropped it; and turns
/// it back on when Redis is back.
#[tokio::test]
async fn redis_outage_turns_the_cache_off_and_recovery_turns_it_on() {
    use keyway_backend::session::redis::CACHE_MAX_AGE;
    let store = Store::new(Kind::Redis).await;
    let sessions = store.open().await;
    let sessions = &sessions;
    eventually(Duration::from_secs(10), "change tracking is on", || async {
        sessions.cache_on()
    })
    .await;
    let id = sessions.create(&sample_session("alice")).await.unwrap();
    let text = id.to_string();
    let text = &text;
    assert!(sessions.load(text).await.unwrap().is_some());
    let filled = Instant::now();
    assert!(
        sessions.load(text).await.unwrap().is_some(),
        "served from the cache"
    );

    let mut redis = store.redis.expect("redis");
    redis.stop().await.unwrap();
    eventually(
        Duration::from_millis(1500),
        "a cached session is refused while Redis is down",
        || async {
            matches!(
                sessions.load(text).await,
                Err(keyway_backend::Error::StoreUnavailable(_))
            )
        },
    )
    .await;
    assert!(
        filled.elapsed() < CACHE_MAX_AGE,
        "only the cache's age bound ended it ({:?} after it was read)",
        filled.elapsed()
    );
    assert!(!sessions.cache_on());

    redis.restart().await.unwrap();
    eventually(Duration::from_secs(15), "the cache is on again", || async {
        sessions.cache_on() && matches!(sessions.load(text).await, Ok(Some(_)))
    })
    .await;
}

#[tokio::test]
async fn redis_down_at_start_up_starts_not_ready_then_recovers() {
    let port = free_port();
    let mut redis = RedisServer::stopped_on(port, None).unwrap();
    let reserved = reserve().await;
    let provider = TestProvider::start(provider_config(&reserved.origin))
        .await
        .unwrap();
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SESSION_STORE".into(), redis.url());
    env.insert("KEYWAY_SESSION_KEY".into(), KEY_A.into());
    let config = keyway_backend::Config::from_sources(None, &env).unwrap();
    let started = Instant::now();
    let app = keyway_backend::router(config)
        .await
        .expect("starts without Redis");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "start-up took {:?}",
        started.elapsed()
    );
    let base = reserved.origin.as_str().trim_end_matches('/').to_owned();
    let task = tokio::spawn(async move { axum::serve(reserved.listener, app).await });

    let (s, ready) = json_of(reqwest::get(format!("{base}/readyz")).await.unwrap()).await;
    assert_eq!(s, 503, "{ready}");
    assert_eq!(ready["session_store"], false);
    let r = reqwest::Client::new()
        .post(format!("{base}/bff/login"))
        .header("x-csrf", "1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (s, body) = json_of(r).await;
    assert_error(s, &body, 503, "session_store_unavailable");

    redis.restart().await.unwrap();
    eventually(Duration::from_secs(20), "ready once Redis answers", || {
        let url = format!("{base}/readyz");
        async move { reqwest::get(url).await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    let r = reqwest::Client::new()
        .post(format!("{base}/bff/login"))
        .header("x-csrf", "1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    task.abort();
}

#[tokio::test]
async fn redis_with_a_password() {
    let redis = RedisServer::start_with(Some("s3cret-pw")).await.unwrap();
    let settings = |url: String| SessionSettings {
        store: StoreSetting::parse(&url).unwrap(),
        idle_timeout: Duration::from_secs(3600),
        absolute_timeout: Duration::from_secs(7200),
        login_timeout: Duration::from_secs(600),
        keys: vec![key_a()],
    };
    let sessions = Sessions::open(&settings(redis.url())).await.unwrap();
    let id = sessions.create(&sample_session("alice")).await.unwrap();
    assert!(sessions.load(&id.to_string()).await.unwrap().is_some());
    assert!(sessions.ping().await);
    // A wrong password stops start-up with a clear message that does not quote it.
    let wrong = format!("redis://:wrong-pw@127.0.0.1:{}", redis.port());
    let e = Sessions::open(&settings(wrong)).await.unwrap_err();
    assert!(e.contains("Redis refused the credentials"), "{e}");
    assert!(!e.contains("wrong-pw"), "{e}");
    let none = format!("redis://127.0.0.1:{}", redis.port());
    let e = Sessions::open(&settings(none)).await.unwrap_err();
    assert!(e.contains("Redis refused the credentials"), "{e}");
}

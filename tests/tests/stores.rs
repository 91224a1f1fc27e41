//! The store suite (`keyway_tests::store_suite`) against Keyway's own stores
//! — memory, SQLite and a real `redis-server` — then the Redis-only outage,
//! cache and start-up tests.

use keyway_backend::internals::{Sessions, Updated};
use keyway_backend::{SessionSettings, StoreSetting};
use keyway_tests::bff::{assert_error, client_for, env_for, json_of, reserve};
use keyway_tests::provider::{ProviderConfig, TestProvider};
use keyway_tests::redis::{RedisServer, free_port};
use keyway_tests::store_suite::{
    self, KEY_A, Memory, Redis, SessionsExt, Sqlite, Target, key_a, sample_session, settings,
    stack_on,
};
use keyway_tests::wait::eventually;
use serde_json::json;
use std::time::{Duration, Instant};

async fn memory() -> Memory {
    Memory
}

async fn sqlite() -> Sqlite {
    Sqlite::new()
}

async fn redis() -> Redis {
    Redis::start().await
}

keyway_tests::store_suite!(memory_store, super::memory);
keyway_tests::store_suite!(sqlite_store, super::sqlite);
keyway_tests::store_suite!(redis_store, super::redis);

// ---------------------------------------------------------------- Redis only

fn redis_settings(url: &str) -> SessionSettings {
    SessionSettings {
        store: StoreSetting::parse(url).unwrap(),
        ..settings(vec![key_a()])
    }
}

#[tokio::test]
async fn redis_outage_is_503_and_the_service_recovers_by_itself() {
    let target = redis().await;
    let (provider, bff, _) = stack_on(target.open().await).await;
    let spa = keyway_tests::bff::SpaClient::new(&bff);
    let (s, body) = json_of(spa.login(&provider, "alice", "wonderland").await).await;
    assert_eq!(s, 200, "{body}");
    let mut redis = target.server;
    redis.stop().await.unwrap();

    let started = Instant::now();
    let (s, body) = json_of(spa.get("/bff/user").await).await;
    assert_error(s, &body, 503, "session_store_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
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
    assert_eq!(
        reqwest::get(bff.url("/readyz")).await.unwrap().status(),
        200
    );
}

/// How many `command`s (lower case) the server has answered (`INFO
/// commandstats`).
fn calls(redis: &RedisServer, command: &str) -> u64 {
    let out = redis.cli(&["INFO", "commandstats"]).unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    String::from_utf8_lossy(&out)
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// How many `HMGET`s the server has answered.
fn reads(redis: &RedisServer) -> u64 {
    calls(redis, "hmget")
}

/// The Lua scripts go by their SHA-1: once the server has them, no write
/// sends a script's body (`EVAL`) again, every one is an `EVALSHA` (create,
/// update, a login's two index entries, unlock).
#[tokio::test]
async fn redis_scripts_are_sent_by_hash_once_the_server_has_them() {
    let target = redis().await;
    let sessions = store_suite::sessions(&target).await;
    let now = keyway_backend::internals::now_secs();
    let writes = |n: usize| {
        let sessions = sessions.clone();
        async move {
            for i in 0..n {
                let created = sessions.create(sample_session("alice")).await.unwrap();
                let mut renamed = (*created.data).clone();
                renamed.identity.name = Some(format!("Alice {i}"));
                let updated = sessions.update(&created, renamed).await.unwrap();
                assert!(matches!(updated, Updated::Saved(_)));
                let sid = format!("sid-{i}");
                sessions
                    .index_login("corp", Some(&sid), "alice", created.id, now + 600)
                    .await
                    .unwrap();
                let lock = sessions.try_lock("scripts", Duration::from_secs(30)).await;
                lock.unwrap().expect("free").release().await.unwrap();
            }
        }
    };
    writes(1).await;
    let (bodies, hashes) = (
        calls(&target.server, "eval"),
        calls(&target.server, "evalsha"),
    );
    writes(5).await;
    assert_eq!(
        calls(&target.server, "eval") - bodies,
        0,
        "a script's body was sent again"
    );
    let by_hash = calls(&target.server, "evalsha") - hashes;
    assert_eq!(by_hash, 5 * 5, "create, update, two index entries, unlock");
}

/// Two instances on one Redis: repeated reads of a session are served from
/// the instance's memory, and a change or deletion made by the other
/// instance reaches it through Redis's invalidation, well before the
/// cache's safety bound (`CACHE_MAX_AGE`, 2 s) would have.
#[tokio::test]
async fn redis_cache_serves_repeat_reads_and_follows_changes_made_elsewhere() {
    let target = redis().await;
    let a = store_suite::sessions(&target).await;
    let b = store_suite::sessions(&target).await;
    let (a, b) = (&a, &b);
    eventually(Duration::from_secs(10), "change tracking is on", || async {
        a.cache_on() && b.cache_on()
    })
    .await;
    let created = a.create(sample_session("alice")).await.unwrap();
    let text = created.id.to_string();
    let text = &text;
    assert!(b.load(text).await.unwrap().is_some());
    let before = reads(&target.server);
    for _ in 0..50 {
        assert!(b.load(text).await.unwrap().is_some());
    }
    let served = reads(&target.server) - before;
    assert!(
        served < 5,
        "{served} reads of Redis for 50 loads: the cache does not serve"
    );

    let within = Duration::from_secs(1);
    let current = a.load(text).await.unwrap().unwrap();
    let mut renamed = (*current.data).clone();
    renamed.identity.name = Some("Alice L.".into());
    assert!(matches!(
        a.update(&current, renamed).await.unwrap(),
        keyway_backend::internals::Updated::Saved(_)
    ));
    eventually(within, "b sees a's update", || async {
        let s = b.load(text).await.unwrap().expect("still signed in");
        s.data.identity.name.as_deref() == Some("Alice L.")
    })
    .await;
    assert!(b.load(text).await.unwrap().is_some());
    a.delete(created.id).await.unwrap();
    eventually(within, "b forgets the session a deleted", || async {
        b.load(text).await.unwrap().is_none()
    })
    .await;
}

/// With a session in the Redis cache, an outage is still `503` at once: the
/// instance turns its cache off when the tracking connection fails, well
/// before the 2 s bound on a cached entry would have dropped it; and turns
/// it back on when Redis is back.
#[tokio::test]
async fn redis_outage_turns_the_cache_off_and_recovery_turns_it_on() {
    use keyway_backend::internals::CACHE_MAX_AGE;
    let mut target = redis().await;
    let sessions = store_suite::sessions(&target).await;
    let sessions = &sessions;
    eventually(Duration::from_secs(10), "change tracking is on", || async {
        sessions.cache_on()
    })
    .await;
    let created = sessions.create(sample_session("alice")).await.unwrap();
    let text = created.id.to_string();
    let text = &text;
    assert!(sessions.load(text).await.unwrap().is_some());
    let filled = Instant::now();
    assert!(
        sessions.load(text).await.unwrap().is_some(),
        "served from the cache"
    );

    target.server.stop().await.unwrap();
    eventually(
        Duration::from_millis(1500),
        "a cached session is refused while Redis is down",
        || async { sessions.load(text).await.is_err() },
    )
    .await;
    assert!(
        filled.elapsed() < CACHE_MAX_AGE,
        "only the cache's age bound ended it ({:?} after it was read)",
        filled.elapsed()
    );
    assert!(!sessions.cache_on());

    target.server.restart().await.unwrap();
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
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&reserved.origin)],
        ..ProviderConfig::default()
    })
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
    let sessions = Sessions::open(&redis_settings(&redis.url())).await.unwrap();
    let created = sessions.create(sample_session("alice")).await.unwrap();
    assert!(
        sessions
            .load(&created.id.to_string())
            .await
            .unwrap()
            .is_some()
    );
    assert!(sessions.ping().await);
    // A wrong password stops start-up with a clear message that does not quote it.
    let wrong = format!("redis://:wrong-pw@127.0.0.1:{}", redis.port());
    let e = Sessions::open(&redis_settings(&wrong)).await.unwrap_err();
    assert!(e.contains("Redis refused the credentials"), "{e}");
    assert!(!e.contains("wrong-pw"), "{e}");
    let none = format!("redis://127.0.0.1:{}", redis.port());
    let e = Sessions::open(&redis_settings(&none)).await.unwrap_err();
    assert!(e.contains("Redis refused the credentials"), "{e}");
}

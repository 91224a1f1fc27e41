//! The store suite (`keyway_tests::store_suite`) against the highly
//! available stores on real servers — PostgreSQL, Redis behind Sentinel,
//! Redis Cluster — then what is particular to each: the PostgreSQL schema
//! and expiry, the cluster's key layout and change tracking.

use keyway_tests::store_targets::{Cluster, Postgres, Sentinel};

async fn postgres() -> Postgres {
    Postgres::start().await
}

async fn sentinel() -> Sentinel {
    Sentinel::start().await
}

async fn cluster() -> Cluster {
    Cluster::start().await
}

keyway_tests::store_suite!(postgres_store, super::postgres);
keyway_tests::store_suite!(sentinel_store, super::sentinel);
keyway_tests::store_suite!(cluster_store, super::cluster);

use keyway_backend::internals::{Sessions, Updated, postgres_expire_now};
use keyway_backend::{SessionSettings, StoreSetting};
use keyway_tests::bff::{TestBff, client_for, env_for, json_of, reserve};
use keyway_tests::postgres::PgServer;
use keyway_tests::provider::{ProviderConfig, TestProvider};
use keyway_tests::redis::free_port;
use keyway_tests::redis_ha::{RedisNode, info_field};
use keyway_tests::store_suite::{
    KEY_A, SessionsExt, Target, key_a, sample_session, settings, stack_on,
};
use keyway_tests::wait::eventually;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn settings_for(url: &str) -> SessionSettings {
    SessionSettings {
        store: StoreSetting::parse(url).unwrap(),
        ..settings(vec![key_a()])
    }
}

// ---------------------------------------------------------------- PostgreSQL

/// Instances starting together against an empty database all come up: the
/// schema is applied once, under sqlx's advisory lock, and every instance
/// sees the others' sessions.
#[tokio::test]
async fn postgres_instances_starting_at_once_on_an_empty_database_all_come_up() {
    let pg = PgServer::start().await.unwrap();
    let settings = settings_for(&pg.url());
    let opened = futures_util::future::join_all((0..4).map(|_| Sessions::open(&settings))).await;
    let instances: Vec<Sessions> = opened
        .into_iter()
        .map(|s| s.expect("every instance starts"))
        .collect();
    assert_eq!(
        pg.psql("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .unwrap(),
        "1",
        "the schema was applied once"
    );
    let created = instances[0].create(sample_session("alice")).await.unwrap();
    for other in &instances[1..] {
        assert!(other.ping().await);
        let read = other.load(&created.id.to_string()).await.unwrap();
        assert_eq!(read.expect("shared").data.identity.sub, "alice");
    }
}

/// A held row lock, as a request's transaction would hold it.
struct HeldRow(std::process::Child);

impl HeldRow {
    async fn hold(pg: &PgServer, key: &str) -> HeldRow {
        let sql = format!(
            "BEGIN; SELECT 1 FROM keyway_records WHERE key = '{key}' FOR UPDATE; SELECT pg_sleep(60);"
        );
        let child = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &pg.port().to_string()])
            .args(["-U", "keyway", "-d", "keyway", "-c", &sql])
            .env("PGPASSWORD", keyway_tests::postgres::PASSWORD)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("psql");
        eventually(Duration::from_secs(10), "the row is locked", || async {
            pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND state = 'active' AND pid <> pg_backend_pid()")
                .is_ok_and(|n| n == "1")
        })
        .await;
        HeldRow(child)
    }

    /// Ends the holding transaction (the server would otherwise keep it
    /// until its sleep ends).
    fn release(self, pg: &PgServer) {
        pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()")
            .unwrap();
    }
}

impl Drop for HeldRow {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The expiry pass deletes every kind of expired row and none that is
/// live, and never waits for a row a request holds (it skips it and takes
/// it on the next pass).
#[tokio::test]
async fn postgres_expiry_deletes_expired_rows_and_never_waits_for_a_held_one() {
    let pg = PgServer::start().await.unwrap();
    let store = keyway_tests::store_targets::Postgres { server: pg };
    let sessions = keyway_tests::store_suite::sessions(&store).await;
    let pg = &store.server;
    let live = sessions.create(sample_session("alice")).await.unwrap();
    let past = keyway_backend::internals::now_secs() - 10;
    pg.psql(&format!(
        "INSERT INTO keyway_records SELECT 'kws_old' || i, 1, '\\x00', {past} FROM generate_series(1, 2500) i;
         INSERT INTO keyway_login_index VALUES ('n', 'old', {past}), ('n', 'live', {past} + 3600);
         INSERT INTO keyway_claims VALUES ('old', {past}), ('live', {past} + 3600);
         INSERT INTO keyway_locks VALUES ('old', 't', now() - interval '1 second'),
                                         ('live', 't', now() + interval '1 hour');"
    ))
    .unwrap();
    let held = HeldRow::hold(pg, "kws_old7").await;
    let started = Instant::now();
    let deleted = tokio::time::timeout(Duration::from_secs(5), postgres_expire_now(&pg.url()))
        .await
        .expect("the pass does not wait for the held row")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "took {:?} (the lock timeout is 1 s)",
        started.elapsed()
    );
    assert_eq!(deleted, 2499 + 3, "every expired row but the held one");
    assert_eq!(
        pg.psql("SELECT string_agg(key, ',') FROM keyway_records WHERE key LIKE 'kws_old%'")
            .unwrap(),
        "kws_old7"
    );
    for (table, column) in [
        ("keyway_login_index", "member"),
        ("keyway_claims", "name"),
        ("keyway_locks", "name"),
    ] {
        assert_eq!(
            pg.psql(&format!("SELECT string_agg({column}, ',') FROM {table}"))
                .unwrap(),
            "live",
            "{table}"
        );
    }
    held.release(pg);
    eventually(
        Duration::from_secs(5),
        "the next pass takes the freed row",
        || async {
            postgres_expire_now(&pg.url()).await.unwrap();
            pg.psql("SELECT count(*) FROM keyway_records WHERE key LIKE 'kws_old%'")
                .is_ok_and(|n| n == "0")
        },
    )
    .await;
    assert!(
        sessions.load(&live.id.to_string()).await.unwrap().is_some(),
        "a live session stays"
    );
}

/// A wrong password stops start-up with a message that names PostgreSQL and
/// does not quote the password.
#[tokio::test]
async fn postgres_wrong_password_stops_start_up() {
    let pg = PgServer::start().await.unwrap();
    let wrong = format!(
        "postgres://keyway:not-the-pw@127.0.0.1:{}/keyway",
        pg.port()
    );
    let e = Sessions::open(&settings_for(&wrong)).await.unwrap_err();
    assert!(e.contains("PostgreSQL"), "{e}");
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(!e.contains("not-the-pw"), "{e}");
}

/// A server that is not up yet: Keyway starts not ready, applies the schema
/// once the server answers, and serves.
#[tokio::test]
async fn postgres_down_at_start_up_starts_not_ready_then_serves() {
    let port = free_port();
    let url = format!(
        "postgres://keyway:{}@127.0.0.1:{port}/keyway",
        keyway_tests::postgres::PASSWORD
    );
    let started = Instant::now();
    let sessions = Sessions::open(&settings_for(&url))
        .await
        .expect("starts without PostgreSQL");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!sessions.ping().await, "not ready");
    assert!(sessions.create(sample_session("alice")).await.is_err());
    let _pg = PgServer::start_on(port).await.unwrap();
    eventually(
        Duration::from_secs(20),
        "ready once PostgreSQL answers",
        || async { sessions.ping().await },
    )
    .await;
    let created = sessions.create(sample_session("alice")).await.unwrap();
    assert!(
        sessions
            .load(&created.id.to_string())
            .await
            .unwrap()
            .is_some()
    );
}

// ---------------------------------------------------------------- Redis HA

/// How many `HMGET`s (record reads) the running masters have answered.
fn record_reads<'a>(nodes: impl Iterator<Item = &'a RedisNode>) -> u64 {
    nodes
        .filter(|n| n.is_running())
        .map(|n| {
            let stats = n.cli(&["INFO", "commandstats"]).unwrap_or_default();
            info_field(&stats, "cmdstat_hmget")
                .and_then(|v| v.strip_prefix("calls=")?.split(',').next()?.parse().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// Two instances: repeated reads are served from memory, and an update or a
/// deletion by one reaches the other's cache within a second — for sessions
/// on every shard of a cluster (one broadcast subscription would hear of one
/// shard only).
async fn cache_follows_changes_made_elsewhere<'a>(
    target: &dyn Target,
    nodes: impl Fn() -> Vec<&'a RedisNode>,
) {
    let a = keyway_tests::store_suite::sessions(target).await;
    let b = keyway_tests::store_suite::sessions(target).await;
    let (a, b) = (&a, &b);
    eventually(Duration::from_secs(10), "change tracking is on", || async {
        a.cache_on() && b.cache_on()
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        let created = a.create(sample_session("alice")).await.unwrap();
        ids.push(created.id.to_string());
    }
    for id in &ids {
        assert!(b.load(id).await.unwrap().is_some());
    }
    let before = record_reads(nodes().into_iter());
    for _ in 0..20 {
        for id in &ids {
            assert!(b.load(id).await.unwrap().is_some());
        }
    }
    let served = record_reads(nodes().into_iter()) - before;
    assert!(
        served < 10,
        "{served} reads of Redis for 240 loads: the cache does not serve"
    );
    for id in &ids {
        let current = a.load(id).await.unwrap().unwrap();
        let mut renamed = (*current.data).clone();
        renamed.identity.name = Some("Alice L.".into());
        assert!(matches!(
            a.update(&current, renamed).await.unwrap(),
            Updated::Saved(_)
        ));
    }
    eventually(Duration::from_secs(1), "b sees every update", || async {
        for id in &ids {
            let s = b.load(id).await.unwrap().expect("still signed in");
            if s.data.identity.name.as_deref() != Some("Alice L.") {
                return false;
            }
        }
        true
    })
    .await;
    for id in &ids {
        a.delete(id.parse().unwrap()).await.unwrap();
    }
    eventually(
        Duration::from_secs(1),
        "b forgets every deleted session",
        || async {
            for id in &ids {
                if b.load(id).await.unwrap().is_some() {
                    return false;
                }
            }
            true
        },
    )
    .await;
}

#[tokio::test]
async fn cluster_cache_follows_changes_made_elsewhere_on_every_shard() {
    let target = cluster().await;
    cache_follows_changes_made_elsewhere(&target, || target.cluster.nodes.iter().collect()).await;
}

#[tokio::test]
async fn sentinel_cache_follows_changes_made_elsewhere() {
    let target = sentinel().await;
    cache_follows_changes_made_elsewhere(&target, || target.group.servers.iter().collect()).await;
}

/// On a cluster a session's record and its refresh lock live in one slot
/// (a request depends on one shard); the records spread over the shards.
#[tokio::test]
async fn cluster_keeps_a_session_and_its_lock_in_one_slot() {
    let target = cluster().await;
    let sessions = keyway_tests::store_suite::sessions(&target).await;
    let mut slots = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let created = sessions.create(sample_session("alice")).await.unwrap();
        let lock = sessions
            .try_lock_session(created.id, "refresh", Duration::from_secs(30))
            .await
            .unwrap()
            .expect("a free lock");
        let record = format!("keyway:s:{{{}}}", created.id.record_key());
        let keys = target.cluster.keys();
        let lock_key = keys
            .iter()
            .find(|k| k.starts_with(&format!("keyway:lock:{{{}}}:", created.id.record_key())))
            .unwrap_or_else(|| panic!("the lock key is tagged with the record: {keys:?}"));
        assert!(keys.contains(&record), "{keys:?}");
        let slot = |k: &str| target.cluster.cli(&["CLUSTER", "KEYSLOT", k]).unwrap();
        assert_eq!(slot(&record), slot(lock_key));
        slots.insert(slot(&record));
        lock.release().await.unwrap();
    }
    assert!(slots.len() > 1, "the sessions spread over slots");
}

/// `/readyz` names the store; `/metrics` says it is up, whether sessions are
/// served from memory, and counts writes no replica acknowledged.
async fn readyz_and_metrics_name(kind: &str, url: String, target: &dyn Target) {
    // A BFF on the configured store (not a store handed to the builder).
    let reserved = reserve().await;
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&reserved.origin)],
        ..ProviderConfig::default()
    })
    .await
    .unwrap();
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SESSION_KEY".into(), KEY_A.into());
    env.insert("KEYWAY_SESSION_STORE".into(), url);
    let bff = TestBff::start(reserved, &env).await.unwrap();
    let (s, ready) = json_of(reqwest::get(bff.url("/readyz")).await.unwrap()).await;
    assert_eq!(s, 200, "{ready}");
    assert_eq!(ready["session_store_kind"], kind);
    let metrics = || {
        let url = bff.url("/metrics");
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    let text = metrics().await;
    assert!(
        text.contains(&format!("keyway_session_store_up{{store=\"{kind}\"}} 1")),
        "{text}"
    );
    if kind == "postgres" {
        assert!(
            text.contains("keyway_session_store_cache_live{store=\"postgres\"} 0"),
            "{text}"
        );
    } else {
        eventually(Duration::from_secs(10), "the cache goes live", || async {
            let m = metrics().await;
            m.contains(&format!(
                "keyway_session_store_cache_live{{store=\"{kind}\"}} 1"
            )) && m.contains(&format!(
                "keyway_session_store_unreplicated_writes_total{{store=\"{kind}\"}} 0"
            ))
        })
        .await;
    }
    // A store handed to the builder is named as such.
    let (_provider, custom, _) = stack_on(target.open().await).await;
    let (_, ready) = json_of(reqwest::get(custom.url("/readyz")).await.unwrap()).await;
    assert_eq!(ready["session_store_kind"], "custom");
}

#[tokio::test]
async fn readyz_and_metrics_name_the_cluster_store() {
    let target = cluster().await;
    readyz_and_metrics_name("redis-cluster", target.cluster.url(), &target).await;
}

#[tokio::test]
async fn readyz_and_metrics_name_the_postgres_store() {
    let target = postgres().await;
    readyz_and_metrics_name("postgres", target.server.url(), &target).await;
}

/// On Sentinel a write counts only once a replica has it (`WAIT 1`): with
/// every replica frozen, a write waits for them (at most 50 ms) and is
/// counted as unreplicated; with replicas answering, none is.
#[tokio::test]
async fn sentinel_writes_wait_for_a_replica() {
    let target = sentinel().await;
    let sessions = keyway_tests::store_suite::sessions(&target).await;
    let unreplicated = || {
        sessions
            .store()
            .counters()
            .into_iter()
            .find(|(name, _)| *name == "unreplicated_writes_total")
            .map(|(_, n)| n)
            .expect("the Redis store counts unreplicated writes")
    };
    sessions.create(sample_session("alice")).await.unwrap();
    assert_eq!(unreplicated(), 0, "the replicas acknowledge");
    for replica in &target.group.servers[1..] {
        replica.freeze(true);
    }
    let started = Instant::now();
    let created = sessions.create(sample_session("bob")).await;
    let took = started.elapsed();
    for replica in &target.group.servers[1..] {
        replica.freeze(false);
    }
    created.expect("the write stands on the master");
    assert_eq!(
        unreplicated(),
        1,
        "a write no replica acknowledged is counted"
    );
    assert!(
        took >= Duration::from_millis(50),
        "it waited for a replica: {took:?}"
    );
    sessions.create(sample_session("carol")).await.unwrap();
    assert_eq!(unreplicated(), 1);
}

//! The Redis store: tower-sessions-redis-store for records, the fred pool
//! under it for the login index (sorted sets) and locks (`SET NX PX`).
//!
//! The pool reconnects by itself (exponential backoff up to 2 s, forever)
//! and every command times out after [`COMMAND_TIMEOUT`], so while Redis is
//! down each request that needs a session fails quickly with
//! `503 session_store_unavailable`, and service resumes when Redis is back.

use super::cache::{CACHE_CAPACITY, SessionCache};
use super::namespace::{Namespace, NamespacedStore};
use fred::interfaces::TrackingInterface;
use fred::prelude::*;
use fred::types::config::UnresponsiveConfig;
use fred::types::{Expiration, RespVersion, SetOptions};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tower_sessions_redis_store::RedisStore;

/// How long one Redis command may take before it is an error.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long opening a TCP (and TLS) connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long start-up waits for the first connection before going on not ready.
pub const STARTUP_WAIT: Duration = Duration::from_secs(3);
/// Connections in the pool.
const POOL_SIZE: usize = 4;
/// Prefix of the keys Keyway writes itself (index, locks).
pub const KEY_PREFIX: &str = "keyway:";

/// How long a session read from Redis is served from this process's cache
/// at most. Invalidations normally drop a changed entry at once; this bounds
/// the damage should one be lost without the connection being seen to fail.
pub const CACHE_MAX_AGE: Duration = Duration::from_secs(2);
/// How often the tracking connection is checked with a `PING`.
const TRACKING_HEARTBEAT: Duration = Duration::from_secs(1);

/// The opened Redis store.
pub struct Opened {
    /// Sessions.
    pub sessions: NamespacedStore,
    /// Pending logins.
    pub pending: NamespacedStore,
    /// The pool (index and locks).
    pub pool: Pool,
    /// Decoded sessions, kept in step with Redis by [`track_sessions`].
    pub cache: Arc<SessionCache>,
}

/// Builds the pool and starts connecting. Waits up to [`STARTUP_WAIT`] for
/// the first connection: a refused password or a bad URL stops start-up; a
/// server that does not answer yet does not (the pool keeps trying and
/// `/readyz` says 503 until it answers).
pub async fn open(url: &str) -> Result<Opened, String> {
    let config =
        Config::from_url(url).map_err(|e| format!("invalid Redis URL: {}", e.details()))?;
    let pool = Builder::from_config(Config {
        // Retry the first connection like any later one, instead of failing.
        fail_fast: false,
        ..config.clone()
    })
    .with_connection_config(|c| {
        c.connection_timeout = CONNECT_TIMEOUT;
        c.internal_command_timeout = CONNECT_TIMEOUT;
        c.max_command_attempts = 2;
        c.unresponsive = UnresponsiveConfig {
            max_timeout: Some(Duration::from_secs(3)),
            interval: Duration::from_secs(1),
        };
    })
    .with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT)
    .set_policy(ReconnectPolicy::new_exponential(0, 50, 2000, 2))
    .build_pool(POOL_SIZE)
    .map_err(|e| format!("invalid Redis settings: {}", e.details()))?;
    // One probe connection that does not retry tells a refused password
    // (stop start-up: retrying will not help) from a server that is not up
    // yet (go on; the pool keeps trying and `/readyz` says 503 meanwhile).
    let probe = Builder::from_config(config.clone())
        .with_connection_config(|c| {
            c.connection_timeout = CONNECT_TIMEOUT;
            c.internal_command_timeout = CONNECT_TIMEOUT;
        })
        .build()
        .map_err(|e| format!("invalid Redis settings: {}", e.details()))?;
    let reachable = match tokio::time::timeout(STARTUP_WAIT, probe.init()).await {
        Ok(Ok(_task)) => {
            // A server that wants a password nobody sent answers NOAUTH only to commands.
            let answer = probe.ping::<String>(None).await;
            let _ = probe.quit().await;
            match answer {
                Err(e) if is_auth_error(&e) => {
                    return Err(format!("Redis refused the credentials: {}", e.details()));
                }
                _ => true,
            }
        }
        Ok(Err(e)) if is_auth_error(&e) => {
            return Err(format!("Redis refused the credentials: {}", e.details()));
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e.details(), "Redis is not reachable yet; starting not ready and retrying");
            false
        }
        Err(_) => {
            tracing::warn!(
                "Redis did not answer within {STARTUP_WAIT:?}; starting not ready and retrying"
            );
            false
        }
    };
    pool.connect();
    if reachable {
        let _ = tokio::time::timeout(STARTUP_WAIT, pool.wait_for_connect()).await;
    }
    let store: Arc<RedisStore<Pool>> = Arc::new(RedisStore::new(pool.clone()));
    let cache = Arc::new(SessionCache::new(CACHE_CAPACITY, Some(CACHE_MAX_AGE)));
    track_sessions(&config, &cache)?;
    Ok(Opened {
        sessions: NamespacedStore::new(store.clone(), Namespace::Sessions),
        pending: NamespacedStore::new(store, Namespace::Pending),
        pool,
        cache,
    })
}

/// Keeps `cache` in step with Redis (see [`super::cache`]): a connection of
/// its own, in RESP3, with `CLIENT TRACKING ON BCAST PREFIX kws_`, on which
/// Redis pushes the name of every session key written, deleted or expired by
/// anyone; each drops its entry. The cache is off (and empty) until tracking
/// is on, and again whenever the connection reports an error or a `PING`
/// (every second) fails; it is emptied when tracking is turned on again.
/// Everything stops when the cache is dropped.
fn track_sessions(config: &Config, cache: &Arc<SessionCache>) -> Result<(), String> {
    let client = Builder::from_config(Config {
        version: RespVersion::RESP3,
        fail_fast: false,
        ..config.clone()
    })
    .with_connection_config(|c| {
        c.connection_timeout = CONNECT_TIMEOUT;
        c.internal_command_timeout = CONNECT_TIMEOUT;
    })
    .with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT)
    .set_policy(ReconnectPolicy::new_exponential(0, 50, 2000, 2))
    .build()
    .map_err(|e| format!("invalid Redis settings: {}", e.details()))?;
    cache.set_enabled(false);

    let weak = Arc::downgrade(cache);
    client.on_invalidation(move |invalidation| {
        let Some(cache) = weak.upgrade() else {
            return Ok(());
        };
        if invalidation.keys.is_empty() {
            // FLUSHDB / FLUSHALL: every key may be gone.
            cache.clear();
        }
        for key in invalidation.keys {
            match key.as_str().and_then(|k| k.parse().ok()) {
                Some(id) => cache.invalidate(&id),
                None => cache.clear(),
            }
        }
        Ok(())
    });
    let weak = Arc::downgrade(cache);
    client.on_error(move |(e, _)| {
        if let Some(cache) = weak.upgrade()
            && cache.is_enabled()
        {
            tracing::warn!(error = %e.details(), "Redis change tracking interrupted; session cache off until it is back");
            cache.set_enabled(false);
        }
        async { Ok(()) }
    });
    let weak = Arc::downgrade(cache);
    let tracker = client.clone();
    client.on_reconnect(move |_| {
        let weak = weak.clone();
        let tracker = tracker.clone();
        async move {
            if let Some(cache) = weak.upgrade() {
                // The server forgot the tracking with the old connection.
                cache.set_enabled(false);
                if let Err(e) = enable_tracking(&tracker, &cache).await {
                    tracing::warn!(error = %e.details(), "Redis change tracking could not be turned on; session cache off");
                }
            }
            Ok(())
        }
    });
    client.connect();
    let weak = Arc::downgrade(cache);
    tokio::spawn(heartbeat(client, weak));
    Ok(())
}

/// Turns tracking on for the connection and, if Redis agreed, the cache.
/// A refusal (e.g. Redis older than 6, or a proxy without `CLIENT
/// TRACKING`) leaves the cache off: every read goes to Redis.
async fn enable_tracking(client: &Client, cache: &SessionCache) -> Result<(), Error> {
    let result = client
        .start_tracking(Namespace::Sessions.marker(), true, false, false, false)
        .await;
    match &result {
        Ok(()) => {
            if !cache.is_enabled() {
                tracing::info!("Redis change tracking on; session cache on");
            }
            cache.set_enabled(true);
        }
        Err(_) => cache.set_enabled(false),
    }
    result
}

/// Checks the tracking connection every [`TRACKING_HEARTBEAT`]; turns the
/// cache off when it does not answer, on (with tracking) when it does again.
async fn heartbeat(client: Client, cache: Weak<SessionCache>) {
    let mut tick = tokio::time::interval(TRACKING_HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Refusals are logged once per streak, not every second.
    let mut refused = false;
    loop {
        tick.tick().await;
        let Some(cache) = cache.upgrade() else {
            let _ = client.quit().await;
            return;
        };
        let answered = client.is_connected() && client.ping::<String>(None).await.is_ok();
        if !answered {
            if cache.is_enabled() {
                tracing::warn!(
                    "Redis change tracking connection does not answer; session cache off"
                );
            }
            cache.set_enabled(false);
        } else if !cache.is_enabled() {
            match enable_tracking(&client, &cache).await {
                Ok(()) => refused = false,
                Err(e) if !refused => {
                    refused = true;
                    tracing::warn!(error = %e.details(), "Redis change tracking could not be turned on; session cache off, every read goes to Redis");
                }
                Err(_) => {}
            }
        }
    }
}

fn is_auth_error(e: &Error) -> bool {
    let text = e.details().to_ascii_uppercase();
    *e.kind() == ErrorKind::Auth
        || text.contains("WRONGPASS")
        || text.contains("NOAUTH")
        || text.contains("INVALID PASSWORD")
}

/// Adds `member` to the sorted set `key` with score `until`, removes members
/// past `now`, and lets the key expire with its newest member, atomically.
pub async fn index_add(
    pool: &Pool,
    key: &str,
    member: &str,
    until: u64,
    now: u64,
) -> Result<(), Error> {
    const SCRIPT: &str = r#"
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if newest[2] then redis.call('EXPIREAT', KEYS[1], newest[2]) end
return 1
"#;
    let _: i64 = pool
        .eval(
            SCRIPT,
            vec![key.to_owned()],
            vec![until.to_string(), member.to_owned(), now.to_string()],
        )
        .await?;
    Ok(())
}

/// The members of `key` whose score is past `now`.
pub async fn index_get(pool: &Pool, key: &str, now: u64) -> Result<Vec<String>, Error> {
    pool.zrangebyscore(key, format!("({now}"), "+inf", false, None)
        .await
}

/// `SET name token PX ttl NX`.
pub async fn try_lock(pool: &Pool, name: &str, token: &str, ttl: Duration) -> Result<bool, Error> {
    let ms = ttl.as_millis().max(1) as i64;
    let set: Option<String> = pool
        .set(
            name,
            token,
            Some(Expiration::PX(ms)),
            Some(SetOptions::NX),
            false,
        )
        .await?;
    Ok(set.is_some())
}

/// Deletes `name` if it still holds `token`.
pub async fn unlock(pool: &Pool, name: &str, token: &str) -> Result<(), Error> {
    const SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;
    let _: i64 = pool
        .eval(SCRIPT, vec![name.to_owned()], vec![token.to_owned()])
        .await?;
    Ok(())
}

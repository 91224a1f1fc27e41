//! The Redis store: sessions shared by several instances, through fred.
//!
//! A record is a hash (`v` version, `d` sealed data, `e` expiry) under
//! `keyway:s:<record key>`, expiring with the session; it is created and
//! updated by Lua scripts that check the version, so writes are
//! compare-and-set. The login index is a sorted set per name (score: the
//! entry's end), locks are `SET NX PX`, the replay cache `SET NX EXAT`.
//!
//! The pool reconnects by itself (exponential backoff up to 2 s, forever)
//! and every command times out after [`COMMAND_TIMEOUT`], so while Redis is
//! down each request that needs a session fails quickly with `503
//! session_store_unavailable`, and service resumes when Redis is back.
//!
//! Change notices ([`Store::watch`]): a connection of its own, in RESP3, with
//! `CLIENT TRACKING ON BCAST PREFIX keyway:s:`, on which Redis pushes the
//! name of every session key written, deleted or expired by anyone. While
//! that connection errors or misses a `PING` (every second) the cache is
//! off; it is emptied whenever tracking is turned on again, so a missed
//! notice cannot leave a stale entry. A server that refuses tracking (Redis
//! older than 6) leaves the cache off.

use super::{ChangeSink, Payload, Record, Store, StoreError, Update, Watch};
use crate::session::data::now_secs;
use async_trait::async_trait;
use fred::interfaces::TrackingInterface;
use fred::prelude::*;
use fred::types::config::UnresponsiveConfig;
use fred::types::{Expiration, RespVersion, SetOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long one Redis command may take before it is an error.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long opening a TCP (and TLS) connection may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long start-up waits for the first connection before going on not ready.
pub(crate) const STARTUP_WAIT: Duration = Duration::from_secs(3);
/// How long a session read from Redis is served from memory at most:
/// notices normally drop a changed entry at once; this bounds the damage
/// should one be lost without the connection being seen to fail.
pub const CACHE_MAX_AGE: Duration = Duration::from_secs(2);
/// Connections in the pool.
const POOL_SIZE: usize = 4;
/// How often the tracking connection is checked with a `PING`.
const TRACKING_HEARTBEAT: Duration = Duration::from_secs(1);
/// Prefix of record keys (tracked).
const RECORD_PREFIX: &str = "keyway:s:";
/// Prefix of the other keys Keyway writes (index, locks, replay cache).
const KEY_PREFIX: &str = "keyway:";

const CREATE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', 1, 'd', ARGV[1], 'e', ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return 1
"#;

const UPDATE: &str = r#"
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
if v ~= ARGV[1] then return -2 end
local n = tonumber(v) + 1
redis.call('HSET', KEYS[1], 'v', n, 'd', ARGV[2], 'e', ARGV[3])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return n
"#;

const INDEX_ADD: &str = r#"
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if newest[2] then redis.call('EXPIREAT', KEYS[1], newest[2]) end
return 1
"#;

const UNLOCK: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// The Redis store.
pub(crate) struct RedisStore {
    pool: Pool,
    config: Config,
    /// The tracking connection, once [`Store::watch`] started it.
    tracker: Mutex<Option<Client>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

fn err(e: Error) -> StoreError {
    StoreError(e.details().to_owned())
}

fn record_key(key: &str) -> String {
    format!("{RECORD_PREFIX}{key}")
}

fn index_key(name: &str) -> String {
    format!("{KEY_PREFIX}index:{name}")
}

fn lock_key(name: &str) -> String {
    format!("{KEY_PREFIX}lock:{name}")
}

fn claim_key(name: &str) -> String {
    format!("{KEY_PREFIX}once:{name}")
}

impl RedisStore {
    /// Builds the pool and starts connecting. Waits up to [`STARTUP_WAIT`]
    /// for the first connection: a refused password or a bad URL stops
    /// start-up; a server that does not answer yet does not (the pool keeps
    /// trying and `/readyz` says 503 until it answers).
    pub(crate) async fn open(url: &str) -> Result<Arc<dyn Store>, String> {
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
        let reachable = probe(&config).await?;
        pool.connect();
        if reachable {
            let _ = tokio::time::timeout(STARTUP_WAIT, pool.wait_for_connect()).await;
        }
        Ok(Arc::new(Self {
            pool,
            config,
            tracker: Mutex::new(None),
        }))
    }
}

/// One connection that does not retry tells a refused password (stop
/// start-up: retrying will not help) from a server that is not up yet (go
/// on; the pool keeps trying and `/readyz` says 503 meanwhile).
async fn probe(config: &Config) -> Result<bool, String> {
    let probe = Builder::from_config(config.clone())
        .with_connection_config(|c| {
            c.connection_timeout = CONNECT_TIMEOUT;
            c.internal_command_timeout = CONNECT_TIMEOUT;
        })
        .build()
        .map_err(|e| format!("invalid Redis settings: {}", e.details()))?;
    let refused = |e: &Error| format!("Redis refused the credentials: {}", e.details());
    match tokio::time::timeout(STARTUP_WAIT, probe.init()).await {
        Ok(Ok(_task)) => {
            // A server that wants a password nobody sent answers NOAUTH only to commands.
            let answer = probe.ping::<String>(None).await;
            let _ = probe.quit().await;
            match answer {
                Err(e) if is_auth_error(&e) => Err(refused(&e)),
                _ => Ok(true),
            }
        }
        Ok(Err(e)) if is_auth_error(&e) => Err(refused(&e)),
        Ok(Err(e)) => {
            tracing::warn!(error = %e.details(), "Redis is not reachable yet; starting not ready and retrying");
            Ok(false)
        }
        Err(_) => {
            tracing::warn!(
                "Redis did not answer within {STARTUP_WAIT:?}; starting not ready and retrying"
            );
            Ok(false)
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

#[async_trait]
impl Store for RedisStore {
    async fn load(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let fields: (Option<u64>, Option<bytes::Bytes>, Option<u64>) = self
            .pool
            .hmget(record_key(key), vec!["v", "d", "e"])
            .await
            .map_err(err)?;
        Ok(match fields {
            (Some(version), Some(data), Some(expires_at)) if expires_at > now_secs() => {
                Some(Record {
                    version,
                    expires_at,
                    payload: Payload::from_bytes(data),
                })
            }
            _ => None,
        })
    }

    async fn create(
        &self,
        key: &str,
        payload: &Payload,
        expires_at: u64,
    ) -> Result<bool, StoreError> {
        let args: Vec<Value> = vec![
            payload.bytes().clone().into(),
            expires_at.to_string().into(),
        ];
        let created: i64 = self
            .pool
            .eval(CREATE, vec![record_key(key)], args)
            .await
            .map_err(err)?;
        Ok(created == 1)
    }

    async fn update(
        &self,
        key: &str,
        expected: u64,
        payload: &Payload,
        expires_at: u64,
    ) -> Result<Update, StoreError> {
        let args: Vec<Value> = vec![
            expected.to_string().into(),
            payload.bytes().clone().into(),
            expires_at.to_string().into(),
        ];
        let answer: i64 = self
            .pool
            .eval(UPDATE, vec![record_key(key)], args)
            .await
            .map_err(err)?;
        Ok(match answer {
            -1 => Update::Gone,
            -2 => Update::Conflict,
            v => Update::Written(v as u64),
        })
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let n: i64 = self.pool.del(record_key(key)).await.map_err(err)?;
        Ok(n > 0)
    }

    async fn index_add(&self, name: &str, member: &str, until: u64) -> Result<(), StoreError> {
        let args = vec![until.to_string(), member.to_owned(), now_secs().to_string()];
        let _: i64 = self
            .pool
            .eval(INDEX_ADD, vec![index_key(name)], args)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn index_members(&self, name: &str) -> Result<Vec<String>, StoreError> {
        self.pool
            .zrangebyscore(
                index_key(name),
                format!("({}", now_secs()),
                "+inf",
                false,
                None,
            )
            .await
            .map_err(err)
    }

    async fn try_lock(&self, name: &str, token: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ms = ttl.as_millis().max(1) as i64;
        let set: Option<String> = self
            .pool
            .set(
                lock_key(name),
                token,
                Some(Expiration::PX(ms)),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(err)?;
        Ok(set.is_some())
    }

    async fn unlock(&self, name: &str, token: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .pool
            .eval(UNLOCK, vec![lock_key(name)], vec![token.to_owned()])
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn claim_once(&self, name: &str, until: u64) -> Result<bool, StoreError> {
        if until <= now_secs() {
            // Already over: nothing to remember.
            return Ok(true);
        }
        let until = until as i64;
        let set: Option<String> = self
            .pool
            .set(
                claim_key(name),
                "1",
                Some(Expiration::EXAT(until)),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(err)?;
        Ok(set.is_some())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.pool
            .ping::<String>(None)
            .await
            .map(|_| ())
            .map_err(err)
    }

    fn watch(&self, sink: Weak<dyn ChangeSink>) -> Watch {
        match track_changes(&self.config, sink) {
            Ok(client) => {
                *self
                    .tracker
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(client);
                Watch::Notified {
                    max_age: CACHE_MAX_AGE,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Redis change tracking cannot start; sessions are read from Redis every time");
                Watch::Unwatched
            }
        }
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        if let Some(client) = self.tracker.lock().ok().and_then(|mut t| t.take())
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}

/// Starts the tracking connection that feeds `sink` (see the module docs).
fn track_changes(config: &Config, sink: Weak<dyn ChangeSink>) -> Result<Client, String> {
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
    if let Some(s) = sink.upgrade() {
        s.set_live(false);
    }
    let on_notice = sink.clone();
    client.on_invalidation(move |invalidation| {
        let Some(sink) = on_notice.upgrade() else {
            return Ok(());
        };
        if invalidation.keys.is_empty() {
            // FLUSHDB / FLUSHALL: every key may be gone.
            sink.all_changed();
        }
        for key in invalidation.keys {
            match key.as_str().and_then(|k| k.strip_prefix(RECORD_PREFIX)) {
                Some(k) => sink.changed(k),
                None => sink.all_changed(),
            }
        }
        Ok(())
    });
    // Whether tracking is on for the current connection: an error or a
    // reconnection (the server forgets tracking with the old connection)
    // turns it and the cache off until the heartbeat turns them on again.
    let tracking = Arc::new(AtomicBool::new(false));
    for interrupted in [true, false] {
        let (sink, tracking) = (sink.clone(), tracking.clone());
        let off = move || {
            tracking.store(false, Ordering::SeqCst);
            if let Some(sink) = sink.upgrade() {
                sink.set_live(false);
            }
        };
        if interrupted {
            client.on_error(move |(e, _)| {
                tracing::debug!(error = %e.details(), "Redis change tracking interrupted; session cache off until it is back");
                off();
                async { Ok(()) }
            });
        } else {
            client.on_reconnect(move |_| {
                off();
                async { Ok(()) }
            });
        }
    }
    client.connect();
    tokio::spawn(heartbeat(client.clone(), sink, tracking));
    Ok(client)
}

/// Checks the tracking connection every [`TRACKING_HEARTBEAT`]; turns the
/// cache off when it does not answer, on (with tracking) when it does again.
/// After a reconnection the server has forgotten the tracking: the next beat
/// sees the cache off and turns tracking on again first.
async fn heartbeat(client: Client, sink: Weak<dyn ChangeSink>, tracking: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(TRACKING_HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refused = false;
    loop {
        tick.tick().await;
        let Some(s) = sink.upgrade() else {
            let _ = client.quit().await;
            return;
        };
        let answered = client.is_connected() && client.ping::<String>(None).await.is_ok();
        if !answered {
            if tracking.swap(false, Ordering::SeqCst) {
                tracing::warn!(
                    "Redis change tracking connection does not answer; session cache off"
                );
            }
            s.set_live(false);
            continue;
        }
        if tracking.load(Ordering::SeqCst) {
            continue;
        }
        match client
            .start_tracking(RECORD_PREFIX, true, false, false, false)
            .await
        {
            Ok(()) => {
                tracing::info!("Redis change tracking on; session cache on");
                refused = false;
                // Emptied as it turns on: nothing from before tracking stays.
                s.set_live(false);
                tracking.store(true, Ordering::SeqCst);
                s.set_live(true);
            }
            Err(e) if !refused => {
                refused = true;
                tracing::warn!(error = %e.details(), "Redis change tracking could not be turned on; session cache off, every read goes to Redis");
            }
            Err(_) => {}
        }
    }
}

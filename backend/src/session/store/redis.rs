//! The Redis store: sessions shared by several instances, through fred, on
//! one server, a master behind Sentinel, or a Cluster ([`RedisTarget`]).
//!
//! A record is a hash (`v` version, `d` sealed data, `e` expiry) under
//! `keyway:s:<record key>` (`keyway:s:{<record key>}` on a Cluster),
//! expiring with the session; it is created and updated by Lua scripts that
//! check the version, so writes are compare-and-set. The login index is a
//! sorted set per name (score: the entry's end), locks are `SET NX PX`, the
//! replay cache `SET NX EXAT`. Each command touches one key. Scripts are
//! sent by their SHA-1 (`EVALSHA`, see [`Script`]); a login's index entries
//! go in one pipeline ([`Store::index_add_all`]).
//!
//! The pool reconnects by itself (exponential backoff up to 2 s, forever;
//! on Sentinel and Cluster fred finds the new master after a failover) and
//! every command times out after [`COMMAND_TIMEOUT`], so while Redis is
//! down each request that needs a session fails quickly with `503
//! session_store_unavailable`, and service resumes when Redis is back.
//!
//! **Writes survive a failover.** Redis replicates asynchronously: a master
//! that dies right after answering may take the write with it, and the
//! promoted replica would bring back a logged-out session or a spent refresh
//! token. So on Sentinel and Cluster every write Keyway relies on is
//! followed by `WAIT 1` on the same connection: it counts only once a
//! replica has it (a login's pipelined index entries: one `WAIT` per
//! master they went to, which covers every write before it on that
//! connection). When no replica answers within [`REPLICA_WAIT`] (none is
//! left after a failover, until one is added back) the write stands on the
//! master alone and is counted in `keyway_session_store_unreplicated_writes_total`.
//!
//! Change notices ([`Store::watch`]): a client of its own, in RESP3, with
//! `CLIENT TRACKING ON` (fred's `start_tracking`, on every master of a
//! Cluster). While tracking is on, records are read through that client, so
//! Redis remembers which keys this instance holds and pushes their names
//! when anyone writes, deletes or expires them; that works alike on one
//! server, Sentinel and Cluster (where one broadcast subscription would hear
//! of one shard only). While that client errors, reconnects (a failover) or
//! misses a `PING` (every second) the cache is off; it is emptied whenever
//! tracking is turned on again, so a missed notice cannot leave a stale
//! entry. A server that refuses tracking (Redis older than 6) leaves the
//! cache off.

use super::redis_target::{RedisKind, RedisTarget};
use super::{ChangeSink, Payload, Record, Store, StoreError, Update, Watch};
use crate::session::data::now_secs;
use async_trait::async_trait;
use fred::bytes_utils::Str;
use fred::interfaces::ClusterInterface;
use fred::interfaces::TrackingInterface;
use fred::prelude::*;
use fred::types::config::UnresponsiveConfig;
use fred::types::{ClusterHash, CustomCommand, Expiration, RespVersion, SetOptions};
use fred::util::{redis_keyslot, static_str};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock, Weak};
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
/// How long a write waits for a replica's acknowledgement (`WAIT`) on
/// Sentinel and Cluster. A replica on the same network answers in about a
/// round trip; this only bounds the wait when none is left.
pub(crate) const REPLICA_WAIT: Duration = Duration::from_millis(50);

const CREATE_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', 1, 'd', ARGV[1], 'e', ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return 1
"#;

const UPDATE_LUA: &str = r#"
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
if v ~= ARGV[1] then return -2 end
local n = tonumber(v) + 1
redis.call('HSET', KEYS[1], 'v', n, 'd', ARGV[2], 'e', ARGV[3])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return n
"#;

const INDEX_ADD_LUA: &str = r#"
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if newest[2] then redis.call('EXPIREAT', KEYS[1], newest[2]) end
return 1
"#;

const UNLOCK_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

static CREATE: LazyLock<Script> = LazyLock::new(|| Script::new(CREATE_LUA));
static UPDATE: LazyLock<Script> = LazyLock::new(|| Script::new(UPDATE_LUA));
static INDEX_ADD: LazyLock<Script> = LazyLock::new(|| Script::new(INDEX_ADD_LUA));
static UNLOCK: LazyLock<Script> = LazyLock::new(|| Script::new(UNLOCK_LUA));

/// A Lua script that Redis runs by its SHA-1 (`EVALSHA`): the body is not
/// sent, nor hashed again by the server, at every call (fred's `eval` sends
/// it whole each time). A server that does not have it cached answers
/// `NOSCRIPT` without running anything — after a restart, a `SCRIPT FLUSH`,
/// a failover to a replica that never ran it, or the first call on each
/// shard of a Cluster — and the call is made again with `EVAL`, which runs
/// the script and caches it on the server that answered (the key's shard on
/// a Cluster: each shard loads it on its own). fred's own
/// `Script::evalsha_with_reload` does the same with a `SCRIPT LOAD` round
/// trip more, behind a feature that brings in another SHA-1 crate.
struct Script {
    body: &'static str,
    sha1: Str,
}

impl Script {
    fn new(body: &'static str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, body.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        Self {
            body,
            sha1: Str::from(hex),
        }
    }

    /// Runs the script on `key` with `args` through `client`.
    async fn run<R: FromValue>(
        &self,
        client: &Client,
        key: &str,
        args: Vec<Value>,
    ) -> Result<R, Error> {
        match client.evalsha(self.sha1.clone(), key, args.clone()).await {
            Err(e) if is_noscript(&e) => self.run_body(client, key, args).await,
            answer => answer,
        }
    }

    /// Runs the script with its body (`EVAL`), which also caches it.
    async fn run_body<R: FromValue>(
        &self,
        client: &Client,
        key: &str,
        args: Vec<Value>,
    ) -> Result<R, Error> {
        client.eval(static_str(self.body), key, args).await
    }
}

/// Whether the server does not have the script (`EVALSHA`'s `NOSCRIPT`).
fn is_noscript(e: &Error) -> bool {
    e.details().starts_with("NOSCRIPT")
}

/// The Redis store.
pub(crate) struct RedisStore {
    pool: Pool,
    target: RedisTarget,
    /// The tracking client, once [`Store::watch`] started it.
    tracker: OnceLock<Client>,
    /// Whether tracking is on for the tracker's current connections (then
    /// records are read through it).
    tracking: Arc<AtomicBool>,
    /// Writes that no replica acknowledged in time.
    unreplicated: AtomicU64,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

fn err(e: Error) -> StoreError {
    StoreError(e.details().to_owned())
}

impl RedisStore {
    /// Builds the pool and starts connecting. Waits up to [`STARTUP_WAIT`]
    /// for the first connection: a refused password or a bad URL stops
    /// start-up; a server that does not answer yet does not (the pool keeps
    /// trying and `/readyz` says 503 until it answers).
    pub(crate) async fn open(target: RedisTarget) -> Result<Arc<dyn Store>, String> {
        let config = target.config.clone();
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
            target,
            tracker: OnceLock::new(),
            tracking: Arc::new(AtomicBool::new(false)),
            unreplicated: AtomicU64::new(0),
        }))
    }

    /// Where records are read: through the tracker while tracking is on (so
    /// Redis tracks what this instance caches), else through the pool.
    fn reader(&self) -> &Client {
        match self.tracker.get() {
            Some(tracker) if self.tracking.load(Ordering::SeqCst) => tracker,
            _ => self.pool.next(),
        }
    }

    /// Waits until a replica has what `client` wrote to `key`'s node (see
    /// the module docs): `writes` writes, counted as unreplicated if no
    /// replica acknowledges in time; never fails the write.
    async fn replicated(&self, client: &Client, key: &str, writes: u64) {
        let replicas = self.target.replicas_to_wait();
        if replicas == 0 {
            return;
        }
        let options = Options {
            cluster_hash: Some(ClusterHash::Custom(redis_keyslot(key.as_bytes()))),
            timeout: Some(REPLICA_WAIT + COMMAND_TIMEOUT),
            ..Options::default()
        };
        let millis = REPLICA_WAIT.as_millis() as i64;
        let acked: Result<i64, Error> = client.with_options(&options).wait(replicas, millis).await;
        if !matches!(acked, Ok(n) if n >= replicas) {
            self.unreplicated.fetch_add(writes, Ordering::Relaxed);
            tracing::debug!("a session store write was not acknowledged by a replica in time");
        }
    }

    /// [`Self::replicated`] for writes `client` made to each of `keys`: one
    /// `WAIT` per master that took them. `WAIT` counts every write made
    /// before it on its connection, so on one server or behind Sentinel one
    /// covers them all. On a Cluster the keys may live on different shards,
    /// each written over its own connection, and a `WAIT` covers only the
    /// connection it is sent on: the keys are grouped by the master that
    /// owns their slot in fred's routing table (by slot when the table is
    /// not known: never fewer `WAIT`s than masters), one `WAIT` per group
    /// routed by a slot of the group, the groups waited for at once.
    async fn replicated_all(&self, client: &Client, keys: &[&str]) {
        if self.target.replicas_to_wait() == 0 || keys.is_empty() {
            return;
        }
        if self.target.kind != RedisKind::Cluster {
            return self.replicated(client, keys[0], keys.len() as u64).await;
        }
        let routing = client.cached_cluster_state();
        // (the owning master, or the slot if unknown; a key; how many writes)
        let mut groups: Vec<(Result<Server, u16>, &str, u64)> = Vec::new();
        for key in keys {
            let slot = redis_keyslot(key.as_bytes());
            let owner = routing
                .as_ref()
                .and_then(|r| r.get_server(slot))
                .cloned()
                .ok_or(slot);
            match groups.iter_mut().find(|(o, _, _)| *o == owner) {
                Some((_, _, writes)) => *writes += 1,
                None => groups.push((owner, key, 1)),
            }
        }
        let waits = groups
            .iter()
            .map(|(_, key, writes)| self.replicated(client, key, *writes));
        futures_util::future::join_all(waits).await;
    }
}

/// The arguments of [`INDEX_ADD`]: the entry's end, the member, and now
/// (entries ended by then are dropped).
fn index_args(member: &str, until: u64, now: u64) -> Vec<Value> {
    vec![
        until.to_string().into(),
        member.into(),
        now.to_string().into(),
    ]
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
            .reader()
            .hmget(self.target.record_key(key), vec!["v", "d", "e"])
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
        let key = self.target.record_key(key);
        let client = self.pool.next();
        let created: i64 = CREATE.run(client, &key, args).await.map_err(err)?;
        if created == 1 {
            self.replicated(client, &key, 1).await;
        }
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
        let key = self.target.record_key(key);
        let client = self.pool.next();
        let answer: i64 = UPDATE.run(client, &key, args).await.map_err(err)?;
        Ok(match answer {
            -1 => Update::Gone,
            -2 => Update::Conflict,
            v => {
                self.replicated(client, &key, 1).await;
                Update::Written(v as u64)
            }
        })
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let key = self.target.record_key(key);
        let client = self.pool.next();
        let n: i64 = client.del(key.as_str()).await.map_err(err)?;
        if n > 0 {
            self.replicated(client, &key, 1).await;
        }
        Ok(n > 0)
    }

    async fn index_add(&self, name: &str, member: &str, until: u64) -> Result<(), StoreError> {
        let args = index_args(member, until, now_secs());
        let key = self.target.index_key(name);
        let client = self.pool.next();
        let _: i64 = INDEX_ADD.run(client, &key, args).await.map_err(err)?;
        self.replicated(client, &key, 1).await;
        Ok(())
    }

    async fn index_add_all(&self, entries: &[(&str, &str)], until: u64) -> Result<(), StoreError> {
        if let [(name, member)] = entries {
            return self.index_add(name, member, until).await;
        }
        if entries.is_empty() {
            return Ok(());
        }
        let now = now_secs();
        let filed: Vec<(String, Vec<Value>)> = entries
            .iter()
            .map(|(name, member)| (self.target.index_key(name), index_args(member, until, now)))
            .collect();
        let client = self.pool.next();
        // Every entry in one round trip: a pipeline (on a Cluster fred sends
        // each command to its key's shard). fred's pipelines have no
        // `evalsha` (it never pipelines scripts: a `NOSCRIPT` in the middle
        // of a pipeline would leave later commands run out of order), so it
        // is sent as a custom command routed by its key's slot. The entries
        // are independent, so one that is refused with `NOSCRIPT` is simply
        // filed again afterwards with `EVAL`.
        let pipeline = client.pipeline();
        for (key, args) in &filed {
            let slot = ClusterHash::Custom(redis_keyslot(key.as_bytes()));
            let mut command: Vec<Value> =
                vec![INDEX_ADD.sha1.clone().into(), 1.into(), key.as_str().into()];
            command.extend(args.iter().cloned());
            let () = pipeline
                .custom(CustomCommand::new_static("EVALSHA", slot, false), command)
                .await
                .map_err(err)?;
        }
        let answers: Vec<Result<i64, Error>> = pipeline.try_all().await;
        if answers.len() != filed.len() {
            // The pipeline as a whole failed (not sent, or timed out).
            let e = answers.into_iter().find_map(Result::err);
            return Err(e.map_or_else(|| StoreError("no answer from Redis".into()), err));
        }
        for ((key, args), answer) in filed.iter().zip(answers) {
            match answer {
                Ok(_) => {}
                Err(e) if is_noscript(&e) => {
                    let _: i64 = INDEX_ADD
                        .run_body(client, key, args.clone())
                        .await
                        .map_err(err)?;
                }
                Err(e) => return Err(err(e)),
            }
        }
        let keys: Vec<&str> = filed.iter().map(|(key, _)| key.as_str()).collect();
        self.replicated_all(client, &keys).await;
        Ok(())
    }

    async fn index_members(&self, name: &str) -> Result<Vec<String>, StoreError> {
        self.pool
            .zrangebyscore(
                self.target.index_key(name),
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
        let key = self.target.lock_key(name);
        let client = self.pool.next();
        let set: Option<String> = client
            .set(
                key.as_str(),
                token,
                Some(Expiration::PX(ms)),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(err)?;
        if set.is_some() {
            self.replicated(client, &key, 1).await;
        }
        Ok(set.is_some())
    }

    async fn unlock(&self, name: &str, token: &str) -> Result<(), StoreError> {
        let key = self.target.lock_key(name);
        let _: i64 = UNLOCK
            .run(self.pool.next(), &key, vec![token.into()])
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
        let key = self.target.claim_key(name);
        let client = self.pool.next();
        let set: Option<String> = client
            .set(
                key.as_str(),
                "1",
                Some(Expiration::EXAT(until)),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(err)?;
        if set.is_some() {
            self.replicated(client, &key, 1).await;
        }
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
        let tracking = Tracking {
            target: self.target.clone(),
            sink,
            on: self.tracking.clone(),
        };
        match track_changes(tracking) {
            Ok(client) => {
                let _ = self.tracker.set(client);
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

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![(
            "unreplicated_writes_total",
            self.unreplicated.load(Ordering::Relaxed),
        )]
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        if let Some(client) = self.tracker.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}

/// What the tracking client works with.
struct Tracking {
    target: RedisTarget,
    sink: Weak<dyn ChangeSink>,
    /// Whether tracking is on for the tracker's current connections.
    on: Arc<AtomicBool>,
}

/// Starts the tracking client that feeds `sink` (see the module docs).
fn track_changes(t: Tracking) -> Result<Client, String> {
    let client = Builder::from_config(Config {
        version: RespVersion::RESP3,
        fail_fast: false,
        ..t.target.config.clone()
    })
    .with_connection_config(|c| {
        c.connection_timeout = CONNECT_TIMEOUT;
        c.internal_command_timeout = CONNECT_TIMEOUT;
    })
    .with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT)
    .set_policy(ReconnectPolicy::new_exponential(0, 50, 2000, 2))
    .build()
    .map_err(|e| format!("invalid Redis settings: {}", e.details()))?;
    if let Some(s) = t.sink.upgrade() {
        s.set_live(false);
    }
    let (on_notice, target) = (t.sink.clone(), t.target.clone());
    client.on_invalidation(move |invalidation| {
        let Some(sink) = on_notice.upgrade() else {
            return Ok(());
        };
        if invalidation.keys.is_empty() {
            // FLUSHDB / FLUSHALL: every key may be gone.
            sink.all_changed();
        }
        for key in invalidation.keys {
            match key.as_str().and_then(|k| target.record_of(k)) {
                Some(k) => sink.changed(k),
                None => sink.all_changed(),
            }
        }
        Ok(())
    });
    // An error or a reconnection (a failover; the server forgets tracking
    // with the old connection) turns tracking and the cache off until the
    // heartbeat turns them on again.
    for interrupted in [true, false] {
        let (sink, on) = (t.sink.clone(), t.on.clone());
        let off = move || {
            on.store(false, Ordering::SeqCst);
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
    tokio::spawn(heartbeat(client.clone(), t.sink, t.on));
    Ok(client)
}

/// Checks the tracking client every [`TRACKING_HEARTBEAT`]; turns the cache
/// off when it does not answer, on (with tracking) when it does again.
/// After a reconnection the server has forgotten the tracking: the next beat
/// sees it off and turns tracking on again first.
async fn heartbeat(client: Client, sink: Weak<dyn ChangeSink>, on: Arc<AtomicBool>) {
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
            if on.swap(false, Ordering::SeqCst) {
                tracing::warn!(
                    "Redis change tracking connection does not answer; session cache off"
                );
            }
            s.set_live(false);
            continue;
        }
        if on.load(Ordering::SeqCst) {
            continue;
        }
        // Default mode: Redis tracks the keys this client reads (records are
        // read through it while tracking is on), on every master.
        match client
            .start_tracking(Vec::<String>::new(), false, false, false, false)
            .await
        {
            Ok(()) => {
                tracing::info!("Redis change tracking on; session cache on");
                refused = false;
                // Emptied as it turns on: nothing from before tracking stays.
                s.set_live(false);
                on.store(true, Ordering::SeqCst);
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

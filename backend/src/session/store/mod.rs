//! The one store abstraction: [`Store`] owns session records (each with a
//! version, written only by compare-and-set), the login index, short locks
//! and a replay cache. The memory, SQLite and Redis stores implement it;
//! [`cached::CachedStore`] wraps any store whose changes this process hears
//! of and serves its records from memory.
//!
//! Adding a store is one new file implementing [`Store`] and one line in
//! [`open`], where stores are chosen (an application embedding Keyway can
//! also hand its own store to the builder).
//!
//! # The rules every store keeps
//!
//! - **Writes are conditional.** [`Store::create`] never overwrites a
//!   record; [`Store::update`] writes only if the record still has the
//!   version the writer read, and gives the new version. So a logout cannot
//!   be undone by a refresh or an idle-time touch that was in flight: the
//!   deleted record has no version left to match, and ids are never reused
//!   (they are random and `create` refuses a taken key). For the same reason
//!   an older copy of a session can never overwrite a newer one (a rotated
//!   refresh token stays rotated).
//! - **Expiry is the store's.** A record past its `expires_at` is never
//!   returned, and is eventually removed; so are index entries, locks and
//!   replay entries past theirs.
//! - **Keys are opaque.** Record keys are hashes of session ids; index,
//!   lock and replay names are keyed hashes. Record data is sealed by the
//!   caller ([`super::codec`]).

pub(crate) mod cache;
pub(crate) mod cached;
pub(crate) mod memory;
pub(crate) mod postgres;
pub(crate) mod redis;
pub(crate) mod redis_target;
pub(crate) mod sqlite;

use super::codec::KeyTag;
use super::data::SessionData;
use crate::config::StoreSetting;
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// The store did not answer (or answered an error). Never quotes data.
#[derive(Debug, Clone, thiserror::Error)]
#[error("session store unavailable: {0}")]
pub struct StoreError(pub String);

impl StoreError {
    /// Wraps any error's text.
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// A decoded session and the key that sealed it (`None`: plain).
pub(crate) type Decoded = (Option<KeyTag>, Arc<SessionData>);

/// What a record holds: its sealed bytes and, kept in process memory, the
/// value they decode to — decoded once, shared by every copy of the record,
/// so a session served from memory is never decrypted or parsed twice.
#[derive(Clone, Default)]
pub struct Payload {
    bytes: Bytes,
    memo: Memo,
}

/// A payload's decoded value: known from the start (no cell needed: the
/// copies share the session's `Arc`), or decoded by the first reader into a
/// cell its copies share.
#[derive(Clone)]
enum Memo {
    Known(Decoded),
    Shared(Arc<OnceLock<Decoded>>),
}

impl Default for Memo {
    fn default() -> Self {
        Memo::Shared(Arc::default())
    }
}

impl Memo {
    fn get(&self) -> Option<&Decoded> {
        match self {
            Memo::Known(v) => Some(v),
            Memo::Shared(cell) => cell.get(),
        }
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({} bytes)", self.bytes.len())
    }
}

impl Payload {
    /// A payload read from outside the process.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        Self {
            bytes: bytes.into(),
            memo: Memo::default(),
        }
    }

    /// A payload whose decoded value is already known.
    pub(crate) fn decoded(bytes: Bytes, value: Decoded) -> Self {
        Self {
            bytes,
            memo: Memo::Known(value),
        }
    }

    /// The sealed bytes, to write to a store outside the process.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The copy to keep in process memory: once decoded, the bytes are not
    /// kept (only [`Store`]s outside the process need them, and they were
    /// written there already), nor the cell they were decoded into.
    pub fn in_memory(&self) -> Payload {
        match self.memo.get() {
            Some(v) => Payload::known(v.clone()),
            None => self.clone(),
        }
    }

    /// A decoded value without its bytes.
    fn known(value: Decoded) -> Payload {
        Payload {
            bytes: Bytes::new(),
            memo: Memo::Known(value),
        }
    }

    /// [`Payload::in_memory`] in the fewest bytes, for a store that keeps
    /// many (the memory store): 24 bytes and the session, instead of 56.
    pub(crate) fn kept(&self) -> Kept {
        match self.memo.get() {
            Some(v) => Kept::Decoded(v.clone()),
            None => Kept::Raw(Box::new(self.clone())),
        }
    }

    /// The decoded value, decoding (once) with `decode`.
    pub(crate) fn decode_with<E>(
        &self,
        decode: impl FnOnce(&[u8]) -> Result<Decoded, E>,
    ) -> Result<Decoded, E> {
        match &self.memo {
            Memo::Known(v) => Ok(v.clone()),
            Memo::Shared(cell) => {
                if let Some(v) = cell.get() {
                    return Ok(v.clone());
                }
                let v = decode(&self.bytes)?;
                Ok(cell.get_or_init(|| v).clone())
            }
        }
    }
}

/// A payload as a store inside the process keeps it ([`Payload::kept`]).
#[derive(Clone)]
pub(crate) enum Kept {
    /// Decoded: the session itself.
    Decoded(Decoded),
    /// Not decoded yet (rare: written by [`Payload::from_bytes`]).
    Raw(Box<Payload>),
}

impl Kept {
    /// The payload again.
    pub(crate) fn payload(&self) -> Payload {
        match self {
            Kept::Decoded(v) => Payload::known(v.clone()),
            Kept::Raw(p) => (**p).clone(),
        }
    }
}

/// A stored record.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its version: 1 when created, one more at each update.
    pub version: u64,
    /// When it expires (seconds since the epoch).
    pub expires_at: u64,
    /// Its contents.
    pub payload: Payload,
}

/// The outcome of a conditional update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Written; the record's new version.
    Written(u64),
    /// The record has another version (someone wrote it since it was read).
    Conflict,
    /// The record is gone (deleted or expired).
    Gone,
}

/// How this process learns of changes others make to a store, which decides
/// whether its records may be served from memory ([`cached`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// Nothing tells this process of others' changes: never cache.
    Unwatched,
    /// Every change goes through this process (one owner): cache freely.
    Exclusive,
    /// The store notifies [`ChangeSink`] of every change while it can; an
    /// entry is served for at most `max_age` in case a notice is lost.
    Notified {
        /// The longest an entry is served.
        max_age: Duration,
    },
}

/// Receives a store's change notices.
pub trait ChangeSink: Send + Sync {
    /// Record `key` changed or was deleted.
    fn changed(&self, key: &str);
    /// Anything may have changed.
    fn all_changed(&self);
    /// Whether notices are arriving (`false`: some may be missed).
    fn set_live(&self, live: bool);
}

/// Where sessions, the login index, locks and the replay cache live.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// The live record `key`.
    async fn load(&self, key: &str) -> Result<Option<Record>, StoreError>;

    /// The live record `key`, read from the store itself (not a cache).
    async fn load_fresh(&self, key: &str) -> Result<Option<Record>, StoreError> {
        self.load(key).await
    }

    /// Creates record `key` at version 1; `false` (nothing written) if the
    /// key is taken.
    async fn create(
        &self,
        key: &str,
        payload: &Payload,
        expires_at: u64,
    ) -> Result<bool, StoreError>;

    /// Replaces record `key` if its version is `expected`.
    async fn update(
        &self,
        key: &str,
        expected: u64,
        payload: &Payload,
        expires_at: u64,
    ) -> Result<Update, StoreError>;

    /// Deletes record `key`; whether it existed.
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;

    /// Files `member` under index `name` until `until` (seconds since the epoch).
    async fn index_add(&self, name: &str, member: &str, until: u64) -> Result<(), StoreError>;

    /// Files each `(name, member)` of `entries` as [`Store::index_add`]
    /// does, all until `until`, in as few round trips as the store can (a
    /// login files two entries: the provider's `sid` and `sub`). An empty
    /// slice files nothing. On an error some entries may be filed already
    /// (filing one again is harmless). The default calls `index_add` for
    /// each entry in turn, so a store written before this method keeps
    /// working unchanged.
    async fn index_add_all(&self, entries: &[(&str, &str)], until: u64) -> Result<(), StoreError> {
        for (name, member) in entries {
            self.index_add(name, member, until).await?;
        }
        Ok(())
    }

    /// The live members of index `name`.
    async fn index_members(&self, name: &str) -> Result<Vec<String>, StoreError>;

    /// Takes lock `name` for `ttl` with `token`, unless someone else holds it.
    async fn try_lock(&self, name: &str, token: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Frees lock `name` if `token` still holds it.
    async fn unlock(&self, name: &str, token: &str) -> Result<(), StoreError>;

    /// Records `name` until `until`; `true` the first time, `false` if it
    /// is recorded already (a replay).
    async fn claim_once(&self, name: &str, until: u64) -> Result<bool, StoreError>;

    /// Whether the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// How changes made elsewhere reach this process; a store that notifies
    /// keeps `sink` and calls it.
    fn watch(&self, _sink: Weak<dyn ChangeSink>) -> Watch {
        Watch::Unwatched
    }

    /// How many live records, where the store can tell cheaply.
    fn count_live(&self) -> Option<u64> {
        None
    }

    /// Whether records are served from this process's memory right now.
    fn serves_from_memory(&self) -> bool {
        false
    }

    /// The store's own counters, `(name, value)`: each is shown on
    /// `/metrics` as `keyway_session_store_<name>{store="…"}` (e.g. the
    /// Redis store's `unreplicated_writes_total`).
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// Opens the configured store: the one place where stores are chosen.
pub async fn open(setting: &StoreSetting) -> Result<Arc<dyn Store>, String> {
    Ok(match setting {
        StoreSetting::Memory => memory::MemoryStore::open(),
        StoreSetting::Sqlite(path) => {
            cached::CachedStore::wrap(sqlite::SqliteStore::open(path).await?)
        }
        StoreSetting::Redis(url) => cached::CachedStore::wrap(
            redis::RedisStore::open(redis_target::RedisTarget::single(url)?).await?,
        ),
        StoreSetting::RedisNodes(nodes) => cached::CachedStore::wrap(
            redis::RedisStore::open(redis_target::RedisTarget::nodes(nodes)?).await?,
        ),
        StoreSetting::Postgres(url) => {
            cached::CachedStore::wrap(postgres::PostgresStore::open(url).await?)
        }
    })
}

/// The `store` label of the metrics for a configured store.
pub(crate) fn kind_label(setting: &StoreSetting) -> &'static str {
    match setting {
        StoreSetting::Memory => "memory",
        StoreSetting::Sqlite(_) => "sqlite",
        StoreSetting::Redis(_) => "redis",
        StoreSetting::RedisNodes(n) => match n.topology {
            crate::config::RedisTopology::Sentinel => "redis-sentinel",
            crate::config::RedisTopology::Cluster => "redis-cluster",
        },
        StoreSetting::Postgres(_) => "postgres",
    }
}

/// A held lock from [`super::Sessions::try_lock`]. [`StoreLock::release`]
/// frees it; dropping it frees it too (in the background); if the process
/// dies it expires after its time to live.
pub struct StoreLock {
    store: Arc<dyn Store>,
    name: String,
    token: String,
    held: bool,
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLock")
            .field("held", &self.held)
            .finish()
    }
}

impl StoreLock {
    pub(crate) fn new(store: Arc<dyn Store>, name: String, token: String) -> Self {
        Self {
            store,
            name,
            token,
            held: true,
        }
    }

    /// Frees the lock now (only if this holder still has it: after its time
    /// to live someone else may).
    pub async fn release(mut self) -> Result<(), StoreError> {
        self.held = false;
        self.store.unlock(&self.name, &self.token).await
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        if !std::mem::take(&mut self.held) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = self.store.clone();
            let (name, token) = (
                std::mem::take(&mut self.name),
                std::mem::take(&mut self.token),
            );
            runtime.spawn(async move {
                if let Err(e) = store.unlock(&name, &token).await {
                    tracing::warn!(error = %e, "a store lock could not be freed; it expires by itself");
                }
            });
        }
    }
}

//! A store wrapped in a cache of its records in process memory.
//!
//! Every `/bff/api` request reads its session; reading it from SQLite or
//! Redis and decrypting it each time costs more than the rest of the
//! request. So the records of a store that tells this process of every
//! change ([`Watch`]) are kept here, decoded:
//!
//! - a store with one owning process (SQLite: the file is locked) sees every
//!   write go through this wrapper, which keeps its cache exact;
//! - a store that notifies changes (Redis client tracking) drops entries as
//!   notices arrive, turns the cache off while notices may be missed, and
//!   serves an entry for a bounded time in case one is lost unseen;
//! - a store that does neither is not cached at all.
//!
//! A refresh reads through the cache ([`Store::load_fresh`]), so across
//! instances it never spends a refresh token another instance rotated.

use super::cache::{CACHE_CAPACITY, RecordCache};
use super::{ChangeSink, Payload, Record, Store, StoreError, Update, Watch};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// A store and the cache in front of it.
#[derive(Debug)]
pub struct CachedStore {
    inner: Arc<dyn Store>,
    cache: Arc<RecordCache>,
    exclusive: bool,
}

impl CachedStore {
    /// Wraps `inner` if it can tell this process of changes; otherwise
    /// returns it as it is.
    pub fn wrap(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        let cache = Arc::new(RecordCache::new(CACHE_CAPACITY));
        let sink: Arc<dyn ChangeSink> = cache.clone();
        let exclusive = match inner.watch(Arc::downgrade(&sink)) {
            Watch::Unwatched => return inner,
            Watch::Exclusive => true,
            Watch::Notified { max_age } => {
                cache.set_max_age(max_age);
                false
            }
        };
        Arc::new(Self {
            inner,
            cache,
            exclusive,
        })
    }

    /// Whether records are served from memory right now.
    pub fn is_live(&self) -> bool {
        self.cache.is_enabled()
    }

    fn written(&self, key: &str, version: u64, payload: &Payload, expires_at: u64) {
        if self.exclusive {
            let record = Record {
                version,
                expires_at,
                payload: payload.in_memory(),
            };
            self.cache.put(key, record);
        } else {
            // The notice will come; meanwhile nothing stale is served.
            self.cache.invalidate(key);
        }
    }
}

#[async_trait]
impl Store for CachedStore {
    async fn load(&self, key: &str) -> Result<Option<Record>, StoreError> {
        if let Some(hit) = self.cache.get(key) {
            if hit.expires_at > crate::session::data::now_secs() {
                return Ok(Some(hit));
            }
            self.cache.invalidate(key);
        }
        self.load_fresh(key).await
    }

    async fn load_fresh(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let generation = self.cache.generation();
        let record = self.inner.load(key).await?;
        if let Some(r) = &record {
            self.cache.fill(key, r.clone(), generation);
        }
        Ok(record)
    }

    async fn create(
        &self,
        key: &str,
        payload: &Payload,
        expires_at: u64,
    ) -> Result<bool, StoreError> {
        let created = self.inner.create(key, payload, expires_at).await;
        match created {
            Ok(true) => self.written(key, 1, payload, expires_at),
            _ => self.cache.invalidate(key),
        }
        created
    }

    async fn update(
        &self,
        key: &str,
        expected: u64,
        payload: &Payload,
        expires_at: u64,
    ) -> Result<Update, StoreError> {
        let updated = self.inner.update(key, expected, payload, expires_at).await;
        match updated {
            Ok(Update::Written(v)) => self.written(key, v, payload, expires_at),
            // A failed write may still have reached the store.
            _ => self.cache.invalidate(key),
        }
        updated
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let deleted = self.inner.delete(key).await;
        self.cache.invalidate(key);
        deleted
    }

    async fn index_add(&self, name: &str, member: &str, until: u64) -> Result<(), StoreError> {
        self.inner.index_add(name, member, until).await
    }

    async fn index_add_all(&self, entries: &[(&str, &str)], until: u64) -> Result<(), StoreError> {
        self.inner.index_add_all(entries, until).await
    }

    async fn index_members(&self, name: &str) -> Result<Vec<String>, StoreError> {
        self.inner.index_members(name).await
    }

    async fn try_lock(&self, name: &str, token: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.inner.try_lock(name, token, ttl).await
    }

    async fn unlock(&self, name: &str, token: &str) -> Result<(), StoreError> {
        self.inner.unlock(name, token).await
    }

    async fn claim_once(&self, name: &str, until: u64) -> Result<bool, StoreError> {
        self.inner.claim_once(name, until).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    fn count_live(&self) -> Option<u64> {
        self.inner.count_live()
    }

    fn serves_from_memory(&self) -> bool {
        self.cache.is_enabled()
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        self.inner.counters()
    }
}

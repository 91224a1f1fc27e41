//! Records of a store held in process memory, and the rules that keep them
//! true (used by [`super::cached::CachedStore`]).
//!
//! A cache must never serve a session that the store no longer has: a
//! sign-out or a back-channel logout must end the session at once on every
//! instance. Races between a reader filling the cache and a writer changing
//! the store are settled by a generation counter: a writer changes the store
//! first and then bumps the generation and drops the entry (one step, under
//! the lock); a reader notes the generation before it reads the store and
//! fills the cache only if it is unchanged. So a value read before a write
//! is never cached after it.

use super::{ChangeSink, Record};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<Box<str>, (Record, Instant)>,
    generation: u64,
}

/// Records by key, with the generation guard described in the module docs.
#[derive(Debug)]
pub(crate) struct RecordCache {
    inner: Mutex<Inner>,
    /// At most this many entries.
    capacity: usize,
    /// How long an entry may be served at most (unset: until changed).
    max_age: OnceLock<Duration>,
    /// Off while the store's change notices may be missed.
    enabled: AtomicBool,
}

/// How many records a cache keeps at most (some 1.5 KiB each: about 15 MiB).
/// Beyond that, an arbitrary entry is dropped for each new one; a dropped
/// session is read from the store again when next used.
pub(crate) const CACHE_CAPACITY: usize = 10_000;

impl RecordCache {
    /// A cache of at most `capacity` entries, served until changed; enabled.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::default(),
            capacity,
            max_age: OnceLock::new(),
            enabled: AtomicBool::new(true),
        }
    }

    /// Serves each entry for at most `max_age` after it was filled (set once).
    pub(crate) fn set_max_age(&self, max_age: Duration) {
        let _ = self.max_age.set(max_age);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change is one map operation: a poisoned lock is usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entry of `key`, if cached (and the cache is on).
    pub(crate) fn get(&self, key: &str) -> Option<Record> {
        if !self.is_enabled() {
            return None;
        }
        let inner = self.lock();
        let (record, filled) = inner.map.get(key)?;
        if self
            .max_age
            .get()
            .is_some_and(|max| filled.elapsed() >= *max)
        {
            return None;
        }
        Some(record.clone())
    }

    /// The generation to pass to [`RecordCache::fill`] after a store read.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Caches what the store returned for `key`, unless anything changed
    /// since `generation` was taken (or the cache is off).
    pub(crate) fn fill(&self, key: &str, record: Record, generation: u64) {
        if !self.is_enabled() {
            return;
        }
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        Self::insert(&mut inner, self.capacity, key, record);
    }

    /// Sets the entry of `key` after this process wrote it (a store whose
    /// every change goes through this process).
    pub(crate) fn put(&self, key: &str, record: Record) {
        let mut inner = self.lock();
        inner.generation += 1;
        Self::insert(&mut inner, self.capacity, key, record);
    }

    fn insert(inner: &mut Inner, capacity: usize, key: &str, record: Record) {
        if inner.map.len() >= capacity
            && !inner.map.contains_key(key)
            && let Some(victim) = inner.map.keys().next().cloned()
        {
            inner.map.remove(&victim);
        }
        inner.map.insert(key.into(), (record, Instant::now()));
    }

    /// Forgets `key`: called after the store changed it.
    pub(crate) fn invalidate(&self, key: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.map.remove(key);
    }

    /// Forgets every entry.
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.map.clear();
    }

    /// Switches the cache on or off; either way it starts empty.
    pub(crate) fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Release);
        self.clear();
    }

    /// Whether the cache is on.
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// How many entries.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().map.len()
    }
}

impl ChangeSink for RecordCache {
    fn changed(&self, key: &str) {
        self.invalidate(key);
    }

    fn all_changed(&self) {
        self.clear();
    }

    fn set_live(&self, live: bool) {
        if live != self.is_enabled() {
            self.set_enabled(live);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Payload;
    use super::*;

    fn record(v: u64) -> Record {
        Record {
            version: v,
            expires_at: u64::MAX,
            payload: Payload::from_bytes(&b"x"[..]),
        }
    }

    #[test]
    fn a_read_from_before_a_write_is_not_cached() {
        let cache = RecordCache::new(10);
        let generation = cache.generation();
        // A writer changes the store and invalidates between the reader's
        // store read and its fill.
        cache.invalidate("k");
        cache.fill("k", record(1), generation);
        assert!(cache.get("k").is_none());
        // Without a write in between, the fill is kept.
        let generation = cache.generation();
        cache.fill("k", record(2), generation);
        assert_eq!(cache.get("k").unwrap().version, 2);
    }

    #[test]
    fn a_disabled_cache_neither_serves_nor_fills_and_restarts_empty() {
        let cache = RecordCache::new(10);
        cache.fill("k", record(1), cache.generation());
        cache.set_live(false);
        assert!(cache.get("k").is_none());
        cache.fill("k", record(1), cache.generation());
        cache.set_live(true);
        assert!(cache.get("k").is_none(), "entries from before are gone");
    }

    #[test]
    fn entries_older_than_the_max_age_are_not_served() {
        let cache = RecordCache::new(10);
        cache.set_max_age(Duration::ZERO);
        cache.fill("k", record(1), cache.generation());
        assert!(cache.get("k").is_none());
        let cache = RecordCache::new(10);
        cache.set_max_age(Duration::from_secs(3600));
        cache.fill("k", record(1), cache.generation());
        assert!(cache.get("k").is_some());
    }

    #[test]
    fn capacity_is_kept() {
        let cache = RecordCache::new(3);
        for i in 0..10 {
            cache.fill(&format!("k{i}"), record(1), cache.generation());
        }
        assert_eq!(cache.len(), 3);
    }
}

//! Decoded sessions held in process memory: the records of the memory store,
//! and a cache in front of SQLite and Redis.
//!
//! Every `/bff/api` request reads its session. Reading it from the store and
//! decrypting it each time costs more than the rest of the request (a query on
//! SQLite's worker thread, a round trip to Redis, a decryption and a JSON
//! parse), so the decoded session is kept here, as an `Arc`.
//!
//! A cache must never serve a session that the store no longer has: a
//! sign-out or a back-channel logout must end the session at once on every
//! instance. So a cache is only put in front of a store when this process
//! hears of every change to it:
//!
//! - SQLite: one process owns the file (an exclusive lock taken at start-up;
//!   a second process is refused), so every write goes through this cache.
//! - Redis: each instance keeps a connection on which Redis pushes an
//!   invalidation for every session key written or deleted by anyone
//!   (`CLIENT TRACKING ... BCAST PREFIX kws_`, RESP3). While that connection
//!   is down the cache is switched off and emptied, and it is emptied again
//!   when tracking is back, so a missed invalidation cannot leave a stale
//!   entry.
//!
//! Races between a reader filling the cache and a writer changing the store
//! are settled by a generation counter: a writer changes the store first and
//! then bumps the generation and drops the entry (one step, under the lock);
//! a reader notes the generation before it reads the store and fills the
//! cache only if it is unchanged. So a value read before a write is never
//! cached after it.

use super::{Id, SessionData};
use crate::session::codec::KeyTag;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One decoded session and the key that sealed it in the store (`None`:
/// plain), so that an instance whose keys cannot open the record does not
/// get it from the cache either.
#[derive(Debug, Clone)]
pub struct Cached {
    /// The session.
    pub data: Arc<SessionData>,
    /// The key the record was sealed with.
    pub sealed_by: Option<KeyTag>,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<Id, (Cached, Instant)>,
    generation: u64,
}

/// Decoded sessions by stored id, with the generation guard described in the
/// module docs.
#[derive(Debug)]
pub struct SessionCache {
    inner: Mutex<Inner>,
    /// At most this many entries (`usize::MAX`: the cache is the store).
    capacity: usize,
    /// How long an entry may be served at most (`None`: until changed).
    max_age: Option<Duration>,
    /// Off while the store's change notifications may be missed.
    enabled: AtomicBool,
}

/// How many decoded sessions a cache in front of SQLite or Redis keeps at
/// most (about 1.5 KiB each: some 15 MiB). Beyond that, an arbitrary entry
/// is dropped for each new one; a dropped session is read from the store
/// again when next used.
pub const CACHE_CAPACITY: usize = 10_000;

impl SessionCache {
    /// A cache of at most `capacity` entries, each served for at most
    /// `max_age` after it was filled; enabled.
    pub fn new(capacity: usize, max_age: Option<Duration>) -> Self {
        Self {
            inner: Mutex::default(),
            capacity,
            max_age,
            enabled: AtomicBool::new(true),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the map half-changed
        // (every change is one HashMap call), so a poisoned lock is usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entry of `id`, if cached (and the cache is on).
    pub fn get(&self, id: &Id) -> Option<Cached> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let inner = self.lock();
        let (entry, filled) = inner.map.get(id)?;
        if self.max_age.is_some_and(|max| filled.elapsed() >= max) {
            return None;
        }
        Some(entry.clone())
    }

    /// The generation to pass to [`SessionCache::fill`] after a store read.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Caches what the store returned for `id`, unless anything changed
    /// since `generation` was taken (or the cache is off).
    pub fn fill(&self, id: Id, entry: Cached, generation: u64) {
        if !self.enabled.load(Ordering::Acquire) {
            return;
        }
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.map.len() >= self.capacity
            && !inner.map.contains_key(&id)
            && let Some(victim) = inner.map.keys().next().copied()
        {
            inner.map.remove(&victim);
        }
        inner.map.insert(id, (entry, Instant::now()));
    }

    /// Sets the entry of `id` (the cache is the store: the memory store).
    pub fn put(&self, id: Id, entry: Cached) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.map.insert(id, (entry, Instant::now()));
    }

    /// Inserts `entry` under `id` unless the id is taken; whether it was free.
    pub fn insert_new(&self, id: Id, entry: Cached) -> bool {
        let mut inner = self.lock();
        if inner.map.contains_key(&id) {
            return false;
        }
        inner.generation += 1;
        inner.map.insert(id, (entry, Instant::now()));
        true
    }

    /// Forgets `id`: called after the store changed it.
    pub fn invalidate(&self, id: &Id) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.map.remove(id);
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.map.clear();
    }

    /// Switches the cache on or off; either way it starts empty.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Release);
        self.clear();
    }

    /// Whether the cache is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Drops the entries for which `dead` holds; returns how many.
    pub fn purge(&self, dead: impl Fn(&SessionData) -> bool) -> usize {
        let mut inner = self.lock();
        let before = inner.map.len();
        inner.map.retain(|_, (c, _)| !dead(&c.data));
        let removed = before - inner.map.len();
        if removed > 0 {
            inner.generation += 1;
        }
        removed
    }

    /// How many entries for which `live` holds.
    pub fn count(&self, live: impl Fn(&SessionData) -> bool) -> usize {
        self.lock()
            .map
            .values()
            .filter(|(c, _)| live(&c.data))
            .count()
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sub: &str) -> Cached {
        Cached {
            data: Arc::new(SessionData::for_test(sub, 0, None)),
            sealed_by: None,
        }
    }

    #[test]
    fn a_read_from_before_a_write_is_not_cached() {
        let cache = SessionCache::new(10, None);
        let id = Id::default();
        let generation = cache.generation();
        // A writer changes the store and invalidates between the reader's
        // store read and its fill.
        cache.invalidate(&id);
        cache.fill(id, entry("old"), generation);
        assert!(cache.get(&id).is_none());
        // Without a write in between, the fill is kept.
        let generation = cache.generation();
        cache.fill(id, entry("new"), generation);
        assert_eq!(cache.get(&id).unwrap().data.identity.sub, "new");
    }

    #[test]
    fn a_disabled_cache_neither_serves_nor_fills_and_restarts_empty() {
        let cache = SessionCache::new(10, None);
        let id = Id::default();
        cache.fill(id, entry("a"), cache.generation());
        cache.set_enabled(false);
        assert!(cache.get(&id).is_none());
        cache.fill(id, entry("a"), cache.generation());
        cache.set_enabled(true);
        assert!(cache.get(&id).is_none(), "entries from before are gone");
    }

    #[test]
    fn entries_older_than_the_max_age_are_not_served() {
        let cache = SessionCache::new(10, Some(Duration::ZERO));
        let id = Id::default();
        cache.fill(id, entry("a"), cache.generation());
        assert!(cache.get(&id).is_none());
        let cache = SessionCache::new(10, Some(Duration::from_secs(3600)));
        cache.fill(id, entry("a"), cache.generation());
        assert!(cache.get(&id).is_some());
    }

    #[test]
    fn purge_drops_what_the_rule_calls_dead() {
        let cache = SessionCache::new(10, None);
        let (dead, live) = (Id::default(), Id::default());
        cache.put(dead, entry("dead"));
        cache.put(live, entry("live"));
        assert_eq!(cache.purge(|d| d.identity.sub == "dead"), 1);
        assert!(cache.get(&dead).is_none());
        assert!(cache.get(&live).is_some());
        assert_eq!(cache.count(|_| true), 1);
    }

    #[test]
    fn capacity_is_kept() {
        let cache = SessionCache::new(3, None);
        for _ in 0..10 {
            cache.fill(Id::default(), entry("x"), cache.generation());
        }
        assert_eq!(cache.len(), 3);
    }
}

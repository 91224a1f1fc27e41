//! The in-process store: records, the login index and locks in memory.
//!
//! tower-sessions' own `MemoryStore` never forgets an expired record; this
//! one is the same map with a purge that a background task runs every
//! minute for as long as the store is in use.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

/// Records in a map, expired ones purged periodically.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    records: Arc<Mutex<HashMap<Id, Record>>>,
}

impl MemoryStore {
    /// Removes the expired records; returns how many were removed.
    pub fn purge_expired(&self) -> usize {
        let now = OffsetDateTime::now_utc();
        let mut map = self.records.lock().expect("memory store");
        let before = map.len();
        map.retain(|_, r| r.expiry_date > now);
        before - map.len()
    }

    /// How many records are held (expired or not).
    pub fn len(&self) -> usize {
        self.records.lock().expect("memory store").len()
    }

    /// How many unexpired records have an id that `filter` accepts.
    pub fn count_live(&self, filter: impl Fn(&Id) -> bool) -> usize {
        let now = OffsetDateTime::now_utc();
        let map = self.records.lock().expect("memory store");
        map.iter()
            .filter(|(id, r)| r.expiry_date > now && filter(id))
            .count()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Purges every `period` until the last handle on the store is dropped.
    pub fn spawn_purge(&self, period: Duration) {
        let weak: Weak<Mutex<HashMap<Id, Record>>> = Arc::downgrade(&self.records);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(records) = weak.upgrade() else {
                    return;
                };
                MemoryStore { records }.purge_expired();
            }
        });
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let mut map = self.records.lock().expect("memory store");
        while map.contains_key(&record.id) {
            record.id = Id::default();
        }
        map.insert(record.id, record.clone());
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.records
            .lock()
            .expect("memory store")
            .insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let now = OffsetDateTime::now_utc();
        Ok(self
            .records
            .lock()
            .expect("memory store")
            .get(id)
            .filter(|r| r.expiry_date > now)
            .cloned())
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.records.lock().expect("memory store").remove(id);
        Ok(())
    }
}

/// The login index and the locks of the in-process store.
#[derive(Debug, Default)]
pub struct MemoryExtras {
    index: Mutex<HashMap<String, Vec<(String, u64)>>>,
    locks: Mutex<HashMap<String, (String, Instant)>>,
    /// When the whole index was last swept of expired entries (unix seconds).
    last_sweep: std::sync::atomic::AtomicU64,
}

impl MemoryExtras {
    /// Adds `member` to the index `key` until `until` (unix seconds).
    pub fn index_add(&self, key: &str, member: String, until: u64, now: u64) {
        use std::sync::atomic::Ordering;
        let mut index = self.index.lock().expect("memory index");
        // Sweep every index at most once a minute (not on every login: that
        // made a login cost grow with the number of live sessions).
        if now.saturating_sub(self.last_sweep.load(Ordering::Relaxed)) >= 60 {
            self.last_sweep.store(now, Ordering::Relaxed);
            index.retain(|_, members| {
                members.retain(|(_, u)| *u > now);
                !members.is_empty()
            });
        }
        let members = index.entry(key.to_owned()).or_default();
        members.retain(|(_, u)| *u > now);
        members.push((member, until));
    }

    /// The live members of index `key`.
    pub fn index_get(&self, key: &str, now: u64) -> Vec<String> {
        self.index
            .lock()
            .expect("memory index")
            .get(key)
            .map(|m| {
                m.iter()
                    .filter(|(_, u)| *u > now)
                    .map(|(m, _)| m.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Takes lock `name` for `ttl` unless someone else holds it.
    pub fn try_lock(&self, name: &str, token: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut locks = self.locks.lock().expect("memory locks");
        locks.retain(|_, (_, until)| *until > now);
        if locks.contains_key(name) {
            return false;
        }
        locks.insert(name.to_owned(), (token.to_owned(), now + ttl));
        true
    }

    /// Frees lock `name` if `token` still holds it.
    pub fn unlock(&self, name: &str, token: &str) {
        let mut locks = self.locks.lock().expect("memory locks");
        if locks.get(name).is_some_and(|(t, _)| t == token) {
            locks.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expired_records_are_invisible_and_purged() {
        let store = MemoryStore::default();
        let mut live = Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        let mut dead = Record {
            expiry_date: OffsetDateTime::now_utc() - time::Duration::seconds(1),
            ..live.clone()
        };
        dead.id = Id::default();
        store.create(&mut live).await.unwrap();
        store.create(&mut dead).await.unwrap();
        assert!(store.load(&dead.id).await.unwrap().is_none());
        assert!(store.load(&live.id).await.unwrap().is_some());
        assert_eq!(store.len(), 2);
        assert_eq!(store.purge_expired(), 1);
        assert_eq!(store.len(), 1);
    }
}

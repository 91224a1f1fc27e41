//! The in-process store's records (pending logins; signed-in sessions are
//! kept decoded in [`super::cache`]), the login index and locks in memory.
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
///
/// Index names are 32 hex digits (a keyed hash, [`super::codec::hex32`]):
/// kept as the 128-bit number they spell, and each name's members in a
/// vector sized to fit, so the index adds about 130 bytes per entry (two
/// entries per login: `sid` and `sub`) rather than some 300 as `String`s.
#[derive(Debug, Default)]
pub struct MemoryExtras {
    index: Mutex<HashMap<IndexName, Members>>,
    locks: Mutex<HashMap<String, (String, Instant)>>,
    /// When the whole index was last swept of expired entries (unix seconds).
    last_sweep: std::sync::atomic::AtomicU64,
}

/// The members of one index name, each with its end (unix seconds).
type Members = Vec<(Box<str>, u64)>;

/// An index name: its 32 hex digits as a number, or the text itself if it
/// is not such a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IndexName {
    Hash(u128),
    Text(Box<str>),
}

impl IndexName {
    fn of(name: &str) -> Self {
        let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        match u128::from_str_radix(name, 16) {
            Ok(n) if name.len() == 32 && name.bytes().all(lower_hex) => IndexName::Hash(n),
            _ => IndexName::Text(name.into()),
        }
    }
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
        let members = index
            .entry(IndexName::of(key))
            .or_insert_with(|| Vec::with_capacity(1));
        members.retain(|(_, u)| *u > now);
        members.push((member.into_boxed_str(), until));
    }

    /// The live members of index `key`.
    pub fn index_get(&self, key: &str, now: u64) -> Vec<String> {
        self.index
            .lock()
            .expect("memory index")
            .get(&IndexName::of(key))
            .map(|m| {
                m.iter()
                    .filter(|(_, u)| *u > now)
                    .map(|(m, _)| m.to_string())
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

    #[test]
    fn index_names_of_any_shape_are_kept_apart() {
        let extras = MemoryExtras::default();
        let hash = "00112233445566778899aabbccddeeff";
        extras.index_add(hash, "a".into(), 100, 1);
        extras.index_add("00112233445566778899AABBCCDDEEFF", "b".into(), 100, 1);
        extras.index_add("not-hex", "c".into(), 100, 1);
        assert_eq!(extras.index_get(hash, 1), ["a"]);
        assert_eq!(extras.index_get("not-hex", 1), ["c"]);
        assert!(extras.index_get(hash, 100).is_empty(), "expired");
    }

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

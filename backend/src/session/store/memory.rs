//! The in-process store: one instance, nothing to install, lost on restart.
//!
//! Records are kept decoded ([`super::Payload::kept`]), so a request
//! reads its session without decrypting or parsing anything. A background
//! task drops expired records, index entries and replay entries every minute
//! for as long as the store is in use.
//!
//! The login index's names are 32 hex digits (a keyed hash,
//! [`crate::session::codec::hex32`]): kept as the 16 bytes they spell, and a
//! name's one member inline (a `sub` or `sid` names one session nearly
//! always; a vector only past one), so an entry costs its member's text and
//! one hash-table slot (two entries per login: `sid` and `sub`).

use super::{Kept, Payload, Record, Store, StoreError, Update, Watch};
use crate::session::data::now_secs;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// The members of one index name, each with its end (unix seconds): one
/// inline, more in a vector.
#[derive(Debug)]
enum Members {
    One(Box<str>, u64),
    Many(Vec<(Box<str>, u64)>),
}

impl Members {
    /// Drops the members that ended by `now`; whether any is left.
    fn retain_live(&mut self, now: u64) -> bool {
        match self {
            Members::One(_, until) => *until > now,
            Members::Many(all) => {
                all.retain(|(_, u)| *u > now);
                !all.is_empty()
            }
        }
    }

    /// Adds `member` until `until`, dropping the members that ended by `now`.
    fn add(&mut self, now: u64, member: &str, until: u64) {
        match self {
            Members::One(_, u) if *u <= now => *self = Members::One(member.into(), until),
            Members::One(first, u) => {
                let first = (std::mem::take(first), *u);
                *self = Members::Many(vec![first, (member.into(), until)]);
            }
            Members::Many(all) => {
                all.retain(|(_, u)| *u > now);
                if all.is_empty() {
                    *self = Members::One(member.into(), until);
                } else {
                    all.push((member.into(), until));
                }
            }
        }
    }

    /// The live members.
    fn live(&self, now: u64) -> Vec<String> {
        match self {
            Members::One(m, u) if *u > now => vec![m.to_string()],
            Members::One(..) => Vec::new(),
            Members::Many(all) => all
                .iter()
                .filter(|(_, u)| *u > now)
                .map(|(m, _)| m.to_string())
                .collect(),
        }
    }
}

/// An index name: the 16 bytes its 32 hex digits spell, or the text itself
/// if it is not such a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IndexName {
    Hash([u8; 16]),
    Text(Box<str>),
}

impl IndexName {
    fn of(name: &str) -> Self {
        let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        match u128::from_str_radix(name, 16) {
            Ok(n) if name.len() == 32 && name.bytes().all(lower_hex) => {
                IndexName::Hash(n.to_be_bytes())
            }
            _ => IndexName::Text(name.into()),
        }
    }
}

/// A record as the memory store keeps it: 48 bytes a slot, and the session
/// itself shared with the requests that read it.
#[derive(Clone)]
struct KeptRecord {
    version: u64,
    expires_at: u64,
    payload: Kept,
}

impl KeptRecord {
    fn record(&self) -> Record {
        Record {
            version: self.version,
            expires_at: self.expires_at,
            payload: self.payload.payload(),
        }
    }
}

impl std::fmt::Debug for KeptRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptRecord")
            .field("version", &self.version)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Everything the memory store holds.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<Box<str>, KeptRecord>>,
    index: Mutex<HashMap<IndexName, Members>>,
    locks: Mutex<HashMap<String, (String, Instant)>>,
    claims: Mutex<HashMap<String, u64>>,
}

/// Locks a map; a panic while holding it cannot leave it half-changed (every
/// change is one map operation), so a poisoned lock is usable.
fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MemoryStore {
    /// A new store, purged every minute while in use.
    pub fn open() -> Arc<dyn Store> {
        let store = Arc::new(Self::default());
        store.spawn_purge(Duration::from_secs(60));
        store
    }

    /// Removes everything expired; returns how many records were removed.
    pub fn purge_expired(&self) -> usize {
        let now = now_secs();
        let mut records = guard(&self.records);
        let before = records.len();
        records.retain(|_, r| r.expires_at > now);
        let removed = before - records.len();
        drop(records);
        guard(&self.index).retain(|_, members| members.retain_live(now));
        guard(&self.claims).retain(|_, until| *until > now);
        removed
    }

    fn spawn_purge(self: &Arc<Self>, period: Duration) {
        let weak: Weak<Self> = Arc::downgrade(self);
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(store) = weak.upgrade() else {
                    return;
                };
                store.purge_expired();
            }
        });
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn load(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let now = now_secs();
        Ok(guard(&self.records)
            .get(key)
            .filter(|r| r.expires_at > now)
            .map(KeptRecord::record))
    }

    async fn create(
        &self,
        key: &str,
        payload: &Payload,
        expires_at: u64,
    ) -> Result<bool, StoreError> {
        let mut records = guard(&self.records);
        if records.contains_key(key) {
            return Ok(false);
        }
        let record = KeptRecord {
            version: 1,
            expires_at,
            payload: payload.kept(),
        };
        records.insert(key.into(), record);
        Ok(true)
    }

    async fn update(
        &self,
        key: &str,
        expected: u64,
        payload: &Payload,
        expires_at: u64,
    ) -> Result<Update, StoreError> {
        let now = now_secs();
        let mut records = guard(&self.records);
        let Some(record) = records.get_mut(key).filter(|r| r.expires_at > now) else {
            return Ok(Update::Gone);
        };
        if record.version != expected {
            return Ok(Update::Conflict);
        }
        record.version += 1;
        record.expires_at = expires_at;
        record.payload = payload.kept();
        Ok(Update::Written(record.version))
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(guard(&self.records).remove(key).is_some())
    }

    async fn index_add(&self, name: &str, member: &str, until: u64) -> Result<(), StoreError> {
        self.index_add_all(&[(name, member)], until).await
    }

    async fn index_add_all(&self, entries: &[(&str, &str)], until: u64) -> Result<(), StoreError> {
        let now = now_secs();
        // One lock for all the entries of a login.
        let mut index = guard(&self.index);
        for (name, member) in entries {
            index
                .entry(IndexName::of(name))
                .and_modify(|members| members.add(now, member, until))
                .or_insert_with(|| Members::One((*member).into(), until));
        }
        Ok(())
    }

    async fn index_members(&self, name: &str) -> Result<Vec<String>, StoreError> {
        let now = now_secs();
        Ok(guard(&self.index)
            .get(&IndexName::of(name))
            .map(|m| m.live(now))
            .unwrap_or_default())
    }

    async fn try_lock(&self, name: &str, token: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut locks = guard(&self.locks);
        locks.retain(|_, (_, until)| *until > now);
        if locks.contains_key(name) {
            return Ok(false);
        }
        locks.insert(name.to_owned(), (token.to_owned(), now + ttl));
        Ok(true)
    }

    async fn unlock(&self, name: &str, token: &str) -> Result<(), StoreError> {
        let mut locks = guard(&self.locks);
        if locks.get(name).is_some_and(|(t, _)| t == token) {
            locks.remove(name);
        }
        Ok(())
    }

    async fn claim_once(&self, name: &str, until: u64) -> Result<bool, StoreError> {
        let now = now_secs();
        let mut claims = guard(&self.claims);
        match claims.get(name) {
            Some(existing) if *existing > now => Ok(false),
            _ => {
                claims.insert(name.to_owned(), until);
                Ok(true)
            }
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn watch(&self, _sink: Weak<dyn super::ChangeSink>) -> Watch {
        // Records are in memory already; nothing else changes them.
        Watch::Unwatched
    }

    fn serves_from_memory(&self) -> bool {
        true
    }

    fn count_live(&self) -> Option<u64> {
        let now = now_secs();
        Some(
            guard(&self.records)
                .values()
                .filter(|r| r.expires_at > now)
                .count() as u64,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn index_names_of_any_shape_are_kept_apart() {
        let store = MemoryStore::default();
        let hash = "00112233445566778899aabbccddeeff";
        let far = now_secs() + 100;
        store.index_add(hash, "a", far).await.unwrap();
        store
            .index_add("00112233445566778899AABBCCDDEEFF", "b", far)
            .await
            .unwrap();
        store.index_add("not-hex", "c", far).await.unwrap();
        assert_eq!(store.index_members(hash).await.unwrap(), ["a"]);
        assert_eq!(store.index_members("not-hex").await.unwrap(), ["c"]);
        store.index_add("gone", "d", now_secs()).await.unwrap();
        assert!(
            store.index_members("gone").await.unwrap().is_empty(),
            "expired"
        );
    }

    #[test]
    fn an_index_name_keeps_its_live_members_one_inline_or_many() {
        let now = 1_000;
        // A second live member turns the inline one into a list of both.
        let mut m = Members::One("a".into(), now + 10);
        m.add(now, "b", now + 20);
        assert!(matches!(m, Members::Many(ref all) if all.len() == 2));
        assert_eq!(m.live(now), ["a", "b"]);
        // Adding drops the members that ended.
        m.add(now + 15, "c", now + 30);
        assert_eq!(m.live(now + 15), ["b", "c"]);
        assert!(m.retain_live(now + 25));
        assert_eq!(m.live(now + 25), ["c"]);
        assert!(!m.retain_live(now + 30), "nothing live is left");
        // An ended inline member is replaced, not kept beside the new one.
        let mut m = Members::One("a".into(), now);
        m.add(now, "b", now + 1);
        assert!(matches!(m, Members::One(ref s, _) if &**s == "b"));
        assert!(Members::One("a".into(), now).live(now).is_empty());
    }

    #[tokio::test]
    async fn a_record_not_decoded_yet_reads_back_with_its_bytes() {
        let store = MemoryStore::default();
        let until = now_secs() + 60;
        // (Decoded records, the common case, are read back by every login
        // of the store suite in tests/.)
        let raw = Payload::from_bytes(&b"sealed"[..]);
        assert!(store.create("raw", &raw, until).await.unwrap());
        let back = store.load("raw").await.unwrap().unwrap();
        assert_eq!(&back.payload.bytes()[..], b"sealed");
        assert_eq!((back.version, back.expires_at), (1, until));
    }

    #[tokio::test]
    async fn expired_records_are_invisible_and_purged() {
        let store = MemoryStore::default();
        let payload = Payload::from_bytes(&b"x"[..]);
        assert!(
            store
                .create("live", &payload, now_secs() + 3600)
                .await
                .unwrap()
        );
        assert!(
            store
                .create("dead", &payload, now_secs() - 1)
                .await
                .unwrap()
        );
        assert!(store.load("dead").await.unwrap().is_none());
        assert!(store.load("live").await.unwrap().is_some());
        assert_eq!(store.purge_expired(), 1);
        assert_eq!(store.count_live(), Some(1));
    }
}

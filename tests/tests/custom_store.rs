//! A session store added in one file: `MapStore` implements Keyway's public
//! `Store` trait on a map in memory (shared by every opening, as a store of
//! several instances would be), is handed to Keyway with
//! `Builder::store`, and passes the same suite as Keyway's own stores.

use async_trait::async_trait;
use keyway_backend::internals::now_secs;
use keyway_backend::{Payload, Record, Store, StoreError, Update};
use keyway_tests::store_suite::Target;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything the store holds.
#[derive(Debug, Default)]
struct Maps {
    records: HashMap<String, Record>,
    index: HashMap<String, Vec<(String, u64)>>,
    locks: HashMap<String, (String, Instant)>,
    claims: HashMap<String, u64>,
}

/// A store on maps behind one lock.
#[derive(Debug, Default, Clone)]
struct MapStore(Arc<Mutex<Maps>>);

impl MapStore {
    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.0.lock().unwrap()
    }
}

#[async_trait]
impl Store for MapStore {
    async fn load(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let now = now_secs();
        let record = self
            .maps()
            .records
            .get(key)
            .filter(|r| r.expires_at > now)
            .cloned();
        // Stored bytes only: as a store outside the process would return them.
        Ok(record.map(|r| Record {
            payload: Payload::from_bytes(r.payload.bytes().clone()),
            ..r
        }))
    }

    async fn create(
        &self,
        key: &str,
        payload: &Payload,
        expires_at: u64,
    ) -> Result<bool, StoreError> {
        let mut maps = self.maps();
        if maps.records.contains_key(key) {
            return Ok(false);
        }
        let record = Record {
            version: 1,
            expires_at,
            payload: Payload::from_bytes(payload.bytes().clone()),
        };
        maps.records.insert(key.to_owned(), record);
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
        let mut maps = self.maps();
        let Some(record) = maps.records.get_mut(key).filter(|r| r.expires_at > now) else {
            return Ok(Update::Gone);
        };
        if record.version != expected {
            return Ok(Update::Conflict);
        }
        record.version += 1;
        record.expires_at = expires_at;
        record.payload = Payload::from_bytes(payload.bytes().clone());
        Ok(Update::Written(record.version))
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.maps().records.remove(key).is_some())
    }

    async fn index_add(&self, name: &str, member: &str, until: u64) -> Result<(), StoreError> {
        let entry = (member.to_owned(), until);
        self.maps()
            .index
            .entry(name.to_owned())
            .or_default()
            .push(entry);
        Ok(())
    }

    async fn index_members(&self, name: &str) -> Result<Vec<String>, StoreError> {
        let now = now_secs();
        let maps = self.maps();
        let members = maps.index.get(name).into_iter().flatten();
        Ok(members
            .filter(|(_, u)| *u > now)
            .map(|(m, _)| m.clone())
            .collect())
    }

    async fn try_lock(&self, name: &str, token: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut maps = self.maps();
        if maps.locks.get(name).is_some_and(|(_, until)| *until > now) {
            return Ok(false);
        }
        maps.locks
            .insert(name.to_owned(), (token.to_owned(), now + ttl));
        Ok(true)
    }

    async fn unlock(&self, name: &str, token: &str) -> Result<(), StoreError> {
        let mut maps = self.maps();
        if maps.locks.get(name).is_some_and(|(t, _)| t == token) {
            maps.locks.remove(name);
        }
        Ok(())
    }

    async fn claim_once(&self, name: &str, until: u64) -> Result<bool, StoreError> {
        let now = now_secs();
        let mut maps = self.maps();
        if maps.claims.get(name).is_some_and(|u| *u > now) {
            return Ok(false);
        }
        maps.claims.insert(name.to_owned(), until);
        Ok(true)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Every opening is the same maps: a store shared by instances.
struct Shared(MapStore);

#[async_trait]
impl Target for Shared {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(self.0.clone())
    }
    fn shared(&self) -> bool {
        true
    }
    fn raw_contents(&self) -> Option<Vec<u8>> {
        let maps = self.0.maps();
        let mut all = Vec::new();
        for (k, r) in &maps.records {
            all.extend(k.as_bytes());
            all.extend(r.payload.bytes().iter());
        }
        for (k, members) in &maps.index {
            all.extend(k.as_bytes());
            for (m, _) in members {
                all.extend(m.as_bytes());
            }
        }
        Some(all)
    }
}

async fn map_store() -> Shared {
    Shared(MapStore::default())
}

keyway_tests::store_suite!(map_store_suite, super::map_store);

//! Separate namespaces on one store: a wrapper that maps every id before it
//! reaches the store.
//!
//! The stored id of cookie id `X` in namespace `ns` is a 4-character marker
//! (`kws_` for sessions, `kwp_` for pending logins, visible in the id's
//! base64url text, so a Redis key or an SQLite row says what it is) followed
//! by 104 bits of SHA-256 over the namespace and `X`. So
//!
//! - an id of one namespace never addresses a record of the other (different
//!   marker, and the hash is domain-separated by the namespace), and
//! - someone who reads the store (a backup, `redis-cli KEYS *`) sees hashes,
//!   not cookie values: a key listed there cannot be replayed as a cookie.
//!
//! The record handed back by `load` carries the cookie id again, so the layer
//! above (encryption with the id as associated data) never sees the mapping.

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

/// A namespace of records in a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// Signed-in sessions (cookie `keyway`).
    Sessions,
    /// Pending logins (cookie `keyway-login`).
    Pending,
}

impl Namespace {
    /// The marker the stored ids of this namespace start with.
    pub fn marker(self) -> &'static str {
        match self {
            Namespace::Sessions => "kws_",
            Namespace::Pending => "kwp_",
        }
    }

    /// The id under which the record of cookie id `id` is stored.
    pub fn stored_id(self, id: &Id) -> Id {
        // The marker's base64url decoding (4 characters = 3 bytes).
        let marker: [u8; 3] = match self {
            Namespace::Sessions => [0x93, 0x0b, 0x3f],
            Namespace::Pending => [0x93, 0x0a, 0x7f],
        };
        let mut hash = Sha256::new();
        hash.update(b"keyway store id v1\0");
        hash.update(self.marker().as_bytes());
        hash.update(id.0.to_le_bytes());
        let digest = hash.finalize();
        let mut bytes = [0u8; 16];
        bytes[..3].copy_from_slice(&marker);
        bytes[3..].copy_from_slice(&digest[..13]);
        // `Id`'s text is the base64url of its little-endian bytes.
        Id(i128::from_le_bytes(bytes))
    }
}

/// A store whose ids are mapped per [`Namespace`].
#[derive(Debug, Clone)]
pub struct NamespacedStore {
    inner: Arc<dyn SessionStore>,
    namespace: Namespace,
}

impl NamespacedStore {
    /// Wraps `inner` for one namespace.
    pub fn new(inner: Arc<dyn SessionStore>, namespace: Namespace) -> Self {
        Self { inner, namespace }
    }

    fn mapped(&self, record: &Record) -> Record {
        Record {
            id: self.namespace.stored_id(&record.id),
            data: record.data.clone(),
            expiry_date: record.expiry_date,
        }
    }
}

#[async_trait]
impl SessionStore for NamespacedStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let mut stored = self.mapped(record);
            let wanted = stored.id;
            self.inner.create(&mut stored).await?;
            if stored.id == wanted {
                return Ok(());
            }
            // The store had to pick another id for a taken one; that id is no
            // mapping of any cookie id. Drop it and draw a new cookie id.
            self.inner.delete(&stored.id).await?;
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.inner.save(&self.mapped(record)).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        Ok(self
            .inner
            .load(&self.namespace.stored_id(id))
            .await?
            .map(|mut r| {
                r.id = *id;
                r
            }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.inner.delete(&self.namespace.stored_id(id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn stored_ids_are_marked_and_differ_per_namespace() {
        let id = Id::default();
        let s = Namespace::Sessions.stored_id(&id);
        let p = Namespace::Pending.stored_id(&id);
        assert!(s.to_string().starts_with("kws_"), "{s}");
        assert!(p.to_string().starts_with("kwp_"), "{p}");
        assert_ne!(s.to_string()[4..], p.to_string()[4..]);
        assert_ne!(s, id);
        assert_eq!(s, Namespace::Sessions.stored_id(&id), "deterministic");
        for ns in [Namespace::Sessions, Namespace::Pending] {
            let decoded = URL_SAFE_NO_PAD.decode(ns.marker()).unwrap();
            assert_eq!(ns.stored_id(&id).0.to_le_bytes()[..3], decoded[..]);
        }
    }
}

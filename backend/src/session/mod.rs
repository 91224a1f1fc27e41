//! Server-side sessions: what a session holds ([`data`]), its id ([`id`]),
//! the cookies ([`cookie`]), encryption at rest ([`codec`]), and the stores
//! ([`store`]). [`Sessions`] is the one way the rest of Keyway reaches them.
//!
//! Every session is a versioned record ([`store::Record`]): a writer says
//! which version it read, and the store refuses the write if the record has
//! changed or gone since ([`Updated`]). That is how a logout stays a logout
//! while a refresh or an idle-time touch is in flight, on every store and
//! instance (see [`store`]).

pub(crate) mod codec;
pub mod cookie;
pub(crate) mod data;
pub(crate) mod id;
pub(crate) mod store;

use crate::config::{SessionKey, SessionSettings};
use crate::metrics::StoreStatus;
use codec::Codec;
use data::{SessionData, now_secs};
use id::SessionId;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use store::{Payload, Record, Store, StoreError, StoreLock, Update};

/// A session as loaded: its id, the version read, and its data.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session id (the cookie's value).
    pub id: SessionId,
    /// The version of the record this was read from.
    pub version: u64,
    /// What the session holds (shared: change a copy and [`Sessions::update`]).
    pub data: Arc<SessionData>,
}

/// The outcome of [`Sessions::update`].
#[derive(Debug)]
pub enum Updated {
    /// Written: the session as it is now.
    Saved(Session),
    /// Someone else wrote the session since it was read: nothing written.
    Conflict,
    /// The session is gone (logged out, expired): nothing written.
    Gone,
}

/// The sessions of one deployment: a store, the codec that seals records,
/// and the session settings.
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn Store>,
    codec: Codec,
    settings: SessionSettings,
    /// What the store is (`/readyz`, the `store` label of metrics).
    kind: &'static str,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("store", &self.settings.store.to_string())
            .finish()
    }
}

fn index_label(kind: &str, provider: &str, value: &str) -> String {
    format!("{kind}\0{provider}\0{value}")
}

/// A name the store sees for `label` (lock and replay names): a hash.
fn hashed_name(domain: &str, label: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"keyway ");
    h.update(domain.as_bytes());
    h.update(b" v1\0");
    h.update(label.as_bytes());
    codec::hex32(&h.finalize())
}

impl Sessions {
    /// Opens the configured store.
    pub async fn open(settings: &SessionSettings) -> Result<Self, String> {
        Ok(Self::new(store::open(&settings.store).await?, settings))
    }

    /// Sessions on a given store (an application's own, or a test's).
    pub fn new(store: Arc<dyn Store>, settings: &SessionSettings) -> Self {
        Self {
            store,
            codec: Codec::new(&settings.keys),
            settings: settings.clone(),
            kind: store::kind_label(&settings.store),
        }
    }

    /// The same, for a store the application gave (not the configured one).
    pub(crate) fn given_store(mut self) -> Self {
        self.kind = "custom";
        self
    }

    /// What the store is: `memory`, `sqlite`, `redis`, `redis-sentinel`,
    /// `redis-cluster`, `postgres` or `custom`.
    pub fn store_kind(&self) -> &'static str {
        self.kind
    }

    /// The same store read and written with other keys (the first encrypts,
    /// all decrypt): what an instance configured with `keys` sees.
    pub fn with_keys(&self, keys: &[SessionKey]) -> Self {
        let mut settings = self.settings.clone();
        settings.keys = keys.to_vec();
        Self {
            kind: self.kind,
            ..Self::new(self.store.clone(), &settings)
        }
    }

    /// The session settings.
    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether the store answers.
    pub async fn ping(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    /// The store's state for `/metrics`: whether it answers (within a
    /// second), whether it serves from memory, and its own counters.
    pub async fn status(&self) -> StoreStatus {
        let up = tokio::time::timeout(Duration::from_secs(1), self.store.ping())
            .await
            .is_ok_and(|r| r.is_ok());
        StoreStatus {
            kind: self.kind,
            up,
            cache_live: self.store.serves_from_memory(),
            counters: self.store.counters(),
        }
    }

    /// How many sessions are live, where the store can tell cheaply.
    pub fn active_sessions(&self) -> Option<u64> {
        self.store.count_live()
    }

    /// Loads the live session of a cookie value. Unknown, expired or
    /// undecryptable ids are `None` (an anonymous request, not an error);
    /// a store outage is an error.
    pub async fn load(&self, cookie_value: &str) -> Result<Option<Session>, StoreError> {
        let Ok(id) = cookie_value.parse::<SessionId>() else {
            return Ok(None);
        };
        let record = self.store.load(&id.record_key()).await?;
        self.open_record(id, record).await
    }

    /// Loads a session from the store itself, not from any cache (under a
    /// refresh lock: what another instance wrote must be seen).
    pub async fn load_fresh(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        let record = self.store.load_fresh(&id.record_key()).await?;
        self.open_record(id, record).await
    }

    async fn open_record(
        &self,
        id: SessionId,
        record: Option<Record>,
    ) -> Result<Option<Session>, StoreError> {
        let Some(record) = record else {
            return Ok(None);
        };
        let key = id.record_key();
        let decoded = record.payload.decode_with(|bytes| {
            self.codec
                .open::<SessionData>(&key, bytes)
                .map(|(d, tag)| (tag, Arc::new(d)))
        });
        match decoded {
            Ok((tag, _)) if !self.codec.accepts(tag) => {
                tracing::warn!(
                    "session record is sealed with a key this instance lacks; treating the request as anonymous"
                );
                Ok(None)
            }
            Ok((_, data)) if data.expires_at(&self.settings) > now_secs() => Ok(Some(Session {
                id,
                version: record.version,
                data,
            })),
            Ok(_) => {
                self.store.delete(&key).await?;
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(error = %e, "session record cannot be read; treating the request as anonymous");
                Ok(None)
            }
        }
    }

    fn payload(&self, key: &str, data: SessionData) -> (Payload, u64, Arc<SessionData>) {
        let bytes = self.codec.seal(key, &data);
        let expires_at = data.expires_at(&self.settings);
        let data = Arc::new(data);
        let payload = Payload::decoded(bytes.into(), (self.codec.sealing_tag(), data.clone()));
        (payload, expires_at, data)
    }

    /// Creates a session under a new random id (128 bits from the OS CSPRNG).
    pub async fn create(&self, data: SessionData) -> Result<Session, StoreError> {
        loop {
            let id = SessionId::random();
            let key = id.record_key();
            let (payload, expires_at, data) = self.payload(&key, data.clone());
            if self.store.create(&key, &payload, expires_at).await? {
                return Ok(Session {
                    id,
                    version: 1,
                    data,
                });
            }
        }
    }

    /// Replaces the session's data if the record is still the version
    /// `current` was read from.
    pub async fn update(
        &self,
        current: &Session,
        data: SessionData,
    ) -> Result<Updated, StoreError> {
        let key = current.id.record_key();
        let (payload, expires_at, data) = self.payload(&key, data);
        Ok(
            match self
                .store
                .update(&key, current.version, &payload, expires_at)
                .await?
            {
                Update::Written(version) => Updated::Saved(Session {
                    id: current.id,
                    version,
                    data,
                }),
                Update::Conflict => Updated::Conflict,
                Update::Gone => Updated::Gone,
            },
        )
    }

    /// Records that the session is in use (the idle timeout counts from its
    /// last use). The store is written at most every `min(60 s, idle
    /// timeout / 4)`, compare-and-set: when another request wrote the
    /// session meanwhile, its write stands. `None` when the session is gone.
    pub async fn touch(&self, session: Session) -> Result<Option<Session>, StoreError> {
        let now = now_secs();
        let every = (self.settings.idle_timeout.as_secs() / 4).clamp(1, 60);
        if now.saturating_sub(session.data.last_seen) < every {
            return Ok(Some(session));
        }
        let mut data = (*session.data).clone();
        data.last_seen = now;
        Ok(match self.update(&session, data).await? {
            Updated::Saved(saved) => Some(saved),
            Updated::Conflict => Some(session),
            Updated::Gone => None,
        })
    }

    /// Deletes a session; whether it existed.
    pub async fn delete(&self, id: SessionId) -> Result<bool, StoreError> {
        self.store.delete(&id.record_key()).await
    }

    /// Records that session `id` belongs to the provider's session `sid` (if
    /// any) and subject `sub`, until `until` — for back-channel logout. The
    /// store sees keyed hashes of provider, `sid` and `sub` and the session
    /// id encrypted.
    pub async fn index_login(
        &self,
        provider: &str,
        sid: Option<&str>,
        sub: &str,
        id: SessionId,
        until: u64,
    ) -> Result<(), StoreError> {
        let sid_entry = sid.map(|sid| ("sid", sid));
        let filed: Vec<(String, String)> = sid_entry
            .into_iter()
            .chain([("sub", sub)])
            .map(|(kind, value)| {
                let mut names = self.codec.lookup_names(&index_label(kind, provider, value));
                let name = names.swap_remove(0);
                let member = self.codec.seal_text(&name, &id.to_string());
                (name, member)
            })
            .collect();
        let entries: Vec<(&str, &str)> = filed
            .iter()
            .map(|(name, member)| (name.as_str(), member.as_str()))
            .collect();
        // One call for both entries: one statement or one round trip.
        self.store.index_add_all(&entries, until).await
    }

    /// Session ids recorded for provider+sid.
    pub async fn sessions_by_sid(
        &self,
        provider: &str,
        sid: &str,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.indexed(&index_label("sid", provider, sid)).await
    }

    /// Session ids recorded for provider+sub.
    pub async fn sessions_by_sub(
        &self,
        provider: &str,
        sub: &str,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.indexed(&index_label("sub", provider, sub)).await
    }

    async fn indexed(&self, label: &str) -> Result<Vec<SessionId>, StoreError> {
        let mut ids = Vec::new();
        for name in self.codec.lookup_names(label) {
            for member in self.store.index_members(&name).await? {
                match self.codec.open_text::<String>(&name, &member) {
                    Ok(text) => {
                        if let Ok(id) = text.parse::<SessionId>()
                            && !ids.contains(&id)
                        {
                            ids.push(id);
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "login index entry cannot be read"),
                }
            }
        }
        Ok(ids)
    }

    /// A short exclusive lock shared by every instance on this store. `None`
    /// when another holder has it. The store sees a hash of `key`.
    pub async fn try_lock(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<StoreLock>, StoreError> {
        let name = hashed_name("lock", key);
        let token = SessionId::random().to_string();
        Ok(self
            .store
            .try_lock(&name, &token, ttl)
            .await?
            .then(|| StoreLock::new(self.store.clone(), name, token)))
    }

    /// A lock like [`Sessions::try_lock`] that belongs with session `id`:
    /// its store name starts with the session's record key, so a store that
    /// shards by key (Redis Cluster) keeps it beside the record.
    pub async fn try_lock_session(
        &self,
        id: SessionId,
        purpose: &str,
        ttl: Duration,
    ) -> Result<Option<StoreLock>, StoreError> {
        let key = id.record_key();
        let name = format!(
            "{key}:{}",
            hashed_name("lock", &format!("{purpose}\0{key}"))
        );
        let token = SessionId::random().to_string();
        Ok(self
            .store
            .try_lock(&name, &token, ttl)
            .await?
            .then(|| StoreLock::new(self.store.clone(), name, token)))
    }

    /// Records `label` until `until`: `true` the first time, `false` on a
    /// replay. The store sees a hash of `label`.
    pub async fn claim_once(&self, label: &str, until: u64) -> Result<bool, StoreError> {
        self.store
            .claim_once(&hashed_name("once", label), until)
            .await
    }
}

//! Server-side sessions and pending logins, kept in a tower-sessions store.
//!
//! Keyway uses tower-sessions' store crates (`MemoryStore`, `SqliteStore`)
//! as its key-value layer but drives them itself instead of through
//! `SessionManagerLayer`: every store call is explicit in the handler that
//! needs it, so a store outage becomes the contract's `503
//! session_store_unavailable` (the layer would answer an empty 500), a static
//! file or `/healthz` never touches the store, and the session id can be
//! rotated and the cookies set exactly at login.
//!
//! Two namespaces: sessions (cookie `keyway`) and pending logins (cookie
//! `keyway-login`). Every store keeps a record under an id derived from the
//! cookie id and the namespace ([`namespace`]), so an id of one namespace can
//! never be read as the other, and the store never holds a usable cookie.
//!
//! Stores: [`memory`] (one process), [`sqlite`] (one host, survives
//! restarts), [`redis`] (several instances). Each also keeps the login index
//! (sessions by the provider's `sid` or `sub`, for back-channel logout) and
//! short locks shared by all instances ([`Sessions::try_lock`]).

pub mod cache;
pub mod codec;
pub mod cookie;
pub mod lock;
pub mod memory;
pub mod namespace;
pub mod redis;
pub mod sqlite;

use crate::config::{SessionKey, SessionSettings, StoreSetting};
use crate::error::Error;
use crate::secret::Secret;
use cache::{Cached, SessionCache};
use codec::Codec;
use lock::Backend;
pub use lock::StoreLock;
use namespace::{Namespace, NamespacedStore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// The session id type of the store API (128 random bits; its text is the cookie value).
pub use tower_sessions::session::Id;
use tower_sessions::session::Record;
use tower_sessions::session_store::{self, SessionStore};

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The tokens of a session. Only ever on the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    /// The access token.
    pub access_token: Secret,
    /// When the access token expires (seconds since the epoch), if the provider said.
    pub access_expires_at: Option<u64>,
    /// When the access token was issued (seconds since the epoch).
    pub access_issued_at: u64,
    /// The refresh token, if the provider gave one.
    pub refresh_token: Option<Secret>,
    /// The raw ID token, kept for `id_token_hint` at logout.
    pub id_token: Option<Secret>,
}

/// Who is signed in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    /// Subject at the provider.
    pub sub: String,
    /// Display name.
    pub name: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Whether the e-mail is verified.
    pub email_verified: Option<bool>,
    /// Picture URL.
    pub picture: Option<String>,
}

/// One signed-in session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    /// The user.
    pub identity: Identity,
    /// The provider id.
    pub provider: String,
    /// The provider's session id (`sid` claim), for back-channel logout.
    pub sid: Option<String>,
    /// The tokens.
    pub tokens: Tokens,
    /// Login time (seconds since the epoch).
    pub created_at: u64,
    /// Last use (seconds since the epoch).
    pub last_seen: u64,
}

impl SessionData {
    /// When this session ends if unused, and at the latest.
    pub fn expires_at(&self, settings: &SessionSettings) -> u64 {
        let idle_end = self.last_seen + settings.idle_timeout.as_secs();
        let absolute_end = self.created_at + settings.absolute_timeout.as_secs();
        let mut end = idle_end.min(absolute_end);
        // Without a refresh token the session cannot outlive its access token.
        if self.tokens.refresh_token.is_none()
            && let Some(at) = self.tokens.access_expires_at
        {
            end = end.min(at);
        }
        end
    }

    /// The user as the contract shows it.
    pub fn user(&self, settings: &SessionSettings) -> keyway_shared::User {
        keyway_shared::User {
            sub: self.identity.sub.clone(),
            provider: self.provider.clone(),
            name: self.identity.name.clone(),
            email: self.identity.email.clone(),
            email_verified: self.identity.email_verified,
            picture: self.identity.picture.clone(),
            expires_at: self.expires_at(settings),
        }
    }
}

#[cfg(test)]
impl SessionData {
    /// A session of `sub` with only what unit tests need: access token `a`,
    /// issued at `issued`, expiring at `expires`, no refresh or ID token.
    pub(crate) fn for_test(sub: &str, issued: u64, expires: Option<u64>) -> Self {
        SessionData {
            identity: Identity {
                sub: sub.into(),
                name: None,
                email: None,
                email_verified: None,
                picture: None,
            },
            provider: "p".into(),
            sid: None,
            tokens: Tokens {
                access_token: Secret::new("a"),
                access_expires_at: expires,
                access_issued_at: issued,
                refresh_token: None,
                id_token: None,
            },
            created_at: issued,
            last_seen: issued,
        }
    }
}

/// A login started by a browser and not yet completed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The `state` sent to the provider.
    pub state: Secret,
    /// The PKCE verifier.
    pub verifier: Secret,
    /// The OIDC nonce.
    pub nonce: Secret,
    /// The provider id.
    pub provider: String,
    /// The issuer the login went to (mix-up defence).
    pub issuer: String,
    /// Where to go after login.
    pub return_to: String,
    /// When it was started (seconds since the epoch).
    pub created_at: u64,
}

/// At most this many logins may be pending in one browser at once.
pub const MAX_PENDING_PER_BROWSER: usize = 8;

/// The stores behind sessions and pending logins.
#[derive(Clone)]
pub struct Sessions {
    /// Session records outside the process (SQLite, Redis); `None` for the
    /// memory store, whose records are the entries of `cache`.
    store: Option<Arc<dyn SessionStore>>,
    /// Decoded sessions: the memory store itself, or a cache in front of a
    /// store whose every change this process hears of ([`cache`]).
    cache: Option<Arc<SessionCache>>,
    pending: Arc<dyn SessionStore>,
    backend: Backend,
    codec: Codec,
    settings: SessionSettings,
    /// What must live as long as the store is open (the SQLite file lock,
    /// Redis change tracking).
    _owner: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("store", &self.settings.store.to_string())
            .finish()
    }
}

/// Drops expired sessions of the memory store every minute, for as long as
/// the store is in use.
fn spawn_memory_purge(cache: &Arc<SessionCache>, settings: SessionSettings) {
    let weak = Arc::downgrade(cache);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(cache) = weak.upgrade() else {
                return;
            };
            let now = now_secs();
            cache.purge(|d| d.expires_at(&settings) <= now);
        }
    });
}

/// The cache is keyed like the store (the stored id, not the cookie's): so
/// a Redis invalidation, which names a stored key, finds its entry.
fn cache_key(id: &Id) -> Id {
    Namespace::Sessions.stored_id(id)
}

fn store_error(e: session_store::Error) -> Error {
    Error::StoreUnavailable(e.to_string())
}

fn index_label(kind: &str, provider: &str, value: &str) -> String {
    format!("{kind}\0{provider}\0{value}")
}

fn to_offset(secs: u64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

impl Sessions {
    /// Opens the configured store (creating SQLite tables as needed) and starts
    /// the background deletion of expired records. A Redis server that does
    /// not answer yet does not stop start-up (see [`redis::open`]).
    pub async fn open(settings: &SessionSettings) -> Result<Self, String> {
        let this = match &settings.store {
            StoreSetting::Memory => {
                let pending = memory::MemoryStore::default();
                pending.spawn_purge(Duration::from_secs(60));
                let pending: Arc<dyn SessionStore> = Arc::new(pending);
                let cache = Arc::new(SessionCache::new(usize::MAX, None));
                spawn_memory_purge(&cache, settings.clone());
                Self {
                    store: None,
                    cache: Some(cache),
                    pending: Arc::new(NamespacedStore::new(pending, Namespace::Pending)),
                    backend: Backend::Memory(Arc::default()),
                    codec: Codec::new(&settings.keys),
                    settings: settings.clone(),
                    _owner: None,
                }
            }
            StoreSetting::Sqlite(path) => {
                let opened = sqlite::open(path).await?;
                Self {
                    store: Some(Arc::new(opened.sessions.clone())),
                    cache: Some(opened.cache.clone()),
                    pending: Arc::new(opened.pending.clone()),
                    backend: Backend::Sqlite(opened.pool.clone()),
                    codec: Codec::new(&settings.keys),
                    settings: settings.clone(),
                    _owner: Some(opened),
                }
            }
            StoreSetting::Redis(url) => {
                let opened = redis::open(url).await?;
                Self {
                    store: Some(Arc::new(opened.sessions)),
                    cache: Some(opened.cache),
                    pending: Arc::new(opened.pending),
                    backend: Backend::Redis(opened.pool),
                    codec: Codec::new(&settings.keys),
                    settings: settings.clone(),
                    _owner: None,
                }
            }
        };
        Ok(this)
    }

    /// The same stores read and written with other keys (the first
    /// encrypts, all decrypt): what an instance configured with `keys` sees.
    pub fn with_keys(&self, keys: &[SessionKey]) -> Self {
        Self {
            codec: Codec::new(keys),
            settings: SessionSettings {
                keys: keys.to_vec(),
                ..self.settings.clone()
            },
            ..self.clone()
        }
    }

    /// How many signed-in sessions the store holds (unexpired), where it can
    /// tell cheaply: the memory store can; SQLite and Redis answer `None`.
    pub fn active_sessions(&self) -> Option<u64> {
        if self.store.is_some() {
            return None;
        }
        let now = now_secs();
        let cache = self.cache.as_ref()?;
        Some(cache.count(|d| d.expires_at(&self.settings) > now) as u64)
    }

    /// Whether sessions are served from this process's memory right now:
    /// always for the memory store and SQLite; for Redis while change
    /// tracking is on ([`cache`]).
    pub fn cache_on(&self) -> bool {
        self.cache.as_ref().is_some_and(|c| c.is_enabled())
    }

    /// The session settings.
    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    /// Whether the store answers (a read of an unused id).
    pub async fn ping(&self) -> bool {
        self.pending.load(&Id::default()).await.is_ok()
    }

    /// Records that session `id` belongs to the provider's session `sid` (if
    /// any) and subject `sub`, until `until` (unix secs) — for back-channel
    /// logout. The store holds keyed hashes of provider, `sid` and `sub` and
    /// the session id encrypted; entries past `until` are dropped.
    pub async fn index_login(
        &self,
        provider: &str,
        sid: Option<&str>,
        sub: &str,
        id: Id,
        until: u64,
    ) -> Result<(), Error> {
        let now = now_secs();
        let sid_entry = sid.map(|sid| ("sid", sid));
        for (kind, value) in sid_entry.into_iter().chain([("sub", sub)]) {
            let label = index_label(kind, provider, value);
            let names = self.codec.lookup_names(&label);
            let name = &names[0];
            let member = self.codec.seal_text(name, &id.to_string());
            self.backend.index_add(name, &member, until, now).await?;
        }
        Ok(())
    }

    /// Session ids recorded for provider+sid.
    pub async fn sessions_by_sid(&self, provider: &str, sid: &str) -> Result<Vec<Id>, Error> {
        self.indexed(&index_label("sid", provider, sid)).await
    }

    /// Session ids recorded for provider+sub.
    pub async fn sessions_by_sub(&self, provider: &str, sub: &str) -> Result<Vec<Id>, Error> {
        self.indexed(&index_label("sub", provider, sub)).await
    }

    async fn indexed(&self, label: &str) -> Result<Vec<Id>, Error> {
        let now = now_secs();
        let mut ids = Vec::new();
        for name in self.codec.lookup_names(label) {
            for member in self.backend.index_get(&name, now).await? {
                match self.codec.open_text::<String>(&name, &member) {
                    Ok(text) => {
                        if let Ok(id) = text.parse::<Id>()
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

    /// A short exclusive lock shared by every instance on this store (Redis:
    /// `SET NX PX`; SQLite: a row with an expiry; memory: in-process). `None`
    /// when another holder has it. Dropping/releasing the guard frees it; it
    /// also expires after `ttl`. The store sees a hash of `key`, not `key`.
    pub async fn try_lock(&self, key: &str, ttl: Duration) -> Result<Option<StoreLock>, Error> {
        let mut h = Sha256::new();
        h.update(b"keyway lock v1\0");
        h.update(key.as_bytes());
        let name = codec::hex32(&h.finalize());
        let token = Id::default().to_string();
        Ok(self
            .backend
            .try_lock(&name, &token, ttl)
            .await?
            .then(|| StoreLock::new(self.backend.clone(), name, token)))
    }

    /// Loads a live session. Unknown, expired or undecryptable ids are `None`
    /// (an anonymous request, not an error); a store outage is an error.
    /// The session is shared (`Arc`): the cache hands out its own copy
    /// without copying it; change it with `Arc::make_mut` and [`Sessions::save`].
    pub async fn load(&self, id_text: &str) -> Result<Option<(Id, Arc<SessionData>)>, Error> {
        let Ok(id) = id_text.parse::<Id>() else {
            return Ok(None);
        };
        let key = cache_key(&id);
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            if !self.codec.accepts(hit.sealed_by) {
                tracing::warn!(
                    "session record is sealed with a key this instance lacks; treating the request as anonymous"
                );
                return Ok(None);
            }
            if hit.data.expires_at(&self.settings) > now_secs() {
                return Ok(Some((id, hit.data)));
            }
            self.delete(id).await?;
            return Ok(None);
        }
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let generation = self.cache.as_ref().map(|c| c.generation());
        let Some(record) = store.load(&id).await.map_err(store_error)? else {
            return Ok(None);
        };
        match self
            .codec
            .open_tagged::<SessionData>(&id.to_string(), &record.data)
        {
            Ok((data, sealed_by)) if data.expires_at(&self.settings) > now_secs() => {
                let data = Arc::new(data);
                if let (Some(cache), Some(generation)) = (&self.cache, generation) {
                    let data = data.clone();
                    cache.fill(key, Cached { data, sealed_by }, generation);
                }
                Ok(Some((id, data)))
            }
            Ok(_) => {
                self.delete(id).await?;
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(error = %e, "session record cannot be read; treating the request as anonymous");
                Ok(None)
            }
        }
    }

    fn cached(&self, data: &SessionData) -> Cached {
        Cached {
            data: Arc::new(data.clone()),
            sealed_by: self.codec.sealing_tag(),
        }
    }

    /// Creates a session under a new random id and returns the id.
    pub async fn create(&self, data: &SessionData) -> Result<Id, Error> {
        let Some(store) = &self.store else {
            // The memory store: Id::default() draws 128 bits from a CSPRNG.
            let cache = self.cache.as_ref().expect("the memory store has its map");
            let entry = self.cached(data);
            loop {
                let id = Id::default();
                if cache.insert_new(cache_key(&id), entry.clone()) {
                    return Ok(id);
                }
            }
        };
        // Id::default() draws 128 bits from a CSPRNG; `create` makes sure it is unused.
        let mut record = Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: to_offset(data.expires_at(&self.settings)),
        };
        // The id is fixed before sealing (it is the associated data); re-seal
        // if the store had to pick another.
        record.data = self.codec.seal(&record.id.to_string(), data);
        let chosen = record.id;
        store.create(&mut record).await.map_err(store_error)?;
        if record.id != chosen {
            record.data = self.codec.seal(&record.id.to_string(), data);
            store.save(&record).await.map_err(store_error)?;
        }
        Ok(record.id)
    }

    /// Saves a session under its id.
    pub async fn save(&self, id: Id, data: &SessionData) -> Result<(), Error> {
        let Some(store) = &self.store else {
            let cache = self.cache.as_ref().expect("the memory store has its map");
            cache.put(cache_key(&id), self.cached(data));
            return Ok(());
        };
        let record = Record {
            id,
            data: self.codec.seal(&id.to_string(), data),
            expiry_date: to_offset(data.expires_at(&self.settings)),
        };
        let saved = store.save(&record).await.map_err(store_error);
        // Dropped even if the write failed: it may have reached the store.
        if let Some(cache) = &self.cache {
            cache.invalidate(&cache_key(&id));
        }
        saved
    }

    /// Deletes a session.
    pub async fn delete(&self, id: Id) -> Result<(), Error> {
        let deleted = match &self.store {
            Some(store) => store.delete(&id).await.map_err(store_error),
            None => Ok(()),
        };
        if let Some(cache) = &self.cache {
            cache.invalidate(&cache_key(&id));
        }
        deleted
    }

    /// The pending logins of a browser (empty if none or unreadable).
    pub async fn load_pending(
        &self,
        id_text: &str,
    ) -> Result<Option<(Id, Vec<PendingLogin>)>, Error> {
        let Ok(id) = id_text.parse::<Id>() else {
            return Ok(None);
        };
        let Some(record) = self.pending.load(&id).await.map_err(store_error)? else {
            return Ok(None);
        };
        match self
            .codec
            .open::<Vec<PendingLogin>>(&id.to_string(), &record.data)
        {
            Ok(list) => Ok(Some((id, list))),
            Err(e) => {
                tracing::warn!(error = %e, "pending-login record cannot be read");
                Ok(None)
            }
        }
    }

    /// Saves a browser's pending logins; `id` `None` creates a new record.
    /// Returns the record id (the pending-login cookie's value).
    pub async fn save_pending(&self, id: Option<Id>, list: &[PendingLogin]) -> Result<Id, Error> {
        // Keep the record a little past the login timeout so that a late
        // callback is told `login_expired` rather than `invalid_state`.
        let newest = list
            .iter()
            .map(|p| p.created_at)
            .max()
            .unwrap_or_else(now_secs);
        let expiry = to_offset(newest + self.settings.login_timeout.as_secs() + 3600);
        match id {
            Some(id) => {
                let record = Record {
                    id,
                    data: self.codec.seal(&id.to_string(), &list),
                    expiry_date: expiry,
                };
                self.pending.save(&record).await.map_err(store_error)?;
                Ok(id)
            }
            None => {
                let mut record = Record {
                    id: Id::default(),
                    data: Default::default(),
                    expiry_date: expiry,
                };
                record.data = self.codec.seal(&record.id.to_string(), &list);
                let chosen = record.id;
                self.pending
                    .create(&mut record)
                    .await
                    .map_err(store_error)?;
                if record.id != chosen {
                    record.data = self.codec.seal(&record.id.to_string(), &list);
                    self.pending.save(&record).await.map_err(store_error)?;
                }
                Ok(record.id)
            }
        }
    }

    /// Deletes a browser's pending-login record.
    pub async fn delete_pending(&self, id: Id) -> Result<(), Error> {
        self.pending.delete(&id).await.map_err(store_error)
    }
}

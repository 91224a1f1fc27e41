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
//! `keyway-login`), in separate stores (separate SQLite tables) so that an id
//! of one can never be read as the other.

pub mod codec;
pub mod cookie;

use crate::config::{SessionSettings, StoreSetting};
use crate::error::Error;
use crate::secret::Secret;
use codec::Codec;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tower_sessions::session::{Id, Record};
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
    sessions: Arc<dyn SessionStore>,
    pending: Arc<dyn SessionStore>,
    codec: Codec,
    settings: SessionSettings,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("store", &self.settings.store.to_string())
            .finish()
    }
}

fn store_error(e: session_store::Error) -> Error {
    Error::StoreUnavailable(e.to_string())
}

fn to_offset(secs: u64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

impl Sessions {
    /// Opens the configured store (creating SQLite tables as needed) and starts
    /// the background deletion of expired records.
    pub async fn open(settings: &SessionSettings) -> Result<Self, String> {
        let (sessions, pending): (Arc<dyn SessionStore>, Arc<dyn SessionStore>) = match &settings
            .store
        {
            StoreSetting::Memory => (
                Arc::new(tower_sessions::MemoryStore::default()),
                Arc::new(tower_sessions::MemoryStore::default()),
            ),
            StoreSetting::Sqlite(path) => {
                use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
                use tower_sessions::ExpiredDeletion;
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5));
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(options)
                    .await
                    .map_err(|e| format!("cannot open SQLite store `{}`: {e}", path.display()))?;
                let s = tower_sessions_sqlx_store::SqliteStore::new(pool.clone())
                    .with_table_name("keyway_sessions")
                    .map_err(|e| e.to_string())?;
                let p = tower_sessions_sqlx_store::SqliteStore::new(pool)
                    .with_table_name("keyway_pending_logins")
                    .map_err(|e| e.to_string())?;
                s.migrate()
                    .await
                    .map_err(|e| format!("cannot create SQLite tables: {e}"))?;
                p.migrate()
                    .await
                    .map_err(|e| format!("cannot create SQLite tables: {e}"))?;
                for store in [s.clone(), p.clone()] {
                    tokio::spawn(async move {
                        if let Err(e) = store
                            .continuously_delete_expired(Duration::from_secs(60))
                            .await
                        {
                            tracing::error!(error = %e, "expired-session deletion stopped");
                        }
                    });
                }
                (Arc::new(s), Arc::new(p))
            }
            StoreSetting::Redis(_) => {
                return Err(
                    "the Redis store is not available in this build yet (use memory or sqlite://)"
                        .into(),
                );
            }
        };
        Ok(Self {
            sessions,
            pending,
            codec: Codec::new(&settings.keys),
            settings: settings.clone(),
        })
    }

    /// The session settings.
    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    /// Whether the store answers.
    pub async fn ping(&self) -> bool {
        self.sessions.load(&Id::default()).await.is_ok()
    }

    /// Loads a live session. Unknown, expired or undecryptable ids are `None`
    /// (an anonymous request, not an error); a store outage is an error.
    pub async fn load(&self, id_text: &str) -> Result<Option<(Id, SessionData)>, Error> {
        let Ok(id) = id_text.parse::<Id>() else {
            return Ok(None);
        };
        let Some(record) = self.sessions.load(&id).await.map_err(store_error)? else {
            return Ok(None);
        };
        match self
            .codec
            .open::<SessionData>(&id.to_string(), &record.data)
        {
            Ok(data) if data.expires_at(&self.settings) > now_secs() => Ok(Some((id, data))),
            Ok(_) => {
                self.sessions.delete(&id).await.map_err(store_error)?;
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(error = %e, "session record cannot be read; treating the request as anonymous");
                Ok(None)
            }
        }
    }

    /// Creates a session under a new random id and returns the id.
    pub async fn create(&self, data: &SessionData) -> Result<Id, Error> {
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
        self.sessions
            .create(&mut record)
            .await
            .map_err(store_error)?;
        if record.id != chosen {
            record.data = self.codec.seal(&record.id.to_string(), data);
            self.sessions.save(&record).await.map_err(store_error)?;
        }
        Ok(record.id)
    }

    /// Saves a session under its id.
    pub async fn save(&self, id: Id, data: &SessionData) -> Result<(), Error> {
        let record = Record {
            id,
            data: self.codec.seal(&id.to_string(), data),
            expiry_date: to_offset(data.expires_at(&self.settings)),
        };
        self.sessions.save(&record).await.map_err(store_error)
    }

    /// Deletes a session.
    pub async fn delete(&self, id: Id) -> Result<(), Error> {
        self.sessions.delete(&id).await.map_err(store_error)
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

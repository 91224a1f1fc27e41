//! Short exclusive locks shared by every instance on a store, and the
//! per-store parts behind the login index.

use super::memory::MemoryExtras;
use super::{redis, sqlite};
use crate::error::Error;
use std::sync::Arc;
use std::time::Duration;

/// What a store offers besides records: the login index and locks.
#[derive(Clone)]
pub(crate) enum Backend {
    /// In process.
    Memory(Arc<MemoryExtras>),
    /// The SQLite file's pool.
    Sqlite(sqlx::SqlitePool),
    /// The Redis pool.
    Redis(fred::clients::Pool),
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::StoreUnavailable(e.to_string())
}

fn redis_index_key(name: &str) -> String {
    format!("{}index:{name}", redis::KEY_PREFIX)
}

fn redis_lock_key(name: &str) -> String {
    format!("{}lock:{name}", redis::KEY_PREFIX)
}

impl Backend {
    pub(crate) async fn index_add(
        &self,
        name: &str,
        member: &str,
        until: u64,
        now: u64,
    ) -> Result<(), Error> {
        match self {
            Backend::Memory(m) => {
                m.index_add(name, member.to_owned(), until, now);
                Ok(())
            }
            Backend::Sqlite(pool) => sqlite::index_add(pool, name, member, until, now)
                .await
                .map_err(unavailable),
            Backend::Redis(pool) => {
                redis::index_add(pool, &redis_index_key(name), member, until, now)
                    .await
                    .map_err(|e| unavailable(e.details()))
            }
        }
    }

    pub(crate) async fn index_get(&self, name: &str, now: u64) -> Result<Vec<String>, Error> {
        match self {
            Backend::Memory(m) => Ok(m.index_get(name, now)),
            Backend::Sqlite(pool) => sqlite::index_get(pool, name, now)
                .await
                .map_err(unavailable),
            Backend::Redis(pool) => redis::index_get(pool, &redis_index_key(name), now)
                .await
                .map_err(|e| unavailable(e.details())),
        }
    }

    pub(crate) async fn try_lock(
        &self,
        name: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, Error> {
        match self {
            Backend::Memory(m) => Ok(m.try_lock(name, token, ttl)),
            Backend::Sqlite(pool) => {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                sqlite::try_lock(pool, name, token, ttl, now_ms)
                    .await
                    .map_err(unavailable)
            }
            Backend::Redis(pool) => redis::try_lock(pool, &redis_lock_key(name), token, ttl)
                .await
                .map_err(|e| unavailable(e.details())),
        }
    }

    pub(crate) async fn unlock(&self, name: &str, token: &str) -> Result<(), Error> {
        match self {
            Backend::Memory(m) => {
                m.unlock(name, token);
                Ok(())
            }
            Backend::Sqlite(pool) => sqlite::unlock(pool, name, token).await.map_err(unavailable),
            Backend::Redis(pool) => redis::unlock(pool, &redis_lock_key(name), token)
                .await
                .map_err(|e| unavailable(e.details())),
        }
    }
}

/// A held lock from [`super::Sessions::try_lock`]. [`StoreLock::release`]
/// frees it; dropping it frees it too (in the background for SQLite and
/// Redis); if the process dies it expires after its time to live.
pub struct StoreLock {
    backend: Backend,
    name: String,
    token: String,
    held: bool,
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLock")
            .field("name", &self.name)
            .field("held", &self.held)
            .finish()
    }
}

impl StoreLock {
    pub(crate) fn new(backend: Backend, name: String, token: String) -> Self {
        Self {
            backend,
            name,
            token,
            held: true,
        }
    }

    /// Frees the lock now (only if this holder still has it: after its time
    /// to live someone else may).
    pub async fn release(mut self) -> Result<(), Error> {
        self.held = false;
        self.backend.unlock(&self.name, &self.token).await
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        self.held = false;
        if let Backend::Memory(m) = &self.backend {
            m.unlock(&self.name, &self.token);
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (backend, name, token) = (
                self.backend.clone(),
                std::mem::take(&mut self.name),
                std::mem::take(&mut self.token),
            );
            runtime.spawn(async move {
                if let Err(e) = backend.unlock(&name, &token).await {
                    tracing::warn!(error = %e, "a store lock could not be freed; it expires by itself");
                }
            });
        }
    }
}

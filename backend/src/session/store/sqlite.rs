//! The SQLite store: one file, survives restarts, one process.
//!
//! One process owns the file: opening takes an exclusive lock on
//! `PATH.lock` (released when the process ends, however it ends), and a second
//! process is refused with an error naming the file. That is what lets the
//! process serve sessions from memory ([`super::cached`]): every write to the
//! file goes through it. Several openings inside one process (tests, or an
//! app that builds two routers) share one handle, one pool and one cache.
//! For several processes, use Redis.
//!
//! Tables: `keyway_records` (key, version, data, expires_at), the login
//! index, locks and the replay cache; a task deletes expired rows every
//! minute. Writes are conditional on the version (`UPDATE ... WHERE version
//! = ?`), so nothing written after a delete can bring a record back.

use super::cached::CachedStore;
use super::{Payload, Record, Store, StoreError, Update, Watch};
use crate::session::data::now_secs;
use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

/// The SQLite store.
#[derive(Debug)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
    /// The exclusive lock on `PATH.lock`, held while open.
    _lock: File,
}

/// The files this process has open, by the lock file's canonical path.
static OPEN: LazyLock<tokio::sync::Mutex<HashMap<PathBuf, Weak<dyn Store>>>> =
    LazyLock::new(Default::default);

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS keyway_records (
        key TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL,
        data BLOB NOT NULL, expires_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS keyway_records_expires_at ON keyway_records (expires_at)",
    "CREATE TABLE IF NOT EXISTS keyway_login_index (
        key TEXT NOT NULL, member TEXT NOT NULL, until INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS keyway_login_index_key ON keyway_login_index (key)",
    "CREATE INDEX IF NOT EXISTS keyway_login_index_until ON keyway_login_index (until)",
    "CREATE TABLE IF NOT EXISTS keyway_locks (
        name TEXT PRIMARY KEY NOT NULL, token TEXT NOT NULL, expires_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS keyway_claims (
        name TEXT PRIMARY KEY NOT NULL, until INTEGER NOT NULL)",
];

/// Index entries per `INSERT` in [`Store::index_add_all`] (three bound
/// parameters each).
const INDEX_BATCH: usize = 300;

fn err(e: sqlx::Error) -> StoreError {
    StoreError::new(e)
}

impl SqliteStore {
    /// Opens the store at `path` for this process (see the module docs): the
    /// handle already open in this process, or a new one, cached.
    pub(crate) async fn open(path: &Path) -> Result<Arc<dyn Store>, String> {
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                format!(
                    "cannot open SQLite store lock `{}`: {e}",
                    lock_path.display()
                )
            })?;
        let key = lock_path.canonicalize().unwrap_or(lock_path);
        let mut open_files = OPEN.lock().await;
        open_files.retain(|_, w| w.strong_count() > 0);
        if let Some(opened) = open_files.get(&key).and_then(Weak::upgrade) {
            return Ok(opened);
        }
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(format!(
                    "the SQLite store `{}` is in use by another process: one process owns a \
                     SQLite store (use Redis to share sessions between instances)",
                    path.display()
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(format!("cannot lock `{}`: {e}", key.display()));
            }
        }
        let store = Arc::new(Self::open_locked(path, lock).await?);
        store.spawn_expiry();
        let store = CachedStore::wrap(store);
        open_files.insert(key, Arc::downgrade(&store));
        Ok(store)
    }

    /// Opens (creating as needed) the file and its tables.
    async fn open_locked(path: &Path, lock: File) -> Result<Self, String> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL's usual pairing: a commit survives a crash of the process;
            // only a power loss can drop the last commits (sessions: users
            // sign in again), and no commit waits for an fsync.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| format!("cannot open SQLite store `{}`: {e}", path.display()))?;
        for statement in SCHEMA {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .map_err(|e| format!("cannot create SQLite tables: {e}"))?;
        }
        Ok(Self { pool, _lock: lock })
    }

    /// Deletes expired rows every minute while the store is in use.
    fn spawn_expiry(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(store) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = store.delete_expired().await {
                    tracing::warn!(error = %e, "deleting expired SQLite rows failed; retrying in a minute");
                }
            }
        });
    }

    async fn delete_expired(&self) -> Result<(), sqlx::Error> {
        let now = now_secs() as i64;
        let now_ms = now.saturating_mul(1000);
        sqlx::query("DELETE FROM keyway_records WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM keyway_login_index WHERE until <= ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM keyway_claims WHERE until <= ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM keyway_locks WHERE expires_ms <= ?")
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn load(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let row: Option<(i64, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT version, data, expires_at FROM keyway_records WHERE key = ? AND expires_at > ?",
        )
        .bind(key)
        .bind(now_secs() as i64)
        .fetch_optional(&self.pool)
        .await
        .map_err(err)?;
        Ok(row.map(|(version, data, expires_at)| Record {
            version: version as u64,
            expires_at: expires_at as u64,
            payload: Payload::from_bytes(data),
        }))
    }

    async fn create(
        &self,
        key: &str,
        payload: &Payload,
        expires_at: u64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO keyway_records (key, version, data, expires_at) VALUES (?, 1, ?, ?)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(payload.bytes().as_ref())
        .bind(expires_at as i64)
        .execute(&self.pool)
        .await
        .map_err(err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn update(
        &self,
        key: &str,
        expected: u64,
        payload: &Payload,
        expires_at: u64,
    ) -> Result<Update, StoreError> {
        let now = now_secs() as i64;
        let done = sqlx::query(
            "UPDATE keyway_records SET version = version + 1, data = ?, expires_at = ?
             WHERE key = ? AND version = ? AND expires_at > ?",
        )
        .bind(payload.bytes().as_ref())
        .bind(expires_at as i64)
        .bind(key)
        .bind(expected as i64)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(err)?;
        if done.rows_affected() == 1 {
            return Ok(Update::Written(expected + 1));
        }
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM keyway_records WHERE key = ? AND expires_at > ?",
        )
        .bind(key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(err)?;
        Ok(if exists.is_some() {
            Update::Conflict
        } else {
            Update::Gone
        })
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM keyway_records WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn index_add(&self, name: &str, member: &str, until: u64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO keyway_login_index (key, member, until) VALUES (?, ?, ?)")
            .bind(name)
            .bind(member)
            .bind(until as i64)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn index_add_all(&self, entries: &[(&str, &str)], until: u64) -> Result<(), StoreError> {
        // One multi-row `INSERT` (a login's two entries: one statement).
        // Batches keep each under SQLite's oldest bound-parameter limit (999).
        for batch in entries.chunks(INDEX_BATCH) {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO keyway_login_index (key, member, until) ",
            );
            insert.push_values(batch, |mut row, (name, member)| {
                row.push_bind(*name)
                    .push_bind(*member)
                    .push_bind(until as i64);
            });
            insert.build().execute(&self.pool).await.map_err(err)?;
        }
        Ok(())
    }

    async fn index_members(&self, name: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT member FROM keyway_login_index WHERE key = ? AND until > ?")
            .bind(name)
            .bind(now_secs() as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(err)
    }

    async fn try_lock(&self, name: &str, token: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now_ms = (now_secs() as i64).saturating_mul(1000);
        let done = sqlx::query(
            "INSERT INTO keyway_locks (name, token, expires_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET token = excluded.token, expires_ms = excluded.expires_ms
             WHERE keyway_locks.expires_ms <= ?4",
        )
        .bind(name)
        .bind(token)
        .bind(now_ms + ttl.as_millis() as i64)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn unlock(&self, name: &str, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM keyway_locks WHERE name = ? AND token = ?")
            .bind(name)
            .bind(token)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn claim_once(&self, name: &str, until: u64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO keyway_claims (name, until) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET until = excluded.until
             WHERE keyway_claims.until <= ?3",
        )
        .bind(name)
        .bind(until as i64)
        .bind(now_secs() as i64)
        .execute(&self.pool)
        .await
        .map_err(err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(err)
    }

    fn watch(&self, _sink: Weak<dyn super::ChangeSink>) -> Watch {
        // The file is locked by this process: every write goes through it.
        Watch::Exclusive
    }
}

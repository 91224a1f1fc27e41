//! The SQLite store: tower-sessions-sqlx-store tables for records, plus two
//! small tables of Keyway's for the login index and locks.
//!
//! One process owns the file: opening takes an exclusive lock on
//! `PATH.lock` (released when the process ends, however it ends), and a second
//! process is refused with an error naming the file. That is what lets the
//! process keep decoded sessions in memory ([`super::cache`]): every write to
//! the file goes through it. Several openings inside one process (tests, or
//! an app that builds two routers) share one handle, one pool and one cache.
//! For several processes, use Redis.

use super::cache::{CACHE_CAPACITY, SessionCache};
use super::namespace::{Namespace, NamespacedStore};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;
use tower_sessions::ExpiredDeletion;
use tower_sessions_sqlx_store::SqliteStore;

/// The opened SQLite store.
#[derive(Debug)]
pub struct Opened {
    /// Sessions.
    pub sessions: NamespacedStore,
    /// Pending logins.
    pub pending: NamespacedStore,
    /// The pool (index and locks).
    pub pool: SqlitePool,
    /// Decoded sessions of this file.
    pub cache: Arc<SessionCache>,
    /// The exclusive lock on `PATH.lock`, held while open.
    _lock: File,
}

/// The files this process has open, by the lock file's canonical path.
static OPEN: LazyLock<tokio::sync::Mutex<HashMap<PathBuf, Weak<Opened>>>> =
    LazyLock::new(Default::default);

/// Opens the store at `path` for this process (see the module docs): the
/// handle already open in this process, or a new one.
pub async fn open(path: &Path) -> Result<Arc<Opened>, String> {
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
    let opened = Arc::new(open_locked(path, lock).await?);
    open_files.insert(key, Arc::downgrade(&opened));
    Ok(opened)
}

/// Opens (creating as needed) the file, its tables, and starts the deletion
/// of expired records every minute.
async fn open_locked(path: &Path, lock: File) -> Result<Opened, String> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL's usual pairing: a commit survives a crash of the process;
        // only a power loss can drop the last commits (sessions: users sign
        // in again), and no commit waits for an fsync.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|e| format!("cannot open SQLite store `{}`: {e}", path.display()))?;
    let s = SqliteStore::new(pool.clone())
        .with_table_name("keyway_sessions")
        .map_err(|e| e.to_string())?;
    let p = SqliteStore::new(pool.clone())
        .with_table_name("keyway_pending_logins")
        .map_err(|e| e.to_string())?;
    let tables = |e: sqlx::Error| format!("cannot create SQLite tables: {e}");
    s.migrate().await.map_err(tables)?;
    p.migrate().await.map_err(tables)?;
    for statement in [
        "CREATE TABLE IF NOT EXISTS keyway_login_index (
            key TEXT NOT NULL, member TEXT NOT NULL, until INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS keyway_login_index_key ON keyway_login_index (key)",
        "CREATE INDEX IF NOT EXISTS keyway_login_index_until ON keyway_login_index (until)",
        "CREATE TABLE IF NOT EXISTS keyway_locks (
            name TEXT PRIMARY KEY NOT NULL, token TEXT NOT NULL, expires_ms INTEGER NOT NULL)",
    ] {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .map_err(|e| format!("cannot create SQLite tables: {e}"))?;
    }
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
    Ok(Opened {
        sessions: NamespacedStore::new(Arc::new(s), Namespace::Sessions),
        pending: NamespacedStore::new(Arc::new(p), Namespace::Pending),
        pool,
        cache: Arc::new(SessionCache::new(CACHE_CAPACITY, None)),
        _lock: lock,
    })
}

/// Adds `member` to index `key` until `until`, dropping expired entries.
pub async fn index_add(
    pool: &SqlitePool,
    key: &str,
    member: &str,
    until: u64,
    now: u64,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM keyway_login_index WHERE until <= ?")
        .bind(now as i64)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO keyway_login_index (key, member, until) VALUES (?, ?, ?)")
        .bind(key)
        .bind(member)
        .bind(until as i64)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// The live members of index `key`.
pub async fn index_get(pool: &SqlitePool, key: &str, now: u64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT member FROM keyway_login_index WHERE key = ? AND until > ?")
        .bind(key)
        .bind(now as i64)
        .fetch_all(pool)
        .await
}

/// Takes lock `name` (a row) unless a live row holds it.
pub async fn try_lock(
    pool: &SqlitePool,
    name: &str,
    token: &str,
    ttl: Duration,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO keyway_locks (name, token, expires_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET token = excluded.token, expires_ms = excluded.expires_ms
         WHERE keyway_locks.expires_ms <= ?4",
    )
    .bind(name)
    .bind(token)
    .bind(now_ms + ttl.as_millis() as i64)
    .bind(now_ms)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Frees lock `name` if `token` still holds it.
pub async fn unlock(pool: &SqlitePool, name: &str, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM keyway_locks WHERE name = ? AND token = ?")
        .bind(name)
        .bind(token)
        .execute(pool)
        .await
        .map(|_| ())
}

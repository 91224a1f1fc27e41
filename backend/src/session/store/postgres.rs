//! The PostgreSQL store: sessions shared by several instances, on the
//! database many teams already run (and make highly available), through
//! sqlx.
//!
//! **Schema.** The tables (`keyway_records`, `keyway_login_index`,
//! `keyway_locks`, `keyway_claims`) are created by the migrations in
//! `backend/migrations/postgres/`, embedded with `sqlx::migrate!` and applied
//! at start-up. sqlx takes a PostgreSQL advisory lock for the whole run, so
//! instances starting together against an empty database apply them once:
//! the others wait for the lock, then find them applied. Migrations run on a
//! connection of their own, closed afterwards, so an interrupted run can
//! never leave the lock held on a pooled connection.
//!
//! **Writes** are compare-and-set: `UPDATE … WHERE key = $1 AND version = $2`,
//! one statement that also tells a conflict from a deleted record.
//!
//! **Locks** are rows (`INSERT … ON CONFLICT DO UPDATE … WHERE expired`)
//! with an expiry on the database's clock, not advisory locks: an advisory
//! lock belongs to one connection, so a pooled store would have to keep that
//! connection checked out for the whole refresh grant, the lock could not be
//! freed from another connection (a dropped [`super::StoreLock`] frees itself
//! in the background), and it has no time to live. A row lock behaves like
//! Redis's `SET NX PX`: exclusive across instances, freed by its holder's
//! token only, taken over once expired.
//!
//! **Expiry** is a task that deletes expired rows every minute, in batches of
//! [`EXPIRY_BATCH`] picked with `FOR UPDATE SKIP LOCKED`: it never waits for
//! a row a request holds, holds each row for one short batch, and locks no
//! table, so requests never wait for it. Reads ignore expired rows anyway.
//!
//! **Outages.** Each operation is bounded ([`COMMAND_TIMEOUT`]; a connection
//! is waited for at most [`ACQUIRE_TIMEOUT`]), so while PostgreSQL is down or
//! restarting requests get `503 session_store_unavailable` at once, and the
//! pool reconnects by itself (each connection is checked before use). At
//! start-up a wrong password or database stops Keyway; a server that does
//! not answer yet does not: the schema is applied in the background once it
//! does, and `/readyz` says 503 until then.

use super::{Payload, Record, Store, StoreError, Update};
use crate::session::data::now_secs;
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The schema, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long one operation may take before it is an error.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an operation waits for a pooled connection (or a new one).
const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long start-up waits for the schema before going on not ready.
const STARTUP_WAIT: Duration = Duration::from_secs(5);
/// Connections in the pool.
const POOL_SIZE: u32 = 16;
/// How often expired rows are deleted.
const EXPIRY_EVERY: Duration = Duration::from_secs(60);
/// Rows deleted per statement by the expiry task.
pub(crate) const EXPIRY_BATCH: i64 = 1000;

/// The PostgreSQL store.
#[derive(Debug)]
pub(crate) struct PostgresStore {
    pool: PgPool,
    /// Whether the schema is in place (`ping` fails until it is).
    migrated: AtomicBool,
}

fn err(e: sqlx::Error) -> StoreError {
    StoreError::new(e)
}

/// Runs one operation within [`COMMAND_TIMEOUT`].
async fn bounded<T>(op: impl Future<Output = Result<T, sqlx::Error>>) -> Result<T, StoreError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, op).await {
        Ok(result) => result.map_err(err),
        Err(_) => Err(StoreError(format!(
            "PostgreSQL did not answer within {COMMAND_TIMEOUT:?}"
        ))),
    }
}

/// Whether retrying cannot help: refused credentials, no such database, a
/// server whose certificate is not trusted (`sslmode=verify-ca`/`verify-full`:
/// rustls' verdict, which sqlx hands back inside an I/O error).
fn is_fatal(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("28P01" | "28000" | "3D000" | "42501")
        ),
        sqlx::Error::Migrate(_) | sqlx::Error::Configuration(_) | sqlx::Error::Tls(_) => true,
        _ => false,
    }
}

/// The connection options of `url`, with Keyway's name and statement bound.
fn connect_options(url: &str) -> Result<PgConnectOptions, String> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| format!("invalid PostgreSQL URL: {e}"))?
        .application_name("keyway")
        .options([("statement_timeout", "2000"), ("lock_timeout", "1000")]);
    Ok(options)
}

/// Applies the migrations on a connection of its own (see the module docs).
async fn migrate(options: &PgConnectOptions) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect_with(options).await?;
    let result = MIGRATOR.run_direct(&mut conn).await;
    let _ = conn.close().await;
    result.map_err(sqlx::Error::from)
}

impl PostgresStore {
    /// Opens the pool and applies the schema (see the module docs).
    pub(crate) async fn open(url: &str) -> Result<Arc<dyn Store>, String> {
        let options = connect_options(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true)
            .connect_lazy_with(options.clone());
        let store = Arc::new(Self {
            pool,
            migrated: AtomicBool::new(false),
        });
        match tokio::time::timeout(STARTUP_WAIT, migrate(&options)).await {
            Ok(Ok(())) => store.migrated.store(true, Ordering::SeqCst),
            Ok(Err(e)) if is_fatal(&e) => {
                return Err(format!("PostgreSQL refused Keyway's schema or login: {e}"));
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "PostgreSQL is not reachable yet; starting not ready and retrying");
                store.spawn_migration(options);
            }
            Err(_) => {
                tracing::warn!(
                    "PostgreSQL did not answer within {STARTUP_WAIT:?}; starting not ready and retrying"
                );
                store.spawn_migration(options);
            }
        }
        store.spawn_expiry();
        Ok(store)
    }

    /// A store on `url` whose schema is in place, for one expiry pass now
    /// ([`crate::internals::postgres_expire_now`]).
    pub(crate) async fn open_for_expiry(url: &str) -> Result<Self, String> {
        let options = connect_options(url)?;
        migrate(&options).await.map_err(|e| e.to_string())?;
        Ok(Self {
            pool: PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_lazy_with(options),
            migrated: AtomicBool::new(true),
        })
    }

    /// Applies the schema in the background, retrying until it is in place.
    fn spawn_migration(self: &Arc<Self>, options: PgConnectOptions) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(100);
            loop {
                tokio::time::sleep(wait).await;
                let Some(store) = weak.upgrade() else {
                    return;
                };
                match tokio::time::timeout(STARTUP_WAIT, migrate(&options)).await {
                    Ok(Ok(())) => {
                        tracing::info!("PostgreSQL schema in place; session store ready");
                        store.migrated.store(true, Ordering::SeqCst);
                        return;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "PostgreSQL schema not applied yet; retrying");
                    }
                    Err(_) => tracing::warn!("PostgreSQL schema not applied yet; retrying"),
                }
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        });
    }

    /// Deletes expired rows every [`EXPIRY_EVERY`] while the store is in use.
    fn spawn_expiry(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let first = tokio::time::Instant::now() + EXPIRY_EVERY;
            let mut tick = tokio::time::interval_at(first, EXPIRY_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(store) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = store.delete_expired().await {
                    tracing::warn!(error = %e, "deleting expired PostgreSQL rows failed; retrying in a minute");
                }
            }
        });
    }

    /// One expiry pass (see the module docs); how many rows went.
    pub(crate) async fn delete_expired(&self) -> Result<u64, sqlx::Error> {
        let now = Some(now_secs() as i64);
        let passes = [
            (
                "DELETE FROM keyway_records WHERE key IN (SELECT key FROM keyway_records
                 WHERE expires_at <= $2 LIMIT $1 FOR UPDATE SKIP LOCKED)",
                now,
            ),
            (
                "DELETE FROM keyway_login_index WHERE (name, member) IN (SELECT name, member
                 FROM keyway_login_index WHERE until <= $2 LIMIT $1 FOR UPDATE SKIP LOCKED)",
                now,
            ),
            (
                "DELETE FROM keyway_claims WHERE name IN (SELECT name FROM keyway_claims
                 WHERE until <= $2 LIMIT $1 FOR UPDATE SKIP LOCKED)",
                now,
            ),
            (
                "DELETE FROM keyway_locks WHERE name IN (SELECT name FROM keyway_locks
                 WHERE expires_at <= clock_timestamp() LIMIT $1 FOR UPDATE SKIP LOCKED)",
                None,
            ),
        ];
        let mut deleted = 0;
        for (statement, now) in passes {
            loop {
                let mut query = sqlx::query(statement).bind(EXPIRY_BATCH);
                if let Some(now) = now {
                    query = query.bind(now);
                }
                let done = query.execute(&self.pool).await?.rows_affected();
                deleted += done;
                if done < EXPIRY_BATCH as u64 {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        Ok(deleted)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn load(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let row: Option<(i64, Vec<u8>, i64)> = bounded(
            sqlx::query_as(
                "SELECT version, data, expires_at FROM keyway_records
                 WHERE key = $1 AND expires_at > $2",
            )
            .bind(key)
            .bind(now_secs() as i64)
            .fetch_optional(&self.pool),
        )
        .await?;
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
        let done = bounded(
            sqlx::query(
                "INSERT INTO keyway_records (key, version, data, expires_at) VALUES ($1, 1, $2, $3)
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(payload.bytes().as_ref())
            .bind(expires_at as i64)
            .execute(&self.pool),
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn update(
        &self,
        key: &str,
        expected: u64,
        payload: &Payload,
        expires_at: u64,
    ) -> Result<Update, StoreError> {
        // One round trip: the write, and whether a live record is there at all.
        let (written, live): (Option<i64>, Option<i64>) = bounded(
            sqlx::query_as(
                "WITH written AS (
                    UPDATE keyway_records SET version = version + 1, data = $1, expires_at = $2
                    WHERE key = $3 AND version = $4 AND expires_at > $5 RETURNING version)
                 SELECT (SELECT version FROM written),
                        (SELECT version FROM keyway_records WHERE key = $3 AND expires_at > $5)",
            )
            .bind(payload.bytes().as_ref())
            .bind(expires_at as i64)
            .bind(key)
            .bind(expected as i64)
            .bind(now_secs() as i64)
            .fetch_one(&self.pool),
        )
        .await?;
        Ok(match (written, live) {
            (Some(v), _) => Update::Written(v as u64),
            (None, Some(_)) => Update::Conflict,
            (None, None) => Update::Gone,
        })
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let done = bounded(
            sqlx::query("DELETE FROM keyway_records WHERE key = $1")
                .bind(key)
                .execute(&self.pool),
        )
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn index_add(&self, name: &str, member: &str, until: u64) -> Result<(), StoreError> {
        bounded(
            sqlx::query(
                "INSERT INTO keyway_login_index (name, member, until) VALUES ($1, $2, $3)
                 ON CONFLICT (name, member)
                 DO UPDATE SET until = GREATEST(keyway_login_index.until, EXCLUDED.until)",
            )
            .bind(name)
            .bind(member)
            .bind(until as i64)
            .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn index_add_all(&self, entries: &[(&str, &str)], until: u64) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        // One statement for all the entries, whatever their number (one
        // prepared statement, arrays bound). `DISTINCT`: `ON CONFLICT DO
        // UPDATE` refuses to touch one row twice in a statement.
        let (names, members): (Vec<&str>, Vec<&str>) = entries.iter().copied().unzip();
        bounded(
            sqlx::query(
                "INSERT INTO keyway_login_index (name, member, until)
                 SELECT DISTINCT e.name, e.member, $3::BIGINT
                 FROM UNNEST($1::TEXT[], $2::TEXT[]) AS e(name, member)
                 ON CONFLICT (name, member)
                 DO UPDATE SET until = GREATEST(keyway_login_index.until, EXCLUDED.until)",
            )
            .bind(names)
            .bind(members)
            .bind(until as i64)
            .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn index_members(&self, name: &str) -> Result<Vec<String>, StoreError> {
        bounded(
            sqlx::query_scalar(
                "SELECT member FROM keyway_login_index WHERE name = $1 AND until > $2",
            )
            .bind(name)
            .bind(now_secs() as i64)
            .fetch_all(&self.pool),
        )
        .await
    }

    async fn try_lock(&self, name: &str, token: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ms = ttl.as_millis().max(1) as i64;
        let done = bounded(
            sqlx::query(
                "INSERT INTO keyway_locks (name, token, expires_at)
                 VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
                 ON CONFLICT (name) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
                 WHERE keyway_locks.expires_at <= clock_timestamp()",
            )
            .bind(name)
            .bind(token)
            .bind(ms)
            .execute(&self.pool),
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn unlock(&self, name: &str, token: &str) -> Result<(), StoreError> {
        bounded(
            sqlx::query("DELETE FROM keyway_locks WHERE name = $1 AND token = $2")
                .bind(name)
                .bind(token)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn claim_once(&self, name: &str, until: u64) -> Result<bool, StoreError> {
        let done = bounded(
            sqlx::query(
                "INSERT INTO keyway_claims (name, until) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET until = EXCLUDED.until
                 WHERE keyway_claims.until <= $3",
            )
            .bind(name)
            .bind(until as i64)
            .bind(now_secs() as i64)
            .execute(&self.pool),
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if !self.migrated.load(Ordering::SeqCst) {
            return Err(StoreError(
                "the PostgreSQL schema is not applied yet".into(),
            ));
        }
        bounded(sqlx::query("SELECT 1").execute(&self.pool))
            .await
            .map(|_| ())
    }
}

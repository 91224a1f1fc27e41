//! `[session]`: where sessions live, how long they last, and the keys that
//! encrypt them at rest.

use super::error::ConfigErrors;
use super::raw::RawSession;
use super::sources::{Origin, Sources};
use super::store_url::{self, RedisNodes};
use super::values::{duration, secret_file, unknown_keys};
use base64::Engine;
use serde::{Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// Where sessions are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSetting {
    /// In process memory: lost on restart, one instance only.
    Memory,
    /// An SQLite file: survives restarts, one process.
    Sqlite(PathBuf),
    /// A Redis server shared by several instances (`redis://` or `rediss://`).
    Redis(String),
    /// A Redis master found through Sentinel, or a Redis Cluster
    /// (`redis+sentinel://`, `redis+cluster://`; `rediss+…` for TLS).
    RedisNodes(RedisNodes),
    /// A PostgreSQL database (`postgres://` or `postgresql://`; TLS by `sslmode`).
    Postgres(String),
}

impl StoreSetting {
    /// Parses `memory`, `sqlite://PATH`, `redis://HOST:PORT` (`rediss://`),
    /// `redis+sentinel://H1,H2,H3/SERVICE`, `redis+cluster://H1,H2,H3` or
    /// `postgres://USER@HOST/DB`. Messages never quote a password.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value == "memory" {
            Ok(Self::Memory)
        } else if let Some(path) = value.strip_prefix("sqlite://") {
            if path.is_empty() {
                Err("sqlite:// needs a file path, e.g. sqlite://keyway.db".into())
            } else {
                Ok(Self::Sqlite(PathBuf::from(path)))
            }
        } else if value.starts_with("redis://") || value.starts_with("rediss://") {
            check_redis_url(value)?;
            Ok(Self::Redis(value.to_owned()))
        } else if value.starts_with("redis+") || value.starts_with("rediss+") {
            Ok(Self::RedisNodes(RedisNodes::parse(value)?))
        } else if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            store_url::check_postgres_url(value)?;
            Ok(Self::Postgres(value.to_owned()))
        } else {
            Err("expected `memory`, `sqlite://PATH`, `redis://HOST:PORT`, \
                 `redis+sentinel://H1,H2,H3/SERVICE`, `redis+cluster://H1,H2,H3` or \
                 `postgres://USER@HOST/DB`"
                .into())
        }
    }

    /// Whether the store is outside the process (and so must be encrypted).
    pub fn is_persistent(&self) -> bool {
        !matches!(self, Self::Memory)
    }
}

/// The shape of a Redis URL: a host, a port number if any, a database
/// number if any, nothing else.
fn check_redis_url(value: &str) -> Result<(), String> {
    let url = Url::parse(value).map_err(|e| format!("not a valid Redis URL: {e}"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err("not a valid Redis URL: it names no host".into());
    }
    let db = url.path().trim_start_matches('/');
    if !db.is_empty() && db.parse::<u8>().is_err() {
        return Err("not a valid Redis URL: the path must be a database number".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("not a valid Redis URL: no query or fragment expected".into());
    }
    Ok(())
}

impl fmt::Display for StoreSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            Self::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Self::Redis(u) => match Url::parse(u) {
                // A Redis URL may carry a password: print it without.
                Ok(mut url) => {
                    if url.password().is_some() {
                        let _ = url.set_password(Some("[redacted]"));
                    }
                    write!(f, "{url}")
                }
                Err(_) => f.write_str("redis://[unparsable]"),
            },
            Self::RedisNodes(nodes) => write!(f, "{nodes}"),
            Self::Postgres(url) => f.write_str(&store_url::display_postgres_url(url)),
        }
    }
}

impl Serialize for StoreSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A 32-byte key that encrypts session data at rest.
#[derive(Clone)]
pub struct SessionKey(pub [u8; 32]);

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for SessionKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// Session settings.
#[derive(Debug, Clone, Serialize)]
pub struct SessionSettings {
    /// Where sessions live.
    pub store: StoreSetting,
    /// A session unused this long ends.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A session ends this long after login, used or not.
    #[serde(with = "humantime_serde")]
    pub absolute_timeout: Duration,
    /// How long a started login may take to come back.
    #[serde(with = "humantime_serde")]
    pub login_timeout: Duration,
    /// Keys that encrypt session data at rest: the first encrypts, all decrypt.
    pub keys: Vec<SessionKey>,
}

/// Reads and checks `[session]`.
pub(super) fn read(errs: &mut ConfigErrors, src: &Sources, raw: &RawSession) -> SessionSettings {
    unknown_keys(errs, "session.", &raw.unknown);
    let store = match raw.store.as_deref() {
        Some(value) => StoreSetting::parse(value).unwrap_or_else(|e| {
            errs.push(src.name("session.store"), e);
            StoreSetting::Memory
        }),
        None => StoreSetting::Sqlite(PathBuf::from("keyway.db")),
    };
    let time = |errs: &mut ConfigErrors, key: &str, raw: &Option<String>, default: u64| {
        duration(
            errs,
            || src.name(key),
            raw.as_deref(),
            Duration::from_secs(default),
        )
    };
    let idle_timeout = time(errs, "session.idle_timeout", &raw.idle_timeout, 8 * 3600);
    let absolute_timeout = time(
        errs,
        "session.absolute_timeout",
        &raw.absolute_timeout,
        7 * 24 * 3600,
    );
    let login_timeout = time(errs, "session.login_timeout", &raw.login_timeout, 600);
    if absolute_timeout < idle_timeout {
        errs.push(
            src.name("session.absolute_timeout"),
            format!(
                "must not be shorter than {}",
                src.name("session.idle_timeout")
            ),
        );
    }
    let keys = keys(errs, src, raw, &store);
    SessionSettings {
        store,
        idle_timeout,
        absolute_timeout,
        login_timeout,
        keys,
    }
}

fn keys(
    errs: &mut ConfigErrors,
    src: &Sources,
    raw: &RawSession,
    store: &StoreSetting,
) -> Vec<SessionKey> {
    let before = errs.count();
    let text = match (&raw.key, &raw.key_file) {
        (Some(_), _) if src.origin("session.key") == Origin::File => {
            errs.push(
                "session.key",
                "keys are not accepted inline: use session.key_file or KEYWAY_SESSION_KEY",
            );
            None
        }
        (Some(key), _) => Some((src.name("session.key"), key.clone())),
        (None, Some(path)) => match secret_file(path) {
            Ok(s) => Some((src.name("session.key_file"), s.expose().to_owned())),
            Err(e) => {
                errs.push(src.name("session.key_file"), e);
                None
            }
        },
        (None, None) => None,
    };
    let keys = match text {
        Some((setting, text)) => parse_keys(&text).unwrap_or_else(|e| {
            errs.push(setting, e);
            Vec::new()
        }),
        None => Vec::new(),
    };
    if keys.is_empty() && store.is_persistent() && errs.count() == before {
        errs.push(
            src.name("session.key"),
            format!(
                "required with the `{store}` store: tokens are encrypted at rest. Make one with `openssl rand -base64 32`"
            ),
        );
    }
    keys
}

fn parse_keys(raw: &str) -> Result<Vec<SessionKey>, String> {
    let keys = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, k)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(k)
                .map_err(|_| {
                    format!(
                        "key #{} is not base64 (make one with `openssl rand -base64 32`)",
                        i + 1
                    )
                })?;
            let arr: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
                format!("key #{} is {} bytes; it must be 32", i + 1, b.len())
            })?;
            Ok(SessionKey(arr))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if keys.is_empty() {
        return Err("no key given".into());
    }
    Ok(keys)
}

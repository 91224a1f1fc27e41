//! Which Redis deployment the Redis store talks to — one server, a master
//! found through Sentinel, or a Cluster — as fred's own `Config`, and how
//! Keyway's keys are laid out on it.
//!
//! Sentinel and Cluster are fred's own support (`ServerConfig::Sentinel`,
//! `ServerConfig::Clustered`): fred asks the sentinels for the master and
//! follows failovers, or reads the cluster's slots and follows `MOVED`. Keyway
//! only translates its URL forms (`redis+sentinel://H1,H2,H3/SERVICE`,
//! `redis+cluster://H1,H2,H3`) into that configuration.
//!
//! # Keys on a Cluster
//!
//! Every command Keyway sends touches one key (the compare-and-set scripts
//! too), so nothing needs two keys in one slot to be correct. On a Cluster
//! the keys of one session are still put in one slot, with a hash tag: the
//! record `keyway:s:{kws_…}` and its refresh lock `keyway:lock:{kws_…}:…`.
//! A refresh (read, lock, write, unlock) then talks to one shard over one
//! connection, and the `WAIT` after each of its writes waits on that shard's
//! replica only. The login index (one key per provider `sid` or `sub`,
//! naming sessions in any slot) and the replay cache are single keys spread
//! over the slots by their own names. On one server and on Sentinel the
//! keys keep the names they always had (no braces), so sessions already
//! stored stay valid.
//!
//! While one shard fails over, fred re-reads the cluster's slots and
//! reconnects before it sends any other command, so every request that
//! needs the store waits (and answers `503` after the command timeout), not
//! only those of the failing shard's sessions: docs/sessions.md has the
//! measured window.

use crate::config::{RedisNodes, RedisTopology};
use fred::prelude::*;
use fred::types::config::{ClusterDiscoveryPolicy, ServerConfig};

/// Prefix of record keys (the ones change tracking reports).
const RECORD_PREFIX: &str = "keyway:s:";
/// Prefix of the other keys Keyway writes (index, locks, replay cache).
const KEY_PREFIX: &str = "keyway:";
/// Prefix of record keys: lock names that start with one are put in that
/// record's slot (see [`super::super::Sessions::try_lock_session`]).
const RECORD_KEY_PREFIX: &str = "kws_";

/// The kinds of Redis deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RedisKind {
    /// One server (`redis://`, `rediss://`).
    Single,
    /// A master and its replicas behind Sentinel.
    Sentinel,
    /// A Redis Cluster.
    Cluster,
}

/// A Redis deployment: fred's configuration and Keyway's key layout on it.
#[derive(Debug, Clone)]
pub(crate) struct RedisTarget {
    /// fred's configuration (servers, credentials, TLS, database).
    pub(crate) config: Config,
    /// What kind of deployment.
    pub(crate) kind: RedisKind,
}

impl RedisTarget {
    /// One server, from a `redis://` or `rediss://` URL.
    pub(crate) fn single(url: &str) -> Result<Self, String> {
        let config = Config::from_url_centralized(url)
            .map_err(|e| format!("invalid Redis URL: {}", e.details()))?;
        Ok(Self {
            config,
            kind: RedisKind::Single,
        })
    }

    /// Sentinel or Cluster, from Keyway's multi-host URL forms.
    pub(crate) fn nodes(nodes: &RedisNodes) -> Result<Self, String> {
        let hosts: Vec<Server> = nodes
            .hosts
            .iter()
            .map(|(host, port)| Server::new(host.as_str(), *port))
            .collect();
        let (server, kind) = match nodes.topology {
            RedisTopology::Sentinel => (
                ServerConfig::Sentinel {
                    hosts,
                    service_name: nodes.service.clone().unwrap_or_default(),
                },
                RedisKind::Sentinel,
            ),
            RedisTopology::Cluster => (
                ServerConfig::Clustered {
                    hosts,
                    policy: ClusterDiscoveryPolicy::default(),
                },
                RedisKind::Cluster,
            ),
        };
        let tls = if nodes.tls {
            Some(
                fred::types::config::TlsConnector::default_rustls()
                    .map_err(|e| format!("Redis TLS: {}", e.details()))?
                    .into(),
            )
        } else {
            None
        };
        Ok(Self {
            config: Config {
                server,
                username: nodes.username.clone(),
                password: nodes.password.as_ref().map(|p| p.expose().to_owned()),
                database: nodes.database,
                tls,
                ..Config::default()
            },
            kind,
        })
    }

    /// How many replicas must acknowledge a write (`WAIT`) before Keyway
    /// relies on it: one where a failover can promote a replica.
    pub(crate) fn replicas_to_wait(&self) -> i64 {
        match self.kind {
            RedisKind::Single => 0,
            RedisKind::Sentinel | RedisKind::Cluster => 1,
        }
    }

    fn tagged(&self) -> bool {
        self.kind == RedisKind::Cluster
    }

    /// The key of record `key`.
    pub(crate) fn record_key(&self, key: &str) -> String {
        if self.tagged() {
            format!("{RECORD_PREFIX}{{{key}}}")
        } else {
            format!("{RECORD_PREFIX}{key}")
        }
    }

    /// The record key a tracked Redis key names, if it is a record's.
    pub(crate) fn record_of<'a>(&self, redis_key: &'a str) -> Option<&'a str> {
        let rest = redis_key.strip_prefix(RECORD_PREFIX)?;
        if self.tagged() {
            rest.strip_prefix('{')?.strip_suffix('}')
        } else {
            Some(rest)
        }
    }

    /// The key of index `name`.
    pub(crate) fn index_key(&self, name: &str) -> String {
        format!("{KEY_PREFIX}index:{name}")
    }

    /// The key of lock `name`; on a Cluster, a name of the form
    /// `kws_…:…` lands in that record's slot.
    pub(crate) fn lock_key(&self, name: &str) -> String {
        match name.split_once(':') {
            Some((record, rest)) if self.tagged() && record.starts_with(RECORD_KEY_PREFIX) => {
                format!("{KEY_PREFIX}lock:{{{record}}}:{rest}")
            }
            _ => format!("{KEY_PREFIX}lock:{name}"),
        }
    }

    /// The key of replay-cache entry `name`.
    pub(crate) fn claim_key(&self, name: &str) -> String {
        format!("{KEY_PREFIX}once:{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fred::util::redis_keyslot;

    fn cluster() -> RedisTarget {
        RedisTarget::nodes(&RedisNodes::parse("redis+cluster://a:1,b:2").unwrap()).unwrap()
    }

    #[test]
    fn a_session_and_its_lock_share_a_slot_on_a_cluster() {
        let t = cluster();
        let record = t.record_key("kws_abc");
        let lock = t.lock_key("kws_abc:0123");
        assert_eq!(record, "keyway:s:{kws_abc}");
        assert_eq!(lock, "keyway:lock:{kws_abc}:0123");
        assert_eq!(
            redis_keyslot(record.as_bytes()),
            redis_keyslot(lock.as_bytes())
        );
        assert_eq!(t.record_of(&record), Some("kws_abc"));
        assert_eq!(t.record_of("keyway:lock:{kws_abc}:0123"), None);
        assert_eq!(t.lock_key("0123"), "keyway:lock:0123");
    }

    #[test]
    fn one_server_keeps_the_old_names() {
        let t = RedisTarget::single("redis://127.0.0.1:6379").unwrap();
        assert_eq!(t.record_key("kws_abc"), "keyway:s:kws_abc");
        assert_eq!(t.lock_key("kws_abc:0123"), "keyway:lock:kws_abc:0123");
        assert_eq!(t.record_of("keyway:s:kws_abc"), Some("kws_abc"));
        assert_eq!(t.replicas_to_wait(), 0);
        assert_eq!(cluster().replicas_to_wait(), 1);
    }
}

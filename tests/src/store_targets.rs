//! Store-suite targets ([`Target`]) for the highly available stores:
//! PostgreSQL, Redis behind Sentinel and Redis Cluster, each on real servers
//! started by the test ([`crate::postgres`], [`crate::redis_ha`]).

use crate::postgres::PgServer;
use crate::redis_ha::{RedisCluster, RedisNode, RedisSentinel, info_field};
use crate::store_suite::Target;
use async_trait::async_trait;
use keyway_backend::internals::open_store;
use keyway_backend::{Store, StoreSetting};
use std::sync::Arc;

async fn open(url: &str) -> Arc<dyn Store> {
    open_store(&StoreSetting::parse(url).expect("a store URL"))
        .await
        .expect("the store opens")
}

/// Keyway's PostgreSQL store on a real server.
pub struct Postgres {
    /// The server.
    pub server: PgServer,
}

impl Postgres {
    /// Starts a server with an empty database.
    pub async fn start() -> Self {
        Self {
            server: PgServer::start().await.expect("postgres starts"),
        }
    }
}

/// Every row of Keyway's tables as text, byte strings with their printable
/// bytes as they are (`encode(…, 'escape')`), so that anything stored in
/// the clear would show (empty before the schema exists).
pub fn postgres_rows(server: &PgServer) -> String {
    let query = "SELECT string_agg(t, E'\\n' ORDER BY t) FROM (
        SELECT key || ' ' || version || ' ' || encode(data, 'escape') || ' ' || expires_at AS t FROM keyway_records
        UNION ALL SELECT name || ' ' || member || ' ' || until FROM keyway_login_index
        UNION ALL SELECT name || ' ' || token FROM keyway_locks
        UNION ALL SELECT name || ' ' || until FROM keyway_claims) rows";
    match server.psql(query) {
        Ok(rows) => rows,
        // Before the store's first opening there are no tables.
        Err(e) if e.contains("does not exist") => String::new(),
        Err(e) => panic!("the tables cannot be read: {e}"),
    }
}

#[async_trait]
impl Target for Postgres {
    async fn open(&self) -> Arc<dyn Store> {
        open(&self.server.url()).await
    }
    fn shared(&self) -> bool {
        true
    }
    fn raw_contents(&self) -> Option<Vec<u8>> {
        Some(postgres_rows(&self.server).into_bytes())
    }
}

/// Every key of a Redis node with its value (strings, hashes, sorted sets in
/// full), as `redis-cli --raw` prints them.
pub fn redis_dump(node: &RedisNode) -> Vec<(String, String)> {
    let keys = node.cli(&["--scan"]).unwrap_or_default();
    keys.lines()
        .filter(|k| !k.is_empty())
        .map(|k| {
            let kind = node.cli(&["TYPE", k]).unwrap_or_default();
            let value = match kind.trim() {
                "string" => node.cli(&["GET", k]),
                "hash" => node.cli(&["HGETALL", k]),
                "zset" => node.cli(&["ZRANGE", k, "0", "-1", "WITHSCORES"]),
                other => Ok(format!("<{other}>")),
            };
            (k.to_owned(), value.unwrap_or_default())
        })
        .collect()
}

fn masters<'a>(nodes: impl Iterator<Item = &'a RedisNode>) -> Vec<&'a RedisNode> {
    nodes
        .filter(|n| n.is_running())
        .filter(|n| {
            let info = n.cli(&["INFO", "replication"]).unwrap_or_default();
            info_field(&info, "role").as_deref() == Some("master")
        })
        .collect()
}

fn dump_bytes(nodes: &[&RedisNode]) -> Vec<u8> {
    let mut all = Vec::new();
    for node in nodes {
        for (k, v) in redis_dump(node) {
            all.extend(k.into_bytes());
            all.push(b'\n');
            all.extend(v.into_bytes());
            all.push(b'\n');
        }
    }
    all
}

fn keys_with_ttl(nodes: &[&RedisNode]) -> Vec<(String, i64)> {
    let mut all = Vec::new();
    for node in nodes {
        for (k, _) in redis_dump(node) {
            let ttl = node.cli(&["TTL", &k]).unwrap_or_default();
            all.push((k, ttl.trim().parse().unwrap_or(-3)));
        }
    }
    all
}

/// `SCRIPT FLUSH` on every running node (masters and replicas: a replica
/// promoted later must not have the scripts either).
fn flush_scripts<'a>(nodes: impl Iterator<Item = &'a RedisNode>) {
    for node in nodes.filter(|n| n.is_running()) {
        node.cli(&["SCRIPT", "FLUSH"]).expect("SCRIPT FLUSH");
    }
}

/// Keyway's Redis store on a master behind three sentinels.
pub struct Sentinel {
    /// The servers and sentinels.
    pub group: RedisSentinel,
}

impl Sentinel {
    /// Starts the group.
    pub async fn start() -> Self {
        Self {
            group: RedisSentinel::start().await.expect("sentinel group starts"),
        }
    }
}

#[async_trait]
impl Target for Sentinel {
    async fn open(&self) -> Arc<dyn Store> {
        open(&self.group.url()).await
    }
    fn shared(&self) -> bool {
        true
    }
    fn raw_contents(&self) -> Option<Vec<u8>> {
        Some(dump_bytes(&masters(self.group.servers.iter())))
    }
    fn keys_with_ttl(&self) -> Option<Vec<(String, i64)>> {
        Some(keys_with_ttl(&masters(self.group.servers.iter())))
    }
    fn flush_scripts(&self) -> bool {
        flush_scripts(self.group.servers.iter());
        true
    }
}

/// Keyway's Redis store on a three-shard Redis Cluster.
pub struct Cluster {
    /// The nodes.
    pub cluster: RedisCluster,
}

impl Cluster {
    /// Starts the cluster.
    pub async fn start() -> Self {
        Self {
            cluster: RedisCluster::start().await.expect("cluster starts"),
        }
    }
}

#[async_trait]
impl Target for Cluster {
    async fn open(&self) -> Arc<dyn Store> {
        open(&self.cluster.url()).await
    }
    fn shared(&self) -> bool {
        true
    }
    fn raw_contents(&self) -> Option<Vec<u8>> {
        Some(dump_bytes(&masters(self.cluster.nodes.iter())))
    }
    fn keys_with_ttl(&self) -> Option<Vec<(String, i64)>> {
        Some(keys_with_ttl(&masters(self.cluster.nodes.iter())))
    }
    fn flush_scripts(&self) -> bool {
        flush_scripts(self.cluster.nodes.iter());
        true
    }
}

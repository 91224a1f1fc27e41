//! Highly available Redis for the tests, from Debian's `redis-server` on
//! free loopback ports, each process in its own directory, all killed when
//! dropped:
//!
//! - [`RedisSentinel`]: a master, two replicas and three sentinels
//!   (`redis-server --sentinel`, what Debian's `redis-sentinel` runs) that
//!   fail over one second after the master stops answering;
//! - [`RedisCluster`]: three masters with one replica each
//!   (`redis-cli --cluster create`), node timeout one second,
//!   `cluster-require-full-coverage no` (the other shards keep serving while
//!   one fails over, as docs/sessions.md recommends).

use crate::redis::free_port;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long set-up waits for a topology to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One `redis-server` process (a server or a sentinel).
#[derive(Debug)]
pub struct RedisNode {
    /// Its port.
    pub port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl RedisNode {
    /// Starts a node on a free port. The port (or a Cluster node's bus
    /// port, 10000 above it) may be taken between picking and binding, by
    /// another test's connection: a node that exits at start is tried again
    /// on another port, up to three times (as [`crate::redis::RedisServer`]
    /// does).
    fn spawn(config: &str, sentinel: bool) -> Result<RedisNode, String> {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::spawn_on(free_port(), config, sentinel) {
                Ok(node) => return Ok(node),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn spawn_on(port: u16, config: &str, sentinel: bool) -> Result<RedisNode, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let file = dir.path().join("redis.conf");
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsave \"\"\nappendonly no\n{config}\n",
            dir.path().display()
        );
        std::fs::write(&file, text).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("redis-server");
        cmd.arg(&file);
        if sentinel {
            cmd.arg("--sentinel");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        let mut node = RedisNode {
            port,
            child: Some(child),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while node
            .cli(&["PING"])
            .map(|o| o.trim() != "PONG")
            .unwrap_or(true)
        {
            if let Some(child) = node.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                node.child = None;
                return Err(format!("redis-server on {port} exited at start: {status}"));
            }
            if Instant::now() > deadline {
                return Err(format!("redis-server on {port} did not answer PING"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(node)
    }

    /// Runs `redis-cli` against this node; its output.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        cli_at(self.port, args)
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the process: a node that is
    /// there but does not answer, like one behind a stalled network.
    pub fn freeze(&self, frozen: bool) {
        if let Some(child) = &self.child {
            let signal = if frozen { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    /// Kills the process at once (`SIGKILL`: no save, no goodbye).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisNode {
    fn drop(&mut self) {
        self.kill();
    }
}

fn cli_at(port: u16, args: &[&str]) -> Result<String, String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--raw"])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run redis-cli: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `check` (blocking) until it is true, at most [`SETTLE_TIMEOUT`].
fn settle(what: &str, mut check: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while !check() {
        if Instant::now() > deadline {
            return Err(format!("not within {SETTLE_TIMEOUT:?}: {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// A field of `INFO` output (`name:value` lines).
pub fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

// ---------------------------------------------------------------- Sentinel

/// The name of the master the sentinels watch.
pub const SERVICE: &str = "mymaster";

/// A master, two replicas and three sentinels.
#[derive(Debug)]
pub struct RedisSentinel {
    /// The data nodes; `servers[0]` is the first master.
    pub servers: Vec<RedisNode>,
    /// The sentinels.
    pub sentinels: Vec<RedisNode>,
}

impl RedisSentinel {
    /// Starts the group and waits until every sentinel knows the master, both
    /// replicas and the two other sentinels (so that a failover can be voted).
    pub async fn start() -> Result<Self, String> {
        tokio::task::spawn_blocking(Self::start_blocking)
            .await
            .map_err(|e| e.to_string())?
    }

    fn start_blocking() -> Result<Self, String> {
        let master = RedisNode::spawn("", false)?;
        let mut servers = vec![master];
        for _ in 0..2 {
            let replica =
                RedisNode::spawn(&format!("replicaof 127.0.0.1 {}", servers[0].port), false)?;
            servers.push(replica);
        }
        let monitor = format!(
            "sentinel monitor {SERVICE} 127.0.0.1 {} 2\n\
             sentinel down-after-milliseconds {SERVICE} 1000\n\
             sentinel failover-timeout {SERVICE} 5000\n\
             sentinel parallel-syncs {SERVICE} 2\n",
            servers[0].port
        );
        let sentinels = (0..3)
            .map(|_| RedisNode::spawn(&monitor, true))
            .collect::<Result<Vec<_>, _>>()?;
        let group = Self { servers, sentinels };
        settle("the replicas are in sync", || {
            group.servers[1..].iter().all(|r| {
                r.cli(&["INFO", "replication"])
                    .ok()
                    .and_then(|i| info_field(&i, "master_link_status"))
                    .as_deref()
                    == Some("up")
            })
        })?;
        settle(
            "every sentinel knows 2 replicas and 2 other sentinels",
            || {
                group.sentinels.iter().all(|s| {
                    let master = s.cli(&["SENTINEL", "MASTER", SERVICE]).unwrap_or_default();
                    let field = |name: &str| {
                        let lines: Vec<&str> = master.lines().collect();
                        lines
                            .iter()
                            .position(|l| *l == name)
                            .and_then(|i| lines.get(i + 1))
                            .and_then(|v| v.parse::<u32>().ok())
                    };
                    field("num-slaves") == Some(2) && field("num-other-sentinels") == Some(2)
                })
            },
        )?;
        Ok(group)
    }

    /// `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/mymaster`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{SERVICE}", hosts.join(","))
    }

    /// The port of the master as the first answering sentinel says.
    pub fn master_port(&self) -> Option<u16> {
        self.sentinels
            .iter()
            .filter(|s| s.is_running())
            .find_map(|s| {
                let out = s
                    .cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE])
                    .ok()?;
                out.lines().nth(1)?.trim().parse().ok()
            })
    }

    /// The running server that is the master now.
    pub fn master(&mut self) -> Option<&mut RedisNode> {
        let port = self.master_port()?;
        self.servers.iter_mut().find(|s| s.port == port)
    }

    /// Kills the master (`SIGKILL`); its port.
    pub fn kill_master(&mut self) -> Result<u16, String> {
        let master = self.master().ok_or("no master known")?;
        let port = master.port;
        master.kill();
        Ok(port)
    }
}

// ---------------------------------------------------------------- Cluster

/// Three masters with one replica each.
#[derive(Debug)]
pub struct RedisCluster {
    /// Every node.
    pub nodes: Vec<RedisNode>,
}

impl RedisCluster {
    /// Starts six nodes, makes them a cluster and waits until every node
    /// says `cluster_state:ok` and every replica is in sync.
    pub async fn start() -> Result<Self, String> {
        tokio::task::spawn_blocking(Self::start_blocking)
            .await
            .map_err(|e| e.to_string())?
    }

    fn start_blocking() -> Result<Self, String> {
        let config = "cluster-enabled yes\ncluster-config-file nodes.conf\n\
                      cluster-node-timeout 1000\ncluster-require-full-coverage no\n";
        let nodes = (0..6)
            .map(|_| RedisNode::spawn(config, false))
            .collect::<Result<Vec<_>, _>>()?;
        let mut args = vec!["--cluster".to_owned(), "create".to_owned()];
        args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        args.extend(["--cluster-replicas", "1", "--cluster-yes"].map(str::to_owned));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        nodes[0].cli(&refs)?;
        let cluster = Self { nodes };
        cluster.wait_healthy()?;
        Ok(cluster)
    }

    /// Waits until every running node says `cluster_state:ok`, three masters
    /// serve the slots and every replica of a running master is in sync.
    pub fn wait_healthy(&self) -> Result<(), String> {
        settle("the cluster is ok on every node", || {
            self.running().all(|n| {
                n.cli(&["CLUSTER", "INFO"])
                    .ok()
                    .and_then(|i| info_field(&i, "cluster_state"))
                    .as_deref()
                    == Some("ok")
            })
        })?;
        settle("every replica is in sync", || {
            self.running().all(|n| {
                let info = n.cli(&["INFO", "replication"]).unwrap_or_default();
                info_field(&info, "role").as_deref() == Some("master")
                    || info_field(&info, "master_link_status").as_deref() == Some("up")
            })
        })
    }

    fn running(&self) -> impl Iterator<Item = &RedisNode> {
        self.nodes.iter().filter(|n| n.is_running())
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .take(3)
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The ports of the masters that have a connected replica, as a running
    /// node's `CLUSTER NODES` says.
    pub fn masters_with_replica(&self) -> Vec<u16> {
        let Some(out) = self
            .running()
            .find_map(|n| n.cli(&["CLUSTER", "NODES"]).ok())
        else {
            return Vec::new();
        };
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        let port_of = |addr: &str| -> Option<u16> { addr.split(['@', ':']).nth(1)?.parse().ok() };
        lines
            .iter()
            .filter(|f| f.get(2).is_some_and(|flags| flags.contains("master")))
            .filter(|f| !f.get(2).is_some_and(|flags| flags.contains("fail")))
            .filter(|m| {
                lines.iter().any(|r| {
                    r.get(3) == m.first() && r.get(2).is_some_and(|fl| fl.contains("slave"))
                })
            })
            .filter_map(|m| port_of(m.get(1)?))
            .collect()
    }

    /// The node on `port`.
    pub fn node(&mut self, port: u16) -> Option<&mut RedisNode> {
        self.nodes.iter_mut().find(|n| n.port == port)
    }

    /// Every key of the cluster (`--scan` on each running master).
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for n in self.running() {
            let info = n.cli(&["INFO", "replication"]).unwrap_or_default();
            if info_field(&info, "role").as_deref() != Some("master") {
                continue;
            }
            let out = n.cli(&["--scan"]).unwrap_or_default();
            keys.extend(out.lines().filter(|k| !k.is_empty()).map(str::to_owned));
        }
        keys
    }

    /// `redis-cli -c` (following redirections) on a running node.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let node = self.running().next().ok_or("no node is running")?;
        let mut all = vec!["-c"];
        all.extend_from_slice(args);
        node.cli(&all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port held by another process's outgoing connection (what a
    /// parallel test's client can do to a port picked as free) makes
    /// `redis-server` exit at start: that is reported as such at once, so
    /// that [`RedisNode::spawn`] tries another port instead of failing
    /// after waiting for a `PING` that never comes.
    #[test]
    fn a_node_whose_port_is_taken_is_reported_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let outgoing = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let port = outgoing.local_addr().unwrap().port();
        let err = RedisNode::spawn_on(port, "", false).unwrap_err();
        assert!(err.contains("exited at start"), "{err}");
        let node = RedisNode::spawn("", false).expect("another port works");
        assert_eq!(node.cli(&["PING"]).unwrap().trim(), "PONG");
    }
}

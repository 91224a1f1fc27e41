//! A real `redis-server` for the tests, on a free loopback port, with its
//! own data directory; killed when dropped.
//!
//! It saves nothing by itself (`--save ""`, no AOF); [`RedisServer::stop`]
//! saves explicitly (`SHUTDOWN SAVE`) so that [`RedisServer::restart`] on the
//! same port comes back with the same data, as a maintained Redis would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long start-up waits for `PING` to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running (or stopped) `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    password: Option<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind loopback")
        .port()
}

impl RedisServer {
    /// Starts a server on a free port.
    pub async fn start() -> Result<Self, String> {
        Self::start_with(None).await
    }

    /// Starts a server on a free port that requires `password` (`requirepass`).
    pub async fn start_with(password: Option<&str>) -> Result<Self, String> {
        let mut last = String::new();
        // The port may be taken between picking and binding: try a few.
        for _ in 0..3 {
            let mut server = Self::stopped_on(free_port(), password)?;
            match server.restart().await {
                Ok(()) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A server for `port` that is not running yet ([`RedisServer::restart`] starts it).
    pub fn stopped_on(port: u16, password: Option<&str>) -> Result<Self, String> {
        Ok(Self {
            port,
            password: password.map(str::to_owned),
            dir: tempfile::tempdir().map_err(|e| e.to_string())?,
            child: None,
        })
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory (where `dump.rdb` is written).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `redis://127.0.0.1:PORT` (with the password, if any).
    pub fn url(&self) -> String {
        match &self.password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Starts the server (again) on its port with its data directory and
    /// waits until it answers `PING`.
    pub async fn restart(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Err("already running".into());
        }
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--rdbcompression", "no"])
            .args(["--dbfilename", "dump.rdb"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(pw) = &self.password {
            cmd.args(["--requirepass", pw]);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.ping().await {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("redis-server exited: {status}"));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "redis-server did not answer PING in {READY_TIMEOUT:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the server answers `PING` (authenticating first if needed).
    pub async fn ping(&self) -> bool {
        let probe = async {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .ok()?;
            let mut req = String::new();
            if let Some(pw) = &self.password {
                req.push_str(&format!("AUTH {pw}\r\n"));
            }
            req.push_str("PING\r\n");
            s.write_all(req.as_bytes()).await.ok()?;
            let mut seen = Vec::new();
            let mut buf = [0u8; 64];
            while !String::from_utf8_lossy(&seen).contains("PONG") {
                let n = s.read(&mut buf).await.ok()?;
                if n == 0 {
                    return None;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            Some(())
        };
        matches!(
            tokio::time::timeout(Duration::from_millis(500), probe).await,
            Ok(Some(()))
        )
    }

    /// Runs `redis-cli` against the server and returns its raw output.
    pub fn cli(&self, args: &[&str]) -> Result<Vec<u8>, String> {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"]);
        if let Some(pw) = &self.password {
            cmd.env("REDISCLI_AUTH", pw);
        }
        let out = cmd
            .args(args)
            .output()
            .map_err(|e| format!("cannot run redis-cli: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(out.stdout)
    }

    /// Every key and its raw value (strings: `GET`; sorted sets: members with scores).
    pub fn contents(&self) -> Result<Vec<(String, Vec<u8>)>, String> {
        let keys = self.cli(&["--scan"])?;
        let mut all = Vec::new();
        for key in String::from_utf8_lossy(&keys)
            .lines()
            .filter(|k| !k.is_empty())
        {
            let kind = String::from_utf8_lossy(&self.cli(&["TYPE", key])?)
                .trim()
                .to_owned();
            let value = match kind.as_str() {
                "string" => self.cli(&["GET", key])?,
                "zset" => self.cli(&["ZRANGE", key, "0", "-1", "WITHSCORES"])?,
                other => format!("<{other}>").into_bytes(),
            };
            all.push((key.to_owned(), value));
        }
        Ok(all)
    }

    /// The path of the last saved snapshot.
    pub fn snapshot_path(&self) -> PathBuf {
        self.dir.path().join("dump.rdb")
    }

    /// Saves and shuts the server down (`SHUTDOWN SAVE`), waiting for it to exit.
    pub async fn stop(&mut self) -> Result<(), String> {
        // The server closes the connection as it exits; the CLI's error is expected.
        let _ = self.cli(&["SHUTDOWN", "SAVE"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(child) = self.child.as_mut() {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err("redis-server did not stop in 10 s; killed".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Kills the server at once (data since the last save is lost).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

//! A real PostgreSQL server for the tests (Debian's `postgresql` package), on
//! a free loopback port with its own data directory; killed when dropped.
//!
//! `initdb` runs once per machine into a template under `target/` (about a
//! second); each server starts on a copy of it (a fraction of a second).
//! PostgreSQL refuses to run as root: when the tests run as root (CI
//! containers) the server and `initdb` run as the `postgres` user that
//! Debian's package creates, through `setuid` in the spawned process (no
//! wrapper process that could outlive a kill).
//!
//! The role `keyway` (password [`PASSWORD`], `scram-sha-256` over TCP) owns
//! the database `keyway`. The server runs with `fsync=off`: a crash of the
//! server process loses nothing (the OS keeps its writes), only a crash of
//! the machine would, which no test does.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The password of the `keyway` role.
pub const PASSWORD: &str = "keyway-pg-secret";
/// How long start-up waits for the server to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running (or stopped) PostgreSQL server.
#[derive(Debug)]
pub struct PgServer {
    port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Extra `-c name=value` settings of every start (TLS).
    settings: Vec<String>,
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("PostgreSQL is not installed (apt-get install postgresql): {e}"))?
        .filter_map(Result::ok)
        .filter_map(|d| {
            let v = d.file_name().to_str()?.parse().ok()?;
            Some((v, d.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, p)| p)
        .ok_or_else(|| "no /usr/lib/postgresql/<version>/bin".into())
}

/// The uid and gid to run PostgreSQL as: the `postgres` user when this
/// process is root, else none (this user).
fn run_as() -> Result<Option<(u32, u32)>, String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("id -u: {e}"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .ok_or("running as root needs the `postgres` user (apt-get install postgresql)")?;
    let fields: Vec<&str> = line.split(':').collect();
    let id = |i: usize| fields.get(i).and_then(|f| f.parse().ok());
    match (id(2), id(3)) {
        (Some(uid), Some(gid)) => Ok(Some((uid, gid))),
        _ => Err("cannot read the postgres user's ids".into()),
    }
}

fn command(program: &Path) -> Result<Command, String> {
    let mut cmd = Command::new(program);
    if let Some((uid, gid)) = run_as()? {
        cmd.uid(uid).gid(gid);
    }
    cmd.env("LC_ALL", "C.UTF-8");
    Ok(cmd)
}

/// Gives `path` to the user PostgreSQL runs as.
fn hand_over(path: &Path) -> Result<(), String> {
    if run_as()?.is_some() {
        let done = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !done.success() {
            return Err(format!("chown of {} failed", path.display()));
        }
    }
    Ok(())
}

/// The initialised data directory every server starts from (made once).
fn template(bin: &Path) -> Result<PathBuf, String> {
    let version = bin
        .parent()
        .and_then(Path::file_name)
        .and_then(|v| v.to_str())
        .unwrap_or("pg");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/keyway-test-postgres");
    let done = root.join(format!("template-{version}"));
    if done.join("PG_VERSION").exists() {
        return Ok(done);
    }
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    let work = tempfile::Builder::new()
        .prefix("initdb-")
        .tempdir_in(&root)
        .map_err(|e| e.to_string())?;
    hand_over(work.path())?;
    let data = work.path().join("data");
    let pwfile = work.path().join("pw");
    std::fs::write(&pwfile, PASSWORD).map_err(|e| e.to_string())?;
    hand_over(&pwfile)?;
    let out = command(&bin.join("initdb"))?
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "keyway",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ])
        .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // Another test binary may have made it meanwhile: either copy is good.
    if std::fs::rename(&data, &done).is_err() && !done.join("PG_VERSION").exists() {
        return Err("cannot keep the initdb template".into());
    }
    Ok(done)
}

impl PgServer {
    /// Starts a server on a free port with an empty database `keyway`.
    pub async fn start() -> Result<Self, String> {
        let mut last = String::new();
        // The port may be taken between picking and binding: try a few.
        for _ in 0..3 {
            match Self::start_on(crate::redis::free_port()).await {
                Ok(server) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Starts a server on `port` with an empty database `keyway`.
    pub async fn start_on(port: u16) -> Result<Self, String> {
        Self::start_with(port, None).await
    }

    /// Starts a server on a free port that also accepts TLS (`ssl=on`) with
    /// `certificate` (issued by a [`crate::tls::TestCa`]); plain TCP is
    /// still accepted, so a test can tell which one a client used from
    /// `pg_stat_ssl`.
    pub async fn start_with_tls(certificate: &crate::tls::TestCertificate) -> Result<Self, String> {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::start_with(crate::redis::free_port(), Some(certificate)).await {
                Ok(server) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn start_with(
        port: u16,
        tls: Option<&crate::tls::TestCertificate>,
    ) -> Result<Self, String> {
        let bin = bin_dir()?;
        let template = template(&bin)?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let copied = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(dir.path().join("data"))
            .status()
            .map_err(|e| format!("cp: {e}"))?;
        if !copied.success() {
            return Err("cannot copy the PostgreSQL template".into());
        }
        let mut settings = Vec::new();
        if let Some(certificate) = tls {
            let cert = dir.path().join("server.crt");
            let key = dir.path().join("server.key");
            std::fs::write(&cert, certificate.cert_pem()).map_err(|e| e.to_string())?;
            std::fs::write(&key, certificate.key_pem()).map_err(|e| e.to_string())?;
            // PostgreSQL refuses a key that others can read.
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| e.to_string())?;
            settings.push("ssl=on".to_owned());
            settings.push(format!("ssl_cert_file={}", cert.display()));
            settings.push(format!("ssl_key_file={}", key.display()));
        }
        hand_over(dir.path())?;
        let mut server = Self {
            port,
            bin,
            dir,
            child: None,
            settings,
        };
        server.restart().await?;
        server.psql("CREATE DATABASE keyway")?;
        Ok(server)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://keyway:PASSWORD@127.0.0.1:PORT/keyway`.
    pub fn url(&self) -> String {
        self.url_for("keyway")
    }

    /// The URL of another database of this server.
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://keyway:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Starts the server (again) on its port and data and waits until it
    /// accepts connections.
    pub async fn restart(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Err("already running".into());
        }
        let mut postgres = command(&self.bin.join("postgres"))?;
        for setting in &self.settings {
            postgres.arg("-c").arg(setting);
        }
        let child = postgres
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=200", "-c", "shared_buffers=32MB"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run postgres: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.psql("SELECT 1").is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("postgres exited: {status}"));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!("postgres did not start in {READY_TIMEOUT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs SQL with `psql` as `keyway` on database `keyway` (`postgres`
    /// before it exists); returns its unaligned output.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.psql_on("keyway", sql)
            .or_else(|_| self.psql_on("postgres", sql))
    }

    /// Runs SQL with `psql` on `database`.
    pub fn psql_on(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-U",
                "keyway",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
            ])
            .args(["-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "2")
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Stops the server as a crash would (`SIGQUIT`: immediate shutdown, no
    /// checkpoint; the next start recovers from the WAL), waiting for it.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server at once.
    pub fn kill(&mut self) {
        self.crash();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.kill();
    }
}

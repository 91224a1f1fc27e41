//! `trunk serve` of the demo SPA, with the repository's `Trunk.toml` (its
//! `[[proxy]]` of `/bff/` to the BFF), on free ports: the development loop of
//! docs/development.md, as a fixture.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The BFF address `Trunk.toml`'s `[[proxy]]` names (the dev loop's
/// `KEYWAY_LISTEN=127.0.0.1:3000`).
pub const CONFIGURED_BACKEND: &str = "http://127.0.0.1:3000/bff/";

/// A running `trunk serve` (killed on drop).
#[derive(Debug)]
pub struct TrunkServe {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub origin: String,
    child: Child,
    dir: tempfile::TempDir,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl TrunkServe {
    /// Starts `trunk serve --release --offline` with a copy of `Trunk.toml`
    /// in which only three things differ: the target and the dist folder are
    /// absolute (the dist a temporary one, so the `dist/` other tests serve
    /// is not touched) and the `[[proxy]]` backend points at `bff_origin`
    /// instead of port 3000. Everything else (`no_redirect`, the tools'
    /// versions, ...) is the file's own. Waits until it serves the SPA (it
    /// may first have to build it: bounded at 10 minutes).
    pub async fn start(bff_origin: &str) -> Result<TrunkServe, String> {
        let root = repo();
        let config = std::fs::read_to_string(root.join("Trunk.toml"))
            .map_err(|e| format!("reading Trunk.toml: {e}"))?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let backend = format!("{}/bff/", bff_origin.trim_end_matches('/'));
        let mut replaced = 0;
        let edited: Vec<String> = config
            .lines()
            .map(|line| {
                let trimmed = line.trim();
                if let Some(target) = trimmed.strip_prefix("target = ") {
                    replaced += 1;
                    let target = target.trim_matches('"');
                    format!("target = {:?}", root.join(target).display().to_string())
                } else if trimmed.starts_with("dist = ") {
                    replaced += 1;
                    format!("dist = {:?}", dir.path().join("dist").display().to_string())
                } else if trimmed == format!("backend = \"{CONFIGURED_BACKEND}\"") {
                    replaced += 1;
                    format!("backend = \"{backend}\"")
                } else {
                    line.to_owned()
                }
            })
            .collect();
        if replaced != 3 {
            return Err(format!(
                "Trunk.toml no longer has one `target`, one `dist` and a [[proxy]] with \
                 backend = \"{CONFIGURED_BACKEND}\" (docs/development.md): update this fixture"
            ));
        }
        let config_path = dir.path().join("Trunk.toml");
        std::fs::write(&config_path, edited.join("\n")).map_err(|e| e.to_string())?;
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("trunk.log")).map_err(|e| e.to_string())?;
        let child = Command::new("trunk")
            .args([
                "serve",
                "--release",
                "--offline",
                "--no-autoreload",
                "--config",
            ])
            .arg(&config_path)
            .args(["--port", &port.to_string()])
            // Watch nothing of the repository: no rebuild mid-test.
            .current_dir(dir.path())
            // Its own process group, so that the cargo build it may run
            // ends with it.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start trunk (scripts/setup installs it): {e}"))?;
        let mut serve = TrunkServe {
            origin: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        };
        let client = crate::provider::TestProvider::browser();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = serve.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("trunk serve ended ({status}): {}", serve.log()));
            }
            if let Ok(r) = client.get(format!("{}/", serve.origin)).send().await
                && r.status() == 200
                && r.text().await.is_ok_and(|t| t.contains("keyway-frontend"))
            {
                return Ok(serve);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(format!(
            "trunk serve did not serve the SPA in time: {}",
            serve.log()
        ))
    }

    /// What trunk printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("trunk.log")).unwrap_or_default()
    }
}

impl Drop for TrunkServe {
    fn drop(&mut self) {
        // The group this fixture made for trunk (and its cargo, if any).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

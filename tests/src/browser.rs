//! A real headless Chromium, driven through Debian's chromedriver started on
//! a free loopback port, and the built SPA.
//!
//! On failure a test saves a screenshot and the page HTML under
//! `artifacts/` at the workspace root (see [`Browser::save_artifacts`]).

use fantoccini::{Client, ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a wait for an element or a URL may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// The release SPA (`dist/`) the tests serve: `KEYWAY_TEST_DIST`, else the
/// workspace's `dist/`. A missing build is an error, not a skipped test.
pub fn dist_dir() -> Result<PathBuf, String> {
    let dir = std::env::var_os("KEYWAY_TEST_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist"));
    if dir.join("index.html").is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "the SPA is not built at {}: run `trunk build --release --offline` (scripts/test does)",
            dir.display()
        ))
    }
}

/// A chromedriver process and a Chromium session in it.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").finish_non_exhaustive()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    pub async fn start() -> Result<Browser, String> {
        let port = free_port();
        let driver =
            Command::new(std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()))
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| {
                    format!("cannot start chromedriver (apt-get install chromium-driver): {e}")
                })?;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1200,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last = String::new();
        // chromedriver needs a moment to listen: retry the session creation (bounded).
        for _ in 0..100 {
            match ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Ok(Browser {
                        client,
                        driver,
                        _profile: profile,
                    });
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut driver = driver;
        let _ = driver.kill();
        let _ = driver.wait();
        Err(format!("cannot open a Chromium session: {last}"))
    }

    /// Waits for an element by CSS selector.
    pub async fn wait_css(&self, css: &str) -> Result<fantoccini::elements::Element, String> {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .map_err(|e| format!("waiting for `{css}`: {e}"))
    }

    /// Waits until an element's text contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            if let Ok(el) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = el.text().await
            {
                if text.contains(needle) {
                    return Ok(text);
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "`{css}` never contained {needle:?} (last text: {last:?})"
        ))
    }

    /// Waits until the URL's path is `path`.
    pub async fn wait_path(&self, path: &str) -> Result<url::Url, String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut last = None;
        while tokio::time::Instant::now() < deadline {
            if let Ok(url) = self.client.current_url().await {
                if url.path() == path {
                    return Ok(url);
                }
                last = Some(url);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("never reached {path} (at {last:?})"))
    }

    /// Signs in at the test provider's pages: login form, then consent.
    pub async fn provider_sign_in(
        &self,
        login: &str,
        password: &str,
        allow: bool,
    ) -> Result<(), String> {
        self.wait_css("#login")
            .await?
            .send_keys(login)
            .await
            .map_err(|e| e.to_string())?;
        self.wait_css("#password")
            .await?
            .send_keys(password)
            .await
            .map_err(|e| e.to_string())?;
        self.wait_css("#submit")
            .await?
            .click()
            .await
            .map_err(|e| e.to_string())?;
        let button = if allow { "#allow" } else { "#deny" };
        self.wait_css(button)
            .await?
            .click()
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Runs JavaScript and returns its JSON result.
    pub async fn js(&self, script: &str) -> Result<serde_json::Value, String> {
        self.client
            .execute(script, vec![])
            .await
            .map_err(|e| e.to_string())
    }

    /// Saves a screenshot and the page HTML as `artifacts/<name>.png|.html`.
    pub async fn save_artifacts(&self, name: &str) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts");
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(dir.join(format!("{name}.png")), png);
        }
        if let Ok(html) = self.client.source().await {
            let _ = std::fs::write(dir.join(format!("{name}.html")), html);
        }
    }

    /// With `KEYWAY_SCREENSHOTS=1`, saves a screenshot and the HTML as
    /// `artifacts/<name>.png|.html` (for people to look at the pages).
    pub async fn snapshot(&self, name: &str) {
        if std::env::var_os("KEYWAY_SCREENSHOTS").is_some() {
            self.save_artifacts(name).await;
        }
    }

    /// Closes the session and stops chromedriver (call on every path).
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Runs a browser test body; on failure saves artifacts; always closes the browser.
pub async fn run<F, Fut>(name: &str, body: F) -> Result<(), String>
where
    F: FnOnce(std::sync::Arc<Browser>) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let browser = std::sync::Arc::new(Browser::start().await?);
    let result = body(browser.clone()).await;
    if result.is_err() {
        browser.save_artifacts(name).await;
    }
    match std::sync::Arc::try_unwrap(browser) {
        Ok(b) => b.close().await,
        Err(_) => return Err("the test kept a handle to the browser".into()),
    }
    result
}

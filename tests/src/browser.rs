//! A real headless Chromium, driven through Debian's chromedriver started on
//! a free loopback port, and the built SPA.
//!
//! On failure a test saves a screenshot and the page HTML under
//! `artifacts/` at the workspace root (see [`Browser::save_artifacts`]).
//!
//! Also: the browser's console log ([`Browser::console_errors`]), the
//! accessibility check with axe-core ([`Browser::axe_violations`]), the
//! focused element ([`Browser::focused`]).

use fantoccini::wd::WebDriverCompatibleCommand;
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
        // Keep the console for `console_errors`.
        caps.insert(
            "goog:loggingPrefs".into(),
            serde_json::json!({ "browser": "ALL" }),
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

    /// Polls a script returning a boolean until it returns `true` (bounded by [`WAIT`]).
    pub async fn wait_js(&self, script: &str, what: &str) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut last = serde_json::Value::Null;
        while tokio::time::Instant::now() < deadline {
            match self.js(script).await {
                Ok(serde_json::Value::Bool(true)) => return Ok(()),
                Ok(other) => last = other,
                Err(e) => last = serde_json::Value::String(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("never true: {what} (last: {last})"))
    }

    /// The focused element as `TAG: text` (e.g. `H1: Your profile`).
    pub async fn focused(&self) -> Result<String, String> {
        let v = self
            .js("const e = document.activeElement; return e ? e.tagName + ': ' + e.textContent.trim() : '';")
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Takes the console messages logged since the last call (Chromium's
    /// log, `goog:loggingPrefs`), and answers the errors (`SEVERE`) that
    /// came from pages or requests of `origin`, leaving out the one the
    /// contract expects: `GET /bff/user` answering 401 to an anonymous
    /// visitor.
    pub async fn console_errors(&self, origin: &str) -> Result<Vec<String>, String> {
        let log = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .map_err(|e| format!("reading the console log: {e}"))?;
        let origin = origin.trim_end_matches('/');
        Ok(log
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .filter_map(|entry| entry["message"].as_str())
            .filter(|m| m.starts_with(origin))
            .filter(|m| !(m.starts_with(&format!("{origin}/bff/user ")) && m.contains(" 401 ")))
            .map(str::to_owned)
            .collect())
    }

    /// Runs axe-core (from `tests/a11y/node_modules`, installed by
    /// `scripts/setup`) on the current page; answers every violation as
    /// `impact id: help (targets)`, and separately those of impact
    /// `serious` or `critical`.
    pub async fn axe_violations(&self) -> Result<(Vec<String>, Vec<String>), String> {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("a11y/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read {} (scripts/setup installs it): {e}",
                path.display()
            )
        })?;
        // Chromium runs WebDriver scripts outside the page's CSP.
        self.js(&format!("{source}\n;return typeof window.axe;"))
            .await?;
        let out = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                   window.axe.run(document, { resultTypes: ['violations'] })
                     .then(r => done(r.violations.map(v => ({
                        id: v.id, impact: v.impact, help: v.help,
                        targets: v.nodes.map(n => n.target.join(' ')) }))))
                     .catch(e => done('axe failed: ' + e));"#,
                vec![],
            )
            .await
            .map_err(|e| e.to_string())?;
        let list = out
            .as_array()
            .ok_or_else(|| format!("axe did not run: {out}"))?;
        let mut all = Vec::new();
        let mut bad = Vec::new();
        for v in list {
            let impact = v["impact"].as_str().unwrap_or("unknown");
            let line = format!(
                "{impact} {}: {} ({})",
                v["id"].as_str().unwrap_or("?"),
                v["help"].as_str().unwrap_or(""),
                v["targets"]
            );
            if impact == "serious" || impact == "critical" {
                bad.push(line.clone());
            }
            all.push(line);
        }
        Ok((all, bad))
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

/// Chromium's console log since the last read (`POST /session/{id}/se/log`,
/// a ChromeDriver extension).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
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

/// Helpers of the login-journey browser tests (`tests/tests/browser_journeys.rs`).
impl Browser {
    /// Clicks the element `css` (waiting for it).
    pub async fn click(&self, css: &str) -> Result<(), String> {
        self.wait_css(css)
            .await?
            .click()
            .await
            .map_err(|e| format!("clicking `{css}`: {e}"))
    }

    /// Types `text` into the element `css` (waiting for it).
    pub async fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        self.wait_css(css)
            .await?
            .send_keys(text)
            .await
            .map_err(|e| format!("typing into `{css}`: {e}"))
    }

    /// Waits until the window's URL starts with `prefix` (e.g. the provider's issuer).
    pub async fn wait_url_prefix(&self, prefix: &str) -> Result<url::Url, String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut last = None;
        while tokio::time::Instant::now() < deadline {
            if let Ok(url) = self.client.current_url().await {
                if url.as_str().starts_with(prefix) {
                    return Ok(url);
                }
                last = Some(url);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("never at {prefix}… (at {last:?})"))
    }

    /// Whether an element matches `css` now (no waiting).
    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// Runs axe-core on the page, printing every violation; fails on a
    /// serious or critical one.
    pub async fn assert_accessible(&self, page: &str) -> Result<(), String> {
        let (all, bad) = self.axe_violations().await?;
        for v in &all {
            eprintln!("axe on {page}: {v}");
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(format!("accessibility violations on {page}: {bad:#?}"))
        }
    }
}

/// The test provider, and a BFF serving the release SPA (`dist/`) as the
/// provider's only client, with the display name "Test provider" and the
/// `[[apis]]` TOML that `apis` writes for the provider's issuer.
///
/// # Panics
/// When the SPA is not built or the provider or the BFF does not start.
pub async fn spa_stack(
    apis: impl FnOnce(&str) -> String,
) -> (crate::provider::TestProvider, crate::bff::TestBff) {
    use crate::bff::{TestBff, client_for, env_for, reserve};
    use crate::provider::{ProviderConfig, TestProvider};
    let dist = dist_dir().expect("the release SPA");
    let reserved = reserve().await;
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&reserved.origin)],
        ..ProviderConfig::default()
    })
    .await
    .expect("provider starts");
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_STATIC_DIR".into(), dist.display().to_string());
    env.insert("KEYWAY_PROVIDER_NAME".into(), "Test provider".into());
    let bff = TestBff::start_with_file(reserved, &apis(&provider.issuer), &env)
        .await
        .expect("BFF starts");
    (provider, bff)
}

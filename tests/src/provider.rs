//! A real OpenID provider for the tests: panva's `oidc-provider` run by
//! `node tests/provider/server.mjs` on a free loopback port, plus helpers that
//! drive its login pages as a person would and read its test-only endpoints.
//!
//! The Node dependencies are not installed from Rust: run
//! `npm ci --prefix tests/provider` once.
//!
//! It can serve https with a certificate from a run-time test CA
//! ([`ProviderConfig::tls`], [`ProviderTls::issue`]), rotate every refresh
//! token ([`ProviderConfig::rotate_refresh_tokens`]) and hold its token
//! endpoint's answers ([`TestProvider::set_token_delay`]) for refresh races.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::tls::{TestCa, TestCertificate};

/// How long `TestProvider::start` waits for the `READY` line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many provider processes `TestProvider::start` tries when none prints
/// its `READY` line in time.
const START_ATTEMPTS: usize = 3;
/// How many times, and how often, discovery is polled after `READY`.
const DISCOVERY_ATTEMPTS: u32 = 50;
const DISCOVERY_POLL: Duration = Duration::from_millis(100);
/// Upper bound on the provider pages `sign_in` walks through.
const MAX_SIGN_IN_STEPS: usize = 20;
/// How much of the child's stderr is kept for error messages.
const STDERR_KEEP: usize = 64 * 1024;
/// RFC 7636 appendix B: the PKCE verifier [`TestProvider::sign_in_tokens`]
/// uses, and its S256 challenge.
const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// One OAuth client registered at the test provider. It is confidential
/// (`client_secret_basic`), may use the authorization_code, refresh_token and
/// client_credentials grants, and may ask for `openid profile email
/// offline_access api`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientConfig {
    /// The client's `client_id`.
    pub client_id: String,
    /// The client's secret, sent with HTTP basic authentication.
    pub client_secret: String,
    /// The registered redirect URIs (exact match).
    pub redirect_uris: Vec<String>,
    /// The registered post-logout redirect URIs (RP-initiated logout).
    pub post_logout_redirect_uris: Vec<String>,
    /// Where the provider POSTs logout tokens (OIDC back-channel logout), if anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
}

impl Default for ClientConfig {
    /// The `keyway` / `keyway-secret` client of a BFF on `http://127.0.0.1:8080`.
    fn default() -> Self {
        ClientConfig {
            client_id: "keyway".to_owned(),
            client_secret: "keyway-secret".to_owned(),
            redirect_uris: vec!["http://127.0.0.1:8080/callback".to_owned()],
            post_logout_redirect_uris: vec!["http://127.0.0.1:8080/".to_owned()],
            backchannel_logout_uri: Some("http://127.0.0.1:8080/bff/backchannel-logout".to_owned()),
        }
    }
}

/// The test provider's configuration, handed to `server.mjs` as the JSON in
/// `KEYWAY_TEST_PROVIDER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderConfig {
    /// The registered clients.
    pub clients: Vec<ClientConfig>,
    /// Lifetime of access tokens (and client_credentials tokens), in seconds.
    pub access_token_ttl: u64,
    /// Lifetime of ID tokens, in seconds.
    pub id_token_ttl: u64,
    /// Lifetime of refresh tokens, in seconds.
    pub refresh_token_ttl: u64,
    /// Whether authorization requests must be pushed first (PAR, RFC 9126).
    pub require_par: bool,
    /// Whether every refresh token is rotated on use (oidc-provider's
    /// `rotateRefreshToken: true`): a refresh answers a new refresh token and
    /// consumes the old one, whose reuse then fails with `invalid_grant`
    /// and revokes the whole grant (reuse detection). `false` keeps
    /// oidc-provider's default policy, which for this confidential client
    /// rotates only once 70 % of the refresh token's lifetime has passed.
    pub rotate_refresh_tokens: bool,
    /// Serve https with this certificate instead of plain http (the issuer is
    /// then `https://127.0.0.1:<port>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ProviderTls>,
    /// More clients, as oidc-provider client metadata (`client_id`,
    /// `redirect_uris`, `token_endpoint_auth_method`, `jwks_uri`,
    /// `dpop_bound_access_tokens`, `require_pushed_authorization_requests`,
    /// `client_secret` when it has one...): `private_key_jwt` and DPoP
    /// clients ([`crate::fapi`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_clients: Vec<serde_json::Value>,
    /// oidc-provider's FAPI 2.0 Security Profile mode (`features.fapi`,
    /// profile `2.0`): PKCE, `private_key_jwt` assertions whose `aud` is the
    /// issuer, `redirect_uri` always required.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fapi2: bool,
    /// Every DPoP proof must carry a nonce of the provider's
    /// (`features.dPoP.requireNonce`): a proof without one is answered
    /// `use_dpop_nonce` with a `DPoP-Nonce` header.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dpop_nonce: bool,
    /// Pushed authorization requests off: discovery has no PAR endpoint.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disable_par: bool,
}

/// The test provider's TLS setting: a server certificate and key (PEM files)
/// for `127.0.0.1`, and the PEM of the CA that issued it, which the fixture's
/// own HTTP clients trust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderTls {
    /// The server certificate's PEM file (read by `server.mjs` at start).
    pub cert_path: PathBuf,
    /// The server key's PEM file (read by `server.mjs` at start).
    pub key_path: PathBuf,
    /// The issuing CA's certificate, PEM (not sent to `server.mjs`).
    #[serde(skip)]
    pub ca_pem: String,
    /// Keeps the files of [`ProviderTls::issue`] alive as long as this value.
    #[serde(skip)]
    keep: KeepFiles,
}

/// Holds a leaf certificate (and so its temporary files); equal to any other.
#[derive(Clone, Default)]
struct KeepFiles {
    _leaf: Option<TestCertificate>,
}

impl std::fmt::Debug for KeepFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeepFiles")
    }
}

impl PartialEq for KeepFiles {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for KeepFiles {}

impl ProviderTls {
    /// Issues a leaf certificate from `ca` for `127.0.0.1` and `localhost`
    /// and uses it; its files live as long as this value (or a clone).
    pub fn issue(ca: &TestCa) -> ProviderTls {
        let leaf = ca.leaf(&["127.0.0.1", "localhost"]);
        ProviderTls {
            cert_path: leaf.cert_path().to_owned(),
            key_path: leaf.key_path().to_owned(),
            ca_pem: ca.ca_pem().to_owned(),
            keep: KeepFiles { _leaf: Some(leaf) },
        }
    }

    /// Uses existing files: a certificate (valid for `127.0.0.1`) and key,
    /// and the PEM of the CA that issued the certificate. The files must
    /// still exist when the provider starts.
    pub fn from_files(cert_path: PathBuf, key_path: PathBuf, ca_pem: String) -> ProviderTls {
        ProviderTls {
            cert_path,
            key_path,
            ca_pem,
            keep: KeepFiles { _leaf: None },
        }
    }
}

/// Where [`TestProvider::set_token_delay_at`] holds a token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenDelay {
    /// Before the request is handled (nothing has happened yet).
    BeforeHandling,
    /// After it was handled, before the answer is sent (a rotated refresh
    /// token is already consumed while the client still waits).
    BeforeAnswer,
}

impl Default for ProviderConfig {
    /// One default client ([`ClientConfig::default`]), one-hour access and ID
    /// tokens, one-day refresh tokens, PAR allowed but not required.
    fn default() -> Self {
        ProviderConfig {
            clients: vec![ClientConfig::default()],
            access_token_ttl: 3600,
            id_token_ttl: 3600,
            refresh_token_ttl: 86400,
            require_par: false,
            rotate_refresh_tokens: false,
            tls: None,
            extra_clients: Vec::new(),
            fapi2: false,
            dpop_nonce: false,
            disable_par: false,
        }
    }
}

/// The answer to give on the provider's consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Press "Allow": the client gets a code.
    Allow,
    /// Press "Deny": the client gets `error=access_denied`.
    Deny,
}

/// A running test provider; the Node process is killed (and reaped) on drop.
pub struct TestProvider {
    /// The issuer, e.g. `http://127.0.0.1:41234` (no trailing slash), or
    /// `https://127.0.0.1:41234` with TLS.
    pub issuer: String,
    origin: url::Origin,
    ca_pem: Option<String>,
    discovery: serde_json::Value,
    http: reqwest::Client,
    child: Child,
    stderr: Arc<Mutex<String>>,
    stderr_thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TestProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestProvider")
            .field("issuer", &self.issuer)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

/// Installs the process-wide rustls crypto provider reqwest needs (idempotent).
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The directory holding `server.mjs`, `package.json` and `node_modules`.
fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("provider")
}

/// Appends to a bounded log buffer, dropping the oldest text.
fn append_bounded(buffer: &Mutex<String>, line: &str) {
    let mut buffer = buffer.lock().unwrap_or_else(|e| e.into_inner());
    buffer.push_str(line);
    buffer.push('\n');
    if buffer.len() > STDERR_KEEP {
        let mut cut = buffer.len() - STDERR_KEEP;
        while !buffer.is_char_boundary(cut) {
            cut += 1;
        }
        buffer.drain(..cut);
    }
}

impl TestProvider {
    /// Starts `node tests/provider/server.mjs` (path found from
    /// `CARGO_MANIFEST_DIR`; the `NODE` environment variable may name another
    /// node binary) on a free loopback port, waits up to 30 s (a stalled start is
    /// tried again, see below) for its
    /// `READY <issuer>` line (failing with the child's stderr if it dies),
    /// then polls `<issuer>/.well-known/openid-configuration` until it
    /// answers 200. Fails, without installing anything, when
    /// `tests/provider/node_modules` is missing.
    ///
    /// A start that produces no `READY` line in time is tried again, up to
    /// `START_ATTEMPTS` (3) processes in all (each fresh, on a fresh port):
    /// Node's start-up has been seen to stall, rarely, twice in a row in one
    /// test while other tests' providers started; every failure is reported
    /// with the stalled process's state from `/proc` (state, wait channel).
    pub async fn start(config: ProviderConfig) -> Result<TestProvider, String> {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(config.clone()).await {
                Ok(p) => return Ok(p),
                Err(e) if e.contains("no READY line") => failures.push(e),
                Err(e) => return Err(e),
            }
        }
        Err(failures.join("\n--- next attempt ---\n"))
    }

    async fn start_once(config: ProviderConfig) -> Result<TestProvider, String> {
        install_crypto_provider();
        let dir = provider_dir();
        let script = dir.join("server.mjs");
        if !dir.join("node_modules").join("oidc-provider").is_dir() {
            return Err(format!(
                "{} is missing: run `npm ci --prefix tests/provider` first",
                dir.join("node_modules").display()
            ));
        }
        let ca_pem = config.tls.as_ref().map(|tls| tls.ca_pem.clone());
        let json = serde_json::to_string(&config)
            .map_err(|e| format!("cannot serialise the provider config: {e}"))?;
        let node = std::env::var_os("NODE").unwrap_or_else(|| "node".into());

        let mut child = Command::new(&node)
            .arg(&script)
            .current_dir(&dir)
            .env("PORT", "0")
            .env("KEYWAY_TEST_PROVIDER", json)
            .env("NODE_ENV", "test")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", Path::new(&node).display()))?;

        // Drain stderr for the whole life of the child, so it never blocks on
        // a full pipe, keeping the tail for error messages.
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_thread = child.stderr.take().map(|pipe| {
            let buffer = Arc::clone(&stderr);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    match line {
                        Ok(line) => append_bounded(&buffer, &line),
                        Err(_) => break,
                    }
                }
            })
        });

        // Read the READY line on a thread, then keep draining stdout.
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<String, String>>();
        if let Some(pipe) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(pipe);
                let mut line = String::new();
                let first = match reader.read_line(&mut line) {
                    Ok(0) => Err("the provider exited before printing READY".to_owned()),
                    Ok(_) => Ok(line.trim_end().to_owned()),
                    Err(e) => Err(format!("cannot read the provider's stdout: {e}")),
                };
                let _ = ready_tx.send(first);
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
            });
        }

        let mut provider = TestProvider {
            issuer: String::new(),
            origin: Url::parse("http://127.0.0.1/")
                .expect("static URL")
                .origin(),
            ca_pem,
            discovery: serde_json::Value::Null,
            http: reqwest::Client::new(),
            child,
            stderr,
            stderr_thread,
        };

        let ready = match tokio::time::timeout(READY_TIMEOUT, ready_rx).await {
            Ok(Ok(Ok(line))) => line,
            Ok(Ok(Err(e))) => return Err(provider.fail(&e).await),
            Ok(Err(_)) => return Err(provider.fail("the provider's stdout closed").await),
            Err(_) => {
                let message = format!("no READY line within {READY_TIMEOUT:?}");
                return Err(provider.fail(&message).await);
            }
        };
        let Some(issuer) = ready.strip_prefix("READY ") else {
            let message = format!("unexpected first line from the provider: {ready:?}");
            return Err(provider.fail(&message).await);
        };
        let issuer_url = match Url::parse(issuer) {
            Ok(url) => url,
            Err(e) => {
                let message = format!("the provider announced a bad issuer {issuer:?}: {e}");
                return Err(provider.fail(&message).await);
            }
        };
        provider.issuer = issuer.to_owned();
        provider.origin = issuer_url.origin();
        provider.http = match provider.client_builder().and_then(|b| {
            b.redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())
        }) {
            Ok(client) => client,
            Err(e) => return Err(format!("cannot build an HTTP client: {e}")),
        };

        let discovery_url = format!("{}/.well-known/openid-configuration", provider.issuer);
        let mut last_error = String::from("not tried");
        for _ in 0..DISCOVERY_ATTEMPTS {
            match provider.http.get(&discovery_url).send().await {
                Ok(response) if response.status() == reqwest::StatusCode::OK => {
                    match response.json::<serde_json::Value>().await {
                        Ok(document) => {
                            provider.discovery = document;
                            return Ok(provider);
                        }
                        Err(e) => last_error = format!("bad discovery document: {e}"),
                    }
                }
                Ok(response) => last_error = format!("discovery answered {}", response.status()),
                Err(e) => last_error = format!("discovery request failed: {e}"),
            }
            if let Ok(Some(status)) = provider.child.try_wait() {
                let message = format!("the provider exited ({status}) before serving discovery");
                return Err(provider.fail(&message).await);
            }
            tokio::time::sleep(DISCOVERY_POLL).await;
        }
        let message = format!("discovery never answered 200: {last_error}");
        Err(provider.fail(&message).await)
    }

    /// Stops the child and builds an error message carrying its stderr.
    async fn fail(&mut self, message: &str) -> String {
        // Where a stalled process was, before it is killed (for the report).
        let pid = self.child.id();
        let proc_state =
            |file: &str| std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
        let state = proc_state("status")
            .lines()
            .filter(|l| l.starts_with("State:") || l.starts_with("Threads:"))
            .collect::<Vec<_>>()
            .join(", ");
        let wchan = proc_state("wchan");
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(thread) = self.stderr_thread.take() {
            // The child is gone, so its stderr reaches EOF promptly.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        format!(
            "test provider failed to start: {message} (process {pid}: {state}, wchan {wchan:?})\n--- provider stderr ---\n{}",
            self.stderr_log()
        )
    }

    /// What the provider wrote to stderr so far (its last 64 KiB).
    pub fn stderr_log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The provider's discovery document (`/.well-known/openid-configuration`).
    pub fn discovery(&self) -> &serde_json::Value {
        &self.discovery
    }

    /// An endpoint URL from the discovery document, e.g. `"token_endpoint"`.
    pub fn endpoint(&self, name: &str) -> Result<String, String> {
        self.discovery
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("discovery has no {name}"))
    }

    /// The PEM of the CA that issued the provider's certificate, when it
    /// serves https.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A reqwest client builder for talking to this provider: no proxy, a
    /// 30 s timeout, and with TLS, trusting the provider's CA only.
    pub fn client_builder(&self) -> Result<reqwest::ClientBuilder, String> {
        install_crypto_provider();
        let builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30));
        match &self.ca_pem {
            None => Ok(builder),
            Some(pem) => {
                let ca = reqwest::Certificate::from_pem(pem.as_bytes())
                    .map_err(|e| format!("bad CA PEM: {e}"))?;
                Ok(builder.tls_certs_only([ca]))
            }
        }
    }

    /// A fresh "browser" for this provider (see [`TestProvider::browser`]);
    /// with TLS it trusts the provider's CA.
    pub fn new_browser(&self) -> reqwest::Client {
        self.client_builder()
            .and_then(|b| {
                b.cookie_store(true)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| e.to_string())
            })
            .expect("a cookie-store reqwest client builds")
    }

    /// A fresh "browser" for [`TestProvider::sign_in_with`]: an HTTP client
    /// with its own cookie jar that does not follow redirects (and ignores
    /// proxy settings, everything is on loopback). It trusts no test CA: for
    /// a provider on https use [`TestProvider::new_browser`].
    pub fn browser() -> reqwest::Client {
        install_crypto_provider();
        reqwest::Client::builder()
            .cookie_store(true)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a cookie-store reqwest client builds")
    }

    /// Drives the provider's login as a person would, with a fresh cookie jar:
    /// GETs `authorization_url`, follows redirects within the provider,
    /// submits the login form with (`login`, `password`), then answers the
    /// consent page, and stops at the first redirect leaving the provider's
    /// origin, returning its target (the client's redirect_uri with
    /// code/state/iss, or with an error). A rejected password is an `Err`.
    pub async fn sign_in(
        &self,
        authorization_url: &str,
        login: &str,
        password: &str,
        consent: Consent,
    ) -> Result<Url, String> {
        self.sign_in_with(
            &self.new_browser(),
            authorization_url,
            login,
            password,
            consent,
        )
        .await
    }

    /// Like [`TestProvider::sign_in`] but with the given browser (see
    /// [`TestProvider::browser`]), so a second sign-in of the same browser
    /// reuses the provider session: pages that are not shown (login, consent)
    /// are simply not answered.
    pub async fn sign_in_with(
        &self,
        browser: &reqwest::Client,
        authorization_url: &str,
        login: &str,
        password: &str,
        consent: Consent,
    ) -> Result<Url, String> {
        let mut current = Url::parse(authorization_url)
            .map_err(|e| format!("bad authorization URL {authorization_url:?}: {e}"))?;
        if current.origin() != self.origin {
            return Err(format!(
                "authorization URL {current} is not on the provider {}",
                self.issuer
            ));
        }
        let mut response = send(browser.get(current.clone())).await?;
        let mut login_submitted = false;
        let mut consent_submitted = false;

        for _ in 0..MAX_SIGN_IN_STEPS {
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("{status} from {current} without a Location"))?;
                let target = current
                    .join(location)
                    .map_err(|e| format!("bad Location {location:?} from {current}: {e}"))?;
                if target.origin() != self.origin {
                    return Ok(target);
                }
                current = target;
                response = send(browser.get(current.clone())).await?;
                continue;
            }

            let body = response
                .text()
                .await
                .map_err(|e| format!("cannot read {current}: {e}"))?;
            if !status.is_success() {
                return Err(format!(
                    "the provider answered {status} at {current}: {}",
                    page_text(&body)
                ));
            }
            let actions = form_actions(&body);

            if body.contains("id=\"password\"") {
                if login_submitted {
                    let reason = if body.contains("id=\"error\"") {
                        "Invalid username or password"
                    } else {
                        "the login form came back"
                    };
                    return Err(format!("sign-in as {login:?} rejected: {reason}"));
                }
                let action = find_action(&actions, "/login", &current)?;
                login_submitted = true;
                response = send(
                    browser
                        .post(action.clone())
                        .form(&[("login", login), ("password", password)]),
                )
                .await?;
                current = action;
                continue;
            }

            if body.contains("id=\"allow\"") {
                if consent_submitted {
                    return Err(format!("the consent page came back at {current}"));
                }
                let suffix = match consent {
                    Consent::Allow => "/confirm",
                    Consent::Deny => "/abort",
                };
                let action = find_action(&actions, suffix, &current)?;
                consent_submitted = true;
                response = send(browser.post(action.clone()).form(&[("submit", "1")])).await?;
                current = action;
                continue;
            }

            return Err(format!(
                "unexpected page at {current} ({status}): {}",
                page_text(&body)
            ));
        }
        Err(format!(
            "sign-in did not leave the provider within {MAX_SIGN_IN_STEPS} steps (last at {current})"
        ))
    }

    /// The whole code flow as `client`, without a BFF: signs `login` in with
    /// a fresh browser (consent allowed) for `scope` (PKCE S256, a fixed
    /// state and nonce, the client's first redirect URI), exchanges the code
    /// and returns the token endpoint's JSON (ask for `offline_access` to
    /// get a refresh token).
    pub async fn sign_in_tokens(
        &self,
        client: &ClientConfig,
        login: &str,
        password: &str,
        scope: &str,
    ) -> Result<serde_json::Value, String> {
        let redirect_uri = client
            .redirect_uris
            .first()
            .ok_or("the client has no redirect URI")?;
        let mut url =
            Url::parse(&self.endpoint("authorization_endpoint")?).map_err(|e| e.to_string())?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", "fixture-state")
            .append_pair("nonce", "fixture-nonce")
            .append_pair("code_challenge", PKCE_CHALLENGE)
            .append_pair("code_challenge_method", "S256");
        let back = self
            .sign_in(url.as_str(), login, password, Consent::Allow)
            .await?;
        let code = back
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| format!("no code in the redirect {back}"))?;
        let token_url = self.endpoint("token_endpoint")?;
        let response = send(
            self.http
                .post(&token_url)
                .basic_auth(
                    form_encode(&client.client_id),
                    Some(form_encode(&client.client_secret)),
                )
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", redirect_uri.as_str()),
                    ("code_verifier", PKCE_VERIFIER),
                ]),
        )
        .await?;
        json_ok(response, &token_url).await
    }

    /// The provider's test-only counters (`GET /test/stats`):
    /// `{"token_requests":{"authorization_code":N,"refresh_token":N,
    /// "client_credentials":N}, "revocations":N, "backchannel_logouts_sent":N,
    /// "backchannel_logouts_failed":N, "discovery_requests":N,
    /// "jwks_requests":N, "authorization_requests":N,
    /// "refresh_tokens_revoked":N, "token_errors":{…}}`. Token requests
    /// count successes and failures by grant_type; `token_errors` the
    /// failures alone; see `tests/provider/README.md`.
    pub async fn stats(&self) -> Result<serde_json::Value, String> {
        let url = format!("{}/test/stats", self.issuer);
        let response = send(self.http.get(&url)).await?;
        json_ok(response, &url).await
    }

    /// Destroys every session, grant, code and token of the account `sub`
    /// (`POST /test/revoke?sub=`), so its refresh tokens then fail with
    /// `invalid_grant` and its browser sessions must sign in again.
    pub async fn revoke_account(&self, sub: &str) -> Result<(), String> {
        let mut url = Url::parse(&format!("{}/test/revoke", self.issuer))
            .map_err(|e| format!("bad issuer {}: {e}", self.issuer))?;
        url.query_pairs_mut().append_pair("sub", sub);
        let response = send(self.http.post(url.clone())).await?;
        json_ok(response, url.as_str()).await.map(|_| ())
    }

    /// TEST-ONLY: marks the cached JWK set of client `client_id` (from its
    /// `jwks_uri`) stale, as the passing of its cache time would (at least
    /// 60 s in oidc-provider): the next client assertion that no cached key
    /// verifies makes the provider fetch the `jwks_uri` again.
    pub async fn expire_client_keys(&self, client_id: &str) -> Result<(), String> {
        let mut url = Url::parse(&format!("{}/test/expire-client-keys", self.issuer))
            .map_err(|e| format!("bad issuer {}: {e}", self.issuer))?;
        url.query_pairs_mut().append_pair("client_id", client_id);
        let response = send(self.http.post(url.clone())).await?;
        json_ok(response, url.as_str()).await.map(|_| ())
    }

    /// Calls the introspection endpoint with the client's credentials
    /// (HTTP basic); returns the JSON, whose `active` is true or false.
    pub async fn introspect(
        &self,
        client: &ClientConfig,
        token: &str,
    ) -> Result<serde_json::Value, String> {
        let url = self.endpoint("introspection_endpoint")?;
        let response = send(
            self.http
                .post(&url)
                .basic_auth(
                    form_encode(&client.client_id),
                    Some(form_encode(&client.client_secret)),
                )
                .form(&[("token", token)]),
        )
        .await?;
        json_ok(response, &url).await
    }

    /// Like [`TestProvider::introspect`], with a `token_type_hint`
    /// (`"refresh_token"` or `"access_token"`).
    pub async fn introspect_with_hint(
        &self,
        client: &ClientConfig,
        token: &str,
        token_type_hint: &str,
    ) -> Result<serde_json::Value, String> {
        let url = self.endpoint("introspection_endpoint")?;
        let response = send(
            self.http
                .post(&url)
                .basic_auth(
                    form_encode(&client.client_id),
                    Some(form_encode(&client.client_secret)),
                )
                .form(&[("token", token), ("token_type_hint", token_type_hint)]),
        )
        .await?;
        json_ok(response, &url).await
    }

    /// Whether `refresh_token` of `client` is still active: introspection
    /// with `token_type_hint=refresh_token` answers `active: true`. A rotated
    /// (consumed), revoked, expired or unknown refresh token is not.
    pub async fn refresh_token_active(
        &self,
        client: &ClientConfig,
        refresh_token: &str,
    ) -> Result<bool, String> {
        let answer = self
            .introspect_with_hint(client, refresh_token, "refresh_token")
            .await?;
        answer["active"]
            .as_bool()
            .ok_or_else(|| format!("introspection without `active`: {answer}"))
    }

    /// How many token requests of `grant_type` (e.g. `"refresh_token"`) the
    /// provider received so far, successful or not (from `/test/stats`).
    pub async fn token_requests(&self, grant_type: &str) -> Result<u64, String> {
        let stats = self.stats().await?;
        Ok(stats["token_requests"][grant_type].as_u64().unwrap_or(0))
    }

    /// How many token requests of `grant_type` the provider refused (from
    /// `/test/stats`): for `"refresh_token"`, a refresh token spent twice
    /// (with rotation) is one.
    pub async fn token_errors(&self, grant_type: &str) -> Result<u64, String> {
        let stats = self.stats().await?;
        Ok(stats["token_errors"][grant_type].as_u64().unwrap_or(0))
    }

    /// A refresh_token grant as `client` (HTTP basic): the status and JSON
    /// answer of the token endpoint, successful or not.
    pub async fn refresh(
        &self,
        client: &ClientConfig,
        refresh_token: &str,
    ) -> Result<(u16, serde_json::Value), String> {
        let url = self.endpoint("token_endpoint")?;
        let response = send(
            self.http
                .post(&url)
                .basic_auth(
                    form_encode(&client.client_id),
                    Some(form_encode(&client.client_secret)),
                )
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ]),
        )
        .await?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| format!("cannot read {url}: {e}"))?;
        let json = serde_json::from_str(&body)
            .map_err(|e| format!("{url} did not answer JSON ({e}): {body}"))?;
        Ok((status, json))
    }

    /// TEST-ONLY: holds every token request `delay` before handling it
    /// (`POST /test/delay`); `Duration::ZERO` turns the delays off. Requests
    /// already waiting keep the delay they started with.
    pub async fn set_token_delay(&self, delay: Duration) -> Result<(), String> {
        self.set_token_delays(delay, Duration::ZERO).await
    }

    /// TEST-ONLY: holds every token request `delay` at `point` (and turns
    /// the delay at the other point off).
    pub async fn set_token_delay_at(
        &self,
        delay: Duration,
        point: TokenDelay,
    ) -> Result<(), String> {
        match point {
            TokenDelay::BeforeHandling => self.set_token_delays(delay, Duration::ZERO).await,
            TokenDelay::BeforeAnswer => self.set_token_delays(Duration::ZERO, delay).await,
        }
    }

    /// TEST-ONLY: holds every token request `before` before handling it and
    /// its answer `after` once handled.
    pub async fn set_token_delays(&self, before: Duration, after: Duration) -> Result<(), String> {
        let url = format!("{}/test/delay", self.issuer);
        let body = serde_json::json!({
            "token_ms": u64::try_from(before.as_millis()).unwrap_or(u64::MAX),
            "token_after_ms": u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        });
        let response = send(self.http.post(&url).json(&body)).await?;
        json_ok(response, &url).await.map(|_| ())
    }

    /// TEST-ONLY: a JWS (RS256) over `claims` signed with the provider's own
    /// key, or with `foreign` a key the provider does not publish (same kid).
    pub async fn sign_test_jwt(
        &self,
        claims: &serde_json::Value,
        foreign: bool,
    ) -> Result<String, String> {
        let response = send(
            self.http
                .post(format!("{}/test/sign", self.issuer))
                .json(&serde_json::json!({"claims": claims, "foreign": foreign})),
        )
        .await?;
        let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        body["jwt"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no jwt in {body}"))
    }

    /// RP-initiated logout at the provider, as the given browser: opens the
    /// end-session page for `client_id` and confirms it. The provider then
    /// sends back-channel logout tokens to the clients of that session.
    pub async fn end_session_with(
        &self,
        browser: &reqwest::Client,
        client_id: &str,
    ) -> Result<(), String> {
        let mut end =
            Url::parse(&self.endpoint("end_session_endpoint")?).map_err(|e| e.to_string())?;
        end.query_pairs_mut().append_pair("client_id", client_id);
        let page = send(browser.get(end))
            .await?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let pick = |marker: &str| {
            page.split(marker)
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_owned)
        };
        let action = pick("action=\"").ok_or_else(|| format!("no logout form: {page}"))?;
        let xsrf =
            pick("name=\"xsrf\" value=\"").ok_or_else(|| format!("no xsrf field: {page}"))?;
        let confirm = Url::parse(&self.issuer)
            .and_then(|u| u.join(&action))
            .map_err(|e| e.to_string())?;
        let response = send(
            browser
                .post(confirm)
                .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")]),
        )
        .await?;
        if response.status().is_redirection() || response.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "end-session confirmation answered {}",
                response.status()
            ))
        }
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a request, turning transport errors into strings.
async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
    request
        .send()
        .await
        .map_err(|e| format!("request to the test provider failed: {e}"))
}

/// Reads a 200 JSON answer.
async fn json_ok(response: reqwest::Response, url: &str) -> Result<serde_json::Value, String> {
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| format!("cannot read {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url} answered {status}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("{url} did not answer JSON ({e}): {body}"))
}

/// `application/x-www-form-urlencoded` encoding, as RFC 6749 §2.3.1 wants
/// for client credentials in HTTP basic authentication.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The `action` attributes of the page's forms, HTML-unescaped.
fn form_actions(html: &str) -> Vec<String> {
    let mut actions = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        rest = &rest[start + 5..];
        let tag_end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..tag_end];
        if let Some(at) = tag.find("action=\"") {
            let value = &tag[at + 8..];
            if let Some(end) = value.find('"') {
                actions.push(
                    value[..end]
                        .replace("&quot;", "\"")
                        .replace("&#39;", "'")
                        .replace("&lt;", "<")
                        .replace("&gt;", ">")
                        .replace("&amp;", "&"),
                );
            }
        }
    }
    actions
}

/// The form action ending with `suffix`, resolved against the page URL.
fn find_action(actions: &[String], suffix: &str, page: &Url) -> Result<Url, String> {
    let action = actions
        .iter()
        .find(|a| a.ends_with(suffix))
        .ok_or_else(|| format!("no form posting to *{suffix} at {page}"))?;
    page.join(action)
        .map_err(|e| format!("bad form action {action:?} at {page}: {e}"))
}

/// A page's text without tags, shortened, for error messages.
fn page_text(html: &str) -> String {
    let body = html.find("<body").map_or(html, |at| &html[at..]);
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_form_actions() {
        let html = r#"<form method="post" action="/interaction/a&amp;b/confirm" style="x">
            <form action="/interaction/u/abort">"#;
        assert_eq!(
            form_actions(html),
            vec!["/interaction/a&b/confirm", "/interaction/u/abort"]
        );
    }

    #[test]
    fn default_config_serialises_like_server_mjs_expects() {
        let json = serde_json::to_value(ProviderConfig::default()).unwrap();
        assert_eq!(json["clients"][0]["client_id"], "keyway");
        assert_eq!(json["access_token_ttl"], 3600);
        assert_eq!(json["require_par"], false);
        assert_eq!(json["rotate_refresh_tokens"], false);
        assert!(json.get("tls").is_none(), "no tls key without TLS: {json}");
    }

    #[test]
    fn tls_config_sends_paths_but_not_the_ca() {
        let ca = TestCa::new();
        let config = ProviderConfig {
            tls: Some(ProviderTls::issue(&ca)),
            ..ProviderConfig::default()
        };
        let json = serde_json::to_value(&config).unwrap();
        let cert_path = json["tls"]["cert_path"].as_str().unwrap();
        assert!(Path::new(cert_path).is_file(), "{cert_path}");
        assert!(json["tls"]["key_path"].is_string());
        assert!(json["tls"].get("ca_pem").is_none(), "{json}");
    }
}

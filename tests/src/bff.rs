//! A Keyway BFF started in-process on a free loopback port, and a client that
//! talks to it the way the SPA in a browser does (cookie jar, `X-CSRF: 1`).

use keyway_backend::Config;
use keyway_shared::{CallbackRequest, LoginRequest};
use std::collections::BTreeMap;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

use crate::provider::{ClientConfig, Consent, ProviderConfig, TestProvider};

/// A loopback port reserved for a BFF before its provider is configured.
#[derive(Debug)]
pub struct Reserved {
    /// The bound listener.
    pub listener: TcpListener,
    /// `http://127.0.0.1:PORT`.
    pub origin: Url,
}

/// Binds a free loopback port below the kernel's ephemeral range (on
/// Linux `net.ipv4.ip_local_port_range`, 32768 and up by default), so that
/// while a test restarts its BFF on the same port ([`rebind`]) no outgoing
/// connection or `:0` listener of a test running beside it can take the
/// port (seen: `AddrInUse` when the restart test ran beside the store
/// tests' many client connections). Falls back to `127.0.0.1:0` where the
/// ephemeral range leaves no room below it.
pub async fn reserve() -> Reserved {
    let (low, high) = below_ephemeral_range();
    if high > low {
        for _ in 0..200 {
            let port = rand::random_range(low..high);
            match TcpListener::bind(("127.0.0.1", port)).await {
                Ok(listener) => return reserved(listener),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => panic!("bind 127.0.0.1:{port}: {e}"),
            }
        }
    }
    reserved(
        TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback"),
    )
}

/// Binds the port of a stopped BFF at `origin` again, for a restart on the
/// same origin (a port from [`reserve`], which no other socket takes).
pub async fn rebind(origin: &Url) -> Reserved {
    let addr = origin.socket_addrs(|| None).expect("origin address")[0];
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("bind {addr} again: {e}"));
    reserved(listener)
}

fn reserved(listener: TcpListener) -> Reserved {
    let port = listener.local_addr().expect("local addr").port();
    Reserved {
        listener,
        origin: Url::parse(&format!("http://127.0.0.1:{port}")).expect("url"),
    }
}

/// The ports [`reserve`] picks from: the lower half below the ephemeral
/// range's start (16384–32767 by default).
fn below_ephemeral_range() -> (u16, u16) {
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    (start / 2, start)
}

/// The provider client registration for a BFF at `origin`.
pub fn client_for(origin: &Url) -> ClientConfig {
    let o = origin.as_str().trim_end_matches('/');
    ClientConfig {
        client_id: "keyway".into(),
        client_secret: "keyway-secret".into(),
        redirect_uris: vec![format!("{o}/callback")],
        post_logout_redirect_uris: vec![format!("{o}/")],
        backchannel_logout_uri: Some(format!("{o}/bff/backchannel-logout")),
    }
}

/// The registration of a client at a provider that is one of several
/// providers of the BFF at `origin`, with id `provider` (its redirect URI is
/// `/callback/{provider}`).
pub fn client_for_provider(origin: &Url, provider: &str) -> ClientConfig {
    let o = origin.as_str().trim_end_matches('/');
    ClientConfig {
        redirect_uris: vec![format!("{o}/callback/{provider}")],
        ..client_for(origin)
    }
}

/// A `KEYWAY_SESSION_KEY` for tests (the 32 bytes 0, 1, …, 31): protects nothing.
pub const TEST_SESSION_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Environment-style settings for a BFF at `origin` against `issuer`.
pub fn env_for(origin: &Url, issuer: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert(
        "KEYWAY_PUBLIC_URL".into(),
        origin.as_str().trim_end_matches('/').into(),
    );
    env.insert(
        "KEYWAY_LISTEN".into(),
        origin
            .host_str()
            .map(|h| format!("{h}:{}", origin.port().unwrap_or(80)))
            .unwrap_or_default(),
    );
    env.insert("KEYWAY_ISSUER".into(), issuer.into());
    env.insert("KEYWAY_CLIENT_ID".into(), "keyway".into());
    env.insert("KEYWAY_CLIENT_SECRET".into(), "keyway-secret".into());
    env.insert("KEYWAY_SESSION_STORE".into(), "memory".into());
    env.insert(
        "KEYWAY_SCOPES".into(),
        "openid profile email offline_access".into(),
    );
    env
}

/// A running BFF.
#[derive(Debug)]
pub struct TestBff {
    /// Its origin.
    pub origin: Url,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), String>>>,
}

impl TestBff {
    /// Starts a BFF on a reserved listener with settings given as environment variables.
    pub async fn start(
        reserved: Reserved,
        env: &BTreeMap<String, String>,
    ) -> Result<TestBff, String> {
        let config = Config::from_sources(None, env).map_err(|e| e.to_string())?;
        Self::start_with(reserved, config).await
    }

    /// Starts a BFF with a TOML file (e.g. `[[apis]]`) plus environment-style settings.
    pub async fn start_with_file(
        reserved: Reserved,
        toml: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<TestBff, String> {
        let config = Config::from_sources(Some(toml), env).map_err(|e| e.to_string())?;
        Self::start_with(reserved, config).await
    }

    /// Starts a BFF on a reserved listener with a configuration.
    pub async fn start_with(reserved: Reserved, config: Config) -> Result<TestBff, String> {
        Self::start_built(reserved, keyway_backend::Builder::new(config)).await
    }

    /// Starts a BFF built by `builder` (a store of the test's, an adjusted
    /// HTTP client...) on Keyway's own server loop, as `keyway serve` runs it.
    pub async fn start_built(
        reserved: Reserved,
        builder: keyway_backend::Builder,
    ) -> Result<TestBff, String> {
        let (tx, rx) = oneshot::channel::<()>();
        let (started_tx, started_rx) = oneshot::channel::<Result<(), String>>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            let result = builder
                .serve_on(reserved.listener, shutdown)
                .await
                .map_err(|e| e.to_string());
            if let Err(e) = &result {
                let _ = started_tx.send(Err(e.clone()));
            }
            result
        });
        // A start-up failure (bad store, bad CA file) is reported at once.
        if let Ok(Ok(Err(e))) =
            tokio::time::timeout(std::time::Duration::from_millis(200), started_rx).await
        {
            return Err(e);
        }
        let bff = TestBff {
            origin: reserved.origin,
            shutdown: Some(tx),
            task: Some(task),
        };
        bff.wait_ready().await?;
        Ok(bff)
    }

    /// Polls `/readyz` until the providers' discovery is loaded (bounded).
    pub async fn wait_ready(&self) -> Result<(), String> {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = client.get(self.url("/readyz")).send().await
                && r.status() == 200
            {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err("the BFF did not become ready in 10 s".into())
    }

    /// An absolute URL on this BFF.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.origin.as_str().trim_end_matches('/'), path)
    }

    /// Stops it, letting in-flight requests finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestBff {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A browser's view of the BFF: one cookie jar, requests as the SPA makes them.
#[derive(Debug, Clone)]
pub struct SpaClient {
    /// The cookie-keeping HTTP client.
    pub http: reqwest::Client,
    base: String,
    /// The provider-side browser (its own cookie jar at the provider).
    pub provider_browser: reqwest::Client,
}

impl SpaClient {
    /// A fresh browser for `bff`.
    pub fn new(bff: &TestBff) -> Self {
        Self {
            http: TestProvider::browser(),
            base: bff.url(""),
            provider_browser: TestProvider::browser(),
        }
    }

    /// A fresh browser for a BFF reached at `origin` (e.g. through a load
    /// balancer).
    pub fn at(origin: &Url) -> Self {
        Self {
            http: TestProvider::browser(),
            base: origin.as_str().trim_end_matches('/').to_owned(),
            provider_browser: TestProvider::browser(),
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET")
    }

    /// `POST path` with a JSON body and `X-CSRF: 1`.
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("x-csrf", "1")
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// `POST /bff/login`, returning the authorization URL.
    pub async fn start_login(&self, return_to: Option<&str>) -> String {
        let req = LoginRequest {
            provider: None,
            return_to: return_to.map(str::to_owned),
            ..LoginRequest::default()
        };
        let r = self
            .post("/bff/login", &serde_json::to_value(req).expect("json"))
            .await;
        assert_eq!(
            r.status(),
            200,
            "login start failed: {}",
            r.text().await.unwrap_or_default()
        );
        let body: serde_json::Value = r.json().await.expect("json");
        body["authorization_url"]
            .as_str()
            .expect("authorization_url")
            .to_owned()
    }

    /// Signs in at the provider and returns the callback query as the SPA would post it.
    pub async fn authorize(
        &self,
        provider: &TestProvider,
        auth_url: &str,
        user: &str,
        password: &str,
        consent: Consent,
    ) -> CallbackRequest {
        let back = provider
            .sign_in_with(&self.provider_browser, auth_url, user, password, consent)
            .await
            .expect("sign-in at the provider");
        callback_request(&back)
    }

    /// `POST /bff/callback`.
    pub async fn callback(&self, req: &CallbackRequest) -> reqwest::Response {
        self.post("/bff/callback", &serde_json::to_value(req).expect("json"))
            .await
    }

    /// `POST /bff/callback/{provider}`: what the SPA does at the callback
    /// route of one of several providers.
    pub async fn callback_for(&self, provider: &str, req: &CallbackRequest) -> reqwest::Response {
        let path = format!("/bff/callback/{provider}");
        self.post(&path, &serde_json::to_value(req).expect("json"))
            .await
    }

    /// The whole login of `user`: start, provider, callback; returns the callback response.
    pub async fn login(
        &self,
        provider: &TestProvider,
        user: &str,
        password: &str,
    ) -> reqwest::Response {
        let url = self.start_login(None).await;
        let cb = self
            .authorize(provider, &url, user, password, Consent::Allow)
            .await;
        self.callback(&cb).await
    }
}

/// Parses the provider's redirect back to `/callback` into the SPA's POST body.
pub fn callback_request(url: &Url) -> CallbackRequest {
    let mut req = CallbackRequest::default();
    for (k, v) in url.query_pairs() {
        let v = Some(v.into_owned());
        match k.as_ref() {
            "code" => req.code = v,
            "state" => req.state = v,
            "iss" => req.iss = v,
            "error" => req.error = v,
            "error_description" => req.error_description = v,
            _ => {}
        }
    }
    req
}

/// A provider and a BFF wired to each other, with the BFF settings tweaked by `edit`.
pub async fn stack_with(
    provider_config: impl FnOnce(&Url) -> ProviderConfig,
    edit: impl FnOnce(&mut BTreeMap<String, String>),
) -> (TestProvider, TestBff) {
    let reserved = reserve().await;
    let provider = TestProvider::start(provider_config(&reserved.origin))
        .await
        .expect("provider starts");
    let mut env = env_for(&reserved.origin, &provider.issuer);
    edit(&mut env);
    let bff = TestBff::start(reserved, &env).await.expect("BFF starts");
    (provider, bff)
}

/// A provider (default settings, one client for the BFF) and a BFF on the memory store.
pub async fn stack() -> (TestProvider, TestBff) {
    stack_with(
        |o| ProviderConfig {
            clients: vec![client_for(o)],
            ..ProviderConfig::default()
        },
        |_| {},
    )
    .await
}

/// The status and JSON body of a response (panics with the text when the body is not JSON).
pub async fn json_of(r: reqwest::Response) -> (u16, serde_json::Value) {
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, value)
}

/// Asserts the contract's error shape: this status, this code, a non-empty message.
pub fn assert_error(status: u16, body: &serde_json::Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], want_code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message: {body}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reserved ports lie below the ephemeral range, where no outgoing
    /// connection is given a port, and a stopped BFF's port can be bound again.
    #[tokio::test]
    async fn reserved_ports_stay_below_the_ephemeral_range_and_rebind() {
        let (low, high) = below_ephemeral_range();
        let reserved = reserve().await;
        let port = reserved.listener.local_addr().unwrap().port();
        assert!((low..high).contains(&port), "{port} not in {low}..{high}");
        let origin = reserved.origin.clone();
        drop(reserved);
        let again = rebind(&origin).await;
        assert_eq!(again.origin, origin);
    }
}

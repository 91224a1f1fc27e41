//! Keyway's backend-for-frontend: the confidential OAuth 2.0 / OpenID Connect
//! client behind a single-page app.
//!
//! The browser holds only an HttpOnly session cookie; the BFF keeps state,
//! PKCE verifier and nonce, exchanges the code, validates the ID token, keeps
//! the tokens server-side and calls the provider and your APIs with them.
//!
//! Run the `keyway` binary, or nest Keyway's router in your own Axum app:
//!
//! ```no_run
//! use axum::{Router, routing::get};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // KEYWAY_ISSUER, KEYWAY_CLIENT_ID, KEYWAY_CLIENT_SECRET... (docs/configuration.md)
//! let config = keyway_backend::Config::load(None)?;
//! let keyway = keyway_backend::router(config).await?;
//! let app = Router::new()
//!     .route("/hello", get(|| async { "your own routes" }))
//!     .merge(keyway); // /bff/*, /healthz, /readyz, /metrics and the SPA
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! [`Builder`] adds what an embedding application may want to choose: its
//! own session [`Store`], adjustments to the outbound HTTP client.
//!
//! # Layout
//!
//! Layers, each using only those below it: the HTTP layer (`http`: routes,
//! extractors, middleware, the one mapping of errors to responses) → the
//! features (`login`, `tokens`, `proxy`, `backchannel`) → the protocol
//! (`provider`) and the sessions (`session`) → the configuration (`config`).
//! `docs/architecture.md` says which module owns which decision.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
// No function over 80 lines (the threshold is in clippy.toml; clippy runs
// with `-D warnings` in scripts/test).
#![warn(clippy::too_many_lines)]

mod app;
mod backchannel;
mod config;
mod error;
mod http;
mod jose;
mod login;
mod metrics;
mod own_sessions;
mod provider;
mod proxy;
mod secret;
mod session;
mod telemetry;
mod tokens;

#[doc(hidden)]
pub mod internals;

pub use app::StartError;
pub use config::{
    ApiBase, ApiSettings, ApiToken, ClaimMap, Config, ConfigError, ConfigErrors, LogFormat,
    OAuth2Endpoints, OAuth2Settings, OidcSettings, PRESET_NAMES, Protocol, ProviderSettings,
    ServerLimits, SessionKey, SessionSettings, StoreSetting,
};
pub use config::{AssertionAudience, ClientAuthMethod, Profile};
pub use config::{RedisNodes, RedisTopology};
pub use error::{Error, StepUp};
pub use jose::{PrivateKey, SigningAlg};
pub use secret::Secret;
pub use session::store::{ChangeSink, Payload, Record, Store, StoreError, Update, Watch};
pub use telemetry::{LogGuard, init as init_logging};

/// The Content-Security-Policy that fits the built SPA in `dir` (Trunk's
/// `dist/`): what Keyway sends with it, for a web server that serves the
/// SPA instead of Keyway.
pub fn content_security_policy(dir: &std::path::Path) -> std::io::Result<String> {
    let site = http::static_files::StaticSite::open(dir)?;
    Ok(site.csp.to_str().unwrap_or_default().to_owned())
}

use std::future::Future;
use std::sync::Arc;

/// Builds Keyway with choices beyond its configuration.
#[derive(Debug)]
pub struct Builder {
    config: Config,
    store: Option<Arc<dyn Store>>,
    http: provider::http::HttpOptions,
}

impl Builder {
    /// Keyway for `config`.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            store: None,
            http: Default::default(),
        }
    }

    /// Keeps sessions in `store` instead of the configured one.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Adjusts the outbound HTTP client (a proxy, DNS overrides, extra
    /// roots...). Keyway's own policies — timeouts, no redirects — are
    /// applied after, and cannot be undone here. The adjusted client also
    /// carries the API proxy's calls (instead of the pooled hyper-util
    /// client used otherwise), so the adjustments are never bypassed.
    pub fn http_client(
        mut self,
        customize: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> Self {
        self.http.customize = Some(Arc::new(customize));
        self
    }

    /// The Axum router: opens the session store and starts loading the
    /// providers' discovery in the background.
    pub async fn router(self) -> Result<axum::Router, StartError> {
        let app = app::App::new(self.config, self.store, self.http).await?;
        http::router(app).map_err(StartError::StaticDir)
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting
    /// connections and lets in-flight requests finish, for at most
    /// `shutdown_timeout`. Connections are held to the configured header and
    /// body timeouts (`[server]`).
    pub async fn serve_on(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let limits = self.config.server.clone();
        let grace = self.config.shutdown_timeout;
        let router = self.router().await?;
        http::server::run(listener, router, &limits, shutdown, grace)
            .await
            .map_err(StartError::Serve)
    }

    /// Binds the configured address and serves, like [`Builder::serve_on`].
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let addr = self.config.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Listen { addr, source })?;
        self.serve_on(listener, shutdown).await
    }
}

/// The Keyway router for a configuration (see [`Builder::router`]).
pub async fn router(config: Config) -> Result<axum::Router, StartError> {
    Builder::new(config).router().await
}

/// Binds the configured address and serves until `shutdown` resolves (see
/// [`Builder::serve`]).
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    Builder::new(config).serve(shutdown).await
}

/// Like [`serve`], on a listener already bound (tests bind port 0).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    Builder::new(config).serve_on(listener, shutdown).await
}

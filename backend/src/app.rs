//! The application state shared by every handler, and how it is built.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::provider::Providers;
use crate::provider::http::{HttpClient, HttpOptions};
use crate::proxy::headers::ForwardedOrigin;
use crate::session::Sessions;
use crate::session::codec::Codec;
use crate::session::cookie::CookieSettings;
use crate::session::store::Store;
use crate::tokens::client::ClientTokens;
use crate::tokens::refresh::RefreshFlights;
use std::sync::Arc;

/// Why Keyway could not start. Messages name the setting or the part that
/// failed, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The session store could not be opened.
    #[error("session store: {0}")]
    Store(String),
    /// The outbound HTTP client could not be built (e.g. `tls_ca_file`).
    #[error("{0}")]
    Http(String),
    /// The built SPA could not be read.
    #[error("static_dir: {0}")]
    StaticDir(std::io::Error),
    /// The metrics recorder could not be built.
    #[error("{0}")]
    Metrics(String),
    /// The listening address could not be bound.
    #[error("listen: cannot bind {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server failed.
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// Everything a request may need; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct App(Arc<AppInner>);

/// The parts of [`App`].
#[derive(Debug)]
pub(crate) struct AppInner {
    /// The validated configuration.
    pub config: Config,
    /// The providers and their cached discovery.
    pub providers: Providers,
    /// Outbound HTTP.
    pub http: HttpClient,
    /// The sessions and their store.
    pub sessions: Sessions,
    /// Cookie names and attributes.
    pub cookies: CookieSettings,
    /// Seals the pending-login cookies.
    pub cookie_codec: Codec,
    /// In-process single flight of refresh grants.
    pub refresh_flights: RefreshFlights,
    /// The BFF's own client-credentials tokens.
    pub client_tokens: ClientTokens,
    /// This App's metrics (its own recorder: see [`crate::metrics`]).
    pub metrics: Metrics,
    /// The forwarding headers naming Keyway's origin, built once.
    pub forwarded: ForwardedOrigin,
}

impl std::ops::Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl App {
    /// Opens the session store (unless one is given) and prepares the
    /// providers; discovery is loaded in the background (`/readyz` says
    /// when).
    pub(crate) async fn new(
        config: Config,
        store: Option<Arc<dyn Store>>,
        mut http: HttpOptions,
    ) -> Result<Self, StartError> {
        if let Some(path) = &config.tls_ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                StartError::Http(format!(
                    "tls_ca_file: cannot read `{}`: {e}",
                    path.display()
                ))
            })?;
            http.extra_roots_pem.push(pem);
        }
        let http = HttpClient::new(config.http_timeout, &http).map_err(StartError::Http)?;
        let sessions = match store {
            Some(store) => Sessions::new(store, &config.session).given_store(),
            None => Sessions::open(&config.session)
                .await
                .map_err(StartError::Store)?,
        };
        let providers = Providers::new(&config.providers, config.discovery_ttl);
        for provider in providers.iter() {
            provider.preload(&http);
        }
        let metrics = Metrics::new(&config).map_err(StartError::Metrics)?;
        http.dpop_nonces()
            .set_counters(metrics.dpop_nonce_retries(&config));
        let app = App(Arc::new(AppInner {
            cookies: CookieSettings::new(config.is_https()),
            forwarded: ForwardedOrigin::new(&config.public_url),
            cookie_codec: Codec::for_cookies(&config.session.keys),
            metrics,
            config,
            providers,
            http,
            sessions,
            refresh_flights: RefreshFlights::default(),
            client_tokens: ClientTokens::default(),
        }));
        Ok(app)
    }
}

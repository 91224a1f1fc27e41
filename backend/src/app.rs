//! The application state shared by every handler.

use crate::config::Config;
use crate::provider::Providers;
use crate::provider::http::HttpClient;
use crate::session::Sessions;
use crate::session::cookie::CookieSettings;
use crate::tokens::RefreshFlights;
use std::sync::Arc;
use std::time::Duration;

/// Everything a request may need; cheap to clone.
#[derive(Debug, Clone)]
pub struct App(Arc<AppInner>);

/// The parts of [`App`].
#[derive(Debug)]
pub struct AppInner {
    /// The validated configuration.
    pub config: Config,
    /// The providers and their cached discovery.
    pub providers: Providers,
    /// Outbound HTTP.
    pub http: HttpClient,
    /// Session and pending-login stores.
    pub sessions: Sessions,
    /// Cookie names and attributes.
    pub cookies: CookieSettings,
    /// In-process single flight of refresh grants.
    pub refresh_flights: RefreshFlights,
    /// The BFF's own client-credentials tokens.
    pub client_tokens: crate::proxy::ClientTokens,
    /// This App's metrics (its own recorder: see [`crate::metrics`]).
    pub metrics: crate::metrics::Metrics,
}

impl std::ops::Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl App {
    /// Opens the session store and prepares the providers (discovery is
    /// fetched in the background; `/readyz` says when it is loaded).
    pub async fn new(config: Config) -> Result<Self, String> {
        let sessions = Sessions::open(&config.session).await?;
        let providers = Providers::new(
            &config.providers,
            &config.redirect_uri(),
            config.discovery_ttl,
        );
        let http = HttpClient::new(config.http_timeout);
        let cookies = CookieSettings::new(config.is_https());
        let metrics = crate::metrics::Metrics::new(&config).map_err(|e| e.to_string())?;
        let app = App(Arc::new(AppInner {
            config,
            providers,
            http,
            sessions,
            cookies,
            refresh_flights: RefreshFlights::default(),
            client_tokens: Default::default(),
            metrics,
        }));
        app.spawn_discovery();
        Ok(app)
    }

    /// Loads every provider's discovery in the background, retrying with backoff.
    fn spawn_discovery(&self) {
        for provider in self.providers.iter() {
            let provider = provider.clone();
            let http = self.http.clone();
            tokio::spawn(async move {
                let mut delay = Duration::from_millis(200);
                loop {
                    match provider.discovered(&http).await {
                        Ok(_) => return,
                        Err(e) => {
                            tracing::warn!(provider = %provider.id(), error = %e, "discovery failed; retrying");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(30));
                        }
                    }
                }
            });
        }
    }
}

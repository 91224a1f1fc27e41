//! Configuration: the bottom layer of Keyway. A TOML file (`--config FILE`
//! or `KEYWAY_CONFIG`) overlaid by `KEYWAY_*` environment variables, read
//! into one serde model ([`raw`]) by `figment`, which remembers where every
//! value came from ([`sources`]), then checked section by section (top-level
//! settings, `[session]`, `[[providers]]` with their presets, `[[apis]]`),
//! collecting every problem before giving up, each named as the user wrote
//! it.
//!
//! Secrets (client secrets, session keys) come from environment variables or
//! files only, never inline in the file, and are held in types that print
//! and serialize as `[redacted]`. [`Config::describe`] is the validated
//! [`Config`] serialized as TOML, so what `keyway check-config` prints cannot
//! drift from what Keyway runs with.

mod api;
mod client_auth;
mod error;
mod presets;
mod profile;
mod provider;
mod raw;
mod server;
mod session;
mod sources;
mod store_url;
mod values;

pub(crate) use api::NEVER_FORWARDED;
pub use api::{ApiBase, ApiSettings, ApiToken};
pub use client_auth::{AssertionAudience, ClientAuthMethod};
pub use error::{ConfigError, ConfigErrors};
pub use presets::NAMES as PRESET_NAMES;
pub use profile::Profile;
pub use provider::{
    ClaimMap, OAuth2Endpoints, OAuth2Settings, OidcSettings, Protocol, ProviderSettings,
};
pub use server::{LogFormat, ServerLimits};
pub use session::{SessionKey, SessionSettings, StoreSetting};
pub use store_url::{RedisNodes, RedisTopology};

use serde::Serialize;
use sources::Sources;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// The validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Origin the browser sees, e.g. `https://app.example.com` (no path).
    #[serde(serialize_with = "as_origin")]
    pub public_url: Url,
    /// The built SPA to serve, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_dir: Option<PathBuf>,
    /// Log format.
    pub log_format: LogFormat,
    /// Timeout of every outbound call.
    #[serde(with = "humantime_serde")]
    pub http_timeout: Duration,
    /// How long discovery documents and JWKS are kept before being fetched again.
    #[serde(with = "humantime_serde")]
    pub discovery_ttl: Duration,
    /// Refresh an access token that expires within this (capped at half its lifetime).
    #[serde(with = "humantime_serde")]
    pub refresh_skew: Duration,
    /// How long `keyway serve` lets in-flight requests finish after SIGTERM
    /// or Ctrl-C before it exits anyway (still with status 0).
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Extra certificate authorities (PEM) trusted for outbound calls, beside
    /// the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    /// Limits on incoming connections.
    pub server: ServerLimits,
    /// Session settings.
    pub session: SessionSettings,
    /// Providers, in the order the SPA lists them.
    pub providers: Vec<ProviderSettings>,
    /// Upstream APIs for the proxy.
    pub apis: Vec<ApiSettings>,
    /// How far the provider's clock may be from Keyway's when a login's
    /// `auth_time` is checked against `max_age`.
    #[serde(with = "humantime_serde")]
    pub clock_skew: Duration,
}

/// An origin as the user writes it (no trailing slash).
fn as_origin<S: serde::Serializer>(url: &Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(url.as_str().trim_end_matches('/'))
}

impl Config {
    /// Whether cookies must be `Secure` (and `__Host-` prefixed).
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// A configuration for tests and embedding: one OIDC provider, memory
    /// store, loopback http.
    pub fn for_single_provider(
        public_url: &Url,
        issuer: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Self, ConfigErrors> {
        let env = BTreeMap::from([
            ("KEYWAY_PUBLIC_URL".to_owned(), public_url.to_string()),
            ("KEYWAY_ISSUER".to_owned(), issuer.to_owned()),
            ("KEYWAY_CLIENT_ID".to_owned(), client_id.to_owned()),
            ("KEYWAY_CLIENT_SECRET".to_owned(), client_secret.to_owned()),
            ("KEYWAY_SESSION_STORE".to_owned(), "memory".to_owned()),
        ]);
        Self::from_sources(None, &env)
    }

    /// Loads the file (if any: `file`, else `KEYWAY_CONFIG`) and overlays
    /// the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigErrors> {
        // The whole environment: `client_secret_env` may name any variable.
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let file = file.map(Path::to_path_buf).or_else(|| {
            env.get("KEYWAY_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let text = match &file {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                ConfigErrors(vec![ConfigError {
                    setting: "--config".into(),
                    problem: format!("cannot read `{}`: {e}", path.display()),
                }])
            })?),
            None => None,
        };
        let label = file.map(|p| p.display().to_string()).unwrap_or_default();
        Self::build(text.as_deref().map(|t| (t, label.as_str())), &env)
    }

    /// Builds from TOML text (if any) and an environment map: the testable
    /// core of [`Config::load`].
    pub fn from_sources(
        toml_text: Option<&str>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigErrors> {
        Self::build(toml_text.map(|t| (t, "config file")), env)
    }

    fn build(
        file: Option<(&str, &str)>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigErrors> {
        let mut src = Sources::new(file, env);
        let raw = src.raw();
        let mut errs = std::mem::take(&mut src.errors);
        values::unknown_keys(&mut errs, "", &raw.unknown);
        let server = server::read(&mut errs, &src, &raw);
        let session = session::read(&mut errs, &src, &raw.session);
        let providers = provider::read_all(&mut errs, &src, &raw.providers, &server.public_url);
        if raw.providers.is_empty() {
            let setting = if src.has_file() {
                "providers"
            } else {
                "KEYWAY_ISSUER"
            };
            errs.push(
                setting,
                "no provider configured: set KEYWAY_ISSUER (or KEYWAY_PROVIDER), KEYWAY_CLIENT_ID and KEYWAY_CLIENT_SECRET, or [[providers]] in a config file",
            );
        }
        let apis = api::read_all(&mut errs, &raw.apis, &providers);
        errs.into_result(Config {
            listen: server.listen,
            public_url: server.public_url,
            static_dir: server.static_dir,
            log_format: server.log_format,
            http_timeout: server.http_timeout,
            discovery_ttl: server.discovery_ttl,
            refresh_skew: server.refresh_skew,
            shutdown_timeout: server.shutdown_timeout,
            tls_ca_file: server.tls_ca_file,
            server: server.limits,
            session,
            providers,
            apis,
            clock_skew: server.clock_skew,
        })
    }

    /// The effective configuration as TOML, every secret `[redacted]` (what
    /// `keyway check-config` prints): the serialized [`Config`] itself.
    pub fn describe(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"))
    }
}

#[cfg(test)]
mod fapi_tests;
#[cfg(test)]
mod tests;

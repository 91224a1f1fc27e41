//! The configuration as a user writes it: one serde model that the TOML file
//! and the `KEYWAY_*` environment both fill ([`super::sources`]). Every field
//! is optional here; defaults and checks are applied per section by the
//! validating modules. Unknown keys are caught in `unknown` (not by
//! `deny_unknown_fields`) so that every one of them is reported at once.

use figment::value::Value;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Keys the model does not know, by name.
pub(super) type Unknown = BTreeMap<String, Value>;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawConfig {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub static_dir: Option<PathBuf>,
    pub log_format: Option<String>,
    pub http_timeout: Option<String>,
    pub discovery_ttl: Option<String>,
    pub refresh_skew: Option<String>,
    pub shutdown_timeout: Option<String>,
    pub tls_ca_file: Option<PathBuf>,
    pub clock_skew: Option<String>,
    pub server: RawServer,
    pub session: RawSession,
    pub providers: Vec<RawProvider>,
    pub apis: Vec<RawApi>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `[server]`: limits on incoming connections.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawServer {
    pub header_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub max_body: Option<usize>,
    pub max_header_bytes: Option<usize>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `[session]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawSession {
    pub store: Option<String>,
    pub idle_timeout: Option<String>,
    pub absolute_timeout: Option<String>,
    pub login_timeout: Option<String>,
    /// Only from the environment (`KEYWAY_SESSION_KEY`): refused in the file.
    pub key: Option<String>,
    pub key_file: Option<PathBuf>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// One `[[providers]]` entry (or the `KEYWAY_ISSUER`/`KEYWAY_PROVIDER` one).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawProvider {
    pub id: Option<String>,
    pub name: Option<String>,
    pub kind: Option<String>,
    pub preset: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// Only from the environment (`KEYWAY_CLIENT_SECRET`): refused in the file.
    pub client_secret: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub scopes: Option<Vec<String>>,
    pub auth_params: Option<BTreeMap<String, String>>,
    pub acr_advisory: Option<bool>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub emails_endpoint: Option<String>,
    pub claims: Option<RawClaims>,
    pub par: Option<bool>,
    pub tenant: Option<String>,
    pub base_url: Option<String>,
    pub realm: Option<String>,
    pub domain: Option<String>,
    pub authorization_server: Option<String>,
    pub profile: Option<String>,
    pub dpop: Option<bool>,
    pub client_auth: Option<String>,
    /// Only from the environment (`KEYWAY_PRIVATE_KEY`): refused in the file.
    pub private_key: Option<String>,
    pub private_key_env: Option<String>,
    pub private_key_file: Option<OneOrMany>,
    pub private_key_alg: Option<String>,
    pub assertion_audience: Option<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// `claims = { sub = ..., name = [...] }` of a plain OAuth 2.0 provider.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(super) struct RawClaims {
    pub sub: Option<OneOrMany>,
    pub name: Option<OneOrMany>,
    pub email: Option<OneOrMany>,
    pub picture: Option<OneOrMany>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// One `[[apis]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawApi {
    pub name: Option<String>,
    pub url: Option<String>,
    pub token: Option<String>,
    pub provider: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub timeout: Option<String>,
    pub max_body: Option<usize>,
    pub allow_http: Option<bool>,
    pub forward_headers: Option<Vec<String>>,
    pub dpop: Option<bool>,
    pub require_acr: Option<Vec<String>>,
    pub max_auth_age: Option<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

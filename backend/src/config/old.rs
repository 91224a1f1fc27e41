//! Configuration: a TOML file (`--config FILE` or `KEYWAY_CONFIG`) overlaid by
//! `KEYWAY_*` environment variables, validated into [`Config`].
//!
//! Every problem is reported as a [`ConfigError`] naming the setting, so that
//! `keyway serve` stops with one clear line per problem and `keyway
//! check-config` can list them all. Secrets are read from environment
//! variables or files only (never inline in the file) and held in [`Secret`].

use crate::secret::Secret;
use base64::Engine;
use keyway_shared::ProviderKind;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// Where sessions and pending logins are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSetting {
    /// In process memory: lost on restart, one instance only.
    Memory,
    /// An SQLite file: survives restarts, one instance.
    Sqlite(PathBuf),
    /// A Redis server shared by several instances (`redis://` or `rediss://`).
    Redis(String),
}

impl StoreSetting {
    /// Parses `memory`, `sqlite://PATH` or `redis://HOST:PORT` (`rediss://`).
    pub fn parse(value: &str) -> Result<Self, String> {
        if value == "memory" {
            Ok(Self::Memory)
        } else if let Some(path) = value.strip_prefix("sqlite://") {
            if path.is_empty() {
                Err("sqlite:// needs a file path, e.g. sqlite://keyway.db".into())
            } else {
                Ok(Self::Sqlite(PathBuf::from(path)))
            }
        } else if value.starts_with("redis://") || value.starts_with("rediss://") {
            Url::parse(value).map_err(|e| format!("not a valid Redis URL: {e}"))?;
            // What the Redis client itself accepts (its messages quote no part of the URL).
            fred::types::config::Config::from_url(value)
                .map_err(|e| format!("not a valid Redis URL: {}", e.details()))?;
            Ok(Self::Redis(value.to_owned()))
        } else {
            Err("expected `memory`, `sqlite://PATH` or `redis://HOST:PORT`".into())
        }
    }

    /// Whether the store is outside the process (and so must be encrypted).
    pub fn is_persistent(&self) -> bool {
        !matches!(self, Self::Memory)
    }
}

impl fmt::Display for StoreSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            Self::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Self::Redis(u) => {
                // A Redis URL may carry a password: print it without.
                match Url::parse(u) {
                    Ok(mut url) => {
                        if url.password().is_some() {
                            let _ = url.set_password(Some("[redacted]"));
                        }
                        write!(f, "{url}")
                    }
                    Err(_) => f.write_str("redis://[unparsable]"),
                }
            }
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object a line.
    Json,
}

/// Session settings.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Where sessions live.
    pub store: StoreSetting,
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after login, used or not.
    pub absolute_timeout: Duration,
    /// How long a started login may take to come back.
    pub login_timeout: Duration,
    /// Keys that encrypt session data at rest: the first encrypts, all decrypt.
    pub keys: Vec<SessionKey>,
}

/// A 32-byte key that encrypts session data at rest.
#[derive(Clone)]
pub struct SessionKey(pub [u8; 32]);

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How a provider's endpoints are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoints {
    /// OpenID Connect discovery from this issuer.
    Discover(Url),
    /// Plain OAuth 2.0 with endpoints given explicitly (no discovery, no ID token).
    OAuth2(Box<OAuth2Endpoints>),
}

pub use crate::provider::presets::{ClaimMap, OAuth2Endpoints};

/// One identity provider.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// Identifier used by the SPA (`POST /bff/login {"provider"}`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// OpenID Connect or plain OAuth 2.0.
    pub kind: ProviderKind,
    /// Where its endpoints come from.
    pub endpoints: Endpoints,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
    /// Scopes to request.
    pub scopes: Vec<String>,
    /// Extra authorization-request parameters.
    pub auth_params: Vec<(String, String)>,
    /// How to read the user from a plain OAuth 2.0 user endpoint.
    pub claims: ClaimMap,
    /// Microsoft multi-tenant: ID tokens' issuer is this with `{tenantid}` = `tid`.
    pub issuer_template: Option<String>,
    /// Push authorization requests (RFC 9126) when the provider supports it.
    pub par: bool,
    /// The preset it came from, if any (the SPA shows its icon).
    pub preset: Option<String>,
}

/// Which token the API proxy attaches for an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiToken {
    /// The signed-in user's access token.
    User,
    /// A client-credentials token of the BFF itself.
    Client,
    /// The user's token when signed in, else the client's.
    UserOrClient,
}

/// An upstream API reachable at `/bff/api/{name}/...`.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Path segment after `/bff/api/`.
    pub name: String,
    /// Base URL requests are forwarded to.
    pub url: Url,
    /// Which token to attach.
    pub token: ApiToken,
    /// Provider whose client-credentials token is used (`client`, `user_or_client`); default the first.
    pub provider: Option<String>,
    /// Scopes of the client-credentials token.
    pub scopes: Vec<String>,
    /// Timeout of one upstream call (default: `http_timeout`).
    pub timeout: Option<Duration>,
    /// Largest request body forwarded (default 1 MiB).
    pub max_body: usize,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Origin the browser sees, e.g. `https://app.example.com` (no path).
    pub public_url: Url,
    /// The built SPA to serve, if any.
    pub static_dir: Option<PathBuf>,
    /// Session settings.
    pub session: SessionSettings,
    /// Providers, in the order the SPA lists them.
    pub providers: Vec<ProviderSettings>,
    /// Upstream APIs for the proxy.
    pub apis: Vec<ApiSettings>,
    /// Log format.
    pub log_format: LogFormat,
    /// Timeout of every outbound call.
    pub http_timeout: Duration,
    /// How long discovery documents and JWKS are kept before being fetched again.
    pub discovery_ttl: Duration,
    /// Refresh an access token that expires within this (capped at half its lifetime).
    pub refresh_skew: Duration,
    /// How long `keyway serve` lets in-flight requests finish after SIGTERM
    /// or Ctrl-C before it exits anyway (still with status 0).
    pub shutdown_timeout: Duration,
}

impl Config {
    /// The redirect URI registered at the providers: `PUBLIC_URL/callback`.
    pub fn redirect_uri(&self) -> Url {
        self.public_url
            .join("/callback")
            .expect("public_url is an origin")
    }

    /// Whether cookies must be `Secure` (and `__Host-` prefixed).
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// A configuration for tests and embedding: one OIDC provider, memory store,
    /// loopback http.
    pub fn for_single_provider(
        public_url: Url,
        issuer: Url,
        client_id: &str,
        client_secret: &str,
    ) -> Self {
        let mut env = BTreeMap::new();
        env.insert("KEYWAY_PUBLIC_URL".to_owned(), public_url.to_string());
        env.insert("KEYWAY_ISSUER".to_owned(), issuer.to_string());
        env.insert("KEYWAY_CLIENT_ID".to_owned(), client_id.to_owned());
        env.insert("KEYWAY_CLIENT_SECRET".to_owned(), client_secret.to_owned());
        env.insert("KEYWAY_SESSION_STORE".to_owned(), "memory".to_owned());
        Self::from_sources(None, &env).expect("valid single-provider configuration")
    }

    /// Loads the file (if any) and overlays the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigErrors> {
        // The whole environment: `client_secret_env` may name any variable.
        let env_all: BTreeMap<String, String> = std::env::vars().collect();
        let file = file.map(Path::to_path_buf).or_else(|| {
            env_all
                .get("KEYWAY_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let parsed = match &file {
            Some(path) => Some(read_file(path)?),
            None => None,
        };
        Self::build(parsed, &env_all)
    }

    /// Builds from TOML text (if any) and an environment map: the testable core of [`Config::load`].
    pub fn from_sources(
        toml_text: Option<&str>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigErrors> {
        let parsed = match toml_text {
            Some(text) => Some(parse_file(text, "config file")?),
            None => None,
        };
        Self::build(parsed, env)
    }

    fn build(
        file: Option<FileConfig>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigErrors> {
        let mut errs = ConfigErrors::default();
        let file = file.unwrap_or_default();
        let var = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();

        // listen
        let listen_raw = var("KEYWAY_LISTEN")
            .map(|v| ("KEYWAY_LISTEN", v))
            .or(file.listen.clone().map(|v| ("listen", v)))
            .unwrap_or(("listen", "127.0.0.1:8080".to_owned()));
        let listen = match listen_raw.1.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                errs.push(
                    listen_raw.0,
                    format!("`{}` is not an address like 127.0.0.1:8080", listen_raw.1),
                );
                "127.0.0.1:8080".parse().expect("literal")
            }
        };

        // public_url
        let public_raw = var("KEYWAY_PUBLIC_URL")
            .map(|v| ("KEYWAY_PUBLIC_URL", v))
            .or(file.public_url.clone().map(|v| ("public_url", v)));
        let public_url = match public_raw {
            Some((name, raw)) => match parse_public_url(&raw) {
                Ok(u) => u,
                Err(e) => {
                    errs.push(name, e);
                    Url::parse("http://127.0.0.1:8080").expect("literal")
                }
            },
            None if listen.ip().is_loopback() => {
                Url::parse(&format!("http://{listen}")).expect("socket address makes a URL")
            }
            None => {
                errs.push(
                    "KEYWAY_PUBLIC_URL",
                    "required when listening on a non-loopback address (the https origin the browser sees)",
                );
                Url::parse("http://127.0.0.1:8080").expect("literal")
            }
        };

        let static_dir = var("KEYWAY_STATIC_DIR")
            .map(PathBuf::from)
            .or(file.static_dir.clone());
        if let Some(dir) = &static_dir
            && !dir.join("index.html").is_file()
        {
            errs.push(
                if var("KEYWAY_STATIC_DIR").is_some() {
                    "KEYWAY_STATIC_DIR"
                } else {
                    "static_dir"
                },
                format!(
                    "`{}` has no index.html (build the SPA with `trunk build --release`)",
                    dir.display()
                ),
            );
        }

        let log_format = match var("KEYWAY_LOG_FORMAT")
            .or(file.log_format.clone())
            .as_deref()
        {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                errs.push(
                    "KEYWAY_LOG_FORMAT",
                    format!("`{other}` is neither `text` nor `json`"),
                );
                LogFormat::Text
            }
        };

        let http_timeout = duration_setting(
            &mut errs,
            "http_timeout",
            var("KEYWAY_HTTP_TIMEOUT").or(file.http_timeout.clone()),
            Duration::from_secs(10),
        );
        let discovery_ttl = duration_setting(
            &mut errs,
            "discovery_ttl",
            var("KEYWAY_DISCOVERY_TTL").or(file.discovery_ttl.clone()),
            Duration::from_secs(3600),
        );
        let refresh_skew = duration_setting(
            &mut errs,
            "refresh_skew",
            var("KEYWAY_REFRESH_SKEW").or(file.refresh_skew.clone()),
            Duration::from_secs(60),
        );
        let shutdown_timeout = duration_setting(
            &mut errs,
            "shutdown_timeout",
            var("KEYWAY_SHUTDOWN_TIMEOUT").or(file.shutdown_timeout.clone()),
            Duration::from_secs(30),
        );

        // session
        let store = match var("KEYWAY_SESSION_STORE")
            .map(|v| ("KEYWAY_SESSION_STORE", v))
            .or(file.session.store.clone().map(|v| ("session.store", v)))
        {
            Some((name, raw)) => StoreSetting::parse(&raw).unwrap_or_else(|e| {
                errs.push(name, e);
                StoreSetting::Memory
            }),
            None => StoreSetting::Sqlite(PathBuf::from("keyway.db")),
        };
        let idle_timeout = duration_setting(
            &mut errs,
            "session.idle_timeout",
            var("KEYWAY_SESSION_IDLE_TIMEOUT").or(file.session.idle_timeout.clone()),
            Duration::from_secs(8 * 3600),
        );
        let absolute_timeout = duration_setting(
            &mut errs,
            "session.absolute_timeout",
            var("KEYWAY_SESSION_ABSOLUTE_TIMEOUT").or(file.session.absolute_timeout.clone()),
            Duration::from_secs(7 * 24 * 3600),
        );
        let login_timeout = duration_setting(
            &mut errs,
            "session.login_timeout",
            var("KEYWAY_LOGIN_TIMEOUT").or(file.session.login_timeout.clone()),
            Duration::from_secs(600),
        );
        let key_source = var("KEYWAY_SESSION_KEY")
            .map(|v| ("KEYWAY_SESSION_KEY", Ok(v)))
            .or_else(|| {
                var("KEYWAY_SESSION_KEY_FILE")
                    .or(file.session.key_file.clone())
                    .map(|p| {
                        (
                            "KEYWAY_SESSION_KEY_FILE",
                            read_secret_file(Path::new(&p)).map(|s| s.expose().to_owned()),
                        )
                    })
            });
        let keys = match key_source {
            None => Vec::new(),
            Some((name, Err(e))) => {
                errs.push(name, e);
                Vec::new()
            }
            Some((name, Ok(raw))) => match parse_session_keys(&raw) {
                Ok(k) => k,
                Err(e) => {
                    errs.push(name, e);
                    Vec::new()
                }
            },
        };
        if keys.is_empty() && store.is_persistent() && !errs.names("KEYWAY_SESSION_KEY") {
            errs.push(
                "KEYWAY_SESSION_KEY",
                format!(
                    "required with the `{store}` store: tokens are encrypted at rest. Make one with `openssl rand -base64 32`"
                ),
            );
        }
        if absolute_timeout < idle_timeout {
            errs.push(
                "session.absolute_timeout",
                "must not be shorter than session.idle_timeout",
            );
        }

        // providers
        let mut providers = Vec::new();
        let env_provider = var("KEYWAY_ISSUER").is_some() || var("KEYWAY_PROVIDER").is_some();
        if env_provider && !file.providers.is_empty() {
            errs.push(
                "KEYWAY_ISSUER",
                "set either KEYWAY_ISSUER/KEYWAY_PROVIDER or [[providers]] in the config file, not both",
            );
        }
        if env_provider {
            let fp = FileProvider {
                id: var("KEYWAY_PROVIDER_ID"),
                name: var("KEYWAY_PROVIDER_NAME"),
                kind: None,
                preset: var("KEYWAY_PROVIDER"),
                issuer: var("KEYWAY_ISSUER"),
                client_id: var("KEYWAY_CLIENT_ID"),
                client_secret_env: None,
                client_secret_file: var("KEYWAY_CLIENT_SECRET_FILE"),
                client_secret: None,
                scopes: var("KEYWAY_SCOPES")
                    .map(|s| s.split_whitespace().map(str::to_owned).collect()),
                auth_params: None,
                par: var("KEYWAY_PAR").map(|v| v == "true" || v == "1"),
                tenant: var("KEYWAY_PROVIDER_TENANT"),
                base_url: var("KEYWAY_PROVIDER_BASE_URL"),
                realm: var("KEYWAY_PROVIDER_REALM"),
                domain: var("KEYWAY_PROVIDER_DOMAIN"),
                ..FileProvider::default()
            };
            let auth_params = match var("KEYWAY_AUTH_PARAMS") {
                Some(raw) => url::form_urlencoded::parse(raw.as_bytes())
                    .into_owned()
                    .collect(),
                None => Vec::new(),
            };
            let secret = var("KEYWAY_CLIENT_SECRET").map(Secret::new);
            if let Some(p) = build_provider(&mut errs, &fp, secret, auth_params, env, "KEYWAY_") {
                providers.push(p);
            }
        } else {
            for (i, fp) in file.providers.iter().enumerate() {
                let auth_params = fp
                    .auth_params
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let prefix = format!("providers[{i}].");
                if let Some(p) = build_provider(&mut errs, fp, None, auth_params, env, &prefix) {
                    if providers.iter().any(|q: &ProviderSettings| q.id == p.id) {
                        errs.push(
                            format!("{prefix}id"),
                            format!("`{}` is used by two providers", p.id),
                        );
                    }
                    providers.push(p);
                }
            }
        }
        if providers.is_empty() && !errs.names("provider") && !errs.names("KEYWAY_") {
            errs.push(
                "KEYWAY_ISSUER",
                "no provider configured: set KEYWAY_ISSUER, KEYWAY_CLIENT_ID and KEYWAY_CLIENT_SECRET, or [[providers]] in a config file",
            );
        }

        // apis
        let mut apis = Vec::new();
        for (i, fa) in file.apis.iter().enumerate() {
            let name_ok = !fa.name.is_empty()
                && fa
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok {
                errs.push(
                    format!("apis[{i}].name"),
                    "use letters, digits, `-` and `_` only",
                );
            }
            let timeout = fa.timeout.as_ref().map(|t| {
                duration_setting(
                    &mut errs,
                    &format!("apis[{i}].timeout"),
                    Some(t.clone()),
                    Duration::from_secs(10),
                )
            });
            if apis.iter().any(|a: &ApiSettings| a.name == fa.name) {
                errs.push(
                    format!("apis[{i}].name"),
                    format!("`{}` is used by two APIs", fa.name),
                );
            }
            match Url::parse(&fa.url) {
                Ok(url)
                    if matches!(url.scheme(), "http" | "https")
                        && url.host().is_some()
                        && url.query().is_none()
                        && url.fragment().is_none() =>
                {
                    apis.push(ApiSettings {
                        name: fa.name.clone(),
                        url,
                        token: fa.token.unwrap_or(ApiToken::User),
                        provider: fa.provider.clone(),
                        scopes: fa.scopes.clone().unwrap_or_default(),
                        timeout,
                        max_body: fa.max_body.unwrap_or(1024 * 1024),
                    })
                }
                _ => errs.push(
                    format!("apis[{i}].url"),
                    format!("`{}` is not an http(s) URL without query", fa.url),
                ),
            }
        }

        for (i, a) in apis.iter().enumerate() {
            if let Some(p) = &a.provider
                && !providers.iter().any(|q| &q.id == p)
            {
                errs.push(
                    format!("apis[{i}].provider"),
                    format!("no provider has id `{p}`"),
                );
            }
        }

        errs.into_result(Config {
            listen,
            public_url,
            static_dir,
            session: SessionSettings {
                store,
                idle_timeout,
                absolute_timeout,
                login_timeout,
                keys,
            },
            providers,
            apis,
            log_format,
            http_timeout,
            discovery_ttl,
            refresh_skew,
            shutdown_timeout,
        })
    }

    /// The effective configuration as TOML-like text, secrets redacted (for `check-config`).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        use std::fmt::Write;
        let _ = writeln!(out, "listen = \"{}\"", self.listen);
        let _ = writeln!(
            out,
            "public_url = \"{}\"",
            self.public_url.as_str().trim_end_matches('/')
        );
        let _ = writeln!(out, "redirect_uri = \"{}\"", self.redirect_uri());
        if let Some(d) = &self.static_dir {
            let _ = writeln!(out, "static_dir = \"{}\"", d.display());
        }
        let _ = writeln!(out, "log_format = \"{:?}\"", self.log_format);
        let _ = writeln!(
            out,
            "http_timeout = \"{}\"",
            humantime::format_duration(self.http_timeout)
        );
        let _ = writeln!(
            out,
            "shutdown_timeout = \"{}\"",
            humantime::format_duration(self.shutdown_timeout)
        );
        let _ = writeln!(out, "\n[session]\nstore = \"{}\"", self.session.store);
        let _ = writeln!(
            out,
            "idle_timeout = \"{}\"",
            humantime::format_duration(self.session.idle_timeout)
        );
        let _ = writeln!(
            out,
            "absolute_timeout = \"{}\"",
            humantime::format_duration(self.session.absolute_timeout)
        );
        let _ = writeln!(
            out,
            "keys = {} configured ([redacted])",
            self.session.keys.len()
        );
        for p in &self.providers {
            let _ = writeln!(
                out,
                "\n[[providers]]\nid = \"{}\"\nname = \"{}\"",
                p.id, p.name
            );
            match &p.endpoints {
                Endpoints::Discover(issuer) => {
                    let _ = writeln!(out, "kind = \"oidc\"\nissuer = \"{issuer}\"");
                }
                Endpoints::OAuth2(e) => {
                    let _ = writeln!(
                        out,
                        "kind = \"oauth2\"\nauthorization_endpoint = \"{}\"\ntoken_endpoint = \"{}\"\nuserinfo_endpoint = \"{}\"",
                        e.authorization, e.token, e.user
                    );
                }
            }
            if let Some(preset) = &p.preset {
                let _ = writeln!(out, "preset = \"{preset}\"");
            }
            if p.par {
                let _ = writeln!(out, "par = true");
            }
            let _ = writeln!(
                out,
                "client_id = \"{}\"\nclient_secret = \"[redacted]\"",
                p.client_id
            );
            let _ = writeln!(out, "scopes = {:?}", p.scopes);
            if !p.auth_params.is_empty() {
                let _ = writeln!(out, "auth_params = {:?}", p.auth_params);
            }
        }
        for a in &self.apis {
            let _ = writeln!(
                out,
                "\n[[apis]]\nname = \"{}\"\nurl = \"{}\"\ntoken = \"{:?}\"",
                a.name, a.url, a.token
            );
        }
        out
    }
}

/// One problem with one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting, as a person would look for it (`KEYWAY_PUBLIC_URL`, `providers[0].issuer`).
    pub setting: String,
    /// What is wrong and how to fix it. Never contains a secret.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.problem)
    }
}

/// Every problem found while loading the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    fn push(&mut self, setting: impl Into<String>, problem: impl Into<String>) {
        self.0.push(ConfigError {
            setting: setting.into(),
            problem: problem.into(),
        });
    }
    fn names(&self, needle: &str) -> bool {
        self.0.iter().any(|e| e.setting.contains(needle))
    }
    fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    public_url: Option<String>,
    static_dir: Option<PathBuf>,
    log_format: Option<String>,
    http_timeout: Option<String>,
    discovery_ttl: Option<String>,
    refresh_skew: Option<String>,
    shutdown_timeout: Option<String>,
    #[serde(default)]
    session: FileSession,
    #[serde(default)]
    providers: Vec<FileProvider>,
    #[serde(default)]
    apis: Vec<FileApi>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSession {
    store: Option<String>,
    idle_timeout: Option<String>,
    absolute_timeout: Option<String>,
    login_timeout: Option<String>,
    key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProvider {
    id: Option<String>,
    name: Option<String>,
    kind: Option<String>,
    preset: Option<String>,
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret_env: Option<String>,
    client_secret_file: Option<String>,
    /// Refused: secrets come from env or files.
    client_secret: Option<toml::Value>,
    scopes: Option<Vec<String>>,
    auth_params: Option<BTreeMap<String, String>>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    emails_endpoint: Option<String>,
    claims: Option<FileClaims>,
    par: Option<bool>,
    tenant: Option<String>,
    base_url: Option<String>,
    realm: Option<String>,
    domain: Option<String>,
    authorization_server: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileClaims {
    sub: Option<OneOrMany>,
    name: Option<OneOrMany>,
    email: Option<OneOrMany>,
    picture: Option<OneOrMany>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileApi {
    name: String,
    url: String,
    token: Option<ApiToken>,
    provider: Option<String>,
    scopes: Option<Vec<String>>,
    timeout: Option<String>,
    max_body: Option<usize>,
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            setting: "--config".into(),
            problem: format!("cannot read `{}`: {e}", path.display()),
        }])
    })?;
    parse_file(&text, &path.display().to_string())
}

fn parse_file(text: &str, what: &str) -> Result<FileConfig, ConfigErrors> {
    toml::from_str(text).map_err(|e| {
        // toml's message names the key and line; it quotes no value of ours
        // beyond the offending line, and secrets are never inline.
        let msg = e.message().to_owned();
        let at = e
            .span()
            .map(|s| format!(" (line {})", text[..s.start].lines().count().max(1)))
            .unwrap_or_default();
        ConfigErrors(vec![ConfigError {
            setting: what.to_owned(),
            problem: format!("{msg}{at}"),
        }])
    })
}

fn parse_public_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{raw}` must be an http(s) origin"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{raw}` must be an origin only, like https://app.example.com (no path)"
        ));
    }
    if url.scheme() == "http" && !is_loopback_host(&url) {
        return Err(format!(
            "`{raw}` uses plain http on a non-loopback host: use https (plain http is only for 127.0.0.1/localhost development)"
        ));
    }
    Ok(url)
}

/// Whether a URL's host is a loopback address or `localhost`.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn duration_setting(
    errs: &mut ConfigErrors,
    name: &str,
    raw: Option<String>,
    default: Duration,
) -> Duration {
    match raw {
        None => default,
        Some(r) => match humantime::parse_duration(&r) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                errs.push(
                    name,
                    format!("`{r}` is not a duration like `30s`, `8h` or `7d`"),
                );
                default
            }
        },
    }
}

fn parse_session_keys(raw: &str) -> Result<Vec<SessionKey>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, k)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(k)
                .map_err(|_| {
                    format!(
                        "key #{} is not base64 (make one with `openssl rand -base64 32`)",
                        i + 1
                    )
                })?;
            let arr: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
                format!("key #{} is {} bytes; it must be 32", i + 1, b.len())
            })?;
            Ok(SessionKey(arr))
        })
        .collect()
}

/// Authorization-request parameters Keyway sets itself.
const RESERVED_AUTH_PARAMS: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "request_uri",
    "request",
];

fn read_secret_file(path: &Path) -> Result<Secret, String> {
    std::fs::read_to_string(path)
        .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}

fn build_provider(
    errs: &mut ConfigErrors,
    fp: &FileProvider,
    env_secret: Option<Secret>,
    auth_params: Vec<(String, String)>,
    env: &BTreeMap<String, String>,
    prefix: &str,
) -> Option<ProviderSettings> {
    use crate::provider::presets::{self, PresetParams};
    let is_env = prefix == "KEYWAY_";
    let name_of = |file_key: &str, env_key: &str| {
        if is_env {
            env_key.to_owned()
        } else {
            format!("{prefix}{file_key}")
        }
    };
    let before = errs.0.len();
    if fp.client_secret.is_some() {
        errs.push(
            name_of("client_secret", "KEYWAY_CLIENT_SECRET"),
            "secrets are not accepted inline: use client_secret_env or client_secret_file",
        );
    }
    for (k, _) in &auth_params {
        if RESERVED_AUTH_PARAMS.contains(&k.as_str()) {
            errs.push(
                name_of("auth_params", "KEYWAY_AUTH_PARAMS"),
                format!("`{k}` is set by Keyway itself and cannot be overridden"),
            );
        }
    }
    let parse_url = |errs: &mut ConfigErrors, key: &str, env_key: &str, raw: &str| -> Option<Url> {
        match Url::parse(raw) {
            Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && is_loopback_host(&u)) => {
                Some(u)
            }
            Ok(_) => {
                errs.push(
                    name_of(key, env_key),
                    format!("`{raw}` must be https (http only on loopback)"),
                );
                None
            }
            Err(e) => {
                errs.push(name_of(key, env_key), format!("`{raw}` is not a URL: {e}"));
                None
            }
        }
    };

    // The preset (if any) gives defaults; explicit settings win.
    let preset = match fp.preset.as_deref() {
        None | Some("oidc") => None,
        Some(name) => {
            let params = PresetParams {
                tenant: fp.tenant.clone(),
                base_url: fp.base_url.clone(),
                realm: fp.realm.clone(),
                domain: fp.domain.clone(),
                authorization_server: fp.authorization_server.clone(),
            };
            match presets::resolve(name, &params) {
                Ok(p) => Some(p),
                Err(e) => {
                    errs.push(name_of("preset", "KEYWAY_PROVIDER"), e);
                    None
                }
            }
        }
    };
    let kind = match fp.kind.as_deref() {
        None => preset.as_ref().map(|p| p.kind).unwrap_or(
            if fp.token_endpoint.is_some() && fp.issuer.is_none() {
                ProviderKind::Oauth2
            } else {
                ProviderKind::Oidc
            },
        ),
        Some("oidc") => ProviderKind::Oidc,
        Some("oauth2") => ProviderKind::Oauth2,
        Some(other) => {
            errs.push(
                name_of("kind", "KEYWAY_PROVIDER_KIND"),
                format!("`{other}` is neither `oidc` nor `oauth2`"),
            );
            ProviderKind::Oidc
        }
    };
    let endpoints = match kind {
        ProviderKind::Oidc => {
            let issuer = match (&fp.issuer, preset.as_ref().and_then(|p| p.issuer.clone())) {
                (Some(raw), _) => parse_url(errs, "issuer", "KEYWAY_ISSUER", raw),
                (None, Some(u)) => Some(u),
                (None, None) => {
                    if fp.preset.as_deref() != Some("oidc") || !errs.names("preset") {
                        errs.push(
                            name_of("issuer", "KEYWAY_ISSUER"),
                            "set an issuer (discovery URL) or a preset",
                        );
                    }
                    None
                }
            };
            issuer.map(Endpoints::Discover)
        }
        ProviderKind::Oauth2 => {
            let base = preset.as_ref().and_then(|p| p.oauth2.clone());
            let pick = |errs: &mut ConfigErrors,
                        key: &str,
                        given: &Option<String>,
                        fallback: Option<Url>| match given {
                Some(raw) => parse_url(errs, key, key, raw),
                None => fallback,
            };
            let authorization = pick(
                errs,
                "authorization_endpoint",
                &fp.authorization_endpoint,
                base.as_ref().map(|b| b.authorization.clone()),
            );
            let token = pick(
                errs,
                "token_endpoint",
                &fp.token_endpoint,
                base.as_ref().map(|b| b.token.clone()),
            );
            let user = pick(
                errs,
                "userinfo_endpoint",
                &fp.userinfo_endpoint,
                base.as_ref().map(|b| b.user.clone()),
            );
            let revocation = pick(
                errs,
                "revocation_endpoint",
                &fp.revocation_endpoint,
                base.as_ref().and_then(|b| b.revocation.clone()),
            );
            for (value, key) in [
                (&authorization, "authorization_endpoint"),
                (&token, "token_endpoint"),
                (&user, "userinfo_endpoint"),
            ] {
                if value.is_none() && !errs.names(key) {
                    errs.push(name_of(key, key), "required for a plain OAuth 2.0 provider");
                }
            }
            match (authorization, token, user) {
                (Some(authorization), Some(token), Some(user)) => {
                    Some(Endpoints::OAuth2(Box::new(OAuth2Endpoints {
                        authorization,
                        token,
                        user,
                        emails: match &fp.emails_endpoint {
                            Some(raw) => parse_url(errs, "emails_endpoint", "emails_endpoint", raw),
                            None => base.as_ref().and_then(|b| b.emails.clone()),
                        },
                        revocation,
                    })))
                }
                _ => None,
            }
        }
    };
    let client_id = fp.client_id.clone().filter(|s| !s.is_empty());
    if client_id.is_none() {
        errs.push(
            name_of("client_id", "KEYWAY_CLIENT_ID"),
            "missing: the client id registered at the provider",
        );
    }
    let secret = if let Some(s) = env_secret {
        Some(s)
    } else if let Some(var_name) = &fp.client_secret_env {
        match env.get(var_name).filter(|v| !v.is_empty()) {
            Some(v) => Some(Secret::new(v.clone())),
            None => {
                errs.push(
                    name_of("client_secret_env", "KEYWAY_CLIENT_SECRET"),
                    format!("environment variable `{var_name}` is not set"),
                );
                None
            }
        }
    } else if let Some(path) = &fp.client_secret_file {
        match read_secret_file(Path::new(path)) {
            Ok(s) if !s.is_empty() => Some(s),
            Ok(_) => {
                errs.push(
                    name_of("client_secret_file", "KEYWAY_CLIENT_SECRET_FILE"),
                    format!("`{path}` is empty"),
                );
                None
            }
            Err(e) => {
                errs.push(
                    name_of("client_secret_file", "KEYWAY_CLIENT_SECRET_FILE"),
                    e,
                );
                None
            }
        }
    } else {
        errs.push(
            name_of("client_secret_env", "KEYWAY_CLIENT_SECRET"),
            "missing: the client secret (Keyway is a confidential client)",
        );
        None
    };
    let id = fp
        .id
        .clone()
        .or_else(|| fp.preset.clone().filter(|p| p != "oidc"))
        .unwrap_or_else(|| "default".to_owned());
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        errs.push(
            name_of("id", "KEYWAY_PROVIDER_ID"),
            format!("`{id}`: use letters, digits, `-` and `_` only"),
        );
    }
    let name = fp.name.clone().unwrap_or_else(|| {
        preset
            .as_ref()
            .map(|p| p.name.to_owned())
            .or_else(|| match &endpoints {
                Some(Endpoints::Discover(u)) => u.host_str().map(str::to_owned),
                Some(Endpoints::OAuth2(e)) => e.authorization.host_str().map(str::to_owned),
                None => None,
            })
            .unwrap_or_else(|| id.clone())
    });
    let default_scopes = preset
        .as_ref()
        .map(|p| p.scopes.clone())
        .unwrap_or_else(|| match kind {
            ProviderKind::Oidc => vec!["openid".into(), "profile".into(), "email".into()],
            ProviderKind::Oauth2 => Vec::new(),
        });
    let scopes = fp.scopes.clone().unwrap_or(default_scopes);
    if kind == ProviderKind::Oidc && !scopes.iter().any(|s| s == "openid") {
        errs.push(
            name_of("scopes", "KEYWAY_SCOPES"),
            "an OpenID Connect provider needs the `openid` scope",
        );
    }
    let mut claims = preset
        .as_ref()
        .map(|p| p.claims.clone())
        .unwrap_or_default();
    if let Some(c) = &fp.claims {
        if let Some(v) = c.sub.clone() {
            claims.sub = v.into_vec();
        }
        if let Some(v) = c.name.clone() {
            claims.name = v.into_vec();
        }
        if let Some(v) = c.email.clone() {
            claims.email = v.into_vec();
        }
        if let Some(v) = c.picture.clone() {
            claims.picture = v.into_vec();
        }
    }
    if errs.0.len() > before {
        return None;
    }
    Some(ProviderSettings {
        id,
        name,
        kind,
        endpoints: endpoints?,
        client_id: client_id?,
        client_secret: secret?,
        scopes,
        auth_params,
        claims,
        issuer_template: preset.as_ref().and_then(|p| p.issuer_template.clone()),
        par: fp.par.unwrap_or(false),
        preset: fp.preset.clone().filter(|p| p != "oidc"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn env_alone_is_enough_for_one_provider() {
        let c = Config::from_sources(
            None,
            &env(&[
                ("KEYWAY_ISSUER", "http://127.0.0.1:9000"),
                ("KEYWAY_CLIENT_ID", "app"),
                ("KEYWAY_CLIENT_SECRET", "s3cret"),
                ("KEYWAY_SESSION_KEY", KEY),
                ("KEYWAY_AUTH_PARAMS", "prompt=consent&access_type=offline"),
            ]),
        )
        .unwrap();
        assert_eq!(c.providers.len(), 1);
        assert_eq!(c.providers[0].scopes, ["openid", "profile", "email"]);
        assert_eq!(
            c.providers[0].auth_params[1],
            ("access_type".into(), "offline".into())
        );
        assert_eq!(c.session.store, StoreSetting::Sqlite("keyway.db".into()));
        assert_eq!(c.redirect_uri().as_str(), "http://127.0.0.1:8080/callback");
        assert!(!c.is_https());
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!c.describe().contains("s3cret"));
    }

    #[test]
    fn plain_http_is_refused_off_loopback() {
        let e = Config::from_sources(
            None,
            &env(&[
                ("KEYWAY_PUBLIC_URL", "http://app.example.com"),
                ("KEYWAY_ISSUER", "https://sso.example.com"),
                ("KEYWAY_CLIENT_ID", "app"),
                ("KEYWAY_CLIENT_SECRET", "s"),
                ("KEYWAY_SESSION_STORE", "memory"),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert_eq!(e.0[0].setting, "KEYWAY_PUBLIC_URL");
    }

    #[test]
    fn persistent_store_needs_a_key_and_bad_keys_are_named() {
        let base = [
            ("KEYWAY_ISSUER", "https://sso.example.com"),
            ("KEYWAY_CLIENT_ID", "app"),
            ("KEYWAY_CLIENT_SECRET", "s"),
        ];
        let e = Config::from_sources(None, &env(&base)).unwrap_err();
        assert_eq!(e.0[0].setting, "KEYWAY_SESSION_KEY");
        let mut bad = base.to_vec();
        bad.push(("KEYWAY_SESSION_KEY", "c2hvcnQ="));
        let e = Config::from_sources(None, &env(&bad)).unwrap_err();
        assert!(e.0[0].problem.contains("must be 32"), "{e}");
        let mut two = base.to_vec();
        let pair = format!("{KEY},{KEY}");
        two.push(("KEYWAY_SESSION_KEY", &pair));
        assert_eq!(
            Config::from_sources(None, &env(&two))
                .unwrap()
                .session
                .keys
                .len(),
            2
        );
    }

    #[test]
    fn file_with_several_providers_and_secret_from_env() {
        let text = r#"
            public_url = "https://app.example.com"
            [session]
            store = "memory"
            idle_timeout = "1h"
            [[providers]]
            id = "corp"
            issuer = "https://sso.example.com/realms/main"
            client_id = "keyway"
            client_secret_env = "CORP_SECRET"
            auth_params = { prompt = "consent" }
            [[providers]]
            id = "other"
            issuer = "https://other.example.com"
            client_id = "k2"
            client_secret_env = "OTHER_SECRET"
            [[apis]]
            name = "orders"
            url = "https://orders.internal.example/v1"
        "#;
        let c = Config::from_sources(
            Some(text),
            &env(&[("CORP_SECRET", "a"), ("OTHER_SECRET", "b")]),
        )
        .unwrap();
        assert_eq!(c.providers.len(), 2);
        assert_eq!(c.providers[0].client_secret.expose(), "a");
        assert_eq!(c.session.idle_timeout, Duration::from_secs(3600));
        assert_eq!(c.apis[0].token, ApiToken::User);
        assert!(c.is_https());
    }

    #[test]
    fn inline_secret_and_unknown_keys_are_refused() {
        let text = r#"
            [session]
            store = "memory"
            [[providers]]
            issuer = "https://sso.example.com"
            client_id = "keyway"
            client_secret = "inline-secret-value"
        "#;
        let e = Config::from_sources(Some(text), &BTreeMap::new()).unwrap_err();
        assert_eq!(e.0[0].setting, "providers[0].client_secret");
        assert!(!e.to_string().contains("inline-secret-value"));
        let e = Config::from_sources(Some("lisen = \"x\""), &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("lisen"), "{e}");
    }

    #[test]
    fn missing_everything_names_the_issuer() {
        let e =
            Config::from_sources(None, &env(&[("KEYWAY_SESSION_STORE", "memory")])).unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert_eq!(e.0[0].setting, "KEYWAY_ISSUER");
    }

    #[test]
    fn redis_password_is_redacted_in_display() {
        let s = StoreSetting::parse("redis://:pw123@localhost:6379").unwrap();
        assert!(!s.to_string().contains("pw123"));
    }

    #[test]
    fn redis_urls_are_checked() {
        for ok in [
            "redis://127.0.0.1:6379",
            "rediss://cache.example.com:6380",
            "redis://:pw@cache:6379/2",
            "redis://user:pw@cache",
        ] {
            assert!(
                matches!(StoreSetting::parse(ok), Ok(StoreSetting::Redis(_))),
                "{ok}"
            );
        }
        for bad in [
            "redis://",
            "redis://host:notaport",
            "redis://:s3cret@host/db",
        ] {
            let e = StoreSetting::parse(bad).unwrap_err();
            assert!(!e.contains("s3cret"), "{e}");
        }
    }
}

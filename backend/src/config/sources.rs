//! Where each setting comes from: the TOML file, overlaid by `KEYWAY_*`
//! environment variables, layered with `figment`, which remembers for every
//! value the source that gave it. So a problem is always reported under the
//! name the user actually wrote: `KEYWAY_LOG_FORMAT` when the value came from
//! the environment, `log_format` when it came from the file.
//!
//! The environment variables are a fixed table ([`ENV`]): each names one key
//! of the file's model, and says how its text is read (a word list, a
//! form-encoded map, a boolean). The table is the single place that relates
//! the two spellings, in both directions.

use super::error::{ConfigError, ConfigErrors};
use super::raw::RawConfig;
use figment::providers::Format;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use std::collections::BTreeMap;

/// The name of the environment layer's source (what `find_metadata` reports).
const ENV_SOURCE: &str = "KEYWAY_* environment variables";

/// How a variable's text becomes a value of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The text itself.
    Text,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`).
    Bool,
    /// A non-negative integer.
    Number,
    /// Space-separated words (`KEYWAY_SCOPES`).
    Words,
    /// Form-encoded pairs (`KEYWAY_AUTH_PARAMS=prompt=consent&x=y`).
    Form,
}

/// Every `KEYWAY_*` variable and the key of the model it sets. The single
/// provider of the environment is `providers.0`.
const ENV: &[(&str, &str, Shape)] = &[
    ("KEYWAY_LISTEN", "listen", Shape::Text),
    ("KEYWAY_PUBLIC_URL", "public_url", Shape::Text),
    ("KEYWAY_STATIC_DIR", "static_dir", Shape::Text),
    ("KEYWAY_LOG_FORMAT", "log_format", Shape::Text),
    ("KEYWAY_HTTP_TIMEOUT", "http_timeout", Shape::Text),
    ("KEYWAY_DISCOVERY_TTL", "discovery_ttl", Shape::Text),
    ("KEYWAY_REFRESH_SKEW", "refresh_skew", Shape::Text),
    ("KEYWAY_SHUTDOWN_TIMEOUT", "shutdown_timeout", Shape::Text),
    ("KEYWAY_TLS_CA_FILE", "tls_ca_file", Shape::Text),
    (
        "KEYWAY_HEADER_TIMEOUT",
        "server.header_timeout",
        Shape::Text,
    ),
    ("KEYWAY_BODY_TIMEOUT", "server.body_timeout", Shape::Text),
    ("KEYWAY_MAX_BODY", "server.max_body", Shape::Number),
    (
        "KEYWAY_MAX_HEADER_BYTES",
        "server.max_header_bytes",
        Shape::Number,
    ),
    ("KEYWAY_SESSION_STORE", "session.store", Shape::Text),
    (
        "KEYWAY_SESSION_IDLE_TIMEOUT",
        "session.idle_timeout",
        Shape::Text,
    ),
    (
        "KEYWAY_SESSION_ABSOLUTE_TIMEOUT",
        "session.absolute_timeout",
        Shape::Text,
    ),
    ("KEYWAY_LOGIN_TIMEOUT", "session.login_timeout", Shape::Text),
    ("KEYWAY_SESSION_KEY", "session.key", Shape::Text),
    ("KEYWAY_SESSION_KEY_FILE", "session.key_file", Shape::Text),
    ("KEYWAY_ISSUER", "providers.0.issuer", Shape::Text),
    ("KEYWAY_PROVIDER", "providers.0.preset", Shape::Text),
    ("KEYWAY_PROVIDER_ID", "providers.0.id", Shape::Text),
    ("KEYWAY_PROVIDER_NAME", "providers.0.name", Shape::Text),
    ("KEYWAY_PROVIDER_KIND", "providers.0.kind", Shape::Text),
    ("KEYWAY_CLIENT_ID", "providers.0.client_id", Shape::Text),
    (
        "KEYWAY_CLIENT_SECRET",
        "providers.0.client_secret",
        Shape::Text,
    ),
    (
        "KEYWAY_CLIENT_SECRET_FILE",
        "providers.0.client_secret_file",
        Shape::Text,
    ),
    ("KEYWAY_SCOPES", "providers.0.scopes", Shape::Words),
    ("KEYWAY_AUTH_PARAMS", "providers.0.auth_params", Shape::Form),
    ("KEYWAY_PAR", "providers.0.par", Shape::Bool),
    ("KEYWAY_PROVIDER_TENANT", "providers.0.tenant", Shape::Text),
    (
        "KEYWAY_PROVIDER_BASE_URL",
        "providers.0.base_url",
        Shape::Text,
    ),
    ("KEYWAY_PROVIDER_REALM", "providers.0.realm", Shape::Text),
    ("KEYWAY_PROVIDER_DOMAIN", "providers.0.domain", Shape::Text),
    (
        "KEYWAY_PROVIDER_AUTHORIZATION_SERVER",
        "providers.0.authorization_server",
        Shape::Text,
    ),
    ("KEYWAY_PROFILE", "providers.0.profile", Shape::Text),
    ("KEYWAY_DPOP", "providers.0.dpop", Shape::Bool),
    ("KEYWAY_CLIENT_AUTH", "providers.0.client_auth", Shape::Text),
    ("KEYWAY_PRIVATE_KEY", "providers.0.private_key", Shape::Text),
    (
        "KEYWAY_PRIVATE_KEY_FILE",
        "providers.0.private_key_file",
        Shape::Words,
    ),
    (
        "KEYWAY_PRIVATE_KEY_ALG",
        "providers.0.private_key_alg",
        Shape::Text,
    ),
    (
        "KEYWAY_ASSERTION_AUDIENCE",
        "providers.0.assertion_audience",
        Shape::Text,
    ),
    ("KEYWAY_CLOCK_SKEW", "clock_skew", Shape::Text),
    (
        "KEYWAY_ACR_ADVISORY",
        "providers.0.acr_advisory",
        Shape::Bool,
    ),
];

/// The environment variable that sets model key `path`, if any.
fn env_var_of(path: &str) -> Option<&'static str> {
    ENV.iter().find(|(_, p, _)| *p == path).map(|(v, _, _)| *v)
}

/// `providers.0.issuer` → `providers[0].issuer` (how the file spells it).
fn file_key(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.') {
        if part.bytes().all(|b| b.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// A `KEYWAY_*` environment variable.
    Env,
    /// The TOML file.
    File,
    /// Nowhere: the default applies.
    Default,
}

/// The `KEYWAY_*` variables as a figment layer.
struct EnvLayer {
    dict: Dict,
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_SOURCE).interpolater(|_: &Profile, keys: &[&str]| {
            let path = keys.join(".");
            env_var_of(&path)
                .map(str::to_owned)
                .unwrap_or_else(|| file_key(&path))
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// Reads one variable's text into a model value, or says why it cannot.
fn shaped(shape: Shape, text: &str) -> Result<Value, String> {
    Ok(match shape {
        Shape::Text => Value::from(text.to_owned()),
        Shape::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Value::from(true),
            "false" | "0" | "no" => Value::from(false),
            _ => return Err(format!("`{text}` is neither `true` nor `false`")),
        },
        Shape::Number => Value::from(
            text.parse::<usize>()
                .map_err(|_| format!("`{text}` is not a whole number"))?,
        ),
        Shape::Words => Value::from(
            text.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        ),
        Shape::Form => {
            let mut dict = Dict::new();
            for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
                dict.insert(k.into_owned(), Value::from(v.into_owned()));
            }
            Value::from(dict)
        }
    })
}

/// Puts `value` at `path` (`a.b`, `providers.0.c`) into `dict`.
fn insert_at(dict: &mut Dict, path: &str, value: Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let leaf = parts.pop().expect("paths are not empty");
    let mut current = dict;
    for part in parts {
        if part == "0" {
            // `providers.0`: the one provider of the environment, a list of one.
            continue;
        }
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| Value::from(Dict::new()));
        current = match entry {
            Value::Dict(_, d) => d,
            _ => unreachable!("the table's paths never cross a value"),
        };
    }
    current.insert(leaf.to_owned(), value);
}

/// The configuration's sources, layered, and the names of every setting.
pub(super) struct Sources {
    figment: Figment,
    env: BTreeMap<String, String>,
    has_file: bool,
    file_providers: bool,
    env_provider: bool,
    /// Problems found while reading the sources themselves.
    pub errors: ConfigErrors,
}

impl Sources {
    /// Layers the file's text (if any) and the environment.
    pub(super) fn new(file: Option<(&str, &str)>, env: &BTreeMap<String, String>) -> Self {
        let mut errors = ConfigErrors::default();
        let mut figment = Figment::new();
        let mut file_providers = false;
        if let Some((text, label)) = file {
            match toml::from_str::<toml::Table>(text) {
                Ok(table) => {
                    file_providers = table.contains_key("providers");
                    figment = figment.merge(figment::providers::Toml::string(text));
                }
                Err(e) => errors.0.push(toml_error(&e, text, label)),
            }
        }
        let mut dict = Dict::new();
        let mut provider = Dict::new();
        for (var, path, shape) in ENV {
            let Some(text) = env.get(*var).filter(|v| !v.is_empty()) else {
                continue;
            };
            match shaped(*shape, text) {
                Ok(value) if path.starts_with("providers.0.") => {
                    insert_at(&mut provider, &path["providers.0.".len()..], value)
                }
                Ok(value) => insert_at(&mut dict, path, value),
                Err(problem) => errors.push(*var, problem),
            }
        }
        let env_provider = !provider.is_empty();
        if env_provider {
            dict.insert("providers".into(), Value::from(vec![Value::from(provider)]));
        }
        Self {
            figment: figment.merge(EnvLayer { dict }),
            env: env.clone(),
            has_file: file.is_some(),
            file_providers,
            env_provider,
            errors,
        }
    }

    /// The model, filled from both layers; a value of the wrong type is
    /// reported under its setting's name.
    pub(super) fn raw(&mut self) -> RawConfig {
        if self.env_provider && self.file_providers {
            let var = ENV
                .iter()
                .find(|(v, p, _)| p.starts_with("providers.0.") && self.env.contains_key(*v))
                .map(|(v, _, _)| *v)
                .unwrap_or("KEYWAY_ISSUER");
            self.errors.push(
                var,
                "the environment's single-provider variables (KEYWAY_ISSUER, KEYWAY_PROVIDER, KEYWAY_CLIENT_ID, ...) and [[providers]] in the config file are exclusive: use one or the other",
            );
        }
        match self.figment.extract::<RawConfig>() {
            Ok(raw) => raw,
            Err(errors) => {
                for e in errors {
                    let path = e.path.join(".");
                    let setting = match &e.metadata {
                        Some(md) if md.name == ENV_SOURCE => {
                            env_var_of(&path).map(str::to_owned).unwrap_or(path.clone())
                        }
                        _ => file_key(&path),
                    };
                    self.errors.0.push(ConfigError {
                        setting,
                        problem: e.kind.to_string(),
                    });
                }
                RawConfig::default()
            }
        }
    }

    /// Whether the (one) provider comes from the environment.
    pub(super) fn env_provider(&self) -> bool {
        self.env_provider
    }

    /// Where the value at `path` (`session.store`) came from.
    pub(super) fn origin(&self, path: &str) -> Origin {
        match self.figment.find_metadata(path) {
            Some(md) if md.name == ENV_SOURCE => Origin::Env,
            Some(_) => Origin::File,
            None => Origin::Default,
        }
    }

    /// The name of setting `path` as the user wrote it: its variable when the
    /// environment gave it, else its key in the file. A setting given by
    /// neither is named as the user would most likely set it: the file key
    /// when there is a file, else the variable.
    pub(super) fn name(&self, path: &str) -> String {
        let env_name = || env_var_of(path).map(str::to_owned);
        match self.origin(path) {
            Origin::Env => env_name().unwrap_or_else(|| file_key(path)),
            Origin::File => file_key(path),
            Origin::Default if self.has_file => file_key(path),
            Origin::Default => env_name().unwrap_or_else(|| file_key(path)),
        }
    }

    /// The name of field `field` of provider `index`.
    pub(super) fn provider_field(&self, index: usize, field: &str) -> String {
        if self.env_provider {
            env_var_of(&format!("providers.0.{field}"))
                .map(str::to_owned)
                .unwrap_or_else(|| format!("providers[0].{field}"))
        } else {
            format!("providers[{index}].{field}")
        }
    }

    /// A variable of the whole environment (`client_secret_env` may name any).
    pub(super) fn env(&self, var: &str) -> Option<&str> {
        self.env
            .get(var)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Whether a configuration file was given.
    pub(super) fn has_file(&self) -> bool {
        self.has_file
    }
}

/// A TOML syntax error: toml's message (it names the key and quotes the
/// offending line, where no secret can be: secrets are never inline) and
/// the line number.
fn toml_error(e: &toml::de::Error, text: &str, label: &str) -> ConfigError {
    let at = e
        .span()
        .map(|s| format!(" (line {})", text[..s.start].lines().count().max(1)))
        .unwrap_or_default();
    ConfigError {
        setting: label.to_owned(),
        problem: format!("{}{at}", e.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_names_a_distinct_key() {
        for (i, (var, path, _)) in ENV.iter().enumerate() {
            assert!(var.starts_with("KEYWAY_"));
            assert_eq!(env_var_of(path), Some(*var), "{path} is named twice");
            assert!(ENV[i + 1..].iter().all(|(v, _, _)| v != var));
        }
    }

    #[test]
    fn file_keys_spell_list_indices() {
        assert_eq!(file_key("providers.0.issuer"), "providers[0].issuer");
        assert_eq!(file_key("session.store"), "session.store");
        assert_eq!(file_key("apis.2.url"), "apis[2].url");
    }
}

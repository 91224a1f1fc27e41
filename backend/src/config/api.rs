//! `[[apis]]`: the upstream APIs reachable through `/bff/api/{name}/...`.

use super::error::ConfigErrors;
use super::provider::ProviderSettings;
use super::raw::RawApi;
use super::values::{duration, is_identifier, is_loopback_host, unknown_keys};
use serde::Serialize;
use std::time::Duration;
use url::Url;

/// Which token the API proxy attaches for an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct ApiSettings {
    /// Path segment after `/bff/api/`.
    pub name: String,
    /// Base URL requests are forwarded to.
    pub url: Url,
    /// The same base, split once into the parts of an upstream request's
    /// URI (the proxy joins paths below it without parsing a URL per call).
    #[serde(skip)]
    pub base: ApiBase,
    /// Which token to attach.
    pub token: ApiToken,
    /// The provider whose tokens this API takes: a session of another
    /// provider is refused, and client-credentials tokens come from it.
    pub provider: String,
    /// Scopes of the client-credentials token.
    pub scopes: Vec<String>,
    /// Timeout of one upstream call (default: `http_timeout`).
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Largest request body forwarded.
    pub max_body: usize,
    /// Whether a plain-http URL on a host other than loopback is allowed.
    pub allow_http: bool,
    /// Request headers forwarded to this API beyond the standard ones
    /// (lowercase names).
    pub forward_headers: Vec<String>,
    /// Whether the token goes with a DPoP proof (`Authorization: DPoP`):
    /// the provider's `dpop`, whose tokens are bound to a key.
    pub dpop: bool,
    /// Step-up: the authentication levels (`acr`) a session needs for this
    /// API (any of them); empty: any level.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub require_acr: Vec<String>,
    /// Step-up: the longest time since the user authenticated that this
    /// API accepts.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub max_auth_age: Option<Duration>,
}

/// An API's base URL as the parts of an `http::Uri`: what every proxied
/// request's URI starts with.
#[derive(Debug, Clone)]
pub struct ApiBase {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// The base path without its trailing `/` (empty for the root).
    path: String,
}

impl ApiBase {
    /// The parts of `url`; `None` if it is not an absolute http(s) URL that
    /// `http::Uri` takes.
    pub fn new(url: &Url) -> Option<Self> {
        let parts = url.as_str().parse::<http::Uri>().ok()?.into_parts();
        Some(Self {
            scheme: parts.scheme?,
            authority: parts.authority?,
            path: url.path().trim_end_matches('/').to_owned(),
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &http::uri::Scheme {
        &self.scheme
    }

    /// Host and port (and user info, if the URL has any).
    pub fn authority(&self) -> &http::uri::Authority {
        &self.authority
    }

    /// The base path without its trailing `/` (empty for the root).
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Request headers that are never forwarded to an API, whatever its
/// `forward_headers` say: the browser's credentials and CSRF header,
/// hop-by-hop headers, and forwarding headers (Keyway sets its own).
pub(crate) const NEVER_FORWARDED: &[&str] = &[
    "authorization",
    "connection",
    "content-length",
    "cookie",
    "dpop",
    "forwarded",
    "host",
    "keep-alive",
    "origin",
    "proxy-authorization",
    "proxy-connection",
    "referer",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "x-csrf",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// Reads and checks every API.
pub(super) fn read_all(
    errs: &mut ConfigErrors,
    raws: &[RawApi],
    providers: &[ProviderSettings],
) -> Vec<ApiSettings> {
    let mut apis: Vec<ApiSettings> = Vec::new();
    for (i, raw) in raws.iter().enumerate() {
        if let Some(api) = read_one(errs, i, raw, providers) {
            if apis.iter().any(|a| a.name == api.name) {
                errs.push(
                    format!("apis[{i}].name"),
                    format!("`{}` is used by two APIs", api.name),
                );
            }
            apis.push(api);
        }
    }
    apis
}

fn read_one(
    errs: &mut ConfigErrors,
    i: usize,
    raw: &RawApi,
    providers: &[ProviderSettings],
) -> Option<ApiSettings> {
    let before = errs.count();
    let key = |k: &str| format!("apis[{i}].{k}");
    unknown_keys(errs, &key(""), &raw.unknown);
    let name = raw.name.clone().unwrap_or_default();
    if !is_identifier(&name) {
        errs.push(
            key("name"),
            "missing or invalid: use letters, digits, `-` and `_` only",
        );
    }
    let allow_http = raw.allow_http.unwrap_or(false);
    let url = url(errs, &key("url"), raw.url.as_deref(), allow_http);
    let token = match raw.token.as_deref() {
        None | Some("user") => ApiToken::User,
        Some("client") => ApiToken::Client,
        Some("user_or_client") => ApiToken::UserOrClient,
        Some(other) => {
            errs.push(
                key("token"),
                format!("`{other}` is not one of `user`, `client`, `user_or_client`"),
            );
            ApiToken::User
        }
    };
    let provider = provider(errs, &key("provider"), raw.provider.as_deref(), providers);
    let dpop = dpop(errs, &key("dpop"), raw.dpop, provider.as_deref(), providers);
    let forward_headers = forward_headers(
        errs,
        &key("forward_headers"),
        raw.forward_headers.as_deref(),
    );
    let timeout = raw
        .timeout
        .as_deref()
        .map(|t| duration(errs, || key("timeout"), Some(t), Duration::from_secs(10)));
    let (require_acr, max_auth_age) = step_up(errs, &key, raw, token);
    let base = url.as_ref().and_then(|u| {
        let base = ApiBase::new(u);
        if base.is_none() {
            errs.push(
                key("url"),
                format!("`{u}` cannot be the base of a request URI"),
            );
        }
        base
    });
    if errs.count() > before {
        return None;
    }
    Some(ApiSettings {
        name,
        url: url?,
        base: base?,
        token,
        provider: provider?,
        scopes: raw.scopes.clone().unwrap_or_default(),
        timeout,
        max_body: raw.max_body.unwrap_or(1024 * 1024),
        allow_http,
        forward_headers,
        require_acr,
        max_auth_age,
        dpop,
    })
}

/// `require_acr` and `max_auth_age`: levels that travel in RFC 9470
/// challenges and `acr_values` (printable ASCII, no quotes), and only for
/// APIs that take the user's token (a client token has no user to step up).
fn step_up(
    errs: &mut ConfigErrors,
    key: &dyn Fn(&str) -> String,
    raw: &RawApi,
    token: ApiToken,
) -> (Vec<String>, Option<Duration>) {
    let require_acr = raw.require_acr.clone().unwrap_or_default();
    if require_acr.iter().any(|a| {
        a.is_empty()
            || !a
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    }) {
        errs.push(
            key("require_acr"),
            "each level must be printable ASCII without spaces, quotes or backslashes",
        );
    }
    let max_auth_age = raw
        .max_auth_age
        .as_deref()
        .map(|t| duration(errs, || key("max_auth_age"), Some(t), Duration::ZERO));
    if (!require_acr.is_empty() || max_auth_age.is_some()) && token != ApiToken::User {
        errs.push(
            key("require_acr"),
            "require_acr and max_auth_age need token = \"user\": only a user can step up",
        );
    }
    (require_acr, max_auth_age)
}

/// DPoP follows the provider: its tokens are bound (then every call needs a
/// proof) or not (then there is no key to prove). A setting that
/// contradicts the provider is refused rather than sending tokens the API
/// must reject.
fn dpop(
    errs: &mut ConfigErrors,
    setting: &str,
    raw: Option<bool>,
    provider: Option<&str>,
    providers: &[ProviderSettings],
) -> bool {
    let bound = providers
        .iter()
        .find(|p| Some(p.id.as_str()) == provider)
        .is_some_and(|p| p.dpop);
    match raw {
        Some(true) if !bound => errs.push(
            setting,
            "the API's provider does not bind its tokens with DPoP: set dpop = true on the provider",
        ),
        Some(false) if bound => errs.push(
            setting,
            "the API's provider binds its tokens with DPoP, so they go with a proof: remove dpop = false",
        ),
        _ => {}
    }
    bound
}

fn forward_headers(errs: &mut ConfigErrors, setting: &str, raw: Option<&[String]>) -> Vec<String> {
    let mut out = Vec::new();
    for name in raw.unwrap_or_default() {
        let lower = name.to_ascii_lowercase();
        if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
            errs.push(setting, format!("`{name}` is not a header name"));
        } else if NEVER_FORWARDED.contains(&lower.as_str()) {
            errs.push(setting, format!("`{name}` is never forwarded to an API"));
        } else {
            out.push(lower);
        }
    }
    out
}

fn url(errs: &mut ConfigErrors, setting: &str, raw: Option<&str>, allow_http: bool) -> Option<Url> {
    let Some(raw) = raw else {
        errs.push(setting, "missing: the base URL requests are forwarded to");
        return None;
    };
    match Url::parse(raw) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.query().is_none()
                && url.fragment().is_none() =>
        {
            if url.scheme() == "http" && !is_loopback_host(&url) && !allow_http {
                errs.push(
                    setting,
                    format!(
                        "`{raw}` is plain http on a non-loopback host: the access token would cross the network in the clear. Use https, or set allow_http = true for this API"
                    ),
                );
                return None;
            }
            Some(url)
        }
        _ => {
            errs.push(
                setting,
                format!("`{raw}` is not an http(s) URL without query"),
            );
            None
        }
    }
}

/// The API's provider: the one named, or the only one there is.
fn provider(
    errs: &mut ConfigErrors,
    setting: &str,
    raw: Option<&str>,
    providers: &[ProviderSettings],
) -> Option<String> {
    match raw {
        Some(id) if providers.iter().any(|p| p.id == id) => Some(id.to_owned()),
        Some(id) => {
            // Providers that failed to load have been reported already.
            if !providers.is_empty() {
                errs.push(setting, format!("no provider has id `{id}`"));
            }
            None
        }
        None if providers.len() == 1 => Some(providers[0].id.clone()),
        None if providers.is_empty() => None,
        None => {
            errs.push(
                setting,
                "required with several providers: whose tokens this API takes",
            );
            None
        }
    }
}

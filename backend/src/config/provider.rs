//! `[[providers]]` (or the environment's single provider): who users sign in
//! with. The protocol is decided here, once: a provider is either an OpenID
//! Connect provider found by discovery from its issuer, or a plain OAuth 2.0
//! provider with configured endpoints and a claim map. Presets fill in
//! defaults; what the user writes wins.

use super::client_auth::{self, AssertionAudience, ClientAuthMethod};
use super::error::ConfigErrors;
use super::presets::{self, Preset, PresetParams};
use super::profile::{self, Profile};
use super::raw::{RawClaims, RawProvider};
use super::sources::Sources;
use super::values::{is_identifier, secret_file, secure_url, unknown_keys};
use crate::jose::PrivateKey;
use crate::secret::Secret;
use keyway_shared::ProviderKind;
use serde::Serialize;
use url::Url;

/// Where a plain OAuth 2.0 provider's endpoints are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuth2Endpoints {
    /// Authorization endpoint.
    pub authorization: Url,
    /// Token endpoint.
    pub token: Url,
    /// The user endpoint (identity).
    pub user: Url,
    /// GitHub's e-mail list, to find the primary verified address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails: Option<Url>,
    /// RFC 7009 revocation endpoint, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation: Option<Url>,
}

/// How to read the user from a plain OAuth 2.0 user endpoint: for each field,
/// the JSON members to try in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimMap {
    /// Subject (numbers are turned into strings).
    pub sub: Vec<String>,
    /// Display name.
    pub name: Vec<String>,
    /// E-mail.
    pub email: Vec<String>,
    /// Picture URL.
    pub picture: Vec<String>,
}

impl Default for ClaimMap {
    fn default() -> Self {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect();
        Self {
            sub: v(&["sub", "id"]),
            name: v(&["name", "preferred_username", "login"]),
            email: v(&["email"]),
            picture: v(&["picture", "avatar_url"]),
        }
    }
}

/// An OpenID Connect provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OidcSettings {
    /// The issuer, exactly as the provider states it (discovery is fetched
    /// from `issuer/.well-known/openid-configuration` and its `issuer` must
    /// equal this string).
    pub issuer: String,
    /// Microsoft multi-tenant: the issuer of ID tokens is this template with
    /// `{tenantid}` replaced by the token's `tid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_template: Option<String>,
}

/// A plain OAuth 2.0 provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuth2Settings {
    /// Its endpoints.
    pub endpoints: OAuth2Endpoints,
    /// How to read the user from its user endpoint.
    pub claims: ClaimMap,
}

/// The protocol a provider speaks, with what that protocol needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Protocol {
    /// OpenID Connect: discovery, ID tokens.
    Oidc(OidcSettings),
    /// Plain OAuth 2.0: configured endpoints, the user from a user endpoint.
    #[serde(rename = "oauth2")]
    OAuth2(Box<OAuth2Settings>),
}

/// One identity provider.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderSettings {
    /// Identifier used by the SPA (`POST /bff/login {"provider"}`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The preset it came from, if any (the SPA shows its icon).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The client secret (none with `private_key_jwt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// The redirect URI registered at the provider: `PUBLIC_URL/callback/{id}`
    /// (`PUBLIC_URL/callback` when there is only one provider).
    pub redirect_uri: Url,
    /// Scopes to request.
    pub scopes: Vec<String>,
    /// Extra authorization-request parameters.
    pub auth_params: Vec<(String, String)>,
    /// Push authorization requests (RFC 9126) when the provider supports it.
    pub par: bool,
    /// The protocol and its issuer or endpoints.
    pub protocol: Protocol,
    /// The security profile the provider demands (`fapi2`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// Whether its tokens are DPoP-bound (RFC 9449).
    pub dpop: bool,
    /// How Keyway authenticates to it (`None`: `client_secret_basic`, or
    /// `client_secret_post` when the provider advertises only that).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuthMethod>,
    /// The `private_key_jwt` keys: the first signs, all are published at
    /// `/bff/jwks` (shown by key id and algorithm only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub private_keys: Vec<PrivateKey>,
    /// The `aud` of client assertions.
    pub assertion_audience: AssertionAudience,
    /// Whether the ID token's `acr` is only advice: a login whose `acr` is
    /// not among the `acr_values` asked for is kept (and logged) instead of
    /// refused.
    pub acr_advisory: bool,
}

impl ProviderSettings {
    /// OIDC or plain OAuth 2.0, as the contract names it.
    pub fn kind(&self) -> ProviderKind {
        match self.protocol {
            Protocol::Oidc(_) => ProviderKind::Oidc,
            Protocol::OAuth2(_) => ProviderKind::Oauth2,
        }
    }
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
    "dpop_jkt",
];

/// Reads and checks every provider; the redirect URIs follow from how many
/// there are.
pub(super) fn read_all(
    errs: &mut ConfigErrors,
    src: &Sources,
    raws: &[RawProvider],
    public_url: &Url,
) -> Vec<ProviderSettings> {
    let mut providers: Vec<ProviderSettings> = Vec::new();
    for (index, raw) in raws.iter().enumerate() {
        let Some(p) = read_one(errs, &Names { src, index }, raw) else {
            continue;
        };
        if providers.iter().any(|q| q.id == p.id) {
            errs.push(
                src.provider_field(index, "id"),
                format!("`{}` is used by two providers", p.id),
            );
        }
        providers.push(p);
    }
    let single = providers.len() == 1;
    for p in &mut providers {
        let path = if single {
            "/callback".to_owned()
        } else {
            format!("/callback/{}", p.id)
        };
        p.redirect_uri = public_url.join(&path).expect("an origin joins a path");
    }
    providers
}

/// Names the fields of one provider.
pub(super) struct Names<'a> {
    pub(super) src: &'a Sources,
    index: usize,
}

impl Names<'_> {
    pub(super) fn of(&self, field: &str) -> String {
        self.src.provider_field(self.index, field)
    }

    /// `providers[0].` (unknown keys of a provider can only come from the file).
    fn prefix(&self) -> String {
        format!("providers[{}].", self.index)
    }
}

fn read_one(
    errs: &mut ConfigErrors,
    names: &Names<'_>,
    raw: &RawProvider,
) -> Option<ProviderSettings> {
    let before = errs.count();
    unknown_keys(errs, &names.prefix(), &raw.unknown);
    let preset = preset(errs, names, raw);
    let protocol = protocol(errs, names, raw, preset.as_ref());
    let client_id = raw.client_id.clone().filter(|s| !s.is_empty());
    if client_id.is_none() {
        errs.push(
            names.of("client_id"),
            "missing: the client id registered at the provider",
        );
    }
    let oidc = matches!(protocol, Some(Protocol::Oidc(_)));
    let profile = profile::read(errs, names, raw, oidc);
    let auth = client_auth::read(errs, names, raw, profile.profile);
    if !oidc && protocol.is_some() && auth.method.is_some_and(ClientAuthMethod::is_jwt) {
        errs.push(
            names.of("client_auth"),
            "client assertions are supported for OpenID Connect providers only",
        );
    }
    let client_secret = match auth.method {
        Some(m) if !m.needs_secret() => optional_secret(errs, names, raw),
        _ => secret(errs, names, raw),
    };
    let auth_params = auth_params(errs, names, raw);
    let id = raw
        .id
        .clone()
        .or_else(|| raw.preset.clone().filter(|p| p != "oidc"))
        .unwrap_or_else(|| "default".to_owned());
    if !is_identifier(&id) {
        errs.push(
            names.of("id"),
            format!("`{id}`: use letters, digits, `-` and `_` only"),
        );
    }
    let scopes = scopes(errs, names, raw, preset.as_ref(), protocol.as_ref());
    if errs.count() > before {
        return None;
    }
    let protocol = protocol?;
    Some(ProviderSettings {
        name: display_name(raw, preset.as_ref(), &protocol, &id),
        id,
        preset: raw.preset.clone().filter(|p| p != "oidc"),
        client_id: client_id?,
        client_secret: match auth.method {
            Some(m) if !m.needs_secret() => client_secret,
            _ => Some(client_secret?),
        },
        redirect_uri: Url::parse("http://unset.invalid/").expect("literal"),
        scopes,
        auth_params,
        par: profile.par,
        protocol,
        profile: profile.profile,
        dpop: profile.dpop,
        client_auth: auth.method,
        private_keys: auth.keys,
        assertion_audience: auth.audience,
        acr_advisory: raw.acr_advisory.unwrap_or(false),
    })
}

fn preset(errs: &mut ConfigErrors, names: &Names<'_>, raw: &RawProvider) -> Option<Preset> {
    let name = raw.preset.as_deref().filter(|p| *p != "oidc")?;
    let params = PresetParams {
        tenant: raw.tenant.clone(),
        base_url: raw.base_url.clone(),
        realm: raw.realm.clone(),
        domain: raw.domain.clone(),
        authorization_server: raw.authorization_server.clone(),
    };
    presets::resolve(name, &params)
        .map_err(|e| errs.push(names.of("preset"), e))
        .ok()
}

/// OpenID Connect or plain OAuth 2.0: `kind` if given, else the preset's,
/// else OAuth 2.0 when endpoints and no issuer are given, else OIDC.
fn protocol(
    errs: &mut ConfigErrors,
    names: &Names<'_>,
    raw: &RawProvider,
    preset: Option<&Preset>,
) -> Option<Protocol> {
    let from_preset = preset.map(|p| p.protocol.clone());
    let oauth2 = match raw.kind.as_deref() {
        None => match &from_preset {
            Some(p) => matches!(p, Protocol::OAuth2(_)),
            None => raw.token_endpoint.is_some() && raw.issuer.is_none(),
        },
        Some("oidc") => false,
        Some("oauth2") => true,
        Some(other) => {
            errs.push(
                names.of("kind"),
                format!("`{other}` is neither `oidc` nor `oauth2`"),
            );
            return None;
        }
    };
    if oauth2 {
        let base = match from_preset {
            Some(Protocol::OAuth2(o)) => Some(*o),
            _ => None,
        };
        oauth2_settings(errs, names, raw, base).map(|o| Protocol::OAuth2(Box::new(o)))
    } else {
        let base = match from_preset {
            Some(Protocol::Oidc(o)) => Some(o),
            _ => None,
        };
        oidc_settings(errs, names, raw, base).map(Protocol::Oidc)
    }
}

fn oidc_settings(
    errs: &mut ConfigErrors,
    names: &Names<'_>,
    raw: &RawProvider,
    base: Option<OidcSettings>,
) -> Option<OidcSettings> {
    match (&raw.issuer, base) {
        (Some(issuer), _) => match secure_url(issuer) {
            Ok(_) => Some(OidcSettings {
                issuer: issuer.clone(),
                issuer_template: None,
            }),
            Err(e) => {
                errs.push(names.of("issuer"), e);
                None
            }
        },
        (None, Some(base)) => Some(base),
        // A preset that failed has said why already.
        (None, None) if raw.preset.as_deref().is_some_and(|p| p != "oidc") => None,
        (None, None) => {
            errs.push(
                names.of("issuer"),
                "missing: set an issuer (discovery URL) or a preset",
            );
            None
        }
    }
}

fn oauth2_settings(
    errs: &mut ConfigErrors,
    names: &Names<'_>,
    raw: &RawProvider,
    base: Option<OAuth2Settings>,
) -> Option<OAuth2Settings> {
    let before = errs.count();
    let base_endpoints = base.as_ref().map(|b| &b.endpoints);
    let mut pick = |key: &str, given: &Option<String>, fallback: Option<Url>| match given {
        Some(raw) => secure_url(raw)
            .map_err(|e| errs.push(names.of(key), e))
            .ok(),
        None => fallback,
    };
    let authorization = pick(
        "authorization_endpoint",
        &raw.authorization_endpoint,
        base_endpoints.map(|b| b.authorization.clone()),
    );
    let token = pick(
        "token_endpoint",
        &raw.token_endpoint,
        base_endpoints.map(|b| b.token.clone()),
    );
    let user = pick(
        "userinfo_endpoint",
        &raw.userinfo_endpoint,
        base_endpoints.map(|b| b.user.clone()),
    );
    let revocation = pick(
        "revocation_endpoint",
        &raw.revocation_endpoint,
        base_endpoints.and_then(|b| b.revocation.clone()),
    );
    let emails = pick(
        "emails_endpoint",
        &raw.emails_endpoint,
        base_endpoints.and_then(|b| b.emails.clone()),
    );
    let mut claims = base.map(|b| b.claims).unwrap_or_default();
    if let Some(c) = &raw.claims {
        apply_claims(errs, names, &mut claims, c.clone());
    }
    let missing = |value: &Option<Url>| value.is_none();
    for (value, key) in [
        (&authorization, "authorization_endpoint"),
        (&token, "token_endpoint"),
        (&user, "userinfo_endpoint"),
    ] {
        if missing(value) && errs.count() == before {
            errs.push(names.of(key), "required for a plain OAuth 2.0 provider");
        }
    }
    Some(OAuth2Settings {
        endpoints: OAuth2Endpoints {
            authorization: authorization?,
            token: token?,
            user: user?,
            emails,
            revocation,
        },
        claims,
    })
}

fn apply_claims(errs: &mut ConfigErrors, names: &Names<'_>, claims: &mut ClaimMap, c: RawClaims) {
    unknown_keys(errs, &format!("{}.", names.of("claims")), &c.unknown);
    if let Some(v) = c.sub {
        claims.sub = v.into_vec();
    }
    if let Some(v) = c.name {
        claims.name = v.into_vec();
    }
    if let Some(v) = c.email {
        claims.email = v.into_vec();
    }
    if let Some(v) = c.picture {
        claims.picture = v.into_vec();
    }
}

/// The client secret: from the environment (`KEYWAY_CLIENT_SECRET`, or the
/// variable `client_secret_env` names) or a file; never inline in the file.
fn secret(errs: &mut ConfigErrors, names: &Names<'_>, raw: &RawProvider) -> Option<Secret> {
    let src = names.src;
    if raw.client_secret.is_some() && !src.env_provider() {
        errs.push(
            names.of("client_secret"),
            "secrets are not accepted inline: use client_secret_env or client_secret_file",
        );
        return None;
    }
    if let Some(value) = &raw.client_secret {
        return Some(Secret::new(value.clone()));
    }
    if let Some(var) = &raw.client_secret_env {
        return match src.env(var) {
            Some(v) => Some(Secret::new(v)),
            None => {
                errs.push(
                    names.of("client_secret_env"),
                    format!("environment variable `{var}` is not set"),
                );
                None
            }
        };
    }
    if let Some(path) = &raw.client_secret_file {
        return match secret_file(path) {
            Ok(s) if !s.is_empty() => Some(s),
            Ok(_) => {
                errs.push(
                    names.of("client_secret_file"),
                    format!("`{}` is empty", path.display()),
                );
                None
            }
            Err(e) => {
                errs.push(names.of("client_secret_file"), e);
                None
            }
        };
    }
    let setting = if src.env_provider() {
        names.of("client_secret")
    } else {
        names.of("client_secret_env")
    };
    errs.push(
        setting,
        "missing: the client secret (Keyway is a confidential client)",
    );
    None
}

/// The client secret when one is given, for a method that does not need it.
fn optional_secret(
    errs: &mut ConfigErrors,
    names: &Names<'_>,
    raw: &RawProvider,
) -> Option<Secret> {
    let given = raw.client_secret.is_some()
        || raw.client_secret_env.is_some()
        || raw.client_secret_file.is_some();
    if given {
        secret(errs, names, raw)
    } else {
        None
    }
}

fn auth_params(
    errs: &mut ConfigErrors,
    names: &Names<'_>,
    raw: &RawProvider,
) -> Vec<(String, String)> {
    let params: Vec<(String, String)> = raw
        .auth_params
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    for (k, _) in &params {
        if RESERVED_AUTH_PARAMS.contains(&k.as_str()) {
            errs.push(
                names.of("auth_params"),
                format!("`{k}` is set by Keyway itself and cannot be overridden"),
            );
        }
    }
    params
}

fn scopes(
    errs: &mut ConfigErrors,
    names: &Names<'_>,
    raw: &RawProvider,
    preset: Option<&Preset>,
    protocol: Option<&Protocol>,
) -> Vec<String> {
    let oidc = matches!(protocol, Some(Protocol::Oidc(_)));
    let scopes = raw.scopes.clone().unwrap_or_else(|| match preset {
        Some(p) => p.scopes.clone(),
        None if oidc => vec!["openid".into(), "profile".into(), "email".into()],
        None => Vec::new(),
    });
    if oidc && !scopes.iter().any(|s| s == "openid") {
        errs.push(
            names.of("scopes"),
            "an OpenID Connect provider needs the `openid` scope",
        );
    }
    scopes
}

fn display_name(
    raw: &RawProvider,
    preset: Option<&Preset>,
    protocol: &Protocol,
    id: &str,
) -> String {
    raw.name.clone().unwrap_or_else(|| {
        preset
            .map(|p| p.name.to_owned())
            .or_else(|| match protocol {
                Protocol::Oidc(o) => Url::parse(&o.issuer)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned)),
                Protocol::OAuth2(o) => o.endpoints.authorization.host_str().map(str::to_owned),
            })
            .unwrap_or_else(|| id.to_owned())
    })
}

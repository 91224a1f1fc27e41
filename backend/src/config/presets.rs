//! Presets: providers Keyway knows by name, so that a user configures only a
//! client id and secret (and, for some, a tenant, realm, domain or base URL).
//! A preset is a set of configuration defaults: the protocol and its
//! endpoints or issuer, the scopes, how to read the user. Settings the user
//! writes win over them. The setup guide of each is in `docs/providers.md`.
//!
//! Issuers are kept as the exact strings the providers publish (Google's
//! has no trailing slash, Auth0's has one): OpenID Connect compares issuers
//! as strings, so `https://accounts.google.com/` would not match.

use super::provider::{ClaimMap, OAuth2Endpoints, OAuth2Settings, OidcSettings, Protocol};
use url::Url;

/// Names accepted by `preset = "..."` / `KEYWAY_PROVIDER`.
pub const NAMES: &[&str] = &[
    "github",
    "google",
    "microsoft",
    "gitlab",
    "keycloak",
    "auth0",
    "okta",
    "oidc",
];

/// Preset parameters a user may have to give.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PresetParams {
    /// Microsoft Entra tenant (`common`, `organizations`, `consumers` or a tenant id / domain).
    pub tenant: Option<String>,
    /// Base URL of a self-hosted GitLab or a Keycloak server.
    pub base_url: Option<String>,
    /// Keycloak realm.
    pub realm: Option<String>,
    /// Auth0 / Okta domain (`example.eu.auth0.com`, `example.okta.com`).
    pub domain: Option<String>,
    /// Okta authorization server id (default: the org authorization server).
    pub authorization_server: Option<String>,
}

/// What a preset resolves to: defaults for a provider's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Preset {
    /// Display name.
    pub name: &'static str,
    /// The protocol, with its issuer or endpoints.
    pub protocol: Protocol,
    /// Default scopes.
    pub scopes: Vec<String>,
}

fn url(s: &str) -> Result<Url, String> {
    Url::parse(s).map_err(|e| format!("`{s}` is not a URL: {e}"))
}

fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| (*x).to_owned()).collect()
}

fn oidc(name: &'static str, issuer: String) -> Result<Preset, String> {
    url(&issuer)?;
    Ok(Preset {
        name,
        protocol: Protocol::Oidc(OidcSettings {
            issuer,
            issuer_template: None,
        }),
        scopes: scopes(&["openid", "profile", "email"]),
    })
}

fn required<'a>(value: &'a Option<String>, what: &str, preset: &str) -> Result<&'a str, String> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("the `{preset}` preset needs `{what}`"))
}

fn host_only(domain: &str, preset: &str) -> Result<String, String> {
    let d = domain
        .trim()
        .trim_start_matches("https://")
        .trim_end_matches('/');
    if d.is_empty() || d.contains('/') || d.contains(':') || d.contains('@') {
        return Err(format!(
            "the `{preset}` preset's domain must be a host name like example.com"
        ));
    }
    Ok(d.to_owned())
}

/// GitHub: plain OAuth 2.0, the user from `/user`, the e-mail from `/user/emails`.
fn github() -> Result<Preset, String> {
    Ok(Preset {
        name: "GitHub",
        protocol: Protocol::OAuth2(Box::new(OAuth2Settings {
            endpoints: OAuth2Endpoints {
                authorization: url("https://github.com/login/oauth/authorize")?,
                token: url("https://github.com/login/oauth/access_token")?,
                user: url("https://api.github.com/user")?,
                emails: Some(url("https://api.github.com/user/emails")?),
                revocation: None,
            },
            claims: ClaimMap {
                sub: scopes(&["id"]),
                name: scopes(&["name", "login"]),
                email: scopes(&["email"]),
                picture: scopes(&["avatar_url"]),
            },
        })),
        scopes: scopes(&["read:user", "user:email"]),
    })
}

/// Microsoft Entra: a tenant, or `common`/`organizations`/`consumers` with
/// the templated issuer.
fn microsoft(p: &PresetParams) -> Result<Preset, String> {
    let tenant = p
        .tenant
        .as_deref()
        .filter(|t| !t.is_empty())
        .unwrap_or("common");
    if !tenant
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err("the `microsoft` preset's tenant must be a tenant id, a domain, `common`, `organizations` or `consumers`".into());
    }
    let mut preset = oidc(
        "Microsoft",
        format!("https://login.microsoftonline.com/{tenant}/v2.0"),
    )?;
    if matches!(tenant, "common" | "organizations" | "consumers")
        && let Protocol::Oidc(oidc) = &mut preset.protocol
    {
        oidc.issuer_template = Some("https://login.microsoftonline.com/{tenantid}/v2.0".into());
    }
    Ok(preset)
}

/// Resolves a preset by name with its parameters.
pub(crate) fn resolve(preset: &str, p: &PresetParams) -> Result<Preset, String> {
    match preset {
        "github" => github(),
        "google" => oidc("Google", "https://accounts.google.com".into()),
        "microsoft" => microsoft(p),
        "gitlab" => {
            let base = p
                .base_url
                .as_deref()
                .unwrap_or("https://gitlab.com")
                .trim_end_matches('/');
            oidc("GitLab", base.to_owned())
        }
        "keycloak" => {
            let base = required(&p.base_url, "base_url", "keycloak")?.trim_end_matches('/');
            let realm = required(&p.realm, "realm", "keycloak")?;
            if realm.contains('/') {
                return Err("the `keycloak` preset's realm may not contain `/`".into());
            }
            oidc("Keycloak", format!("{base}/realms/{realm}"))
        }
        "auth0" => {
            let domain = host_only(required(&p.domain, "domain", "auth0")?, "auth0")?;
            // Auth0's issuer ends with a slash.
            oidc("Auth0", format!("https://{domain}/"))
        }
        "okta" => {
            let domain = host_only(required(&p.domain, "domain", "okta")?, "okta")?;
            let issuer = match p.authorization_server.as_deref() {
                Some(server) if !server.is_empty() => format!("https://{domain}/oauth2/{server}"),
                _ => format!("https://{domain}"),
            };
            oidc("Okta", issuer)
        }
        "oidc" => Err("the `oidc` preset needs an `issuer`".into()),
        other => Err(format!(
            "unknown preset `{other}`; known: {}",
            NAMES.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> PresetParams {
        PresetParams::default()
    }

    fn issuer(preset: &str, p: &PresetParams) -> String {
        match resolve(preset, p).unwrap().protocol {
            Protocol::Oidc(o) => o.issuer,
            Protocol::OAuth2(_) => panic!("{preset} is OIDC"),
        }
    }

    #[test]
    fn github_is_plain_oauth2_with_json_endpoints() {
        let g = resolve("github", &params()).unwrap();
        let Protocol::OAuth2(o) = g.protocol else {
            panic!("GitHub is plain OAuth 2.0")
        };
        let OAuth2Settings {
            endpoints: e,
            claims,
        } = *o;
        assert_eq!(
            e.authorization.as_str(),
            "https://github.com/login/oauth/authorize"
        );
        assert_eq!(
            e.token.as_str(),
            "https://github.com/login/oauth/access_token"
        );
        assert_eq!(e.user.as_str(), "https://api.github.com/user");
        assert_eq!(
            e.emails.unwrap().as_str(),
            "https://api.github.com/user/emails"
        );
        assert_eq!(g.scopes, ["read:user", "user:email"]);
        assert_eq!(claims.sub, ["id"]);
    }

    /// The issuers exactly as the providers publish them (OIDC compares strings).
    #[test]
    fn oidc_presets_resolve_their_issuers_exactly() {
        assert_eq!(issuer("google", &params()), "https://accounts.google.com");
        let ms = resolve("microsoft", &params()).unwrap();
        let Protocol::Oidc(ms) = ms.protocol else {
            panic!()
        };
        assert_eq!(ms.issuer, "https://login.microsoftonline.com/common/v2.0");
        assert_eq!(
            ms.issuer_template.as_deref(),
            Some("https://login.microsoftonline.com/{tenantid}/v2.0")
        );
        let single = PresetParams {
            tenant: Some("contoso.onmicrosoft.com".into()),
            ..params()
        };
        let Protocol::Oidc(single) = resolve("microsoft", &single).unwrap().protocol else {
            panic!()
        };
        assert!(single.issuer_template.is_none());
        assert_eq!(issuer("gitlab", &params()), "https://gitlab.com");
        let own = PresetParams {
            base_url: Some("https://git.example.com/".into()),
            ..params()
        };
        assert_eq!(issuer("gitlab", &own), "https://git.example.com");
        let kc = PresetParams {
            base_url: Some("https://sso.example.com".into()),
            realm: Some("main".into()),
            ..params()
        };
        assert_eq!(
            issuer("keycloak", &kc),
            "https://sso.example.com/realms/main"
        );
        let a0 = PresetParams {
            domain: Some("acme.eu.auth0.com".into()),
            ..params()
        };
        assert_eq!(issuer("auth0", &a0), "https://acme.eu.auth0.com/");
        let okta = PresetParams {
            domain: Some("acme.okta.com".into()),
            authorization_server: Some("default".into()),
            ..params()
        };
        assert_eq!(
            issuer("okta", &okta),
            "https://acme.okta.com/oauth2/default"
        );
    }

    #[test]
    fn missing_or_bad_parameters_are_named() {
        assert!(
            resolve("keycloak", &params())
                .unwrap_err()
                .contains("base_url")
        );
        assert!(resolve("auth0", &params()).unwrap_err().contains("domain"));
        let bad = PresetParams {
            domain: Some("evil.com/x".into()),
            ..params()
        };
        assert!(resolve("okta", &bad).is_err());
        assert!(
            resolve(
                "microsoft",
                &PresetParams {
                    tenant: Some("a/b".into()),
                    ..params()
                }
            )
            .is_err()
        );
        assert!(resolve("nope", &params()).unwrap_err().contains("known:"));
        for name in NAMES.iter().filter(|n| **n != "oidc") {
            let full = PresetParams {
                base_url: Some("https://x.example".into()),
                realm: Some("r".into()),
                domain: Some("x.example".into()),
                ..params()
            };
            assert!(resolve(name, &full).is_ok(), "{name}");
        }
    }
}

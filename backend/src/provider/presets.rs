//! Presets: providers Keyway knows by name, so that a user configures only a
//! client id and secret (and, for some, a tenant, realm, domain or base URL).
//!
//! Each preset says where the endpoints are, which scopes to ask for, how to
//! read the user, and the provider's quirks. The setup guide of each is in
//! `docs/providers.md`.

use keyway_shared::ProviderKind;
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
pub struct PresetParams {
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

/// Where a plain OAuth 2.0 provider's endpoints are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Endpoints {
    /// Authorization endpoint.
    pub authorization: Url,
    /// Token endpoint.
    pub token: Url,
    /// The user endpoint (identity).
    pub user: Url,
    /// GitHub's e-mail list, to find the primary verified address.
    pub emails: Option<Url>,
    /// RFC 7009 revocation endpoint, if any.
    pub revocation: Option<Url>,
}

/// How to read the user from a plain OAuth 2.0 user endpoint: for each field,
/// the JSON members to try in order.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// What a preset resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    /// Display name.
    pub name: &'static str,
    /// Protocol.
    pub kind: ProviderKind,
    /// OIDC issuer (discovery), for OIDC presets.
    pub issuer: Option<Url>,
    /// Microsoft multi-tenant: the issuer of ID tokens is this template with
    /// `{tenantid}` replaced by the token's `tid`.
    pub issuer_template: Option<String>,
    /// Endpoints, for plain OAuth 2.0 presets.
    pub oauth2: Option<OAuth2Endpoints>,
    /// Default scopes.
    pub scopes: Vec<String>,
    /// How to read the user (OAuth 2.0 presets).
    pub claims: ClaimMap,
}

fn url(s: &str) -> Result<Url, String> {
    Url::parse(s).map_err(|e| format!("`{s}` is not a URL: {e}"))
}

fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| (*x).to_owned()).collect()
}

fn oidc(name: &'static str, issuer: Url) -> Preset {
    Preset {
        name,
        kind: ProviderKind::Oidc,
        issuer: Some(issuer),
        issuer_template: None,
        oauth2: None,
        scopes: scopes(&["openid", "profile", "email"]),
        claims: ClaimMap::default(),
    }
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

/// Resolves a preset by name with its parameters.
pub fn resolve(preset: &str, p: &PresetParams) -> Result<Preset, String> {
    match preset {
        "github" => Ok(Preset {
            name: "GitHub",
            kind: ProviderKind::Oauth2,
            issuer: None,
            issuer_template: None,
            oauth2: Some(OAuth2Endpoints {
                authorization: url("https://github.com/login/oauth/authorize")?,
                token: url("https://github.com/login/oauth/access_token")?,
                user: url("https://api.github.com/user")?,
                emails: Some(url("https://api.github.com/user/emails")?),
                revocation: None,
            }),
            scopes: scopes(&["read:user", "user:email"]),
            claims: ClaimMap {
                sub: scopes(&["id"]),
                name: scopes(&["name", "login"]),
                email: scopes(&["email"]),
                picture: scopes(&["avatar_url"]),
            },
        }),
        "google" => Ok(oidc("Google", url("https://accounts.google.com")?)),
        "microsoft" => {
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
                url(&format!("https://login.microsoftonline.com/{tenant}/v2.0"))?,
            );
            if matches!(tenant, "common" | "organizations" | "consumers") {
                preset.issuer_template =
                    Some("https://login.microsoftonline.com/{tenantid}/v2.0".into());
            }
            Ok(preset)
        }
        "gitlab" => {
            let base = p
                .base_url
                .as_deref()
                .unwrap_or("https://gitlab.com")
                .trim_end_matches('/');
            let mut preset = oidc("GitLab", url(base)?);
            preset.scopes = scopes(&["openid", "profile", "email"]);
            Ok(preset)
        }
        "keycloak" => {
            let base = required(&p.base_url, "base_url", "keycloak")?.trim_end_matches('/');
            let realm = required(&p.realm, "realm", "keycloak")?;
            if realm.contains('/') {
                return Err("the `keycloak` preset's realm may not contain `/`".into());
            }
            Ok(oidc("Keycloak", url(&format!("{base}/realms/{realm}"))?))
        }
        "auth0" => {
            let domain = host_only(required(&p.domain, "domain", "auth0")?, "auth0")?;
            // Auth0's issuer ends with a slash.
            Ok(oidc("Auth0", url(&format!("https://{domain}/"))?))
        }
        "okta" => {
            let domain = host_only(required(&p.domain, "domain", "okta")?, "okta")?;
            let issuer = match p.authorization_server.as_deref() {
                Some(server) if !server.is_empty() => format!("https://{domain}/oauth2/{server}"),
                _ => format!("https://{domain}"),
            };
            Ok(oidc("Okta", url(&issuer)?))
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

    #[test]
    fn github_is_plain_oauth2_with_json_endpoints() {
        let g = resolve("github", &params()).unwrap();
        assert_eq!(g.kind, ProviderKind::Oauth2);
        let e = g.oauth2.unwrap();
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
        assert_eq!(g.claims.sub, ["id"]);
    }

    #[test]
    fn oidc_presets_resolve_their_issuers() {
        assert_eq!(
            resolve("google", &params())
                .unwrap()
                .issuer
                .unwrap()
                .as_str(),
            "https://accounts.google.com/"
        );
        let ms = resolve("microsoft", &params()).unwrap();
        assert_eq!(
            ms.issuer.unwrap().as_str(),
            "https://login.microsoftonline.com/common/v2.0"
        );
        assert_eq!(
            ms.issuer_template.as_deref(),
            Some("https://login.microsoftonline.com/{tenantid}/v2.0")
        );
        let single = resolve(
            "microsoft",
            &PresetParams {
                tenant: Some("contoso.onmicrosoft.com".into()),
                ..params()
            },
        )
        .unwrap();
        assert!(single.issuer_template.is_none());
        assert_eq!(
            resolve("gitlab", &params())
                .unwrap()
                .issuer
                .unwrap()
                .as_str(),
            "https://gitlab.com/"
        );
        let own = PresetParams {
            base_url: Some("https://git.example.com/".into()),
            ..params()
        };
        assert_eq!(
            resolve("gitlab", &own).unwrap().issuer.unwrap().as_str(),
            "https://git.example.com/"
        );
        let kc = PresetParams {
            base_url: Some("https://sso.example.com".into()),
            realm: Some("main".into()),
            ..params()
        };
        assert_eq!(
            resolve("keycloak", &kc).unwrap().issuer.unwrap().as_str(),
            "https://sso.example.com/realms/main"
        );
        let a0 = PresetParams {
            domain: Some("acme.eu.auth0.com".into()),
            ..params()
        };
        assert_eq!(
            resolve("auth0", &a0).unwrap().issuer.unwrap().as_str(),
            "https://acme.eu.auth0.com/"
        );
        let okta = PresetParams {
            domain: Some("acme.okta.com".into()),
            authorization_server: Some("default".into()),
            ..params()
        };
        assert_eq!(
            resolve("okta", &okta).unwrap().issuer.unwrap().as_str(),
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

//! How Keyway authenticates to a provider (`client_auth`) and, for
//! `private_key_jwt`, its private keys (`private_key`, `private_key_env`,
//! `private_key_file`, `private_key_alg`) and the audience of its client
//! assertions (`assertion_audience`). A key that does not parse stops
//! start-up here, named by the setting that gave it.

use super::error::ConfigErrors;
use super::profile::Profile;
use super::provider::Names;
use super::raw::RawProvider;
use crate::jose::{PrivateKey, SigningAlg};
use serde::Serialize;

/// How Keyway authenticates to the token, PAR and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// `Authorization: Basic` with the client id and secret (RFC 6749).
    ClientSecretBasic,
    /// The client id and secret in the form body (RFC 6749).
    ClientSecretPost,
    /// A JWT signed (HS256) with the client secret (RFC 7523, OIDC Core 9).
    ClientSecretJwt,
    /// A JWT signed with Keyway's private key (RFC 7523, OIDC Core 9); the
    /// public keys are at `/bff/jwks`.
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    /// Whether the method needs the client secret.
    pub fn needs_secret(self) -> bool {
        self != Self::PrivateKeyJwt
    }

    /// Whether the method sends a client assertion (a JWT).
    pub fn is_jwt(self) -> bool {
        matches!(self, Self::ClientSecretJwt | Self::PrivateKeyJwt)
    }
}

/// The `aud` of Keyway's client assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssertionAudience {
    /// The provider's issuer identifier (what FAPI 2.0 requires).
    Issuer,
    /// The token endpoint's URL, whatever the endpoint called (RFC 7523's
    /// original reading).
    TokenEndpoint,
    /// The URL of the endpoint called (token, PAR or revocation).
    Endpoint,
}

/// What [`read`] found.
pub(super) struct ClientAuthSettings {
    /// The method (`None`: negotiated from discovery, as before).
    pub method: Option<ClientAuthMethod>,
    /// The private keys, the signing one first.
    pub keys: Vec<PrivateKey>,
    /// The audience of assertions.
    pub audience: AssertionAudience,
}

/// Reads `client_auth`, the private keys and `assertion_audience`.
pub(super) fn read(
    errs: &mut ConfigErrors,
    names: &Names<'_>,
    raw: &RawProvider,
    profile: Option<Profile>,
) -> ClientAuthSettings {
    let fapi2 = profile == Some(Profile::Fapi2);
    let rsa_alg = rsa_alg(errs, names, raw, fapi2);
    let keys = keys(errs, names, raw, rsa_alg);
    let method = match raw.client_auth.as_deref() {
        None if fapi2 || !keys.is_empty() => Some(ClientAuthMethod::PrivateKeyJwt),
        None => None,
        Some("client_secret_basic") => Some(ClientAuthMethod::ClientSecretBasic),
        Some("client_secret_post") => Some(ClientAuthMethod::ClientSecretPost),
        Some("client_secret_jwt") => Some(ClientAuthMethod::ClientSecretJwt),
        Some("private_key_jwt") => Some(ClientAuthMethod::PrivateKeyJwt),
        Some(other) => {
            errs.push(
                names.of("client_auth"),
                format!("`{other}` is not one of client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt"),
            );
            None
        }
    };
    if fapi2 && raw.client_auth.is_some() && method != Some(ClientAuthMethod::PrivateKeyJwt) {
        errs.push(
            names.of("client_auth"),
            "profile = \"fapi2\" needs private_key_jwt (FAPI 2.0 allows private_key_jwt or mTLS; Keyway does private_key_jwt)",
        );
    }
    let none_given = raw.private_key.is_none()
        && raw.private_key_env.is_none()
        && raw.private_key_file.is_none();
    if method == Some(ClientAuthMethod::PrivateKeyJwt) && none_given {
        let why = if fapi2 {
            "missing: profile = \"fapi2\" authenticates with private_key_jwt, which needs a private key (private_key_file or private_key_env)"
        } else {
            "missing: client_auth = private_key_jwt needs a private key (private_key_file or private_key_env)"
        };
        errs.push(key_setting(names, raw), why);
    }
    if !keys.is_empty() && method.is_some_and(|m| m != ClientAuthMethod::PrivateKeyJwt) {
        errs.push(
            key_setting(names, raw),
            "a private key is used only with client_auth = private_key_jwt",
        );
    }
    if fapi2 && let Some(k) = keys.iter().find(|k| k.alg() == SigningAlg::RS256) {
        errs.push(
            key_setting(names, raw),
            format!(
                "key `{}` signs with RS256, which FAPI 2.0 does not allow: use PS256 or ES256",
                k.kid()
            ),
        );
    }
    let audience = audience(errs, names, raw, fapi2);
    ClientAuthSettings {
        method,
        keys,
        audience,
    }
}

/// The setting a key problem is reported under: the one that was given.
fn key_setting(names: &Names<'_>, raw: &RawProvider) -> String {
    if raw.private_key.is_some() {
        names.of("private_key")
    } else if raw.private_key_env.is_some() {
        names.of("private_key_env")
    } else {
        names.of("private_key_file")
    }
}

fn rsa_alg(
    errs: &mut ConfigErrors,
    names: &Names<'_>,
    raw: &RawProvider,
    fapi2: bool,
) -> SigningAlg {
    let default = if fapi2 {
        SigningAlg::PS256
    } else {
        SigningAlg::RS256
    };
    match raw.private_key_alg.as_deref() {
        None => default,
        Some(name) => {
            match SigningAlg::parse(name) {
                Some(alg @ (SigningAlg::RS256 | SigningAlg::PS256)) => alg,
                _ => {
                    errs.push(
                    names.of("private_key_alg"),
                    format!("`{name}`: RSA keys sign with RS256 or PS256 (P-256 keys always with ES256)"),
                );
                    default
                }
            }
        }
    }
}

/// Every private key given, in order: `private_key` (environment only),
/// the variable `private_key_env` names, then each `private_key_file`.
fn keys(
    errs: &mut ConfigErrors,
    names: &Names<'_>,
    raw: &RawProvider,
    rsa_alg: SigningAlg,
) -> Vec<PrivateKey> {
    let src = names.src;
    let mut texts: Vec<(String, String, String)> = Vec::new();
    if let Some(text) = &raw.private_key {
        if src.env_provider() {
            texts.push((names.of("private_key"), String::new(), text.clone()));
        } else {
            errs.push(
                names.of("private_key"),
                "private keys are not accepted inline: use private_key_file or private_key_env",
            );
        }
    }
    if let Some(var) = &raw.private_key_env {
        match src.env(var) {
            Some(text) => texts.push((
                names.of("private_key_env"),
                format!("`{var}`: "),
                text.to_owned(),
            )),
            None => errs.push(
                names.of("private_key_env"),
                format!("environment variable `{var}` is not set"),
            ),
        }
    }
    for path in raw
        .private_key_file
        .clone()
        .map(|f| f.into_vec())
        .unwrap_or_default()
    {
        match std::fs::read_to_string(&path) {
            Ok(text) => texts.push((names.of("private_key_file"), format!("`{path}`: "), text)),
            Err(e) => errs.push(
                names.of("private_key_file"),
                format!("cannot read `{path}`: {e}"),
            ),
        }
    }
    let mut keys: Vec<PrivateKey> = Vec::new();
    for (setting, label, text) in texts {
        match PrivateKey::parse_all(&text, rsa_alg) {
            Ok(parsed) => {
                for key in parsed {
                    if keys.iter().any(|k| k.kid() == key.kid()) {
                        errs.push(
                            &setting,
                            format!("{label}key id `{}` is used twice", key.kid()),
                        );
                    }
                    keys.push(key);
                }
            }
            Err(why) => errs.push(setting, format!("{label}not a usable private key: {why}")),
        }
    }
    keys
}

fn audience(
    errs: &mut ConfigErrors,
    names: &Names<'_>,
    raw: &RawProvider,
    fapi2: bool,
) -> AssertionAudience {
    let audience = match raw.assertion_audience.as_deref() {
        None | Some("issuer") => AssertionAudience::Issuer,
        Some("token_endpoint") => AssertionAudience::TokenEndpoint,
        Some("endpoint") => AssertionAudience::Endpoint,
        Some(other) => {
            errs.push(
                names.of("assertion_audience"),
                format!("`{other}` is not one of issuer, token_endpoint, endpoint"),
            );
            AssertionAudience::Issuer
        }
    };
    if fapi2 && audience != AssertionAudience::Issuer {
        errs.push(
            names.of("assertion_audience"),
            "profile = \"fapi2\" sends the issuer as the assertions' audience (as the FAPI 2.0 Security Profile requires)",
        );
    }
    audience
}

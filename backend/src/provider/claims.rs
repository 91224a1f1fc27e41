//! Who signed in, as Keyway keeps it, and the claims Keyway reads beyond
//! OpenID Connect's standard ones.

use openidconnect::AdditionalClaims;
use openidconnect::core::CoreGenderClaim;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Claims of ID tokens and logout tokens that Keyway reads beyond the
/// standard ones, read through openidconnect's claims types (one decode,
/// after the signature is verified).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeywayClaims {
    /// The provider's session id (back-channel logout names sessions by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Microsoft Entra's tenant id (the templated issuer's `{tenantid}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// Logout tokens: the events (the back-channel logout event must be there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<serde_json::Map<String, Value>>,
    /// Logout tokens: the token's unique id (accepted once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl AdditionalClaims for KeywayClaims {}

/// The claims of a verified ID token or logout token.
pub(crate) type VerifiedClaims = openidconnect::IdTokenClaims<KeywayClaims, CoreGenderClaim>;

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Subject at the provider.
    pub sub: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the e-mail is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// Picture URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
}

impl Identity {
    /// The user of a verified ID token.
    pub fn of_id_token(claims: &VerifiedClaims) -> Self {
        Identity {
            sub: claims.subject().as_str().to_owned(),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified(),
            picture: claims
                .picture()
                .and_then(|p| p.get(None))
                .map(|p| p.as_str().to_owned()),
        }
    }

    /// The user of a plain OAuth 2.0 user endpoint's JSON, read with a
    /// claim map; `None` without a subject.
    pub fn of_user_json(v: &Value, claims: &crate::config::ClaimMap) -> Option<Self> {
        Some(Identity {
            sub: first_string(v, &claims.sub)?,
            name: first_string(v, &claims.name),
            email: first_string(v, &claims.email),
            email_verified: v.get("email_verified").and_then(Value::as_bool),
            picture: first_string(v, &claims.picture),
        })
    }
}

/// The first member of `keys` that is a non-empty string or a number.
fn first_string(v: &Value, keys: &[String]) -> Option<String> {
    keys.iter().find_map(|k| match v.get(k)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClaimMap;

    #[test]
    fn github_user_maps_numeric_id_and_login_fallback() {
        let claims = ClaimMap {
            sub: vec!["id".into()],
            name: vec!["name".into(), "login".into()],
            email: vec!["email".into()],
            picture: vec!["avatar_url".into()],
        };
        let v = serde_json::json!({"id": 583231, "login": "octocat", "name": null, "avatar_url": "https://a/x.png"});
        let id = Identity::of_user_json(&v, &claims).unwrap();
        assert_eq!(id.sub, "583231");
        assert_eq!(id.name.as_deref(), Some("octocat"));
        assert_eq!(id.picture.as_deref(), Some("https://a/x.png"));
        assert!(
            Identity::of_user_json(&serde_json::json!({"login": "x"}), &claims).is_none(),
            "no id, no user"
        );
        assert_eq!(
            Identity::of_user_json(&serde_json::json!({"sub": "s"}), &ClaimMap::default())
                .unwrap()
                .sub,
            "s"
        );
    }
}

//! Client assertions (RFC 7523 §2.2, OpenID Connect Core §9): a short-lived
//! JWT with `iss` = `sub` = the client id, `aud` = the issuer (FAPI 2.0),
//! the token endpoint or the endpoint called, a unique `jti`, `iat` and an
//! `exp` a minute later; signed with Keyway's first private key
//! (`private_key_jwt`) or HS256 with the client secret
//! (`client_secret_jwt`). A fresh one goes with every request: providers
//! accept each `jti` once.

use crate::config::AssertionAudience;
use crate::jose::{self, PrivateKey};
use crate::secret::Secret;
use serde::Serialize;

/// The client assertion type of RFC 7523 §2.2.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long an assertion is valid (seconds).
const LIFETIME: u64 = 60;

/// What a provider's client assertions are made of.
#[derive(Debug, Clone)]
pub struct Assertions {
    /// The signing key (`private_key_jwt`); none: HS256 with the secret.
    pub key: Option<PrivateKey>,
    /// Which `aud` to send.
    pub audience: AssertionAudience,
    /// The provider's issuer identifier.
    pub issuer: String,
    /// The provider's token endpoint.
    pub token_endpoint: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: u64,
    exp: u64,
}

impl Assertions {
    /// `client_assertion_type` and a fresh `client_assertion` for a request
    /// to `url`.
    pub(crate) fn params(
        &self,
        client_id: &str,
        url: &str,
        secret: &Secret,
    ) -> Result<Vec<(String, String)>, String> {
        let aud = match self.audience {
            AssertionAudience::Issuer => self.issuer.as_str(),
            AssertionAudience::TokenEndpoint => self.token_endpoint.as_deref().unwrap_or(url),
            AssertionAudience::Endpoint => url,
        };
        let iat = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = Claims {
            iss: client_id,
            sub: client_id,
            aud,
            jti: jose::random_id(),
            iat,
            exp: iat + LIFETIME,
        };
        let jwt = match &self.key {
            Some(key) => key.sign(&claims, "JWT", false)?,
            None => jose::sign_hs256(&claims, secret)?,
        };
        Ok(vec![
            ("client_assertion_type".to_owned(), JWT_BEARER.to_owned()),
            ("client_assertion".to_owned(), jwt),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn claims_of(params: &[(String, String)]) -> serde_json::Value {
        assert_eq!(
            params[0],
            ("client_assertion_type".into(), JWT_BEARER.into())
        );
        let payload = params[1].1.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn an_assertion_names_the_client_and_its_audience() {
        let (key, _) = PrivateKey::generate_p256();
        let mut a = Assertions {
            key: Some(key),
            audience: AssertionAudience::Issuer,
            issuer: "https://idp.example".into(),
            token_endpoint: Some("https://idp.example/token".into()),
        };
        let secret = Secret::default();
        let first = a
            .params("keyway", "https://idp.example/par", &secret)
            .unwrap();
        let c = claims_of(&first);
        assert_eq!(
            (c["iss"].as_str(), c["sub"].as_str()),
            (Some("keyway"), Some("keyway"))
        );
        assert_eq!(c["aud"], "https://idp.example");
        assert_eq!(
            c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
            LIFETIME
        );
        let second = a
            .params("keyway", "https://idp.example/par", &secret)
            .unwrap();
        assert_ne!(c["jti"], claims_of(&second)["jti"], "a fresh jti each time");
        a.audience = AssertionAudience::TokenEndpoint;
        let c = claims_of(
            &a.params("keyway", "https://idp.example/par", &secret)
                .unwrap(),
        );
        assert_eq!(c["aud"], "https://idp.example/token");
        a.audience = AssertionAudience::Endpoint;
        let c = claims_of(
            &a.params("keyway", "https://idp.example/par", &secret)
                .unwrap(),
        );
        assert_eq!(c["aud"], "https://idp.example/par");
    }
}

//! One verifier for every signed token a provider sends: the ID token of a
//! login, the ID token of a refresh, and the back-channel logout token. All
//! go through openidconnect's `IdTokenVerifier`, with the same rules:
//!
//! - the signature, by a key of the provider's JWKS, with an algorithm from
//!   [`ALLOWED_ALGS`] that the provider advertises: asymmetric only, never
//!   `none`, never HMAC (so a public key or the client secret can never be
//!   used as an HMAC key);
//! - `iss` the provider's issuer (for Microsoft's multi-tenant issuer, the
//!   template with the token's own `tid`), `aud` containing this client and
//!   no untrusted extra audience, `azp` this client when present and
//!   required with several audiences (OpenID Connect Core 3.1.3.7);
//! - `exp` in the future, `iat` at most [`IAT_FUTURE_SKEW`] ahead and at
//!   most [`IAT_MAX_AGE`] old;
//! - and per kind: a login's `nonce` must be the one sent; a refresh's ID
//!   token (Core §12.2) must have the login's subject and no nonce or the
//!   login's; a logout token (Back-Channel Logout 1.0 §2.6) must have no
//!   nonce, `typ` `logout+jwt` when present, the back-channel event, and a
//!   `jti`.

use super::claims::{KeywayClaims, VerifiedClaims};
use super::discovery::Discovered;
use crate::config::OidcSettings;
use openidconnect::core::{
    CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    ClaimsVerificationError, IdToken, JsonWebTokenType, Nonce, SignatureVerificationError,
};
use std::time::Duration;

/// A signed token as openidconnect parses it, with Keyway's extra claims.
pub type SignedToken = IdToken<
    KeywayClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// Signature algorithms Keyway accepts: asymmetric only.
pub const ALLOWED_ALGS: &[CoreJwsSigningAlgorithm] = &[
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// How far in the future a token's `iat` may be (clock skew).
pub const IAT_FUTURE_SKEW: Duration = Duration::from_secs(300);
/// How old a token's `iat` may be when it arrives.
pub const IAT_MAX_AGE: Duration = Duration::from_secs(600);

/// The event a logout token must carry.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What the token is expected to be.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// The ID token of a login: its nonce must be the one sent.
    Login {
        /// The nonce sent in the authorization request.
        nonce: &'a str,
    },
    /// The ID token of a refresh (OpenID Connect Core §12.2).
    Refresh {
        /// The login's subject.
        sub: &'a str,
        /// The login's nonce, if it had one.
        nonce: Option<&'a str>,
    },
    /// A back-channel logout token.
    Logout,
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No key of the provider's JWKS has the token's `kid`: worth fetching
    /// the JWKS again once.
    UnknownKey,
    /// The token failed a check (the reason names it, never the token).
    Invalid(String),
}

/// Verifies `token` against one loaded copy of the provider's discovery.
pub fn verify(
    disc: &Discovered,
    oidc: &OidcSettings,
    client_id: &str,
    token: &SignedToken,
    expect: Expect<'_>,
) -> Result<VerifiedClaims, Refusal> {
    let advertised = disc.metadata.id_token_signing_alg_values_supported();
    let algs: Vec<_> = ALLOWED_ALGS
        .iter()
        .filter(|a| advertised.contains(a))
        .cloned()
        .collect();
    let mut verifier = disc
        .client
        .id_token_verifier()
        .set_allowed_algs(algs)
        .set_issue_time_verifier_fn(issue_time)
        .require_issuer_match(oidc.issuer_template.is_none());
    if matches!(expect, Expect::Logout) {
        let typ = JsonWebTokenType::new("logout+jwt".into())
            .normalize()
            .expect("a valid media type");
        verifier = verifier.set_allowed_jose_types([typ]);
    }
    let claims = match expect {
        Expect::Login { nonce } => token.claims(&verifier, &Nonce::new(nonce.to_owned())),
        Expect::Refresh { nonce, .. } => {
            token.claims(&verifier, |got: Option<&Nonce>| match (got, nonce) {
                (None, _) => Ok(()),
                (Some(got), Some(sent)) if got.secret() == sent => Ok(()),
                _ => Err("the nonce is not the login's".to_owned()),
            })
        }
        Expect::Logout => token.claims(&verifier, |got: Option<&Nonce>| match got {
            None => Ok(()),
            Some(_) => Err("a logout token must not carry a nonce".to_owned()),
        }),
    }
    .map_err(refusal)?
    .clone();
    check_issuer_template(&claims, oidc)?;
    check_azp(&claims, client_id)?;
    match expect {
        Expect::Login { .. } => {}
        Expect::Refresh { sub, .. } => {
            if claims.subject().as_str() != sub {
                return Err(Refusal::Invalid("the subject is not the login's".into()));
            }
        }
        Expect::Logout => check_logout(&claims)?,
    }
    Ok(claims)
}

fn issue_time(iat: chrono::DateTime<chrono::Utc>) -> Result<(), String> {
    let now = chrono::Utc::now();
    let secs = |d: Duration| chrono::TimeDelta::seconds(d.as_secs() as i64);
    if iat > now + secs(IAT_FUTURE_SKEW) {
        Err(format!("issued in the future ({iat})"))
    } else if iat < now - secs(IAT_MAX_AGE) {
        Err(format!("issued too long ago ({iat})"))
    } else {
        Ok(())
    }
}

fn refusal(e: ClaimsVerificationError) -> Refusal {
    match e {
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        ) => Refusal::UnknownKey,
        // openidconnect's messages name the failed check, never the token.
        ClaimsVerificationError::SignatureVerification(inner) => {
            Refusal::Invalid(format!("signature verification failed: {inner}"))
        }
        other => Refusal::Invalid(other.to_string()),
    }
}

/// Multi-tenant: `iss` must be the template with the token's own tenant.
fn check_issuer_template(claims: &VerifiedClaims, oidc: &OidcSettings) -> Result<(), Refusal> {
    let Some(template) = &oidc.issuer_template else {
        return Ok(());
    };
    let tid = claims
        .additional_claims()
        .tid
        .as_deref()
        .filter(|t| is_tenant_id(t))
        .ok_or_else(|| Refusal::Invalid("no valid tid claim".into()))?;
    if claims.issuer().as_str() != template.replace("{tenantid}", tid) {
        return Err(Refusal::Invalid(
            "iss does not match the token's tenant".into(),
        ));
    }
    Ok(())
}

/// Whether `iss` is `template` with some tenant id in place of `{tenantid}`.
pub fn matches_template(template: &str, iss: &str) -> bool {
    let (prefix, suffix) = template.split_once("{tenantid}").unwrap_or((template, ""));
    iss.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .is_some_and(is_tenant_id)
}

fn is_tenant_id(t: &str) -> bool {
    !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// OpenID Connect Core 3.1.3.7 steps 4-5, which openidconnect leaves to clients.
fn check_azp(claims: &VerifiedClaims, client_id: &str) -> Result<(), Refusal> {
    let azp = claims.authorized_party().map(|a| a.as_str());
    if claims.audiences().len() > 1 && azp.is_none() {
        return Err(Refusal::Invalid("several audiences and no azp".into()));
    }
    if azp.is_some_and(|azp| azp != client_id) {
        return Err(Refusal::Invalid("azp is another client".into()));
    }
    Ok(())
}

/// Back-Channel Logout 1.0 §2.6 beyond what every token gets.
fn check_logout(claims: &VerifiedClaims) -> Result<(), Refusal> {
    let extra = claims.additional_claims();
    if !extra
        .events
        .as_ref()
        .and_then(|e| e.get(BACKCHANNEL_EVENT))
        .is_some_and(serde_json::Value::is_object)
    {
        return Err(Refusal::Invalid("no back-channel logout event".into()));
    }
    if extra.jti.as_deref().is_none_or(str::is_empty) {
        return Err(Refusal::Invalid("no jti".into()));
    }
    Ok(())
}

/// A JWT's `iss` and `aud`, read WITHOUT verifying anything: only to choose
/// which provider's verifier checks a back-channel logout token. Never a
/// basis for trust.
pub fn addressed_to(token: &str) -> Option<(String, Vec<String>)> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let iss = v.get("iss")?.as_str()?.to_owned();
    let aud = match v.get("aud")? {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => return None,
    };
    Some((iss, aud))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_templates_match_only_a_tenant_id() {
        let t = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert!(matches_template(
            t,
            "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"
        ));
        for bad in [
            "https://login.microsoftonline.com//v2.0",
            "https://login.microsoftonline.com/a/b/v2.0",
            "https://evil.example/9188040d/v2.0",
            "https://login.microsoftonline.com/x.y/v2.0",
        ] {
            assert!(!matches_template(t, bad), "{bad}");
        }
    }

    #[test]
    fn iat_is_bounded_both_ways() {
        let now = chrono::Utc::now();
        assert!(issue_time(now).is_ok());
        assert!(issue_time(now + chrono::TimeDelta::seconds(600)).is_err());
        assert!(issue_time(now - chrono::TimeDelta::seconds(3600)).is_err());
    }
}

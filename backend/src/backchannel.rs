//! OpenID Connect Back-Channel Logout 1.0: `POST /bff/backchannel-logout`.
//!
//! The provider calls this server to server with a `logout_token` (a JWT).
//! It is not protected by the CSRF header (no browser is involved); the
//! token's signature is the authentication. Validation (spec section 2.6):
//! signature against the provider's JWKS with the same algorithm allow-list
//! as ID tokens (the JWKS fetched again once on an unknown `kid`), `iss` one
//! of the configured providers, `aud` this client, `iat` not in the future
//! beyond the skew nor too old, `exp` not passed, the back-channel logout
//! event in `events`, no `nonce`, and `sid` and/or `sub`. Then every session
//! of that `sid` (else of that `sub`) is destroyed.

use crate::app::App;
use crate::error::Error;
use crate::provider::{ALLOWED_ALGS, Discovered, IAT_FUTURE_SKEW, IAT_MAX_AGE, Provider};
use crate::session::now_secs;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::JsonWebKey;
use openidconnect::core::CoreJwsSigningAlgorithm;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// The event member a logout token must carry.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The protected header of a logout token (the members Keyway reads).
#[derive(Debug, Deserialize)]
pub struct Header {
    /// The signature algorithm.
    pub alg: String,
    /// The key id, if any.
    pub kid: Option<String>,
}

/// The claims of a logout token that Keyway checks.
#[derive(Debug, Deserialize)]
pub struct LogoutClaims {
    /// Issuer.
    pub iss: String,
    /// Audience: a string or an array.
    pub aud: Value,
    /// Issued at.
    pub iat: i64,
    /// Expiry (required by the final spec; checked when present).
    pub exp: Option<i64>,
    /// Subject.
    pub sub: Option<String>,
    /// The provider's session id.
    pub sid: Option<String>,
    /// Events.
    pub events: Option<serde_json::Map<String, Value>>,
    /// Must be absent.
    pub nonce: Option<Value>,
}

fn invalid(why: impl Into<String>) -> Error {
    Error::InvalidLogoutToken(why.into())
}

/// Splits a compact JWS and decodes its header and payload (not yet
/// verified); also returns the signing input (`header.payload`) and the
/// decoded signature. Public for the fuzz target `logout_token`.
pub fn parse(token: &str) -> Result<(Header, Value, &str, Vec<u8>), Error> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("not a compact JWS"));
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| invalid("bad header"))?;
    let payload: Value = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| invalid("bad payload"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| invalid("bad signature encoding"))?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    Ok((header, payload, signing_input, signature))
}

fn verify_signature(
    disc: &Discovered,
    alg: &CoreJwsSigningAlgorithm,
    kid: Option<&str>,
    input: &str,
    signature: &[u8],
) -> Result<(), bool> {
    // Err(true): no key with that kid (worth refetching); Err(false): bad signature.
    let mut candidates = disc
        .metadata
        .jwks()
        .keys()
        .iter()
        .filter(|k| kid.is_none_or(|kid| k.key_id().is_some_and(|id| id.as_str() == kid)))
        .peekable();
    if candidates.peek().is_none() {
        return Err(true);
    }
    if candidates.any(|k| k.verify_signature(alg, input.as_bytes(), signature).is_ok()) {
        Ok(())
    } else {
        Err(false)
    }
}

/// Validates a logout token; returns the provider and its claims.
pub async fn validate(app: &App, token: &str) -> Result<(Arc<Provider>, LogoutClaims), Error> {
    if token.len() > 16 * 1024 {
        return Err(invalid("too long"));
    }
    let (header, payload, input, signature) = parse(token)?;
    let alg: CoreJwsSigningAlgorithm = serde_json::from_value(Value::String(header.alg.clone()))
        .map_err(|_| invalid("unknown alg"))?;
    if !ALLOWED_ALGS.contains(&alg) {
        return Err(invalid(format!("alg {} is not allowed", header.alg)));
    }
    let iss = payload
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("no iss"))?;
    // Find the provider by its issuer (compared exactly).
    let mut found = None;
    for p in app
        .providers
        .iter()
        .filter(|p| p.kind() == keyway_shared::ProviderKind::Oidc)
    {
        if let Ok(d) = p.discovered(&app.http).await
            && d.issuer() == iss
        {
            found = Some((p.clone(), d));
            break;
        }
    }
    let (provider, disc) = found.ok_or_else(|| invalid("iss is not a configured provider"))?;
    if !disc
        .metadata
        .id_token_signing_alg_values_supported()
        .contains(&alg)
    {
        return Err(invalid("alg not advertised by the provider"));
    }
    match verify_signature(&disc, &alg, header.kid.as_deref(), input, &signature) {
        Ok(()) => {}
        Err(true) => {
            let fresh = provider.refetch_jwks(&app.http, &disc).await?;
            verify_signature(&fresh, &alg, header.kid.as_deref(), input, &signature)
                .map_err(|_| invalid("no key of the provider verifies the signature"))?;
        }
        Err(false) => return Err(invalid("bad signature")),
    }
    let claims: LogoutClaims =
        serde_json::from_value(payload).map_err(|_| invalid("missing or malformed claims"))?;
    check_claims(&claims, &provider.settings.client_id, now_secs() as i64)?;
    Ok((provider, claims))
}

/// The claim checks of section 2.6 (after the signature).
pub fn check_claims(c: &LogoutClaims, client_id: &str, now: i64) -> Result<(), Error> {
    let aud_ok = match &c.aud {
        Value::String(s) => s == client_id,
        Value::Array(a) => a.iter().any(|v| v.as_str() == Some(client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid("aud is not this client"));
    }
    if c.iat > now + IAT_FUTURE_SKEW.as_secs() as i64 {
        return Err(invalid("iat is in the future"));
    }
    if c.iat < now - IAT_MAX_AGE.as_secs() as i64 {
        return Err(invalid("iat is too old"));
    }
    if c.exp.is_some_and(|exp| exp <= now) {
        return Err(invalid("expired"));
    }
    if !c
        .events
        .as_ref()
        .and_then(|e| e.get(BACKCHANNEL_EVENT))
        .is_some_and(Value::is_object)
    {
        return Err(invalid("no back-channel logout event"));
    }
    if c.nonce.is_some() {
        return Err(invalid("a logout token must not carry a nonce"));
    }
    if c.sid.is_none() && c.sub.is_none() {
        return Err(invalid("neither sid nor sub"));
    }
    Ok(())
}

/// Validates the token and destroys the matching sessions; returns how many.
pub async fn logout(app: &App, token: &str) -> Result<usize, Error> {
    let (provider, claims) = validate(app, token).await?;
    let ids = match (&claims.sid, &claims.sub) {
        (Some(sid), _) => app.sessions.sessions_by_sid(provider.id(), sid).await?,
        (None, Some(sub)) => app.sessions.sessions_by_sub(provider.id(), sub).await?,
        (None, None) => Vec::new(),
    };
    let mut destroyed = 0;
    for id in ids {
        if app.sessions.load(&id.to_string()).await?.is_some() {
            destroyed += 1;
        }
        app.sessions.delete(id).await?;
    }
    tracing::info!(provider = %provider.id(), sessions = destroyed, "back-channel logout");
    Ok(destroyed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(v: Value) -> LogoutClaims {
        serde_json::from_value(v).unwrap()
    }

    fn good() -> Value {
        serde_json::json!({"iss":"i","aud":"keyway","iat":1000,"exp":1100,"sid":"s",
            "events":{BACKCHANNEL_EVENT:{}}})
    }

    #[test]
    fn claim_checks() {
        assert!(check_claims(&claims(good()), "keyway", 1000).is_ok());
        let mut with_nonce = good();
        with_nonce["nonce"] = "n".into();
        assert!(check_claims(&claims(with_nonce), "keyway", 1000).is_err());
        let mut no_event = good();
        no_event["events"] = serde_json::json!({});
        assert!(check_claims(&claims(no_event), "keyway", 1000).is_err());
        assert!(check_claims(&claims(good()), "other", 1000).is_err());
        assert!(
            check_claims(&claims(good()), "keyway", 1200).is_err(),
            "expired"
        );
        assert!(
            check_claims(&claims(good()), "keyway", 600).is_err(),
            "iat in the future"
        );
        let mut anon = good();
        anon.as_object_mut().unwrap().remove("sid");
        assert!(check_claims(&claims(anon), "keyway", 1000).is_err());
    }

    #[test]
    fn parse_refuses_garbage() {
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // `alg: none` parses, and is then refused by the allow-list.
        let (h, _, _, _) = parse("eyJhbGciOiJub25lIn0.e30.").unwrap();
        let alg: CoreJwsSigningAlgorithm = serde_json::from_value(Value::String(h.alg)).unwrap();
        assert!(!ALLOWED_ALGS.contains(&alg));
    }
}

//! Step-up at login: the ID token's `acr` and `auth_time` checked against
//! what the login asked for (OpenID Connect Core 3.1.3.7, steps 12 and 13).
//!
//! - `max_age` asked: `auth_time` must be there (Core 2) and no older than
//!   `max_age`, give or take the configured clock skew.
//! - `acr_values` asked: the token's `acr` must be one of them, unless the
//!   provider's `acr_advisory` says its `acr` is only advice (then a lower
//!   level is logged and kept).

use super::pending::PendingLogin;
use crate::error::Error;
use crate::provider::error::ProtocolError;
use crate::provider::login_params::AuthLevel;

/// Whether the login's level is what `asked` asked for, at time `now`.
pub(crate) fn check(
    asked: &PendingLogin,
    got: &AuthLevel,
    skew_secs: u64,
    acr_advisory: bool,
    now: u64,
) -> Result<(), Error> {
    let refuse = |why: &str| Err(ProtocolError::InvalidIdToken(why.to_owned()).into());
    if let Some(max_age) = asked.max_age {
        let Some(auth_time) = got.auth_time else {
            return refuse("max_age was asked for, and the ID token has no auth_time");
        };
        if auth_time.saturating_add(max_age).saturating_add(skew_secs) < now {
            return refuse("auth_time is older than the max_age asked for");
        }
        if auth_time > now.saturating_add(skew_secs) {
            return refuse("auth_time is in the future");
        }
    }
    if !asked.acr_values.is_empty() {
        let met = got
            .acr
            .as_ref()
            .is_some_and(|acr| asked.acr_values.contains(acr));
        if !met && acr_advisory {
            tracing::warn!(provider = %asked.provider, acr = ?got.acr, "the ID token's acr is not among the requested values; kept (acr_advisory)");
        } else if !met {
            return refuse("the ID token's acr is not among the acr_values asked for");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(acr: &[&str], max_age: Option<u64>) -> PendingLogin {
        PendingLogin {
            state: "s".into(),
            verifier: "v".into(),
            nonce: None,
            provider: "p".into(),
            issuer: None,
            return_to: "/".into(),
            created_at: 0,
            kind: Default::default(),
            acr_values: acr.iter().map(|a| (*a).to_owned()).collect(),
            max_age,
            dpop_key: None,
        }
    }

    fn level(acr: Option<&str>, auth_time: Option<u64>) -> AuthLevel {
        AuthLevel {
            acr: acr.map(str::to_owned),
            auth_time,
        }
    }

    #[test]
    fn max_age_is_honoured_with_the_skew() {
        let a = asked(&[], Some(300));
        assert!(check(&a, &level(None, Some(1000)), 60, false, 1300).is_ok());
        assert!(check(&a, &level(None, Some(1000)), 60, false, 1360).is_ok());
        assert!(check(&a, &level(None, Some(1000)), 60, false, 1361).is_err());
        assert!(check(&a, &level(None, None), 60, false, 1000).is_err());
        assert!(check(&a, &level(None, Some(2000)), 60, false, 1000).is_err());
        let fresh = asked(&[], Some(0));
        assert!(check(&fresh, &level(None, Some(1000)), 5, false, 1005).is_ok());
        assert!(check(&fresh, &level(None, Some(1000)), 5, false, 1006).is_err());
    }

    #[test]
    fn acr_must_be_one_asked_for_unless_advisory() {
        let a = asked(&["urn:mfa", "urn:hw"], None);
        assert!(check(&a, &level(Some("urn:hw"), None), 0, false, 0).is_ok());
        let e = check(&a, &level(Some("urn:pwd"), None), 0, false, 0).unwrap_err();
        assert_eq!(e.code(), "invalid_id_token");
        assert!(check(&a, &level(None, None), 0, false, 0).is_err());
        assert!(check(&a, &level(Some("urn:pwd"), None), 0, true, 0).is_ok());
        assert!(check(&asked(&[], None), &level(None, None), 0, false, 0).is_ok());
    }
}

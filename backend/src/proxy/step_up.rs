//! Step-up for APIs (RFC 9470, "OAuth 2.0 Step Up Authentication
//! Challenge Protocol"), both ways it can arise:
//!
//! - **Policy**: an API configured with `require_acr` and/or
//!   `max_auth_age` is not called for a session below that level: the
//!   browser gets `401 step_up_required` with the `acr_values` and
//!   `max_age` to sign in with, and the upstream never sees the request.
//! - **Challenge**: an upstream that answers `401` with `WWW-Authenticate:
//!   Bearer error="insufficient_user_authentication", acr_values="…",
//!   max_age=…` has its challenge turned into the same `401` body, so the
//!   SPA handles both alike. The challenge is parsed with `http-auth`
//!   (RFC 9110 challenge lists); its values are checked like a login's
//!   (printable ASCII levels, a whole number of seconds) and dropped when
//!   they are not.

use crate::config::ApiSettings;
use crate::error::StepUp;
use crate::session::data::SessionData;

/// The RFC 9470 error code of a step-up challenge.
pub(crate) const INSUFFICIENT_USER_AUTHENTICATION: &str = "insufficient_user_authentication";

/// What `api` asks of `session` beyond what it has, at time `now` (with
/// `skew` seconds of tolerance on `auth_time`); `None` when it has enough.
pub(crate) fn required(
    api: &ApiSettings,
    session: &SessionData,
    now: u64,
    skew: u64,
) -> Option<StepUp> {
    let acr_ok = api.require_acr.is_empty()
        || session
            .auth
            .acr
            .as_ref()
            .is_some_and(|acr| api.require_acr.contains(acr));
    let age_ok = api.max_auth_age.is_none_or(|max| {
        session
            .auth
            .auth_time
            .is_some_and(|t| t.saturating_add(max.as_secs()).saturating_add(skew) >= now)
    });
    if acr_ok && age_ok {
        return None;
    }
    Some(StepUp {
        acr_values: (!api.require_acr.is_empty()).then(|| api.require_acr.join(" ")),
        max_age: api.max_auth_age.map(|d| d.as_secs()),
        source: "policy",
    })
}

/// The step-up an upstream's `WWW-Authenticate` values ask for, if one of
/// them is a Bearer challenge with `error="insufficient_user_authentication"`.
pub(crate) fn from_challenges<'a>(values: impl Iterator<Item = &'a str>) -> Option<StepUp> {
    for value in values {
        for challenge in http_auth::parser::ChallengeParser::new(value) {
            let Ok(challenge) = challenge else {
                break;
            };
            if !challenge.scheme.eq_ignore_ascii_case("bearer") {
                continue;
            }
            let param = |name: &str| {
                challenge
                    .params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            if param("error").as_deref() != Some(INSUFFICIENT_USER_AUTHENTICATION) {
                continue;
            }
            let acr_values = param("acr_values")
                .filter(|v| crate::login::options::acr_values(v).is_ok_and(|l| !l.is_empty()));
            let max_age = param("max_age").and_then(|m| m.parse::<u64>().ok());
            return Some(StepUp {
                acr_values,
                max_age,
                source: "upstream",
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_9470_challenges_are_read() {
        let got = from_challenges(
            [r#"Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR urn:mace:incommon:iap:silver", max_age=5"#]
                .into_iter(),
        )
        .unwrap();
        assert_eq!(
            got.acr_values.as_deref(),
            Some("myACR urn:mace:incommon:iap:silver")
        );
        assert_eq!(got.max_age, Some(5));
        assert_eq!(got.source, "upstream");
        // Another challenge first, a token68 scheme, and case.
        let got = from_challenges(
            ["Basic realm=\"x\"", "DPoP algs=\"ES256\", bearer Error=\"insufficient_user_authentication\", max_age=\"60\""]
                .into_iter(),
        )
        .unwrap();
        assert_eq!((got.acr_values, got.max_age), (None, Some(60)));
    }

    #[test]
    fn other_401s_and_bad_values_are_not_step_ups() {
        for v in [
            r#"Bearer error="invalid_token""#,
            r#"Bearer realm="api""#,
            "Bearer",
            "garbage ,,, \"",
        ] {
            assert!(from_challenges([v].into_iter()).is_none(), "{v}");
        }
        let got = from_challenges(
            [r#"Bearer error="insufficient_user_authentication", acr_values="a\"b", max_age=-3"#]
                .into_iter(),
        )
        .unwrap();
        assert_eq!((got.acr_values, got.max_age), (None, None));
    }
}

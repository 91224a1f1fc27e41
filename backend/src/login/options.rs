//! The login options of `POST`/`GET /bff/login` — `prompt`, `max_age`,
//! `acr_values`, `login_hint` — read, bounded and checked against what the
//! provider takes ([`LoginSupport`]); and the kind of login they make
//! (interactive, silent, step-up), which the metrics and logs carry.
//!
//! Each refusal is `400 invalid_request` naming the option, before anything
//! is sealed into a cookie or sent to the provider.

use crate::error::Error;
use crate::provider::login_params::{AuthParams, LoginSupport};
use keyway_shared::Prompt;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest `login_hint` taken (an e-mail address is at most 254).
pub(crate) const MAX_LOGIN_HINT: usize = 256;
/// The longest `acr_values` taken, all values together.
pub(crate) const MAX_ACR_VALUES: usize = 512;
/// At most this many `acr_values`.
pub(crate) const MAX_ACR_COUNT: usize = 8;
/// The largest `max_age` taken: a year, in seconds.
pub(crate) const MAX_MAX_AGE: i64 = 366 * 24 * 3600;

/// What kind of login a start is: its label in `keyway_logins_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginKind {
    /// A login the user asked for.
    #[default]
    Interactive,
    /// `prompt=none`: no page at the provider.
    Silent,
    /// A stronger or fresher login (`acr_values` or `max_age`).
    StepUp,
}

impl LoginKind {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            LoginKind::Interactive => "interactive",
            LoginKind::Silent => "silent",
            LoginKind::StepUp => "step_up",
        }
    }

    /// The kind of a login with these options.
    pub(crate) fn of(params: &AuthParams) -> Self {
        if params.prompt == Some(Prompt::None) {
            LoginKind::Silent
        } else if !params.acr_values.is_empty() || params.max_age.is_some() {
            LoginKind::StepUp
        } else {
            LoginKind::Interactive
        }
    }
}

/// The options as the request carries them (body or query).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RequestedOptions<'a> {
    /// `prompt`.
    pub prompt: Option<&'a str>,
    /// `max_age`.
    pub max_age: Option<i64>,
    /// `acr_values`, space-separated.
    pub acr_values: Option<&'a str>,
    /// `login_hint`.
    pub login_hint: Option<&'a str>,
}

fn invalid(why: String) -> Error {
    Error::InvalidRequest(why)
}

/// Reads and bounds the options; an empty string counts as absent.
pub(crate) fn parse(raw: &RequestedOptions<'_>) -> Result<AuthParams, Error> {
    let prompt = match raw.prompt.filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => Some(Prompt::parse(p).ok_or_else(|| {
            invalid("prompt must be one of none, login, consent, select_account, create".into())
        })?),
    };
    let max_age = match raw.max_age {
        None => None,
        Some(s) if (0..=MAX_MAX_AGE).contains(&s) => Some(Duration::from_secs(s as u64)),
        Some(_) => {
            return Err(invalid(format!(
                "max_age must be a whole number of seconds from 0 to {MAX_MAX_AGE}"
            )));
        }
    };
    let acr_values = acr_values(raw.acr_values.unwrap_or_default())?;
    let login_hint = match raw.login_hint.filter(|h| !h.is_empty()) {
        None => None,
        Some(h) if h.len() <= MAX_LOGIN_HINT && !h.chars().any(char::is_control) => {
            Some(h.to_owned())
        }
        Some(_) => {
            return Err(invalid(format!(
                "login_hint must be at most {MAX_LOGIN_HINT} bytes without control characters"
            )));
        }
    };
    Ok(AuthParams {
        prompt,
        max_age,
        acr_values,
        login_hint,
    })
}

/// Space-separated authentication levels: each printable ASCII without
/// quotes or backslashes (they also travel in RFC 9470 challenges).
pub(crate) fn acr_values(text: &str) -> Result<Vec<String>, Error> {
    let values: Vec<String> = text
        .split(' ')
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    let ok = text.len() <= MAX_ACR_VALUES
        && values.len() <= MAX_ACR_COUNT
        && values.iter().all(|v| {
            v.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        });
    if ok {
        Ok(values)
    } else {
        Err(invalid(format!(
            "acr_values must be at most {MAX_ACR_COUNT} space-separated values of printable ASCII, {MAX_ACR_VALUES} bytes in all"
        )))
    }
}

/// Refuses an option the provider `id` does not take.
pub(crate) fn check_support(
    id: &str,
    params: &AuthParams,
    support: &LoginSupport,
) -> Result<(), Error> {
    let unsupported =
        |option: String| invalid(format!("the provider `{id}` does not support {option}"));
    if let Some(p) = params.prompt
        && !support.prompt(p)
    {
        return Err(unsupported(format!("prompt={}", p.as_str())));
    }
    if params.max_age.is_some() && !support.oidc {
        return Err(unsupported("max_age".into()));
    }
    if params.login_hint.is_some() && !support.oidc {
        return Err(unsupported("login_hint".into()));
    }
    if let Some(acr) = params.acr_values.iter().find(|a| !support.acr(a)) {
        return Err(unsupported(format!("acr_values={acr}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_and_message(r: Result<AuthParams, Error>) -> String {
        match r {
            Err(e) => format!("{} {}", e.code(), e.message()),
            Ok(p) => panic!("accepted {p:?}"),
        }
    }

    #[test]
    fn bad_options_are_refused_by_name() {
        let bad = [
            (
                RequestedOptions {
                    prompt: Some("sometimes"),
                    ..Default::default()
                },
                "prompt",
            ),
            (
                RequestedOptions {
                    max_age: Some(-1),
                    ..Default::default()
                },
                "max_age",
            ),
            (
                RequestedOptions {
                    max_age: Some(MAX_MAX_AGE + 1),
                    ..Default::default()
                },
                "max_age",
            ),
            (
                RequestedOptions {
                    acr_values: Some("a \"b\""),
                    ..Default::default()
                },
                "acr_values",
            ),
        ];
        for (raw, name) in bad {
            let text = code_and_message(parse(&raw));
            assert!(
                text.starts_with("invalid_request ") && text.contains(name),
                "{text}"
            );
        }
        let hint = "x".repeat(10 * 1024);
        let text = code_and_message(parse(&RequestedOptions {
            login_hint: Some(&hint),
            ..Default::default()
        }));
        assert!(
            text.contains("login_hint") && !text.contains("xxxx"),
            "{text}"
        );
    }

    #[test]
    fn options_parse_and_make_a_kind() {
        let p = parse(&RequestedOptions {
            prompt: Some("none"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(LoginKind::of(&p), LoginKind::Silent);
        let p = parse(&RequestedOptions {
            max_age: Some(0),
            acr_values: Some(" urn:mfa  urn:pwd "),
            login_hint: Some("alice"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.acr_values, ["urn:mfa", "urn:pwd"]);
        assert_eq!(p.max_age, Some(Duration::ZERO));
        assert_eq!(LoginKind::of(&p), LoginKind::StepUp);
        assert_eq!(
            LoginKind::of(&AuthParams::default()),
            LoginKind::Interactive
        );
        assert_eq!(
            parse(&RequestedOptions {
                prompt: Some(""),
                ..Default::default()
            })
            .unwrap(),
            AuthParams::default()
        );
    }

    #[test]
    fn unsupported_options_name_the_provider_and_option() {
        let p = parse(&RequestedOptions {
            prompt: Some("login"),
            ..Default::default()
        })
        .unwrap();
        let e = check_support("github", &p, &LoginSupport::none()).unwrap_err();
        assert!(
            e.message()
                .contains("`github` does not support prompt=login"),
            "{}",
            e.message()
        );
    }
}

//! The OpenID Connect login options a request may carry (`prompt`,
//! `max_age`, `acr_values`, `login_hint`: OpenID Connect Core 3.1.2.1), what
//! a provider says it supports of them, and what its ID token said back
//! (`acr`, `auth_time`).
//!
//! Which options a provider takes: an OpenID Connect provider takes the four
//! of OpenID Connect Core; its `prompt` values are the core ones (`none`,
//! `login`, `consent`, `select_account`) unless discovery lists
//! `prompt_values_supported` (then exactly those; `create` needs it listed,
//! as "Initiating User Registration via OpenID Connect 1.0" says), and its
//! `acr_values` any unless discovery lists `acr_values_supported`. A plain
//! OAuth 2.0 provider takes none of them.

use keyway_shared::Prompt;
use std::time::Duration;

/// The options of one authorization request, already checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AuthParams {
    /// `prompt`.
    pub prompt: Option<Prompt>,
    /// `max_age`.
    pub max_age: Option<Duration>,
    /// `acr_values`, in order.
    pub acr_values: Vec<String>,
    /// `login_hint`.
    pub login_hint: Option<String>,
}

impl AuthParams {
    /// Whether the request sets authorization parameter `name` itself (so a
    /// configured `auth_params` value of the same name is not sent).
    pub(crate) fn overrides(&self, name: &str) -> bool {
        match name {
            "prompt" => self.prompt.is_some(),
            "max_age" => self.max_age.is_some(),
            "acr_values" => !self.acr_values.is_empty(),
            "login_hint" => self.login_hint.is_some(),
            _ => false,
        }
    }
}

/// The prompt values of OpenID Connect Core, taken when discovery lists none.
const CORE_PROMPTS: [Prompt; 4] = [
    Prompt::None,
    Prompt::Login,
    Prompt::Consent,
    Prompt::SelectAccount,
];

/// What a provider supports of the login options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoginSupport {
    /// Whether it speaks OpenID Connect (a plain OAuth 2.0 provider takes no option).
    pub oidc: bool,
    /// Its `prompt_values_supported`, if it lists them.
    pub prompts: Option<Vec<String>>,
    /// Its `acr_values_supported`, if it lists them.
    pub acr_values: Option<Vec<String>>,
}

impl LoginSupport {
    /// A plain OAuth 2.0 provider's: none.
    pub(crate) fn none() -> Self {
        Self {
            oidc: false,
            prompts: None,
            acr_values: None,
        }
    }

    /// Whether `prompt` may be sent.
    pub(crate) fn prompt(&self, prompt: Prompt) -> bool {
        self.oidc
            && match &self.prompts {
                Some(listed) => listed.iter().any(|p| p == prompt.as_str()),
                None => CORE_PROMPTS.contains(&prompt),
            }
    }

    /// Whether the authentication level `acr` may be asked for.
    pub(crate) fn acr(&self, acr: &str) -> bool {
        self.oidc
            && self
                .acr_values
                .as_ref()
                .is_none_or(|listed| listed.iter().any(|a| a == acr))
    }
}

/// What the ID token of a login said about the authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AuthLevel {
    /// `acr`.
    pub acr: Option<String>,
    /// `auth_time`, seconds since the epoch.
    pub auth_time: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_prompts_unless_listed_and_nothing_for_oauth2() {
        let core = LoginSupport {
            oidc: true,
            prompts: None,
            acr_values: None,
        };
        assert!(core.prompt(Prompt::SelectAccount));
        assert!(!core.prompt(Prompt::Create), "create must be advertised");
        assert!(core.acr("anything"));
        let listed = LoginSupport {
            prompts: Some(vec!["none".into(), "create".into()]),
            acr_values: Some(vec!["mfa".into()]),
            ..core
        };
        assert!(listed.prompt(Prompt::Create));
        assert!(!listed.prompt(Prompt::Login));
        assert!(listed.acr("mfa") && !listed.acr("pwd"));
        let oauth2 = LoginSupport::none();
        assert!(!oauth2.prompt(Prompt::Login) && !oauth2.acr("x"));
    }

    #[test]
    fn request_options_override_configured_ones() {
        let p = AuthParams {
            prompt: Some(Prompt::Login),
            ..AuthParams::default()
        };
        assert!(p.overrides("prompt"));
        assert!(!p.overrides("max_age") && !p.overrides("access_type"));
    }
}

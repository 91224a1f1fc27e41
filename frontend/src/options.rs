//! [`LoginOptions`]: how a sign-in starts (provider, return path, and the
//! OpenID Connect options `prompt`, `max_age`, `acr_values`, `login_hint`),
//! for [`Auth::sign_in_with`](crate::Auth::sign_in_with).

use keyway_shared::{LoginRequest, Prompt};

use crate::error::AuthError;

/// The options of a sign-in. Build with struct update syntax or the
/// helpers:
///
/// ```ignore
/// auth.sign_in_with(LoginOptions { prompt: Some(Prompt::SelectAccount), ..LoginOptions::default() });
/// auth.sign_in_with(LoginOptions::step_up_from(&error).unwrap()); // after `401 step_up_required`
/// ```
///
/// The BFF passes each option to the provider only when the provider
/// supports it; otherwise the sign-in fails with `400 invalid_request`
/// naming the option.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginOptions {
    /// Provider id; the BFF's first provider when `None`.
    pub provider: Option<String>,
    /// Same-origin path (with its query) to come back to; `/` when `None`.
    pub return_to: Option<String>,
    /// `prompt`: `None` (silent), `Login`, `Consent`, `SelectAccount`, `Create`.
    pub prompt: Option<Prompt>,
    /// `max_age`: the longest time since the user last authenticated, in
    /// seconds (`Some(0)`: authenticate now).
    pub max_age: Option<u64>,
    /// `acr_values`: authentication levels, space-separated.
    pub acr_values: Option<String>,
    /// `login_hint`: who should sign in.
    pub login_hint: Option<String>,
}

impl LoginOptions {
    /// The sign-in a `401 step_up_required` asks for (its `acr_values` and
    /// `max_age`), coming back to the current page; `None` for any other
    /// error.
    pub fn step_up_from(error: &AuthError) -> Option<Self> {
        let AuthError::Api { body, .. } = error else {
            return None;
        };
        body.needs_step_up().then(|| LoginOptions {
            return_to: Some(crate::query::current_path()),
            acr_values: body.acr_values.clone(),
            max_age: body.max_age,
            ..LoginOptions::default()
        })
    }

    /// The body of `POST /bff/login`.
    pub(crate) fn request(&self) -> LoginRequest {
        LoginRequest {
            provider: self.provider.clone(),
            return_to: self.return_to.clone(),
            prompt: self.prompt.map(|p| p.as_str().to_owned()),
            max_age: self.max_age.map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
            acr_values: self.acr_values.clone(),
            login_hint: self.login_hint.clone(),
        }
    }
}

//! Wire types of the Keyway HTTP contract (`docs/api.md`).
//!
//! Compiled for both the backend (native) and the SPA (wasm32); holds no I/O.
//! Every body the BFF sends or takes is one of these types, so the two halves
//! cannot drift apart.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// Header every state-changing request from the browser must carry.
pub const CSRF_HEADER: &str = "x-csrf";
/// The only accepted value of [`CSRF_HEADER`].
pub const CSRF_HEADER_VALUE: &str = "1";

/// What kind of protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenID Connect: discovery, ID token.
    Oidc,
    /// Plain OAuth 2.0: identity from a user endpoint.
    Oauth2,
}

/// One entry of `GET /bff/providers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// Identifier used in `POST /bff/login`.
    pub id: String,
    /// Display name for the sign-in button.
    pub name: String,
    /// Protocol spoken by the provider.
    pub kind: ProviderKind,
    /// The preset it was configured from (`github`, `google`, ...), for an icon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
}

/// Body of `POST /bff/login`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Provider id; defaults to the first configured provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Same-origin relative path to return to after login; defaults to `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
    /// OpenID Connect `prompt`: one of [`Prompt`]'s values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// OpenID Connect `max_age`: the longest time, in seconds, since the
    /// user last authenticated at the provider (`0`: authenticate now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// OpenID Connect `acr_values`: the authentication levels asked for,
    /// space-separated, most wanted first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<String>,
    /// OpenID Connect `login_hint`: who is expected to sign in (an e-mail
    /// address, a user name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
}

/// The values of OpenID Connect's `prompt` that `POST /bff/login` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prompt {
    /// No page at the provider: sign in silently or fail (`login_required`, ...).
    None,
    /// Ask for the credentials again, even with a session at the provider.
    Login,
    /// Ask for consent again.
    Consent,
    /// Let the user choose (or switch) the account.
    SelectAccount,
    /// Show the provider's sign-up page (OpenID Connect "prompt=create").
    Create,
}

impl Prompt {
    /// Every value, in the order of the specifications.
    pub const ALL: [Prompt; 5] = [
        Prompt::None,
        Prompt::Login,
        Prompt::Consent,
        Prompt::SelectAccount,
        Prompt::Create,
    ];

    /// The value as it is sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Prompt::None => "none",
            Prompt::Login => "login",
            Prompt::Consent => "consent",
            Prompt::SelectAccount => "select_account",
            Prompt::Create => "create",
        }
    }

    /// The prompt of a value; `None` for anything else.
    pub fn parse(value: &str) -> Option<Prompt> {
        Prompt::ALL.into_iter().find(|p| p.as_str() == value)
    }
}

/// Answer of `POST /bff/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    /// Where the SPA must navigate the window.
    pub authorization_url: String,
}

/// Body of `POST /bff/callback`: the provider's redirect query, as the SPA read it.
///
/// Either `code` + `state` (+ `iss`), or `error` (+ `error_description`, `state`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRequest {
    /// Authorization code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The state the login was started with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Issuer identifier of the authorization response (RFC 9207).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The provider's error code (`access_denied`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The provider's description of the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// The signed-in user, as `GET /bff/user` and `POST /bff/callback` answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Subject identifier at the provider.
    pub sub: String,
    /// Provider id the user signed in with.
    pub provider: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the provider verified the e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// Picture URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// When the session ends, in seconds since the Unix epoch.
    pub expires_at: u64,
    /// The authentication level of the login (the ID token's `acr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// When the user authenticated at the provider (the ID token's
    /// `auth_time`), in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
}

/// One entry of `GET /bff/sessions`: a session of the signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// An opaque name of the session for `DELETE /bff/sessions/{handle}`
    /// (never its id: it does not work as a cookie).
    pub handle: String,
    /// Provider id the session signed in with.
    pub provider: String,
    /// When the session was created, in seconds since the Unix epoch.
    pub created_at: u64,
    /// When it was last used (to the minute), in seconds since the Unix epoch.
    pub last_seen_at: u64,
    /// A summary of the browser that signed in (`Chrome on Linux`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Whether this is the session of the request.
    pub current: bool,
}

/// Answer of `DELETE /bff/sessions/{handle}` and `POST /bff/sessions/end-others`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsEnded {
    /// How many sessions were ended.
    pub ended: u32,
}

/// Answer of `POST /bff/callback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackResponse {
    /// The signed-in user.
    pub user: User,
    /// Relative path to navigate to.
    pub return_to: String,
}

/// Answer of `POST /bff/logout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutResponse {
    /// The provider's end-session URL to navigate to, when it has one.
    pub end_session_url: Option<String>,
}

/// Every error body: `{"error": "<snake_case code>", "message": "<text>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code (see [`codes`]).
    pub error: String,
    /// Text for a person.
    pub message: String,
    /// `step_up_required`: the authentication levels to sign in with
    /// again, space-separated (for [`LoginRequest::acr_values`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<String>,
    /// `step_up_required`: the longest time since authentication the API
    /// accepts, in seconds (for [`LoginRequest::max_age`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
}

impl ErrorBody {
    /// A body with a code and a message only.
    pub fn new(error: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            message: message.into(),
            acr_values: None,
            max_age: None,
        }
    }

    /// Whether this error means "sign in again".
    pub fn needs_login(&self) -> bool {
        self.error == codes::UNAUTHENTICATED || self.error == codes::SESSION_EXPIRED
    }

    /// Whether this error asks for a stronger or fresher sign-in
    /// (`step_up_required`): sign in again with its `acr_values` and `max_age`.
    pub fn needs_step_up(&self) -> bool {
        self.error == codes::STEP_UP_REQUIRED
    }
}

/// The provider's answers to a silent sign-in (`prompt=none`) that mean
/// "nobody is signed in there, or not without a page": the visitor simply
/// stays anonymous (OpenID Connect Core 3.1.2.6).
pub const SILENT_LOGIN_FAILURES: [&str; 4] = [
    codes::LOGIN_REQUIRED,
    codes::INTERACTION_REQUIRED,
    codes::CONSENT_REQUIRED,
    codes::ACCOUNT_SELECTION_REQUIRED,
];

/// The error codes of the contract.
pub mod codes {
    /// The `X-CSRF: 1` header is missing.
    pub const CSRF_HEADER_MISSING: &str = "csrf_header_missing";
    /// A cross-site request to a state-changing endpoint.
    pub const CROSS_SITE_REQUEST: &str = "cross_site_request";
    /// The session store cannot be reached.
    pub const SESSION_STORE_UNAVAILABLE: &str = "session_store_unavailable";
    /// No provider with that id.
    pub const UNKNOWN_PROVIDER: &str = "unknown_provider";
    /// `return_to` is not a same-origin relative path.
    pub const INVALID_RETURN_TO: &str = "invalid_return_to";
    /// The state is unknown, reused, or was not started by this browser.
    pub const INVALID_STATE: &str = "invalid_state";
    /// The pending login is older than its lifetime.
    pub const LOGIN_EXPIRED: &str = "login_expired";
    /// The `iss` of the response is not the provider the login started with.
    pub const ISSUER_MISMATCH: &str = "issuer_mismatch";
    /// The ID token failed validation.
    pub const INVALID_ID_TOKEN: &str = "invalid_id_token";
    /// The user denied consent at the provider.
    pub const ACCESS_DENIED: &str = "access_denied";
    /// The token endpoint refused or failed.
    pub const TOKEN_EXCHANGE_FAILED: &str = "token_exchange_failed";
    /// The provider did not answer in time.
    pub const PROVIDER_TIMEOUT: &str = "provider_timeout";
    /// The provider answered with an error or garbage.
    pub const PROVIDER_ERROR: &str = "provider_error";
    /// No session.
    pub const UNAUTHENTICATED: &str = "unauthenticated";
    /// The session ended (refresh refused, lifetime over).
    pub const SESSION_EXPIRED: &str = "session_expired";
    /// No API with that name is configured.
    pub const UNKNOWN_API: &str = "unknown_api";
    /// The upstream API failed.
    pub const UPSTREAM_ERROR: &str = "upstream_error";
    /// The logout token failed validation.
    pub const INVALID_LOGOUT_TOKEN: &str = "invalid_logout_token";
    /// The request body is not valid JSON of the expected shape.
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// The request body is too large.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// No such route.
    pub const NOT_FOUND: &str = "not_found";
    /// Method not allowed on this route.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// An unexpected server fault.
    pub const INTERNAL: &str = "internal_error";
    /// The response or session belongs to another provider (a callback at
    /// another provider's redirect URI; a session of another provider on an API).
    pub const PROVIDER_MISMATCH: &str = "provider_mismatch";
    /// The request's body did not arrive in time.
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
    /// The request's headers are too large.
    pub const HEADERS_TOO_LARGE: &str = "headers_too_large";
    /// The API needs a stronger or fresher sign-in (RFC 9470); the body
    /// carries `acr_values` and `max_age`.
    pub const STEP_UP_REQUIRED: &str = "step_up_required";
    /// No session of this user has that handle.
    pub const UNKNOWN_SESSION: &str = "unknown_session";
    /// Silent sign-in: nobody is signed in at the provider.
    pub const LOGIN_REQUIRED: &str = "login_required";
    /// Silent sign-in: the provider needs a page.
    pub const INTERACTION_REQUIRED: &str = "interaction_required";
    /// Silent sign-in: the provider needs the user's consent.
    pub const CONSENT_REQUIRED: &str = "consent_required";
    /// Silent sign-in: the provider needs the user to choose an account.
    pub const ACCOUNT_SELECTION_REQUIRED: &str = "account_selection_required";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_omits_absent_optional_fields() {
        let user = User {
            sub: "s".into(),
            provider: "p".into(),
            name: None,
            email: Some("a@example.com".into()),
            email_verified: None,
            picture: None,
            expires_at: 7,
            acr: None,
            auth_time: None,
        };
        let json = serde_json::to_value(&user).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"sub":"s","provider":"p","email":"a@example.com","expires_at":7})
        );
    }

    #[test]
    fn login_request_rejects_unknown_fields() {
        let err = serde_json::from_str::<LoginRequest>(r#"{"provider":"x","redirect":"y"}"#);
        assert!(err.is_err());
        let ok: LoginRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(ok, LoginRequest::default());
    }

    #[test]
    fn provider_kind_is_snake_case() {
        let info = ProviderInfo {
            id: "g".into(),
            name: "G".into(),
            kind: ProviderKind::Oauth2,
            preset: None,
        };
        assert_eq!(serde_json::to_value(info).unwrap()["kind"], "oauth2");
    }

    #[test]
    fn needs_login_only_for_session_errors() {
        let e = |c: &str| ErrorBody::new(c, "");
        assert!(e(codes::UNAUTHENTICATED).needs_login());
        assert!(e(codes::SESSION_EXPIRED).needs_login());
        assert!(!e(codes::INVALID_STATE).needs_login());
        assert!(e(codes::STEP_UP_REQUIRED).needs_step_up());
    }

    #[test]
    fn prompts_round_trip_and_nothing_else_parses() {
        for p in Prompt::ALL {
            assert_eq!(Prompt::parse(p.as_str()), Some(p));
        }
        assert_eq!(Prompt::parse("NONE"), None);
        assert_eq!(Prompt::parse("login consent"), None);
    }

    #[test]
    fn error_bodies_carry_step_up_fields_only_when_set() {
        let plain = serde_json::to_value(ErrorBody::new("x", "y")).unwrap();
        assert_eq!(plain, serde_json::json!({"error":"x","message":"y"}));
        let step_up: ErrorBody = serde_json::from_str(
            r#"{"error":"step_up_required","message":"m","acr_values":"a b","max_age":300}"#,
        )
        .unwrap();
        assert_eq!(step_up.acr_values.as_deref(), Some("a b"));
        assert_eq!(step_up.max_age, Some(300));
    }
}

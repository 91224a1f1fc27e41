//! The errors of Keyway's features (login, tokens, the API proxy,
//! back-channel logout): the domain errors of the layers below, plus what
//! the features themselves refuse. Each has the contract's error code
//! ([`Error::code`]); which HTTP status it gets is decided in one place, the
//! HTTP layer (`http::error`).
//!
//! Messages never carry a token, a code, a cookie value or a secret:
//! variants hold only descriptions made by Keyway or by libraries that do
//! not quote what they check.

use crate::provider::error::ProtocolError;
use crate::session::store::StoreError;
use keyway_shared::codes;

/// Everything a feature can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The session store did not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The provider failed, or what it sent failed validation.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// No provider with that id.
    #[error("unknown provider")]
    UnknownProvider,
    /// `return_to` is not a same-origin relative path.
    #[error("invalid return_to: {0}")]
    InvalidReturnTo(&'static str),
    /// State unknown, reused, or not started by this browser.
    #[error("invalid state: {0}")]
    InvalidState(&'static str),
    /// The pending login is older than its lifetime.
    #[error("login expired")]
    LoginExpired,
    /// The callback arrived at another provider's redirect URI than the
    /// login's (mix-up defence, RFC 9700 §4.4).
    #[error("provider mismatch: {0}")]
    CallbackProviderMismatch(&'static str),
    /// A session of one provider asked for an API that takes another's tokens.
    #[error("the session's provider is not this API's")]
    SessionProviderMismatch,
    /// The provider answered the authorization request with an error (its
    /// state matched a pending login).
    #[error("provider refused the login: {code}")]
    ProviderDenied {
        /// The provider's error code, checked to be a plain code.
        code: String,
        /// The provider's description, cleaned for display.
        description: Option<String>,
    },
    /// No session.
    #[error("not signed in")]
    Unauthenticated,
    /// The session ended (lifetime over, refresh refused).
    #[error("session expired: {0}")]
    SessionExpired(&'static str),
    /// No API with that name.
    #[error("unknown API")]
    UnknownApi,
    /// The upstream API failed.
    #[error("upstream error: {0}")]
    Upstream(String),
    /// The upstream API timed out.
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// The request is malformed.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The request body is too large.
    #[error("request body too large")]
    PayloadTooLarge,
    /// The request body did not arrive within the body timeout.
    #[error("the request body did not arrive in time")]
    RequestBodyTimeout,
    /// A fault of Keyway itself.
    #[error("internal error: {0}")]
    Internal(String),
    /// The API needs a stronger or fresher sign-in than the session's
    /// (its `require_acr`/`max_auth_age`, or its RFC 9470 challenge).
    #[error("step-up required ({0})")]
    StepUpRequired(StepUp),
    /// No session of the signed-in user has that handle.
    #[error("unknown session")]
    UnknownSession,
}

/// What a step-up asks for: sign in again with these `acr_values` and
/// `max_age` (the body of `401 step_up_required`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepUp {
    /// The levels to sign in with, space-separated; `None`: any.
    pub acr_values: Option<String>,
    /// The longest time since authentication accepted, in seconds.
    pub max_age: Option<u64>,
    /// What asked for it: `policy` (the API's configuration) or `upstream`
    /// (its RFC 9470 challenge). For logs and metrics.
    pub source: &'static str,
}

impl std::fmt::Display for StepUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: acr_values {:?}, max_age {:?}",
            self.source, self.acr_values, self.max_age
        )
    }
}

impl Error {
    /// The contract's error code.
    pub fn code(&self) -> &str {
        use Error::*;
        match self {
            Store(_) => codes::SESSION_STORE_UNAVAILABLE,
            Protocol(p) => match p {
                ProtocolError::Timeout => codes::PROVIDER_TIMEOUT,
                ProtocolError::Provider(_) => codes::PROVIDER_ERROR,
                ProtocolError::TokenExchange(_) => codes::TOKEN_EXCHANGE_FAILED,
                ProtocolError::InvalidIdToken(_) => codes::INVALID_ID_TOKEN,
                ProtocolError::IssuerMismatch(_) => codes::ISSUER_MISMATCH,
                ProtocolError::InvalidLogoutToken(_) => codes::INVALID_LOGOUT_TOKEN,
                ProtocolError::AccessTokenRejected => codes::SESSION_EXPIRED,
            },
            UnknownProvider => codes::UNKNOWN_PROVIDER,
            InvalidReturnTo(_) => codes::INVALID_RETURN_TO,
            InvalidState(_) => codes::INVALID_STATE,
            LoginExpired => codes::LOGIN_EXPIRED,
            CallbackProviderMismatch(_) | SessionProviderMismatch => codes::PROVIDER_MISMATCH,
            ProviderDenied { code, .. } => code.as_str(),
            Unauthenticated => codes::UNAUTHENTICATED,
            SessionExpired(_) => codes::SESSION_EXPIRED,
            UnknownApi => codes::UNKNOWN_API,
            Upstream(_) | UpstreamTimeout => codes::UPSTREAM_ERROR,
            InvalidRequest(_) => codes::INVALID_REQUEST,
            PayloadTooLarge => codes::PAYLOAD_TOO_LARGE,
            RequestBodyTimeout => codes::REQUEST_TIMEOUT,
            Internal(_) => codes::INTERNAL,
            StepUpRequired(_) => codes::STEP_UP_REQUIRED,
            UnknownSession => codes::UNKNOWN_SESSION,
        }
    }

    /// The text for a person.
    pub fn message(&self) -> String {
        use Error::*;
        match self {
            Store(_) => "Sessions are unavailable right now. Please try again in a moment.".into(),
            Protocol(p) => protocol_message(p).into(),
            UnknownProvider => "There is no sign-in provider with that id.".into(),
            InvalidReturnTo(why) => format!("return_to must be a path on this site, like /profile ({why})."),
            InvalidState(_) => "This sign-in response does not belong to a sign-in started in this browser. Please sign in again.".into(),
            LoginExpired => "The sign-in took too long. Please sign in again.".into(),
            CallbackProviderMismatch(_) => "This sign-in response came back for another provider than the one the sign-in started with. Please sign in again.".into(),
            SessionProviderMismatch => "This API takes sign-ins from another provider.".into(),
            ProviderDenied { code, description } => {
                let base = if code == codes::ACCESS_DENIED {
                    "You declined the sign-in at the provider (or it was refused).".to_owned()
                } else {
                    format!("The provider refused the sign-in ({code}).")
                };
                match description {
                    Some(d) => format!("{base} The provider said: {d}"),
                    None => base,
                }
            }
            Unauthenticated => "You are not signed in.".into(),
            SessionExpired(_) => "Your session has ended. Please sign in again.".into(),
            UnknownApi => "There is no API with that name.".into(),
            Upstream(_) => "The API behind this path failed.".into(),
            UpstreamTimeout => "The API behind this path did not answer in time.".into(),
            InvalidRequest(why) => format!("The request is malformed: {why}."),
            PayloadTooLarge => "The request body is too large.".into(),
            RequestBodyTimeout => "The request body did not arrive in time.".into(),
            Internal(_) => "Something went wrong on our side.".into(),
            StepUpRequired(_) => "This needs a stronger or more recent sign-in. Please sign in again to go on.".into(),
            UnknownSession => "You have no session with that handle.".into(),
        }
    }
}

fn protocol_message(p: &ProtocolError) -> &'static str {
    match p {
        ProtocolError::Timeout => "The provider did not answer in time. Please try again.",
        ProtocolError::Provider(_) => "The provider answered with an error.",
        ProtocolError::TokenExchange(_) => {
            "The provider refused to complete the sign-in. Please sign in again."
        }
        ProtocolError::InvalidIdToken(_) => "The provider's identity token failed validation.",
        ProtocolError::IssuerMismatch(_) => {
            "The sign-in response came from another provider than the one the sign-in started with."
        }
        ProtocolError::InvalidLogoutToken(_) => "The logout token failed validation.",
        ProtocolError::AccessTokenRejected => "Your session has ended. Please sign in again.",
    }
}

//! [`AuthError`]: why a call to the BFF failed, and what to tell the person.

use std::fmt;

use keyway_shared::{ErrorBody, codes};

/// Why a call to the BFF (or to an API behind it) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The BFF answered an error status with the contract's error body
    /// (`{"error", "message"}`).
    Api {
        /// HTTP status code.
        status: u16,
        /// The `{"error", "message"}` body.
        body: ErrorBody,
    },
    /// An error status without a contract error body (an API's own error
    /// page, a proxy's page, ...).
    Status(u16),
    /// The request did not get an answer (offline, DNS, connection refused).
    Network(String),
    /// A success answer whose body is not the expected JSON.
    Decode(String),
    /// The callback page was opened without a provider's answer in its query.
    NoCallback,
}

impl AuthError {
    /// Maps an error answer (status and raw body text) to an [`AuthError`].
    ///
    /// A body of the contract's shape gives [`AuthError::Api`]; anything else
    /// gives [`AuthError::Status`].
    pub fn from_response_parts(status: u16, body: &str) -> Self {
        match serde_json::from_str::<ErrorBody>(body) {
            Ok(body) => AuthError::Api { status, body },
            Err(_) => AuthError::Status(status),
        }
    }

    /// The contract's error code (`invalid_state`, ...), when the BFF sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AuthError::Api { body, .. } => Some(&body.error),
            _ => None,
        }
    }

    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            AuthError::Api { status, .. } | AuthError::Status(status) => Some(*status),
            _ => None,
        }
    }

    /// Whether the BFF said the session is gone (`401 unauthenticated` or
    /// `401 session_expired`): the user must sign in (again) to go on.
    pub fn session_ended(&self) -> bool {
        matches!(self, AuthError::Api { body, .. } if body.needs_login())
    }

    /// Whether the BFF asks for a stronger or fresher sign-in (`401
    /// step_up_required`); [`LoginOptions::step_up_from`](crate::LoginOptions::step_up_from)
    /// makes the sign-in it asks for.
    pub fn needs_step_up(&self) -> bool {
        matches!(self, AuthError::Api { body, .. } if body.needs_step_up())
    }

    /// Whether a silent sign-in came back with "nobody is signed in at the
    /// provider" (`login_required`, `interaction_required`, ...).
    pub fn is_silent_failure(&self) -> bool {
        self.code()
            .is_some_and(|c| keyway_shared::SILENT_LOGIN_FAILURES.contains(&c))
    }

    /// Whether the user must sign in (again) to go on: the BFF said the
    /// session is gone, or a bare `401` came back.
    pub fn needs_login(&self) -> bool {
        self.session_ended() || *self == AuthError::Status(401)
    }

    /// A sentence for a person: what went wrong, in plain words.
    ///
    /// For an error of the BFF this is the BFF's own message (for a refused
    /// sign-in it carries the provider's `error_description`, which the BFF
    /// passes on only once it has accepted the login's `state`), except for
    /// the few codes where a plainer sentence helps more. Nothing here is
    /// ever taken from the page's URL.
    pub fn user_message(&self) -> String {
        match self {
            AuthError::Api { body, .. } => match body.error.as_str() {
                codes::LOGIN_EXPIRED => {
                    "The sign-in took too long and expired. Please start again.".to_owned()
                }
                codes::INVALID_STATE => {
                    "This sign-in link is no longer valid (it was already used, or started in \
                     another browser). Please start again."
                        .to_owned()
                }
                _ if !body.message.trim().is_empty() => body.message.clone(),
                codes::ACCESS_DENIED => "You cancelled the sign-in.".to_owned(),
                codes::UNAUTHENTICATED | codes::SESSION_EXPIRED => {
                    "Your session has ended. Please sign in again.".to_owned()
                }
                codes::PROVIDER_TIMEOUT => {
                    "The sign-in provider did not answer in time. Please try again.".to_owned()
                }
                codes::SESSION_STORE_UNAVAILABLE => {
                    "Keyway is temporarily unavailable. Please try again in a moment.".to_owned()
                }
                _ => "Something went wrong. Please try again.".to_owned(),
            },
            AuthError::Status(401) => "Your session has ended. Please sign in again.".to_owned(),
            AuthError::Status(status) => {
                format!("The server answered with an error (HTTP {status}). Please try again.")
            }
            AuthError::Network(_) => {
                "Could not reach the server. Check your connection and try again.".to_owned()
            }
            AuthError::Decode(_) => {
                "The server sent an answer this page did not understand. Please try again."
                    .to_owned()
            }
            AuthError::NoCallback => {
                "There is no sign-in to finish here. Please start the sign-in again.".to_owned()
            }
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Api { status, body } => {
                write!(f, "{} (HTTP {status}): {}", body.error, body.message)
            }
            AuthError::Status(status) => write!(f, "HTTP {status}"),
            AuthError::Network(e) => write!(f, "network error: {e}"),
            AuthError::Decode(e) => write!(f, "unexpected answer: {e}"),
            AuthError::NoCallback => f.write_str("no authorization response in the URL"),
        }
    }
}

impl std::error::Error for AuthError {}

impl From<gloo_net::Error> for AuthError {
    /// A request that could not be made or answered; a body that could not
    /// be read as the expected JSON.
    fn from(e: gloo_net::Error) -> Self {
        match e {
            gloo_net::Error::SerdeError(e) => AuthError::Decode(e.to_string()),
            other => AuthError::Network(other.to_string()),
        }
    }
}

//! What a signed-in session holds. Only ever on the server.

use crate::config::SessionSettings;
use crate::provider::claims::Identity;
use crate::secret::{Secret, stored};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The tokens of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    /// The access token.
    #[serde(with = "stored")]
    pub access_token: Secret,
    /// When the access token expires (seconds since the epoch), if the provider said.
    pub access_expires_at: Option<u64>,
    /// When the access token was issued (seconds since the epoch).
    pub access_issued_at: u64,
    /// The refresh token, if the provider gave one.
    #[serde(with = "stored::option", default)]
    pub refresh_token: Option<Secret>,
    /// The raw ID token, kept for `id_token_hint` at logout.
    #[serde(with = "stored::option", default)]
    pub id_token: Option<Secret>,
    /// The private key the tokens are bound to (DPoP), if they are.
    #[serde(
        with = "stored::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dpop_key: Option<Secret>,
}

/// How the session's user authenticated, and from what browser.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthInfo {
    /// The ID token's `acr` (authentication level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The ID token's `auth_time` (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// A summary of the browser that signed in (`Chrome on Linux`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// One signed-in session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    /// The user.
    pub identity: Identity,
    /// The provider id.
    pub provider: String,
    /// The provider's session id (`sid` claim), for back-channel logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The login's nonce (a refreshed ID token may carry only this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The tokens.
    pub tokens: Tokens,
    /// Login time (seconds since the epoch).
    pub created_at: u64,
    /// Last use (seconds since the epoch).
    pub last_seen: u64,
    /// The authentication's level and time, and the browser.
    #[serde(default)]
    pub auth: AuthInfo,
}

impl SessionData {
    /// When this session ends if unused, and at the latest.
    pub fn expires_at(&self, settings: &SessionSettings) -> u64 {
        let idle_end = self.last_seen + settings.idle_timeout.as_secs();
        let absolute_end = self.created_at + settings.absolute_timeout.as_secs();
        let mut end = idle_end.min(absolute_end);
        // Without a refresh token the session cannot outlive its access token.
        if self.tokens.refresh_token.is_none()
            && let Some(at) = self.tokens.access_expires_at
        {
            end = end.min(at);
        }
        end
    }

    /// The user as the contract shows it.
    pub fn user(&self, settings: &SessionSettings) -> keyway_shared::User {
        keyway_shared::User {
            sub: self.identity.sub.clone(),
            provider: self.provider.clone(),
            name: self.identity.name.clone(),
            email: self.identity.email.clone(),
            email_verified: self.identity.email_verified,
            picture: self.identity.picture.clone(),
            expires_at: self.expires_at(settings),
            acr: self.auth.acr.clone(),
            auth_time: self.auth.auth_time,
        }
    }
}

//! The login: start (`POST`/`GET /bff/login`) and callback (`POST /bff/callback`).
//!
//! Start makes a pending login — `state`, PKCE S256 verifier and OIDC nonce
//! from a CSPRNG, provider, issuer, `return_to`, time — stores it server-side
//! under the browser's pending-login cookie and answers the authorization URL.
//!
//! The callback checks, in this order and before anything is sent to the
//! provider: the pending-login cookie and the `state` (constant-time, single
//! use: the pending login is removed whatever happens next), its age, the
//! provider's error if any, and `iss` (RFC 9207). Only then is the code
//! exchanged (with the verifier and the client secret), the ID token
//! validated, the old session (if any) destroyed and a new one created under
//! a new id.

pub mod return_to;

use crate::app::App;
use crate::error::{Error, clean_description, clean_error_code};
use crate::provider::http::HttpError;
use crate::secret::Secret;
use crate::session::{
    Identity, MAX_PENDING_PER_BROWSER, PendingLogin, SessionData, Tokens, cookie, now_secs,
};
use axum::http::{HeaderMap, HeaderValue};
use keyway_shared::{CallbackRequest, CallbackResponse};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RequestTokenError, Scope, TokenResponse,
};
use subtle::ConstantTimeEq;

/// What a started login hands back to the route.
#[derive(Debug)]
pub struct Started {
    /// The URL to send the browser to.
    pub authorization_url: String,
    /// `Set-Cookie` for the pending-login cookie.
    pub set_cookie: HeaderValue,
}

/// What a completed login hands back to the route.
#[derive(Debug)]
pub struct Completed {
    /// The body.
    pub response: CallbackResponse,
    /// `Set-Cookie` headers: the new session, and the removal of the pending-login cookie.
    pub set_cookies: Vec<HeaderValue>,
}

/// Starts a login.
pub async fn start(
    app: &App,
    headers: &HeaderMap,
    provider: Option<&str>,
    return_to: Option<&str>,
) -> Result<Started, Error> {
    let return_to = match return_to {
        None => "/".to_owned(),
        Some(r) => return_to::validate(r).map_err(Error::InvalidReturnTo)?,
    };
    let provider = app
        .providers
        .get(provider)
        .ok_or(Error::UnknownProvider)?
        .clone();
    let disc = provider.discovered(&app.http).await?;

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = disc
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in provider
        .settings
        .scopes
        .iter()
        .filter(|s| s.as_str() != "openid")
    {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    for (k, v) in &provider.settings.auth_params {
        request = request.add_extra_param(k.clone(), v.clone());
    }
    let (url, state, nonce) = request.url();

    let pending = PendingLogin {
        state: Secret::new(state.secret().clone()),
        verifier: Secret::new(verifier.secret().clone()),
        nonce: Secret::new(nonce.secret().clone()),
        provider: provider.id().to_owned(),
        issuer: disc.issuer().to_owned(),
        return_to,
        created_at: now_secs(),
    };

    let cookie_id = cookie::read(headers, app.cookies.login_name());
    let existing = match &cookie_id {
        Some(id) => app.sessions.load_pending(id).await?,
        None => None,
    };
    let login_timeout = app.config.session.login_timeout.as_secs();
    let (record_id, mut list) = match existing {
        Some((id, list)) => (Some(id), list),
        None => (None, Vec::new()),
    };
    list.retain(|p| now_secs().saturating_sub(p.created_at) <= login_timeout);
    list.push(pending);
    if list.len() > MAX_PENDING_PER_BROWSER {
        list.drain(..list.len() - MAX_PENDING_PER_BROWSER);
    }
    let id = app.sessions.save_pending(record_id, &list).await?;
    let set_cookie = app.cookies.login(
        &id.to_string(),
        app.config.session.login_timeout + std::time::Duration::from_secs(3600),
    );
    tracing::info!(provider = %provider.id(), "login started");
    Ok(Started {
        authorization_url: url.to_string(),
        set_cookie,
    })
}

/// Completes a login from the provider's redirect query.
pub async fn callback(
    app: &App,
    headers: &HeaderMap,
    body: CallbackRequest,
) -> Result<Completed, Error> {
    // 1. The browser must be the one that started this login.
    let cookie_id = cookie::read(headers, app.cookies.login_name())
        .ok_or(Error::InvalidState("no pending-login cookie"))?;
    let state = body.state.as_deref().filter(|s| !s.is_empty());
    let (record_id, mut list) = match app.sessions.load_pending(&cookie_id).await? {
        Some(found) => found,
        None => {
            return Err(body_error(&body)
                .unwrap_or(Error::InvalidState("no pending login for this browser")));
        }
    };
    let Some(state) = state else {
        return Err(body_error(&body).unwrap_or(Error::InvalidState("missing state")));
    };
    // Constant-time comparison against every pending login of this browser.
    let mut found = None;
    for (i, p) in list.iter().enumerate() {
        if bool::from(p.state.expose().as_bytes().ct_eq(state.as_bytes())) {
            found = Some(i);
        }
    }
    let Some(index) = found else {
        return Err(
            body_error(&body).unwrap_or(Error::InvalidState("unknown or already used state"))
        );
    };
    // Single use: remove it before anything else can fail.
    let pending = list.remove(index);
    let mut set_cookies = Vec::new();
    if list.is_empty() {
        app.sessions.delete_pending(record_id).await?;
        set_cookies.push(app.cookies.clear_login());
    } else {
        app.sessions.save_pending(Some(record_id), &list).await?;
    }
    let response = complete(app, headers, body, pending, &mut set_cookies).await?;
    Ok(Completed {
        response,
        set_cookies,
    })
}

fn body_error(body: &CallbackRequest) -> Option<Error> {
    body.error.as_deref().map(|code| Error::ProviderDenied {
        code: clean_error_code(code),
        description: body
            .error_description
            .as_deref()
            .and_then(clean_description),
    })
}

async fn complete(
    app: &App,
    headers: &HeaderMap,
    body: CallbackRequest,
    pending: PendingLogin,
    set_cookies: &mut Vec<HeaderValue>,
) -> Result<CallbackResponse, Error> {
    // 2. Age.
    if now_secs().saturating_sub(pending.created_at) > app.config.session.login_timeout.as_secs() {
        return Err(Error::LoginExpired);
    }
    // 3. The provider's own error.
    if let Some(e) = body_error(&body) {
        return Err(e);
    }
    let provider = app
        .providers
        .get(Some(&pending.provider))
        .ok_or(Error::UnknownProvider)?
        .clone();
    let disc = provider.discovered(&app.http).await?;
    // 4. Mix-up defence (RFC 9207): the issuer this login went to.
    match body.iss.as_deref() {
        Some(iss) if iss != pending.issuer => {
            return Err(Error::IssuerMismatch("iss is another issuer"));
        }
        Some(_) => {}
        None if disc.requires_iss() => {
            return Err(Error::IssuerMismatch(
                "the provider sends iss, but the response has none",
            ));
        }
        None => {}
    }
    if disc.issuer() != pending.issuer {
        return Err(Error::IssuerMismatch(
            "the provider's issuer changed since the login started",
        ));
    }
    let code = body
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::InvalidRequest("code is missing".into()))?;

    // 5. Exchange the code, once, with the verifier and the client secret.
    let request = disc
        .client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| Error::ProviderError(format!("no token endpoint: {e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.expose().to_owned()));
    let token = request
        .request_async(&app.http.oidc())
        .await
        .map_err(token_error)?;

    // 6. The ID token.
    let id_token = token
        .id_token()
        .ok_or_else(|| Error::InvalidIdToken("the token response has no id_token".into()))?;
    let nonce = Nonce::new(pending.nonce.expose().to_owned());
    let claims = provider
        .verify_id_token(&app.http, &disc, id_token, &nonce)
        .await?;
    let raw_id_token = id_token.to_string();
    let sid = verified_claim(&raw_id_token, "sid");

    let now = now_secs();
    let identity = Identity {
        sub: claims.subject().as_str().to_owned(),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned()),
        email: claims.email().map(|e| e.as_str().to_owned()),
        email_verified: claims.email_verified(),
        picture: claims
            .picture()
            .and_then(|p| p.get(None))
            .map(|p| p.as_str().to_owned()),
    };
    let data = SessionData {
        identity,
        provider: provider.id().to_owned(),
        sid,
        tokens: Tokens {
            access_token: Secret::new(token.access_token().secret().clone()),
            access_expires_at: token.expires_in().map(|d| now + d.as_secs()),
            access_issued_at: now,
            refresh_token: token
                .refresh_token()
                .map(|r| Secret::new(r.secret().clone())),
            id_token: Some(Secret::new(raw_id_token)),
        },
        created_at: now,
        last_seen: now,
    };

    // 7. No fixation: the old session (if any) ends, the new one gets a new id.
    if let Some(old) = cookie::read(headers, app.cookies.session_name())
        && let Ok(Some((old_id, _))) = app.sessions.load(&old).await
    {
        app.sessions.delete(old_id).await?;
    }
    let id = app.sessions.create(&data).await?;
    // For back-channel logout: the provider names sessions by sid (or sub).
    let until = data.created_at + app.config.session.absolute_timeout.as_secs();
    app.sessions
        .index_login(
            provider.id(),
            data.sid.as_deref(),
            &data.identity.sub,
            id,
            until,
        )
        .await?;
    set_cookies.push(
        app.cookies
            .session(&id.to_string(), app.config.session.absolute_timeout),
    );
    tracing::info!(provider = %provider.id(), "login completed");
    Ok(CallbackResponse {
        user: data.user(&app.config.session),
        return_to: pending.return_to,
    })
}

/// Maps a token-endpoint failure; never quotes the response body.
pub fn token_error<T: openidconnect::ErrorResponse>(e: RequestTokenError<HttpError, T>) -> Error {
    match e {
        RequestTokenError::Request(HttpError::Timeout) => Error::ProviderTimeout,
        RequestTokenError::Request(e) => Error::TokenExchangeFailed(e.to_string()),
        RequestTokenError::ServerResponse(r) => {
            let text = serde_json::to_value(&r)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "error response".into());
            Error::TokenExchangeFailed(format!(
                "the token endpoint answered `{}`",
                clean_error_code(&text)
            ))
        }
        RequestTokenError::Parse(e, _) => {
            Error::TokenExchangeFailed(format!("unparsable token response at {}", e.path()))
        }
        RequestTokenError::Other(e) => Error::TokenExchangeFailed(e),
    }
}

/// Reads one claim of a JWT whose signature has already been verified.
fn verified_claim(jwt: &str, name: &str) -> Option<String> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get(name)?.as_str().map(str::to_owned)
}

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

pub use crate::provider::flows::token_error;

use crate::app::App;
use crate::error::{Error, clean_description, clean_error_code};
use crate::provider::verified_claim;
use crate::secret::Secret;
use crate::session::{
    Identity, MAX_PENDING_PER_BROWSER, PendingLogin, SessionData, Tokens, cookie, now_secs,
};
use axum::http::{HeaderMap, HeaderValue};
use keyway_shared::{CallbackRequest, CallbackResponse, ProviderKind};
use openidconnect::Nonce;
use openidconnect::core::CoreIdToken;
use std::str::FromStr;
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
    let request = provider.authorization_request(&app.http).await?;
    let pending = PendingLogin {
        state: Secret::new(request.state),
        verifier: Secret::new(request.verifier),
        // Plain OAuth 2.0 has no nonce: kept empty.
        nonce: Secret::new(request.nonce.unwrap_or_default()),
        provider: provider.id().to_owned(),
        issuer: request.issuer,
        return_to,
        created_at: now_secs(),
    };
    let url = request.url;

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
    app.metrics.login_started(provider.id());
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
    // Metrics: the provider is known once the pending login is found.
    let mut provider = None;
    let result = callback_checked(app, headers, body, &mut provider).await;
    match &result {
        Ok(_) => app
            .metrics
            .login_completed(provider.as_deref().unwrap_or_default()),
        Err(e) => app.metrics.login_failed(provider.as_deref(), e),
    }
    result
}

async fn callback_checked(
    app: &App,
    headers: &HeaderMap,
    body: CallbackRequest,
    provider: &mut Option<String>,
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
    *provider = Some(pending.provider.clone());
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
    // 4. Mix-up defence (RFC 9207): the issuer this login went to.
    let disc = match provider.kind() {
        ProviderKind::Oidc => Some(provider.discovered(&app.http).await?),
        ProviderKind::Oauth2 => None,
    };
    match (body.iss.as_deref(), &disc) {
        // A plain OAuth 2.0 provider has no issuer: an `iss` belongs to another provider.
        (Some(_), None) => {
            return Err(Error::IssuerMismatch(
                "iss on a response to a plain OAuth 2.0 login",
            ));
        }
        (Some(iss), Some(_)) if !provider.issuer_matches(&pending.issuer, iss) => {
            return Err(Error::IssuerMismatch("iss is another issuer"));
        }
        (None, Some(d)) if d.requires_iss() => {
            return Err(Error::IssuerMismatch(
                "the provider sends iss, but the response has none",
            ));
        }
        _ => {}
    }
    if let Some(d) = &disc
        && d.issuer() != pending.issuer
    {
        return Err(Error::IssuerMismatch(
            "the provider's issuer changed since the login started",
        ));
    }
    let code = body
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::InvalidRequest("code is missing".into()))?;

    // 5. Exchange the code, once, with the verifier and the client secret.
    let tokens = provider
        .exchange_code(&app.http, disc.as_ref(), code, pending.verifier.expose())
        .await?;

    // 6. Who signed in: the validated ID token (OIDC) or the user endpoint (OAuth 2.0).
    let (identity, sid) = match &disc {
        Some(disc) => {
            let raw = tokens.id_token.as_deref().ok_or_else(|| {
                Error::InvalidIdToken("the token response has no id_token".into())
            })?;
            let id_token = CoreIdToken::from_str(raw)
                .map_err(|_| Error::InvalidIdToken("malformed id_token".into()))?;
            let nonce = Nonce::new(pending.nonce.expose().to_owned());
            let claims = provider
                .verify_id_token(&app.http, disc, &id_token, &nonce)
                .await?;
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
            (identity, verified_claim(raw, "sid"))
        }
        None => (
            provider
                .oauth2_identity(&app.http, &tokens.access_token)
                .await?,
            None,
        ),
    };

    let now = now_secs();
    let data = SessionData {
        identity,
        provider: provider.id().to_owned(),
        sid,
        tokens: Tokens {
            access_expires_at: tokens.expires_in.map(|d| now + d.as_secs()),
            access_issued_at: now,
            refresh_token: tokens.refresh_token,
            id_token: tokens.id_token.map(Secret::new),
            access_token: tokens.access_token,
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

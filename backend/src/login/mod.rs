//! The login: start (`POST`/`GET /bff/login`) and callback (`POST
//! /bff/callback/{provider}`, or `/bff/callback` with a single provider).
//!
//! Start makes a pending login — `state`, PKCE S256 verifier and OIDC nonce
//! from a CSPRNG, provider, issuer, `return_to`, time — and seals it into a
//! cookie of the browser ([`pending`]); it answers the authorization URL.
//!
//! The callback checks, in this order and before anything is sent to the
//! provider: the pending login of this `state` in this browser's cookies
//! (constant-time comparison), that it is used once (a replay cache in the
//! store), its age, that the response came back at that provider's own
//! redirect URI (mix-up defence without `iss`, RFC 9700 §4.4), the
//! provider's error if any (shown only now that the state matched), and
//! `iss` (RFC 9207). Only then is the code exchanged (with the verifier and
//! the client's credentials), the ID token validated, the old session (if
//! any) destroyed and a new one created under a new id.

pub(crate) mod device;
pub(crate) mod level;
pub(crate) mod options;
pub mod pending;
pub mod return_to;

use crate::app::App;
use crate::error::Error;
use crate::provider::error::{clean_description, clean_error_code};
use crate::provider::{Callback, Pending};
use crate::session::cookie;
use crate::session::data::{AuthInfo, SessionData, Tokens, now_secs};
use axum::http::{HeaderMap, HeaderValue, header};
use keyway_shared::{CallbackRequest, CallbackResponse};
use options::{LoginKind, RequestedOptions};
use pending::{NotFound, PendingLogin};

/// What a started login hands back to the HTTP layer.
#[derive(Debug)]
pub(crate) struct Started {
    /// The URL to send the browser to.
    pub authorization_url: String,
    /// `Set-Cookie` values: the pending login's cookie, and removals.
    pub set_cookies: Vec<HeaderValue>,
}

/// What a callback hands back: the outcome, and cookies to set either way
/// (the pending login's cookie is removed even when the callback is refused).
#[derive(Debug)]
pub(crate) struct Finished {
    /// The body, or why the callback was refused.
    pub result: Result<CallbackResponse, Error>,
    /// `Set-Cookie` values.
    pub set_cookies: Vec<HeaderValue>,
}

/// Starts a login with the request's login options (`prompt`, `max_age`,
/// `acr_values`, `login_hint`), each checked and refused by name when bad
/// or not taken by the provider.
pub(crate) async fn start(
    app: &App,
    headers: &HeaderMap,
    provider: Option<&str>,
    return_to: Option<&str>,
    requested: &RequestedOptions<'_>,
) -> Result<Started, Error> {
    let return_to = match return_to {
        None => "/".to_owned(),
        Some(r) => return_to::validate(r).map_err(Error::InvalidReturnTo)?,
    };
    let params = options::parse(requested)?;
    let provider = app.providers.get(provider).ok_or(Error::UnknownProvider)?;
    if params != Default::default() {
        let support = provider.login_support(&app.http).await?;
        options::check_support(provider.id(), &params, &support)?;
    }
    let kind = LoginKind::of(&params);
    let dpop = provider.new_login_key();
    let request = provider
        .authorization_request(&app.http, &params, dpop.as_ref())
        .await?;
    let login = PendingLogin {
        state: request.state,
        verifier: request.verifier,
        nonce: request.nonce,
        provider: provider.id().to_owned(),
        issuer: request.issuer,
        return_to,
        created_at: now_secs(),
        kind,
        acr_values: params.acr_values.clone(),
        max_age: params.max_age.map(|d| d.as_secs()),
        dpop_key: dpop.map(|k| k.stored().clone()),
    };
    // The cookie outlives the login by an hour, so that a late callback is
    // told `login_expired` rather than `invalid_state`.
    let lifetime = app.config.session.login_timeout + std::time::Duration::from_secs(3600);
    let set_cookies = pending::store(&app.cookie_codec, &app.cookies, headers, &login, lifetime);
    tracing::info!(provider = %provider.id(), kind = kind.label(), "login started");
    app.metrics.login_started(provider.id(), kind.label());
    Ok(Started {
        authorization_url: request.url.to_string(),
        set_cookies,
    })
}

/// Completes a login from the provider's redirect query, posted to the
/// callback of `path_provider` (`None`: the plain `/bff/callback`).
pub(crate) async fn callback(
    app: &App,
    headers: &HeaderMap,
    path_provider: Option<&str>,
    body: CallbackRequest,
) -> Finished {
    let mut set_cookies = Vec::new();
    let mut started = None;
    let result = checked(
        app,
        headers,
        path_provider,
        body,
        &mut set_cookies,
        &mut started,
    )
    .await;
    let provider = started.as_ref().map(|(p, _)| p.as_str());
    let kind = started.as_ref().map(|(_, k)| *k);
    match &result {
        Ok(_) => app.metrics.login_completed(
            provider.unwrap_or_default(),
            kind.unwrap_or_default().label(),
        ),
        Err(e) => app
            .metrics
            .login_failed(provider, kind.map(LoginKind::label), e.code()),
    }
    Finished {
        result,
        set_cookies,
    }
}

async fn checked(
    app: &App,
    headers: &HeaderMap,
    path_provider: Option<&str>,
    body: CallbackRequest,
    set_cookies: &mut Vec<HeaderValue>,
    started: &mut Option<(String, LoginKind)>,
) -> Result<CallbackResponse, Error> {
    let login = take_pending(app, headers, body.state.as_deref(), set_cookies).await?;
    *started = Some((login.provider.clone(), login.kind));
    if now_secs().saturating_sub(login.created_at) > app.config.session.login_timeout.as_secs() {
        return Err(Error::LoginExpired);
    }
    let provider = app
        .providers
        .get(Some(&login.provider))
        .ok_or(Error::UnknownProvider)?;
    // The response must come back at the redirect URI the login was sent
    // with: each provider has its own, except a single provider's `/callback`.
    let expected = (!app.providers.single()).then_some(login.provider.as_str());
    if path_provider != expected {
        return Err(Error::CallbackProviderMismatch(
            "the response came back at another provider's redirect URI",
        ));
    }
    // The provider's own error, now that its state matched a pending login.
    if let Some(code) = &body.error {
        return Err(Error::ProviderDenied {
            code: clean_error_code(code),
            description: body
                .error_description
                .as_deref()
                .and_then(clean_description),
        });
    }
    let code = body
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::InvalidRequest("code is missing".into()))?;
    let dpop = crate::tokens::binding::key_of(login.dpop_key.as_ref())?;
    let pending = Pending {
        verifier: &login.verifier,
        nonce: login.nonce.as_deref(),
        issuer: login.issuer.as_deref(),
        dpop: dpop.as_ref(),
    };
    let callback = Callback {
        code,
        iss: body.iss,
    };
    let logged_in = provider
        .complete_login(&app.http, callback, &pending)
        .await?;
    let now = now_secs();
    let skew = app.config.clock_skew.as_secs();
    level::check(
        &login,
        &logged_in.level,
        skew,
        provider.settings().acr_advisory,
        now,
    )?;
    let mut data = session_data(headers, provider.id(), logged_in, now);
    // The tokens are bound to the login's key: it stays with them.
    data.tokens.dpop_key = login.dpop_key.clone();
    let user = data.user(&app.config.session);
    start_session(app, headers, data, set_cookies).await?;
    tracing::info!(provider = %provider.id(), kind = login.kind.label(), "login completed");
    Ok(CallbackResponse {
        user,
        return_to: login.return_to,
    })
}

/// The new session of a completed login at time `now`.
fn session_data(
    headers: &HeaderMap,
    provider: &str,
    logged_in: crate::provider::LoggedIn,
    now: u64,
) -> SessionData {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    SessionData {
        identity: logged_in.identity,
        provider: provider.to_owned(),
        sid: logged_in.sid,
        nonce: logged_in.nonce,
        tokens: Tokens {
            access_expires_at: logged_in.tokens.expires_in.map(|d| now + d.as_secs()),
            access_issued_at: now,
            access_token: logged_in.tokens.access_token,
            refresh_token: logged_in.tokens.refresh_token,
            id_token: logged_in.tokens.id_token,
            dpop_key: None,
        },
        created_at: now,
        last_seen: now,
        auth: AuthInfo {
            acr: logged_in.level.acr,
            auth_time: logged_in.level.auth_time,
            user_agent: device::summary(user_agent),
        },
    }
}

/// The pending login of `state`, used once: its cookie is removed, and the
/// state is recorded in the store's replay cache so it never works again.
async fn take_pending(
    app: &App,
    headers: &HeaderMap,
    state: Option<&str>,
    set_cookies: &mut Vec<HeaderValue>,
) -> Result<PendingLogin, Error> {
    let state = state
        .filter(|s| !s.is_empty())
        .ok_or(Error::InvalidState("missing state"))?;
    let (login, name) = match pending::find(&app.cookie_codec, &app.cookies, headers, state) {
        Ok(found) => found,
        Err(NotFound::NoCookie) => {
            return Err(Error::InvalidState(
                "no pending login for this state in this browser",
            ));
        }
        Err(NotFound::Mismatch) => {
            return Err(Error::InvalidState("the pending login does not match"));
        }
    };
    set_cookies.push(app.cookies.clear_login(&name));
    let until = login.created_at + app.config.session.login_timeout.as_secs() + 60;
    if !app
        .sessions
        .claim_once(&format!("state\0{state}"), until)
        .await?
    {
        return Err(Error::InvalidState("state already used"));
    }
    Ok(login)
}

/// Ends the browser's previous session (no fixation: the new one gets a new
/// id), stores the new one, files it in the login index (back-channel
/// logout names sessions by `sid` or `sub`), and sets its cookie.
async fn start_session(
    app: &App,
    headers: &HeaderMap,
    data: SessionData,
    set_cookies: &mut Vec<HeaderValue>,
) -> Result<(), Error> {
    if let Some(old) = cookie::read(headers, app.cookies.session_name())
        && let Ok(Some(old)) = app.sessions.load(&old).await
    {
        app.sessions.delete(old.id).await?;
    }
    let session = app.sessions.create(data).await?;
    let data = &session.data;
    let until = data.created_at + app.config.session.absolute_timeout.as_secs();
    app.sessions
        .index_login(
            &data.provider,
            data.sid.as_deref(),
            &data.identity.sub,
            session.id,
            until,
        )
        .await?;
    set_cookies.push(
        app.cookies
            .session(&session.id.to_string(), app.config.session.absolute_timeout),
    );
    Ok(())
}

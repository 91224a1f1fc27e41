//! The signed-in user's own sessions (`GET /bff/sessions`, `DELETE
//! /bff/sessions/{handle}`, `POST /bff/sessions/end-others`): every
//! session of the same provider and subject, on every instance, found
//! through the login index the store already keeps for back-channel logout
//! (by `sub`), so no store needs anything new.
//!
//! Each session is shown by its handle ([`SessionId::handle`]: a hash,
//! never the id, useless as a cookie), its provider, creation and last-use
//! times, a summary of its browser, and whether it is the request's own.
//! Ending one deletes it (its cookie stops working on every instance at
//! its next request) and revokes its tokens at the provider (RFC 7009),
//! from the store's own copy (not a cache's: a rotated refresh token is the
//! one revoked). A handle of another user's session is simply not among
//! this user's: `404 unknown_session`.

use crate::app::App;
use crate::error::Error;
use crate::session::Session;
use crate::session::id::SessionId;
use crate::tokens::revoke;
use keyway_shared::SessionInfo;
use std::time::Duration;

/// The live sessions of `current`'s user, `current` among them.
async fn of_user(app: &App, current: &Session) -> Result<Vec<Session>, Error> {
    let (provider, sub) = (&current.data.provider, &current.data.identity.sub);
    let mut found = Vec::new();
    for id in app.sessions.sessions_by_sub(provider, sub).await? {
        let Some(session) = app.sessions.load(&id.to_string()).await? else {
            continue;
        };
        // The index is keyed by provider and subject; check anyway.
        if session.data.provider == *provider && session.data.identity.sub == *sub {
            found.push(session);
        }
    }
    if !found.iter().any(|s| s.id == current.id) {
        found.push(current.clone());
    }
    Ok(found)
}

/// `GET /bff/sessions`: the current session first, then the most recently used.
pub(crate) async fn list(app: &App, current: &Session) -> Result<Vec<SessionInfo>, Error> {
    let mut sessions = of_user(app, current).await?;
    sessions.sort_by_key(|s| (s.id != current.id, std::cmp::Reverse(s.data.last_seen)));
    Ok(sessions
        .iter()
        .map(|s| SessionInfo {
            handle: s.id.handle(),
            provider: s.data.provider.clone(),
            created_at: s.data.created_at,
            last_seen_at: s.data.last_seen,
            user_agent: s.data.auth.user_agent.clone(),
            current: s.id == current.id,
        })
        .collect())
}

/// `DELETE /bff/sessions/{handle}`: ends that session of the user; answers
/// whether it was the current one (its cookie is then cleared).
pub(crate) async fn end(app: &App, current: &Session, handle: &str) -> Result<bool, Error> {
    let target = of_user(app, current)
        .await?
        .into_iter()
        .find(|s| s.id.handle() == handle)
        .ok_or(Error::UnknownSession)?;
    let ended = end_all(app, &[target.id]).await?;
    tracing::info!(provider = %current.data.provider, current = target.id == current.id, ended, "a user ended one of their sessions");
    app.metrics.user_sessions_ended("one", ended as u64);
    Ok(target.id == current.id)
}

/// `POST /bff/sessions/end-others`: ends every session of the user but the
/// current one; answers how many ended.
pub(crate) async fn end_others(app: &App, current: &Session) -> Result<u32, Error> {
    let others: Vec<SessionId> = of_user(app, current)
        .await?
        .into_iter()
        .map(|s| s.id)
        .filter(|id| *id != current.id)
        .collect();
    let ended = end_all(app, &others).await?;
    tracing::info!(provider = %current.data.provider, ended, "a user ended their other sessions");
    app.metrics.user_sessions_ended("others", ended as u64);
    Ok(ended)
}

/// Deletes the sessions (the store's own copy, read first, gives the
/// tokens to revoke), then revokes their tokens, all bounded by the HTTP
/// timeout: the sessions are gone whatever the provider does.
async fn end_all(app: &App, ids: &[SessionId]) -> Result<u32, Error> {
    let mut ended = Vec::new();
    for id in ids {
        let Some(session) = app.sessions.load_fresh(*id).await? else {
            continue;
        };
        if app.sessions.delete(*id).await? {
            ended.push(session);
        }
    }
    let bound = app.config.http_timeout + Duration::from_secs(1);
    let revocations = ended.iter().map(|s| revoke::revoke_all(app, &s.data));
    let _ = tokio::time::timeout(bound, futures_util::future::join_all(revocations)).await;
    Ok(ended.len() as u32)
}

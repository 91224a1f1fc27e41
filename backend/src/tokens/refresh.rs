//! Refresh before use: a session's access token is renewed when
//! [`super::freshness::due`] says so, with one refresh grant per session at
//! a time, in this process and across every instance on the store.
//!
//! Single flight: requests of one session in this process queue on one
//! in-process lock; instances take a short store lock, and an instance that
//! finds it held waits for the other's refresh and then reads the refreshed
//! tokens from the store itself (not its cache) instead of spending the
//! refresh token a second time.
//!
//! Once the provider has answered, its answer is saved even through a
//! store outage of a few seconds (a failover, a restart): the save is tried
//! again while the lock holds ([`super::store_retry`]), because the refresh
//! token the session holds may already be spent.
//!
//! Saving is compare-and-set on the version read under the lock. If the
//! session changed meanwhile (an idle-time touch), the new tokens are put
//! onto the newer record and saved again; if it is gone (a logout, a
//! back-channel logout), the new tokens are revoked and not kept: a logout
//! is never undone, and a rotated refresh token is never overwritten by an
//! older copy.

use super::freshness;
use super::revoke;
use super::store_retry::until_stored;
use crate::app::App;
use crate::error::Error;
use crate::metrics::RefreshOutcome;
use crate::provider::error::{ProtocolError, RefreshError};
use crate::provider::{LoginFacts, TokenSet};
use crate::session::data::{SessionData, now_secs};
use crate::session::id::SessionId;
use crate::session::{Session, Updated};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long the store-wide refresh lock of a session is held at most.
pub(crate) const REFRESH_LOCK_TTL: Duration = Duration::from_secs(15);
/// How long before the refresh lock's end a save through an outage gives up
/// (the lock's clock is the store's; this covers the difference).
const LOCK_MARGIN: Duration = Duration::from_secs(2);
/// How many times a refreshed session is saved again after conflicting writes.
const SAVE_ATTEMPTS: usize = 5;

/// One lock per session that is refreshing, so that concurrent requests of a
/// session in this process send one refresh grant.
#[derive(Debug, Default)]
pub(crate) struct RefreshFlights {
    locks: Mutex<HashMap<SessionId, Weak<tokio::sync::Mutex<()>>>>,
}

impl RefreshFlights {
    fn lock_for(&self, id: SessionId) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, w| w.strong_count() > 0);
        if let Some(existing) = map.get(&id).and_then(Weak::upgrade) {
            return existing;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(id, Arc::downgrade(&lock));
        lock
    }
}

fn due(app: &App, data: &SessionData) -> bool {
    let tokens = &data.tokens;
    freshness::due(
        tokens.access_issued_at,
        tokens.access_expires_at,
        app.config.refresh_skew.as_secs(),
        now_secs(),
    )
}

/// The session with an access token fit for use, refreshed first when
/// needed. A refused refresh ends the session (`401 session_expired`).
pub(crate) async fn ensure_fresh(app: &App, session: Session) -> Result<Session, Error> {
    if !due(app, &session.data) {
        return Ok(session);
    }
    let flight = app.refresh_flights.lock_for(session.id);
    let _flight = flight.lock().await;
    let deadline = tokio::time::Instant::now() + REFRESH_LOCK_TTL;
    let mut wait = Duration::from_millis(20);
    let (lock, current) = loop {
        // Read from the store itself: another instance may have refreshed.
        let Some(current) = app.sessions.load_fresh(session.id).await? else {
            return Err(Error::SessionExpired(
                "the session ended while waiting for a refresh",
            ));
        };
        if !due(app, &current.data) {
            return Ok(current);
        }
        match app
            .sessions
            .try_lock_session(session.id, "refresh", REFRESH_LOCK_TTL)
            .await?
        {
            Some(lock) => break (lock, current),
            None if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(500));
            }
            None => return Err(ProtocolError::Timeout.into()),
        }
    };
    // The save may outlast a store outage while the lock holds (store_retry).
    let save_deadline = tokio::time::Instant::now() + REFRESH_LOCK_TTL - LOCK_MARGIN;
    let result = refresh_now(app, current, save_deadline).await;
    let _ = lock.release().await;
    result
}

async fn refresh_now(
    app: &App,
    current: Session,
    save_deadline: tokio::time::Instant,
) -> Result<Session, Error> {
    let data = &current.data;
    let Some(refresh_token) = data.tokens.refresh_token.clone() else {
        return Err(Error::SessionExpired(
            "access token expired and there is no refresh token",
        ));
    };
    let provider = app
        .providers
        .get(Some(&data.provider))
        .ok_or(Error::UnknownProvider)?;
    let dpop = super::binding::key_of(data.tokens.dpop_key.as_ref())?;
    let login = LoginFacts {
        sub: &data.identity.sub,
        nonce: data.nonce.as_deref(),
        dpop: dpop.as_ref(),
    };
    match provider.refresh(&app.http, &refresh_token, &login).await {
        Ok(tokens) => {
            app.metrics
                .refresh(&data.provider, RefreshOutcome::Succeeded);
            let saved = save(app, current, tokens, save_deadline).await?;
            tracing::info!(provider = %saved.data.provider, "access token refreshed");
            Ok(saved)
        }
        Err(RefreshError::Refused) => {
            app.metrics.refresh(&data.provider, RefreshOutcome::Refused);
            app.sessions.delete(current.id).await?;
            tracing::info!(provider = %data.provider, "refresh refused (invalid_grant); session ended");
            Err(Error::SessionExpired(
                "the provider refused the refresh token",
            ))
        }
        Err(RefreshError::InvalidIdToken(why)) => {
            app.metrics.refresh(&data.provider, RefreshOutcome::Refused);
            app.sessions.delete(current.id).await?;
            tracing::warn!(provider = %data.provider, reason = %why, "the refreshed ID token is invalid; session ended");
            revoke::revoke_all(app, data).await;
            Err(Error::SessionExpired("the refreshed ID token is invalid"))
        }
        Err(RefreshError::Failed(e)) => {
            app.metrics.refresh(&data.provider, RefreshOutcome::Failed);
            Err(e.into())
        }
    }
}

/// Puts the new tokens onto the session and saves it, compare-and-set;
/// through a store outage until `deadline` ([`super::store_retry`]).
async fn save(
    app: &App,
    read: Session,
    tokens: TokenSet,
    deadline: tokio::time::Instant,
) -> Result<Session, Error> {
    let spent = read.data.tokens.refresh_token.clone();
    let mut base = read;
    for _ in 0..SAVE_ATTEMPTS {
        let data = with_tokens(&base.data, &tokens);
        let updated = until_stored(deadline, || app.sessions.update(&base, data.clone())).await?;
        match updated {
            Updated::Saved(saved) => return Ok(saved),
            Updated::Gone => return Err(ended_meanwhile(app, &base.data, tokens).await),
            Updated::Conflict => {
                let newer = until_stored(deadline, || app.sessions.load_fresh(base.id)).await?;
                let Some(newer) = newer else {
                    return Err(ended_meanwhile(app, &base.data, tokens).await);
                };
                if newer.data.tokens.refresh_token != spent {
                    // Another refresh got there first (only if this one's lock
                    // expired): keep the stored tokens, drop these.
                    tracing::warn!(provider = %newer.data.provider, "a concurrent refresh was saved first; keeping its tokens");
                    return Ok(newer);
                }
                base = newer;
            }
        }
    }
    Err(Error::Internal(
        "the session kept changing while its refresh was saved".into(),
    ))
}

/// The session ended while its refresh was in flight: the new tokens must
/// not outlive it.
async fn ended_meanwhile(app: &App, data: &SessionData, tokens: TokenSet) -> Error {
    tracing::info!(provider = %data.provider, "the session ended during its refresh; revoking the new tokens");
    let mut gone = data.clone();
    gone.tokens.access_token = tokens.access_token;
    gone.tokens.refresh_token = tokens.refresh_token;
    revoke::revoke_all(app, &gone).await;
    Error::SessionExpired("the session ended during the refresh")
}

fn with_tokens(data: &SessionData, tokens: &TokenSet) -> SessionData {
    let now = now_secs();
    let mut data = data.clone();
    data.tokens.access_token = tokens.access_token.clone();
    data.tokens.access_issued_at = now;
    data.tokens.access_expires_at = tokens.expires_in.map(|d| now + d.as_secs());
    // A rotated refresh token replaces the old one in the same write.
    if let Some(rotated) = &tokens.refresh_token {
        data.tokens.refresh_token = Some(rotated.clone());
    }
    if let Some(id_token) = &tokens.id_token {
        data.tokens.id_token = Some(id_token.clone());
    }
    data
}

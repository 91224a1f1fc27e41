//! Memory per idle session in the memory store, measured in a process of
//! its own (`keyway-bench session-memory`): RSS before and after creating N
//! logins' worth of data through `keyway_backend::internals::Sessions`, the
//! API the login callback uses: each a session shaped like a real login's
//! (a distinct user) and its two login-index entries.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyway_backend::internals::{Identity, SessionData, Sessions, Tokens, now_secs};
use keyway_backend::{Secret, SessionSettings, StoreSetting};
use rand::RngCore;
use std::time::Duration;

/// A random URL-safe token of `bytes` random bytes (oidc-provider's opaque
/// access and refresh tokens are 32 bytes, 43 characters).
fn token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn data(id_token: &str) -> SessionData {
    let now = now_secs();
    SessionData {
        identity: Identity {
            // One user per session: each login adds its own `sub` index entry.
            sub: token(16),
            name: Some("Alice Liddell".into()),
            email: Some("alice@example.com".into()),
            email_verified: Some(true),
            picture: None,
        },
        provider: "default".into(),
        sid: Some(token(16)),
        nonce: Some(token(32)),
        tokens: Tokens {
            access_token: Secret::new(token(32)),
            access_expires_at: Some(now + 3600),
            access_issued_at: now,
            refresh_token: Some(Secret::new(token(32))),
            id_token: Some(Secret::new(id_token)),
            dpop_key: None,
        },
        created_at: now,
        last_seen: now,
        auth: Default::default(),
    }
}

/// What the login callback stores: the session and its two login-index
/// entries (by `sid` and by `sub`, for back-channel logout).
async fn login(sessions: &Sessions, id_token: &str) -> Result<(), String> {
    let session = sessions
        .create(data(id_token))
        .await
        .map_err(|e| e.to_string())?;
    let data = &session.data;
    let until = data.created_at + 7 * 86400;
    sessions
        .index_login(
            &data.provider,
            data.sid.as_deref(),
            &data.identity.sub,
            session.id,
            until,
        )
        .await
        .map_err(|e| e.to_string())
}

/// Creates `n` sessions (after 1,000 to warm the allocator) and prints
/// `KEYWAY_BENCH_MEMORY <rss before> <rss after> <n>`.
pub async fn run(n: usize, id_token: &str) -> Result<(), String> {
    let settings = SessionSettings {
        store: StoreSetting::Memory,
        idle_timeout: Duration::from_secs(8 * 3600),
        absolute_timeout: Duration::from_secs(7 * 86400),
        login_timeout: Duration::from_secs(600),
        keys: vec![],
    };
    let sessions = Sessions::open(&settings).await?;
    for _ in 0..1000 {
        login(&sessions, id_token).await?;
    }
    let before = crate::load::rss_bytes("self")?;
    for _ in 0..n {
        login(&sessions, id_token).await?;
    }
    let after = crate::load::rss_bytes("self")?;
    println!("KEYWAY_BENCH_MEMORY {before} {after} {n}");
    Ok(())
}

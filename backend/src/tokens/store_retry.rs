//! Saving a refresh's answer through a store outage.
//!
//! Once the provider has answered a refresh grant, the refresh token the
//! session holds may be spent (rotated): if the answer is not saved, the
//! next refresh spends the old one a second time, which a provider with
//! reuse detection answers by revoking the whole grant — the user is signed
//! out. A store that fails over (Sentinel, Cluster) or restarts (PostgreSQL)
//! is away for a few seconds, so the save is tried again until it lands,
//! for as long as this instance holds the session's refresh lock (no other
//! instance refreshes meanwhile); only then does the request give up with
//! `503 session_store_unavailable`.

use crate::session::store::StoreError;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// The first pause between tries; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause between tries.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Runs `op` until it does not fail with a [`StoreError`], or until the next
/// try would start after `deadline` (then the last error).
pub(crate) async fn until_stored<T, F, Fut>(deadline: Instant, mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut pause = FIRST_PAUSE;
    let mut failed = false;
    loop {
        match op().await {
            Ok(value) => {
                if failed {
                    tracing::info!("the refreshed session was saved once the store was back");
                }
                return Ok(value);
            }
            Err(e) if Instant::now() + pause < deadline => {
                if !failed {
                    tracing::warn!(error = %e, "the store is away while a refresh is saved; trying again while the refresh lock holds");
                    failed = true;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn tries_again_until_the_store_answers_or_the_deadline() {
        let tries = AtomicU32::new(0);
        let deadline = Instant::now() + Duration::from_secs(2);
        let saved = until_stored(deadline, || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0..=3 => Err(StoreError("down".into())),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(saved.unwrap(), 4);

        let tries = AtomicU32::new(0);
        let started = Instant::now();
        let deadline = started + Duration::from_millis(400);
        let given_up: Result<(), _> = until_stored(deadline, || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(StoreError("down".into()))
        })
        .await;
        assert!(given_up.is_err());
        assert!(
            Instant::now() <= deadline,
            "no try starts after the deadline"
        );
        assert!(tries.load(Ordering::SeqCst) >= 4);
    }
}

//! Waiting for something that happens on its own time (a timeout, a message
//! from another process), bounded: the one polling loop of the tests.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 50 ms until it is true; fails the test with `what`
/// if `limit` passes first.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

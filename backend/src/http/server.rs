//! The server loop: accepts connections and serves them with hyper, with the
//! limits that stop slow or silent clients from holding the server.
//!
//! `axum::serve` offers no read timeouts, so Keyway serves connections with
//! hyper-util's own builder (as axum's "serve with hyper" example does):
//!
//! - a request's headers must arrive within `server.header_timeout`
//!   (hyper's header-read timer, which also runs while a keep-alive
//!   connection waits for its next request, so idle connections close too):
//!   a connection that sends its headers one byte at a time is closed. That
//!   timer starts only once hyper-util has read the first bytes (to tell
//!   HTTP/1 from HTTP/2), which it waits for without any timer: so the first
//!   byte of a connection is awaited here, within the same timeout, and a
//!   connection that never sends one is closed too;
//! - a request's body must arrive within `server.body_timeout` (a tower-http
//!   layer in the router; the answer is `408` in the contract's shape);
//! - a request head may not exceed hyper's buffer (four times
//!   `server.max_header_bytes`); heads between the two limits get `431` in
//!   the contract's shape from the router's guard;
//! - on shutdown, listening stops and connections finish their requests.
//!
//! Each request carries the peer's address (`ConnectInfo`), which the API
//! proxy passes on as `X-Forwarded-For`.

use crate::config::ServerLimits;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` resolves, then lets the
/// connections in flight finish for at most `grace`.
pub(crate) async fn run(
    listener: TcpListener,
    router: Router,
    limits: &ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size((limits.max_header_bytes * 4).max(64 * 1024));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_timeout))
        .keep_alive_timeout(limits.header_timeout);
    let builder = std::sync::Arc::new(builder);
    let graceful = GracefulShutdown::new();
    // Tells connections still waiting for their first byte that we stop.
    let (stopping_tx, stopping) = tokio::sync::watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(req.map(axum::body::Body::new))
            });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let mut stopping = stopping.clone();
        let first_byte = limits.header_timeout;
        tokio::spawn(async move {
            let mut byte = [0u8; 1];
            tokio::select! {
                peeked = tokio::time::timeout(first_byte, stream.peek(&mut byte)) => {
                    // Nothing within the timeout, closed, or failed: done.
                    if !matches!(peeked, Ok(Ok(n)) if n > 0) {
                        return;
                    }
                }
                _ = stopping.changed() => return,
            }
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stopping_tx.send(());
    tokio::select! {
        () = graceful.shutdown() => Ok(()),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(
                timeout = %humantime::format_duration(grace),
                "shutdown timeout reached; exiting with requests still in flight"
            );
            Ok(())
        }
    }
}

//! Slow and idle connections, and request limits (issue 15, item 13;
//! security checklist "Everywhere": request body and header limits answered
//! with the contract's JSON; header-read, body-read and idle timeouts close
//! slow or silent connections).
//!
//! Raw sockets (`keyway_tests::raw_http`) against a BFF with small limits:
//! `KEYWAY_HEADER_TIMEOUT=2s`, `KEYWAY_BODY_TIMEOUT=2s`,
//! `KEYWAY_MAX_HEADER_BYTES=4096`. Each misbehaving connection must end
//! within its timeout plus a margin for a loaded machine, and while such
//! connections are open an ordinary client is served at once.

use keyway_tests::bff::{TestBff, env_for, json_of, reserve};
use keyway_tests::lying_provider::{Fault, LyingProvider};
use keyway_tests::raw_http::{RawConnection, RawOutcome, request_head};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const BODY_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_HEADER_BYTES: usize = 4096;
/// What a loaded 2-core machine may add to a timer.
const MARGIN: Duration = Duration::from_millis(1500);
/// How long a test waits for a close at most (then reports "still open").
const GIVE_UP: Duration = Duration::from_secs(15);

async fn limited_bff() -> (LyingProvider, TestBff, SocketAddr) {
    let provider = LyingProvider::start(Fault::None).await;
    let reserved = reserve().await;
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SCOPES".into(), "openid profile".into());
    env.insert("KEYWAY_HEADER_TIMEOUT".into(), "2s".into());
    env.insert("KEYWAY_BODY_TIMEOUT".into(), "2s".into());
    env.insert(
        "KEYWAY_MAX_HEADER_BYTES".into(),
        MAX_HEADER_BYTES.to_string(),
    );
    let bff = TestBff::start(reserved, &env).await.expect("BFF starts");
    let addr = format!(
        "{}:{}",
        bff.origin.host_str().unwrap(),
        bff.origin.port().unwrap()
    )
    .parse()
    .unwrap();
    (provider, bff, addr)
}

fn host(addr: SocketAddr) -> String {
    addr.to_string()
}

/// The head of `POST /bff/login` (with `X-CSRF: 1`) declaring `length` body bytes.
fn login_head(addr: SocketAddr, length: u64) -> Vec<u8> {
    let length = length.to_string();
    request_head(
        "POST",
        "/bff/login",
        &host(addr),
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", length.as_str()),
            ("X-CSRF", "1"),
        ],
    )
}

/// The JSON body of the first response received, if any.
fn json_body(outcome: &RawOutcome) -> Option<Value> {
    let text = outcome.received_text();
    let (_, body) = text.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// Asserts the connection was closed by the server within `limit` + [`MARGIN`].
fn assert_closed_within(what: &str, outcome: &RawOutcome, limit: Duration) {
    let after = outcome
        .closed_after
        .unwrap_or_else(|| panic!("{what}: still open after {GIVE_UP:?}: {outcome:?}"));
    assert!(
        after <= limit + MARGIN,
        "{what}: closed only after {after:?} (limit {limit:?})"
    );
}

/// Item 13: a connection that sends nothing is closed within the header
/// timeout; one that trickles its head a byte every 200 ms is closed within
/// the header timeout too, long before its head is complete; one that
/// declares a 1000-byte body on `POST /bff/login` and stalls gets `408
/// request_timeout` (the contract's JSON) within the body timeout and is
/// closed. While all three are open, `/healthz` answers at once.
#[tokio::test]
async fn slow_and_silent_connections_are_closed_and_others_are_served() {
    let (_provider, bff, addr) = limited_bff().await;
    let mut idle = RawConnection::idle(addr).await.unwrap();
    let head = request_head(
        "GET",
        "/healthz",
        &host(addr),
        &[("User-Agent", "slowloris"), ("Accept", "*/*")],
    );
    let head_len = head.len();
    let mut trickle = RawConnection::trickle(addr, head, Duration::from_millis(200))
        .await
        .unwrap();
    let mut stalled = RawConnection::send_then_stall(addr, login_head(addr, 1000))
        .await
        .unwrap();

    // An ordinary client meanwhile.
    let started = Instant::now();
    let r = reqwest::Client::new()
        .get(bff.url("/healthz"))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(r.status(), 200);
    for (what, c) in [
        ("idle", &idle),
        ("trickle", &trickle),
        ("stalled", &stalled),
    ] {
        assert!(
            c.outcome().still_open(),
            "{what} closed before /healthz was answered ({took:?}): the check proves nothing"
        );
    }
    assert!(took < Duration::from_secs(1), "/healthz took {took:?}");

    let idle = idle.wait_closed(GIVE_UP).await;
    assert_closed_within("idle", &idle, HEADER_TIMEOUT);
    assert!(
        idle.received.is_empty() || idle.status() == Some(408),
        "{idle:?}"
    );

    let trickle = trickle.wait_closed(GIVE_UP).await;
    assert_closed_within("trickle", &trickle, HEADER_TIMEOUT);
    assert!(
        trickle.sent < head_len,
        "the whole head ({head_len} bytes) got through: {trickle:?}"
    );
    assert_eq!(trickle.status(), None, "no response to half a head");

    let stalled = stalled.wait_closed(GIVE_UP).await;
    assert_closed_within("stalled body", &stalled, BODY_TIMEOUT);
    assert_eq!(stalled.status(), Some(408), "{}", stalled.received_text());
    let body = json_body(&stalled).expect("a JSON body");
    assert_eq!(body["error"], "request_timeout", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

/// Item 13 (with the first-byte timeout of the server loop): a connection
/// that has sent nothing does not hold up a shutdown until its header
/// timeout (here 30 s) — it is closed when the server stops.
#[tokio::test]
async fn an_idle_connection_does_not_hold_up_shutdown() {
    let provider = LyingProvider::start(Fault::None).await;
    let reserved = reserve().await;
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SCOPES".into(), "openid profile".into());
    env.insert("KEYWAY_HEADER_TIMEOUT".into(), "30s".into());
    let bff = TestBff::start(reserved, &env).await.expect("BFF starts");
    let addr: SocketAddr = format!("127.0.0.1:{}", bff.origin.port().unwrap())
        .parse()
        .unwrap();
    let mut idle = RawConnection::idle(addr).await.unwrap();
    // The server has the connection: a request on another one is answered.
    let r = reqwest::Client::new()
        .get(bff.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let started = Instant::now();
    bff.stop().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    let outcome = idle.wait_closed(GIVE_UP).await;
    assert!(!outcome.still_open(), "{outcome:?}");
}

/// Item 13: a declared `Content-Length: 10000000000` on `POST /bff/login`
/// is `413 payload_too_large` at once, before any body byte is sent.
#[tokio::test]
async fn a_huge_declared_body_is_413_at_once() {
    let (_provider, _bff, addr) = limited_bff().await;
    let mut head = login_head(addr, 10_000_000_000);
    // `Connection: close` so that the end of the answer is the end of the stream.
    head.truncate(head.len() - 2);
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut connection = RawConnection::send_then_stall(addr, head).await.unwrap();
    let outcome = connection.wait_closed(GIVE_UP).await;
    assert_eq!(outcome.status(), Some(413), "{}", outcome.received_text());
    let after = outcome.closed_after.expect("closed after the answer");
    assert!(
        after < BODY_TIMEOUT,
        "answered after {after:?}: it waited for the body"
    );
    let body = json_body(&outcome).expect("a JSON body");
    assert_eq!(body["error"], "payload_too_large", "{body}");
}

/// Item 13: a request head over `max_header_bytes` (but under the server's
/// hard buffer of 4× that) is `431 headers_too_large` with the contract's
/// JSON; one under the limit is served.
#[tokio::test]
async fn headers_over_the_limit_are_431_json() {
    let (_provider, bff, _addr) = limited_bff().await;
    let http = reqwest::Client::new();
    let big = "x".repeat(MAX_HEADER_BYTES + 1000);
    let (status, body) = json_of(
        http.get(bff.url("/bff/user"))
            .header("x-big", &big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 431, "{body}");
    assert_eq!(body["error"], "headers_too_large", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));

    let small = "x".repeat(MAX_HEADER_BYTES / 2);
    let r = http
        .get(bff.url("/healthz"))
        .header("x-big", &small)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a head under the limit is served");
}

//! Tests of the raw-socket helpers (`keyway_tests::raw_http`) against tiny
//! TCP servers started here: one that answers 408 and closes after a while,
//! one that never closes, one that resets, and ones that read what the
//! helpers send.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use keyway_tests::raw_http::{CloseKind, RawConnection, request_head};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A server that, `after` each connection was accepted, answers 408 and
/// closes it (its own idle timeout, like a real server's).
async fn closes_after(after: Duration) -> SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let _ = socket.write_all(REQUEST_TIMEOUT).await;
            });
        }
    });
    addr
}

/// A server that accepts and keeps every connection open, reading nothing.
async fn never_closes() -> SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            kept.push(socket);
        }
    });
    addr
}

/// Reads up to the end of a request head; returns it and when its last
/// byte arrived.
async fn read_head(socket: &mut TcpStream) -> (Vec<u8>, Instant) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    (head, Instant::now())
}

#[tokio::test]
async fn an_idle_connection_sees_the_servers_close_and_answer() {
    let addr = closes_after(Duration::from_millis(300)).await;
    let mut connection = RawConnection::idle(addr).await.unwrap();
    let outcome = connection.wait_closed(Duration::from_secs(10)).await;
    let after = outcome.closed_after.expect("closed by the server");
    assert!(
        after >= Duration::from_millis(300),
        "closed after {after:?}"
    );
    assert_eq!(outcome.close, Some(CloseKind::Eof));
    assert_eq!(outcome.status(), Some(408));
    assert_eq!(outcome.received, REQUEST_TIMEOUT);
    assert_eq!(outcome.sent, 0);
    // Waiting again reports the same close at once.
    assert_eq!(connection.wait_closed(Duration::ZERO).await, outcome);
}

#[tokio::test]
async fn a_bounded_wait_on_a_server_that_never_closes_says_still_open() {
    let addr = never_closes().await;
    let mut connection = RawConnection::idle(addr).await.unwrap();
    let bound = Duration::from_millis(400);
    let outcome = connection.wait_closed(bound).await;
    assert!(outcome.still_open(), "{outcome:?}");
    assert_eq!(outcome.close, None);
    assert!(outcome.received.is_empty());
    assert!(
        connection.started().elapsed() >= bound,
        "the wait lasted the whole bound"
    );
    // Still open after a longer second wait, too.
    assert!(
        connection
            .wait_closed(Duration::from_millis(600))
            .await
            .still_open()
    );
}

#[tokio::test]
async fn a_reset_is_reported_as_an_error_close() {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        if let Ok((socket, _)) = listener.accept().await {
            // SO_LINGER 0: closing sends RST instead of FIN.
            socket.set_zero_linger().unwrap();
            drop(socket);
        }
    });
    let mut connection = RawConnection::idle(addr).await.unwrap();
    let outcome = connection.wait_closed(Duration::from_secs(10)).await;
    assert!(!outcome.still_open());
    assert!(
        matches!(outcome.close, Some(CloseKind::Error(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn trickle_sends_the_head_one_byte_per_interval() {
    let (listener, addr) = listener().await;
    let (seen_tx, seen_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let (head, done) = read_head(&mut socket).await;
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        let _ = seen_tx.send((head, done));
    });
    let head = request_head("GET", "/bff/user", "127.0.0.1", &[("X-Test", "1")]);
    assert_eq!(
        head,
        b"GET /bff/user HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Test: 1\r\n\r\n"
    );
    let interval = Duration::from_millis(10);
    let started = Instant::now();
    let mut connection = RawConnection::trickle(addr, head.clone(), interval)
        .await
        .unwrap();
    let (seen, done) = seen_rx.await.unwrap();
    let spread = done - started;
    assert_eq!(seen, head, "the server got the head, in order");
    let least = interval * u32::try_from(head.len() - 1).unwrap();
    assert!(
        spread >= least,
        "sent over {spread:?}, expected >= {least:?}"
    );

    let outcome = connection.wait_closed(Duration::from_secs(10)).await;
    assert_eq!(outcome.sent, head.len());
    assert_eq!(outcome.status(), Some(200));
    assert_eq!(outcome.close, Some(CloseKind::Eof));
}

#[tokio::test]
async fn stalled_body_declares_a_length_and_sends_no_body() {
    let (listener, addr) = listener().await;
    let (seen_tx, seen_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let (head, _) = read_head(&mut socket).await;
        // Wait for the body at most 300 ms (the server's policy), then 408.
        let mut body = [0u8; 16];
        let body_read =
            tokio::time::timeout(Duration::from_millis(300), socket.read(&mut body)).await;
        let _ = socket.write_all(REQUEST_TIMEOUT).await;
        let _ = seen_tx.send((String::from_utf8(head).unwrap(), body_read.is_err()));
    });
    let mut connection = RawConnection::stalled_body(addr, "POST", "/bff/callback", "a.test", 1000)
        .await
        .unwrap();
    let outcome = connection.wait_closed(Duration::from_secs(10)).await;
    let (head, body_timed_out) = seen_rx.await.unwrap();
    assert!(
        head.starts_with("POST /bff/callback HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nContent-Length: 1000\r\n"), "{head}");
    assert!(head.contains("\r\nHost: a.test\r\n"), "{head}");
    assert!(body_timed_out, "no body byte arrived");
    assert_eq!(outcome.sent, head.len());
    assert_eq!(outcome.status(), Some(408));
    let after = outcome.closed_after.expect("closed");
    assert!(
        after >= Duration::from_millis(300),
        "closed after {after:?}"
    );
}

#[tokio::test]
async fn send_then_stall_keeps_the_connection_open_from_the_client_side() {
    let (listener, addr) = listener().await;
    let (seen_tx, seen_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut got = vec![0u8; 5];
        socket.read_exact(&mut got).await.unwrap();
        // The client must not half-close: a further read stays pending.
        let more =
            tokio::time::timeout(Duration::from_millis(300), socket.read(&mut [0u8; 1])).await;
        let _ = seen_tx.send((got, more.is_err()));
    });
    let mut connection = RawConnection::send_then_stall(addr, b"hello".to_vec())
        .await
        .unwrap();
    let (got, pending) = seen_rx.await.unwrap();
    assert_eq!(got, b"hello");
    assert!(pending, "the client sent FIN or more bytes");
    assert_eq!(connection.outcome().sent, 5);
    assert_eq!(connection.peer(), addr);
    // The server task ended (dropping its socket): the close is reported.
    let outcome = connection.wait_closed(Duration::from_secs(10)).await;
    assert!(!outcome.still_open());
}

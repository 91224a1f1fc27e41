//! Raw TCP clients for slow-connection tests (slowloris and friends): open a
//! connection and misbehave in one of a few ways, then watch whether and when
//! the server closes it.
//!
//! - [`RawConnection::idle`]: connect and send nothing;
//! - [`RawConnection::trickle`]: send bytes (e.g. a request head from
//!   [`request_head`]) one byte at a time, one every `interval`;
//! - [`RawConnection::stalled_body`]: send a request head declaring
//!   `Content-Length: N`, then no body at all;
//! - [`RawConnection::send_then_stall`]: send any bytes at once, then nothing.
//!
//! The connection stays open from the client's side (its write half is never
//! shut down) until the handle is dropped. [`RawConnection::wait_closed`]
//! reports, bounded by a maximum wait counted from the moment the connection
//! was made, whether the server closed it (a read returned 0 or an error),
//! how long after the start, and every byte the server sent (e.g. a `408`).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the server ended the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseKind {
    /// A read returned 0 bytes: an orderly close (FIN).
    Eof,
    /// A read failed, e.g. `ConnectionReset` (RST).
    Error(io::ErrorKind),
}

/// What one raw connection has seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawOutcome {
    /// When the server closed the connection, counted from the connection's
    /// start; `None` if it was still open when the wait ended.
    pub closed_after: Option<Duration>,
    /// How it was closed, if it was.
    pub close: Option<CloseKind>,
    /// Every byte the server sent, in order.
    pub received: Vec<u8>,
    /// How many bytes the client managed to send.
    pub sent: usize,
}

impl RawOutcome {
    /// Whether the connection was still open when the wait ended.
    pub fn still_open(&self) -> bool {
        self.closed_after.is_none()
    }

    /// The received bytes as (lossy) UTF-8.
    pub fn received_text(&self) -> String {
        String::from_utf8_lossy(&self.received).into_owned()
    }

    /// The status code of the first HTTP/1.x response received, if any.
    pub fn status(&self) -> Option<u16> {
        let text = self.received_text();
        let line = text.lines().next()?;
        let mut parts = line.split(' ');
        if !parts.next()?.starts_with("HTTP/1.") {
            return None;
        }
        parts.next()?.parse().ok()
    }
}

#[derive(Debug, Default)]
struct State {
    received: Vec<u8>,
    sent: usize,
}

/// One misbehaving client connection; closed (both directions) when dropped.
#[derive(Debug)]
pub struct RawConnection {
    started: Instant,
    peer: SocketAddr,
    state: Arc<Mutex<State>>,
    closed: watch::Receiver<Option<(Duration, CloseKind)>>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for RawConnection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// An HTTP/1.1 request head (request line, `Host`, the `extra` header lines
/// given as `("Name", "value")`, and the blank line), as bytes.
pub fn request_head(method: &str, path: &str, host: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

impl RawConnection {
    /// Connects to `addr` and sends nothing.
    pub async fn idle(addr: SocketAddr) -> io::Result<RawConnection> {
        Self::start(addr, Vec::new(), None).await
    }

    /// Connects to `addr` and sends `bytes` one byte at a time: the first at
    /// once, then one every `interval`; then nothing more. Stops sending if
    /// a write fails (the server closed the connection).
    pub async fn trickle(
        addr: SocketAddr,
        bytes: Vec<u8>,
        interval: Duration,
    ) -> io::Result<RawConnection> {
        Self::start(addr, bytes, Some(interval)).await
    }

    /// Connects to `addr`, sends `bytes` at once, then nothing more.
    pub async fn send_then_stall(addr: SocketAddr, bytes: Vec<u8>) -> io::Result<RawConnection> {
        Self::start(addr, bytes, None).await
    }

    /// Connects to `addr` and sends the head of `method path` (with `Host:
    /// host`, `Content-Type: application/json` and `Content-Length:
    /// content_length`), then no body.
    pub async fn stalled_body(
        addr: SocketAddr,
        method: &str,
        path: &str,
        host: &str,
        content_length: u64,
    ) -> io::Result<RawConnection> {
        let length = content_length.to_string();
        let head = request_head(
            method,
            path,
            host,
            &[
                ("Content-Type", "application/json"),
                ("Content-Length", length.as_str()),
            ],
        );
        Self::start(addr, head, None).await
    }

    async fn start(
        addr: SocketAddr,
        bytes: Vec<u8>,
        interval: Option<Duration>,
    ) -> io::Result<RawConnection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let started = Instant::now();
        let peer = stream.peer_addr()?;
        let (mut read, write) = stream.into_split();
        let state = Arc::new(Mutex::new(State::default()));
        let (closed_tx, closed) = watch::channel(None);

        let reader_state = Arc::clone(&state);
        let reader = tokio::spawn(async move {
            let mut buffer = [0u8; 4096];
            let close = loop {
                match read.read(&mut buffer).await {
                    Ok(0) => break CloseKind::Eof,
                    Ok(n) => lock(&reader_state).received.extend_from_slice(&buffer[..n]),
                    Err(e) => break CloseKind::Error(e.kind()),
                }
            };
            let _ = closed_tx.send(Some((started.elapsed(), close)));
        });

        let writer_state = Arc::clone(&state);
        let writer = tokio::spawn(async move {
            let write = write_all(write, &bytes, interval, &writer_state).await;
            // Keep the write half (never shut it down) until the handle is dropped.
            let _keep = write;
            std::future::pending::<()>().await;
        });

        Ok(RawConnection {
            started,
            peer,
            state,
            closed,
            reader,
            writer,
        })
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// When the connection was made.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Waits until the server closes the connection or until `max_wait` has
    /// passed since the connection was made, whichever is first, and reports
    /// what was seen. Returns at once if it was closed already. Can be called
    /// again (with a longer bound) while the connection is still open.
    pub async fn wait_closed(&mut self, max_wait: Duration) -> RawOutcome {
        let deadline = tokio::time::Instant::from_std(self.started + max_wait);
        let _ = tokio::time::timeout_at(deadline, self.closed.wait_for(Option::is_some)).await;
        self.outcome()
    }

    /// What was seen so far, without waiting.
    pub fn outcome(&self) -> RawOutcome {
        let closed = self.closed.borrow().clone();
        let state = lock(&self.state);
        RawOutcome {
            closed_after: closed.as_ref().map(|(after, _)| *after),
            close: closed.map(|(_, kind)| kind),
            received: state.received.clone(),
            sent: state.sent,
        }
    }
}

/// Writes `bytes`, all at once or one byte per `interval`, counting what was
/// sent; stops at the first failed write. Hands the write half back.
async fn write_all(
    mut write: OwnedWriteHalf,
    bytes: &[u8],
    interval: Option<Duration>,
    state: &Mutex<State>,
) -> OwnedWriteHalf {
    match interval {
        None => {
            if !bytes.is_empty() && write.write_all(bytes).await.is_ok() {
                let _ = write.flush().await;
                lock(state).sent = bytes.len();
            }
        }
        Some(interval) => {
            for (i, byte) in bytes.iter().enumerate() {
                if i > 0 {
                    // Pacing of the slow client, not synchronisation.
                    tokio::time::sleep(interval).await;
                }
                if write.write_all(std::slice::from_ref(byte)).await.is_err() {
                    break;
                }
                let _ = write.flush().await;
                lock(state).sent = i + 1;
            }
        }
    }
    write
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

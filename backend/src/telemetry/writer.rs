//! The log writer: lines are appended to one in-memory buffer by the
//! threads that log, and written to the sink (stderr) by one thread of its
//! own, **woken per batch rather than per line**.
//!
//! Why not `tracing-appender`'s non-blocking writer, used before: it hands
//! every line to its thread through a channel and the thread, having
//! written it, parks until the next one; under load that is one thread
//! wake-up (futex, context switch, a spin before parking) per line, which a
//! `perf` profile put at 15 % of Keyway's CPU at 32 connections, more than
//! the `write(2)` it saved (BENCHMARKS.md, round 3). No maintained crate
//! offers a writer woken per batch, so this one is Keyway's own, and is
//! tested for what the appender promised: order, completeness, no loss
//! under a blocked sink, and a flush at exit.
//!
//! How it behaves:
//!
//! - **Off the request path**: a logging thread takes a mutex, appends its
//!   line (formatted once, by `tracing-subscriber`) and leaves; it makes a
//!   system call only to wake the writer thread when that thread is parked
//!   with nothing to write.
//! - **Batched**: after each `write`, the writer thread lets lines gather
//!   for [`BATCH_PAUSE`] (cut short when [`BATCH_BYTES`] are waiting), then
//!   writes them all in one system call. A line therefore reaches stderr at
//!   most about 20 ms after it was logged; when the process is idle the
//!   first line of a burst is written at once.
//! - **Not lossy**: when [`MAX_QUEUED`] bytes wait (the sink is blocked),
//!   logging threads wait for room instead of dropping lines.
//! - **Flushed at exit**: dropping the [`LogGuard`](super::LogGuard) writes
//!   everything queued and stops the thread; lines logged after that are
//!   written directly.
//! - **In order**: lines are written in the order their `write` calls took
//!   the lock, and never interleaved (each event is one `write` call).

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the writer thread lets lines gather after writing.
pub(crate) const BATCH_PAUSE: Duration = Duration::from_millis(20);
/// Bytes that cut the pause short.
pub(crate) const BATCH_BYTES: usize = 256 * 1024;
/// Bytes queued at most; loggers wait beyond it.
pub(crate) const MAX_QUEUED: usize = 16 * 1024 * 1024;

/// Where the writer's lines go.
type Sink = Box<dyn Write + Send>;

/// The limits of one writer (the constants above, smaller in tests).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub pause: Duration,
    pub batch_bytes: usize,
    pub max_queued: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            pause: BATCH_PAUSE,
            batch_bytes: BATCH_BYTES,
            max_queued: MAX_QUEUED,
        }
    }
}

/// What the loggers and the writer thread share.
struct Shared {
    queue: Mutex<Queue>,
    /// The writer thread waits here (for lines, or during its pause).
    lines: Condvar,
    /// Loggers wait here for room when the queue is full.
    room: Condvar,
    /// Held by whoever writes to the sink: the thread, or after the stop
    /// any logger.
    sink: Mutex<Sink>,
    limits: Limits,
}

#[derive(Default)]
struct Queue {
    bytes: Vec<u8>,
    /// The writer thread is parked with nothing to write: wake it.
    parked: bool,
    /// Loggers waiting for room.
    waiting: usize,
    /// The guard was dropped: write what is left and end.
    stopping: bool,
    /// The thread has ended: loggers write to the sink themselves.
    stopped: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the queue consistent (every
    // change is one call), so a poisoned lock is used as it is.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The writer handed to `tracing-subscriber` (cheap to clone).
#[derive(Clone)]
pub(crate) struct BatchWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter").finish_non_exhaustive()
    }
}

/// Stops the writer thread when dropped, after it wrote every queued line.
#[derive(Debug)]
pub(crate) struct WriterGuard {
    writer: BatchWriter,
    thread: Option<JoinHandle<()>>,
}

impl BatchWriter {
    /// A writer to `sink` and its thread, named `thread_name`. Should no
    /// thread be had, the writer writes each line to `sink` itself.
    pub(crate) fn start(sink: Sink, limits: Limits, thread_name: &str) -> (Self, WriterGuard) {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            lines: Condvar::new(),
            room: Condvar::new(),
            sink: Mutex::new(sink),
            limits,
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(thread_name.to_owned())
                .spawn(move || run(&shared))
                .ok()
        };
        if thread.is_none() {
            lock(&shared.queue).stopped = true;
        }
        let writer = Self { shared };
        let guard = WriterGuard {
            writer: writer.clone(),
            thread,
        };
        (writer, guard)
    }

    /// Queues `line` (waiting for room when the queue is full), or writes it
    /// directly once the thread has stopped.
    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        let shared = &*self.shared;
        let mut queue = lock(&shared.queue);
        while queue.bytes.len() >= shared.limits.max_queued && !queue.stopped {
            queue.waiting += 1;
            // The thread may be pausing: a full queue ends the pause.
            shared.lines.notify_one();
            queue = shared
                .room
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
            queue.waiting -= 1;
        }
        if queue.stopped {
            drop(queue);
            let mut sink = lock(&shared.sink);
            sink.write_all(line)?;
            return sink.flush();
        }
        let before = queue.bytes.len();
        queue.bytes.extend_from_slice(line);
        let crossed =
            before < shared.limits.batch_bytes && queue.bytes.len() >= shared.limits.batch_bytes;
        if queue.parked || crossed {
            queue.parked = false;
            shared.lines.notify_one();
        }
        Ok(())
    }

    /// How many loggers wait for room (tests).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        lock(&self.shared.queue).waiting
    }
}

/// The writer thread: take the queue, write it, pause, again.
fn run(shared: &Shared) {
    let mut out = Vec::new();
    loop {
        let stopping = {
            let mut queue = lock(&shared.queue);
            while queue.bytes.is_empty() && !queue.stopping {
                queue.parked = true;
                queue = shared
                    .lines
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            queue.parked = false;
            std::mem::swap(&mut queue.bytes, &mut out);
            if queue.waiting > 0 {
                shared.room.notify_all();
            }
            if queue.stopping && out.is_empty() {
                queue.stopped = true;
                shared.room.notify_all();
                return;
            }
            queue.stopping
        };
        {
            let mut sink = lock(&shared.sink);
            // A failing stderr cannot be reported anywhere: the lines are
            // dropped, as every logger does then.
            let _ = sink.write_all(&out).and_then(|()| sink.flush());
        }
        out.clear();
        if out.capacity() > shared.limits.batch_bytes * 4 {
            out = Vec::new();
        }
        if !stopping {
            pause(shared);
        }
    }
}

/// Lets lines gather for the pause, unless many wait, a logger waits for
/// room, or the guard is gone.
fn pause(shared: &Shared) {
    let queue = lock(&shared.queue);
    let _ = shared
        .lines
        .wait_timeout_while(queue, shared.limits.pause, |q| {
            !q.stopping && q.waiting == 0 && q.bytes.len() < shared.limits.batch_bytes
        })
        .unwrap_or_else(PoisonError::into_inner);
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        {
            let mut queue = lock(&self.writer.shared.queue);
            queue.stopping = true;
            self.writer.shared.lines.notify_one();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // The thread may have died (a panicking sink): never leave loggers
        // queueing into a buffer nobody writes.
        let mut queue = lock(&self.writer.shared.queue);
        queue.stopped = true;
        let left = std::mem::take(&mut queue.bytes);
        self.writer.shared.room.notify_all();
        drop(queue);
        if !left.is_empty() {
            let mut sink = lock(&self.writer.shared.sink);
            let _ = sink.write_all(&left).and_then(|()| sink.flush());
        }
    }
}

/// What `tracing-subscriber` writes one event through.
impl Write for &BatchWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.append(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchWriter {
    type Writer = &'a BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

#[cfg(test)]
mod tests;

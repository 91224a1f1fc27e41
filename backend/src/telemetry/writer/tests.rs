//! The log writer keeps what `tracing-appender` promised (order,
//! completeness, no loss when the sink blocks, a flush at exit) and adds
//! what it is for: one write per batch, not per line.

use super::*;
use std::sync::mpsc;
use std::time::Instant;

/// A sink that keeps what it is given, and counts the `write` calls.
#[derive(Clone, Default)]
struct Captured {
    bytes: Arc<Mutex<Vec<u8>>>,
    writes: Arc<Mutex<usize>>,
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(lock(&self.bytes).clone()).expect("utf-8")
    }
    fn writes(&self) -> usize {
        *lock(&self.writes)
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&self.bytes).extend_from_slice(buf);
        *lock(&self.writes) += 1;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A sink whose first `write` blocks until the test lets it go.
struct Gated {
    inner: Captured,
    gate: Option<mpsc::Receiver<()>>,
    entered: mpsc::Sender<()>,
}

impl Write for Gated {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(gate) = self.gate.take() {
            let _ = self.entered.send(());
            let _ = gate.recv();
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn line(writer: &BatchWriter, text: &str) {
    (&mut &*writer)
        .write_all(format!("{text}\n").as_bytes())
        .expect("write");
}

/// Waits (without sleeping) until `done`, for at most 10 s.
fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// Four threads log 5 000 numbered lines each at once: after the guard is
/// dropped every line is there, whole, and each thread's lines are in the
/// order it logged them.
#[test]
fn every_line_arrives_whole_and_in_order() {
    let sink = Captured::default();
    let (writer, guard) = BatchWriter::start(Box::new(sink.clone()), Limits::default(), "log-test");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let writer = writer.clone();
            std::thread::spawn(move || {
                for i in 0..5_000 {
                    line(
                        &writer,
                        &format!("thread={t} seq={i} {}", "x".repeat(i % 97)),
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(guard);
    let text = sink.text();
    let mut next = [0usize; 4];
    for l in text.lines() {
        let mut parts = l.split(' ');
        let t: usize = parts.next().unwrap()["thread=".len()..].parse().unwrap();
        let i: usize = parts.next().unwrap()["seq=".len()..].parse().unwrap();
        assert_eq!(i, next[t], "thread {t} out of order at {l:?}");
        assert_eq!(parts.next().unwrap_or(""), "x".repeat(i % 97), "{l:?}");
        next[t] += 1;
    }
    assert_eq!(next, [5_000; 4]);
}

/// A line logged while the process is idle reaches the sink without the
/// guard being dropped (the parked thread is woken for it).
#[test]
fn an_idle_writer_writes_a_new_line_without_waiting_for_exit() {
    let sink = Captured::default();
    let limits = Limits {
        pause: Duration::from_secs(3600),
        ..Limits::default()
    };
    let (writer, guard) = BatchWriter::start(Box::new(sink.clone()), limits, "log-test");
    line(&writer, "first");
    until("the first line", || sink.text() == "first\n");
    drop(guard);
}

/// A burst past the batch size is written before the pause ends.
#[test]
fn a_full_batch_cuts_the_pause_short() {
    let sink = Captured::default();
    let limits = Limits {
        pause: Duration::from_secs(3600),
        batch_bytes: 1024,
        ..Limits::default()
    };
    let (writer, guard) = BatchWriter::start(Box::new(sink.clone()), limits, "log-test");
    line(&writer, "wakes the thread");
    until("the first line", || sink.writes() == 1);
    // The thread now pauses for an hour, unless 1 KiB gathers.
    for i in 0..200 {
        line(&writer, &format!("line {i:04}"));
    }
    // 10 bytes a line: the 103rd line crosses 1 KiB.
    until("the batch", || sink.text().lines().count() >= 100);
    drop(guard);
    assert_eq!(sink.text().lines().count(), 201);
}

/// With the sink blocked and the queue full, a logger waits for room
/// instead of dropping its line; when the sink moves again every line is
/// written.
#[test]
fn a_blocked_sink_makes_loggers_wait_and_loses_nothing() {
    let sink = Captured::default();
    let (open, gate) = mpsc::channel();
    let (entered_tx, entered) = mpsc::channel();
    let gated = Gated {
        inner: sink.clone(),
        gate: Some(gate),
        entered: entered_tx,
    };
    let limits = Limits {
        max_queued: 64,
        ..Limits::default()
    };
    let (writer, guard) = BatchWriter::start(Box::new(gated), limits, "log-test");
    line(&writer, "blocks the sink");
    entered.recv().unwrap();
    let logger = {
        let writer = writer.clone();
        std::thread::spawn(move || {
            for i in 0..50 {
                line(&writer, &format!("queued {i:02}"));
            }
        })
    };
    until("a logger waiting for room", || writer.waiting() == 1);
    assert!(!logger.is_finished());
    open.send(()).unwrap();
    logger.join().unwrap();
    drop(guard);
    let text = sink.text();
    assert_eq!(text.lines().count(), 51, "{text}");
    assert!(text.ends_with("queued 49\n"), "{text}");
}

/// Dropping the guard writes what is queued, and a line logged after that
/// is written directly.
#[test]
fn the_guard_flushes_at_exit_and_later_lines_still_arrive() {
    let sink = Captured::default();
    let limits = Limits {
        pause: Duration::from_secs(3600),
        ..Limits::default()
    };
    let (writer, guard) = BatchWriter::start(Box::new(sink.clone()), limits, "log-test");
    line(&writer, "one");
    until("the first line", || sink.writes() == 1);
    // The thread pauses for an hour: these wait in the queue.
    line(&writer, "two");
    line(&writer, "three");
    drop(guard);
    assert_eq!(sink.text(), "one\ntwo\nthree\n");
    line(&writer, "after the stop");
    assert_eq!(sink.text(), "one\ntwo\nthree\nafter the stop\n");
}

/// After a write the thread lets lines gather for the pause: a line logged
/// then is written when the pause ends, with whatever else came, not at
/// once (the thread is not woken per line).
#[test]
fn lines_logged_during_the_pause_wait_for_its_end() {
    let sink = Captured::default();
    let limits = Limits {
        pause: Duration::from_millis(300),
        ..Limits::default()
    };
    let (writer, guard) = BatchWriter::start(Box::new(sink.clone()), limits, "log-test");
    let before_first = Instant::now();
    line(&writer, "one");
    until("the first line", || sink.writes() == 1);
    line(&writer, "two");
    line(&writer, "three");
    until("the second batch", || sink.writes() == 2);
    // The pause began after the first write, so after `before_first`.
    assert!(
        before_first.elapsed() >= limits.pause,
        "written after {:?}",
        before_first.elapsed()
    );
    assert_eq!(sink.text(), "one\ntwo\nthree\n");
    drop(guard);
}

//! What the in-process BFFs of one test binary log, captured in memory: one
//! process-wide `tracing` subscriber (at `debug`) writing into a buffer, read
//! back by request id. For tests that assert what a refusal logs.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INIT: Once = Once::new();
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber (once per process; later calls do
/// nothing).
pub fn install() {
    INIT.call_once(|| {
        tracing_subscriber::fmt()
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .init();
    });
}

/// A request id unique in this process (`{prefix}-{pid}-{n}`), to send as
/// `x-request-id` and find the request's lines with [`lines_of`].
pub fn request_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::SeqCst)
    )
}

/// The captured lines that carry `request_id`.
pub fn lines_of(request_id: &str) -> Vec<String> {
    let logs = LOGS.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&logs)
        .lines()
        .filter(|l| l.contains(request_id))
        .map(str::to_owned)
        .collect()
}

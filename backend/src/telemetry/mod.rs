//! Logging set-up: human text by default, one JSON object a line with
//! `KEYWAY_LOG_FORMAT=json`. Filter with `RUST_LOG` (default `info`).
//!
//! Every event inside a request carries the request's span, whose fields
//! include `request_id` (the `x-request-id` answered): in text as the
//! `request{request_id=… method=… path=…}:` prefix, in JSON as the `span`
//! object (the innermost span) and the `spans` list (all of them). Colours
//! are used only when stderr is a terminal.
//!
//! Lines are formatted where they happen and written to stderr by a
//! background thread ([`writer`]), so a request never waits for a `write`
//! system call, and that thread is woken per batch of lines, not per line:
//! it writes what gathered in one call, then lets lines gather again for
//! up to 20 ms. The writer is **not lossy**: when 16 MiB of lines wait
//! (stderr blocked), the threads that log wait for room instead of
//! dropping lines, so no access line is ever lost. The [`LogGuard`]
//! returned by [`init`] writes what is still queued when it is dropped:
//! keep it for the life of the process.

mod writer;

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;
use writer::{BatchWriter, Limits, WriterGuard};

/// Keeps the log writer's thread running; dropping it writes every queued
/// line to stderr and stops the thread. Keep it until the process ends.
#[must_use = "dropping the guard stops the log writer"]
#[derive(Debug)]
pub struct LogGuard {
    _writer: WriterGuard,
}

/// Installs the global subscriber (once; a second call installs nothing
/// and its guard only holds an idle writer).
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,keyway_backend=info"));
    let (writer, guard) =
        BatchWriter::start(Box::new(std::io::stderr()), Limits::default(), "keyway-log");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    LogGuard { _writer: guard }
}

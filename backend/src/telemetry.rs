//! Logging set-up: human text by default, one JSON object a line with
//! `KEYWAY_LOG_FORMAT=json`. Filter with `RUST_LOG` (default `info`).
//!
//! Every event inside a request carries the request's span, whose fields
//! include `request_id` (the `x-request-id` answered): in text as the
//! `request{request_id=… method=… path=…}:` prefix, in JSON as the `span`
//! object (the innermost span) and the `spans` list (all of them). Colours
//! are used only when stderr is a terminal.

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,keyway_backend=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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
}

//! The top-level settings: where Keyway listens, the origin the browser
//! sees, the SPA to serve, logs, outbound timeouts and the limits on
//! incoming connections.

use super::error::ConfigErrors;
use super::raw::{RawConfig, RawServer};
use super::sources::Sources;
use super::values::{duration, is_loopback_host, unknown_keys};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object a line.
    Json,
}

/// Limits on incoming connections and requests. Each closes a way for a
/// client to hold the server's resources: a connection that never sends its
/// headers (or sends them a byte at a time), a keep-alive connection left
/// idle, a body that never arrives, a huge body or header block.
#[derive(Debug, Clone, Serialize)]
pub struct ServerLimits {
    /// A request's headers must arrive within this, counted from when the
    /// connection opened or the previous response was sent: so it is also
    /// how long a keep-alive connection may stay idle.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A request's body must arrive within this.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// The largest request body of `/bff/*` (the API proxy has its own per API).
    pub max_body: usize,
    /// The largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_body: 64 * 1024,
            max_header_bytes: 32 * 1024,
        }
    }
}

/// The top-level settings, read and checked.
pub(super) struct Server {
    pub listen: SocketAddr,
    pub public_url: Url,
    pub static_dir: Option<PathBuf>,
    pub log_format: LogFormat,
    pub http_timeout: Duration,
    pub discovery_ttl: Duration,
    pub refresh_skew: Duration,
    pub shutdown_timeout: Duration,
    pub tls_ca_file: Option<PathBuf>,
    pub limits: ServerLimits,
    pub clock_skew: Duration,
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Reads and checks the top-level settings.
pub(super) fn read(errs: &mut ConfigErrors, src: &Sources, raw: &RawConfig) -> Server {
    let listen = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = listen.parse::<SocketAddr>().unwrap_or_else(|_| {
        errs.push(
            src.name("listen"),
            format!("`{listen}` is not an address like 127.0.0.1:8080"),
        );
        DEFAULT_LISTEN.parse().expect("literal")
    });
    let public_url = public_url(errs, src, raw.public_url.as_deref(), listen);
    if let Some(dir) = &raw.static_dir
        && !dir.join("index.html").is_file()
    {
        errs.push(
            src.name("static_dir"),
            format!(
                "`{}` has no index.html (build the SPA with `trunk build --release`)",
                dir.display()
            ),
        );
    }
    let log_format = match raw.log_format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            errs.push(
                src.name("log_format"),
                format!("`{other}` is neither `text` nor `json`"),
            );
            LogFormat::Text
        }
    };
    if let Some(ca) = &raw.tls_ca_file
        && !ca.is_file()
    {
        errs.push(
            src.name("tls_ca_file"),
            format!("`{}` is not a readable file", ca.display()),
        );
    }
    let time = |errs: &mut ConfigErrors, key: &str, raw: &Option<String>, default: u64| {
        duration(
            errs,
            || src.name(key),
            raw.as_deref(),
            Duration::from_secs(default),
        )
    };
    Server {
        listen,
        public_url,
        static_dir: raw.static_dir.clone(),
        log_format,
        http_timeout: time(errs, "http_timeout", &raw.http_timeout, 10),
        discovery_ttl: time(errs, "discovery_ttl", &raw.discovery_ttl, 3600),
        refresh_skew: time(errs, "refresh_skew", &raw.refresh_skew, 60),
        shutdown_timeout: time(errs, "shutdown_timeout", &raw.shutdown_timeout, 30),
        tls_ca_file: raw.tls_ca_file.clone(),
        limits: limits(errs, src, &raw.server),
        clock_skew: time(errs, "clock_skew", &raw.clock_skew, 60),
    }
}

fn public_url(
    errs: &mut ConfigErrors,
    src: &Sources,
    raw: Option<&str>,
    listen: SocketAddr,
) -> Url {
    let fallback = || Url::parse(&format!("http://{listen}")).expect("an address makes a URL");
    match raw {
        Some(raw) => parse_public_url(raw).unwrap_or_else(|e| {
            errs.push(src.name("public_url"), e);
            fallback()
        }),
        None if listen.ip().is_loopback() => fallback(),
        None => {
            errs.push(
                src.name("public_url"),
                "required when listening on a non-loopback address (the https origin the browser sees)",
            );
            fallback()
        }
    }
}

fn parse_public_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{raw}` must be an http(s) origin"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{raw}` must be an origin only, like https://app.example.com (no path)"
        ));
    }
    if url.scheme() == "http" && !is_loopback_host(&url) {
        return Err(format!(
            "`{raw}` uses plain http on a non-loopback host: use https (plain http is only for 127.0.0.1/localhost development)"
        ));
    }
    Ok(url)
}

fn limits(errs: &mut ConfigErrors, src: &Sources, raw: &RawServer) -> ServerLimits {
    unknown_keys(errs, "server.", &raw.unknown);
    let d = ServerLimits::default();
    let time = |errs: &mut ConfigErrors, key: &str, raw: &Option<String>, default: Duration| {
        duration(errs, || src.name(key), raw.as_deref(), default)
    };
    let mut size = |key: &str, raw: Option<usize>, default: usize, min: usize| match raw {
        Some(n) if n < min => {
            errs.push(src.name(key), format!("{n} is too small (at least {min})"));
            default
        }
        Some(n) => n,
        None => default,
    };
    let max_body = size("server.max_body", raw.max_body, d.max_body, 1024);
    let max_header_bytes = size(
        "server.max_header_bytes",
        raw.max_header_bytes,
        d.max_header_bytes,
        4096,
    );
    ServerLimits {
        header_timeout: time(
            errs,
            "server.header_timeout",
            &raw.header_timeout,
            d.header_timeout,
        ),
        body_timeout: time(
            errs,
            "server.body_timeout",
            &raw.body_timeout,
            d.body_timeout,
        ),
        max_body,
        max_header_bytes,
    }
}

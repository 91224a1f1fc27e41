//! Readers for the kinds of values settings hold (durations, URLs, names,
//! secret files), each reporting a problem under the setting's name.

use super::error::ConfigErrors;
use super::raw::Unknown;
use crate::secret::Secret;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;
use url::Url;

/// A duration such as `30s`, `8h` or `7d`; the default when not set.
pub(super) fn duration(
    errs: &mut ConfigErrors,
    setting: impl FnOnce() -> String,
    raw: Option<&str>,
    default: Duration,
) -> Duration {
    match raw {
        None => default,
        Some(r) => match humantime::parse_duration(r) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                errs.push(
                    setting(),
                    format!("`{r}` is not a duration like `30s`, `8h` or `7d`"),
                );
                default
            }
        },
    }
}

/// Whether a URL's host is a loopback address or `localhost`.
pub(crate) fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// An https URL (plain http only on a loopback host, for development).
pub(super) fn secure_url(raw: &str) -> Result<Url, String> {
    match Url::parse(raw) {
        Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && is_loopback_host(&u)) => Ok(u),
        Ok(_) => Err(format!("`{raw}` must be https (http only on loopback)")),
        Err(e) => Err(format!("`{raw}` is not a URL: {e}")),
    }
}

/// An identifier: letters, digits, `-` and `_`.
pub(super) fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A secret read from a file (one trailing newline dropped).
pub(super) fn secret_file(path: &Path) -> Result<Secret, String> {
    std::fs::read_to_string(path)
        .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}

/// Reports every key the model does not know, under `prefix` (`session.`).
pub(super) fn unknown_keys(errs: &mut ConfigErrors, prefix: &str, unknown: &Unknown) {
    for key in unknown.keys() {
        errs.push(
            format!("{prefix}{key}"),
            "unknown setting (a typo?); see docs/configuration.md",
        );
    }
}

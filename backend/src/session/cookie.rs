//! The two cookies of Keyway and their attributes.
//!
//! - the session cookie, `__Host-keyway` over https (`Secure; HttpOnly;
//!   SameSite=Lax; Path=/`, no `Domain`: the `__Host-` prefix makes the
//!   browser refuse it otherwise), or `keyway` without `Secure` on loopback
//!   http development;
//! - one pending-login cookie per started login, `__Host-keyway-login-<tag>`
//!   / `keyway-login-<tag>`, holding the login's state, PKCE verifier and
//!   nonce sealed with the session key (see `login::pending`): it binds the
//!   login to the browser that started it and costs the store nothing. It
//!   lives for the login timeout and is removed by the callback.
//!
//! `SameSite=Lax` (not Strict) because the provider's redirect back to
//! `/callback` is a cross-site top-level navigation; the callback itself is a
//! same-origin `fetch` from the SPA, so Lax is enough for both.

use axum::http::{HeaderMap, HeaderValue, header};
use std::time::Duration;

/// Cookie names and attributes for one deployment.
#[derive(Debug, Clone)]
pub struct CookieSettings {
    secure: bool,
    session_name: &'static str,
    login_prefix: &'static str,
}

impl CookieSettings {
    /// Settings for an https (`secure`) or loopback-http deployment.
    pub fn new(secure: bool) -> Self {
        if secure {
            Self {
                secure,
                session_name: "__Host-keyway",
                login_prefix: "__Host-keyway-login-",
            }
        } else {
            Self {
                secure,
                session_name: "keyway",
                login_prefix: "keyway-login-",
            }
        }
    }

    /// The session cookie's name.
    pub fn session_name(&self) -> &'static str {
        self.session_name
    }

    /// The prefix of the pending-login cookies' names.
    pub fn login_prefix(&self) -> &'static str {
        self.login_prefix
    }

    fn build(&self, name: &str, value: &str, max_age: Option<Duration>) -> HeaderValue {
        let mut c = cookie::Cookie::new(name, value);
        c.set_http_only(true);
        c.set_secure(self.secure);
        c.set_same_site(cookie::SameSite::Lax);
        c.set_path("/");
        if let Some(age) = max_age {
            c.set_max_age(cookie::time::Duration::seconds(age.as_secs() as i64));
        }
        HeaderValue::from_str(&c.encoded().to_string()).expect("cookie values are base64url")
    }

    /// `Set-Cookie` for the session.
    pub fn session(&self, id: &str, max_age: Duration) -> HeaderValue {
        self.build(self.session_name, id, Some(max_age))
    }

    /// `Set-Cookie` that removes the session cookie.
    pub fn clear_session(&self) -> HeaderValue {
        self.build(self.session_name, "", Some(Duration::ZERO))
    }

    /// `Set-Cookie` for a pending-login cookie (`name` has the login prefix).
    pub fn login(&self, name: &str, value: &str, max_age: Duration) -> HeaderValue {
        self.build(name, value, Some(max_age))
    }

    /// `Set-Cookie` that removes the pending-login cookie `name`.
    pub fn clear_login(&self, name: &str) -> HeaderValue {
        self.build(name, "", Some(Duration::ZERO))
    }
}

/// Every cookie of the request, as (name, value). Malformed cookie headers
/// are skipped, never an error.
fn all(headers: &HeaderMap) -> impl Iterator<Item = (String, String)> + '_ {
    headers
        .get_all(header::COOKIE)
        .iter()
        // Not `to_str()`: a header with a non-ASCII byte anywhere (another
        // site cookie holding UTF-8) would hide Keyway's own cookie. Found by
        // the `cookie` fuzz target.
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .flat_map(cookie::Cookie::split_parse_encoded)
        .filter_map(Result::ok)
        .map(|c| (c.name().to_owned(), c.value().to_owned()))
}

/// The value of cookie `name` in the request, if present (first wins).
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    all(headers).find(|(n, _)| n == name).map(|(_, v)| v)
}

/// Every cookie whose name starts with `prefix`, as (name, value).
pub fn read_prefixed(headers: &HeaderMap, prefix: &str) -> Vec<(String, String)> {
    all(headers)
        .filter(|(n, _)| n.starts_with(prefix))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_cookie_has_host_prefix_and_every_flag() {
        let c = CookieSettings::new(true).session("abc", Duration::from_secs(60));
        let s = c.to_str().unwrap();
        assert!(s.starts_with("__Host-keyway=abc"), "{s}");
        for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=60"] {
            assert!(s.contains(attr), "{s} lacks {attr}");
        }
        assert!(!s.contains("Domain"));
    }

    #[test]
    fn loopback_cookie_is_not_secure() {
        let s = CookieSettings::new(false).session("abc", Duration::from_secs(60));
        let s = s.to_str().unwrap();
        assert!(s.starts_with("keyway=abc") && !s.contains("Secure") && s.contains("HttpOnly"));
    }

    #[test]
    fn non_ascii_bytes_elsewhere_do_not_hide_the_cookie() {
        // Regression: fuzz/artifacts/cookie/crash-7932fc42 (`(\xdf1` after a valid cookie).
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_bytes(b"__Host-keyway=28df31; (\xdf1; other=caf\xc3\xa9").unwrap(),
        );
        assert_eq!(read(&h, "__Host-keyway").as_deref(), Some("28df31"));
    }

    #[test]
    fn reads_among_garbage() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; ;;=; keyway=xyz; b"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("keyway=second"));
        assert_eq!(read(&h, "keyway").as_deref(), Some("xyz"));
        assert_eq!(read(&h, "nope"), None);
    }
}

//! The two cookies of Keyway and their attributes.
//!
//! - the session cookie, `__Host-keyway` over https (`Secure; HttpOnly;
//!   SameSite=Lax; Path=/`, no `Domain`: the `__Host-` prefix makes the
//!   browser refuse it otherwise), or `keyway` without `Secure` on loopback
//!   http development;
//! - the pending-login cookie, `__Host-keyway-login` / `keyway-login`, that
//!   binds a started login to the browser that started it, removed when the
//!   last pending login of the browser completes.
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
    login_name: &'static str,
}

impl CookieSettings {
    /// Settings for an https (`secure`) or loopback-http deployment.
    pub fn new(secure: bool) -> Self {
        if secure {
            Self {
                secure,
                session_name: "__Host-keyway",
                login_name: "__Host-keyway-login",
            }
        } else {
            Self {
                secure,
                session_name: "keyway",
                login_name: "keyway-login",
            }
        }
    }

    /// The session cookie's name.
    pub fn session_name(&self) -> &'static str {
        self.session_name
    }

    /// The pending-login cookie's name.
    pub fn login_name(&self) -> &'static str {
        self.login_name
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

    /// `Set-Cookie` for the pending-login binding.
    pub fn login(&self, id: &str, max_age: Duration) -> HeaderValue {
        self.build(self.login_name, id, Some(max_age))
    }

    /// `Set-Cookie` that removes the pending-login cookie.
    pub fn clear_login(&self) -> HeaderValue {
        self.build(self.login_name, "", Some(Duration::ZERO))
    }
}

/// The value of cookie `name` in the request, if present (first wins).
/// Malformed cookie headers are ignored, never an error.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        // Not `to_str()`: a header with a non-ASCII byte anywhere (another
        // site cookie holding UTF-8) would hide Keyway's own cookie. Found by
        // the `cookie` fuzz target.
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .flat_map(cookie::Cookie::split_parse_encoded)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
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

//! Pending logins, kept by the browser: each started login is one
//! short-lived cookie holding its `state`, PKCE verifier, nonce, provider,
//! issuer, return path and start time, sealed with the session key
//! (XChaCha20-Poly1305, the cookie's name as associated data). Nothing is
//! written to the store until a callback succeeds, so a flood of anonymous
//! login starts costs the store nothing (the design of the large BFFs:
//! Duende's and Microsoft's OpenID Connect handlers keep their correlation
//! cookie the same way).
//!
//! The cookie's name carries a short hash of the state, so a callback finds
//! its own login among several started in parallel (two tabs); the state
//! inside is then compared in constant time. A browser holds at most
//! [`MAX_PENDING`] pending logins and at most [`MAX_PENDING_BYTES`] of them:
//! starting another drops the oldest. Being sealed, the cookie tells the
//! browser nothing (the verifier and nonce stay secret) and cannot be
//! forged or moved to another name.

use crate::session::codec::Codec;
use crate::session::cookie::{self, CookieSettings};
use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// At most this many logins may be pending in one browser at once.
pub const MAX_PENDING: usize = 8;
/// At most this many bytes of pending-login cookies per browser (a proxy's
/// header limit, often 8 KiB for all cookies together, must still pass).
pub const MAX_PENDING_BYTES: usize = 6 * 1024;

/// A login started by a browser and not yet completed.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The `state` sent to the provider.
    pub state: String,
    /// The PKCE verifier.
    pub verifier: String,
    /// The OIDC nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The provider id.
    pub provider: String,
    /// The issuer the login went to (mix-up defence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Where to go after login.
    pub return_to: String,
    /// When it was started (seconds since the epoch).
    pub created_at: u64,
    /// The DPoP key whose thumbprint went out as `dpop_jkt`, if the
    /// provider binds tokens.
    #[serde(
        with = "crate::secret::stored::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dpop_key: Option<crate::secret::Secret>,
    /// Interactive, silent or step-up (for the metrics and logs).
    #[serde(default)]
    pub kind: super::options::LoginKind,
    /// The `acr_values` asked for: the ID token's `acr` must be one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
    /// The `max_age` asked for, in seconds: `auth_time` must be that recent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("provider", &self.provider)
            .field("created_at", &self.created_at)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The name of the cookie of the login with `state`.
pub fn cookie_name(cookies: &CookieSettings, state: &str) -> String {
    let digest = Sha256::digest([b"keyway pending login v1\0", state.as_bytes()].concat());
    format!(
        "{}{}",
        cookies.login_prefix(),
        URL_SAFE_NO_PAD.encode(&digest[..9])
    )
}

/// Seals a started login into its cookie; returns the `Set-Cookie` values:
/// the new cookie, and the removal of the oldest pending logins beyond the
/// bounds (and of any that no longer open).
pub fn store(
    codec: &Codec,
    cookies: &CookieSettings,
    headers: &HeaderMap,
    login: &PendingLogin,
    lifetime: Duration,
) -> Vec<HeaderValue> {
    let name = cookie_name(cookies, &login.state);
    let value = codec.seal_text(&name, login);
    let mut set = Vec::new();
    // The browser's other pending logins, newest first.
    let mut others: Vec<(String, usize, u64)> = Vec::new();
    for (other, text) in cookie::read_prefixed(headers, cookies.login_prefix()) {
        if other == name {
            continue;
        }
        match codec.open_text::<PendingLogin>(&other, &text) {
            Ok(p) => others.push((other, text.len(), p.created_at)),
            Err(_) => set.push(cookies.clear_login(&other)),
        }
    }
    others.sort_by_key(|o| std::cmp::Reverse(o.2));
    let mut bytes = name.len() + value.len();
    let mut kept = 1;
    for (other, len, _) in others {
        let size = other.len() + len;
        if kept < MAX_PENDING && bytes + size <= MAX_PENDING_BYTES {
            kept += 1;
            bytes += size;
        } else {
            set.push(cookies.clear_login(&other));
        }
    }
    set.push(cookies.login(&name, &value, lifetime));
    set
}

/// Why no pending login was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFound {
    /// This browser has no cookie for a login with this state.
    NoCookie,
    /// The cookie does not open (tampered, another key) or its state differs.
    Mismatch,
}

/// The pending login of `state` in this browser, and its cookie's name.
pub fn find(
    codec: &Codec,
    cookies: &CookieSettings,
    headers: &HeaderMap,
    state: &str,
) -> Result<(PendingLogin, String), NotFound> {
    let name = cookie_name(cookies, state);
    let text = cookie::read(headers, &name).ok_or(NotFound::NoCookie)?;
    let login: PendingLogin = codec
        .open_text(&name, &text)
        .map_err(|_| NotFound::Mismatch)?;
    if bool::from(login.state.as_bytes().ct_eq(state.as_bytes())) {
        Ok((login, name))
    } else {
        Err(NotFound::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SessionKey;
    use axum::http::header;

    fn login(state: &str, created_at: u64) -> PendingLogin {
        PendingLogin {
            state: state.into(),
            verifier: "v".repeat(43),
            nonce: Some("n".into()),
            provider: "p".into(),
            issuer: None,
            return_to: "/".into(),
            created_at,
            dpop_key: None,
            kind: Default::default(),
            acr_values: Vec::new(),
            max_age: None,
        }
    }

    fn browser(set: &[HeaderValue]) -> HeaderMap {
        let pairs: Vec<String> = set
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .filter(|p| !p.ends_with('='))
            .collect();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&pairs.join("; ")).unwrap(),
        );
        h
    }

    #[test]
    fn a_login_is_found_by_its_state_only() {
        let codec = Codec::for_cookies(&[SessionKey([3; 32])]);
        let cookies = CookieSettings::new(true);
        let set = store(
            &codec,
            &cookies,
            &HeaderMap::new(),
            &login("s1", 1),
            Duration::from_secs(600),
        );
        let h = browser(&set);
        let (found, name) = find(&codec, &cookies, &h, "s1").unwrap();
        assert_eq!(found.verifier, "v".repeat(43));
        assert!(name.starts_with("__Host-keyway-login-"));
        assert_eq!(
            find(&codec, &cookies, &h, "s2").unwrap_err(),
            NotFound::NoCookie
        );
        let other = Codec::for_cookies(&[SessionKey([4; 32])]);
        assert_eq!(
            find(&other, &cookies, &h, "s1").unwrap_err(),
            NotFound::Mismatch
        );
        let value = set[0].to_str().unwrap();
        assert!(!value.contains(&"v".repeat(43)), "the verifier is sealed");
        assert!(value.contains("HttpOnly") && value.contains("Max-Age=600"));
    }

    #[test]
    fn the_oldest_logins_beyond_the_bound_are_dropped() {
        let codec = Codec::for_cookies(&[]);
        let cookies = CookieSettings::new(false);
        let mut jar: Vec<HeaderValue> = Vec::new();
        for i in 0..(MAX_PENDING as u64 + 3) {
            let h = browser(&jar);
            let set = store(
                &codec,
                &cookies,
                &h,
                &login(&format!("s{i}"), i),
                Duration::from_secs(60),
            );
            // Apply the Set-Cookie headers to the jar.
            for v in set {
                let text = v.to_str().unwrap().to_owned();
                let name = text.split('=').next().unwrap().to_owned();
                jar.retain(|j| !j.to_str().unwrap().starts_with(&format!("{name}=")));
                if !text.contains("Max-Age=0") {
                    jar.push(v);
                }
            }
            assert!(jar.len() <= MAX_PENDING);
        }
        let h = browser(&jar);
        assert_eq!(jar.len(), MAX_PENDING);
        assert!(find(&codec, &cookies, &h, "s0").is_err(), "the oldest went");
        assert!(find(&codec, &cookies, &h, &format!("s{}", MAX_PENDING + 2)).is_ok());
        let total: usize = jar.iter().map(|v| v.len()).sum();
        assert!(total <= MAX_PENDING_BYTES + 1024, "{total}");
    }
}

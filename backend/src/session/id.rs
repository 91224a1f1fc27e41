//! Session ids: 128 bits from the operating system's CSPRNG, written as 22
//! base64url characters in the cookie. The store never sees an id itself:
//! records are kept under [`SessionId::record_key`], a hash of it, so someone
//! who reads the store (a backup, `redis-cli KEYS`) finds no value that works
//! as a cookie.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The prefix of every session record key (Redis tracks changes by it).
pub(crate) const RECORD_PREFIX: &str = "kws_";

/// A session id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// A new random id.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// The key of this session's record in the store: [`RECORD_PREFIX`] and
    /// 128 bits of SHA-256 over the id, base64url.
    pub fn record_key(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"keyway session record v2\0");
        h.update(self.0);
        let digest = h.finalize();
        format!("{RECORD_PREFIX}{}", URL_SAFE_NO_PAD.encode(&digest[..16]))
    }

    /// The name the user sees for this session in `GET /bff/sessions`: 128
    /// bits of SHA-256 over the id (another domain than the record key's),
    /// base64url. It names the session without being usable as a cookie,
    /// and the id cannot be found from it.
    pub fn handle(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"keyway session handle v1\0");
        h.update(self.0);
        URL_SAFE_NO_PAD.encode(&h.finalize()[..16])
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for SessionId {
    /// Ids are bearer credentials: their debug form is not the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

impl FromStr for SessionId {
    type Err = ();

    /// Parses the cookie form; anything else (wrong length, padding,
    /// another alphabet) is not an id.
    fn from_str(s: &str) -> Result<Self, ()> {
        if s.len() != 22 {
            return Err(());
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| ())?;
        bytes.try_into().map(Self).map_err(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_differ() {
        let a = SessionId::random();
        let b = SessionId::random();
        assert_ne!(a, b);
        assert_eq!(a.to_string().len(), 22);
        assert_eq!(a.to_string().parse::<SessionId>().unwrap(), a);
        assert!(!format!("{a:?}").contains(&a.to_string()));
    }

    #[test]
    fn record_keys_hide_the_id() {
        let a = SessionId::random();
        let key = a.record_key();
        assert!(key.starts_with(RECORD_PREFIX));
        assert!(!key.contains(&a.to_string()));
        assert_eq!(key, a.record_key(), "deterministic");
        let handle = a.handle();
        assert_eq!(handle.len(), 22);
        assert_ne!(handle, a.to_string());
        assert!(!key.contains(&handle) && handle.parse::<SessionId>().ok() != Some(a));
        assert_ne!(handle, SessionId::random().handle());
    }

    #[test]
    fn garbage_is_not_an_id() {
        for bad in [
            "",
            "x",
            "AAAAAAAAAAAAAAAAAAAAA=",
            "AAAAAAAAAAAAAAAAAAAAA!",
            &"A".repeat(23),
        ] {
            assert!(bad.parse::<SessionId>().is_err(), "{bad}");
        }
    }
}

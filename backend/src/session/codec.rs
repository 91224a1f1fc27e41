//! Encryption of what Keyway keeps outside its memory: session records at
//! rest, and the pending-login cookies held by the browser.
//!
//! With keys configured (`KEYWAY_SESSION_KEY`), a value is one
//! XChaCha20-Poly1305 ciphertext with a random 24-byte nonce and associated
//! data naming what it is (a record's key, a cookie's name), so a ciphertext
//! cannot be moved to another record or cookie. The first key encrypts;
//! every key is tried to decrypt, so keys rotate by putting the new one
//! first. XChaCha's 24-byte random nonces are safe without counters across
//! instances. Without keys (the memory store only), records are kept as
//! plain JSON in process memory.
//!
//! The codec also names the login-index entries ([`Codec::lookup_names`]):
//! a keyed hash, so the store shows neither a provider's `sid` nor a `sub`.

use crate::config::SessionKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// The first byte of sealed data.
const SEALED: u8 = b'S';
/// The first byte of plain JSON data.
const PLAIN: u8 = b'P';
const NONCE_LEN: usize = 24;

/// Why stored data could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// No key opens the ciphertext (tampered, or the key was removed).
    #[error("no configured key decrypts this data")]
    Undecryptable,
    /// The stored shape is not what Keyway writes.
    #[error("malformed data: {0}")]
    Malformed(String),
}

/// A short public fingerprint of a key: which key sealed a record.
pub(crate) type KeyTag = [u8; 8];

/// Seals and opens data.
#[derive(Clone)]
pub struct Codec {
    ciphers: Vec<XChaCha20Poly1305>,
    /// One lookup key per session key, derived from it (same order).
    lookup: Vec<[u8; 32]>,
    /// One fingerprint per session key (same order).
    tags: Vec<KeyTag>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Codec({} keys)", self.ciphers.len())
    }
}

fn derive(label: &[u8], key: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(label);
    h.update(key);
    h.finalize().into()
}

impl Codec {
    /// A codec with these keys (none: plain JSON).
    pub fn new(keys: &[SessionKey]) -> Self {
        Self {
            ciphers: keys
                .iter()
                .map(|k| XChaCha20Poly1305::new((&k.0).into()))
                .collect(),
            lookup: keys
                .iter()
                .map(|k| derive(b"keyway lookup key v1\0", &k.0))
                .collect(),
            tags: keys
                .iter()
                .map(|k| {
                    let d = derive(b"keyway key tag v1\0", &k.0);
                    std::array::from_fn(|i| d[i])
                })
                .collect(),
        }
    }

    /// A codec for cookies: the configured keys, or, when there are none
    /// (memory store), a random key of this process (what it seals does not
    /// outlive the process, like the memory store's sessions).
    pub fn for_cookies(keys: &[SessionKey]) -> Self {
        if keys.is_empty() {
            Self::new(&[SessionKey(rand::random())])
        } else {
            // Another derivation, so a cookie can never be taken for a record.
            let derived: Vec<SessionKey> = keys
                .iter()
                .map(|k| SessionKey(derive(b"keyway cookie key v1\0", &k.0)))
                .collect();
            Self::new(&derived)
        }
    }

    /// The fingerprint of the key that seals (`None`: data is kept plain).
    pub fn sealing_tag(&self) -> Option<KeyTag> {
        self.tags.first().copied()
    }

    /// Whether this codec opens data sealed by `tag` (`None`: plain data,
    /// which only a codec without keys accepts).
    pub fn accepts(&self, tag: Option<KeyTag>) -> bool {
        match tag {
            Some(tag) => self.tags.contains(&tag),
            None => self.tags.is_empty(),
        }
    }

    /// The names under which `label` is filed: one per key, the first (the
    /// encrypting key's) to write, all to read, so that lookups keep working
    /// while keys rotate. Without keys, one unkeyed hash.
    pub fn lookup_names(&self, label: &str) -> Vec<String> {
        let name = |key: Option<&[u8; 32]>| {
            let mut h = Sha256::new();
            h.update(b"keyway lookup v1\0");
            if let Some(k) = key {
                h.update(k);
            }
            h.update(label.as_bytes());
            hex32(&h.finalize())
        };
        if self.lookup.is_empty() {
            vec![name(None)]
        } else {
            self.lookup.iter().map(|k| name(Some(k))).collect()
        }
    }

    /// [`Codec::seal`] as base64url text (an index member, a cookie value).
    pub fn seal_text<T: Serialize>(&self, aad: &str, value: &T) -> String {
        URL_SAFE_NO_PAD.encode(self.seal(aad, value))
    }

    /// [`Codec::open`] of a [`Codec::seal_text`] string.
    pub fn open_text<T: DeserializeOwned>(&self, aad: &str, text: &str) -> Result<T, CodecError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CodecError::Malformed("not base64url".into()))?;
        self.open(aad, &bytes).map(|(v, _)| v)
    }

    /// Turns a value into stored bytes.
    pub fn seal<T: Serialize>(&self, aad: &str, value: &T) -> Vec<u8> {
        let json = serde_json::to_vec(value).expect("session data serialises");
        match self.ciphers.first() {
            Some(cipher) => {
                let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
                let ct = cipher
                    .encrypt(
                        &nonce,
                        Payload {
                            msg: &json,
                            aad: aad.as_bytes(),
                        },
                    )
                    .expect("encryption of a bounded buffer cannot fail");
                let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
                out.push(SEALED);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&ct);
                out
            }
            None => {
                let mut out = Vec::with_capacity(1 + json.len());
                out.push(PLAIN);
                out.extend_from_slice(&json);
                out
            }
        }
    }

    /// Reads a value back from stored bytes, saying which key opened it.
    pub fn open<T: DeserializeOwned>(
        &self,
        aad: &str,
        data: &[u8],
    ) -> Result<(T, Option<KeyTag>), CodecError> {
        match data.split_first() {
            Some((&SEALED, rest)) => {
                if rest.len() < NONCE_LEN {
                    return Err(CodecError::Malformed("too short".into()));
                }
                let (nonce, ct) = rest.split_at(NONCE_LEN);
                let nonce = XNonce::from_slice(nonce);
                let (plain, tag) = self
                    .ciphers
                    .iter()
                    .zip(&self.tags)
                    .find_map(|(c, tag)| {
                        let payload = Payload {
                            msg: ct,
                            aad: aad.as_bytes(),
                        };
                        c.decrypt(nonce, payload).ok().map(|p| (p, *tag))
                    })
                    .ok_or(CodecError::Undecryptable)?;
                serde_json::from_slice(&plain)
                    .map(|value| (value, Some(tag)))
                    .map_err(|e| CodecError::Malformed(e.to_string()))
            }
            Some((&PLAIN, json)) => {
                if !self.ciphers.is_empty() {
                    // A shared store must never accept clear data someone planted.
                    return Err(CodecError::Undecryptable);
                }
                serde_json::from_slice(json)
                    .map(|value| (value, None))
                    .map_err(|e| CodecError::Malformed(e.to_string()))
            }
            _ => Err(CodecError::Malformed("unknown format".into())),
        }
    }
}

/// The first 16 bytes of a digest as 32 hex digits.
pub(crate) fn hex32(digest: &[u8]) -> String {
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SessionKey {
        SessionKey([b; 32])
    }

    #[test]
    fn sealed_data_hides_the_value_and_rotates() {
        let old = Codec::new(&[key(1)]);
        let sealed = old.seal("id1", &"refresh-token-value");
        assert!(!String::from_utf8_lossy(&sealed).contains("refresh-token-value"));
        let rotated = Codec::new(&[key(2), key(1)]);
        let (value, tag) = rotated.open::<String>("id1", &sealed).unwrap();
        assert_eq!(value, "refresh-token-value");
        assert_eq!(tag, old.sealing_tag());
        let resealed = rotated.seal("id1", &"x");
        assert!(matches!(
            old.open::<String>("id1", &resealed),
            Err(CodecError::Undecryptable)
        ));
    }

    #[test]
    fn ciphertext_is_bound_to_what_it_names() {
        let c = Codec::new(&[key(1)]);
        let sealed = c.seal("id1", &5u32);
        assert!(matches!(
            c.open::<u32>("id2", &sealed),
            Err(CodecError::Undecryptable)
        ));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(c.open::<u32>("id1", &flipped).is_err());
    }

    #[test]
    fn lookup_names_are_keyed_and_follow_rotation() {
        let old = Codec::new(&[key(1)]);
        let rotated = Codec::new(&[key(2), key(1)]);
        let label = "sub\0default\0alice";
        assert_eq!(rotated.lookup_names(label)[1], old.lookup_names(label)[0]);
        assert_ne!(rotated.lookup_names(label)[0], old.lookup_names(label)[0]);
        assert!(!old.lookup_names(label)[0].contains("alice"));
        let member = old.seal_text("n", &"id");
        assert_eq!(rotated.open_text::<String>("n", &member).unwrap(), "id");
        assert!(rotated.open_text::<String>("other", &member).is_err());
    }

    #[test]
    fn plain_data_is_refused_when_keys_are_set() {
        let plain = Codec::new(&[]).seal("id", &5u32);
        assert_eq!(Codec::new(&[]).open::<u32>("id", &plain).unwrap().0, 5);
        assert!(Codec::new(&[key(1)]).open::<u32>("id", &plain).is_err());
    }

    #[test]
    fn cookie_keys_are_not_record_keys() {
        let records = Codec::new(&[key(1)]);
        let cookies = Codec::for_cookies(&[key(1)]);
        let sealed = cookies.seal("c", &1u8);
        assert!(records.open::<u8>("c", &sealed).is_err());
        assert_eq!(cookies.open::<u8>("c", &sealed).unwrap().0, 1);
        assert!(
            Codec::for_cookies(&[]).sealing_tag().is_some(),
            "always sealed"
        );
    }
}

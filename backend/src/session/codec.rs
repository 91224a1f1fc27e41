//! Encryption of session data at rest.
//!
//! With keys configured (`KEYWAY_SESSION_KEY`), a record's data is one
//! XChaCha20-Poly1305 ciphertext (random 24-byte nonce, the record id as
//! associated data so a ciphertext cannot be moved to another id). The first
//! key encrypts; every key is tried to decrypt, so keys can be rotated by
//! putting the new key first. Without keys (memory store only) data is kept
//! as plain JSON in process memory.
//!
//! The codec also names the login-index entries ([`Codec::lookup_names`]):
//! a keyed hash, so the store shows neither a provider's `sid` nor a `sub`.

use crate::config::SessionKey;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

const SEALED: &str = "sealed";
const PLAIN: &str = "plain";

/// Why stored data could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// No key opens the ciphertext (tampered, or the key was removed).
    #[error("no configured key decrypts this record")]
    Undecryptable,
    /// The stored shape is not what Keyway writes.
    #[error("malformed record: {0}")]
    Malformed(String),
}

/// A short public fingerprint of a session key: which key sealed a record.
pub type KeyTag = [u8; 8];

/// Seals and opens record data.
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
                .map(|k| {
                    let mut h = Sha256::new();
                    h.update(b"keyway lookup key v1\0");
                    h.update(k.0);
                    h.finalize().into()
                })
                .collect(),
            tags: keys
                .iter()
                .map(|k| {
                    let mut h = Sha256::new();
                    h.update(b"keyway key tag v1\0");
                    h.update(k.0);
                    let digest = h.finalize();
                    std::array::from_fn(|i| digest[i])
                })
                .collect(),
        }
    }

    /// The fingerprint of the key that seals (`None`: data is kept plain).
    pub fn sealing_tag(&self) -> Option<KeyTag> {
        self.tags.first().copied()
    }

    /// Whether this codec opens records sealed by `tag` (`None`: plain
    /// records, which only a codec without keys accepts).
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

    /// [`Codec::seal`] as one string (an index member).
    pub fn seal_text<T: Serialize>(&self, aad: &str, value: &T) -> String {
        serde_json::to_string(&self.seal(aad, value)).expect("a map of strings serialises")
    }

    /// [`Codec::open`] of a [`Codec::seal_text`] string.
    pub fn open_text<T: DeserializeOwned>(&self, aad: &str, text: &str) -> Result<T, CodecError> {
        let map: HashMap<String, Value> =
            serde_json::from_str(text).map_err(|e| CodecError::Malformed(e.to_string()))?;
        self.open(aad, &map)
    }

    /// Turns a value into a record's data map.
    pub fn seal<T: Serialize>(&self, aad: &str, value: &T) -> HashMap<String, Value> {
        let json = serde_json::to_vec(value).expect("session data serialises");
        let mut map = HashMap::with_capacity(1);
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
                let mut blob = nonce.to_vec();
                blob.extend_from_slice(&ct);
                map.insert(
                    SEALED.to_owned(),
                    Value::String(STANDARD_NO_PAD.encode(blob)),
                );
            }
            None => {
                map.insert(
                    PLAIN.to_owned(),
                    serde_json::from_slice(&json).expect("valid JSON"),
                );
            }
        }
        map
    }

    /// Reads a value back from a record's data map.
    pub fn open<T: DeserializeOwned>(
        &self,
        aad: &str,
        data: &HashMap<String, Value>,
    ) -> Result<T, CodecError> {
        self.open_tagged(aad, data).map(|(value, _)| value)
    }

    /// [`Codec::open`], also saying which key opened the record.
    pub fn open_tagged<T: DeserializeOwned>(
        &self,
        aad: &str,
        data: &HashMap<String, Value>,
    ) -> Result<(T, Option<KeyTag>), CodecError> {
        if let Some(Value::String(sealed)) = data.get(SEALED) {
            let blob = STANDARD_NO_PAD
                .decode(sealed)
                .map_err(|_| CodecError::Malformed("not base64".into()))?;
            if blob.len() < 24 {
                return Err(CodecError::Malformed("too short".into()));
            }
            let (nonce, ct) = blob.split_at(24);
            let nonce = XNonce::from_slice(nonce);
            let (plain, tag) = self
                .ciphers
                .iter()
                .zip(&self.tags)
                .find_map(|(c, tag)| {
                    c.decrypt(
                        nonce,
                        Payload {
                            msg: ct,
                            aad: aad.as_bytes(),
                        },
                    )
                    .ok()
                    .map(|plain| (plain, *tag))
                })
                .ok_or(CodecError::Undecryptable)?;
            serde_json::from_slice(&plain)
                .map(|value| (value, Some(tag)))
                .map_err(|e| CodecError::Malformed(e.to_string()))
        } else if let Some(plain) = data.get(PLAIN) {
            if !self.ciphers.is_empty() {
                // A shared store must never accept clear data someone planted.
                return Err(CodecError::Undecryptable);
            }
            // Deserialised from the borrowed tree, without copying it first.
            T::deserialize(plain)
                .map(|value| (value, None))
                .map_err(|e| CodecError::Malformed(e.to_string()))
        } else {
            Err(CodecError::Malformed("no data".into()))
        }
    }
}

/// The first 16 bytes of a digest as 32 hex digits.
pub fn hex32(digest: &[u8]) -> String {
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
        assert!(
            !serde_json::to_string(&sealed)
                .unwrap()
                .contains("refresh-token-value")
        );
        let rotated = Codec::new(&[key(2), key(1)]);
        assert_eq!(
            rotated.open::<String>("id1", &sealed).unwrap(),
            "refresh-token-value"
        );
        let resealed = rotated.seal("id1", &"x");
        assert!(matches!(
            old.open::<String>("id1", &resealed),
            Err(CodecError::Undecryptable)
        ));
    }

    #[test]
    fn ciphertext_is_bound_to_its_record_id() {
        let c = Codec::new(&[key(1)]);
        let sealed = c.seal("id1", &5u32);
        assert!(matches!(
            c.open::<u32>("id2", &sealed),
            Err(CodecError::Undecryptable)
        ));
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
        assert_eq!(Codec::new(&[]).open::<u32>("id", &plain).unwrap(), 5);
        assert!(Codec::new(&[key(1)]).open::<u32>("id", &plain).is_err());
    }
}

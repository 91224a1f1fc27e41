//! DPoP (RFC 9449): tokens bound to a key only Keyway holds.
//!
//! Each request that uses or obtains a bound token carries a fresh proof (a
//! JWT signed with the key, its public JWK in the header): `htm`, `htu`
//! (the URL without query and fragment), `iat`, a unique `jti`, `ath` (the
//! access token's hash) for resource calls, and the server's nonce when it
//! asked for one. A server that asks (`use_dpop_nonce`, with a
//! `DPoP-Nonce` header) gets exactly one retry; the nonce is remembered per
//! origin, so later requests carry it from the start.
//!
//! Keys: one per session, made when the login starts (its thumbprint goes
//! out as `dpop_jkt`), sealed in the pending-login cookie, then kept with
//! the session's tokens — encrypted at rest with the session key, so every
//! instance on the store can use the tokens another bound. The BFF's own
//! client-credentials tokens, cached per process, are bound to a key of the
//! process. Why per session: a leaked key (or record) exposes one session's
//! tokens, not every user's, and nothing must be shared between instances
//! beyond the session record they already share.

use crate::jose::{self, PrivateKey};
use crate::secret::Secret;
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use url::Url;

/// The error code of a DPoP nonce challenge (RFC 9449 §8, §9).
pub(crate) const USE_DPOP_NONCE: &str = "use_dpop_nonce";
/// The longest nonce remembered (RFC 9449 sets no bound; real ones are short).
const MAX_NONCE: usize = 1024;

/// A DPoP key: P-256, proofs signed with ES256.
#[derive(Debug, Clone)]
pub(crate) struct DpopKey {
    key: PrivateKey,
    stored: Secret,
}

/// The claims of a proof.
#[derive(Serialize)]
struct Proof<'a> {
    jti: String,
    htm: &'a str,
    htu: String,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
}

impl DpopKey {
    /// A fresh key.
    pub(crate) fn generate() -> Self {
        let (key, stored) = PrivateKey::generate_p256();
        Self { key, stored }
    }

    /// The key kept as [`DpopKey::stored`].
    pub(crate) fn from_stored(stored: &Secret) -> Result<Self, String> {
        Ok(Self {
            key: PrivateKey::from_p256_scalar(stored)?,
            stored: stored.clone(),
        })
    }

    /// The secret to keep with a pending login or a session.
    pub(crate) fn stored(&self) -> &Secret {
        &self.stored
    }

    /// The key's thumbprint: `dpop_jkt`, and the `cnf.jkt` of bound tokens.
    pub(crate) fn jkt(&self) -> &str {
        self.key.thumbprint()
    }

    /// A proof for `method` on `url`; `access_token` for resource calls
    /// (its hash becomes `ath`), `nonce` when the server gave one.
    pub(crate) fn proof(
        &self,
        method: &str,
        url: &Url,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, String> {
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let claims = Proof {
            jti: jose::random_id(),
            htm: method,
            htu: htu.to_string(),
            iat: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            ath: access_token.map(jose::sha256_b64),
            nonce,
        };
        self.key.sign(&claims, "dpop+jwt", true)
    }
}

/// Where a nonce retry happened, for `keyway_dpop_nonce_retries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Peer<'a> {
    /// A provider, by id.
    Provider(&'a str),
    /// An API, by name.
    Api(&'a str),
}

/// The servers' nonces, by origin, and the retry counters.
#[derive(Debug, Default)]
pub(crate) struct Nonces {
    by_origin: Mutex<HashMap<String, String>>,
    retries: OnceLock<HashMap<(bool, String), ::metrics::Counter>>,
}

impl Nonces {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.by_origin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The nonce last given by `url`'s origin.
    pub(crate) fn get(&self, url: &Url) -> Option<String> {
        self.map().get(&url.origin().ascii_serialization()).cloned()
    }

    /// Remembers the `DPoP-Nonce` of a response from `url`, if any and well formed.
    pub(crate) fn remember(&self, url: &Url, headers: &HeaderMap) {
        let Some(nonce) = headers.get("dpop-nonce").and_then(|v| v.to_str().ok()) else {
            return;
        };
        // RFC 9449 §8.1: nonce = 1*NQCHAR (%x21 / %x23-5B / %x5D-7E).
        let valid = !nonce.is_empty()
            && nonce.len() <= MAX_NONCE
            && nonce
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if valid {
            self.map()
                .insert(url.origin().ascii_serialization(), nonce.to_owned());
        }
    }

    /// The retry counters, by (is an API, name): set once by the App.
    pub(crate) fn set_counters(&self, counters: HashMap<(bool, String), ::metrics::Counter>) {
        let _ = self.retries.set(counters);
    }

    /// Counts one nonce retry towards `peer`.
    pub(crate) fn count_retry(&self, peer: Peer<'_>) {
        let key = match peer {
            Peer::Provider(id) => (false, id.to_owned()),
            Peer::Api(name) => (true, name.to_owned()),
        };
        if let Some(counter) = self.retries.get().and_then(|m| m.get(&key)) {
            counter.increment(1);
        }
    }
}

/// Whether a resource server's answer is a nonce challenge (RFC 9449 §9):
/// `401` with `WWW-Authenticate: DPoP error="use_dpop_nonce"`.
pub(crate) fn is_resource_challenge(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::UNAUTHORIZED
        && headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                let v = v.trim_start();
                v.len() > 4 && v[..4].eq_ignore_ascii_case("dpop") && v.contains(USE_DPOP_NONCE)
            })
}

/// `Authorization: DPoP <token>`, marked sensitive.
pub(crate) fn authorization(access_token: &Secret) -> Result<http::HeaderValue, String> {
    let mut value = http::HeaderValue::try_from(format!("DPoP {}", access_token.expose()))
        .map_err(|_| "the access token is not a header value".to_owned())?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn part(jwt: &str, i: usize) -> serde_json::Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(i).unwrap())
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_proof_names_the_request_and_the_key() {
        let key = DpopKey::generate();
        let url = Url::parse("https://api.example/v1/x?q=1#f").unwrap();
        let a = key.proof("GET", &url, Some("tok"), Some("n1")).unwrap();
        let b = key.proof("GET", &url, None, None).unwrap();
        let (header, claims) = (part(&a, 0), part(&a, 1));
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"]["kty"], "EC");
        assert!(header["jwk"].get("d").is_none(), "no private member");
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://api.example/v1/x");
        assert_eq!(claims["ath"], jose::sha256_b64("tok"));
        assert_eq!(claims["nonce"], "n1");
        assert_ne!(claims["jti"], part(&b, 1)["jti"]);
        assert!(part(&b, 1).get("ath").is_none());
        let again = DpopKey::from_stored(key.stored()).unwrap();
        assert_eq!(again.jkt(), key.jkt());
    }

    #[test]
    fn nonces_are_kept_per_origin_and_only_when_well_formed() {
        let nonces = Nonces::default();
        let a = Url::parse("https://a.example/token").unwrap();
        let a2 = Url::parse("https://a.example/userinfo?x").unwrap();
        let b = Url::parse("https://b.example/").unwrap();
        let mut h = HeaderMap::new();
        h.insert("dpop-nonce", "abc".parse().unwrap());
        nonces.remember(&a, &h);
        assert_eq!(nonces.get(&a2).as_deref(), Some("abc"));
        assert_eq!(nonces.get(&b), None);
        h.insert("dpop-nonce", "a\"b".parse().unwrap());
        nonces.remember(&a, &h);
        assert_eq!(
            nonces.get(&a).as_deref(),
            Some("abc"),
            "a bad nonce is ignored"
        );
    }

    /// What DPoP costs per login and per call (run with `cargo test
    /// --release -p keyway-backend --lib -- --ignored dpop_costs
    /// --nocapture`; figures in docs/providers.md).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn dpop_costs() {
        let url = Url::parse("https://api.example/v1/x").unwrap();
        let n = 2000;
        let time = |what: &str, f: &mut dyn FnMut()| {
            let start = std::time::Instant::now();
            for _ in 0..n {
                f();
            }
            println!(
                "{what}: {:.1} µs",
                start.elapsed().as_secs_f64() * 1e6 / n as f64
            );
        };
        let key = DpopKey::generate();
        time("a new key (login start)", &mut || drop(DpopKey::generate()));
        time("the key from the session (each call)", &mut || {
            drop(DpopKey::from_stored(key.stored()).unwrap())
        });
        time("a proof (each call)", &mut || {
            drop(key.proof("GET", &url, Some("token"), Some("n")).unwrap())
        });
    }

    #[test]
    fn only_a_dpop_nonce_challenge_is_one() {
        let mut h = HeaderMap::new();
        h.insert(
            "www-authenticate",
            "DPoP error=\"use_dpop_nonce\", error_description=\"x\""
                .parse()
                .unwrap(),
        );
        assert!(is_resource_challenge(StatusCode::UNAUTHORIZED, &h));
        assert!(!is_resource_challenge(StatusCode::BAD_REQUEST, &h));
        h.insert(
            "www-authenticate",
            "Bearer error=\"use_dpop_nonce\"".parse().unwrap(),
        );
        assert!(!is_resource_challenge(StatusCode::UNAUTHORIZED, &h));
    }
}

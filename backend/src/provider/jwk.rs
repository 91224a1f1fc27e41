//! The JSON Web Key type Keyway verifies provider signatures with:
//! openidconnect's `CoreJsonWebKey`, with RSA signatures checked by `ring`.
//!
//! openidconnect checks RSA signatures with the `rsa` crate, whose big-number
//! arithmetic took about 0.35 ms per RS256 ID token here: some 13 % of the
//! BFF's CPU time per login (`BENCHMARKS.md`). `ring` (already in the build,
//! under rustls) does the same check about ten times faster. Everything else
//! — which key fits (`use`, `kty`, `alg`, the same rules as openidconnect's),
//! EC and EdDSA keys, hashing — is openidconnect's own code.
//!
//! `ring` accepts RSA moduli of 2048 to 8192 bits; a provider signing with a
//! shorter RSA key is refused (such keys are too weak to trust anyway).
//! `ring` also refuses a modulus or exponent with leading zero bytes, which
//! some providers publish (a sign byte, as in DER) and which openidconnect
//! accepts: they are stripped here, as they carry no value.

use openidconnect::core::{
    CoreJsonWebKey, CoreJsonWebKeyType, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyId, JsonWebKeyUse, JwsSigningAlgorithm,
    SignatureVerificationError,
};
use ring::signature::{self, RsaPublicKeyComponents};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A provider's public key: openidconnect's key plus, for RSA keys, the
/// decoded modulus and exponent for `ring`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderKey {
    inner: CoreJsonWebKey,
    /// `(n, e)` big-endian, for RSA keys.
    rsa: Option<(Vec<u8>, Vec<u8>)>,
}

impl ProviderKey {
    /// Wraps an openidconnect key.
    pub fn new(inner: CoreJsonWebKey) -> Self {
        // The JWK's JSON is the one place the components are public.
        let json = serde_json::to_value(&inner).unwrap_or_default();
        let component = |name: &str| {
            use base64::Engine;
            json.get(name).and_then(|v| v.as_str()).and_then(|s| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(s)
                    .ok()
            })
        };
        let rsa = match inner.key_type() {
            CoreJsonWebKeyType::RSA => component("n")
                .zip(component("e"))
                .map(|(n, e)| (strip_leading_zeros(n), strip_leading_zeros(e))),
            _ => None,
        };
        Self { inner, rsa }
    }
}

/// A big-endian integer without its leading zero bytes (at least one byte).
fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v
        .iter()
        .take_while(|b| **b == 0)
        .count()
        .min(v.len().saturating_sub(1));
    v.drain(..zeros);
    v
}

impl<'de> Deserialize<'de> for ProviderKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CoreJsonWebKey::deserialize(d).map(Self::new)
    }
}

impl Serialize for ProviderKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.inner.serialize(s)
    }
}

/// The `ring` parameters of an RSA signature algorithm.
fn ring_rsa(alg: &CoreJwsSigningAlgorithm) -> Option<&'static signature::RsaParameters> {
    Some(match alg {
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        CoreJwsSigningAlgorithm::RsaSsaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
        CoreJwsSigningAlgorithm::RsaSsaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
        CoreJwsSigningAlgorithm::RsaSsaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// openidconnect's rule for whether a key may check a signature of `alg`.
fn check_fit(key: &ProviderKey, alg: &CoreJwsSigningAlgorithm) -> Result<(), &'static str> {
    if key.key_use().is_some_and(|u| !u.allows_signature()) {
        return Err("key usage not permitted for digital signatures");
    }
    if alg.key_type().as_ref() != Some(key.key_type()) {
        return Err("key type does not match signature algorithm");
    }
    match key.signing_alg() {
        JsonWebKeyAlgorithm::Unspecified => Ok(()),
        JsonWebKeyAlgorithm::Unsupported => Err("key algorithm is not a signing algorithm"),
        JsonWebKeyAlgorithm::Algorithm(a) if a == alg => Ok(()),
        JsonWebKeyAlgorithm::Algorithm(_) => Err("incompatible key algorithm"),
    }
}

impl JsonWebKey for ProviderKey {
    type KeyUse = CoreJsonWebKeyUse;
    type SigningAlgorithm = CoreJwsSigningAlgorithm;

    fn key_id(&self) -> Option<&JsonWebKeyId> {
        self.inner.key_id()
    }

    fn key_type(&self) -> &CoreJsonWebKeyType {
        self.inner.key_type()
    }

    fn key_use(&self) -> Option<&CoreJsonWebKeyUse> {
        self.inner.key_use()
    }

    fn signing_alg(&self) -> JsonWebKeyAlgorithm<&CoreJwsSigningAlgorithm> {
        self.inner.signing_alg()
    }

    fn new_symmetric(key: Vec<u8>) -> Self {
        Self::new(CoreJsonWebKey::new_symmetric(key))
    }

    fn verify_signature(
        &self,
        alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
        sig: &[u8],
    ) -> Result<(), SignatureVerificationError> {
        match (ring_rsa(alg), &self.rsa) {
            (Some(params), Some((n, e))) => {
                check_fit(self, alg)
                    .map_err(|e| SignatureVerificationError::InvalidKey(e.to_owned()))?;
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .map_err(|_| {
                        SignatureVerificationError::CryptoError(
                            "RSA signature does not verify (or the key is not 2048-8192 bits)"
                                .to_owned(),
                        )
                    })
            }
            _ => self.inner.verify_signature(alg, message, sig),
        }
    }

    fn hash_bytes(&self, bytes: &[u8], alg: &CoreJwsSigningAlgorithm) -> Result<Vec<u8>, String> {
        self.inner.hash_bytes(bytes, alg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use ring::signature::RsaKeyPair;

    /// Test-only key material of `tests/fixtures` (protects nothing).
    const PRIVATE_PEM: &str = include_str!("../../../tests/fixtures/lying-provider-key.pem");
    const JWKS: &str = include_str!("../../../tests/fixtures/lying-provider-jwks.json");

    fn key_pair() -> RsaKeyPair {
        let b64: String = PRIVATE_PEM
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        RsaKeyPair::from_pkcs8(&der).unwrap()
    }

    fn public(alg: Option<&str>) -> (ProviderKey, CoreJsonWebKey) {
        let jwks: serde_json::Value = serde_json::from_str(JWKS).unwrap();
        let mut jwk = jwks["keys"][0].clone();
        match alg {
            Some(a) => jwk["alg"] = a.into(),
            None => {
                jwk.as_object_mut().unwrap().remove("alg");
            }
        }
        (
            serde_json::from_value(jwk.clone()).unwrap(),
            serde_json::from_value(jwk).unwrap(),
        )
    }

    /// ring and openidconnect's own check agree: on good signatures, on a
    /// flipped bit, on another message, and on a key whose `alg` is another.
    #[test]
    fn ring_agrees_with_openidconnect() {
        let pair = key_pair();
        let rng = ring::rand::SystemRandom::new();
        let message = b"header.payload";
        for (alg, encoding) in [
            (
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                &signature::RSA_PKCS1_SHA256 as &dyn signature::RsaEncoding,
            ),
            (
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
                &signature::RSA_PKCS1_SHA512,
            ),
            (
                CoreJwsSigningAlgorithm::RsaSsaPssSha256,
                &signature::RSA_PSS_SHA256,
            ),
        ] {
            let mut sig = vec![0; pair.public().modulus_len()];
            pair.sign(encoding, &rng, message, &mut sig).unwrap();
            let (ours, theirs) = public(None);
            assert!(
                ours.verify_signature(&alg, message, &sig).is_ok(),
                "{alg:?}"
            );
            assert!(
                theirs.verify_signature(&alg, message, &sig).is_ok(),
                "{alg:?}"
            );
            let mut bad = sig.clone();
            bad[10] ^= 1;
            assert!(ours.verify_signature(&alg, message, &bad).is_err());
            assert!(theirs.verify_signature(&alg, message, &bad).is_err());
            assert!(ours.verify_signature(&alg, b"other", &sig).is_err());
            // A key published for RS384 only checks nothing else.
            let (ours, theirs) = public(Some("RS384"));
            assert!(matches!(
                ours.verify_signature(&alg, message, &sig),
                Err(SignatureVerificationError::InvalidKey(_))
            ));
            assert!(theirs.verify_signature(&alg, message, &sig).is_err());
        }
    }

    /// Some providers publish `n` (or `e`) with a leading zero byte: the key
    /// still verifies its signatures.
    #[test]
    fn keys_with_leading_zero_bytes_verify() {
        let pair = key_pair();
        let rng = ring::rand::SystemRandom::new();
        let message = b"header.payload";
        let mut sig = vec![0; pair.public().modulus_len()];
        pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
            .unwrap();
        let jwks: serde_json::Value = serde_json::from_str(JWKS).unwrap();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for member in ["n", "e"] {
            let mut jwk = jwks["keys"][0].clone();
            let mut bytes = engine.decode(jwk[member].as_str().unwrap()).unwrap();
            bytes.insert(0, 0);
            jwk[member] = engine.encode(&bytes).into();
            let key: ProviderKey = serde_json::from_value(jwk).unwrap();
            assert!(
                key.verify_signature(
                    &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                    message,
                    &sig
                )
                .is_ok(),
                "leading zero in {member}"
            );
        }
        assert_eq!(strip_leading_zeros(vec![0, 0, 1, 0]), [1, 0]);
        assert_eq!(strip_leading_zeros(vec![0]), [0]);
    }

    #[test]
    fn serialises_as_the_jwk_it_was_read_from() {
        let (ours, theirs) = public(Some("RS256"));
        assert_eq!(
            serde_json::to_value(&ours).unwrap(),
            serde_json::to_value(&theirs).unwrap()
        );
        assert!(ours.rsa.is_some());
    }
}

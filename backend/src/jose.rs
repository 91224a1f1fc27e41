//! JOSE for the BFF's own signatures: the private keys of `private_key_jwt`
//! client authentication (RS256, PS256, ES256) and the P-256 keys of DPoP
//! proofs (ES256), their public JWKs and RFC 7638 thumbprints, and compact
//! JWS signing.
//!
//! Nothing here is hand-written cryptography or hand-written JOSE: keys are
//! read by RustCrypto's `p256` (PKCS#8, SEC1) and `rsa` (PKCS#1, PKCS#8, and
//! private JWK members rebuilt with `RsaPrivateKey::from_components`), and
//! JWS, JWK and thumbprints are `jsonwebtoken`'s (on the same RustCrypto
//! crates). A key never prints: `Debug` and `Serialize` show its `kid` and
//! algorithm only, and `jsonwebtoken`'s `EncodingKey` zeroizes its bytes
//! when dropped.

use crate::secret::Secret;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use serde::{Deserialize, Serialize};

/// The smallest RSA key Keyway signs with (FAPI 2.0 §5.4.1, and RFC 7518's
/// minimum for RS256/PS256).
pub(crate) const MIN_RSA_BITS: usize = 2048;

/// A signature algorithm of Keyway's own JWTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PSS with SHA-256 (FAPI 2.0 allows PS256, ES256 and EdDSA).
    PS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
}

impl SigningAlg {
    /// The algorithm named `name` (`RS256`, `PS256`, `ES256`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::RS256),
            "PS256" => Some(Self::PS256),
            "ES256" => Some(Self::ES256),
            _ => None,
        }
    }

    /// Its JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::ES256 => "ES256",
        }
    }

    fn jose(self) -> Algorithm {
        match self {
            Self::RS256 => Algorithm::RS256,
            Self::PS256 => Algorithm::PS256,
            Self::ES256 => Algorithm::ES256,
        }
    }

    fn is_rsa(self) -> bool {
        matches!(self, Self::RS256 | Self::PS256)
    }
}

/// A private signing key with its public JWK.
#[derive(Clone)]
pub struct PrivateKey {
    kid: String,
    alg: SigningAlg,
    key: EncodingKey,
    /// The public JWK with `kid`, `use` and `alg`.
    jwk: Jwk,
    thumbprint: String,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// What `keyway check-config` shows of a key: never the key.
impl Serialize for PrivateKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("PrivateKey", 2)?;
        out.serialize_field("kid", &self.kid)?;
        out.serialize_field("alg", self.alg.name())?;
        out.end()
    }
}

/// The members of a private JWK that Keyway reads.
#[derive(Deserialize)]
struct PrivateJwk {
    kty: String,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    d: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    p: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
}

/// The key material before its JWK is made.
enum Material {
    Ec(p256::SecretKey),
    Rsa(Box<rsa::RsaPrivateKey>),
}

impl PrivateKey {
    /// A fresh P-256 key (for DPoP) and its secret scalar, base64url, to
    /// keep it with a session (see [`PrivateKey::from_p256_scalar`]).
    pub fn generate_p256() -> (Self, Secret) {
        use rand::RngCore;
        let mut bytes = p256::elliptic_curve::zeroize::Zeroizing::new([0u8; 32]);
        loop {
            rand::rng().fill_bytes(bytes.as_mut());
            // Zero and values at or above the group order are refused
            // (probability about 2^-32): draw again.
            if let Ok(secret) = p256::SecretKey::from_slice(bytes.as_ref()) {
                let scalar = Secret::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()));
                let key = Self::build(Material::Ec(secret), None, SigningAlg::ES256)
                    .expect("a fresh P-256 key encodes");
                return (key, scalar);
            }
        }
    }

    /// The P-256 key of a scalar made by [`PrivateKey::generate_p256`].
    pub fn from_p256_scalar(scalar: &Secret) -> Result<Self, String> {
        let bytes = p256::elliptic_curve::zeroize::Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(scalar.expose())
                .map_err(|_| "not base64url".to_owned())?,
        );
        if bytes.len() != 32 {
            return Err("not a P-256 scalar".into());
        }
        let secret =
            p256::SecretKey::from_slice(&bytes).map_err(|_| "not a P-256 scalar".to_owned())?;
        Self::build(Material::Ec(secret), None, SigningAlg::ES256)
    }

    /// Every private key in `text`: PEM blocks (PKCS#8, SEC1 `EC PRIVATE
    /// KEY`, PKCS#1 `RSA PRIVATE KEY`), a private JWK, or a JWK set. RSA
    /// keys sign with `rsa_alg` unless a JWK names its own `alg`; P-256 keys
    /// sign with ES256. Errors never quote the text.
    pub fn parse_all(text: &str, rsa_alg: SigningAlg) -> Result<Vec<Self>, String> {
        let trimmed = text.trim();
        let keys = if trimmed.starts_with('{') {
            Self::parse_json(trimmed, rsa_alg)?
        } else if trimmed.contains("-----BEGIN") {
            pem_blocks(trimmed)?
                .into_iter()
                .map(|(label, block)| Self::parse_pem(&label, block, rsa_alg))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            return Err("neither PEM nor a JSON Web Key".into());
        };
        if keys.is_empty() {
            return Err("no private key in it".into());
        }
        Ok(keys)
    }

    fn parse_pem(label: &str, block: &str, rsa_alg: SigningAlg) -> Result<Self, String> {
        let material = match label {
            "PRIVATE KEY" => match p256::SecretKey::from_pkcs8_pem(block) {
                Ok(k) => Material::Ec(k),
                Err(_) => Material::Rsa(Box::new(
                    <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(block)
                        .map_err(|_| {
                            "a PKCS#8 key that is neither P-256 nor RSA, or malformed".to_owned()
                        })?,
                )),
            },
            "EC PRIVATE KEY" => Material::Ec(
                p256::SecretKey::from_sec1_pem(block)
                    .map_err(|_| "an EC key that is not a valid P-256 key".to_owned())?,
            ),
            "RSA PRIVATE KEY" => Material::Rsa(Box::new(
                rsa::RsaPrivateKey::from_pkcs1_pem(block)
                    .map_err(|_| "a malformed PKCS#1 RSA key".to_owned())?,
            )),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(
                    "an encrypted key: give the key unencrypted (from a secret file)".into(),
                );
            }
            other if other.contains("PUBLIC KEY") || other == "CERTIFICATE" => {
                return Err(format!("`{other}` is public: the private key is needed"));
            }
            other => return Err(format!("`{other}` is not a private key")),
        };
        let alg = match material {
            Material::Ec(_) => SigningAlg::ES256,
            Material::Rsa(_) => rsa_alg,
        };
        Self::build(material, None, alg)
    }

    fn parse_json(text: &str, rsa_alg: SigningAlg) -> Result<Vec<Self>, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|_| "not valid JSON".to_owned())?;
        let list = match value.get("keys") {
            Some(serde_json::Value::Array(keys)) => keys.clone(),
            Some(_) => return Err("`keys` is not a list".into()),
            None => vec![value],
        };
        list.into_iter()
            .enumerate()
            .map(|(i, v)| {
                let jwk: PrivateJwk = serde_json::from_value(v)
                    .map_err(|_| format!("key {i}: not a JSON Web Key"))?;
                Self::from_private_jwk(jwk, rsa_alg).map_err(|e| format!("key {i}: {e}"))
            })
            .collect()
    }

    fn from_private_jwk(jwk: PrivateJwk, rsa_alg: SigningAlg) -> Result<Self, String> {
        let b64 = |member: &Option<String>, name: &str| -> Result<Vec<u8>, String> {
            let text = member
                .as_deref()
                .ok_or_else(|| format!("no `{name}` member (a private key is needed)"))?;
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| format!("`{name}` is not base64url"))
        };
        let named = match jwk.alg.as_deref() {
            None => None,
            Some(a) => Some(
                SigningAlg::parse(a)
                    .ok_or_else(|| format!("`alg` {a} is not RS256, PS256 or ES256"))?,
            ),
        };
        let (material, alg) = match jwk.kty.as_str() {
            "EC" => {
                if jwk.crv.as_deref() != Some("P-256") {
                    return Err("only P-256 EC keys are supported".into());
                }
                let d = p256::elliptic_curve::zeroize::Zeroizing::new(b64(&jwk.d, "d")?);
                let secret =
                    p256::SecretKey::from_slice(&d).map_err(|_| "`d` is not a P-256 scalar")?;
                let point = secret.public_key().to_encoded_point(false);
                let (x, y) = (b64(&jwk.x, "x")?, b64(&jwk.y, "y")?);
                if point.x().map(|v| v.as_slice()) != Some(&x[..])
                    || point.y().map(|v| v.as_slice()) != Some(&y[..])
                {
                    return Err("`x` and `y` are not the public key of `d`".into());
                }
                if named.is_some_and(|a| a != SigningAlg::ES256) {
                    return Err("a P-256 key signs with ES256 only".into());
                }
                (Material::Ec(secret), SigningAlg::ES256)
            }
            "RSA" => {
                let big = |m: &Option<String>, name: &str| {
                    b64(m, name).map(|b| rsa::BigUint::from_bytes_be(&b))
                };
                let primes = match (&jwk.p, &jwk.q) {
                    (Some(_), Some(_)) => vec![big(&jwk.p, "p")?, big(&jwk.q, "q")?],
                    _ => Vec::new(),
                };
                let key = rsa::RsaPrivateKey::from_components(
                    big(&jwk.n, "n")?,
                    big(&jwk.e, "e")?,
                    big(&jwk.d, "d")?,
                    primes,
                )
                .map_err(|_| "the RSA members do not make a valid key".to_owned())?;
                let alg = named.unwrap_or(rsa_alg);
                if !alg.is_rsa() {
                    return Err("an RSA key signs with RS256 or PS256".into());
                }
                (Material::Rsa(Box::new(key)), alg)
            }
            other => return Err(format!("`kty` {other} is not EC or RSA")),
        };
        Self::build(material, jwk.kid, alg)
    }

    fn build(material: Material, kid: Option<String>, alg: SigningAlg) -> Result<Self, String> {
        let key = match &material {
            Material::Ec(k) => EncodingKey::from_ec_der(
                k.to_pkcs8_der()
                    .map_err(|_| "the P-256 key cannot be encoded".to_owned())?
                    .as_bytes(),
            ),
            Material::Rsa(k) => {
                let bits = k.size() * 8;
                if bits < MIN_RSA_BITS {
                    return Err(format!(
                        "an RSA key of {bits} bits: at least {MIN_RSA_BITS} are needed"
                    ));
                }
                EncodingKey::from_rsa_der(
                    k.to_pkcs1_der()
                        .map_err(|_| "the RSA key cannot be encoded".to_owned())?
                        .as_bytes(),
                )
            }
        };
        let mut jwk = Jwk::from_encoding_key(&key, alg.jose())
            .map_err(|e| format!("no public JWK for the key: {e}"))?;
        let thumbprint = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| format!("no thumbprint for the key: {e}"))?;
        let kid = kid.unwrap_or_else(|| thumbprint.clone());
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            kid,
            alg,
            key,
            jwk,
            thumbprint,
        })
    }

    /// Its key id (the JWK's `kid`, else its thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm it signs with.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// Its RFC 7638 thumbprint (SHA-256, base64url): DPoP's `jkt`.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The public JWK (`kid`, `use`, `alg` set), for a JWK set.
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// A compact JWS of `claims` with header `typ`, and either the key's
    /// `kid` or (`embed_jwk`, as DPoP wants) its bare public JWK.
    pub fn sign<T: Serialize>(
        &self,
        claims: &T,
        typ: &str,
        embed_jwk: bool,
    ) -> Result<String, String> {
        let mut header = Header::new(self.alg.jose());
        header.typ = Some(typ.to_owned());
        if embed_jwk {
            let mut bare = self.jwk.clone();
            bare.common = Default::default();
            header.jwk = Some(bare);
        } else {
            header.kid = Some(self.kid.clone());
        }
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| format!("cannot sign: {e}"))
    }
}

/// An HS256 JWS of `claims` keyed by `secret` (`client_secret_jwt`).
pub(crate) fn sign_hs256<T: Serialize>(claims: &T, secret: &Secret) -> Result<String, String> {
    let header = Header::new(Algorithm::HS256);
    let key = EncodingKey::from_secret(secret.expose().as_bytes());
    jsonwebtoken::encode(&header, claims, &key).map_err(|e| format!("cannot sign: {e}"))
}

/// A fresh unique id for a `jti`: 128 random bits, base64url.
pub(crate) fn random_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url(SHA-256(`text`)): DPoP's `ath` of an access token.
pub(crate) fn sha256_b64(text: &str) -> String {
    use sha2::Digest;
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(text.as_bytes()))
}

/// The PEM blocks of `text`: (label, the block with its armour).
fn pem_blocks(text: &str) -> Result<Vec<(String, &str)>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after.find("-----").ok_or("a PEM header is not closed")?;
        let label = after[..label_end].to_owned();
        let end_marker = format!("-----END {label}-----");
        let end = rest[start..]
            .find(&end_marker)
            .ok_or_else(|| format!("the PEM block `{label}` has no end line"))?;
        let stop = start + end + end_marker.len();
        out.push((label, &rest[start..stop]));
        rest = &rest[stop..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_p256_key_round_trips_through_its_scalar() {
        let (key, scalar) = PrivateKey::generate_p256();
        let again = PrivateKey::from_p256_scalar(&scalar).unwrap();
        assert_eq!(key.thumbprint(), again.thumbprint());
        assert_eq!(key.alg(), SigningAlg::ES256);
        assert_eq!(key.thumbprint().len(), 43);
        assert!(PrivateKey::from_p256_scalar(&Secret::new("AAAA")).is_err());
        assert!(!format!("{key:?}").contains(scalar.expose()));
    }

    #[test]
    fn a_private_jwk_must_be_private_and_consistent() {
        let (key, scalar) = PrivateKey::generate_p256();
        let public = serde_json::to_value(key.public_jwk()).unwrap();
        let mut private = public.clone();
        private["d"] = scalar.expose().into();
        let keys = PrivateKey::parse_all(&private.to_string(), SigningAlg::RS256).unwrap();
        assert_eq!(keys[0].thumbprint(), key.thumbprint());
        let e = PrivateKey::parse_all(&public.to_string(), SigningAlg::RS256).unwrap_err();
        assert!(e.contains("`d`"), "{e}");
        let (other, other_scalar) = PrivateKey::generate_p256();
        let mut mixed = serde_json::to_value(other.public_jwk()).unwrap();
        mixed["d"] = scalar.expose().into();
        let e = PrivateKey::parse_all(&mixed.to_string(), SigningAlg::RS256).unwrap_err();
        assert!(e.contains("public key of `d`"), "{e}");
        assert!(!e.contains(other_scalar.expose()));
    }

    #[test]
    fn garbage_is_refused_without_being_quoted() {
        for text in [
            "",
            "hello",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}",
        ] {
            let e = PrivateKey::parse_all(text, SigningAlg::RS256).unwrap_err();
            assert!(!e.contains("AAAA") && !e.contains("c2VjcmV0"), "{e}");
        }
    }

    #[test]
    fn pem_blocks_are_split() {
        let text =
            "-----BEGIN A-----\nx\n-----END A-----\n-----BEGIN B C-----\ny\n-----END B C-----";
        let blocks = pem_blocks(text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[1].0, "B C");
        assert!(pem_blocks("-----BEGIN A-----\nx").is_err());
    }
}

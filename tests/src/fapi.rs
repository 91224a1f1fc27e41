//! Fixtures of the FAPI 2.0 client profile tests (issue 17): client
//! registrations at the test provider for `private_key_jwt` (with a
//! `jwks_uri` at the BFF's `/bff/jwks`), DPoP-bound tokens and pushed
//! requests, a client that only introspects (what a resource server uses),
//! and private keys written to files for the BFF to read.

use crate::provider::ClientConfig;
use std::io::Write;
use url::Url;

/// The client id of the introspection-only client.
pub const INTROSPECTOR_ID: &str = "introspector";
/// Its secret (`client_secret_basic`).
pub const INTROSPECTOR_SECRET: &str = "introspector-secret";

/// The registration of a client that may only call the introspection
/// endpoint (no grant but client credentials, no redirect URI): what a
/// resource server holds.
pub fn introspector() -> serde_json::Value {
    serde_json::json!({
        "client_id": INTROSPECTOR_ID,
        "client_secret": INTROSPECTOR_SECRET,
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["client_credentials"],
        "response_types": [],
    })
}

/// The introspector as [`crate::provider::TestProvider::introspect`] takes it.
pub fn introspector_client() -> ClientConfig {
    ClientConfig {
        client_id: INTROSPECTOR_ID.into(),
        client_secret: INTROSPECTOR_SECRET.into(),
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        backchannel_logout_uri: None,
    }
}

/// How a client of [`client`] is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration<'a> {
    /// `token_endpoint_auth_method`.
    pub auth: &'a str,
    /// `dpop_bound_access_tokens`.
    pub dpop: bool,
    /// `require_pushed_authorization_requests`.
    pub par: bool,
}

impl Default for Registration<'_> {
    /// `private_key_jwt`, no DPoP, no PAR required.
    fn default() -> Self {
        Registration {
            auth: "private_key_jwt",
            dpop: false,
            par: false,
        }
    }
}

/// The registration of client `keyway` for a (single-provider) BFF at
/// `origin`: its redirect URI, post-logout URI, its keys at
/// `origin/bff/jwks` (for `private_key_jwt`), and the client secret
/// `keyway-secret` for the secret methods.
pub fn client(origin: &Url, how: Registration<'_>) -> serde_json::Value {
    let o = origin.as_str().trim_end_matches('/');
    let mut client = serde_json::json!({
        "client_id": "keyway",
        "redirect_uris": [format!("{o}/callback")],
        "post_logout_redirect_uris": [format!("{o}/")],
        "token_endpoint_auth_method": how.auth,
        "dpop_bound_access_tokens": how.dpop,
        "require_pushed_authorization_requests": how.par,
    });
    if how.auth == "private_key_jwt" {
        client["jwks_uri"] = format!("{o}/bff/jwks").into();
    } else {
        client["client_secret"] = "keyway-secret".into();
    }
    client
}

/// A private key in a file (removed when dropped).
#[derive(Debug)]
pub struct KeyFile {
    file: tempfile::NamedTempFile,
}

impl KeyFile {
    /// A fresh P-256 key, PKCS#8 PEM (made by `rcgen`, with `ring`).
    pub fn p256() -> KeyFile {
        let key = rcgen::KeyPair::generate().expect("a P-256 key");
        Self::with(&key.serialize_pem())
    }

    /// A file holding `text`.
    pub fn with(text: &str) -> KeyFile {
        let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
        file.write_all(text.as_bytes()).expect("write the key");
        KeyFile { file }
    }

    /// Its path, as a setting takes it.
    pub fn path(&self) -> String {
        self.file.path().display().to_string()
    }
}

//! A resource server that takes DPoP-bound access tokens only, and checks
//! every request as RFC 9449 §7.1 and §4.3 say: `Authorization: DPoP`,
//! exactly one `DPoP` header holding a JWT with `typ` `dpop+jwt`, an
//! asymmetric `alg`, a public `jwk` whose signature verifies, `htm` and
//! `htu` of this request, a recent `iat`, `ath` of the token, a `jti` never
//! seen before, the server's nonce when it asks for one, and a token whose
//! `cnf.jkt` (by the provider's introspection) is the proof key's
//! thumbprint. It can ask for a nonce once ([`NonceMode::Once`]) or on
//! every request ([`NonceMode::Always`], a broken server).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// When the server asks for a DPoP nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceMode {
    /// Never: proofs without a nonce are fine.
    Never,
    /// When a proof carries none of its nonces: it answers `use_dpop_nonce`
    /// with a fresh one, then accepts proofs with any nonce it gave.
    Once,
    /// On every request, with a new nonce each time (a broken server).
    Always,
}

/// One request as the server judged it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// The access token, if any.
    pub token: Option<String>,
    /// The `DPoP` header, if any (the first).
    pub proof: Option<String>,
    /// The proof's claims, when it decoded.
    pub claims: Value,
    /// The provider's introspection of the token.
    pub introspection: Value,
    /// `Ok(jkt)` when accepted, else why not (`use_dpop_nonce: ...` for a
    /// nonce challenge).
    pub outcome: Result<String, String>,
}

#[derive(Default)]
struct Memory {
    seen: Vec<Seen>,
    jtis: HashSet<String>,
    nonces: Vec<String>,
}

#[derive(Clone)]
struct Ctx {
    mode: NonceMode,
    base: String,
    introspection_url: String,
    client: (String, String),
    http: reqwest::Client,
    memory: Arc<Mutex<Memory>>,
}

/// A running DPoP resource server.
pub struct DpopApi {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    memory: Arc<Mutex<Memory>>,
    task: JoinHandle<()>,
}

impl DpopApi {
    /// Starts on a free port; tokens are introspected at `introspection_url`
    /// with the client (`client_secret_basic`) `client`.
    pub async fn start(introspection_url: &str, client: (&str, &str), mode: NonceMode) -> DpopApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let memory = Arc::new(Mutex::new(Memory::default()));
        let ctx = Ctx {
            mode,
            base: base.clone(),
            introspection_url: introspection_url.to_owned(),
            client: (client.0.to_owned(), client.1.to_owned()),
            http: crate::provider::TestProvider::browser(),
            memory: memory.clone(),
        };
        let app = axum::Router::new().fallback(handle).with_state(ctx);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        DpopApi { base, memory, task }
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.memory.lock().expect("memory").seen.clone()
    }
}

impl Drop for DpopApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A refusal: `401` with `WWW-Authenticate: DPoP error=...`.
fn refuse(error: &str, nonce: Option<&str>) -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        [(
            "www-authenticate",
            format!("DPoP error=\"{error}\", algs=\"ES256 PS256\""),
        )],
        axum::Json(json!({ "error": error })),
    )
        .into_response();
    if let Some(n) = nonce {
        response
            .headers_mut()
            .insert("dpop-nonce", n.parse().expect("a nonce is a header value"));
    }
    response
}

async fn handle(State(ctx): State<Ctx>, req: Request) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let headers = req.headers().clone();
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("DPoP "))
        .map(str::to_owned);
    let proof = headers
        .get("dpop")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let introspection = match &token {
        Some(t) => introspect(&ctx, t).await,
        None => Value::Null,
    };
    let htu = format!("{}{}", ctx.base, path);
    let mut memory = ctx.memory.lock().expect("memory");
    let (claims, checked) = check(
        &headers,
        &method,
        &htu,
        token.as_deref(),
        &introspection,
        &mut memory,
    );
    let (outcome, response) = match checked {
        Err(why) => (
            Err(why.clone()),
            refuse(
                if why.starts_with("token") {
                    "invalid_token"
                } else {
                    "invalid_dpop_proof"
                },
                None,
            ),
        ),
        Ok(jkt) => match nonce_check(ctx.mode, &claims, &mut memory) {
            Some(fresh) => (
                Err(format!("use_dpop_nonce: {fresh}")),
                refuse("use_dpop_nonce", Some(&fresh)),
            ),
            None => {
                let body = json!({
                    "sub": introspection.get("sub"),
                    "client_id": introspection.get("client_id"),
                    "token_type": introspection.get("token_type"),
                    "jkt": jkt,
                    "path": path,
                });
                (Ok(jkt), axum::Json(body).into_response())
            }
        },
    };
    memory.seen.push(Seen {
        method,
        path,
        token,
        proof,
        claims,
        introspection,
        outcome,
    });
    response
}

async fn introspect(ctx: &Ctx, token: &str) -> Value {
    let response = ctx
        .http
        .post(&ctx.introspection_url)
        .basic_auth(&ctx.client.0, Some(&ctx.client.1))
        .form(&[("token", token)])
        .send()
        .await;
    match response {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// A nonce challenge to answer instead, if the mode asks for one.
fn nonce_check(mode: NonceMode, claims: &Value, memory: &mut Memory) -> Option<String> {
    let given = claims["nonce"].as_str();
    let known = given.is_some_and(|n| memory.nonces.iter().any(|m| m == n));
    let ask = match mode {
        NonceMode::Never => false,
        NonceMode::Once => !known,
        NonceMode::Always => true,
    };
    ask.then(|| {
        let fresh = format!("nonce-{}", memory.nonces.len() + 1);
        memory.nonces.push(fresh.clone());
        fresh
    })
}

/// The checks of RFC 9449 §4.3 and §7.1 but the nonce; the proof's claims
/// and `Ok(jkt)`, or what failed.
fn check(
    headers: &HeaderMap,
    method: &str,
    htu: &str,
    token: Option<&str>,
    introspection: &Value,
    memory: &mut Memory,
) -> (Value, Result<String, String>) {
    let proofs: Vec<_> = headers.get_all("dpop").iter().collect();
    let Some(token) = token else {
        return (
            Value::Null,
            Err("token: no `Authorization: DPoP` token".into()),
        );
    };
    if proofs.len() != 1 {
        return (Value::Null, Err(format!("{} DPoP headers", proofs.len())));
    }
    let Some(proof) = proofs[0].to_str().ok() else {
        return (Value::Null, Err("the DPoP header is not text".into()));
    };
    let header = match jsonwebtoken::decode_header(proof) {
        Ok(h) => h,
        Err(e) => return (Value::Null, Err(format!("not a JWT: {e}"))),
    };
    let claims = part(proof, 1);
    let result = (|| {
        if header.typ.as_deref() != Some("dpop+jwt") {
            return Err(format!("typ is {:?}", header.typ));
        }
        if !matches!(
            header.alg,
            Algorithm::ES256 | Algorithm::PS256 | Algorithm::RS256 | Algorithm::EdDSA
        ) {
            return Err(format!("alg {:?} is not asymmetric", header.alg));
        }
        let jwk: Jwk = header.jwk.clone().ok_or("no jwk in the header")?;
        if part(proof, 0)["jwk"].get("d").is_some() {
            return Err("the jwk holds a private key".into());
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("bad jwk: {e}"))?;
        let mut validation = Validation::new(header.alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<Value>(proof, &key, &validation)
            .map_err(|e| format!("the signature does not verify: {e}"))?;
        if claims["htm"] != method {
            return Err(format!("htm {} for {method}", claims["htm"]));
        }
        if claims["htu"] != htu {
            return Err(format!("htu {} for {htu}", claims["htu"]));
        }
        let iat = claims["iat"].as_u64().ok_or("no iat")?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        if iat.abs_diff(now) > 60 {
            return Err(format!("iat {iat} is not recent"));
        }
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        if claims["ath"] != ath.as_str() {
            return Err("ath is not the token's hash".into());
        }
        let jkt = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| format!("no thumbprint: {e}"))?;
        if introspection["active"] != true {
            return Err("token: inactive".into());
        }
        if introspection["cnf"]["jkt"] != jkt.as_str() {
            return Err(format!(
                "token: bound to {}, not to the proof's key {jkt}",
                introspection["cnf"]["jkt"]
            ));
        }
        let jti = claims["jti"].as_str().ok_or("no jti")?;
        if !memory.jtis.insert(jti.to_owned()) {
            return Err("jti replayed".into());
        }
        Ok(jkt)
    })();
    (claims, result)
}

/// Part `i` of a compact JWS, decoded as JSON (`Null` if it is not).
fn part(jwt: &str, i: usize) -> Value {
    jwt.split('.')
        .nth(i)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

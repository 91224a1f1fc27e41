//! A LYING provider for the security tests: an in-process OpenID provider
//! that looks honest (discovery, JWKS, an authorization endpoint that
//! redirects straight back with a code, no login page) but whose token
//! endpoint answers with exactly one configurable [`Fault`]: a forged or
//! wrong ID token, or a token endpoint that hangs or answers garbage.
//! Honest ID tokens answer what the login asked of the authentication
//! (`acr` = the first `acr_values`, `auth_time` when `max_age` was asked);
//! [`Fault::LowerAcr`] and [`Fault::AuthTimeAgo`] lie about it.
//!
//! Some faults are in what it publishes instead: discovery advertising
//! `HS256`, or a JWKS whose RSA numbers carry a leading zero byte (which an
//! honest provider may publish, and a relying party must accept).
//!
//! Tokens are made with the `jsonwebtoken` crate and the test-only keys in
//! `tests/fixtures/` (no hand-rolled crypto; `alg: none` needs no crypto at
//! all). It counts JWKS fetches so a test can prove "refetched once on an
//! unknown `kid`, never per request". It also signs back-channel logout
//! tokens on demand ([`sign_logout_token`], [`LyingProvider::logout_token_claims`]),
//! with or without `exp`, `jti` or `typ`.

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keyway_shared::CallbackRequest;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

/// The key the provider signs with and publishes (kid [`KID`]).
pub const SIGNING_KEY_PEM: &str = include_str!("../fixtures/lying-provider-key.pem");
/// The public half of [`SIGNING_KEY_PEM`], as PEM (the key-confusion "secret").
pub const PUBLIC_KEY_PEM: &str = include_str!("../fixtures/lying-provider-key.pub.pem");
/// A key the provider never publishes.
pub const OTHER_KEY_PEM: &str = include_str!("../fixtures/lying-provider-other-key.pem");
/// The published JWKS (the public half of [`SIGNING_KEY_PEM`]).
pub const JWKS_JSON: &str = include_str!("../fixtures/lying-provider-jwks.json");
/// The key id of the published key.
pub const KID: &str = "lying-1";
/// The `sub` of the one user the provider "signs in".
pub const SUBJECT: &str = "liar-user";
/// The client secret [`Fault::Hs256WithClientSecret`] signs with when the
/// token request carries none (the secret of `keyway_tests::bff::env_for`).
pub const CLIENT_SECRET: &str = "keyway-secret";
/// The `events` member of a back-channel logout token (OIDC Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The one lie the token endpoint tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No lie: a valid ID token (the control case).
    None,
    /// The signature is a valid signature of other claims.
    BadSignature,
    /// `alg: none` and an empty signature.
    AlgNone,
    /// HS256 with the provider's RSA public key (PEM) as the HMAC secret.
    Hs256WithPublicKey,
    /// `iss` is another issuer.
    WrongIssuer,
    /// `aud` is another client.
    WrongAudience,
    /// `aud` holds this client and another, and there is no `azp`.
    AudiencesWithoutAzp,
    /// `exp` has passed.
    Expired,
    /// `iat` an hour in the future.
    IssuedInFuture,
    /// No `nonce` claim.
    MissingNonce,
    /// A `nonce` that is not the login's.
    WrongNonce,
    /// Signed with a key the JWKS does not hold, under an unknown `kid`.
    UnknownKid,
    /// Discovery advertises `authorization_response_iss_parameter_supported`
    /// but the authorization response carries no `iss`.
    IssAdvertisedButMissing,
    /// The token endpoint never answers.
    TokenEndpointHangs,
    /// The token endpoint answers an HTML page.
    TokenEndpointHtml,
    /// The token endpoint answers `200` with invalid JSON.
    TokenEndpointInvalidJson,
    /// The token endpoint answers a 10 MiB body.
    TokenEndpointHuge,
    /// Discovery advertises `id_token_signing_alg_values_supported:
    /// ["HS256","RS256"]` and the ID token is HS256 with the client secret as
    /// the HMAC key (the one the token request authenticated with, else
    /// [`CLIENT_SECRET`]). The claims are all right: a relying party that
    /// expects RS256 (it never registered HS256) must still refuse it.
    Hs256WithClientSecret,
    /// An honest ID token, but the JWKS publishes the key's modulus `n` with
    /// a leading zero byte prepended before base64url encoding (as some
    /// providers do). The key is the same number: a relying party must
    /// accept the signature.
    JwksLeadingZeroModulus,
    /// Like [`Fault::JwksLeadingZeroModulus`], for the exponent `e`
    /// (`AAEAAQ` instead of `AQAB`).
    JwksLeadingZeroExponent,
    /// An honest login with a refresh token and a 2 s access token; a
    /// refresh answers an honest new ID token (same subject, no nonce): the
    /// control case of the refresh faults.
    RefreshHonest,
    /// Like [`Fault::RefreshHonest`], but the refreshed ID token names
    /// another subject (OpenID Connect Core §12.2: must be the same).
    RefreshOtherSubject,
    /// The refreshed ID token is for another audience.
    RefreshWrongAudience,
    /// The refreshed ID token carries a nonce that is not the login's.
    RefreshOtherNonce,
    /// The refreshed ID token's signature is of other claims.
    RefreshBadSignature,
    /// Discovery advertises DPoP (`dpop_signing_alg_values_supported`:
    /// ES256), but the token endpoint answers a plain `Bearer` token to a
    /// request that carries a DPoP proof (RFC 9449 §5: the client must
    /// refuse it).
    BearerToDpop,
    /// The ID token's `acr` is [`LOWER_ACR`], whatever `acr_values` the
    /// login asked for (an honest answer names the first one asked).
    LowerAcr,
    /// The ID token's `auth_time` is this many seconds ago (an honest
    /// answer to a login that asked for `max_age` says now).
    AuthTimeAgo(i64),
}

/// The authentication level [`Fault::LowerAcr`] claims.
pub const LOWER_ACR: &str = "urn:liar:password-only";

/// What an authorization request asked of the authentication, which an
/// honest ID token answers: `acr` = the first `acr_values`, `auth_time` =
/// now when `max_age` was asked.
#[derive(Debug, Clone, Default)]
struct Asked {
    acr: Option<String>,
    max_age: bool,
}

#[derive(Debug)]
struct Shared {
    issuer: String,
    fault: Fault,
    jwks_fetches: AtomicUsize,
    token_requests: AtomicUsize,
    jwks_down: AtomicBool,
    discovery_hangs: AtomicBool,
    discovery_fetches: AtomicUsize,
    next_code: AtomicUsize,
    nonces: Mutex<HashMap<String, String>>,
    asked: Mutex<HashMap<String, Asked>>,
    authorize_seen: Mutex<Vec<HashMap<String, String>>>,
    token_seen: Mutex<Vec<TokenRequest>>,
}

/// One request the token endpoint received.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// Its `Authorization` header (client_secret_basic), if any.
    pub authorization: Option<String>,
    /// Its form parameters.
    pub form: HashMap<String, String>,
}

/// A running lying provider; stopped when dropped.
#[derive(Debug)]
pub struct LyingProvider {
    /// Its issuer, `http://127.0.0.1:PORT`.
    pub issuer: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for LyingProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

impl LyingProvider {
    /// Starts a provider on a free loopback port whose token endpoint tells `fault`.
    pub async fn start(fault: Fault) -> LyingProvider {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let issuer = format!("http://127.0.0.1:{port}");
        let shared = Arc::new(Shared {
            issuer: issuer.clone(),
            fault,
            jwks_fetches: AtomicUsize::new(0),
            token_requests: AtomicUsize::new(0),
            jwks_down: AtomicBool::new(false),
            discovery_hangs: AtomicBool::new(false),
            discovery_fetches: AtomicUsize::new(0),
            next_code: AtomicUsize::new(1),
            nonces: Mutex::new(HashMap::new()),
            asked: Mutex::new(HashMap::new()),
            authorize_seen: Mutex::new(Vec::new()),
            token_seen: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LyingProvider {
            issuer,
            shared,
            task,
        }
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// How many token requests arrived.
    pub fn token_requests(&self) -> usize {
        self.shared.token_requests.load(Ordering::SeqCst)
    }

    /// The query parameters of every authorization request, in order.
    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.shared.authorize_seen.lock().expect("log").clone()
    }

    /// Every request the token endpoint received, in order.
    pub fn token_request_log(&self) -> Vec<TokenRequest> {
        self.shared.token_seen.lock().expect("log").clone()
    }

    /// From now on the JWKS endpoint answers `503` (after discovery loaded it).
    pub fn take_jwks_down(&self) {
        self.shared.jwks_down.store(true, Ordering::SeqCst);
    }

    /// From now on the discovery document is never answered (a provider
    /// that hangs); its fetches are still counted.
    pub fn hang_discovery(&self) {
        self.shared.discovery_hangs.store(true, Ordering::SeqCst);
    }

    /// How many times the discovery document was asked for.
    pub fn discovery_fetches(&self) -> usize {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Follows the authorization URL (no login page) and returns the
    /// redirect back as the SPA would post it to `/bff/callback`.
    pub async fn authorize(&self, authorization_url: &str) -> CallbackRequest {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let response = client
            .get(authorization_url)
            .send()
            .await
            .expect("authorization request");
        assert_eq!(response.status(), StatusCode::FOUND, "authorize redirects");
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .expect("Location")
            .to_owned();
        crate::bff::callback_request(&Url::parse(&location).expect("redirect URL"))
    }
}

async fn discovery(State(s): State<Arc<Shared>>) -> Response {
    s.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    if s.discovery_hangs.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let i = &s.issuer;
    let mut document = json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": if s.fault == Fault::Hs256WithClientSecret {
            json!(["HS256", "RS256"])
        } else {
            json!(["RS256"])
        },
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported":
            s.fault == Fault::IssAdvertisedButMissing,
    });
    if s.fault == Fault::BearerToDpop {
        document["dpop_signing_alg_values_supported"] = json!(["ES256"]);
    }
    axum::Json(document).into_response()
}

async fn jwks(State(s): State<Arc<Shared>>) -> Response {
    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if s.jwks_down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let body = match s.fault {
        Fault::JwksLeadingZeroModulus => jwks_with_leading_zero("n"),
        Fault::JwksLeadingZeroExponent => jwks_with_leading_zero("e"),
        _ => JWKS_JSON.to_owned(),
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The published JWKS with a zero byte prepended to the big-endian bytes of
/// `member` (`"n"` or `"e"`) of its key.
pub fn jwks_with_leading_zero(member: &str) -> String {
    let mut jwks: Value = serde_json::from_str(JWKS_JSON).expect("the fixture JWKS parses");
    let key = &mut jwks["keys"][0];
    let bytes = URL_SAFE_NO_PAD
        .decode(key[member].as_str().expect("an RSA member"))
        .expect("base64url");
    let mut padded = vec![0u8];
    padded.extend_from_slice(&bytes);
    key[member] = json!(URL_SAFE_NO_PAD.encode(padded));
    jwks.to_string()
}

async fn authorize(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.authorize_seen.lock().expect("log").push(q.clone());
    let code = format!("code-{}", s.next_code.fetch_add(1, Ordering::SeqCst));
    s.nonces
        .lock()
        .expect("nonces")
        .insert(code.clone(), q.get("nonce").cloned().unwrap_or_default());
    let asked = Asked {
        acr: q
            .get("acr_values")
            .and_then(|v| v.split(' ').find(|a| !a.is_empty()))
            .map(str::to_owned),
        max_age: q.contains_key("max_age"),
    };
    s.asked.lock().expect("asked").insert(code.clone(), asked);
    let mut back = Url::parse(q.get("redirect_uri").map_or("", String::as_str))
        .unwrap_or_else(|_| Url::parse("http://127.0.0.1/callback").expect("url"));
    {
        let mut pairs = back.query_pairs_mut();
        pairs.append_pair("code", &code);
        if let Some(state) = q.get("state") {
            pairs.append_pair("state", state);
        }
        if s.fault != Fault::IssAdvertisedButMissing {
            pairs.append_pair("iss", &s.issuer);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response()
}

async fn userinfo() -> Response {
    axum::Json(json!({ "sub": SUBJECT })).into_response()
}

fn sign(header: &Header, claims: &Value, key_pem: &str) -> String {
    jsonwebtoken::encode(
        header,
        claims,
        &EncodingKey::from_rsa_pem(key_pem.as_bytes()).expect("test key"),
    )
    .expect("sign")
}

fn rs256(kid: &str) -> Header {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.to_owned());
    h
}

/// The ID token of `fault` for a login whose nonce was `nonce` and which
/// asked `asked`, for a client whose secret is `client_secret`.
fn id_token(s: &Shared, fault: Fault, nonce: &str, asked: &Asked, client_secret: &str) -> String {
    let t = now();
    let mut claims = json!({
        "iss": s.issuer,
        "sub": SUBJECT,
        "aud": "keyway",
        "iat": t,
        "exp": t + 300,
        "nonce": nonce,
        "name": "Liar",
    });
    if let Some(acr) = &asked.acr {
        claims["acr"] = json!(acr);
    }
    if asked.max_age {
        claims["auth_time"] = json!(t);
    }
    match fault {
        Fault::WrongIssuer => claims["iss"] = json!("https://evil.example"),
        Fault::WrongAudience => claims["aud"] = json!("someone-else"),
        Fault::AudiencesWithoutAzp => claims["aud"] = json!(["keyway", "someone-else"]),
        Fault::Expired => {
            claims["iat"] = json!(t - 300);
            claims["exp"] = json!(t - 120);
        }
        Fault::IssuedInFuture => {
            claims["iat"] = json!(t + 3600);
            claims["exp"] = json!(t + 7200);
        }
        Fault::MissingNonce => {
            claims.as_object_mut().expect("object").remove("nonce");
        }
        Fault::WrongNonce => claims["nonce"] = json!("not-the-login-nonce"),
        Fault::LowerAcr => claims["acr"] = json!(LOWER_ACR),
        Fault::AuthTimeAgo(secs) => claims["auth_time"] = json!(t - secs),
        _ => {}
    }
    match fault {
        Fault::BadSignature => {
            // A genuine signature, but of other claims.
            let token = sign(&rs256(KID), &claims, SIGNING_KEY_PEM);
            let mut other = claims.clone();
            other["sub"] = json!("someone-else");
            let forged = sign(&rs256(KID), &other, SIGNING_KEY_PEM);
            let (body, _) = token.rsplit_once('.').expect("JWS");
            let (_, sig) = forged.rsplit_once('.').expect("JWS");
            format!("{body}.{sig}")
        }
        Fault::AlgNone => {
            let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
            let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
            format!("{header}.{payload}.")
        }
        Fault::Hs256WithPublicKey => {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some(KID.to_owned());
            jsonwebtoken::encode(
                &h,
                &claims,
                &EncodingKey::from_secret(PUBLIC_KEY_PEM.as_bytes()),
            )
            .expect("sign")
        }
        Fault::Hs256WithClientSecret => {
            // No kid: a symmetric key is not in any JWKS.
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(client_secret.as_bytes()),
            )
            .expect("sign")
        }
        Fault::UnknownKid => sign(&rs256("rotated-2"), &claims, OTHER_KEY_PEM),
        _ => sign(&rs256(KID), &claims, SIGNING_KEY_PEM),
    }
}

async fn token(
    State(s): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.token_requests.fetch_add(1, Ordering::SeqCst);
    s.token_seen.lock().expect("log").push(TokenRequest {
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        form: form.clone(),
    });
    match s.fault {
        Fault::TokenEndpointHangs => std::future::pending::<()>().await,
        Fault::TokenEndpointHtml => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body><h1>Welcome to nginx!</h1></body></html>",
            )
                .into_response();
        }
        Fault::TokenEndpointInvalidJson => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"access_token": "at", "token_type": "Bearer", "#,
            )
                .into_response();
        }
        Fault::TokenEndpointHuge => {
            let mut body = br#"{"access_token":""#.to_vec();
            body.resize(10 * 1024 * 1024, b'a');
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
        }
        _ => {}
    }
    let client_secret = client_secret(&headers, &form);
    if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
        return refresh(&s, &client_secret).into_response();
    }
    let code = form.get("code").cloned().unwrap_or_default();
    let asked = s
        .asked
        .lock()
        .expect("asked")
        .remove(&code)
        .unwrap_or_default();
    let Some(nonce) = s.nonces.lock().expect("nonces").remove(&code) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    if is_refresh_fault(s.fault) {
        return axum::Json(json!({
            "access_token": format!("at-{code}"),
            "token_type": "Bearer",
            "expires_in": 2,
            "refresh_token": format!("rt-{code}"),
            "id_token": id_token(&s, Fault::None, &nonce, &asked, &client_secret),
        }))
        .into_response();
    }
    axum::Json(json!({
        "access_token": format!("at-{code}"),
        "token_type": "Bearer",
        "expires_in": 3600,
        "id_token": id_token(&s, s.fault, &nonce, &asked, &client_secret),
    }))
    .into_response()
}

fn is_refresh_fault(fault: Fault) -> bool {
    matches!(
        fault,
        Fault::RefreshHonest
            | Fault::RefreshOtherSubject
            | Fault::RefreshWrongAudience
            | Fault::RefreshOtherNonce
            | Fault::RefreshBadSignature
    )
}

/// A refresh grant: a new access token and an ID token with the refresh
/// fault (none for [`Fault::RefreshHonest`]).
fn refresh(s: &Shared, client_secret: &str) -> axum::Json<Value> {
    let n = s.next_code.fetch_add(1, Ordering::SeqCst);
    let token = id_token(s, Fault::None, "", &Asked::default(), client_secret);
    // The honest refreshed ID token has no nonce (OpenID Connect Core §12.2).
    let mut claims: Value = {
        let payload = token.split('.').nth(1).expect("JWS");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
    };
    claims.as_object_mut().expect("object").remove("nonce");
    match s.fault {
        Fault::RefreshOtherSubject => claims["sub"] = json!("someone-else"),
        Fault::RefreshWrongAudience => claims["aud"] = json!("someone-else"),
        Fault::RefreshOtherNonce => claims["nonce"] = json!("not-the-login-nonce"),
        _ => {}
    }
    let id_token = if s.fault == Fault::RefreshBadSignature {
        let good = sign(&rs256(KID), &claims, SIGNING_KEY_PEM);
        let mut other = claims.clone();
        other["sub"] = json!("someone-else");
        let forged = sign(&rs256(KID), &other, SIGNING_KEY_PEM);
        let (body, _) = good.rsplit_once('.').expect("JWS");
        let (_, sig) = forged.rsplit_once('.').expect("JWS");
        format!("{body}.{sig}")
    } else {
        sign(&rs256(KID), &claims, SIGNING_KEY_PEM)
    };
    axum::Json(json!({
        "access_token": format!("at-refreshed-{n}"),
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": format!("rt-refreshed-{n}"),
        "id_token": id_token,
    }))
}

/// The client secret of a token request: from `Authorization: Basic`
/// (form-urlencoded inside, RFC 6749 §2.3.1), else the `client_secret` form
/// field, else [`CLIENT_SECRET`].
fn client_secret(headers: &axum::http::HeaderMap, form: &HashMap<String, String>) -> String {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            pair.split_once(':').map(|(_, secret)| {
                url::form_urlencoded::parse(format!("s={secret}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            })
        });
    basic
        .or_else(|| form.get("client_secret").cloned())
        .unwrap_or_else(|| CLIENT_SECRET.to_owned())
}

/// The JOSE header of a logout token made by [`sign_logout_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutTokenHeader {
    /// The `typ` member: `Some("logout+jwt")` (what the spec recommends),
    /// `Some("JWT")`, or `None` for no `typ` at all.
    pub typ: Option<String>,
    /// The `kid` member; `None` for none.
    pub kid: Option<String>,
    /// Sign with [`OTHER_KEY_PEM`], a key the JWKS does not hold, instead of
    /// [`SIGNING_KEY_PEM`].
    pub foreign_key: bool,
}

impl Default for LogoutTokenHeader {
    /// `typ: logout+jwt`, `kid:` [`KID`], the published key.
    fn default() -> Self {
        LogoutTokenHeader {
            typ: Some("logout+jwt".to_owned()),
            kid: Some(KID.to_owned()),
            foreign_key: false,
        }
    }
}

impl LogoutTokenHeader {
    /// The default header with another `typ` (`None`: no `typ` member).
    pub fn with_typ(typ: Option<&str>) -> Self {
        LogoutTokenHeader {
            typ: typ.map(str::to_owned),
            ..LogoutTokenHeader::default()
        }
    }
}

/// Signs `claims` as an RS256 JWS with the lying provider's key (or the
/// unpublished one, see [`LogoutTokenHeader::foreign_key`]) under `header`:
/// a back-channel logout token a test sends to the BFF itself. Any claims
/// go: see [`LyingProvider::logout_token_claims`] for a valid set to start
/// from and remove `exp`, `jti`... as the test needs.
pub fn sign_logout_token(claims: &Value, header: &LogoutTokenHeader) -> String {
    let mut jose = Header::new(Algorithm::RS256);
    jose.typ = header.typ.clone();
    jose.kid = header.kid.clone();
    let key = if header.foreign_key {
        OTHER_KEY_PEM
    } else {
        SIGNING_KEY_PEM
    };
    sign(&jose, claims, key)
}

impl LyingProvider {
    /// A valid set of logout-token claims from this provider for the client
    /// `keyway`: `iss`, `aud`, `iat` (now), `exp` (in 2 minutes), a fresh
    /// `jti`, the back-channel logout `events` member, and `sub` and/or
    /// `sid` when given (the spec wants at least one).
    pub fn logout_token_claims(&self, sub: Option<&str>, sid: Option<&str>) -> Value {
        let t = now();
        let jti = format!(
            "lying-logout-{}-{}",
            std::process::id(),
            self.shared.next_code.fetch_add(1, Ordering::SeqCst)
        );
        let mut claims = json!({
            "iss": self.issuer,
            "aud": "keyway",
            "iat": t,
            "exp": t + 120,
            "jti": jti,
            "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
        });
        if let Some(sub) = sub {
            claims["sub"] = json!(sub);
        }
        if let Some(sid) = sid {
            claims["sid"] = json!(sid);
        }
        claims
    }

    /// [`sign_logout_token`], as a method for symmetry with the claims helper.
    pub fn sign_logout_token(&self, claims: &Value, header: &LogoutTokenHeader) -> String {
        sign_logout_token(claims, header)
    }
}

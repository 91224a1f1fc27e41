//! Tests of the lying provider's newer lies, talking to the FAKE directly
//! with reqwest (no BFF): HS256 ID tokens keyed with the client secret, JWKS
//! numbers with a leading zero byte, and logout tokens signed on demand.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use keyway_tests::lying_provider::{
    BACKCHANNEL_LOGOUT_EVENT, CLIENT_SECRET, Fault, JWKS_JSON, KID, LogoutTokenHeader,
    LyingProvider, SUBJECT, sign_logout_token,
};
use serde_json::Value;
use url::Url;

const REDIRECT_URI: &str = "http://127.0.0.1:8080/callback";
const NONCE: &str = "nonce-fixture";

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get_json(url: &str) -> Value {
    http()
        .get(url)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs the liar's code flow as client `keyway` with `secret` (basic auth);
/// returns the ID token.
async fn id_token(provider: &LyingProvider, secret: &str) -> String {
    let mut authorize = Url::parse(&format!("{}/authorize", provider.issuer)).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "keyway")
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("state", "s")
        .append_pair("nonce", NONCE);
    let redirect = http().get(authorize).send().await.unwrap();
    assert_eq!(redirect.status(), 302);
    let location =
        Url::parse(redirect.headers()["location"].to_str().expect("a Location")).unwrap();
    let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
    let answer: Value = http()
        .post(format!("{}/token", provider.issuer))
        .basic_auth("keyway", Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", query["code"].as_str()),
            ("redirect_uri", REDIRECT_URI),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no id_token: {answer}"))
        .to_owned()
}

fn validation(alg: Algorithm, issuer: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.set_audience(&["keyway"]);
    v.set_issuer(&[issuer]);
    v
}

/// The RSA key of a JWKS document, as a decoding key (components as published).
fn rsa_key(jwks: &Value) -> DecodingKey {
    let key = &jwks["keys"][0];
    DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap())
        .expect("an RSA key")
}

fn b64(value: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(value.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn hs256_with_the_client_secret_is_advertised_and_used() {
    let provider = LyingProvider::start(Fault::Hs256WithClientSecret).await;
    let discovery = get_json(&format!(
        "{}/.well-known/openid-configuration",
        provider.issuer
    ))
    .await;
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        serde_json::json!(["HS256", "RS256"])
    );

    let token = id_token(&provider, CLIENT_SECRET).await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    let data = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_secret(CLIENT_SECRET.as_bytes()),
        &validation(Algorithm::HS256, &provider.issuer),
    )
    .expect("an HMAC of the client secret");
    assert_eq!(data.claims["sub"], SUBJECT);
    assert_eq!(data.claims["nonce"], NONCE);

    // A relying party that checks RS256 against the JWKS refuses it.
    let jwks: Value = serde_json::from_str(JWKS_JSON).unwrap();
    assert!(
        jsonwebtoken::decode::<Value>(
            &token,
            &rsa_key(&jwks),
            &validation(Algorithm::RS256, &provider.issuer)
        )
        .is_err()
    );

    // The key is whatever secret the client authenticated with.
    let other = id_token(&provider, "another-secret").await;
    jsonwebtoken::decode::<Value>(
        &other,
        &DecodingKey::from_secret(b"another-secret"),
        &validation(Algorithm::HS256, &provider.issuer),
    )
    .expect("keyed with the request's secret");
}

#[tokio::test]
async fn an_honest_liar_publishes_the_jwks_unchanged() {
    let provider = LyingProvider::start(Fault::None).await;
    let jwks = get_json(&format!("{}/jwks", provider.issuer)).await;
    let fixture: Value = serde_json::from_str(JWKS_JSON).unwrap();
    assert_eq!(jwks, fixture);
    let discovery = get_json(&format!(
        "{}/.well-known/openid-configuration",
        provider.issuer
    ))
    .await;
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
}

async fn leading_zero(fault: Fault, member: &str) {
    let provider = LyingProvider::start(fault).await;
    let jwks = get_json(&format!("{}/jwks", provider.issuer)).await;
    let fixture: Value = serde_json::from_str(JWKS_JSON).unwrap();
    let published = b64(&jwks["keys"][0][member]);
    let original = b64(&fixture["keys"][0][member]);
    assert_eq!(published[0], 0, "a leading zero byte");
    assert_eq!(&published[1..], &original[..], "then the same number");
    assert_eq!(jwks["keys"][0]["kid"], KID);

    // The ID token is honest and verifies with the key exactly as published.
    let token = id_token(&provider, CLIENT_SECRET).await;
    let data = jsonwebtoken::decode::<Value>(
        &token,
        &rsa_key(&jwks),
        &validation(Algorithm::RS256, &provider.issuer),
    )
    .expect("the padded key verifies the signature");
    assert_eq!(data.claims["sub"], SUBJECT);
    assert_eq!(provider.jwks_fetches(), 1);
}

#[tokio::test]
async fn jwks_with_a_leading_zero_in_the_modulus_still_verifies() {
    leading_zero(Fault::JwksLeadingZeroModulus, "n").await;
}

#[tokio::test]
async fn jwks_with_a_leading_zero_in_the_exponent_still_verifies() {
    leading_zero(Fault::JwksLeadingZeroExponent, "e").await;
    let jwks: Value =
        serde_json::from_str(&keyway_tests::lying_provider::jwks_with_leading_zero("e")).unwrap();
    assert_eq!(jwks["keys"][0]["e"], "AAEAAQ");
}

fn header_json(token: &str) -> Value {
    let head = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap()
}

/// Validation for logout tokens: no `exp` required, issuer and audience checked.
fn logout_validation(issuer: &str) -> Validation {
    let mut v = validation(Algorithm::RS256, issuer);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v
}

#[tokio::test]
async fn logout_tokens_are_signed_with_the_published_key() {
    let provider = LyingProvider::start(Fault::None).await;
    let jwks: Value = serde_json::from_str(JWKS_JSON).unwrap();
    let claims = provider.logout_token_claims(Some(SUBJECT), Some("sid-1"));
    assert_eq!(claims["iss"], provider.issuer.as_str());
    assert!(claims["events"][BACKCHANNEL_LOGOUT_EVENT].is_object());
    assert!(claims["jti"].is_string() && claims["exp"].is_i64());
    let other = provider.logout_token_claims(Some(SUBJECT), None);
    assert_ne!(claims["jti"], other["jti"], "a fresh jti each time");
    assert!(other.get("sid").is_none());

    let token = provider.sign_logout_token(&claims, &LogoutTokenHeader::default());
    let header = header_json(&token);
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(header["kid"], KID);
    assert_eq!(header["alg"], "RS256");
    let data = jsonwebtoken::decode::<Value>(
        &token,
        &rsa_key(&jwks),
        &logout_validation(&provider.issuer),
    )
    .expect("verifies with the published key");
    assert_eq!(data.claims, claims);
}

#[tokio::test]
async fn logout_tokens_without_exp_jti_or_typ_and_with_a_foreign_key() {
    let provider = LyingProvider::start(Fault::None).await;
    let jwks: Value = serde_json::from_str(JWKS_JSON).unwrap();
    let mut claims = provider.logout_token_claims(Some(SUBJECT), Some("sid-2"));
    let object = claims.as_object_mut().unwrap();
    object.remove("exp");
    object.remove("jti");

    let no_typ = sign_logout_token(&claims, &LogoutTokenHeader::with_typ(None));
    assert!(header_json(&no_typ).get("typ").is_none());
    let data = jsonwebtoken::decode::<Value>(
        &no_typ,
        &rsa_key(&jwks),
        &logout_validation(&provider.issuer),
    )
    .unwrap();
    assert!(data.claims.get("exp").is_none());
    assert!(data.claims.get("jti").is_none());

    let jwt_typ = sign_logout_token(&claims, &LogoutTokenHeader::with_typ(Some("JWT")));
    assert_eq!(header_json(&jwt_typ)["typ"], "JWT");

    let foreign = sign_logout_token(
        &claims,
        &LogoutTokenHeader {
            foreign_key: true,
            ..LogoutTokenHeader::default()
        },
    );
    assert_eq!(header_json(&foreign)["kid"], KID);
    assert!(
        jsonwebtoken::decode::<Value>(
            &foreign,
            &rsa_key(&jwks),
            &logout_validation(&provider.issuer)
        )
        .is_err(),
        "a key the JWKS does not hold does not verify"
    );
}

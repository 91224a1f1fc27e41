//! Pins the SPA's hand-written JSON conversions (`FromJson` / `ToJson` in
//! `src/auth/json.rs`) to the serde derives of `keyway_shared`.
//!
//! The SPA reads and writes the wire types through the browser's `JSON`
//! instead of `serde_json`, to save wasm size; the backend uses the serde
//! derives. Only these tests keep the two from drifting apart:
//! * every type with `FromJson` reads what `serde_json` writes back to the
//!   same value, ignores unknown fields, accepts `null` for an `Option`, and
//!   rejects (`None`) exactly what `serde_json` rejects, field by field;
//! * every type with `ToJson` writes, through `JSON.stringify`, what
//!   `serde_json` reads back to the same value, with serde's field names.
//!
//! `serde_json` is a dev-dependency: it is the reference here, not in the SPA.
//!
//! Not pinned, because serde never writes them and `JSON.parse` cannot tell
//! them apart: a struct as a JSON array (serde's sequence form; rejected), a
//! repeated key (the last wins; serde rejects), `1.0` / `1e3` / `-0` for a
//! `u64` (read as integers; serde rejects floats), integers above 2^53 (they
//! lose precision as JavaScript numbers).
#![cfg(target_arch = "wasm32")]

use js_sys::JSON;
use keyway_frontend::auth::{FromJson, ToJson};
use keyway_shared::{
    CallbackRequest, CallbackResponse, ErrorBody, LoginRequest, LoginResponse, LogoutResponse,
    ProviderInfo, ProviderKind, User, codes,
};
use serde_json::{Value, json};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A string JSON must escape or encode with care: quote, backslash, control
/// characters (NUL included), non-ASCII, a non-BMP character, U+2028.
const TRICKY: &str = "q\"b\\s/n\nt\tc\u{1}z\u{0}é日本🔑\u{2028}";

/// `Number.MAX_SAFE_INTEGER`: the largest `u64` a JavaScript number holds exactly.
const MAX_SAFE: u64 = 9_007_199_254_740_991;

/// `FromJson` reads what `serde_json::to_string` writes of `$value`, back to `$value`.
macro_rules! reads {
    ($ty:ty, $value:expr) => {{
        let value: $ty = $value;
        let text = serde_json::to_string(&value).unwrap();
        assert_eq!(
            <$ty as FromJson>::from_json_str(&text),
            Some(value),
            "{text}"
        );
    }};
}

/// `serde_json` accepts `$text`, and `FromJson` reads the same value; returns it.
macro_rules! accepts {
    ($ty:ty, $text:expr) => {{
        let text: &str = $text;
        let serde = serde_json::from_str::<$ty>(text)
            .unwrap_or_else(|e| panic!("serde rejects {text}: {e}"));
        assert_eq!(
            <$ty as FromJson>::from_json_str(text),
            Some(serde.clone()),
            "{text}"
        );
        serde
    }};
}

/// `serde_json` rejects `$text`, and so does `FromJson`.
macro_rules! rejects {
    ($ty:ty, $text:expr) => {{
        let text: &str = $text;
        assert!(
            serde_json::from_str::<$ty>(text).is_err(),
            "serde accepts {text}"
        );
        assert_eq!(<$ty as FromJson>::from_json_str(text), None, "{text}");
    }};
}

/// `FromJson` and `serde_json` agree on `$text`: both reject it or both read
/// the same value.
macro_rules! agrees {
    ($ty:ty, $text:expr) => {{
        let text: &str = $text;
        assert_eq!(
            <$ty as FromJson>::from_json_str(text),
            serde_json::from_str::<$ty>(text).ok(),
            "{text}"
        );
    }};
}

/// JSON values of every type, for replacing fields.
fn samples() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(7),
        json!(-1),
        json!(1.5),
        json!(MAX_SAFE),
        json!(""),
        json!("x"),
        json!("oidc"),
        json!("oauth2"),
        json!([]),
        json!(["x"]),
        json!({}),
        json!({"sub": "s", "provider": "p", "expires_at": 1}),
    ]
}

/// For every field of `$value` (which must have all its optional fields set):
/// removing it, or replacing it with each of [`samples`], `FromJson` and
/// `serde_json` agree; and an unknown field of any type is ignored.
macro_rules! agrees_on_every_field {
    ($ty:ty, $value:expr) => {{
        let value: $ty = $value;
        let Value::Object(base) = serde_json::to_value(&value).unwrap() else {
            panic!("{} is not written as an object", stringify!($ty));
        };
        for key in base.keys() {
            let mut without = base.clone();
            without.remove(key);
            agrees!($ty, &Value::Object(without).to_string());
            for sample in samples() {
                let mut changed = base.clone();
                changed.insert(key.clone(), sample);
                agrees!($ty, &Value::Object(changed).to_string());
            }
        }
        for sample in samples() {
            let mut extra = base.clone();
            extra.insert("unknown_field".into(), sample);
            let text = Value::Object(extra).to_string();
            assert_eq!(
                <$ty as FromJson>::from_json_str(&text),
                Some(value.clone()),
                "{text}"
            );
        }
    }};
}

/// `JSON.stringify` of `$value.to_json()` is what `serde_json` writes of it
/// (same field names and values), and `serde_json` reads it back to `$value`.
macro_rules! writes {
    ($ty:ty, $value:expr) => {{
        let value: $ty = $value;
        let text = String::from(JSON::stringify(&value.to_json()).unwrap());
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            serde_json::to_value(&value).unwrap(),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<$ty>(&text).unwrap(), value, "{text}");
    }};
}

fn full_user() -> User {
    User {
        sub: "248289761001".into(),
        provider: "google".into(),
        name: Some("Jane Doe".into()),
        email: Some("jane@example.com".into()),
        email_verified: Some(true),
        picture: Some("https://example.com/jane.png".into()),
        expires_at: 1_700_000_000,
    }
}

fn bare_user() -> User {
    User {
        sub: "s".into(),
        provider: "p".into(),
        name: None,
        email: None,
        email_verified: None,
        picture: None,
        expires_at: 0,
    }
}

fn full_provider() -> ProviderInfo {
    ProviderInfo {
        id: "gh".into(),
        name: "GitHub".into(),
        kind: ProviderKind::Oauth2,
        preset: Some("github".into()),
    }
}

fn full_callback_request() -> CallbackRequest {
    CallbackRequest {
        code: Some("c0de".into()),
        state: Some("st4te".into()),
        iss: Some("https://sso.example.com".into()),
        error: Some(codes::ACCESS_DENIED.into()),
        error_description: Some("The user said no".into()),
    }
}

#[wasm_bindgen_test]
fn provider_kind_reads_every_variant_like_serde() {
    reads!(ProviderKind, ProviderKind::Oidc);
    reads!(ProviderKind, ProviderKind::Oauth2);
    for text in [
        r#""saml""#,
        r#""OIDC""#,
        r#""Oauth2""#,
        r#""""#,
        "1",
        "null",
        "{}",
    ] {
        rejects!(ProviderKind, text);
    }
}

#[wasm_bindgen_test]
fn provider_info_reads_what_serde_writes() {
    reads!(ProviderInfo, full_provider());
    reads!(
        ProviderInfo,
        ProviderInfo {
            id: TRICKY.into(),
            name: TRICKY.into(),
            kind: ProviderKind::Oidc,
            preset: None,
        }
    );
    let info = accepts!(
        ProviderInfo,
        r#"{"id":"o","name":"O","kind":"oidc","preset":null}"#
    );
    assert_eq!(info.preset, None);
    rejects!(ProviderInfo, r#"{"id":"o","name":"O","kind":"saml"}"#);
    rejects!(ProviderInfo, r#"{"id":"o","name":"O"}"#);
    rejects!(
        ProviderInfo,
        r#"{"id":"o","name":"O","kind":"oidc","preset":1}"#
    );
    agrees_on_every_field!(ProviderInfo, full_provider());
}

#[wasm_bindgen_test]
fn provider_list_reads_what_serde_writes() {
    reads!(Vec<ProviderInfo>, vec![]);
    reads!(
        Vec<ProviderInfo>,
        vec![
            full_provider(),
            ProviderInfo {
                id: "o".into(),
                name: "Okta".into(),
                kind: ProviderKind::Oidc,
                preset: None,
            },
        ]
    );
    // One bad entry spoils the list, as with serde.
    rejects!(
        Vec<ProviderInfo>,
        r#"[{"id":"o","name":"O","kind":"oidc"},{"id":"g","name":"G","kind":"saml"}]"#
    );
    for text in ["{}", "null", r#""x""#, "[null]"] {
        rejects!(Vec<ProviderInfo>, text);
    }
}

#[wasm_bindgen_test]
fn user_reads_what_serde_writes() {
    reads!(User, full_user());
    reads!(User, bare_user());
    reads!(
        User,
        User {
            sub: TRICKY.into(),
            provider: TRICKY.into(),
            name: Some(TRICKY.into()),
            email: Some(TRICKY.into()),
            email_verified: Some(false),
            picture: Some(TRICKY.into()),
            expires_at: MAX_SAFE,
        }
    );
    let user = accepts!(
        User,
        r#"{"sub":"s","provider":"p","name":null,"email":null,"email_verified":null,
            "picture":null,"expires_at":1}"#
    );
    assert_eq!(
        user,
        User {
            expires_at: 1,
            ..bare_user()
        }
    );
}

#[wasm_bindgen_test]
fn user_rejects_what_serde_rejects() {
    for text in [
        r#"{"provider":"p","expires_at":1}"#,
        r#"{"sub":"s","expires_at":1}"#,
        r#"{"sub":"s","provider":"p"}"#,
        r#"{"sub":null,"provider":"p","expires_at":1}"#,
        r#"{"sub":1,"provider":"p","expires_at":1}"#,
        r#"{"sub":"s","provider":"p","expires_at":"1"}"#,
        r#"{"sub":"s","provider":"p","expires_at":1.5}"#,
        r#"{"sub":"s","provider":"p","expires_at":-1}"#,
        r#"{"sub":"s","provider":"p","expires_at":null}"#,
        r#"{"sub":"s","provider":"p","name":7,"expires_at":1}"#,
        r#"{"sub":"s","provider":"p","email_verified":"true","expires_at":1}"#,
        r#"{"sub":"s","provider":"p","email_verified":1,"expires_at":1}"#,
        r#"{"sub":"s","provider":"p","picture":{},"expires_at":1}"#,
        "null",
        "[]",
        r#""user""#,
        "<html>",
        "",
    ] {
        rejects!(User, text);
    }
    agrees_on_every_field!(User, full_user());
}

#[wasm_bindgen_test]
fn login_response_reads_what_serde_writes() {
    reads!(
        LoginResponse,
        LoginResponse {
            authorization_url: "https://idp/authorize?client_id=a&state=b%20c".into(),
        }
    );
    reads!(
        LoginResponse,
        LoginResponse {
            authorization_url: TRICKY.into()
        }
    );
    rejects!(LoginResponse, "{}");
    rejects!(LoginResponse, r#"{"authorization_url":null}"#);
    agrees_on_every_field!(
        LoginResponse,
        LoginResponse {
            authorization_url: "https://idp/authorize".into()
        }
    );
}

#[wasm_bindgen_test]
fn callback_response_reads_what_serde_writes() {
    reads!(
        CallbackResponse,
        CallbackResponse {
            user: full_user(),
            return_to: "/account?tab=1".into()
        }
    );
    reads!(
        CallbackResponse,
        CallbackResponse {
            user: bare_user(),
            return_to: TRICKY.into()
        }
    );
    // A bad nested user spoils the response, as with serde.
    rejects!(
        CallbackResponse,
        r#"{"user":{"sub":"s","provider":"p","expires_at":"1"},"return_to":"/"}"#
    );
    rejects!(CallbackResponse, r#"{"return_to":"/"}"#);
    agrees_on_every_field!(
        CallbackResponse,
        CallbackResponse {
            user: full_user(),
            return_to: "/".into()
        }
    );
}

#[wasm_bindgen_test]
fn logout_response_reads_what_serde_writes() {
    reads!(
        LogoutResponse,
        LogoutResponse {
            end_session_url: Some("https://idp/end?x=1".into())
        }
    );
    // serde writes `None` as `null` here (no `skip_serializing_if`).
    reads!(
        LogoutResponse,
        LogoutResponse {
            end_session_url: None
        }
    );
    assert_eq!(
        accepts!(LogoutResponse, "{}"),
        LogoutResponse {
            end_session_url: None
        }
    );
    rejects!(LogoutResponse, r#"{"end_session_url":false}"#);
    // Not an object: nothing to read, even though every field is optional.
    for text in ["null", "[]", r#""x""#, "0", "true"] {
        rejects!(LogoutResponse, text);
    }
    agrees_on_every_field!(
        LogoutResponse,
        LogoutResponse {
            end_session_url: Some("https://idp/end".into())
        }
    );
}

#[wasm_bindgen_test]
fn error_body_reads_what_serde_writes() {
    for code in [
        codes::UNAUTHENTICATED,
        codes::INVALID_STATE,
        codes::INTERNAL,
    ] {
        reads!(
            ErrorBody,
            ErrorBody {
                error: code.into(),
                message: TRICKY.into()
            }
        );
    }
    rejects!(ErrorBody, r#"{"error":"internal_error"}"#);
    rejects!(ErrorBody, r#"{"error":null,"message":"m"}"#);
    agrees_on_every_field!(
        ErrorBody,
        ErrorBody {
            error: codes::NOT_FOUND.into(),
            message: "No such route.".into()
        }
    );
}

#[wasm_bindgen_test]
fn any_json_value_reads_as_parsed() {
    for text in [
        r#"{"sub":"s","nested":{"list":[1,-2,1.5,true,false,null,"é🔑\n\u0001"]},"empty":{}}"#,
        "[]",
        r#""x""#,
        "null",
        "0",
        "-7",
        "1.5",
    ] {
        let parsed = <JsValue as FromJson>::from_json_str(text).expect(text);
        let back = String::from(JSON::stringify(&parsed).unwrap());
        assert_eq!(
            serde_json::from_str::<Value>(&back).unwrap(),
            serde_json::from_str::<Value>(text).unwrap(),
            "{text}"
        );
    }
    for text in ["", "{", r#"{"a":1,}"#, "<html>", "'x'", "NaN"] {
        assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
        assert!(
            <JsValue as FromJson>::from_json_str(text).is_none(),
            "{text}"
        );
    }
}

#[wasm_bindgen_test]
fn login_request_writes_what_serde_reads() {
    writes!(LoginRequest, LoginRequest::default());
    writes!(
        LoginRequest,
        LoginRequest {
            provider: Some("gh".into()),
            return_to: Some("/account?tab=1".into())
        }
    );
    writes!(
        LoginRequest,
        LoginRequest {
            provider: Some(TRICKY.into()),
            return_to: None
        }
    );
    writes!(
        LoginRequest,
        LoginRequest {
            provider: None,
            return_to: Some(TRICKY.into())
        }
    );
}

#[wasm_bindgen_test]
fn callback_request_writes_what_serde_reads() {
    writes!(CallbackRequest, CallbackRequest::default());
    writes!(CallbackRequest, full_callback_request());
    writes!(
        CallbackRequest,
        CallbackRequest {
            code: Some(TRICKY.into()),
            state: Some(TRICKY.into()),
            iss: Some(TRICKY.into()),
            error: Some(TRICKY.into()),
            error_description: Some(TRICKY.into()),
        }
    );
    // Each field alone, so a misspelt or dropped key shows on its own.
    let full = full_callback_request();
    let alone = [
        CallbackRequest {
            code: full.code.clone(),
            ..Default::default()
        },
        CallbackRequest {
            state: full.state.clone(),
            ..Default::default()
        },
        CallbackRequest {
            iss: full.iss.clone(),
            ..Default::default()
        },
        CallbackRequest {
            error: full.error.clone(),
            ..Default::default()
        },
        CallbackRequest {
            error_description: full.error_description.clone(),
            ..Default::default()
        },
    ];
    for request in alone {
        writes!(CallbackRequest, request);
    }
}

#[wasm_bindgen_test]
fn no_body_writes_null_like_serde() {
    writes!((), ());
    assert_eq!(serde_json::to_string(&()).unwrap(), "null");
}

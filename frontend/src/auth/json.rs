//! The wire types to and from JSON, through the browser's own `JSON`.
//!
//! `serde_json` costs kilobytes of wasm (its parser, its error messages, the
//! derived visitors per type); the browser already parses and prints JSON, so
//! the SPA hands it the text and reads the fields of the result.
//! These conversions follow the serde derives of `keyway_shared`: unknown
//! fields are ignored, an `Option` field may be absent or `null`, any other
//! missing field or wrong type makes the whole value invalid.

use js_sys::{Array, JSON, Object, Reflect};
use keyway_shared::{
    CallbackRequest, CallbackResponse, ErrorBody, LoginRequest, LoginResponse, LogoutResponse,
    ProviderInfo, ProviderKind, User,
};
use wasm_bindgen::{JsCast, JsValue};

/// A type read from a value parsed by the browser's `JSON.parse`.
pub trait FromJson: Sized {
    /// The value of this type, or `None` when `json` does not have its shape.
    fn from_json(json: &JsValue) -> Option<Self>;

    /// Parses JSON text into a value of this type.
    fn from_json_str(text: &str) -> Option<Self> {
        JSON::parse(text)
            .ok()
            .and_then(|json| Self::from_json(&json))
    }
}

/// A type written as a value for the browser's `JSON.stringify`.
pub trait ToJson {
    /// The value as a JSON-compatible JavaScript value.
    fn to_json(&self) -> JsValue;
}

/// Field `key` of a JSON object; `undefined` when absent or not an object.
fn field(json: &JsValue, key: &str) -> JsValue {
    if json.is_object() {
        Reflect::get(json, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

/// A required string field.
fn string(json: &JsValue, key: &str) -> Option<String> {
    field(json, key).as_string()
}

/// An optional field: `Some(None)` when absent or `null`, `None` when present
/// with the wrong type, and `None` when `json` is not an object: a struct of
/// only optional fields is not read from `null`, `0` or `"x"` (nor from an
/// array, serde's sequence form, which these conversions do not support).
fn optional<T>(
    json: &JsValue,
    key: &str,
    read: impl Fn(&JsValue) -> Option<T>,
) -> Option<Option<T>> {
    if !json.is_object() || Array::is_array(json) {
        return None;
    }
    let value = field(json, key);
    if value.is_null() || value.is_undefined() {
        Some(None)
    } else {
        read(&value).map(Some)
    }
}

/// An optional string field.
fn optional_string(json: &JsValue, key: &str) -> Option<Option<String>> {
    optional(json, key, JsValue::as_string)
}

/// A whole, non-negative JSON number as a `u64` (`1.5`, `-1`, `"1"` are not).
fn unsigned(json: &JsValue) -> Option<u64> {
    json.as_f64()
        .filter(|n| *n >= 0.0 && n.trunc() == *n && *n < u64::MAX as f64)
        .map(|n| n as u64)
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(json: &JsValue) -> Option<Self> {
        json.dyn_ref::<Array>()?
            .iter()
            .map(|item| T::from_json(&item))
            .collect()
    }
}

/// Any JSON value, as parsed (e.g. the provider's userinfo).
impl FromJson for JsValue {
    fn from_json(json: &JsValue) -> Option<Self> {
        Some(json.clone())
    }
}

impl FromJson for ProviderKind {
    fn from_json(json: &JsValue) -> Option<Self> {
        match json.as_string()?.as_str() {
            "oidc" => Some(ProviderKind::Oidc),
            "oauth2" => Some(ProviderKind::Oauth2),
            _ => None,
        }
    }
}

impl FromJson for ProviderInfo {
    fn from_json(json: &JsValue) -> Option<Self> {
        Some(ProviderInfo {
            id: string(json, "id")?,
            name: string(json, "name")?,
            kind: ProviderKind::from_json(&field(json, "kind"))?,
            preset: optional_string(json, "preset")?,
        })
    }
}

impl FromJson for User {
    fn from_json(json: &JsValue) -> Option<Self> {
        Some(User {
            sub: string(json, "sub")?,
            provider: string(json, "provider")?,
            name: optional_string(json, "name")?,
            email: optional_string(json, "email")?,
            email_verified: optional(json, "email_verified", JsValue::as_bool)?,
            picture: optional_string(json, "picture")?,
            expires_at: unsigned(&field(json, "expires_at"))?,
        })
    }
}

impl FromJson for LoginResponse {
    fn from_json(json: &JsValue) -> Option<Self> {
        Some(LoginResponse {
            authorization_url: string(json, "authorization_url")?,
        })
    }
}

impl FromJson for CallbackResponse {
    fn from_json(json: &JsValue) -> Option<Self> {
        Some(CallbackResponse {
            user: User::from_json(&field(json, "user"))?,
            return_to: string(json, "return_to")?,
        })
    }
}

impl FromJson for LogoutResponse {
    fn from_json(json: &JsValue) -> Option<Self> {
        Some(LogoutResponse {
            end_session_url: optional_string(json, "end_session_url")?,
        })
    }
}

impl FromJson for ErrorBody {
    fn from_json(json: &JsValue) -> Option<Self> {
        Some(ErrorBody {
            error: string(json, "error")?,
            message: string(json, "message")?,
        })
    }
}

/// A JSON object of the present (`Some`) string fields, in the given order.
fn object(fields: &[(&str, &Option<String>)]) -> JsValue {
    let object = Object::new();
    for (key, value) in fields {
        if let Some(value) = value {
            let _ = Reflect::set(&object, &JsValue::from_str(key), &JsValue::from_str(value));
        }
    }
    object.into()
}

/// `null`: the body of a request without one.
impl ToJson for () {
    fn to_json(&self) -> JsValue {
        JsValue::NULL
    }
}

impl ToJson for LoginRequest {
    fn to_json(&self) -> JsValue {
        object(&[("provider", &self.provider), ("return_to", &self.return_to)])
    }
}

impl ToJson for CallbackRequest {
    fn to_json(&self) -> JsValue {
        object(&[
            ("code", &self.code),
            ("state", &self.state),
            ("iss", &self.iss),
            ("error", &self.error),
            ("error_description", &self.error_description),
        ])
    }
}

// Browser tests: `cargo test -p keyway-frontend --target wasm32-unknown-unknown`.
#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::*;
    use wasm_bindgen_test::*;

    wasm_bindgen_test_configure!(run_in_browser);

    fn text(value: &impl ToJson) -> String {
        JSON::stringify(&value.to_json()).unwrap().into()
    }

    #[wasm_bindgen_test]
    fn reads_a_user_like_serde() {
        let user = User::from_json_str(
            r#"{"sub":"s","provider":"p","email":"a@example.com","email_verified":true,
                "name":null,"expires_at":1700000000,"extra":[1]}"#,
        )
        .unwrap();
        assert_eq!(
            user,
            User {
                sub: "s".into(),
                provider: "p".into(),
                name: None,
                email: Some("a@example.com".into()),
                email_verified: Some(true),
                picture: None,
                expires_at: 1_700_000_000,
            }
        );
        // A missing required field, a wrong type, a fraction: not a user.
        assert_eq!(
            User::from_json_str(r#"{"provider":"p","expires_at":1}"#),
            None
        );
        assert_eq!(
            User::from_json_str(r#"{"sub":"s","provider":"p","expires_at":"1"}"#),
            None
        );
        assert_eq!(
            User::from_json_str(r#"{"sub":"s","provider":"p","expires_at":1.5}"#),
            None
        );
        assert_eq!(
            User::from_json_str(r#"{"sub":"s","provider":"p","name":7,"expires_at":1}"#),
            None
        );
        assert_eq!(User::from_json_str("<html>"), None);
    }

    #[wasm_bindgen_test]
    fn reads_providers_and_responses() {
        let list = Vec::<ProviderInfo>::from_json_str(
            r#"[{"id":"g","name":"G","kind":"oauth2","preset":"github"},{"id":"o","name":"O","kind":"oidc"}]"#,
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].kind, ProviderKind::Oauth2);
        assert_eq!(list[0].preset.as_deref(), Some("github"));
        assert_eq!(list[1].preset, None);
        assert_eq!(
            Vec::<ProviderInfo>::from_json_str(r#"[{"id":"g","name":"G","kind":"saml"}]"#),
            None
        );
        assert_eq!(Vec::<ProviderInfo>::from_json_str("{}"), None);
        let logout = LogoutResponse::from_json_str(r#"{"end_session_url":"https://idp/end"}"#);
        assert_eq!(
            logout.unwrap().end_session_url.as_deref(),
            Some("https://idp/end")
        );
        assert_eq!(
            LogoutResponse::from_json_str("{}").unwrap().end_session_url,
            None
        );
        let callback = CallbackResponse::from_json_str(
            r#"{"user":{"sub":"u","provider":"p","expires_at":2},"return_to":"/x"}"#,
        )
        .unwrap();
        assert_eq!(
            (callback.user.sub.as_str(), callback.return_to.as_str()),
            ("u", "/x")
        );
    }

    #[wasm_bindgen_test]
    fn writes_only_present_fields() {
        assert_eq!(text(&LoginRequest::default()), "{}");
        let login = LoginRequest {
            provider: Some("g\"h".into()),
            return_to: Some("/p".into()),
        };
        assert_eq!(text(&login), r#"{"provider":"g\"h","return_to":"/p"}"#);
        let callback = CallbackRequest {
            error: Some("access_denied".into()),
            state: Some("st".into()),
            ..CallbackRequest::default()
        };
        assert_eq!(text(&callback), r#"{"state":"st","error":"access_denied"}"#);
        assert_eq!(text(&()), "null");
    }
}

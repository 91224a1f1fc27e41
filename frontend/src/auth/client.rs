//! Typed HTTP client for the BFF's `/bff/*` endpoints.
//!
//! It calls the browser's `fetch` directly and reads and writes JSON with the
//! browser's `JSON` ([`FromJson`], [`ToJson`]): `gloo-net` and `serde_json`,
//! used before, cost about 23 KB gzip of wasm (see `docs/frontend.md`).

use std::fmt;
use std::sync::Arc;

use js_sys::JSON;
use keyway_shared::{
    CSRF_HEADER, CSRF_HEADER_VALUE, CallbackRequest, CallbackResponse, ErrorBody, LoginRequest,
    LoginResponse, LogoutResponse, ProviderInfo, User, codes,
};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response};

use super::json::{FromJson, ToJson};

/// Path prefix of the BFF's endpoints on the SPA's own origin.
pub const DEFAULT_BASE: &str = "/bff";

/// Why a call to the BFF failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The BFF answered an error status with the contract's error body.
    Api {
        /// HTTP status code.
        status: u16,
        /// The `{"error", "message"}` body.
        body: ErrorBody,
    },
    /// An error status without a contract error body (a proxy's page, ...).
    Status(u16),
    /// The request did not get an answer (offline, DNS, connection refused).
    Network(String),
    /// A success answer whose body is not the expected JSON.
    Decode(String),
}

impl AuthError {
    /// Maps an error answer (status and raw body text) to an [`AuthError`].
    ///
    /// A body of the contract's shape gives [`AuthError::Api`]; anything else
    /// gives [`AuthError::Status`].
    pub fn from_response_parts(status: u16, body: &str) -> Self {
        match ErrorBody::from_json_str(body) {
            Some(body) => AuthError::Api { status, body },
            None => AuthError::Status(status),
        }
    }

    /// The contract's error code (`invalid_state`, ...), when the BFF sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AuthError::Api { body, .. } => Some(&body.error),
            _ => None,
        }
    }

    /// Whether the user must sign in (again) to go on.
    pub fn needs_login(&self) -> bool {
        match self {
            AuthError::Api { body, .. } => body.needs_login(),
            AuthError::Status(status) => *status == 401,
            _ => false,
        }
    }

    /// A sentence for a person: what went wrong, in plain words.
    pub fn user_message(&self) -> String {
        match self {
            AuthError::Api { body, .. } => match body.error.as_str() {
                codes::ACCESS_DENIED => "You cancelled the sign-in.".to_owned(),
                codes::LOGIN_EXPIRED => {
                    "The sign-in took too long and expired. Please start again.".to_owned()
                }
                codes::INVALID_STATE => {
                    "This sign-in link is no longer valid (it was already used, or started in \
                     another browser). Please start again."
                        .to_owned()
                }
                _ if !body.message.trim().is_empty() => body.message.clone(),
                codes::UNAUTHENTICATED | codes::SESSION_EXPIRED => {
                    "Your session has ended. Please sign in again.".to_owned()
                }
                codes::PROVIDER_TIMEOUT => {
                    "The sign-in provider did not answer in time. Please try again.".to_owned()
                }
                codes::SESSION_STORE_UNAVAILABLE => {
                    "Keyway is temporarily unavailable. Please try again in a moment.".to_owned()
                }
                _ => "Something went wrong. Please try again.".to_owned(),
            },
            AuthError::Status(status) => {
                format!("The server answered with an error (HTTP {status}). Please try again.")
            }
            AuthError::Network(_) => {
                "Could not reach Keyway. Check your connection and try again.".to_owned()
            }
            AuthError::Decode(_) => {
                "The server sent an answer Keyway did not understand. Please try again.".to_owned()
            }
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Api { status, body } => {
                write!(f, "{} (HTTP {status}): {}", body.error, body.message)
            }
            AuthError::Status(status) => write!(f, "HTTP {status}"),
            AuthError::Network(e) => write!(f, "network error: {e}"),
            AuthError::Decode(e) => write!(f, "unexpected answer: {e}"),
        }
    }
}

impl std::error::Error for AuthError {}

/// A failed `fetch` (or a refused request): the JavaScript error's message.
fn network(e: JsValue) -> AuthError {
    AuthError::Network(
        e.dyn_ref::<js_sys::Error>()
            .map_or_else(|| "fetch failed".to_owned(), |e| e.message().into()),
    )
}

/// A success answer that is not the expected JSON.
fn unexpected() -> AuthError {
    AuthError::Decode("the body is not the expected JSON".to_owned())
}

/// Client of the BFF's auth endpoints.
///
/// Cheap to clone. Requests go to the SPA's own origin (`/bff/...` by
/// default), so the browser sends the session cookie by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthClient {
    base: Arc<str>,
}

impl Default for AuthClient {
    fn default() -> Self {
        Self::new(DEFAULT_BASE)
    }
}

impl AuthClient {
    /// A client for the BFF mounted at `base` (e.g. `/bff`; no trailing slash needed).
    pub fn new(base: impl AsRef<str>) -> Self {
        Self {
            base: base.as_ref().trim_end_matches('/').into(),
        }
    }

    /// The URL of an endpoint, e.g. `url("/user")` is `/bff/user`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Builds a `GET` request to an endpoint.
    pub fn get_request(&self, path: &str) -> Result<Request, AuthError> {
        self.request("GET", path, None)
    }

    /// Builds a `POST` request to an endpoint, with the `X-CSRF: 1` header the
    /// BFF requires on every state-changing request, and a JSON body if given.
    pub fn post_request<B: ToJson>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<Request, AuthError> {
        let body = body
            .map(|body| JSON::stringify(&body.to_json()))
            .transpose()
            .map_err(|_| AuthError::Decode("the body cannot be written as JSON".to_owned()))?;
        self.request("POST", path, body)
    }

    /// A request with `accept: application/json`; a `POST` also gets the
    /// CSRF header, and a body its `content-type`.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<js_sys::JsString>,
    ) -> Result<Request, AuthError> {
        let headers = Headers::new().map_err(network)?;
        headers.set("accept", "application/json").map_err(network)?;
        if method == "POST" {
            headers
                .set(CSRF_HEADER, CSRF_HEADER_VALUE)
                .map_err(network)?;
        }
        let init = RequestInit::new();
        init.set_method(method);
        if let Some(body) = body {
            headers
                .set("content-type", "application/json")
                .map_err(network)?;
            init.set_body(&body);
        }
        init.set_headers(&headers);
        Request::new_with_str_and_init(&self.url(path), &init).map_err(network)
    }

    /// Sends a request and decodes a success body as `T`, or the error body.
    pub async fn send<T: FromJson>(&self, request: Request) -> Result<T, AuthError> {
        typed(&fetch_json(&request).await?)
    }

    /// `GET /bff/providers`: the configured sign-in providers.
    pub async fn providers(&self) -> Result<Vec<ProviderInfo>, AuthError> {
        self.send(self.get_request("/providers")?).await
    }

    /// `POST /bff/login`: starts a login and answers the provider's
    /// authorization URL. `provider` defaults to the first configured one,
    /// `return_to` (a same-origin relative path) to `/`.
    pub async fn login(
        &self,
        provider: Option<&str>,
        return_to: Option<&str>,
    ) -> Result<LoginResponse, AuthError> {
        let body = LoginRequest {
            provider: provider.map(str::to_owned),
            return_to: return_to.map(str::to_owned),
        };
        self.send(self.post_request("/login", Some(&body))?).await
    }

    /// `POST /bff/callback`: finishes a login with the provider's redirect query.
    pub async fn callback(&self, request: &CallbackRequest) -> Result<CallbackResponse, AuthError> {
        self.send(self.post_request("/callback", Some(request))?)
            .await
    }

    /// `GET /bff/user`: the signed-in user, or `None` for an anonymous visitor (401).
    pub async fn user(&self) -> Result<Option<User>, AuthError> {
        match self.send(self.get_request("/user")?).await {
            Ok(user) => Ok(Some(user)),
            Err(e) if e.needs_login() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /bff/userinfo`: the provider's userinfo JSON for the session, as
    /// parsed by the browser.
    pub async fn userinfo(&self) -> Result<JsValue, AuthError> {
        self.send(self.get_request("/userinfo")?).await
    }

    /// `GET /bff/userinfo`, pretty-printed (two-space indent) by the browser's
    /// `JSON`: for showing it.
    pub async fn userinfo_pretty(&self) -> Result<String, AuthError> {
        pretty_json(&self.userinfo().await?)
    }

    /// `POST /bff/logout`: ends the session; answers the provider's
    /// end-session URL when it has one.
    pub async fn logout(&self) -> Result<LogoutResponse, AuthError> {
        self.send(self.post_request::<()>("/logout", None)?).await
    }
}

/// Prints a JSON value with a two-space indent, with the browser's `JSON.stringify`.
pub(crate) fn pretty_json(value: &JsValue) -> Result<String, AuthError> {
    JSON::stringify_with_replacer_and_space(value, &JsValue::NULL, &JsValue::from_f64(2.0))
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(unexpected)
}

/// Sends a request; answers its decoded body (see [`decode`]).
///
/// Not generic, unlike [`AuthClient::send`]: one copy of this state machine
/// serves every endpoint.
async fn fetch_json(request: &Request) -> Result<JsValue, AuthError> {
    let window = web_sys::window().ok_or_else(|| AuthError::Network("no window".to_owned()))?;
    let response = JsFuture::from(window.fetch_with_request(request))
        .await
        .map_err(network)?;
    decode(response.unchecked_into()).await
}

/// Decodes an answer: a 2xx body as parsed JSON, anything else as an [`AuthError`].
pub(crate) async fn decode(response: Response) -> Result<JsValue, AuthError> {
    let status = response.status();
    let text = JsFuture::from(response.text().map_err(network)?)
        .await
        .map_err(network)?
        .as_string()
        .unwrap_or_default();
    decode_parts(status, &text)
}

/// The pure part of [`decode`].
pub(crate) fn decode_parts(status: u16, text: &str) -> Result<JsValue, AuthError> {
    if (200..300).contains(&status) {
        JSON::parse(text).map_err(|_| unexpected())
    } else {
        Err(AuthError::from_response_parts(status, text))
    }
}

/// Reads a decoded body as `T`.
fn typed<T: FromJson>(json: &JsValue) -> Result<T, AuthError> {
    T::from_json(json).ok_or_else(unexpected)
}

// Browser tests: `cargo test -p keyway-frontend --target wasm32-unknown-unknown`.
#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::*;
    use wasm_bindgen_test::*;

    wasm_bindgen_test_configure!(run_in_browser);

    fn decode_parts<T: FromJson>(status: u16, text: &str) -> Result<T, AuthError> {
        super::decode_parts(status, text).and_then(|json| typed(&json))
    }

    #[wasm_bindgen_test]
    fn decodes_success_and_error_bodies() {
        let ok: LogoutResponse = decode_parts(200, r#"{"end_session_url":null}"#).unwrap();
        assert_eq!(ok.end_session_url, None);
        let err = decode_parts::<LogoutResponse>(
            403,
            r#"{"error":"csrf_header_missing","message":"no"}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), Some(codes::CSRF_HEADER_MISSING));
        assert!(matches!(
            decode_parts::<LogoutResponse>(200, "<html>"),
            Err(AuthError::Decode(_))
        ));
    }

    #[wasm_bindgen_test]
    fn pretty_prints_json() {
        let value: JsValue = decode_parts(200, r#"{"a":[1,"x"]}"#).unwrap();
        assert_eq!(
            pretty_json(&value).unwrap(),
            "{\n  \"a\": [\n    1,\n    \"x\"\n  ]\n}"
        );
        assert!(matches!(
            decode_parts::<JsValue>(200, "nope"),
            Err(AuthError::Decode(_))
        ));
    }

    #[wasm_bindgen_test]
    async fn decode_reads_a_real_response() {
        let init = web_sys::ResponseInit::new();
        init.set_status(400);
        let response = Response::new_with_opt_str_and_init(
            Some(r#"{"error":"invalid_state","message":"Unknown state."}"#),
            &init,
        )
        .unwrap();
        let err = decode(response).await.unwrap_err();
        assert_eq!(err.code(), Some(codes::INVALID_STATE));
    }
}

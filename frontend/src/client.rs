//! [`AuthClient`]: typed calls to the BFF's `/bff/*` endpoints, over
//! `gloo-net`, with bodies read and written by serde (the derives of
//! `keyway-shared`, the one definition of the contract).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use gloo_net::http::{Method, Request, RequestBuilder};
use keyway_shared::{
    CSRF_HEADER, CSRF_HEADER_VALUE, CallbackRequest, CallbackResponse, LoginResponse,
    LogoutResponse, ProviderInfo, SessionInfo, SessionsEnded, User,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::Api;
use crate::error::AuthError;
use crate::options::LoginOptions;

/// Path prefix of the BFF's endpoints on the SPA's own origin.
pub const DEFAULT_BASE: &str = "/bff";

/// The answer of a request: the body text of a 2xx, else the error.
pub(crate) type TextFuture = Pin<Box<dyn Future<Output = Result<String, AuthError>>>>;

/// Client of the BFF's endpoints.
///
/// Cheap to clone. Requests go to the SPA's own origin (`/bff/...` by
/// default), so the browser sends the session cookie by itself; nothing here
/// ever sees a token.
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

    /// A request to an endpoint, asking for JSON. Every method but `GET` and
    /// `HEAD` carries the `X-CSRF: 1` header the BFF requires on
    /// state-changing requests.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let csrf = method != Method::GET && method != Method::HEAD;
        builder(&self.url(path), method, csrf)
    }

    /// Sends a request and reads a success body as `T` (an empty body as
    /// `null`), or the error answer as an [`AuthError`].
    pub async fn send<T: DeserializeOwned>(
        &self,
        request: Result<Request, gloo_net::Error>,
    ) -> Result<T, AuthError> {
        read_json(&exchange(request?).await?)
    }

    /// A client for the API `name` behind the BFF (`/bff/api/{name}/…`).
    ///
    /// Without the auth context: a `401` only comes back as an error. Inside
    /// components, [`use_api`](crate::use_api) also signs the user out.
    pub fn api(&self, name: &str) -> Api {
        Api::new(self, name, None)
    }

    /// `GET /bff/providers`: the configured sign-in providers.
    pub async fn providers(&self) -> Result<Vec<ProviderInfo>, AuthError> {
        read_json(&self.get("/providers").await?)
    }

    /// `POST /bff/login`: starts a login and answers the provider's
    /// authorization URL. `provider` defaults to the first configured one,
    /// `return_to` (a same-origin relative path) to `/`.
    pub async fn login(
        &self,
        provider: Option<&str>,
        return_to: Option<&str>,
    ) -> Result<LoginResponse, AuthError> {
        self.login_with(&LoginOptions {
            provider: provider.map(str::to_owned),
            return_to: return_to.map(str::to_owned),
            ..LoginOptions::default()
        })
        .await
    }

    /// `POST /bff/login` with every option (`prompt`, `max_age`,
    /// `acr_values`, `login_hint`): answers the authorization URL.
    pub async fn login_with(&self, options: &LoginOptions) -> Result<LoginResponse, AuthError> {
        let body = to_json(&options.request())?;
        read_json(&self.post("/login", Some(body)).await?)
    }

    /// `GET /bff/sessions`: the signed-in user's sessions (on every device).
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, AuthError> {
        read_json(&self.get("/sessions").await?)
    }

    /// `DELETE /bff/sessions/{handle}`: ends one of the user's sessions.
    pub async fn end_session(&self, handle: &str) -> Result<SessionsEnded, AuthError> {
        let path = format!("/sessions/{}", js_sys::encode_uri_component(handle));
        read_json(&fetch_text(self.url(&path), Method::DELETE, true, None).await?)
    }

    /// `POST /bff/sessions/end-others`: ends every other session of the user.
    pub async fn end_other_sessions(&self) -> Result<SessionsEnded, AuthError> {
        read_json(&self.post("/sessions/end-others", None).await?)
    }

    /// `POST /bff/callback/{provider}` (or `POST /bff/callback` without a
    /// provider: the single-provider redirect URI `/callback`): finishes a
    /// login with the provider's redirect query.
    pub async fn callback(
        &self,
        provider: Option<&str>,
        request: &CallbackRequest,
    ) -> Result<CallbackResponse, AuthError> {
        let path = match provider {
            Some(p) => format!("/callback/{}", js_sys::encode_uri_component(p)),
            None => "/callback".to_owned(),
        };
        read_json(&self.post(&path, Some(to_json(request)?)).await?)
    }

    /// `GET /bff/user`: the signed-in user, or `None` when the BFF says there
    /// is no session (`401 unauthenticated` / `session_expired`).
    pub async fn user(&self) -> Result<Option<User>, AuthError> {
        match self.get("/user").await {
            Ok(text) => read_json(&text).map(Some),
            Err(e) if e.needs_login() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /bff/userinfo`: the provider's userinfo for the session, read as
    /// `T` (e.g. `serde_json::Value`, or a struct of the claims you use).
    pub async fn userinfo<T: DeserializeOwned>(&self) -> Result<T, AuthError> {
        read_json(&self.get("/userinfo").await?)
    }

    /// `POST /bff/logout`: ends the session; answers the provider's
    /// end-session URL when it has one.
    pub async fn logout(&self) -> Result<LogoutResponse, AuthError> {
        read_json(&self.post("/logout", None).await?)
    }

    fn get(&self, path: &str) -> TextFuture {
        fetch_text(self.url(path), Method::GET, false, None)
    }

    fn post(&self, path: &str, body: Option<String>) -> TextFuture {
        fetch_text(self.url(path), Method::POST, true, body)
    }
}

/// A request builder asking for JSON, with `X-CSRF: 1` when `csrf`.
pub(crate) fn builder(url: &str, method: Method, csrf: bool) -> RequestBuilder {
    let builder = RequestBuilder::new(url)
        .method(method)
        .header("accept", "application/json");
    if csrf {
        builder.header(CSRF_HEADER, CSRF_HEADER_VALUE)
    } else {
        builder
    }
}

/// Sends a request with an optional JSON body; answers the body text of a
/// 2xx, else the error.
///
/// Boxed and not generic: every call of the layer shares this one piece of
/// code (and its state machine) instead of a copy inlined per call site.
#[inline(never)]
pub(crate) fn fetch_text(
    url: String,
    method: Method,
    csrf: bool,
    body: Option<String>,
) -> TextFuture {
    Box::pin(async move {
        let builder = builder(&url, method, csrf);
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(body),
            None => builder.build(),
        };
        exchange(request?).await
    })
}

/// Sends a request; answers the body text of a 2xx answer, else the error.
pub(crate) async fn exchange(request: Request) -> Result<String, AuthError> {
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    if (200..300).contains(&status) {
        Ok(text)
    } else {
        Err(AuthError::from_response_parts(status, &text))
    }
}

/// A request body as JSON text.
pub(crate) fn to_json<B: Serialize + ?Sized>(body: &B) -> Result<String, AuthError> {
    serde_json::to_string(body).map_err(|e| AuthError::Decode(e.to_string()))
}

/// Reads a success body as `T`; an empty body reads as `null` (so `()` and
/// `Option<_>` fit a `204`).
pub(crate) fn read_json<T: DeserializeOwned>(text: &str) -> Result<T, AuthError> {
    let text = if text.trim().is_empty() { "null" } else { text };
    serde_json::from_str(text).map_err(|e| AuthError::Decode(e.to_string()))
}

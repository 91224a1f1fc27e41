//! [`Api`] and [`use_api`]: calls to the APIs the BFF proxies
//! (`/bff/api/{name}/…`), which add the user's token on the server side.

use std::sync::Arc;

use gloo_net::http::{Method, Request, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::{AuthClient, builder, exchange, fetch_text, read_json, to_json};
use crate::context::{Auth, use_auth};
use crate::error::AuthError;

/// Calls to one API behind the BFF: `/bff/api/{name}/{path}`.
///
/// Every request carries `X-CSRF: 1` (the BFF refuses `/bff/api/` requests
/// without it, whatever the method) and asks for JSON; a success body is read
/// into the caller's serde type. Made by [`use_api`] (which also turns a
/// `401` into the signed-out state) or [`AuthClient::api`].
///
/// ```no_run
/// # use keyway_leptos::use_api;
/// # #[derive(serde::Deserialize)] struct Order { id: u32 }
/// # async fn f() -> Result<(), keyway_leptos::AuthError> {
/// let orders = use_api("orders");
/// let list: Vec<Order> = orders.get("/orders?status=open").await?;
/// let created: Order = orders.post("/orders", &serde_json::json!({"item": 7})).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Api {
    base: Arc<str>,
    auth: Option<Auth>,
}

impl Api {
    pub(crate) fn new(client: &AuthClient, name: &str, auth: Option<Auth>) -> Self {
        let name = String::from(js_sys::encode_uri_component(name));
        Self {
            base: client.url(&format!("/api/{name}")).into(),
            auth,
        }
    }

    /// The URL of `path` on this API: `url("/items?x=1")` (or `"items?x=1"`)
    /// is `/bff/api/{name}/items?x=1`.
    pub fn url(&self, path: &str) -> String {
        if path.is_empty() || path.starts_with('/') || path.starts_with('?') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/{path}", self.base)
        }
    }

    /// A request to `path` with `X-CSRF: 1` and `accept: application/json`,
    /// for anything the helpers below do not cover (other headers, a
    /// non-JSON body, ...); send it with [`Api::send`].
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        builder(&self.url(path), method, true)
    }

    /// Sends a request made by [`Api::request`]; reads a success body as `T`
    /// (an empty one as `null`). A `401` of the BFF (the session is gone)
    /// signs the user out when this `Api` came from [`use_api`]; any other
    /// `401` makes it check the session again.
    pub async fn send<T: DeserializeOwned>(
        &self,
        request: Result<Request, gloo_net::Error>,
    ) -> Result<T, AuthError> {
        let answer = exchange(request?).await;
        read_json(&self.seen(answer)?)
    }

    /// `GET path`, the answer read as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, AuthError> {
        read_json(&self.call(Method::GET, path, None).await?)
    }

    /// `DELETE path`, the answer read as `T` (`()` for an empty one).
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, AuthError> {
        read_json(&self.call(Method::DELETE, path, None).await?)
    }

    /// `POST path` with `body` as JSON, the answer read as `T`.
    pub async fn post<B, T>(&self, path: &str, body: &B) -> Result<T, AuthError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        read_json(&self.call(Method::POST, path, Some(to_json(body)?)).await?)
    }

    /// `PUT path` with `body` as JSON, the answer read as `T`.
    pub async fn put<B, T>(&self, path: &str, body: &B) -> Result<T, AuthError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        read_json(&self.call(Method::PUT, path, Some(to_json(body)?)).await?)
    }

    /// `PATCH path` with `body` as JSON, the answer read as `T`.
    pub async fn patch<B, T>(&self, path: &str, body: &B) -> Result<T, AuthError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        read_json(&self.call(Method::PATCH, path, Some(to_json(body)?)).await?)
    }

    /// One request of the helpers above: the answer's text, the error seen.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<String, AuthError> {
        let answer = fetch_text(self.url(path), method, true, body).await;
        self.seen(answer)
    }

    /// Lets the auth context learn from an error answer.
    fn seen(&self, answer: Result<String, AuthError>) -> Result<String, AuthError> {
        if let (Err(e), Some(auth)) = (&answer, self.auth) {
            auth.observe(e);
        }
        answer
    }
}

/// Calls to the API `name` behind the BFF, tied to the auth context: when
/// the BFF answers that the session is gone, the context turns to the
/// signed-out state at once (no reload), so guards and menus follow.
///
/// # Panics
///
/// Without [`provide_auth`](crate::provide_auth) above the caller.
pub fn use_api(name: &str) -> Api {
    let auth = use_auth();
    Api::new(&auth.client(), name, Some(auth))
}

//! Reusable auth layer for Leptos CSR apps in front of the Keyway BFF.
//!
//! * [`AuthClient`]: typed calls to the `/bff/*` endpoints over the browser's
//!   `fetch`, adding `X-CSRF: 1` to every POST and mapping error bodies to
//!   [`AuthError`]; bodies are read and written with the browser's `JSON`
//!   ([`FromJson`], [`ToJson`]).
//! * [`provide_auth`] / [`use_auth`]: a context holding the current user as a
//!   reactive resource ([`Loader`]) of `GET /bff/user`, refetchable after
//!   login/logout.
//! * Components: [`LoginButton`], [`LogoutButton`], [`CallbackPage`],
//!   [`RequireAuth`].
//!
//! Call [`provide_auth`] once near the root and route the OAuth redirect URI
//! (`/callback`) to [`CallbackPage`]. The layer does not depend on a router:
//! it navigates with the History API and a `popstate` event ([`navigate`]),
//! which `leptos_router` and the demo's small router both follow.

mod client;
mod components;
mod context;
mod json;
mod loader;
mod nav;
mod query;

pub use client::{AuthClient, AuthError, DEFAULT_BASE};
pub use components::{CallbackPage, LoginButton, LogoutButton, RequireAuth, sign_in};
pub(crate) use components::{error_box, no_providers, provider_buttons, retry_button, status_line};
pub use context::{Auth, AuthState, provide_auth, provide_auth_with, use_auth};
pub use json::{FromJson, ToJson};
pub use loader::Loader;
pub use nav::navigate;
pub use query::{parse_callback_query, safe_return_to, take_callback_query};

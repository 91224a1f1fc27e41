//! # keyway-leptos
//!
//! "Log in with OAuth 2.0 / OpenID Connect" for Leptos 0.8 client-side apps
//! in front of a Keyway backend-for-frontend (BFF). The BFF runs the login
//! and keeps every token; the browser holds only its HttpOnly session
//! cookie, and nothing in this crate ever sees a token.
//!
//! * [`provide_auth`] / [`use_auth`]: the session as signals (user, loading,
//!   error, redirecting, session ended elsewhere) and the actions that change
//!   it. A session that ends on the server (logout in another tab,
//!   back-channel logout, expiry) shows as signed out on the next call or
//!   when the tab comes back to the front, without a reload.
//! * Headless components, styled by the caller: [`LoginButton`],
//!   [`LogoutButton`], [`CallbackPage`] (the redirect URI's route component,
//!   `/callback/:provider?`), [`RequireAuth`] (the guard of a
//!   protected route, which sends an anonymous visitor to sign in and back
//!   to the same route with its query).
//! * [`use_api`]: calls to the APIs the BFF proxies (`/bff/api/{name}/…`),
//!   JSON read into your serde types; a `401` signs the user out, a `401
//!   step_up_required` shows as [`Auth::step_up_required`].
//! * Login journeys: [`Auth::sign_in_with`] and [`LoginOptions`] (`prompt`,
//!   `max_age`, `acr_values`, `login_hint`), silent sign-in on first load
//!   ([`AuthSetup::silent`]), step-up ([`Auth::step_up`]), the user's
//!   sessions ([`AuthClient::sessions`]).
//! * [`AuthClient`]: the typed client of `/bff/*` underneath, over
//!   `gloo-net`, with the serde derives of `keyway-shared` (the one
//!   definition of the contract, shared with the BFF).
//!
//! With `leptos_router` (the default `router` feature) the components
//! navigate through the router when they sit inside its `<Router>`; without
//! one they use the History API plus a `popstate` event.
//!
//! ```ignore
//! use keyway_leptos::{AuthError, CallbackPage, LoginButton, LogoutButton, RequireAuth, provide_auth, use_auth};
//! use leptos::prelude::*;
//! use leptos_router::{components::*, path};
//!
//! #[component]
//! fn App() -> impl IntoView {
//!     provide_auth();
//!     view! {
//!         <Router>
//!             <UserMenu/>
//!             <Routes fallback=|| "Not found">
//!                 <Route path=path!("/") view=|| view! { <LoginButton>"Sign in"</LoginButton> }/>
//!                 <Route path=path!("/orders") view=|| view! {
//!                     <RequireAuth fallback=|| "Signing you in…"><Orders/></RequireAuth>
//!                 }/>
//!                 // The redirect URI: /callback/{provider}, or /callback for one provider.
//!                 <Route path=path!("/callback/:provider?") view=Callback/>
//!             </Routes>
//!         </Router>
//!     }
//! }
//!
//! #[component]
//! fn Callback() -> impl IntoView {
//!     view! { <CallbackPage error=|e: AuthError| view! { <p role="alert">{e.user_message()}</p> }/> }
//! }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
mod auto_login;
mod client;
mod components;
mod context;
mod error;
mod loader;
mod nav;
mod options;
mod query;
mod silent;
mod watch;

pub use api::{Api, use_api};
pub use client::{AuthClient, DEFAULT_BASE};
pub use components::{CallbackPage, LoginButton, LogoutButton, RequireAuth};
pub use context::{
    Auth, AuthSetup, AuthState, provide_auth, provide_auth_setup, provide_auth_with, use_auth,
};
pub use error::AuthError;
pub use gloo_net::http::Method;
pub use keyway_shared::{Prompt, ProviderInfo, ProviderKind, SessionInfo, User};
pub use loader::Loader;
pub use nav::{Navigator, navigate};
pub use options::LoginOptions;
pub use query::{
    callback_provider_from_path, current_path, parse_callback_query, safe_return_to,
    take_callback_query,
};

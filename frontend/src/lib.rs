//! Keyway's single-page app.
//!
//! * [`auth`]: a reusable "Log in with OAuth2/OIDC" layer for Leptos apps that
//!   talk to the Keyway backend-for-frontend (BFF). The browser only ever holds
//!   the BFF's HttpOnly session cookie; this layer never sees a token.
//! * [`demo`]: the demo app built on it (home, profile, callback pages).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod demo;

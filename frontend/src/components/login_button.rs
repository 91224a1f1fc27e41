//! [`LoginButton`]: starts a sign-in with a provider.

use leptos::prelude::*;

use super::button::action_button;
use crate::context::use_auth;

/// A `<button>` that starts the sign-in: `POST /bff/login`, then the window
/// goes to the provider.
///
/// While that runs the button has `aria-busy="true"` and
/// `aria-disabled="true"` (it keeps focus; further clicks are ignored); the
/// context's [`redirecting`](crate::Auth::redirecting) turns `true`. A
/// failure goes to the context's [`error`](crate::Auth::error) and frees
/// the button, as does coming back from the provider with the Back button.
/// Must be used below [`provide_auth`](crate::provide_auth).
///
/// ```ignore
/// <LoginButton provider="github" return_to="/orders" attr:class="btn">"Sign in with GitHub"</LoginButton>
/// ```
#[component]
pub fn LoginButton(
    /// Provider id; the BFF's first provider when absent.
    #[prop(optional, into)]
    provider: Option<String>,
    /// Same-origin path (with its query) to come back to after signing in;
    /// `/` when absent.
    #[prop(optional, into)]
    return_to: Option<String>,
    /// The label: the button's accessible name.
    children: Children,
) -> impl IntoView {
    let auth = use_auth();
    let me = auth.next_number();
    let busy = Signal::derive(move || auth.signing_in_by() == me);
    let start = move || auth.spawn_sign_in(me, provider.as_deref(), return_to.as_deref(), || ());
    action_button(children, busy, Box::new(start))
}

//! [`LoginButton`]: starts a sign-in with a provider.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::context::use_auth;

/// A `<button>` that starts the sign-in: `POST /bff/login`, then the window
/// goes to the provider.
///
/// While that runs the button has `aria-busy="true"` and
/// `aria-disabled="true"` (it keeps focus; further clicks are ignored); the
/// context's [`redirecting`](crate::Auth::redirecting) turns `true`. A
/// failure goes to the context's [`error`](crate::Auth::error) and frees
/// the button. Must be used below [`provide_auth`](crate::provide_auth).
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
    let busy = RwSignal::new(false);
    let redirecting = auth.redirecting();
    // The sign-in failed, or the page came back from the provider (Back
    // button, back/forward cache): free the button.
    Effect::new(move |_| {
        if !redirecting.get() {
            busy.set(false);
        }
    });
    let on_click = move |_| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let sign_in = auth.sign_in(provider.as_deref(), return_to.as_deref());
        spawn_local(async move {
            if sign_in.await.is_err() {
                busy.set(false);
            }
        });
    };
    let state = move || busy.get().to_string();
    view! {
        <button type="button" aria-busy=state aria-disabled=state on:click=on_click>
            {children()}
        </button>
    }
}

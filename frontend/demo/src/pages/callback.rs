//! `/callback`, `/callback/:provider`: where the provider sends the user back.

use keyway_leptos::{AuthError, CallbackPage};
use leptos::html;
use leptos::prelude::*;

use crate::a11y::focus_when_mounted;
use crate::views::status_line;

/// The redirect URI's page: progress while the BFF finishes the sign-in,
/// then the jump to where the user was going; or the error, in words.
#[component]
pub fn Callback() -> impl IntoView {
    view! {
        <section class="card">
            <CallbackPage
                fallback=|| {
                    view! {
                        <h1 tabindex="-1">"Signing you in"</h1>
                        {status_line("Signing you in…")}
                    }
                }
                error=|e: AuthError| view! { <CallbackError error=e /> }
            />
        </section>
    }
}

/// Why the sign-in did not complete, with a way to start again; takes the
/// focus, since it replaces the page's content.
#[component]
fn CallbackError(error: AuthError) -> impl IntoView {
    let heading = NodeRef::<html::H1>::new();
    focus_when_mounted(heading);
    view! {
        <div id="callback-error" class="error-box" role="alert">
            <h1 tabindex="-1" node_ref=heading>
                "Sign-in did not complete"
            </h1>
            <p>{error.user_message()}</p>
            <a class="button" href="/">
                "Try again"
            </a>
        </div>
    }
}

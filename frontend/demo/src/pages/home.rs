//! `/`: what Keyway is, and the sign-in buttons or the signed-in user.

use keyway_leptos::{AuthState, use_auth};
use leptos::prelude::*;

use crate::format::display_name;
use crate::settings::SilentSetting;
use crate::views::{ProviderButtons, error_box, retry_button, status_line};

/// `/`.
#[component]
pub fn Home() -> impl IntoView {
    let auth = use_auth();
    let (state, ended) = (auth.state(), auth.session_ended());
    view! {
        <section class="card">
            <h1 tabindex="-1">"Sign in, safely"</h1>
            <p class="lead">
                "Keyway is a backend-for-frontend for OAuth 2.0 and OpenID Connect. "
                "It runs the authorization code flow with PKCE on the server and keeps every "
                "token there; your browser only ever holds an HttpOnly session cookie."
            </p>
            {move || match state.get() {
                AuthState::Loading => status_line("Checking your session…"),
                AuthState::SignedIn(user) => {
                    view! {
                        <p class="signed-in">"Signed in as " <strong>{display_name(&user)}</strong></p>
                        <p class="links">
                            <a class="button" href="/profile">
                                "View your profile"
                            </a>
                            <a class="button secondary" href="/profile/api">
                                "Call an API"
                            </a>
                        </p>
                    }
                        .into_any()
                }
                AuthState::Anonymous => {
                    view! {
                        {move || {
                            ended
                                .get()
                                .then(|| {
                                    view! {
                                        <p id="signed-out" class="notice">
                                            "Your session has ended. Sign in again to go on."
                                        </p>
                                    }
                                })
                        }}
                        <ProviderButtons return_to="/" />
                    }
                        .into_any()
                }
                AuthState::Failed(e) => {
                    error_box("error", e.user_message(), retry_button(move || auth.refetch()))
                }
            }}
            <SilentSetting />
        </section>
    }
}

//! The demo app: the router, the header with the user menu, the footer.

use keyway_leptos::{AuthSetup, AuthState, LogoutButton, provide_auth_setup, use_auth};
use leptos::prelude::*;
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::path;

use crate::a11y::{Announcer, FocusOnNavigate};
use crate::format::display_name;
use crate::pages::{Account, ApiCall, Callback, Home, NotFound, Profile};

/// The whole demo: `/`, the protected `/profile` branch (`/profile`,
/// `/profile/api`), and the redirect URIs `/callback` and
/// `/callback/:provider`. Silent sign-in on first load when the visitor
/// turned it on (the setting on `/`).
#[component]
pub fn App() -> impl IntoView {
    provide_auth_setup(AuthSetup {
        silent: crate::settings::silent_sign_in(),
        ..AuthSetup::default()
    });
    view! {
        <Router>
            <Header />
            <main id="main" class="container">
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=Home />
                    <ParentRoute path=path!("/profile") view=Account>
                        <Route path=path!("") view=Profile />
                        <Route path=path!("api") view=ApiCall />
                    </ParentRoute>
                    // The redirect URIs: `/callback/{provider}`, or `/callback`
                    // for a single provider.
                    <Route path=path!("/callback/:provider?") view=Callback />
                </Routes>
            </main>
            <footer class="container footer">
                <p>
                    "Keyway keeps your tokens on the server; this page only holds a session cookie."
                </p>
            </footer>
            <Announcer />
            <FocusOnNavigate />
        </Router>
    }
}

/// The top bar: the product's name, and the user menu (the user's name,
/// linking to the profile, and a sign-out button).
#[component]
fn Header() -> impl IntoView {
    let state = use_auth().state();
    view! {
        <header class="topbar">
            <div class="container topbar-inner">
                <a class="brand" href="/">
                    "Keyway"
                </a>
                <nav class="session" aria-label="Account">
                    {move || match state.get() {
                        AuthState::SignedIn(user) => {
                            view! {
                                <a class="who" href="/profile" id="header-user">
                                    {display_name(&user)}
                                </a>
                                <LogoutButton attr:class="button secondary" attr:id="header-logout">
                                    "Sign out"
                                </LogoutButton>
                            }
                                .into_any()
                        }
                        AuthState::Anonymous => {
                            view! {
                                <span class="who muted" id="header-anonymous">
                                    "Not signed in"
                                </span>
                            }
                                .into_any()
                        }
                        _ => ().into_any(),
                    }}
                </nav>
            </div>
        </header>
    }
}

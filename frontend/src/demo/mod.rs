//! The demo app: a home page with the sign-in buttons, a protected profile
//! page, and the OAuth callback route, built on [`crate::auth`].

mod pages;
mod router;

use leptos::prelude::*;

use crate::auth::{AuthState, LogoutButton, provide_auth, use_auth};
use pages::{Callback, Home, NotFound, Profile};
use router::Page;

/// The whole demo app: header, routes `/`, `/profile`, `/callback`.
#[component]
pub fn App() -> impl IntoView {
    provide_auth();
    let page = router::start();
    view! {
        <Header />
        <main class="container">
            {move || match page.get() {
                Page::Home => view! { <Home /> }.into_any(),
                Page::Profile => view! { <Profile /> }.into_any(),
                Page::Callback => view! { <Callback /> }.into_any(),
                Page::NotFound => view! { <NotFound /> }.into_any(),
            }}
        </main>
        <footer class="container footer">
            <p>"Keyway keeps your tokens on the server; this page only holds a session cookie."</p>
        </footer>
    }
}

/// The top bar: product name, and the current user with a sign-out button.
#[component]
fn Header() -> impl IntoView {
    let auth = use_auth();
    view! {
        <header class="topbar">
            <div class="container topbar-inner">
                <a class="brand" href="/">
                    "Keyway"
                </a>
                <nav class="session" aria-label="Session">
                    {move || match auth.state() {
                        AuthState::SignedIn(user) => {
                            let name = pages::display_name(&user);
                            view! {
                                <a class="who" href="/profile" id="header-user">
                                    {name}
                                </a>
                                <LogoutButton />
                            }
                                .into_any()
                        }
                        AuthState::Anonymous => {
                            view! { <span class="who muted">"Not signed in"</span> }.into_any()
                        }
                        _ => ().into_any(),
                    }}
                </nav>
            </div>
        </header>
    }
}

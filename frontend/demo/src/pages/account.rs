//! `/profile/*`: the protected branch; its layout holds the guard.

use keyway_leptos::RequireAuth;
use leptos::prelude::*;
use leptos_router::components::{A, Outlet};
use leptos_router::hooks::use_location;

use crate::views::GuardFallback;

/// The layout of the protected pages: their heading, the guard, and inside
/// it the tabs and the matched child route.
#[component]
pub fn Account() -> impl IntoView {
    let pathname = use_location().pathname;
    let title = move || {
        if pathname.get().trim_end_matches('/').ends_with("/api") {
            "Call an API"
        } else {
            "Your profile"
        }
    };
    view! {
        <section class="card">
            <h1 tabindex="-1">{title}</h1>
            <RequireAuth fallback=GuardFallback>
                <nav class="tabs" aria-label="Account pages">
                    <A href="/profile" exact=true>
                        "Profile"
                    </A>
                    <A href="/profile/api">"Call an API"</A>
                </nav>
                <Outlet />
            </RequireAuth>
        </section>
    }
}

//! Any other path.

use leptos::prelude::*;

/// The page for a path the app does not have.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <section class="card">
            <h1 tabindex="-1">"Page not found"</h1>
            <p>"There is nothing at this address."</p>
            <p>
                <a class="button" href="/">
                    "Go to the home page"
                </a>
            </p>
        </section>
    }
}

//! The example of docs/frontend.md ("Add Keyway to a leptos_router app"),
//! compiled by `cargo clippy --all-targets --target wasm32-unknown-unknown`.
//! Keep the two the same (tests/tests/docs.rs checks it).

// docs:start
use keyway_leptos::*;
use leptos::prelude::*;
use leptos_router::{components::*, path};

#[derive(Clone, serde::Deserialize)]
struct Order {
    item: String,
}

#[component]
fn App() -> impl IntoView {
    let user = provide_auth().user(); // The session, as signals.
    view! {
        <Router>
            <nav>{move || user.get().map(|u| view! { {u.name} <LogoutButton>"Sign out"</LogoutButton> })}</nav>
            <Routes fallback=|| "Not found">
                <Route path=path!("/") view=|| view! { <LoginButton>"Sign in"</LoginButton> } />
                // Guarded: an anonymous visitor signs in and comes back, query and all.
                <Route path=path!("/orders") view=|| view! { <RequireAuth><Orders /></RequireAuth> } />
                // The redirect URI: /callback/{provider}, or /callback with one provider.
                <Route path=path!("/callback/:provider?") view=|| view! {
                    <CallbackPage error=|e: AuthError| view! { <p role="alert">{e.user_message()}</p> } />
                } />
            </Routes>
        </Router>
    }
}

#[component]
fn Orders() -> impl IntoView {
    let api = use_api("orders"); // /bff/api/orders/…: X-CSRF, JSON; a 401 signs out.
    let orders = LocalResource::new(move || {
        let api = api.clone();
        async move { api.get::<Vec<Order>>("/").await.unwrap_or_default() }
    });
    view! { {move || orders.get().map(|list| list.into_iter().map(|o| o.item).collect_view())} }
}
// docs:end

fn main() {
    leptos::mount::mount_to_body(App);
}

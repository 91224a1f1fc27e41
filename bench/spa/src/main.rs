//! The size benchmark's SPA (BENCHMARKS.md, "What Keyway adds to an app").
//!
//! A small app as a Rust developer would have before adding Keyway:
//! `leptos_router` with two routes, `gloo-net` and serde reading a list of
//! items as JSON and posting a new one as JSON from a form. Built twice with
//! the same toolchain and release profile as the demo: as is (`index.html`),
//! and with the feature `keyway` (`keyway.html`), which wires in Keyway's
//! auth layer the way docs/frontend.md shows: provider buttons, the guard on
//! `/items`, the callback route, a user menu, and the API calls made through
//! the BFF with `use_api`. The difference of the two builds is what Keyway
//! adds.

use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;
use serde::{Deserialize, Serialize};

/// What the app lists.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Item {
    id: u32,
    name: String,
    done: bool,
}

/// What the form posts.
#[derive(Debug, Serialize)]
struct NewItem {
    name: String,
}

/// A form adding an item: `add` posts it; the list is then fetched again.
fn add_form<F, Fut>(add: F) -> impl IntoView
where
    F: Fn(NewItem) -> Fut + Copy + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let name = RwSignal::new(String::new());
    view! {
        <form on:submit=move |ev| {
            ev.prevent_default();
            let item = NewItem { name: name.get_untracked() };
            leptos::task::spawn_local(add(item));
        }>
            <label>"New item " <input prop:value=name on:input=move |ev| name.set(event_target_value(&ev)) /></label>
            <button type="submit">"Add"</button>
        </form>
    }
}

fn main() {
    leptos::mount::mount_to_body(App);
}

/// The list of items, once loaded.
fn item_list(items: Result<Vec<Item>, String>) -> AnyView {
    match items {
        Ok(items) => view! {
            <ul>
                {items
                    .into_iter()
                    .map(|i| view! { <li data-id=i.id>{i.name} {i.done.then_some(" ✓")}</li> })
                    .collect_view()}
            </ul>
        }
        .into_any(),
        Err(e) => view! { <p role="alert">{e}</p> }.into_any(),
    }
}

/// `/`: a welcome.
#[component]
fn Home() -> impl IntoView {
    view! {
        <h1>"Welcome"</h1>
        <p>"A small app with two routes."</p>
        <SignIn />
    }
}

/// Without Keyway: `/items` fetches its JSON with gloo-net.
#[cfg(not(feature = "keyway"))]
mod app {
    use super::*;

    /// Nothing to sign in with.
    #[component]
    pub fn SignIn() -> impl IntoView {}

    /// Nobody to show.
    #[component]
    pub fn UserMenu() -> impl IntoView {}

    /// `/items`: the list, and the form adding to it.
    #[component]
    pub fn Items() -> impl IntoView {
        let items = LocalResource::new(|| async {
            let response = gloo_net::http::Request::get("/api/items")
                .send()
                .await
                .map_err(|e| e.to_string())?;
            response
                .json::<Vec<Item>>()
                .await
                .map_err(|e| e.to_string())
        });
        let add = move |item: NewItem| async move {
            if let Ok(request) = gloo_net::http::Request::post("/api/items").json(&item) {
                let _ = request.send().await;
            }
            items.refetch();
        };
        view! {
            <h1>"Items"</h1>
            {move || items.get().map(item_list)}
            {add_form(add)}
        }
    }

    /// The routes.
    #[component]
    pub fn App() -> impl IntoView {
        view! {
            <Router>
                <header>
                    <A href="/">"Home"</A>
                    <A href="/items">"Items"</A>
                    <UserMenu />
                </header>
                <main>
                    <Routes fallback=|| "Not found">
                        <Route path=path!("/") view=Home />
                        <Route path=path!("/items") view=Items />
                    </Routes>
                </main>
            </Router>
        }
    }
}

/// With Keyway: the same app, signed in through the BFF.
#[cfg(feature = "keyway")]
mod app {
    use super::*;
    use keyway_leptos::{
        AuthError, CallbackPage, LoginButton, LogoutButton, RequireAuth, provide_auth, use_api,
        use_auth,
    };

    /// One sign-in button per provider.
    #[component]
    pub fn SignIn() -> impl IntoView {
        let auth = use_auth();
        let providers = auth.providers();
        move || {
            providers.get().and_then(Result::ok).map(|list| {
                list.into_iter()
                    .map(|p| view! { <LoginButton provider=p.id>"Sign in with " {p.name}</LoginButton> })
                    .collect_view()
            })
        }
    }

    /// The signed-in user and a sign-out button.
    #[component]
    pub fn UserMenu() -> impl IntoView {
        let user = use_auth().user();
        move || {
            user.get().map(|u| {
                view! {
                    <span>{u.name.unwrap_or(u.sub)}</span>
                    <LogoutButton>"Sign out"</LogoutButton>
                }
            })
        }
    }

    /// `/items`, for signed-in users: the list, and the form adding to it,
    /// through the API behind the BFF.
    #[component]
    pub fn Items() -> impl IntoView {
        let api = StoredValue::new(use_api("items"));
        let items = LocalResource::new(move || {
            let api = api.get_value();
            async move {
                api.get::<Vec<Item>>("/")
                    .await
                    .map_err(|e| e.user_message())
            }
        });
        let add = move |item: NewItem| async move {
            let _ = api.get_value().post::<_, Item>("/", &item).await;
            items.refetch();
        };
        view! {
            <h1>"Items"</h1>
            <RequireAuth fallback=|| view! { <p role="status">"Signing you in…"</p> }>
                {move || items.get().map(item_list)}
                {add_form(add)}
            </RequireAuth>
        }
    }

    /// Where the provider sends the user back.
    #[component]
    fn Callback() -> impl IntoView {
        view! {
            <CallbackPage
                fallback=|| view! { <p role="status">"Signing you in…"</p> }
                error=|e: AuthError| view! { <p role="alert">{e.user_message()}</p> }
            />
        }
    }

    /// The routes, plus the redirect URIs.
    #[component]
    pub fn App() -> impl IntoView {
        provide_auth();
        view! {
            <Router>
                <header>
                    <A href="/">"Home"</A>
                    <A href="/items">"Items"</A>
                    <UserMenu />
                </header>
                <main>
                    <Routes fallback=|| "Not found">
                        <Route path=path!("/") view=Home />
                        <Route path=path!("/items") view=Items />
                        <Route path=path!("/callback/:provider?") view=Callback />
                    </Routes>
                </main>
            </Router>
        }
    }
}

use app::{App, SignIn};

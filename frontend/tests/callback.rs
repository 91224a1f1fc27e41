//! `CallbackPage` in the browser: the query leaves the URL at once, the
//! answer goes to the right BFF endpoint, and the page moves on to
//! `return_to` (through `leptos_router` when there is one) or shows the
//! BFF's words.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use keyway_leptos::{AuthError, AuthState, CallbackPage, Navigator, provide_auth};
use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::hooks::use_location;
use leptos_router::path;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn done(return_to: &str) -> String {
    format!(r#"{{"user":{ADA},"return_to":"{return_to}"}}"#)
}

/// The callback page with plain views, outside any router.
fn callback_page() -> impl IntoView {
    view! {
        <CallbackPage
            fallback=|| view! { <p id="progress">"Signing you in…"</p> }
            error=|e: AuthError| view! { <p id="callback-error">{e.user_message()}</p> }
        />
    }
}

#[wasm_bindgen_test]
async fn a_refused_sign_in_shows_the_bffs_message() {
    anonymous_bff().await;
    route(
        "POST /bff/callback",
        400,
        r#"{"error":"access_denied","message":"You declined the sign-in. The provider said: not today"}"#,
    );
    set_url("/callback?error=access_denied&error_description=not+today&state=st");
    let root = host();
    let handle = mount(&root, || {
        provide_auth();
        callback_page()
    });
    // The query is gone before anything else happens.
    assert_eq!(window().location().search().unwrap(), "");
    assert_eq!(
        text_of(&root, "#progress").as_deref(),
        Some("Signing you in…")
    );
    assert!(
        until(|| text_of(&root, "#callback-error").is_some()).await,
        "{}",
        root.inner_html()
    );
    assert_eq!(
        text_of(&root, "#callback-error").unwrap(),
        "You declined the sign-in. The provider said: not today"
    );
    let call = &calls_to("/bff/callback")[0];
    assert_eq!(
        (call.method.as_str(), call.csrf.as_deref()),
        ("POST", Some("1"))
    );
    assert_eq!(
        json(&call.body),
        serde_json::json!({"error":"access_denied","error_description":"not today","state":"st"})
    );
    drop(handle);
}

#[wasm_bindgen_test]
async fn text_from_the_url_is_never_shown() {
    anonymous_bff().await;
    // The BFF refuses the state: the provider's description must not appear.
    route(
        "POST /bff/callback",
        400,
        r#"{"error":"invalid_state","message":"Unknown state."}"#,
    );
    set_url("/callback?error=access_denied&error_description=Call+555-0100+to+unlock&state=forged");
    let root = host();
    let handle = mount(&root, || {
        let auth = provide_auth();
        view! {
            {callback_page()}
            <p id="context-error">{move || auth.error().get().map(|e| e.user_message())}</p>
        }
    });
    assert!(until(|| text_of(&root, "#callback-error").is_some()).await);
    let page = root.text_content().unwrap();
    assert!(page.contains("no longer valid"), "{page}");
    assert!(!page.contains("555-0100"), "URL text shown: {page}");
    // The error is also the context's, for the app's own live region.
    assert!(
        text_of(&root, "#context-error")
            .unwrap()
            .contains("no longer valid")
    );
    drop(handle);
}

#[wasm_bindgen_test]
async fn without_a_query_there_is_nothing_to_finish() {
    anonymous_bff().await;
    set_url("/callback");
    let root = host();
    let handle = mount(&root, || {
        provide_auth();
        callback_page()
    });
    assert_eq!(
        text_of(&root, "#callback-error").as_deref(),
        Some(AuthError::NoCallback.user_message().as_str())
    );
    assert!(calls_to("/bff/callback").is_empty());
    drop(handle);
}

#[wasm_bindgen_test]
async fn a_completed_sign_in_goes_to_return_to_without_a_router() {
    anonymous_bff().await;
    route("POST /bff/callback", 200, &done("/orders?status=open"));
    set_url("/callback?code=c0de&state=st&iss=https%3A%2F%2Fidp");
    let root = host();
    let state = RwSignal::new(AuthState::Loading);
    let handle = mount(&root, move || {
        let auth = provide_auth();
        Effect::new(move || state.set(auth.state().get()));
        assert!(!Navigator::here().uses_router());
        callback_page()
    });
    assert!(
        until(|| pathname() == "/orders").await,
        "did not navigate; page: {}",
        root.inner_html()
    );
    assert_eq!(window().location().search().unwrap(), "?status=open");
    assert!(
        until(|| matches!(state.get_untracked(), AuthState::SignedIn(ref u) if u.sub == "u1"))
            .await
    );
    let call = &calls_to("/bff/callback")[0];
    assert_eq!(
        json(&call.body),
        serde_json::json!({"code":"c0de","state":"st","iss":"https://idp"})
    );
    drop(handle);
}

#[wasm_bindgen_test]
async fn a_per_provider_redirect_uri_posts_to_that_provider_without_a_router() {
    anonymous_bff().await;
    route("POST /bff/callback/corp", 200, &done("/"));
    set_url("/callback/corp?code=c0de&state=st");
    let root = host();
    let handle = mount(&root, || {
        provide_auth();
        callback_page()
    });
    assert!(until(|| !calls_to("/bff/callback/corp").is_empty()).await);
    assert!(calls_to("/bff/callback").is_empty());
    assert!(until(|| pathname() == "/").await);
    drop(handle);
}

#[wasm_bindgen_test]
async fn as_a_route_it_reads_the_provider_param_and_navigates_through_the_router() {
    anonymous_bff().await;
    route("POST /bff/callback/corp", 200, &done("/orders?status=open"));
    set_url("/callback/corp?code=c0de&state=st");
    let root = host();
    let router_path = RwSignal::new(String::new());
    let through_router = RwSignal::new(false);
    let handle = mount(&root, move || {
        provide_auth();
        view! {
            <Router>
                <Routes fallback=|| "not found">
                    // One route for both redirect URIs, as docs/frontend.md shows.
                    <Route path=path!("/callback/:provider?") view=move || {
                        through_router.set(Navigator::here().uses_router());
                        callback_page()
                    } />
                    <Route path=path!("/orders") view=move || {
                        let location = use_location();
                        // The router's `search` has no leading `?`.
                        Effect::new(move || router_path.set(
                            format!("{}?{}", location.pathname.get(), location.search.get())
                        ));
                        view! { <p id="orders">"Orders"</p> }
                    } />
                </Routes>
            </Router>
        }
    });
    assert!(
        until(|| text_of(&root, "#orders").is_some()).await,
        "the router did not show /orders: {}",
        root.inner_html()
    );
    assert!(through_router.get_untracked());
    assert_eq!(router_path.get_untracked(), "/orders?status=open");
    assert_eq!(calls_to("/bff/callback/corp").len(), 1);
    // The callback entry was replaced: Back does not return to it.
    assert_eq!(pathname(), "/orders");
    drop(handle);
    set_url("/");
}

#[wasm_bindgen_test]
async fn the_signed_in_user_is_set_from_the_callback_answer() {
    anonymous_bff().await;
    route("POST /bff/callback", 200, &done("/"));
    set_url("/callback?code=c0de&state=st");
    let root = host();
    let name = RwSignal::new(None::<String>);
    let handle = mount(&root, move || {
        let auth = provide_auth();
        Effect::new(move || name.set(auth.user().get().and_then(|u| u.name)));
        callback_page()
    });
    assert!(until(|| name.get_untracked().as_deref() == Some("Ada")).await);
    // From the callback's answer: no second request for the user.
    assert_eq!(calls_to("/bff/user").len(), 1, "{:?}", calls());
    drop(handle);
}

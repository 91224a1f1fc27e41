//! The headless buttons and the `Loader` in the browser: what they render,
//! what they send, and the states they expose.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use keyway_leptos::{AuthState, Loader, LoginButton, LogoutButton, provide_auth};
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn the_login_button_is_a_bare_button_with_the_callers_label_and_attributes() {
    anonymous_bff().await;
    let root = host();
    let handle = mount(&root, || {
        provide_auth();
        view! {
            <LoginButton provider="corp" attr:class="my-button" attr:data-provider="corp">
                "Sign in with Corp"
            </LoginButton>
        }
    });
    let html = root.inner_html();
    assert!(html.starts_with("<button"), "{html}");
    assert_eq!(root.child_element_count(), 1, "{html}");
    let button = root.query_selector("button").unwrap().unwrap();
    assert_eq!(button.get_attribute("type").as_deref(), Some("button"));
    assert_eq!(button.get_attribute("class").as_deref(), Some("my-button"));
    assert_eq!(
        button.get_attribute("data-provider").as_deref(),
        Some("corp")
    );
    assert_eq!(button.text_content().unwrap(), "Sign in with Corp");
    assert_eq!(button.get_attribute("aria-busy").as_deref(), Some("false"));
    assert!(button.get_attribute("style").is_none() && button.get_attribute("id").is_none());
    drop(handle);
}

#[wasm_bindgen_test]
async fn the_login_button_starts_the_sign_in_and_stays_busy_while_leaving() {
    anonymous_bff().await;
    set_url("/somewhere");
    let root = host();
    let redirecting = RwSignal::new(false);
    let handle = mount(&root, move || {
        let auth = provide_auth();
        Effect::new(move || redirecting.set(auth.redirecting().get()));
        view! { <LoginButton provider="corp" return_to="/orders?x=1">"Sign in"</LoginButton> }
    });
    click(&root, "button");
    assert!(until(|| hash() == AT_PROVIDER).await);
    let login = &calls_to("/bff/login")[0];
    assert_eq!(
        json(&login.body),
        serde_json::json!({"provider": "corp", "return_to": "/orders?x=1"})
    );
    assert!(redirecting.get_untracked());
    let button = root.query_selector("button").unwrap().unwrap();
    assert_eq!(button.get_attribute("aria-busy").as_deref(), Some("true"));
    assert_eq!(
        button.get_attribute("aria-disabled").as_deref(),
        Some("true")
    );
    // A second click while leaving sends nothing.
    click(&root, "button");
    next_task().await;
    assert_eq!(calls_to("/bff/login").len(), 1);
    drop(handle);
    set_url("/");
}

#[wasm_bindgen_test]
async fn a_failed_sign_in_start_frees_the_button_and_sets_the_error() {
    anonymous_bff().await;
    route(
        "POST /bff/login",
        400,
        r#"{"error":"unknown_provider","message":"No provider called nope."}"#,
    );
    let root = host();
    let handle = mount(&root, || {
        let auth = provide_auth();
        view! {
            <LoginButton provider="nope">"Sign in"</LoginButton>
            <p id="error">{move || auth.error().get().map(|e| e.user_message())}</p>
        }
    });
    click(&root, "button");
    assert!(
        until(|| text_of(&root, "#error").is_some_and(|t| !t.is_empty())).await,
        "{}",
        root.inner_html()
    );
    assert_eq!(
        text_of(&root, "#error").unwrap(),
        "No provider called nope."
    );
    let button = root.query_selector("button").unwrap().unwrap();
    assert!(until(|| button.get_attribute("aria-busy").as_deref() == Some("false")).await);
    drop(handle);
}

#[wasm_bindgen_test]
async fn logout_posts_then_goes_to_the_given_page_signed_out() {
    anonymous_bff().await;
    route("/bff/user", 200, ADA);
    set_url("/profile");
    let root = host();
    let state = RwSignal::new(AuthState::Loading);
    let ended = RwSignal::new(true);
    let handle = mount(&root, move || {
        let auth = provide_auth();
        Effect::new(move || state.set(auth.state().get()));
        Effect::new(move || ended.set(auth.session_ended().get()));
        view! { <LogoutButton to="/bye" attr:id="logout">"Sign out"</LogoutButton> }
    });
    assert!(until(|| matches!(state.get_untracked(), AuthState::SignedIn(_))).await);
    click(&root, "#logout");
    assert!(until(|| pathname() == "/bye").await);
    assert!(until(|| state.get_untracked() == AuthState::Anonymous).await);
    // Signed out here: that is not a session that ended elsewhere.
    next_task().await;
    assert!(!ended.get_untracked());
    let logout = &calls_to("/bff/logout")[0];
    assert_eq!(logout.method, "POST");
    assert_eq!(logout.csrf.as_deref(), Some("1"));
    drop(handle);
    set_url("/");
}

#[wasm_bindgen_test]
async fn logout_follows_the_providers_end_session_page() {
    anonymous_bff().await;
    route("/bff/user", 200, ADA);
    route(
        "POST /bff/logout",
        200,
        r##"{"end_session_url":"#provider-logout"}"##,
    );
    let root = host();
    let handle = mount(&root, || {
        provide_auth();
        view! { <LogoutButton>"Sign out"</LogoutButton> }
    });
    click(&root, "button");
    assert!(until(|| hash() == "#provider-logout").await);
    assert_eq!(calls_to("/bff/logout").len(), 1);
    drop(handle);
    set_url("/");
}

/// A fetcher whose answers the test gives: each call leaves a resolver in
/// `window.__resolvers`.
fn pending_number() -> impl std::future::Future<Output = u32> {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        resolvers().push(&resolve);
    });
    async move { JsFuture::from(promise).await.unwrap().as_f64().unwrap() as u32 }
}

fn resolvers() -> js_sys::Array {
    js_sys::Reflect::get(&window(), &"__resolvers".into())
        .unwrap()
        .unchecked_into()
}

/// Answers the `index`th request (once it has been made) with `value`.
async fn resolve(index: u32, value: u32) {
    assert!(
        until(|| resolvers().length() > index).await,
        "request {index} was not made"
    );
    let resolve: js_sys::Function = resolvers().get(index).unchecked_into();
    resolve
        .call1(&JsValue::NULL, &JsValue::from(value))
        .unwrap();
}

#[wasm_bindgen_test]
async fn a_loader_never_takes_an_older_answer_over_a_newer_value() {
    js_sys::Reflect::set(&window(), &"__resolvers".into(), &js_sys::Array::new()).unwrap();
    let owner = Owner::new();
    let loader = owner.with(|| Loader::new(pending_number));
    assert_eq!(loader.get_untracked(), None);
    // The value is set (e.g. from the callback's answer) while the first
    // request is still out; then the first request answers.
    loader.set(7);
    resolve(0, 1).await;
    next_task().await;
    assert_eq!(loader.get_untracked(), Some(7));
    // A newer request's answer is taken; the value stays until it comes.
    loader.refetch();
    assert_eq!(loader.get_untracked(), Some(7));
    resolve(1, 9).await;
    next_task().await;
    assert_eq!(loader.get_untracked(), Some(9));
    // A lazy loader asks once, on `ensure`.
    let lazy = owner.with(|| Loader::lazy(pending_number));
    lazy.ensure();
    lazy.ensure();
    resolve(2, 3).await;
    next_task().await;
    assert_eq!(lazy.get_untracked(), Some(3));
    assert_eq!(resolvers().length(), 3);
}

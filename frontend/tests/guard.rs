//! `RequireAuth` in the browser: the round trip to the provider with the
//! route and its query as `return_to`, and when the guard must not leave.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use keyway_leptos::{RequireAuth, provide_auth, use_api, use_auth};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// What the guard shows instead: the state the fallback can read, and the
/// providers to choose from.
fn fallback() -> impl IntoView {
    let auth = use_auth();
    view! {
        <p id="fallback">
            {move || format!(
                "redirecting={} ended={}",
                auth.redirecting().get(),
                auth.session_ended().get(),
            )}
        </p>
        <ul id="choices">
            {move || auth.providers().get().and_then(Result::ok).map(|list| {
                list.into_iter().map(|p| view! { <li>{p.name}</li> }).collect_view()
            })}
        </ul>
    }
}

/// A fallback that asks for nothing (to see what the guard asks by itself).
fn plain_fallback() -> impl IntoView {
    view! { <p id="fallback">"Not here"</p> }
}

/// A protected page: `#secret` inside the guard, [`fallback`] outside.
fn protected(redirect: bool, provider: Option<&'static str>) -> impl IntoView {
    provide_auth();
    match provider {
        Some(provider) => view! {
            <RequireAuth redirect=redirect provider=provider fallback=plain_fallback>
                <p id="secret">"Only for signed-in users"</p>
            </RequireAuth>
        }
        .into_any(),
        None => view! {
            <RequireAuth redirect=redirect fallback=fallback>
                <p id="secret">"Only for signed-in users"</p>
            </RequireAuth>
        }
        .into_any(),
    }
}

/// A protected page whose fallback asks for nothing.
fn protected_plain() -> impl IntoView {
    provide_auth();
    view! {
        <RequireAuth fallback=plain_fallback>
            <p id="secret">"Only for signed-in users"</p>
        </RequireAuth>
    }
}

fn login_calls() -> Vec<Call> {
    calls_to("/bff/login")
}

fn clear_session_storage() {
    window()
        .session_storage()
        .unwrap()
        .unwrap()
        .clear()
        .unwrap();
}

#[wasm_bindgen_test]
async fn an_anonymous_visitor_goes_to_the_only_provider_and_comes_back_to_the_route_and_query() {
    anonymous_bff().await;
    clear_session_storage();
    set_url("/orders?status=open&page=2");
    let root = host();
    let handle = mount(&root, || protected(true, None));
    assert!(
        until(|| hash() == AT_PROVIDER).await,
        "the window did not go to the provider: {}",
        root.inner_html()
    );
    let login = &login_calls()[0];
    assert_eq!(login.csrf.as_deref(), Some("1"));
    assert_eq!(
        json(&login.body),
        serde_json::json!({"provider": "corp", "return_to": "/orders?status=open&page=2"})
    );
    assert_eq!(login_calls().len(), 1);
    assert!(text_of(&root, "#secret").is_none());
    assert!(
        text_of(&root, "#fallback")
            .unwrap()
            .contains("redirecting=true")
    );
    drop(handle);
}

#[wasm_bindgen_test]
async fn a_given_provider_is_used_without_asking_for_the_list() {
    anonymous_bff().await;
    clear_session_storage();
    set_url("/reports");
    let root = host();
    let handle = mount(&root, || protected(true, Some("github")));
    assert!(until(|| hash() == AT_PROVIDER).await);
    assert_eq!(
        json(&login_calls()[0].body),
        serde_json::json!({"provider": "github", "return_to": "/reports"})
    );
    assert!(calls_to("/bff/providers").is_empty());
    drop(handle);
}

#[wasm_bindgen_test]
async fn with_several_providers_the_guard_shows_the_choice() {
    anonymous_bff().await;
    clear_session_storage();
    route(
        "/bff/providers",
        200,
        r#"[{"id":"a","name":"Alpha","kind":"oidc"},{"id":"b","name":"Beta","kind":"oauth2"}]"#,
    );
    set_url("/orders");
    let root = host();
    let handle = mount(&root, || protected(true, None));
    assert!(
        until(|| count(&root, "#choices li") == 2).await,
        "{}",
        root.inner_html()
    );
    // The guard ran on the same answer; had it chosen, the request would be out.
    next_task().await;
    assert!(login_calls().is_empty());
    assert!(
        text_of(&root, "#fallback")
            .unwrap()
            .contains("redirecting=false")
    );
    drop(handle);
}

#[wasm_bindgen_test]
async fn redirect_false_only_shows_the_fallback() {
    anonymous_bff().await;
    clear_session_storage();
    set_url("/orders");
    let root = host();
    let handle = mount(&root, || protected(false, None));
    assert!(until(|| count(&root, "#choices li") == 1).await);
    next_task().await;
    assert!(login_calls().is_empty());
    drop(handle);
}

#[wasm_bindgen_test]
async fn a_signed_in_user_sees_the_children_and_nothing_else_is_asked() {
    anonymous_bff().await;
    route("/bff/user", 200, ADA);
    set_url("/orders");
    let root = host();
    let handle = mount(&root, protected_plain);
    assert!(until(|| text_of(&root, "#secret").is_some()).await);
    assert!(text_of(&root, "#fallback").is_none());
    assert!(login_calls().is_empty());
    assert!(calls_to("/bff/providers").is_empty());
    drop(handle);
}

#[wasm_bindgen_test]
async fn a_sign_in_that_came_back_without_a_session_does_not_loop() {
    anonymous_bff().await;
    clear_session_storage();
    set_url("/orders");
    // What the guard notes before leaving for the provider.
    window()
        .session_storage()
        .unwrap()
        .unwrap()
        .set_item(
            "keyway.auto-login",
            &format!("{}\n/orders", js_sys::Date::now() as u64),
        )
        .unwrap();
    let root = host();
    let handle = mount(&root, || protected(true, None));
    assert!(until(|| count(&root, "#choices li") == 1).await);
    next_task().await;
    assert!(login_calls().is_empty(), "the guard looped");
    drop(handle);
    clear_session_storage();
}

#[wasm_bindgen_test]
async fn a_session_that_ends_on_the_page_shows_the_fallback_and_stays() {
    anonymous_bff().await;
    route("/bff/user", 200, ADA);
    route("GET /bff/api/orders/list", 401, UNAUTHENTICATED);
    set_url("/orders");
    let root = host();
    let handle = mount(&root, || {
        let view = protected(true, None);
        let api = use_api("orders");
        view! {
            {view}
            <button id="call" on:click=move |_| {
                let api = api.clone();
                spawn_local(async move {
                    let _ = api.get::<serde_json::Value>("/list").await;
                });
            }>"Call"</button>
        }
    });
    assert!(until(|| text_of(&root, "#secret").is_some()).await);
    click(&root, "#call");
    assert!(
        until(|| text_of(&root, "#fallback").is_some_and(|t| t.contains("ended=true"))).await,
        "{}",
        root.inner_html()
    );
    assert!(text_of(&root, "#secret").is_none());
    next_task().await;
    assert!(
        login_calls().is_empty(),
        "the guard left the page after the session ended on it"
    );
    assert_eq!(hash(), "");
    drop(handle);
}

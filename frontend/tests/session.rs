//! Sessions that end elsewhere: the SPA notices on its next call (`use_api`,
//! userinfo) or when the tab comes back to the front, and shows the
//! signed-out state without a reload.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use keyway_leptos::{Auth, AuthState, provide_auth, use_api};
use leptos::prelude::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Mounts a context and mirrors its state into a signal the test reads.
fn mount_auth() -> (Mounted, RwSignal<Option<Auth>>, RwSignal<AuthState>) {
    let auth_slot = RwSignal::new(None);
    let state = RwSignal::new(AuthState::Loading);
    let handle = mount(&host(), move || {
        let auth = provide_auth();
        auth_slot.set(Some(auth));
        Effect::new(move || state.set(auth.state().get()));
    });
    (handle, auth_slot, state)
}

/// `use_api(name)` as a component below the context would get it.
fn api_of(auth: Auth, name: &str) -> keyway_leptos::Api {
    Owner::new().with(|| {
        provide_context(auth);
        use_api(name)
    })
}

fn signed_in(state: RwSignal<AuthState>) -> bool {
    matches!(state.get_untracked(), AuthState::SignedIn(_))
}

/// Fires `name` at `target` the way the browser does (`focus` does not
/// bubble, `visibilitychange` does, from `document` to `window`).
fn dispatch(target: &web_sys::EventTarget, name: &str, bubbles: bool) {
    let init = web_sys::EventInit::new();
    init.set_bubbles(bubbles);
    target
        .dispatch_event(&web_sys::Event::new_with_event_init_dict(name, &init).unwrap())
        .unwrap();
}

/// A marker that a reload would wipe.
fn mark_page() {
    js_sys::Reflect::set(&window(), &"__no_reload".into(), &JsValue::TRUE).unwrap();
}

fn page_was_not_reloaded() -> bool {
    js_sys::Reflect::get(&window(), &"__no_reload".into()).unwrap() == JsValue::TRUE
}

#[wasm_bindgen_test]
async fn a_401_of_the_bff_through_use_api_signs_out_at_once() {
    anonymous_bff().await;
    route("/bff/user", 200, ADA);
    route("GET /bff/api/orders/list", 401, UNAUTHENTICATED);
    mark_page();
    let (handle, auth, state) = mount_auth();
    assert!(until(|| signed_in(state)).await);
    let user_calls = calls_to("/bff/user").len();
    let api = api_of(auth.get_untracked().unwrap(), "orders");
    let err = api.get::<serde_json::Value>("/list").await.unwrap_err();
    assert!(err.session_ended());
    assert!(until(|| state.get_untracked() == AuthState::Anonymous).await);
    assert!(
        until(|| auth
            .get_untracked()
            .unwrap()
            .session_ended()
            .get_untracked())
        .await
    );
    // Signed out from the answer itself: no second look at the session.
    assert_eq!(calls_to("/bff/user").len(), user_calls);
    assert!(page_was_not_reloaded());
    drop(handle);
}

#[wasm_bindgen_test]
async fn an_apis_own_401_makes_the_session_be_checked_again() {
    anonymous_bff().await;
    route("/bff/user", 200, ADA);
    // The upstream's 401, not the BFF's: the session may be fine.
    route(
        "GET /bff/api/orders/list",
        401,
        r#"{"detail":"token rejected"}"#,
    );
    let (handle, auth, state) = mount_auth();
    assert!(until(|| signed_in(state)).await);
    let api = api_of(auth.get_untracked().unwrap(), "orders");
    let err = api.get::<serde_json::Value>("/list").await.unwrap_err();
    assert!(!err.session_ended() && err.needs_login());
    assert!(until(|| calls_to("/bff/user").len() == 2).await);
    next_task().await;
    assert!(signed_in(state), "the BFF still has the session");
    drop(handle);
}

#[wasm_bindgen_test]
async fn userinfo_with_an_expired_session_signs_out() {
    anonymous_bff().await;
    route("/bff/user", 200, ADA);
    route(
        "/bff/userinfo",
        401,
        r#"{"error":"session_expired","message":"Please sign in again."}"#,
    );
    let (handle, auth, state) = mount_auth();
    assert!(until(|| signed_in(state)).await);
    let auth = auth.get_untracked().unwrap();
    let err = auth.userinfo::<serde_json::Value>().await.unwrap_err();
    assert!(err.session_ended());
    assert!(until(|| state.get_untracked() == AuthState::Anonymous).await);
    assert!(until(|| auth.session_ended().get_untracked()).await);
    drop(handle);
}

#[wasm_bindgen_test]
async fn focus_checks_the_session_and_shows_it_ended_without_a_reload() {
    anonymous_bff().await;
    route("/bff/user", 200, ADA);
    mark_page();
    let (handle, auth, state) = mount_auth();
    assert!(until(|| signed_in(state)).await);
    assert_eq!(calls_to("/bff/user").len(), 1);
    // Logged out in another tab meanwhile.
    route("/bff/user", 401, UNAUTHENTICATED);
    dispatch(&window(), "focus", false);
    assert!(until(|| state.get_untracked() == AuthState::Anonymous).await);
    assert_eq!(calls_to("/bff/user").len(), 2);
    assert!(
        auth.get_untracked()
            .unwrap()
            .session_ended()
            .get_untracked()
    );
    assert!(page_was_not_reloaded());
    drop(handle);
}

#[wasm_bindgen_test]
async fn coming_back_to_a_visible_tab_checks_the_session() {
    anonymous_bff().await;
    route("/bff/user", 200, ADA);
    let (handle, _auth, state) = mount_auth();
    assert!(until(|| signed_in(state)).await);
    route("/bff/user", 401, UNAUTHENTICATED);
    // The headless test page is visible: `visibilitychange` means "shown".
    dispatch(&document(), "visibilitychange", true);
    assert!(until(|| state.get_untracked() == AuthState::Anonymous).await);
    drop(handle);
}

#[wasm_bindgen_test]
async fn an_anonymous_tab_does_not_ask_on_focus() {
    anonymous_bff().await;
    let (handle, _auth, state) = mount_auth();
    assert!(until(|| state.get_untracked() == AuthState::Anonymous).await);
    dispatch(&window(), "focus", false);
    next_task().await;
    assert_eq!(calls_to("/bff/user").len(), 1);
    drop(handle);
}

#[wasm_bindgen_test]
async fn the_session_is_checked_again_when_it_expires() {
    anonymous_bff().await;
    // Ends within the next second; the check comes a second after that.
    let expires_at = (js_sys::Date::now() / 1000.0) as u64 + 1;
    route(
        "/bff/user",
        200,
        &format!(r#"{{"sub":"u1","provider":"corp","expires_at":{expires_at}}}"#),
    );
    let (handle, auth, state) = mount_auth();
    assert!(until(|| signed_in(state)).await);
    route("/bff/user", 401, UNAUTHENTICATED);
    assert!(until_ms(5_000, || state.get_untracked() == AuthState::Anonymous).await);
    assert_eq!(calls_to("/bff/user").len(), 2);
    assert!(
        auth.get_untracked()
            .unwrap()
            .session_ended()
            .get_untracked()
    );
    drop(handle);
}

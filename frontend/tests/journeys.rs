//! Login journeys in the browser: silent sign-in on first load (once per
//! tab session, quiet when the provider knows nobody), `sign_in_with` and
//! its options, and step-up prompts from `use_api`.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use keyway_leptos::{
    Auth, AuthError, AuthSetup, CallbackPage, LoginOptions, Prompt, provide_auth,
    provide_auth_setup, use_api,
};
use leptos::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn clear_session_storage() {
    window()
        .session_storage()
        .unwrap()
        .unwrap()
        .clear()
        .unwrap();
}

fn logins() -> Vec<serde_json::Value> {
    calls_to("/bff/login")
        .into_iter()
        .map(|c| serde_json::from_str(&c.body).unwrap())
        .collect()
}

fn mount_silent() -> (Mounted, RwSignal<Option<Auth>>) {
    let slot = RwSignal::new(None);
    let handle = mount(&host(), move || {
        let auth = provide_auth_setup(AuthSetup {
            silent: true,
            ..AuthSetup::default()
        });
        slot.set(Some(auth));
    });
    (handle, slot)
}

#[wasm_bindgen_test]
async fn a_silent_sign_in_is_tried_once_per_tab_session_from_the_page_it_started_on() {
    clear_session_storage();
    anonymous_bff().await;
    set_url("/orders?open=1");
    let (first, _) = mount_silent();
    assert!(
        until(|| logins().len() == 1).await,
        "a silent sign-in starts"
    );
    let body = &logins()[0];
    assert_eq!(body["prompt"], "none");
    assert_eq!(body["return_to"], "/orders?open=1");
    drop(first);
    // The page again (back from the provider, anonymous): no second try.
    set_url("/orders?open=1");
    let (_second, _) = mount_silent();
    assert!(until(|| calls_to("/bff/user").len() >= 2).await);
    next_task().await;
    next_task().await;
    assert_eq!(logins().len(), 1, "no loop: {:?}", logins());
}

#[wasm_bindgen_test]
async fn without_silent_nothing_is_tried() {
    clear_session_storage();
    anonymous_bff().await;
    let _m = mount(&host(), || {
        provide_auth();
    });
    assert!(until(|| !calls_to("/bff/user").is_empty()).await);
    next_task().await;
    next_task().await;
    assert!(logins().is_empty());
}

#[wasm_bindgen_test]
async fn login_required_after_a_silent_try_comes_back_anonymous_without_an_error() {
    clear_session_storage();
    anonymous_bff().await;
    set_url("/reports");
    let (first, _) = mount_silent();
    assert!(until(|| logins().len() == 1).await);
    drop(first);
    route(
        "POST /bff/callback",
        400,
        r#"{"error":"login_required","message":"The provider refused the sign-in (login_required)."}"#,
    );
    set_url("/callback?error=login_required&state=s1");
    let root = host();
    let error = RwSignal::new(None::<AuthError>);
    let _m = mount(&root, move || {
        let auth = provide_auth_setup(AuthSetup {
            silent: true,
            ..AuthSetup::default()
        });
        Effect::new(move || error.set(auth.error().get()));
        view! {
            <CallbackPage
                fallback=|| view! { <p id="progress">"…"</p> }
                error=|e: AuthError| view! { <p id="callback-error">{e.user_message()}</p> }
            />
        }
    });
    assert!(until(|| window().location().pathname().unwrap() == "/reports").await);
    assert_eq!(count(&root, "#callback-error"), 0, "no error box");
    assert_eq!(error.get_untracked(), None);
    assert_eq!(logins().len(), 1, "no new attempt");
}

#[wasm_bindgen_test]
async fn sign_in_with_sends_the_options() {
    anonymous_bff().await;
    let slot = RwSignal::new(None);
    let _m = mount(&host(), move || slot.set(Some(provide_auth())));
    let auth = slot.get_untracked().unwrap();
    let _ = auth
        .sign_in_with(LoginOptions {
            prompt: Some(Prompt::SelectAccount),
            login_hint: Some("ada@example.com".into()),
            ..LoginOptions::default()
        })
        .await;
    let body = logins().pop().unwrap();
    assert_eq!(body["prompt"], "select_account");
    assert_eq!(body["login_hint"], "ada@example.com");
    assert!(body.get("max_age").is_none(), "{body}");
}

#[wasm_bindgen_test]
async fn a_step_up_answer_of_use_api_becomes_a_prompt_and_step_up_signs_in_with_it() {
    anonymous_bff().await;
    route("/bff/user", 200, ADA);
    route(
        "/bff/api/orders/big",
        401,
        r#"{"error":"step_up_required","message":"m","acr_values":"urn:mfa","max_age":300}"#,
    );
    set_url("/orders/big");
    let slot = RwSignal::new(None);
    let _m = mount(&host(), move || slot.set(Some(provide_auth())));
    let auth = slot.get_untracked().unwrap();
    assert!(until(|| auth.is_signed_in().get_untracked()).await);
    let api = Owner::new().with(|| {
        provide_context(auth);
        use_api("orders")
    });
    let err = api.get::<serde_json::Value>("/big").await.unwrap_err();
    assert!(err.needs_step_up() && !err.needs_login());
    let asked = auth
        .step_up_required()
        .get_untracked()
        .expect("a step-up prompt");
    assert_eq!(asked.acr_values.as_deref(), Some("urn:mfa"));
    assert_eq!(asked.max_age, Some(300));
    assert_eq!(asked.return_to.as_deref(), Some("/orders/big"));
    assert!(auth.is_signed_in().get_untracked(), "still signed in");
    auth.step_up();
    assert!(until(|| !logins().is_empty()).await);
    let body = logins().pop().unwrap();
    assert_eq!(body["acr_values"], "urn:mfa");
    assert_eq!(body["max_age"], 300);
    assert_eq!(body["return_to"], "/orders/big");
    assert_eq!(auth.step_up_required().get_untracked(), None);
}

//! Browser tests of the callback page and navigation, against a fake `fetch`.
#![cfg(target_arch = "wasm32")]

use js_sys::{Function, Promise, Reflect};
use keyway_frontend::auth::{
    CallbackPage, LogoutButton, navigate, provide_auth, take_callback_query, use_auth,
};
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Replaces `window.fetch` with a fake that records each request in
/// `window.__calls` and answers `/bff/user` with 401 and `/bff/callback`
/// with `callback_status` and `callback_body`.
fn fake_fetch(callback_status: u16, callback_body: &str) {
    let script = format!(
        r#"
        window.__calls = [];
        window.fetch = async (req) => {{
            const call = {{ url: new URL(req.url).pathname, method: req.method,
                           csrf: req.headers.get('x-csrf'), body: await req.clone().text() }};
            window.__calls.push(call);
            const json = (status, body) => new Response(body,
                {{ status, headers: {{ 'content-type': 'application/json' }} }});
            if (call.url === '/bff/callback') return json({callback_status}, {body});
            if (call.url === '/bff/logout') return json(200, '{{"end_session_url":null}}');
            return json(401, '{{"error":"unauthenticated","message":"Not signed in."}}');
        }};
        "#,
        body = serde_json::to_string(callback_body).unwrap(),
    );
    Function::new_no_args(&script)
        .call0(&JsValue::NULL)
        .unwrap();
}

fn calls() -> Vec<serde_json::Value> {
    let calls = Reflect::get(&window(), &"__calls".into()).unwrap();
    let text: String = js_sys::JSON::stringify(&calls).unwrap().into();
    serde_json::from_str(&text).unwrap()
}

async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        window()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

/// Waits up to 3 s for `cond`.
async fn until(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..150 {
        if cond() {
            return true;
        }
        sleep(20).await;
    }
    false
}

fn set_url(url: &str) {
    window()
        .history()
        .unwrap()
        .replace_state_with_url(&JsValue::NULL, "", Some(url))
        .unwrap();
}

fn host() -> web_sys::HtmlElement {
    let document = document();
    let host = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&host).unwrap();
    host.unchecked_into()
}

#[wasm_bindgen_test]
fn take_callback_query_removes_the_code_from_the_url() {
    set_url("/callback?code=secret-code&state=st&iss=https%3A%2F%2Fidp");
    let request = take_callback_query();
    assert_eq!(request.code.as_deref(), Some("secret-code"));
    assert_eq!(request.iss.as_deref(), Some("https://idp"));
    let location = window().location();
    assert_eq!(location.pathname().unwrap(), "/callback");
    assert_eq!(location.search().unwrap(), "");
    assert!(!location.href().unwrap().contains("secret-code"));
}

#[wasm_bindgen_test]
fn navigate_fires_popstate() {
    use std::cell::Cell;
    use std::rc::Rc;
    let seen = Rc::new(Cell::new(false));
    let flag = seen.clone();
    let handle = window_event_listener(leptos::ev::popstate, move |_| flag.set(true));
    navigate("/somewhere?x=1", true);
    assert!(seen.get());
    assert_eq!(window().location().pathname().unwrap(), "/somewhere");
    handle.remove();
}

#[wasm_bindgen_test]
async fn a_denied_sign_in_is_explained() {
    fake_fetch(
        400,
        r#"{"error":"access_denied","message":"The user denied the request."}"#,
    );
    set_url("/callback?error=access_denied&error_description=denied&state=st");
    let host = host();
    let root = host.clone();
    let _handle = leptos::mount::mount_to(host, || {
        provide_auth();
        view! { <CallbackPage /> }
    });
    // The query is gone before anything else happens.
    assert_eq!(window().location().search().unwrap(), "");
    assert!(
        until(|| root.query_selector("#callback-error").unwrap().is_some()).await,
        "no #callback-error; page: {}",
        root.inner_html()
    );
    let text = root
        .query_selector("#callback-error")
        .unwrap()
        .unwrap()
        .text_content()
        .unwrap();
    assert!(text.contains("You cancelled the sign-in."), "{text}");
    assert!(text.contains("Try again"), "{text}");

    let callback = calls()
        .into_iter()
        .find(|c| c["url"] == "/bff/callback")
        .expect("no POST /bff/callback");
    assert_eq!(callback["method"], "POST");
    assert_eq!(callback["csrf"], "1");
    let body: serde_json::Value = serde_json::from_str(callback["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error":"access_denied","error_description":"denied","state":"st"})
    );
}

#[wasm_bindgen_test]
async fn a_completed_sign_in_goes_to_return_to() {
    fake_fetch(
        200,
        r#"{"user":{"sub":"u1","provider":"corp","name":"Ada","expires_at":2000000000},"return_to":"/profile"}"#,
    );
    set_url("/callback?code=c0de&state=st");
    let host = host();
    let root = host.clone();
    let signed_in = RwSignal::new(None::<String>);
    let _handle = leptos::mount::mount_to(host, move || {
        provide_auth();
        let auth = use_auth();
        Effect::new(move || signed_in.set(auth.user().and_then(|u| u.name)));
        view! { <CallbackPage /> }
    });
    assert!(root.text_content().unwrap().contains("Signing you in"));
    assert!(
        until(|| window().location().pathname().unwrap() == "/profile").await,
        "did not navigate; page: {}",
        root.inner_html()
    );
    assert!(until(|| signed_in.get_untracked().as_deref() == Some("Ada")).await);
    // The earlier `GET /bff/user` (401) must not sign the user out again.
    sleep(100).await;
    assert_eq!(signed_in.get_untracked().as_deref(), Some("Ada"));
    let callback = calls()
        .into_iter()
        .find(|c| c["url"] == "/bff/callback")
        .unwrap();
    assert_eq!(callback["csrf"], "1");
    set_url("/");
}

#[wasm_bindgen_test]
async fn logout_posts_then_goes_home_signed_out() {
    fake_fetch(500, "{}");
    set_url("/profile");
    let host = host();
    let root = host.clone();
    let user = RwSignal::new(None::<Option<String>>);
    let _handle = leptos::mount::mount_to(host, move || {
        let auth = provide_auth();
        auth.set_user(Some(keyway_shared::User {
            sub: "u1".into(),
            provider: "corp".into(),
            name: Some("Ada".into()),
            email: None,
            email_verified: None,
            picture: None,
            expires_at: 2_000_000_000,
        }));
        Effect::new(move || user.set(Some(auth.user().and_then(|u| u.name))));
        view! { <LogoutButton id="logout" /> }
    });
    assert!(until(|| user.get_untracked() == Some(Some("Ada".into()))).await);
    let button: web_sys::HtmlElement = root
        .query_selector("#logout")
        .unwrap()
        .unwrap()
        .unchecked_into();
    button.click();
    assert!(until(|| window().location().pathname().unwrap() == "/").await);
    // The refetched `GET /bff/user` answers 401: signed out.
    assert!(until(|| user.get_untracked() == Some(None)).await);
    let logout = calls()
        .into_iter()
        .find(|c| c["url"] == "/bff/logout")
        .expect("no logout call");
    assert_eq!(logout["method"], "POST");
    assert_eq!(logout["csrf"], "1");
}

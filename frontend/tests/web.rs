//! Browser unit tests of the auth layer (wasm-bindgen-test, headless Chromium).
#![cfg(target_arch = "wasm32")]

use keyway_frontend::auth::{
    AuthClient, AuthError, LoginButton, parse_callback_query, safe_return_to,
};
use keyway_shared::{CSRF_HEADER, CSRF_HEADER_VALUE, CallbackRequest, ErrorBody, codes};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn parses_a_successful_callback_query() {
    let req = parse_callback_query("?code=abc%2F123&state=xyz&iss=https%3A%2F%2Fsso.example.com");
    assert_eq!(
        req,
        CallbackRequest {
            code: Some("abc/123".into()),
            state: Some("xyz".into()),
            iss: Some("https://sso.example.com".into()),
            error: None,
            error_description: None,
        }
    );
}

#[wasm_bindgen_test]
fn parses_an_error_callback_query() {
    let req =
        parse_callback_query("error=access_denied&error_description=The+user+said+no&state=s");
    assert_eq!(req.code, None);
    assert_eq!(req.error.as_deref(), Some("access_denied"));
    assert_eq!(req.error_description.as_deref(), Some("The user said no"));
    assert_eq!(req.state.as_deref(), Some("s"));
}

#[wasm_bindgen_test]
fn empty_query_parameters_are_absent() {
    assert_eq!(parse_callback_query(""), CallbackRequest::default());
    assert_eq!(
        parse_callback_query("?code=&state="),
        CallbackRequest::default()
    );
}

#[wasm_bindgen_test]
fn maps_contract_error_bodies() {
    let err = AuthError::from_response_parts(
        400,
        r#"{"error":"invalid_state","message":"This sign-in was not started here."}"#,
    );
    assert_eq!(
        err,
        AuthError::Api {
            status: 400,
            body: ErrorBody {
                error: codes::INVALID_STATE.into(),
                message: "This sign-in was not started here.".into(),
            },
        }
    );
    assert_eq!(err.code(), Some(codes::INVALID_STATE));
    assert!(!err.needs_login());
}

#[wasm_bindgen_test]
fn maps_other_error_bodies_to_the_status() {
    let err = AuthError::from_response_parts(502, "<html>Bad Gateway</html>");
    assert_eq!(err, AuthError::Status(502));
    assert!(err.user_message().contains("502"));
    assert!(AuthError::from_response_parts(401, "").needs_login());
}

#[wasm_bindgen_test]
fn messages_are_for_people() {
    let denied = AuthError::from_response_parts(
        400,
        r#"{"error":"access_denied","message":"access_denied"}"#,
    );
    assert_eq!(denied.user_message(), "You cancelled the sign-in.");
    let other = AuthError::from_response_parts(
        502,
        r#"{"error":"token_exchange_failed","message":"The provider refused the sign-in."}"#,
    );
    assert_eq!(other.user_message(), "The provider refused the sign-in.");
    let expired =
        AuthError::from_response_parts(401, r#"{"error":"session_expired","message":""}"#);
    assert!(expired.needs_login());
    assert!(expired.user_message().contains("sign in again"));
    assert!(
        AuthError::Network("x".into())
            .user_message()
            .contains("connection")
    );
}

#[wasm_bindgen_test]
fn post_requests_carry_the_csrf_header() {
    let client = AuthClient::default();
    let req = client
        .post_request("/login", Some(&keyway_shared::LoginRequest::default()))
        .unwrap();
    assert_eq!(req.method(), "POST");
    assert!(req.url().ends_with("/bff/login"), "{}", req.url());
    let header = |req: &web_sys::Request, name: &str| req.headers().get(name).unwrap();
    assert_eq!(
        header(&req, CSRF_HEADER).as_deref(),
        Some(CSRF_HEADER_VALUE)
    );
    assert_eq!(
        header(&req, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(header(&req, "accept").as_deref(), Some("application/json"));

    let bodyless = client.post_request::<()>("/logout", None).unwrap();
    assert_eq!(header(&bodyless, CSRF_HEADER).as_deref(), Some("1"));
    assert_eq!(header(&bodyless, "content-type"), None);
}

#[wasm_bindgen_test]
fn get_requests_go_to_the_base() {
    let client = AuthClient::new("/auth/bff/");
    assert_eq!(client.url("/user"), "/auth/bff/user");
    let req = client.get_request("/user").unwrap();
    assert_eq!(req.method(), "GET");
    assert!(req.url().ends_with("/auth/bff/user"));
    assert_eq!(req.headers().get(CSRF_HEADER).unwrap(), None);
}

#[wasm_bindgen_test]
fn return_to_must_be_a_local_path() {
    assert_eq!(safe_return_to("/profile?tab=1"), "/profile?tab=1");
    assert_eq!(safe_return_to("//evil.example"), "/");
    assert_eq!(safe_return_to("/\\evil.example"), "/");
    assert_eq!(safe_return_to("https://evil.example/"), "/");
    assert_eq!(safe_return_to(""), "/");
}

#[wasm_bindgen_test]
fn login_button_renders_provider_and_label() {
    use leptos::prelude::*;

    let document = web_sys::window().unwrap().document().unwrap();
    let host = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&host).unwrap();
    let handle = leptos::mount::mount_to(host.clone().unchecked_into(), || {
        view! { <LoginButton provider="corp" return_to="/profile">"Sign in with Corp"</LoginButton> }
    });
    let button = host.query_selector("button.login-button").unwrap().unwrap();
    assert_eq!(
        button.get_attribute("data-provider").as_deref(),
        Some("corp")
    );
    assert_eq!(button.text_content().unwrap().trim(), "Sign in with Corp");
    drop(handle);
}

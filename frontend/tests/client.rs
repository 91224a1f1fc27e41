//! `AuthClient`, `Api` and the small pure parts, in the browser
//! (wasm-bindgen-test, headless Chromium), against a fake `fetch`.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use keyway_leptos::{
    AuthClient, AuthError, Method, callback_provider_from_path, parse_callback_query,
    safe_return_to,
};
use keyway_shared::{CSRF_HEADER, CSRF_HEADER_VALUE, CallbackRequest, ErrorBody, codes};
use serde::{Deserialize, Serialize};
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
fn parses_an_error_callback_query_and_drops_empty_values() {
    let req =
        parse_callback_query("error=access_denied&error_description=The+user+said+no&state=s");
    assert_eq!(req.code, None);
    assert_eq!(req.error.as_deref(), Some("access_denied"));
    assert_eq!(req.error_description.as_deref(), Some("The user said no"));
    assert_eq!(req.state.as_deref(), Some("s"));
    assert_eq!(
        parse_callback_query("?code=&state="),
        CallbackRequest::default()
    );
}

#[wasm_bindgen_test]
fn the_provider_comes_from_a_per_provider_redirect_uri() {
    assert_eq!(
        callback_provider_from_path("/callback/corp").as_deref(),
        Some("corp")
    );
    assert_eq!(
        callback_provider_from_path("/app/callback/my%20idp/").as_deref(),
        Some("my idp")
    );
    assert_eq!(callback_provider_from_path("/callback"), None);
    assert_eq!(callback_provider_from_path("/callback/"), None);
    assert_eq!(callback_provider_from_path("/mycallback/corp"), None);
    assert_eq!(callback_provider_from_path("/profile"), None);
}

#[wasm_bindgen_test]
fn return_to_must_be_a_local_path() {
    assert_eq!(safe_return_to("/profile?tab=1"), "/profile?tab=1");
    assert_eq!(safe_return_to("//evil.example"), "/");
    assert_eq!(safe_return_to("/\\evil.example"), "/");
    assert_eq!(safe_return_to("https://evil.example/"), "/");
    assert_eq!(safe_return_to("/x\ny"), "/");
    assert_eq!(safe_return_to(""), "/");
}

#[wasm_bindgen_test]
fn maps_error_bodies() {
    let err = AuthError::from_response_parts(
        400,
        r#"{"error":"invalid_state","message":"This sign-in was not started here."}"#,
    );
    assert_eq!(
        err,
        AuthError::Api {
            status: 400,
            body: ErrorBody::new(codes::INVALID_STATE, "This sign-in was not started here."),
        }
    );
    assert_eq!(err.code(), Some(codes::INVALID_STATE));
    assert!(!err.needs_login());
    let other = AuthError::from_response_parts(502, "<html>Bad Gateway</html>");
    assert_eq!(other, AuthError::Status(502));
    assert!(other.user_message().contains("502"));
    // A bare 401 (an API's own) needs a sign-in, but is not the BFF saying
    // the session is gone.
    let bare = AuthError::from_response_parts(401, "");
    assert!(bare.needs_login() && !bare.session_ended());
    let gone = AuthError::from_response_parts(401, UNAUTHENTICATED);
    assert!(gone.needs_login() && gone.session_ended());
}

#[wasm_bindgen_test]
fn messages_are_the_bffs_words() {
    // The BFF's message carries the provider's description once it has
    // accepted the state: it is shown as is.
    let denied = AuthError::from_response_parts(
        400,
        r#"{"error":"access_denied","message":"You declined the sign-in. The provider said: no thanks"}"#,
    );
    assert_eq!(
        denied.user_message(),
        "You declined the sign-in. The provider said: no thanks"
    );
    // Codes where plainer words help more than the BFF's.
    let state = AuthError::from_response_parts(400, r#"{"error":"invalid_state","message":"x"}"#);
    assert!(state.user_message().contains("no longer valid"));
    let expired =
        AuthError::from_response_parts(401, r#"{"error":"session_expired","message":""}"#);
    assert!(expired.user_message().contains("sign in again"));
    assert!(
        AuthError::Network("x".into())
            .user_message()
            .contains("connection")
    );
}

#[wasm_bindgen_test]
fn requests_ask_for_json_and_state_changes_carry_the_csrf_header() {
    let client = AuthClient::new("/auth/bff/");
    assert_eq!(client.url("/user"), "/auth/bff/user");
    let header = |req: &gloo_net::http::Request, name: &str| req.headers().get(name);
    let post = client
        .request(Method::POST, "/login")
        .json(&keyway_shared::LoginRequest::default())
        .unwrap();
    assert!(post.url().ends_with("/auth/bff/login"), "{}", post.url());
    assert_eq!(
        header(&post, CSRF_HEADER).as_deref(),
        Some(CSRF_HEADER_VALUE)
    );
    assert_eq!(
        header(&post, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(header(&post, "accept").as_deref(), Some("application/json"));
    let get = client.request(Method::GET, "/user").build().unwrap();
    assert_eq!(header(&get, CSRF_HEADER), None);
    assert_eq!(header(&get, "accept").as_deref(), Some("application/json"));
}

#[wasm_bindgen_test]
async fn login_posts_the_wire_type_with_serde() {
    fake_fetch().await;
    route(
        "POST /bff/login",
        200,
        r#"{"authorization_url":"https://idp.example/auth?x=1"}"#,
    );
    let answer = AuthClient::default()
        .login(Some("corp"), Some("/orders?status=open"))
        .await
        .unwrap();
    assert_eq!(answer.authorization_url, "https://idp.example/auth?x=1");
    let call = &calls_to("/bff/login")[0];
    assert_eq!(call.csrf.as_deref(), Some("1"));
    assert_eq!(
        json(&call.body),
        serde_json::json!({"provider": "corp", "return_to": "/orders?status=open"})
    );
}

#[wasm_bindgen_test]
async fn callback_goes_to_the_providers_endpoint() {
    fake_fetch().await;
    let done = format!(r#"{{"user":{ADA},"return_to":"/x"}}"#);
    route("POST /bff/callback", 200, &done);
    route("POST /bff/callback/corp", 200, &done);
    let client = AuthClient::default();
    let request = parse_callback_query("?code=c&state=s");
    client.callback(None, &request).await.unwrap();
    let answer = client.callback(Some("corp"), &request).await.unwrap();
    assert_eq!(answer.user.name.as_deref(), Some("Ada"));
    let paths: Vec<String> = calls().into_iter().map(|c| c.path).collect();
    assert_eq!(paths, ["/bff/callback", "/bff/callback/corp"]);
    assert_eq!(
        json(&calls()[1].body),
        serde_json::json!({"code": "c", "state": "s"})
    );
}

#[wasm_bindgen_test]
async fn user_is_none_without_a_session_and_an_error_on_failure() {
    fake_fetch().await;
    route("/bff/user", 401, UNAUTHENTICATED);
    assert_eq!(AuthClient::default().user().await, Ok(None));
    route(
        "/bff/user",
        503,
        r#"{"error":"session_store_unavailable","message":"Try later."}"#,
    );
    let err = AuthClient::default().user().await.unwrap_err();
    assert_eq!(err.code(), Some(codes::SESSION_STORE_UNAVAILABLE));
    route("/bff/user", 200, "<html>");
    assert!(matches!(
        AuthClient::default().user().await,
        Err(AuthError::Decode(_))
    ));
}

#[derive(Debug, PartialEq, Deserialize)]
struct Order {
    id: u32,
    item: String,
}

#[derive(Serialize)]
struct NewOrder<'a> {
    item: &'a str,
}

#[wasm_bindgen_test]
async fn the_api_helper_sends_the_csrf_header_on_every_method_and_reads_serde_types() {
    fake_fetch().await;
    route(
        "GET /bff/api/orders/orders",
        200,
        r#"[{"id":1,"item":"tea","extra":true}]"#,
    );
    route(
        "POST /bff/api/orders/orders",
        201,
        r#"{"id":2,"item":"cake"}"#,
    );
    route(
        "PUT /bff/api/orders/orders/2",
        200,
        r#"{"id":2,"item":"pie"}"#,
    );
    route(
        "PATCH /bff/api/orders/orders/2",
        200,
        r#"{"id":2,"item":"tart"}"#,
    );
    route("DELETE /bff/api/orders/orders/2", 204, "");
    let api = AuthClient::default().api("orders");
    assert_eq!(api.url("orders?x=1"), "/bff/api/orders/orders?x=1");
    let list: Vec<Order> = api.get("/orders?status=open").await.unwrap();
    assert_eq!(
        list,
        [Order {
            id: 1,
            item: "tea".into()
        }]
    );
    let made: Order = api
        .post("/orders", &NewOrder { item: "cake" })
        .await
        .unwrap();
    assert_eq!(made.id, 2);
    let put: Order = api
        .put("orders/2", &NewOrder { item: "pie" })
        .await
        .unwrap();
    assert_eq!(put.item, "pie");
    let patched: Order = api
        .patch("orders/2", &NewOrder { item: "tart" })
        .await
        .unwrap();
    assert_eq!(patched.item, "tart");
    let () = api.delete("/orders/2").await.unwrap();

    let all = calls();
    let methods: Vec<&str> = all.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(methods, ["GET", "POST", "PUT", "PATCH", "DELETE"]);
    for call in &all {
        assert_eq!(call.csrf.as_deref(), Some("1"), "{call:?}");
        assert_eq!(call.accept.as_deref(), Some("application/json"), "{call:?}");
    }
    assert_eq!(all[0].search, "?status=open");
    assert_eq!(json(&all[1].body), serde_json::json!({"item": "cake"}));
    assert_eq!(all[1].content_type.as_deref(), Some("application/json"));

    // A body that is not the caller's type is a decode error.
    route("GET /bff/api/orders/bad", 200, r#"{"id":"one"}"#);
    assert!(matches!(
        api.get::<Order>("/bad").await,
        Err(AuthError::Decode(_))
    ));
}

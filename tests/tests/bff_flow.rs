//! The BFF against the real oidc-provider over HTTP, as the SPA drives it
//! (no browser): the full flow, and one named test per refusal the contract
//! and the security checklist require.

use keyway_shared::CallbackRequest;
use keyway_tests::bff::{SpaClient, TestBff, client_for, env_for, reserve, stack};
use keyway_tests::bff::{assert_error, json_of};
use keyway_tests::provider::{Consent, ProviderConfig, TestProvider};
use serde_json::{Value, json};

async fn authorization_code_requests(provider: &TestProvider) -> u64 {
    provider.stats().await.expect("stats")["token_requests"]["authorization_code"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn full_flow_login_user_userinfo_logout() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);

    let (s, providers) = json_of(spa.get("/bff/providers").await).await;
    assert_eq!(s, 200);
    assert_eq!(providers[0]["kind"], "oidc");
    assert_eq!(providers[0]["id"], "default");

    let (s, body) = json_of(spa.get("/bff/user").await).await;
    assert_error(s, &body, 401, "unauthenticated");

    let url = spa.start_login(Some("/profile")).await;
    let parsed = url::Url::parse(&url).unwrap();
    let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["redirect_uri"], bff.url("/callback"));
    assert!(q["state"].len() >= 22 && q["nonce"].len() >= 22);

    let cb = spa
        .authorize(&provider, &url, "alice", "wonderland", Consent::Allow)
        .await;
    assert!(cb.iss.is_some(), "oidc-provider sends iss (RFC 9207)");
    let (s, body) = json_of(spa.callback(&cb).await).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["return_to"], "/profile");
    assert_eq!(body["user"]["sub"], "alice");
    assert_eq!(body["user"]["name"], "Alice Liddell");
    assert_eq!(body["user"]["email"], "alice@example.com");
    assert_eq!(body["user"]["email_verified"], true);
    assert!(body["user"]["expires_at"].as_u64().unwrap() > keyway_backend::internals::now_secs());

    let (s, user) = json_of(spa.get("/bff/user").await).await;
    assert_eq!(s, 200);
    assert_eq!(user["sub"], "alice");

    let (s, info) = json_of(spa.get("/bff/userinfo").await).await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["email"], "alice@example.com");

    let r = spa.post("/bff/logout", &json!({})).await;
    let set_cookie: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let (s, body) = json_of(r).await;
    assert_eq!(s, 200);
    let end = body["end_session_url"]
        .as_str()
        .expect("oidc-provider has an end_session_endpoint");
    assert!(
        end.starts_with(&provider.issuer)
            && end.contains("id_token_hint=")
            && end.contains("post_logout_redirect_uri=")
    );
    assert!(
        set_cookie
            .iter()
            .any(|c| c.starts_with("keyway=;") && c.contains("Max-Age=0")),
        "{set_cookie:?}"
    );
    let (s, body) = json_of(spa.get("/bff/user").await).await;
    assert_error(s, &body, 401, "unauthenticated");
}

#[tokio::test]
async fn missing_csrf_header_is_refused() {
    let (_provider, bff) = stack().await;
    let http = reqwest::Client::new();
    for path in ["/bff/login", "/bff/callback", "/bff/logout"] {
        let r = http
            .post(bff.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let (s, body) = json_of(r).await;
        assert_error(s, &body, 403, "csrf_header_missing");
    }
    let r = http
        .post(bff.url("/bff/login"))
        .header("x-csrf", "0")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (s, body) = json_of(r).await;
    assert_error(s, &body, 403, "csrf_header_missing");
    // Cross-site requests are refused even with the header (defence in depth).
    let r = http
        .post(bff.url("/bff/login"))
        .header("x-csrf", "1")
        .header("sec-fetch-site", "cross-site")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (s, body) = json_of(r).await;
    assert_error(s, &body, 403, "cross_site_request");
    let r = http
        .post(bff.url("/bff/login"))
        .header("x-csrf", "1")
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (s, body) = json_of(r).await;
    assert_error(s, &body, 403, "cross_site_request");
}

/// No CORS for other origins: a preflight for the `X-CSRF` header never
/// succeeds (no `Access-Control-Allow-*`, not a 2xx), so another site's page
/// cannot send the header; and no response to another origin carries CORS
/// headers that would let it read the answer.
#[tokio::test]
async fn no_cors_headers_for_other_origins_and_preflights_fail() {
    let (_provider, bff) = stack().await;
    let http = reqwest::Client::new();
    let no_cors = |r: &reqwest::Response, what: &str| {
        let cors: Vec<_> = r
            .headers()
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{what}: CORS headers {cors:?}");
    };
    for path in [
        "/bff/login",
        "/bff/callback",
        "/bff/logout",
        "/bff/api/x/y",
        "/bff/user",
    ] {
        for method in ["POST", "GET", "DELETE"] {
            let r = http
                .request(reqwest::Method::OPTIONS, bff.url(path))
                .header("origin", "https://evil.example")
                .header("access-control-request-method", method)
                .header("access-control-request-headers", "x-csrf, content-type")
                .send()
                .await
                .unwrap();
            no_cors(&r, &format!("preflight {method} {path}"));
            assert!(
                !r.status().is_success(),
                "preflight {method} {path} answered {}",
                r.status()
            );
        }
    }
    // Simple requests from another origin: no CORS headers either.
    let r = http
        .get(bff.url("/bff/user"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    no_cors(&r, "GET /bff/user");
    let r = http
        .get(bff.url("/bff/providers"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    no_cors(&r, "GET /bff/providers");
    let r = http
        .post(bff.url("/bff/login"))
        .header("origin", "https://evil.example")
        .header("x-csrf", "1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    no_cors(&r, "POST /bff/login");
    let (s, body) = json_of(r).await;
    assert_error(s, &body, 403, "cross_site_request");
}

#[tokio::test]
async fn return_to_attacks_are_refused() {
    let (_provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    for bad in [
        "//evil.example",
        "https://evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
        "/%2F%2Fevil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%09/evil.example",
        "/\u{0}x",
        "/\r\nx",
        "/%0d%0aSet-Cookie:a=b",
        "/%252F%252Fevil.example",
        "evil",
        "",
        "\\\\evil.example",
        "data:text/html,hi",
    ] {
        let (s, body) = json_of(spa.post("/bff/login", &json!({"return_to": bad})).await).await;
        assert_error(s, &body, 400, "invalid_return_to");
        // The link form too.
        let r = spa
            .http
            .get(bff.url("/bff/login"))
            .query(&[("return_to", bad)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "GET accepted {bad:?}");
    }
    let (s, _) = json_of(
        spa.post("/bff/login", &json!({"return_to": "/profile?tab=1"}))
            .await,
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn unknown_provider_and_get_login_redirect() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    let (s, body) = json_of(spa.post("/bff/login", &json!({"provider": "nope"})).await).await;
    assert_error(s, &body, 400, "unknown_provider");
    let r = spa
        .http
        .get(bff.url("/bff/login?return_to=/profile"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&provider.issuer), "{location}");
    assert!(
        r.headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("keyway-login-")
    );
    // The link flow completes like the JSON one.
    let cb = spa
        .authorize(&provider, &location, "bob", "builder", Consent::Allow)
        .await;
    let (s, body) = json_of(spa.callback(&cb).await).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["return_to"], "/profile");
    assert_eq!(body["user"]["name"], "Bob the Builder");
}

#[tokio::test]
async fn callback_from_a_browser_that_did_not_start_the_login_is_refused() {
    let (provider, bff) = stack().await;
    let victim = SpaClient::new(&bff);
    let attacker = SpaClient::new(&bff);
    let url = victim.start_login(None).await;
    let cb = victim
        .authorize(&provider, &url, "alice", "wonderland", Consent::Allow)
        .await;
    let before = authorization_code_requests(&provider).await;
    let (s, body) = json_of(attacker.callback(&cb).await).await;
    assert_error(s, &body, 400, "invalid_state");
    assert_eq!(
        authorization_code_requests(&provider).await,
        before,
        "nothing may be sent to the provider"
    );
    let (s, _) = json_of(attacker.get("/bff/user").await).await;
    assert_eq!(s, 401);
    // The real browser still completes its login.
    let (s, body) = json_of(victim.callback(&cb).await).await;
    assert_eq!(s, 200, "{body}");
}

#[tokio::test]
async fn wrong_or_missing_state_is_refused_without_calling_the_provider() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    let url = spa.start_login(None).await;
    let cb = spa
        .authorize(&provider, &url, "alice", "wonderland", Consent::Allow)
        .await;
    let before = authorization_code_requests(&provider).await;
    let wrong = CallbackRequest {
        state: Some("A".repeat(43)),
        ..cb.clone()
    };
    let (s, body) = json_of(spa.callback(&wrong).await).await;
    assert_error(s, &body, 400, "invalid_state");
    let missing = CallbackRequest {
        state: None,
        ..cb.clone()
    };
    let (s, body) = json_of(spa.callback(&missing).await).await;
    assert_error(s, &body, 400, "invalid_state");
    assert_eq!(authorization_code_requests(&provider).await, before);
    let (s, _) = json_of(spa.get("/bff/user").await).await;
    assert_eq!(s, 401, "no session after a refused callback");
}

#[tokio::test]
async fn replayed_callback_is_refused() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    let url = spa.start_login(None).await;
    let cb = spa
        .authorize(&provider, &url, "alice", "wonderland", Consent::Allow)
        .await;
    let (s, _) = json_of(spa.callback(&cb).await).await;
    assert_eq!(s, 200);
    let before = authorization_code_requests(&provider).await;
    let (s, body) = json_of(spa.callback(&cb).await).await;
    assert_error(s, &body, 400, "invalid_state");
    assert_eq!(
        authorization_code_requests(&provider).await,
        before,
        "the code is exchanged once"
    );
}

#[tokio::test]
async fn iss_mismatch_is_refused() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    let url = spa.start_login(None).await;
    let cb = spa
        .authorize(&provider, &url, "alice", "wonderland", Consent::Allow)
        .await;
    let before = authorization_code_requests(&provider).await;
    let forged = CallbackRequest {
        iss: Some("https://evil.example".into()),
        ..cb.clone()
    };
    let (s, body) = json_of(spa.callback(&forged).await).await;
    assert_error(s, &body, 400, "issuer_mismatch");
    // oidc-provider advertises authorization_response_iss_parameter_supported: a missing iss is refused too.
    let url = spa.start_login(None).await;
    let cb = spa
        .authorize(&provider, &url, "alice", "wonderland", Consent::Allow)
        .await;
    let stripped = CallbackRequest { iss: None, ..cb };
    let (s, body) = json_of(spa.callback(&stripped).await).await;
    assert_error(s, &body, 400, "issuer_mismatch");
    assert_eq!(authorization_code_requests(&provider).await, before);
    let (s, _) = json_of(spa.get("/bff/user").await).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn access_denied_is_passed_on() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    let url = spa.start_login(None).await;
    let cb = spa
        .authorize(&provider, &url, "alice", "wonderland", Consent::Deny)
        .await;
    assert_eq!(cb.error.as_deref(), Some("access_denied"));
    let (s, body) = json_of(spa.callback(&cb).await).await;
    assert_error(s, &body, 400, "access_denied");
    assert!(
        body["message"].as_str().unwrap().contains("declined"),
        "{body}"
    );
    // The pending login is cleared: replaying the state now is invalid.
    let replay = CallbackRequest {
        error: None,
        error_description: None,
        code: Some("x".into()),
        ..cb
    };
    let (s, body) = json_of(spa.callback(&replay).await).await;
    assert_error(s, &body, 400, "invalid_state");
    let (s, _) = json_of(spa.get("/bff/user").await).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn cookie_attributes_on_loopback_http() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    let r = spa.post("/bff/login", &json!({})).await;
    let login_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(login_cookie.starts_with("keyway-login-"), "{login_cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(login_cookie.contains(attr), "{login_cookie} lacks {attr}");
    }
    let url: Value = r.json().await.unwrap();
    let cb = spa
        .authorize(
            &provider,
            url["authorization_url"].as_str().unwrap(),
            "alice",
            "wonderland",
            Consent::Allow,
        )
        .await;
    let r = spa.callback(&cb).await;
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("keyway="))
        .expect("session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(session.contains(attr), "{session} lacks {attr}");
    }
    assert!(
        !session.contains("Secure") && !session.contains("Domain"),
        "{session}"
    );
    // The session id is 128 bits (22 base64url characters).
    let value = session
        .trim_start_matches("keyway=")
        .split(';')
        .next()
        .unwrap();
    assert_eq!(value.len(), 22);
    // The pending-login cookie is removed once its login completes: the
    // one that was set at the start, by name.
    let login_name = login_cookie.split('=').next().unwrap();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("{login_name}=;")) && c.contains("Max-Age=0")),
        "{cookies:?}"
    );
}

#[tokio::test]
async fn session_id_is_rotated_at_login() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    let first = spa.login(&provider, "alice", "wonderland").await;
    let first_cookie = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("keyway="))
        .unwrap();
    // The provider remembers alice: the second login is a silent re-login.
    let second = spa.login(&provider, "alice", "wonderland").await;
    let second_cookie = second
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("keyway="))
        .unwrap();
    let id = |c: &str| c.split(';').next().unwrap().to_owned();
    assert_ne!(id(&first_cookie), id(&second_cookie));
    // The old id is dead.
    let old = reqwest::Client::new()
        .get(bff.url("/bff/user"))
        .header("cookie", id(&first_cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401);
    let (s, user) = json_of(spa.get("/bff/user").await).await;
    assert_eq!(s, 200);
    assert_eq!(user["sub"], "alice");
}

fn contains_jwt(text: &str) -> bool {
    // A JWS compact serialisation: three base64url parts, the first a JSON header.
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .any(|w| w.starts_with("eyJ") && w.matches('.').count() >= 2)
}

#[tokio::test]
async fn no_token_or_jwt_in_any_response() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    let mut seen = Vec::new();
    async fn record(seen: &mut Vec<String>, r: reqwest::Response) -> Value {
        for (k, v) in r.headers() {
            seen.push(format!("{k}: {}", v.to_str().unwrap_or("")));
        }
        let text = r.text().await.unwrap();
        seen.push(text.clone());
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
    let body = record(&mut seen, spa.post("/bff/login", &json!({})).await).await;
    let cb = spa
        .authorize(
            &provider,
            body["authorization_url"].as_str().unwrap(),
            "alice",
            "wonderland",
            Consent::Allow,
        )
        .await;
    let code = cb.code.clone().unwrap();
    record(&mut seen, spa.callback(&cb).await).await;
    record(&mut seen, spa.get("/bff/user").await).await;
    record(&mut seen, spa.get("/bff/userinfo").await).await;
    record(&mut seen, spa.post("/bff/logout", &json!({})).await).await;
    let all = seen.join("\n");
    // The end-session URL carries the ID token as id_token_hint for the provider: that is the one
    // place a JWT may appear, inside end_session_url. Remove that field and check the rest.
    let without_hint: String = all
        .split('\n')
        .map(|l| if l.contains("end_session_url") { "" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !contains_jwt(&without_hint),
        "a JWT reached the browser: {without_hint}"
    );
    assert!(!all.contains(&code), "the code was echoed");
    assert!(
        !all.to_lowercase().contains("access_token")
            && !all.to_lowercase().contains("refresh_token")
    );
}

#[tokio::test]
async fn malformed_json_and_wrong_shapes_are_400() {
    let (_provider, bff) = stack().await;
    let http = reqwest::Client::new();
    let send = |body: &'static str, ct: &'static str| {
        http.post(bff.url("/bff/login"))
            .header("x-csrf", "1")
            .header("content-type", ct)
            .body(body)
            .send()
    };
    for (body, ct) in [
        ("{not json", "application/json"),
        ("[1,2]", "application/json"),
        ("{\"provider\": 5}", "application/json"),
        ("{}", "text/plain"),
    ] {
        let (s, b) = json_of(send(body, ct).await.unwrap()).await;
        assert_error(s, &b, 400, "invalid_request");
    }
    let r = http
        .post(bff.url("/bff/callback"))
        .header("x-csrf", "1")
        .header("content-type", "application/json")
        .body("{\"code\": [")
        .send()
        .await
        .unwrap();
    let (s, b) = json_of(r).await;
    assert_error(s, &b, 400, "invalid_request");
}

#[tokio::test]
async fn two_mib_body_is_413() {
    let (_provider, bff) = stack().await;
    let big = format!("{{\"return_to\":\"/{}\"}}", "a".repeat(2 * 1024 * 1024));
    let r = reqwest::Client::new()
        .post(bff.url("/bff/login"))
        .header("x-csrf", "1")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let (s, b) = json_of(r).await;
    assert_error(s, &b, 413, "payload_too_large");
}

#[tokio::test]
async fn garbage_session_cookie_is_anonymous() {
    let (_provider, bff) = stack().await;
    let http = reqwest::Client::new();
    for cookie in [
        "keyway=garbage",
        "keyway=",
        "keyway=AAAAAAAAAAAAAAAAAAAAAA",
        "keyway=%ZZ; keyway-login=%7F",
        "=;;;",
        "keyway=\"x\"",
    ] {
        let r = http
            .get(bff.url("/bff/user"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let (s, b) = json_of(r).await;
        assert_error(s, &b, 401, "unauthenticated");
    }
    let r = http
        .post(bff.url("/bff/callback"))
        .header("x-csrf", "1")
        .header("cookie", "keyway-login=garbage")
        .json(&json!({"code":"c","state":"s"}))
        .send()
        .await
        .unwrap();
    let (s, b) = json_of(r).await;
    assert_error(s, &b, 400, "invalid_state");
}

#[tokio::test]
async fn provider_down_during_the_callback_is_a_quick_502() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    let url = spa.start_login(None).await;
    let cb = spa
        .authorize(&provider, &url, "alice", "wonderland", Consent::Allow)
        .await;
    drop(provider); // kills the provider process
    let started = std::time::Instant::now();
    let (s, body) = json_of(spa.callback(&cb).await).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(s == 502 || s == 504, "{s} {body}");
    assert!(
        body["error"] == "token_exchange_failed" || body["error"] == "provider_timeout",
        "{body}"
    );
    let (s, _) = json_of(spa.get("/bff/user").await).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn old_cookie_is_dead_after_logout() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    let r = spa.login(&provider, "alice", "wonderland").await;
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("keyway="))
        .unwrap();
    let pair = cookie.split(';').next().unwrap().to_owned();
    assert_eq!(spa.post("/bff/logout", &json!({})).await.status(), 200);
    let r = reqwest::Client::new()
        .get(bff.url("/bff/user"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = reqwest::Client::new()
        .get(bff.url("/bff/userinfo"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn two_logins_in_parallel_in_one_browser_each_complete() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    let url_a = spa.start_login(Some("/a")).await;
    let url_b = spa.start_login(Some("/b")).await;
    let cb_a = spa
        .authorize(&provider, &url_a, "alice", "wonderland", Consent::Allow)
        .await;
    let cb_b = spa
        .authorize(&provider, &url_b, "alice", "wonderland", Consent::Allow)
        .await;
    let (s, body_b) = json_of(spa.callback(&cb_b).await).await;
    assert_eq!(s, 200, "{body_b}");
    assert_eq!(body_b["return_to"], "/b");
    let (s, body_a) = json_of(spa.callback(&cb_a).await).await;
    assert_eq!(s, 200, "{body_a}");
    assert_eq!(
        body_a["return_to"], "/a",
        "tab A completes with its own state"
    );
    // Neither state completes twice, and a swapped state/code pair fails.
    let swapped = CallbackRequest {
        state: cb_a.state.clone(),
        ..cb_b.clone()
    };
    let (s, _) = json_of(spa.callback(&swapped).await).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn sqlite_store_keeps_the_session_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keyway.db");
    let reserved = reserve().await;
    let origin = reserved.origin.clone();
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&origin)],
        ..ProviderConfig::default()
    })
    .await
    .unwrap();
    let mut env = env_for(&origin, &provider.issuer);
    env.insert(
        "KEYWAY_SESSION_STORE".into(),
        format!("sqlite://{}", db.display()),
    );
    env.insert(
        "KEYWAY_SESSION_KEY".into(),
        keyway_tests::bff::TEST_SESSION_KEY.into(),
    );
    let bff = TestBff::start(reserved, &env).await.unwrap();
    let spa = SpaClient::new(&bff);
    let (s, _) = json_of(spa.login(&provider, "alice", "wonderland").await).await;
    assert_eq!(s, 200);
    bff.stop().await;

    // Same port, same file: the browser's cookie still works.
    let bff = TestBff::start(keyway_tests::bff::rebind(&origin).await, &env)
        .await
        .unwrap();
    let (s, user) = json_of(spa.get("/bff/user").await).await;
    assert_eq!(s, 200, "{user}");
    assert_eq!(user["sub"], "alice");
    let (s, info) = json_of(spa.get("/bff/userinfo").await).await;
    assert_eq!(s, 200, "{info}");
    drop(bff);
    // Tokens are not in the clear in the file.
    let raw = std::fs::read(&db).unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(!contains_jwt(&text), "an ID token is stored in the clear");
}

#[tokio::test]
async fn health_and_readiness() {
    let (_provider, bff) = stack().await;
    let r = reqwest::get(bff.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    let r = reqwest::Client::new()
        .get(bff.url("/readyz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    // An unknown /bff path is a JSON 404, never the SPA.
    let (s, b) = json_of(reqwest::get(bff.url("/bff/nope")).await.unwrap()).await;
    assert_error(s, &b, 404, "not_found");
}

#[tokio::test]
async fn readiness_is_503_until_the_provider_answers() {
    // A BFF whose provider is not running yet is live but not ready.
    let reserved = reserve().await;
    let env = env_for(&reserved.origin, "http://127.0.0.1:9");
    let config = keyway_backend::Config::from_sources(None, &env).unwrap();
    let origin = reserved.origin.clone();
    let app = keyway_backend::router(config).await.unwrap();
    let task = tokio::spawn(async move { axum::serve(reserved.listener, app).await });
    let base = origin.as_str().trim_end_matches('/').to_owned();
    let h = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(h.status(), 200);
    let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(r.status(), 503);
    task.abort();
}

//! Login journeys against the real test provider (issue 18): the login
//! options (`prompt`, `max_age`, `acr_values`, `login_hint`) and their bad
//! input, `prompt=login`, `max_age=0`, `select_account`, silent sign-in's
//! answers, and step-up (`acr` checked at the callback, APIs that require a
//! level, RFC 9470 challenges of upstreams).

use keyway_backend::internals::now_secs;
use keyway_tests::bff::{
    SpaClient, TestBff, assert_error, client_for, env_for, json_of, reserve, stack,
};
use keyway_tests::provider::{ProviderConfig, TestProvider};
use keyway_tests::wait::eventually;
use keyway_tests::walk::{ACR_MFA, ONE_TIME_CODE, Page, Person, walk};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// `POST /bff/login` with `body`: the status, the JSON and whether a cookie was set.
async fn start(spa: &SpaClient, body: Value) -> (u16, Value, bool) {
    let r = spa.post("/bff/login", &body).await;
    let cookie = r.headers().get("set-cookie").is_some();
    let (s, v) = json_of(r).await;
    (s, v, cookie)
}

/// Starts a login with `body`, walks the provider as `person`, posts the
/// callback: the callback's status and JSON, and the pages shown.
async fn journey(
    spa: &SpaClient,
    provider: &TestProvider,
    body: Value,
    person: &Person<'_>,
) -> (u16, Value, Vec<Page>) {
    let (s, started, _) = start(spa, body).await;
    assert_eq!(s, 200, "{started}");
    let url = started["authorization_url"].as_str().unwrap();
    let (back, pages) = walk(provider, &spa.provider_browser, url, person)
        .await
        .expect("the walk at the provider");
    let cb = keyway_tests::bff::callback_request(&back);
    let (s, v) = json_of(spa.callback(&cb).await).await;
    (s, v, pages)
}

async fn user(spa: &SpaClient) -> (u16, Value) {
    json_of(spa.get("/bff/user").await).await
}

fn alice() -> Person<'static> {
    Person::new("alice", "wonderland")
}

#[tokio::test]
async fn bad_login_options_get_the_contracts_400_naming_them_and_change_nothing() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    let (s, body, _) = journey(&spa, &provider, json!({}), &alice()).await;
    assert_eq!(s, 200, "{body}");
    let (_, before) = user(&spa).await;
    let stats_before = provider.stats().await.unwrap();
    let long_hint = "a".repeat(10 * 1024);
    let cases = [
        (json!({"prompt": "sometimes"}), "prompt"),
        (json!({"max_age": -1}), "max_age"),
        (json!({"login_hint": long_hint}), "login_hint"),
        (json!({"acr_values": "urn:keyway:mfa \"x\""}), "acr_values"),
        (
            json!({"acr_values": "urn:other:level"}),
            "acr_values=urn:other:level",
        ),
        // The test provider does not advertise prompt=create.
        (json!({"prompt": "create"}), "prompt=create"),
    ];
    for (body, named) in cases {
        let (s, v, cookie) = start(&spa, body.clone()).await;
        assert_error(s, &v, 400, "invalid_request");
        let message = v["message"].as_str().unwrap();
        assert!(message.contains(named), "{body} -> {message}");
        assert!(
            !message.contains("aaaaaaaa"),
            "the input is not quoted: {message}"
        );
        assert!(!cookie, "no pending login for {body}");
    }
    // The same through GET /bff/login (links without JS).
    let r = spa.get("/bff/login?prompt=sometimes").await;
    assert!(r.headers().get("set-cookie").is_none());
    let (s, v) = json_of(r).await;
    assert_error(s, &v, 400, "invalid_request");
    // Nothing changed: the session, the provider never asked.
    assert_eq!(user(&spa).await, (200, before));
    assert_eq!(provider.stats().await.unwrap(), stats_before);
}

#[tokio::test]
async fn options_reach_the_provider_only_as_asked() {
    let (_provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    let (s, v, _) = start(
        &spa,
        json!({"prompt": "login", "max_age": 0, "acr_values": ACR_MFA, "login_hint": "alice@example.com"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let url = url::Url::parse(v["authorization_url"].as_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["prompt"], "login");
    assert_eq!(q["max_age"], "0");
    assert_eq!(q["acr_values"], ACR_MFA);
    assert_eq!(q["login_hint"], "alice@example.com");
    let (_, v, _) = start(&spa, json!({})).await;
    let plain = v["authorization_url"].as_str().unwrap();
    for name in ["prompt=", "max_age=", "acr_values=", "login_hint="] {
        assert!(!plain.contains(name), "{plain}");
    }
}

#[tokio::test]
async fn prompt_login_forces_the_login_page_and_max_age_0_a_fresh_auth_time() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    let (s, first, pages) = journey(&spa, &provider, json!({}), &alice()).await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(pages, [Page::Login, Page::Consent]);
    let first_auth = first["user"]["auth_time"].as_u64().expect("auth_time");

    // The provider remembers alice: no page at all.
    let (s, _, pages) = journey(&spa, &provider, json!({}), &alice()).await;
    assert_eq!((s, pages), (200, vec![]));
    // prompt=login: the login page again, provider session or not.
    let (s, _, pages) = journey(&spa, &provider, json!({"prompt": "login"}), &alice()).await;
    assert_eq!((s, pages), (200, vec![Page::Login]));

    // max_age=0: authenticated again, so auth_time is new.
    eventually(Duration::from_secs(3), "a second passes", || async {
        now_secs() > first_auth
    })
    .await;
    let before = now_secs();
    let (s, v, pages) = journey(&spa, &provider, json!({"max_age": 0}), &alice()).await;
    assert_eq!((s, pages), (200, vec![Page::Login]), "{v}");
    let (_, me) = user(&spa).await;
    let fresh = me["auth_time"].as_u64().expect("auth_time in /bff/user");
    assert!(fresh >= before && fresh > first_auth, "{fresh} vs {before}");
}

#[tokio::test]
async fn select_account_reaches_the_account_choice_and_switches_users() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    let (s, _, _) = journey(&spa, &provider, json!({}), &alice()).await;
    assert_eq!(s, 200);
    // Continue as alice.
    let body = json!({"prompt": "select_account"});
    let (s, v, pages) = journey(&spa, &provider, body.clone(), &alice()).await;
    assert_eq!((s, pages), (200, vec![Page::SelectAccount]), "{v}");
    assert_eq!(v["user"]["sub"], "alice");
    // Another account: bob.
    let bob = Person {
        other_account: true,
        ..Person::new("bob", "builder")
    };
    let (s, v, pages) = journey(&spa, &provider, body, &bob).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(pages, [Page::SelectAccount, Page::Consent]);
    assert_eq!(user(&spa).await.1["sub"], "bob");
}

#[tokio::test]
async fn silent_sign_in_succeeds_with_a_provider_session_and_says_login_required_without() {
    let (provider, bff) = stack().await;
    let spa = SpaClient::new(&bff);
    // No provider session: the provider answers login_required at once.
    let (s, v, pages) = journey(&spa, &provider, json!({"prompt": "none"}), &alice()).await;
    assert_eq!(pages, []);
    assert_error(s, &v, 400, "login_required");
    assert_eq!(user(&spa).await.0, 401);
    // With one: signed in without a page.
    let (s, _, _) = journey(&spa, &provider, json!({}), &alice()).await;
    assert_eq!(s, 200);
    // Another browser tab of the same person: no BFF cookie, the same
    // provider session.
    let mut fresh = SpaClient::new(&bff);
    fresh.provider_browser = spa.provider_browser.clone();
    let (s, v, pages) = journey(
        &fresh,
        &provider,
        json!({"prompt": "none", "return_to": "/here"}),
        &alice(),
    )
    .await;
    assert_eq!((s, pages), (200, vec![]), "{v}");
    assert_eq!(v["return_to"], "/here");
    let metrics = fresh.get("/metrics").await.text().await.unwrap();
    for line in [
        r#"keyway_logins_total{provider="default",outcome="started",kind="silent"} 2"#,
        r#"keyway_logins_total{provider="default",outcome="completed",kind="silent"} 1"#,
        r#"keyway_logins_total{provider="default",outcome="failed",kind="silent"} 1"#,
        r#"keyway_logins_total{provider="default",outcome="completed",kind="interactive"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

/// A stub upstream: counts calls; with `challenge`, answers every call 401
/// with that `WWW-Authenticate`, else 200 `{"ok":true}`.
async fn stub_upstream(challenge: Option<&'static str>) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            match challenge {
                Some(c) => (
                    axum::http::StatusCode::UNAUTHORIZED,
                    [("www-authenticate", c)],
                    "{}",
                )
                    .into_response(),
                None => axum::Json(json!({"ok": true})).into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, calls)
}

use axum::response::IntoResponse;

const CHALLENGE: &str = r#"Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="urn:keyway:mfa", max_age=300"#;

async fn step_up_stack(skew: &str) -> (TestProvider, TestBff, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (strong, strong_calls) = stub_upstream(None).await;
    let (challenging, challenged_calls) = stub_upstream(Some(CHALLENGE)).await;
    let reserved = reserve().await;
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&reserved.origin)],
        ..ProviderConfig::default()
    })
    .await
    .unwrap();
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_CLOCK_SKEW".into(), skew.into());
    let apis = format!(
        "[[apis]]\nname = \"strong\"\nurl = \"{strong}\"\nrequire_acr = [\"{ACR_MFA}\"]\n\n\
         [[apis]]\nname = \"fresh\"\nurl = \"{strong}\"\nmax_auth_age = \"2s\"\n\n\
         [[apis]]\nname = \"challenging\"\nurl = \"{challenging}\"\n"
    );
    let bff = TestBff::start_with_file(reserved, &apis, &env)
        .await
        .unwrap();
    (provider, bff, strong_calls, challenged_calls)
}

/// `GET` through the API proxy (with `X-CSRF: 1`).
async fn api(spa: &SpaClient, bff: &TestBff, path: &str) -> (u16, Value) {
    let r = spa.http.get(bff.url(path)).header("x-csrf", "1").send();
    json_of(r.await.unwrap()).await
}

#[tokio::test]
async fn step_up_before_and_after_the_stronger_login_and_a_lower_acr_is_refused() {
    let (provider, bff, strong_calls, _) = step_up_stack("60s").await;
    let spa = SpaClient::new(&bff);
    let (s, v, _) = journey(&spa, &provider, json!({}), &alice()).await;
    assert_eq!(s, 200, "{v}");
    // (The provider names the level only when one is asked for.)
    let acr_before = v["user"].get("acr").cloned();
    assert_ne!(acr_before.as_ref().and_then(Value::as_str), Some(ACR_MFA));

    // Below the API's level: 401 step_up_required, the upstream not called.
    let (s, v) = api(&spa, &bff, "/bff/api/strong/orders").await;
    assert_error(s, &v, 401, "step_up_required");
    assert_eq!(v["acr_values"], ACR_MFA);
    assert!(v.get("max_age").is_none(), "{v}");
    assert_eq!(strong_calls.load(Ordering::SeqCst), 0);

    // A step-up login where the user gives no second factor: the provider
    // signs in at the password level, which is not what was asked: refused,
    // and the session stays as it was.
    let weak = journey(&spa, &provider, json!({"acr_values": ACR_MFA}), &alice()).await;
    assert_eq!(weak.2, [Page::LoginWithCode]);
    assert_error(weak.0, &weak.1, 400, "invalid_id_token");
    let (s, me) = user(&spa).await;
    assert_eq!((s, me.get("acr").cloned()), (200, acr_before));

    // The step-up login with the code: accepted, and the API answers.
    let strong = Person {
        code: Some(ONE_TIME_CODE),
        ..alice()
    };
    let (s, v, pages) = journey(&spa, &provider, json!({"acr_values": ACR_MFA}), &strong).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(pages, [Page::LoginWithCode]);
    assert_eq!(v["user"]["acr"], ACR_MFA);
    let (s, v) = api(&spa, &bff, "/bff/api/strong/orders").await;
    assert_eq!((s, v), (200, json!({"ok": true})));
    assert_eq!(strong_calls.load(Ordering::SeqCst), 1);
    let metrics = spa.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"keyway_step_ups_total{api="strong",source="policy"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"keyway_logins_total{provider="default",outcome="completed",kind="step_up"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_upstreams_rfc_9470_challenge_becomes_step_up_required() {
    let (provider, bff, _, challenged_calls) = step_up_stack("60s").await;
    let spa = SpaClient::new(&bff);
    let (s, _, _) = journey(&spa, &provider, json!({}), &alice()).await;
    assert_eq!(s, 200);
    let (s, v) = api(&spa, &bff, "/bff/api/challenging/x").await;
    assert_error(s, &v, 401, "step_up_required");
    assert_eq!(v["acr_values"], ACR_MFA);
    assert_eq!(v["max_age"], 300);
    assert_eq!(challenged_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn max_auth_age_asks_for_a_fresh_login_once_it_passes() {
    let (provider, bff, _, _) = step_up_stack("1s").await;
    let spa = SpaClient::new(&bff);
    let (s, _, _) = journey(&spa, &provider, json!({}), &alice()).await;
    assert_eq!(s, 200);
    assert_eq!(api(&spa, &bff, "/bff/api/fresh/x").await.0, 200);
    let stale = std::cell::Cell::new(json!(null));
    eventually(
        Duration::from_secs(8),
        "the login is older than 2 s",
        || async {
            let (s, v) = api(&spa, &bff, "/bff/api/fresh/x").await;
            let done = s == 401;
            stale.set(v);
            done
        },
    )
    .await;
    let v = stale.take();
    assert_eq!(v["error"], "step_up_required", "{v}");
    assert_eq!(v["max_age"], 2);
    // Signing in again with that max_age (the provider session is older:
    // the login page comes back) makes the API answer again.
    let (s, v, pages) = journey(&spa, &provider, json!({"max_age": 2}), &alice()).await;
    assert_eq!((s, pages), (200, vec![Page::Login]), "{v}");
    assert_eq!(api(&spa, &bff, "/bff/api/fresh/x").await.0, 200);
}

//! Browser tests: Debian's headless Chromium through chromedriver, against the
//! real oidc-provider and the release SPA served by the BFF.

use keyway_tests::bff::{client_for, stack_with};
use keyway_tests::browser::{Browser, dist_dir, run};
use keyway_tests::provider::{ProviderConfig, TestProvider};
use std::sync::Arc;

async fn stack_with_spa() -> (TestProvider, keyway_tests::bff::TestBff) {
    let dist = dist_dir().expect("the release SPA");
    stack_with(
        |o| ProviderConfig {
            clients: vec![client_for(o)],
            ..ProviderConfig::default()
        },
        |env| {
            env.insert("KEYWAY_STATIC_DIR".into(), dist.display().to_string());
            env.insert("KEYWAY_PROVIDER_NAME".into(), "Test provider".into());
        },
    )
    .await
}

/// Checks that no token is readable by page scripts or present in the page.
async fn assert_no_token_in_page(b: &Browser) -> Result<(), String> {
    let found = b
        .js(
            r#"const all = [document.cookie, JSON.stringify(Object.assign({}, localStorage)),
                  JSON.stringify(Object.assign({}, sessionStorage)), document.documentElement.outerHTML].join('\n');
               return /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\./.test(all) || /access_token|refresh_token|id_token/.test(all);"#,
        )
        .await?;
    if found != serde_json::Value::Bool(false) {
        return Err("a token is visible to the page".into());
    }
    let cookie = b.js("return document.cookie;").await?;
    if cookie != serde_json::Value::String(String::new()) {
        return Err(format!("cookies readable by scripts: {cookie}"));
    }
    Ok(())
}

#[tokio::test]
async fn sign_in_profile_reload_sign_out() {
    let (provider, bff) = stack_with_spa().await;
    let home = bff.url("/");
    let issuer = provider.issuer.clone();
    let result = run(
        "sign_in_profile_reload_sign_out",
        |b: Arc<Browser>| async move {
            let c = &b.client;
            c.goto(&home).await.map_err(|e| e.to_string())?;
            let button = b.wait_css(".login-button").await?;
            b.snapshot("home-anonymous").await;
            let label = button.text().await.map_err(|e| e.to_string())?;
            if !label.contains("Test provider") {
                return Err(format!("button says {label:?}"));
            }
            button.click().await.map_err(|e| e.to_string())?;
            b.provider_sign_in("alice", "wonderland", true).await?;
            // Back through /callback: the code must not stay in the URL or the history.
            b.wait_text("body", "Alice Liddell").await?;
            let url = c.current_url().await.map_err(|e| e.to_string())?;
            if url.query().is_some_and(|q| q.contains("code=")) {
                return Err(format!("the code stayed in the URL: {url}"));
            }
            c.goto(&format!("{home}profile"))
                .await
                .map_err(|e| e.to_string())?;
            b.wait_text("#user-name", "Alice Liddell").await?;
            b.wait_text("#user-email", "alice@example.com").await?;
            b.wait_text("#userinfo", "alice@example.com").await?;
            b.snapshot("profile").await;
            assert_no_token_in_page(&b).await?;
            // Reload keeps the session.
            c.refresh().await.map_err(|e| e.to_string())?;
            b.wait_text("#user-name", "Alice Liddell").await?;
            // Sign out: through the provider's end-session page and back, anonymous.
            b.wait_css("#logout")
                .await?
                .click()
                .await
                .map_err(|e| e.to_string())?;
            // The SPA follows end_session_url; oidc-provider asks to confirm there.
            let deadline = tokio::time::Instant::now() + keyway_tests::browser::WAIT;
            loop {
                let url = c.current_url().await.map_err(|e| e.to_string())?;
                if url.as_str().starts_with(&issuer) {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(format!(
                        "the SPA did not go to the provider's end-session page (at {url})"
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            b.wait_css("#logout")
                .await?
                .click()
                .await
                .map_err(|e| e.to_string())?;
            b.wait_css(".login-button").await?;
            let status = b
                .js("return fetch('/bff/user').then(r => r.status);")
                .await?;
            if status != serde_json::json!(401) {
                return Err(format!("after sign-out /bff/user answered {status}"));
            }
            Ok(())
        },
    )
    .await;
    result.unwrap();
}

#[tokio::test]
async fn denied_consent_shows_a_clear_error() {
    let (_provider, bff) = stack_with_spa().await;
    let home = bff.url("/");
    run(
        "denied_consent_shows_a_clear_error",
        |b: Arc<Browser>| async move {
            b.client.goto(&home).await.map_err(|e| e.to_string())?;
            b.wait_css(".login-button")
                .await?
                .click()
                .await
                .map_err(|e| e.to_string())?;
            b.provider_sign_in("alice", "wonderland", false).await?;
            // The BFF's message, which carries the provider's
            // error_description once the BFF has accepted the state.
            b.wait_text("#callback-error", "End-User denied the request")
                .await?;
            b.snapshot("callback-denied").await;
            let url = b.client.current_url().await.map_err(|e| e.to_string())?;
            if url.query().is_some() {
                return Err(format!("the callback query stayed in the URL: {url}"));
            }
            let status = b
                .js("return fetch('/bff/user').then(r => r.status);")
                .await?;
            if status != serde_json::json!(401) {
                return Err(format!("a denied login created a session ({status})"));
            }
            Ok(())
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn anonymous_profile_visit_signs_in_and_comes_back() {
    let (_provider, bff) = stack_with_spa().await;
    let profile = bff.url("/profile");
    run(
        "anonymous_profile_visit_signs_in_and_comes_back",
        |b: Arc<Browser>| async move {
            b.client.goto(&profile).await.map_err(|e| e.to_string())?;
            b.provider_sign_in("bob", "builder", true).await?;
            b.wait_path("/profile").await?;
            b.wait_text("#user-name", "Bob the Builder").await?;
            assert_no_token_in_page(&b).await
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_spa_is_served_with_security_headers() {
    let (_provider, bff) = stack_with_spa().await;
    for path in ["/", "/callback", "/profile"] {
        let r = reqwest::get(bff.url(path)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self' 'wasm-unsafe-eval'"),
            "{csp}"
        );
        assert!(
            csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(r.text().await.unwrap().contains("<html"));
    }
    // A missing asset is a 404, not the SPA.
    let r = reqwest::get(bff.url("/nope.js")).await.unwrap();
    assert_eq!(r.status(), 404);
}

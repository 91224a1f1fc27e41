//! Browser tests: Debian's headless Chromium through chromedriver, against the
//! real oidc-provider and the release demo SPA (`keyway-frontend`, built on
//! `keyway-leptos`) served by the BFF.

use keyway_tests::bff::{TestBff, env_for, reserve};
use keyway_tests::browser::{Browser, WAIT, dist_dir, run, spa_stack};
use keyway_tests::provider::{ProviderConfig, TestProvider};
use std::sync::Arc;

/// The provider, and a BFF serving the release SPA with one API, `provider`,
/// forwarded to the provider itself (its `/me`, the userinfo endpoint, takes
/// the user's access token): what the demo's "Call an API" page calls.
async fn stack_with_spa() -> (TestProvider, TestBff) {
    spa_stack(|issuer| format!("[[apis]]\nname = \"provider\"\nurl = \"{issuer}\"\n")).await
}

fn e(err: impl std::fmt::Display) -> String {
    err.to_string()
}

/// Checks that no token is readable by page scripts or present in the page:
/// cookies, both storages, the DOM.
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

/// Runs axe-core on the page; fails on a serious or critical violation.
async fn assert_accessible(b: &Browser, page: &str) -> Result<(), String> {
    let (all, bad) = b.axe_violations().await?;
    for v in &all {
        eprintln!("axe on {page}: {v}");
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("accessibility violations on {page}: {bad:#?}"))
    }
}

/// Waits until the focused element is the page's main heading with `text`.
async fn assert_focus_on_heading(b: &Browser, text: &str) -> Result<(), String> {
    let script = format!(
        "const e = document.activeElement; return !!e && e.matches('main h1') && e.textContent.trim() === {};",
        serde_json::Value::String(text.into())
    );
    b.wait_js(&script, &format!("focus on the heading {text:?}"))
        .await
        .map_err(|err| err + " (focused: see artifacts)")
}

/// Marks the page; [`assert_not_reloaded`] fails if it was reloaded since.
async fn mark_page(b: &Browser) -> Result<(), String> {
    b.js("window.__keyway_test_mark = true; return true;")
        .await
        .map(drop)
}

async fn assert_not_reloaded(b: &Browser) -> Result<(), String> {
    if b.js("return window.__keyway_test_mark === true;").await? == serde_json::json!(true) {
        Ok(())
    } else {
        Err("the page was reloaded".into())
    }
}

/// Clicks the element `css`.
async fn click(b: &Browser, css: &str) -> Result<(), String> {
    b.wait_css(css).await?.click().await.map_err(e)
}

/// Waits until the window is at the provider (its URL starts with `issuer`).
async fn wait_at_provider(b: &Browser, issuer: &str) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let url = b.client.current_url().await.map_err(e)?;
        if url.as_str().starts_with(issuer) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("the SPA did not go to the provider (at {url})"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_full_journey_is_accessible_keeps_focus_right_and_logs_no_console_error() {
    let (provider, bff) = stack_with_spa().await;
    let home = bff.url("/");
    let origin = bff.url("");
    let issuer = provider.issuer.clone();
    run("full_journey", |b: Arc<Browser>| async move {
        let c = &b.client;
        c.goto(&home).await.map_err(e)?;
        let button = b.wait_css(".login-button").await?;
        b.snapshot("home-anonymous").await;
        assert_accessible(&b, "home, anonymous").await?;
        let label = button.text().await.map_err(e)?;
        if !label.contains("Test provider") {
            return Err(format!("button says {label:?}"));
        }
        button.click().await.map_err(e)?;
        b.provider_sign_in("alice", "wonderland", true).await?;
        // Back through /callback to `/`: the code must not stay in the URL,
        // and focus is on the page's heading.
        b.wait_text("main", "Signed in as Alice Liddell").await?;
        let url = c.current_url().await.map_err(e)?;
        if url.query().is_some_and(|q| q.contains("code=")) {
            return Err(format!("the code stayed in the URL: {url}"));
        }
        assert_focus_on_heading(&b, "Sign in, safely").await?;
        b.wait_text("#header-user", "Alice Liddell").await?;
        b.snapshot("home-signed-in").await;
        assert_accessible(&b, "home, signed in").await?;

        // A link: the router navigates, focus follows.
        click(&b, "main a[href='/profile']").await?;
        b.wait_text("#user-name", "Alice Liddell").await?;
        assert_focus_on_heading(&b, "Your profile").await?;
        b.wait_text("#user-email", "alice@example.com").await?;
        b.wait_text("#userinfo", "alice@example.com").await?;
        b.snapshot("profile").await;
        assert_accessible(&b, "profile").await?;
        assert_no_token_in_page(&b).await?;

        // The nested route: an API call through the BFF.
        click(&b, "nav.tabs a[href='/profile/api']").await?;
        b.wait_path("/profile/api").await?;
        assert_focus_on_heading(&b, "Call an API").await?;
        click(&b, "#api-send").await?;
        b.wait_text("#api-result", "alice@example.com").await?;
        b.snapshot("api-call").await;
        assert_accessible(&b, "API call").await?;
        assert_no_token_in_page(&b).await?;

        // Reload keeps the session.
        c.goto(&format!("{home}profile")).await.map_err(e)?;
        c.refresh().await.map_err(e)?;
        b.wait_text("#user-name", "Alice Liddell").await?;

        let errors = b.console_errors(&origin).await?;
        if !errors.is_empty() {
            return Err(format!("console errors on the app's pages: {errors:#?}"));
        }

        // Sign out: through the provider's end-session page and back, anonymous.
        click(&b, "#logout").await?;
        wait_at_provider(&b, &issuer).await?;
        click(&b, "#logout").await?;
        b.wait_css(".login-button").await?;
        let status = b
            .js("return fetch('/bff/user').then(r => r.status);")
            .await?;
        if status != serde_json::json!(401) {
            return Err(format!("after sign-out /bff/user answered {status}"));
        }
        let errors = b.console_errors(&origin).await?;
        if !errors.is_empty() {
            return Err(format!("console errors after signing out: {errors:#?}"));
        }
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn denied_consent_shows_a_clear_error() {
    let (_provider, bff) = stack_with_spa().await;
    let home = bff.url("/");
    run(
        "denied_consent_shows_a_clear_error",
        |b: Arc<Browser>| async move {
            b.client.goto(&home).await.map_err(e)?;
            click(&b, ".login-button").await?;
            b.provider_sign_in("alice", "wonderland", false).await?;
            // The BFF's message, which carries the provider's
            // error_description once the BFF has accepted the state.
            b.wait_text("#callback-error", "End-User denied the request")
                .await?;
            b.snapshot("callback-denied").await;
            assert_focus_on_heading(&b, "Sign-in did not complete").await?;
            assert_accessible(&b, "callback error").await?;
            let url = b.client.current_url().await.map_err(e)?;
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
async fn the_guard_comes_back_to_the_route_and_query_and_use_api_signs_out_on_401() {
    let (_provider, bff) = stack_with_spa().await;
    let page = bff.url("/profile/api?path=provider/me");
    run("guard_and_use_api", |b: Arc<Browser>| async move {
        // Anonymous on a protected route with a query: the guard goes to the
        // provider (one provider), and the sign-in comes back to it.
        b.client.goto(&page).await.map_err(e)?;
        b.provider_sign_in("bob", "builder", true).await?;
        let url = b.wait_path("/profile/api").await?;
        if url.query() != Some("path=provider/me") {
            return Err(format!("came back without the query: {url}"));
        }
        // The page ran its query: `use_api` with a session.
        b.wait_text("#api-result", "\"sub\": \"bob\"").await?;
        assert_focus_on_heading(&b, "Call an API").await?;
        assert_no_token_in_page(&b).await?;

        // The session ends on the server (as a logout in another tab
        // would); the page is not told. Its next call gets the BFF's 401.
        mark_page(&b).await?;
        let status = b
            .js("return fetch('/bff/logout', {method: 'POST', headers: {'x-csrf': '1'}}).then(r => r.status);")
            .await?;
        if status != serde_json::json!(200) {
            return Err(format!("logout answered {status}"));
        }
        click(&b, "#api-send").await?;
        b.wait_text("#signed-out", "Your session has ended").await?;
        b.wait_css("#header-anonymous").await?;
        if b.client.find(fantoccini::Locator::Css("#api-result")).await.is_ok() {
            return Err("the protected page still shows its content".into());
        }
        assert_not_reloaded(&b).await?;
        // The guard does not leave for the provider: the user sees why.
        b.wait_path("/profile/api").await?;
        b.snapshot("session-ended").await;
        assert_accessible(&b, "session ended").await?;
        b.wait_css(".login-button").await?;
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_logout_in_another_tab_is_seen_when_the_first_comes_back() {
    let (provider, bff) = stack_with_spa().await;
    let profile = bff.url("/profile");
    let issuer = provider.issuer.clone();
    run("logout_in_another_tab", |b: Arc<Browser>| async move {
        let c = &b.client;
        c.goto(&profile).await.map_err(e)?;
        b.provider_sign_in("alice", "wonderland", true).await?;
        b.wait_text("#user-name", "Alice Liddell").await?;
        mark_page(&b).await?;
        let first = c.window().await.map_err(e)?;

        // A second tab signs out (through the provider's end-session page).
        let second = c.new_window(true).await.map_err(e)?;
        c.switch_to_window(second.handle).await.map_err(e)?;
        c.goto(&profile).await.map_err(e)?;
        b.wait_text("#user-name", "Alice Liddell").await?;
        click(&b, "#logout").await?;
        wait_at_provider(&b, &issuer).await?;
        click(&b, "#logout").await?;
        b.wait_css(".login-button").await?;
        c.close_window().await.map_err(e)?;

        // Back to the first tab: Chromium fires `visibilitychange` and
        // `focus` as it comes to the front; the SPA checks its session then.
        c.switch_to_window(first).await.map_err(e)?;
        b.wait_text("#signed-out", "Your session has ended").await?;
        b.wait_css("#header-anonymous").await?;
        assert_not_reloaded(&b).await?;
        b.wait_path("/profile").await?;
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_spa_is_served_with_security_headers() {
    let (_provider, bff) = stack_with_spa().await;
    for path in [
        "/",
        "/callback",
        "/callback/default",
        "/profile",
        "/profile/api",
    ] {
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
        let body = r.text().await.unwrap();
        assert!(body.contains("<html"));
        // The favicon is linked, so browsers do not ask for /favicon.ico.
        assert!(body.contains("rel=\"icon\""), "{body}");
    }
    // A missing asset is a 404, not the SPA.
    let r = reqwest::get(bff.url("/nope.js")).await.unwrap();
    assert_eq!(r.status(), 404);
}

/// Two providers, each with its own redirect URI: signing in with the
/// second one comes back to `/callback/beta`, whose page posts to
/// `/bff/callback/beta`, and the user is signed in with that provider.
#[tokio::test]
async fn with_two_providers_each_comes_back_to_its_own_callback() {
    use keyway_tests::bff::client_for_provider;
    let dist = dist_dir().expect("the release SPA");
    let reserved = reserve().await;
    let config = |id: &str| ProviderConfig {
        clients: vec![client_for_provider(&reserved.origin, id)],
        ..ProviderConfig::default()
    };
    let alpha = TestProvider::start(config("alpha")).await.expect("alpha");
    let beta = TestProvider::start(config("beta")).await.expect("beta");
    let toml = format!(
        r#"
        [[providers]]
        id = "alpha"
        name = "Alpha SSO"
        issuer = "{}"
        client_id = "keyway"
        client_secret_env = "SECRET"
        [[providers]]
        id = "beta"
        name = "Beta SSO"
        issuer = "{}"
        client_id = "keyway"
        client_secret_env = "SECRET"
        "#,
        alpha.issuer, beta.issuer
    );
    let mut env = env_for(&reserved.origin, "unused");
    for k in [
        "KEYWAY_ISSUER",
        "KEYWAY_CLIENT_ID",
        "KEYWAY_CLIENT_SECRET",
        "KEYWAY_SCOPES",
    ] {
        env.remove(k);
    }
    env.insert("SECRET".into(), "keyway-secret".into());
    env.insert("KEYWAY_STATIC_DIR".into(), dist.display().to_string());
    let bff = TestBff::start_with_file(reserved, &toml, &env)
        .await
        .expect("BFF starts");
    let home = bff.url("/");
    let beta_issuer = beta.issuer.clone();
    run("two_providers", |b: Arc<Browser>| async move {
        b.client.goto(&home).await.map_err(e)?;
        click(&b, ".login-button[data-provider='beta']").await?;
        wait_at_provider(&b, &beta_issuer).await?;
        b.provider_sign_in("bob", "builder", true).await?;
        b.wait_text("main", "Signed in as Bob the Builder").await?;
        let user = b
            .js("return fetch('/bff/user').then(r => r.json()).then(u => u.provider);")
            .await?;
        if user != serde_json::json!("beta") {
            return Err(format!("signed in with {user}"));
        }
        Ok(())
    })
    .await
    .unwrap();
}

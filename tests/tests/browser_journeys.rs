//! Login journeys in a real Chromium (issue 18), against the real test
//! provider and the release demo SPA served by the BFF: silent sign-in on
//! first load (the demo's setting), with and without a provider session; the
//! step-up prompt of the demo's API page; the profile page's list of the
//! user's sessions, seen and ended across two browsers; "Use another
//! account". axe-core checks the step-up prompt and the session list.

use keyway_tests::bff::TestBff;
use keyway_tests::browser::{Browser, WAIT, run, spa_stack};
use keyway_tests::provider::TestProvider;
use keyway_tests::walk::{ACR_MFA, ONE_TIME_CODE};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The provider, and a BFF serving the release SPA with two APIs, both the
/// provider's own `/me` (its userinfo, which takes the user's access token):
/// `provider`, and `strong`, which requires the two-factor level.
async fn stack() -> (Arc<TestProvider>, TestBff) {
    let (provider, bff) = spa_stack(|issuer| {
        format!(
            "[[apis]]\nname = \"provider\"\nurl = \"{issuer}\"\n\n\
             [[apis]]\nname = \"strong\"\nurl = \"{issuer}\"\nrequire_acr = [\"{ACR_MFA}\"]\n"
        )
    })
    .await;
    (Arc::new(provider), bff)
}

fn e(err: impl std::fmt::Display) -> String {
    err.to_string()
}

// Inside a browser test's body nothing panics: an error is returned, so
// `run` closes the browser (a panic would leave chromedriver running).

/// A counter of the provider's `GET /test/stats`.
async fn stat(provider: &TestProvider, name: &str) -> Result<u64, String> {
    provider.stats().await?[name]
        .as_u64()
        .ok_or_else(|| format!("no {name} in the provider's stats"))
}

/// The value of one line of the BFF's metrics, e.g. `keyway_logins_total{…}`.
async fn metric(metrics_url: &str, series: &str) -> Result<f64, String> {
    let text = reqwest::get(metrics_url)
        .await
        .map_err(e)?
        .text()
        .await
        .map_err(e)?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0))
}

fn logins(kind: &str, outcome: &str) -> String {
    format!(r#"keyway_logins_total{{provider="default",outcome="{outcome}",kind="{kind}"}} "#)
}

/// Turns the demo's silent sign-in setting on (home page, kept in `localStorage`).
async fn turn_silent_sign_in_on(b: &Browser) -> Result<(), String> {
    b.click("#silent-sign-in").await?;
    b.wait_js(
        "return localStorage.getItem('keyway-demo.silent-sign-in') === 'on';",
        "the setting is kept",
    )
    .await
}

/// The `GET /bff/user` of the page's session: status and JSON.
async fn user_of(b: &Browser) -> Result<serde_json::Value, String> {
    b.js("return fetch('/bff/user').then(async r => ({status: r.status, body: r.ok ? await r.json() : null}));")
        .await
}

/// Fails if the page shows an error of any kind.
async fn assert_no_error_shown(b: &Browser) -> Result<(), String> {
    for css in [
        ".error-box",
        "#auth-error",
        "#callback-error",
        "#signed-out",
    ] {
        if b.has(css).await {
            return Err(format!("the page shows `{css}`"));
        }
    }
    Ok(())
}

#[tokio::test]
async fn silent_sign_in_without_a_provider_session_comes_back_anonymous_once_per_tab() {
    let (provider, bff) = stack().await;
    let (home, here, metrics) = (bff.url("/"), bff.url("/?from=silent"), bff.url("/metrics"));
    run("silent_anonymous", |b: Arc<Browser>| async move {
        b.client.goto(&home).await.map_err(e)?;
        b.wait_css(".login-button").await?;
        // Off by default: the first visit made no attempt.
        if stat(&provider, "authorization_requests").await? != 0 {
            return Err("a silent attempt without the setting".into());
        }
        turn_silent_sign_in_on(&b).await?;

        // The next visit, on a page with a query: one prompt=none round trip
        // to the provider, which knows nobody, and back to that page.
        b.client.goto(&here).await.map_err(e)?;
        b.wait_js(
            "return location.pathname === '/' && location.search === '?from=silent'
                && sessionStorage.getItem('keyway.silent-tried') === '1'
                && sessionStorage.getItem('keyway.silent-return') === null
                && !!document.querySelector('.login-button');",
            "back on /?from=silent, anonymous, after the silent attempt",
        )
        .await?;
        b.wait_css("#header-anonymous").await?;
        assert_no_error_shown(&b).await?;
        let attempts = stat(&provider, "authorization_requests").await?;
        if attempts != 1 {
            return Err(format!("{attempts} authorization requests, not 1"));
        }
        b.snapshot("silent-anonymous").await;

        // Once per tab session: a reload makes no second attempt.
        b.client.refresh().await.map_err(e)?;
        b.wait_css(".login-button").await?;
        // The attempt would start in the same step that shows the
        // anonymous state: the window would already be leaving.
        let leaving = b
            .js("return document.getElementById('announcer').textContent.includes('Taking you to sign in');")
            .await?;
        if leaving != json!(false) {
            return Err("a second silent attempt started".into());
        }
        b.wait_path("/").await?;
        assert_no_error_shown(&b).await?;
        // A sign-in by hand still works, and shows the provider's page.
        b.click(".login-button").await?;
        b.provider_sign_in("alice", "wonderland", true).await?;
        b.wait_text("main", "Signed in as Alice Liddell").await?;
        let attempts = stat(&provider, "authorization_requests").await?;
        if attempts != 2 {
            return Err(format!(
                "{attempts} authorization requests, not 2: the silent one and the one by hand (a silent one per page load?)"
            ));
        }
        let silent_started = metric(&metrics, &logins("silent", "started")).await?;
        let silent_failed = metric(&metrics, &logins("silent", "failed")).await?;
        if (silent_started, silent_failed) != (1.0, 1.0) {
            return Err(format!(
                "silent logins: {silent_started} started, {silent_failed} failed (want 1, 1)"
            ));
        }
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn silent_sign_in_with_a_provider_session_signs_in_on_the_page_it_started_from() {
    let (provider, bff) = stack().await;
    let (home, page, metrics) = (
        bff.url("/"),
        bff.url("/profile/api?path=provider/me"),
        bff.url("/metrics"),
    );
    run("silent_signed_in", |b: Arc<Browser>| async move {
        b.client.goto(&home).await.map_err(e)?;
        turn_silent_sign_in_on(&b).await?;
        // A provider session without a BFF one: sign in by hand, then the
        // browser loses the BFF's session cookie (as when it expires). (A
        // sign-out would not do: it revokes the refresh token, and the test
        // provider then drops the grant, so prompt=none would need consent.)
        b.click(".login-button").await?;
        b.provider_sign_in("alice", "wonderland", true).await?;
        b.wait_text("main", "Signed in as Alice Liddell").await?;
        b.client
            .delete_cookie("keyway")
            .await
            .map_err(|err| format!("deleting the session cookie: {err}"))?;
        if user_of(&b).await?["status"] != 401 {
            return Err("still signed in at the BFF".into());
        }
        let before = stat(&provider, "authorization_requests").await?;

        // A visit to a protected page with a query: the silent sign-in
        // brings the user back to it signed in, no provider page shown, and
        // the page's API call runs.
        b.client.goto(&page).await.map_err(e)?;
        b.wait_text("#api-result", "alice@example.com").await?;
        let url = b.wait_path("/profile/api").await?;
        if url.query() != Some("path=provider/me") {
            return Err(format!("came back to {url}"));
        }
        b.wait_text("#header-user", "Alice Liddell").await?;
        assert_no_error_shown(&b).await?;
        let after = stat(&provider, "authorization_requests").await?;
        if after != before + 1 {
            return Err(format!(
                "{} authorization requests for one silent sign-in",
                after - before
            ));
        }
        // The guard did not start a sign-in of its own.
        let silent = metric(&metrics, &logins("silent", "completed")).await?;
        let interactive = metric(&metrics, &logins("interactive", "started")).await?;
        if (silent, interactive) != (1.0, 1.0) {
            return Err(format!(
                "logins: {silent} silent completed, {interactive} interactive started (want 1, 1)"
            ));
        }
        b.snapshot("silent-signed-in").await;
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_api_pages_step_up_prompt_signs_in_stronger_and_comes_back() {
    let (provider, bff) = stack().await;
    let page = bff.url("/profile/api?path=strong/me");
    let issuer = provider.issuer.clone();
    run("step_up_prompt", |b: Arc<Browser>| async move {
        // Signed in with the password only (the guard's sign-in).
        b.client.goto(&page).await.map_err(e)?;
        b.provider_sign_in("alice", "wonderland", true).await?;
        b.wait_path("/profile/api").await?;
        // The page's call: 401 step_up_required, shown as a prompt.
        b.wait_text("#step-up-required", "stronger").await?;
        if b.has("#api-result").await {
            return Err("the API answered below its level".into());
        }
        let me = user_of(&b).await?;
        if me["status"] != 200 || me["body"]["acr"] == ACR_MFA {
            return Err(format!("before the step-up: {me}"));
        }
        b.snapshot("step-up-prompt").await;
        b.assert_accessible("API page, step-up prompt").await?;

        // The stronger sign-in: the provider's login page with the
        // one-time code field.
        b.click("#step-up").await?;
        b.wait_url_prefix(&issuer).await?;
        b.type_into("#login", "alice").await?;
        b.type_into("#password", "wonderland").await?;
        b.type_into("#otp", ONE_TIME_CODE).await?;
        b.click("#submit").await?;

        // Back on the same page, whose call now succeeds.
        b.wait_text("#api-result", "alice@example.com").await?;
        let url = b.wait_path("/profile/api").await?;
        if url.query() != Some("path=strong/me") {
            return Err(format!("came back to {url}"));
        }
        assert_no_error_shown(&b).await?;
        let me = user_of(&b).await?;
        if me["body"]["acr"] != ACR_MFA {
            return Err(format!("after the step-up: {me}"));
        }
        Ok(())
    })
    .await
    .unwrap();
}

/// The number of rows of the profile page's session list is `n`.
async fn wait_sessions(b: &Browser, n: usize) -> Result<(), String> {
    b.wait_js(
        &format!("return document.querySelectorAll('#sessions li.session-row').length === {n};"),
        &format!("{n} sessions listed"),
    )
    .await
}

/// `b` signs in as alice through the guard of `/profile`.
async fn sign_in_on_profile(b: &Browser, profile: &str) -> Result<(), String> {
    b.client.goto(profile).await.map_err(e)?;
    b.provider_sign_in("alice", "wonderland", true).await?;
    b.wait_text("#user-name", "Alice Liddell").await.map(drop)
}

#[tokio::test]
async fn two_browsers_of_one_user_see_each_other_and_one_signs_the_other_out() {
    let (provider, bff) = stack().await;
    let profile = bff.url("/profile");
    run("sessions_first", |first: Arc<Browser>| async move {
        let second = Browser::start().await?;
        let result = async {
            sign_in_on_profile(&second, &profile).await?;
            wait_sessions(&second, 1).await?;
            sign_in_on_profile(&first, &profile).await?;
            // Each sees both, itself marked as this browser.
            wait_sessions(&first, 2).await?;
            let marks = first
                .js("return [...document.querySelectorAll('#sessions li.session-row')].map(li => li.dataset.current);")
                .await?;
            if marks != json!(["true", "false"]) {
                return Err(format!("current marks: {marks}"));
            }
            first.snapshot("sessions-two").await;
            first
                .assert_accessible("profile with two sessions")
                .await?;
            second.client.refresh().await.map_err(e)?;
            wait_sessions(&second, 2).await?;

            // The first ends the second's session from its line.
            let revoked = stat(&provider, "refresh_tokens_revoked").await?;
            first
                .click("#sessions li.session-row[data-current='false'] button.end-session")
                .await?;
            wait_sessions(&first, 1).await?;
            let deadline = tokio::time::Instant::now() + WAIT;
            while stat(&provider, "refresh_tokens_revoked").await? != revoked + 1 {
                if tokio::time::Instant::now() > deadline {
                    return Err("the ended session's refresh token was not revoked at the provider".into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if user_of(&first).await?["status"] != 200 {
                return Err("the first browser was signed out too".into());
            }

            // The second browser's next call finds its session gone.
            second.click("nav.tabs a[href='/profile/api']").await?;
            second.click("#api-send").await?;
            second
                .wait_text("#signed-out", "Your session has ended")
                .await?;
            second.wait_css("#header-anonymous").await?;
            Ok(())
        }
        .await;
        if result.is_err() {
            second.save_artifacts("sessions_second").await;
        }
        second.close().await;
        result
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn use_another_account_goes_through_the_providers_account_choice() {
    let (_provider, bff) = stack().await;
    let profile = bff.url("/profile");
    run("another_account", |b: Arc<Browser>| async move {
        sign_in_on_profile(&b, &profile).await?;
        b.click("#switch-account").await?;
        b.wait_text("#select-account", "alice").await?;
        b.snapshot("select-account").await;
        // Another account: bob, with his own consent.
        b.provider_sign_in("bob", "builder", true).await?;
        b.wait_text("#user-name", "Bob the Builder").await?;
        b.wait_path("/profile").await?;
        Ok(())
    })
    .await
    .unwrap();
}

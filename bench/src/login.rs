//! Signing in over HTTP, as a browser does, to Keyway and to the peer.

use keyway_tests::bff::callback_request;
use keyway_tests::provider::{Consent, TestProvider};
use reqwest::header::{LOCATION, SET_COOKIE};

/// The user signed in for the benchmark (`tests/provider/README.md`).
pub const USER: (&str, &str) = ("alice", "wonderland");

/// `name=value` pairs of the `Set-Cookie` headers whose name starts with
/// `prefix` and whose value is not empty, joined as a `Cookie` header value.
fn cookies(response: &reqwest::Response, prefix: &str) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter(|pair| {
            pair.split_once('=')
                .is_some_and(|(n, v)| n.starts_with(prefix) && !v.is_empty())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A complete login at the Keyway BFF on `origin` (fresh browser: login
/// start, the provider's pages, callback); returns the session's `Cookie`
/// header value.
pub async fn keyway(provider: &TestProvider, origin: &str) -> Result<String, String> {
    let browser = TestProvider::browser();
    let r = browser
        .post(format!("{origin}/bff/login"))
        .header("x-csrf", "1")
        .json(&serde_json::json!({}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
    let url = body["authorization_url"]
        .as_str()
        .ok_or_else(|| format!("no authorization_url in {body}"))?;
    let back = provider
        .sign_in_with(
            &TestProvider::browser(),
            url,
            USER.0,
            USER.1,
            Consent::Allow,
        )
        .await?;
    let r = browser
        .post(format!("{origin}/bff/callback"))
        .header("x-csrf", "1")
        .json(&callback_request(&back))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() != 200 {
        return Err(format!(
            "callback answered {}: {}",
            r.status(),
            r.text().await.unwrap_or_default()
        ));
    }
    let cookie = cookies(&r, "keyway");
    if cookie.is_empty() {
        return Err("the callback set no session cookie".into());
    }
    Ok(cookie)
}

/// A complete login at the peer on `origin` (`GET /login`, the provider's
/// pages, `GET /callback?...`); returns its session cookie(s) as a `Cookie`
/// header value.
pub async fn peer(provider: &TestProvider, origin: &str) -> Result<String, String> {
    redirected_login(provider, "peer", &format!("{origin}/login"), "appSession").await
}

/// A complete login at the Apache peer on `origin` (`GET /api/item` is
/// redirected to the provider, its pages, `GET /callback?...`); returns its
/// session cookie as a `Cookie` header value.
pub async fn apache(provider: &TestProvider, origin: &str) -> Result<String, String> {
    redirected_login(
        provider,
        "apache",
        &format!("{origin}/api/item"),
        "mod_auth_openidc_session",
    )
    .await
}

/// A login at a relying party that sends the browser to the provider from
/// `start` and sets the cookie `cookie_name` at its callback (`who` names
/// it in errors).
async fn redirected_login(
    provider: &TestProvider,
    who: &str,
    start: &str,
    cookie_name: &str,
) -> Result<String, String> {
    let browser = TestProvider::browser();
    let r = browser.get(start).send().await.map_err(|e| e.to_string())?;
    let url = r
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("{who} {start} answered {} without Location", r.status()))?
        .to_owned();
    let back = provider
        .sign_in_with(
            &TestProvider::browser(),
            &url,
            USER.0,
            USER.1,
            Consent::Allow,
        )
        .await?;
    let r = browser.get(back).send().await.map_err(|e| e.to_string())?;
    if !r.status().is_redirection() {
        return Err(format!(
            "{who} callback answered {}: {}",
            r.status(),
            r.text().await.unwrap_or_default()
        ));
    }
    let cookie = cookies(&r, cookie_name);
    if cookie.is_empty() {
        return Err(format!("{who} set no session cookie"));
    }
    Ok(cookie)
}

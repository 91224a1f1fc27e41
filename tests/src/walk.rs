//! Walks the test provider's pages for the login-journey tests, as a person
//! would, and says which pages it was shown: the login page (with a
//! one-time code field when the two-factor level was asked for), the
//! account choice of `prompt=select_account`, the consent page.
//!
//! (`TestProvider::sign_in_with` answers whatever comes; these tests need
//! to know what came, and to choose on the account page.)

use crate::provider::TestProvider;
use url::Url;

/// The one-time code the test provider accepts for `urn:keyway:mfa`.
pub const ONE_TIME_CODE: &str = "123456";
/// The test provider's password level.
pub const ACR_PASSWORD: &str = "urn:keyway:pwd";
/// The test provider's two-factor level.
pub const ACR_MFA: &str = "urn:keyway:mfa";

/// A provider page the walk was shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The login form.
    Login,
    /// The login form with a one-time code field.
    LoginWithCode,
    /// The account choice (`prompt=select_account`).
    SelectAccount,
    /// The consent page.
    Consent,
}

/// How to answer the pages.
#[derive(Debug, Clone)]
pub struct Person<'a> {
    /// Login name.
    pub login: &'a str,
    /// Password.
    pub password: &'a str,
    /// The one-time code to type when asked (`None`: leave it empty).
    pub code: Option<&'a str>,
    /// On the account choice: `true` signs in as `login` instead of
    /// continuing with the provider's current account.
    pub other_account: bool,
}

impl<'a> Person<'a> {
    /// `login`/`password`, no code, continuing with the current account.
    pub fn new(login: &'a str, password: &'a str) -> Self {
        Self {
            login,
            password,
            code: None,
            other_account: false,
        }
    }
}

/// Follows `authorization_url` with `browser` (its provider cookies) until
/// the provider redirects away; answers the redirect and the pages shown.
pub async fn walk(
    provider: &TestProvider,
    browser: &reqwest::Client,
    authorization_url: &str,
    person: &Person<'_>,
) -> Result<(Url, Vec<Page>), String> {
    let origin = Url::parse(&provider.issuer)
        .map_err(|e| e.to_string())?
        .origin();
    let mut current = Url::parse(authorization_url).map_err(|e| e.to_string())?;
    let mut response = get(browser, &current).await?;
    let mut pages = Vec::new();
    for _ in 0..20 {
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or("a redirect without Location")?;
            let target = current.join(location).map_err(|e| e.to_string())?;
            if target.origin() != origin {
                return Ok((target, pages));
            }
            current = target;
            response = get(browser, &current).await?;
            continue;
        }
        let body = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() || body.contains("id=\"error\"") {
            return Err(format!("{status} at {current}: {body}"));
        }
        // A page that posts itself at once (oidc-provider ends the previous
        // account's session this way when another account signs in).
        if body.contains("document.forms[0].submit()") {
            let action = action_ending(&body, "").ok_or("a self-posting page without a form")?;
            current = current.join(&action).map_err(|e| e.to_string())?;
            let fields = hidden_fields(&body);
            response = browser
                .post(current.clone())
                .form(&fields)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            continue;
        }
        let (page, suffix, form): (Page, &str, Vec<(&str, &str)>) =
            if body.contains("id=\"select-account\"") && !person.other_account {
                (Page::SelectAccount, "/select", vec![])
            } else if body.contains("id=\"password\"") {
                let page = if body.contains("id=\"select-account\"") {
                    Page::SelectAccount
                } else if body.contains("id=\"otp\"") {
                    Page::LoginWithCode
                } else {
                    Page::Login
                };
                let form = vec![
                    ("login", person.login),
                    ("password", person.password),
                    ("otp", person.code.unwrap_or("")),
                ];
                (page, "/login", form)
            } else if body.contains("id=\"allow\"") {
                (Page::Consent, "/confirm", vec![("submit", "1")])
            } else {
                return Err(format!("an unexpected page at {current}: {body}"));
            };
        pages.push(page);
        let action = action_ending(&body, suffix)
            .ok_or_else(|| format!("no form to *{suffix} at {current}"))?;
        current = current.join(&action).map_err(|e| e.to_string())?;
        response = browser
            .post(current.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
    }
    Err("the provider never let go".into())
}

async fn get(browser: &reqwest::Client, url: &Url) -> Result<reqwest::Response, String> {
    browser
        .get(url.clone())
        .send()
        .await
        .map_err(|e| e.to_string())
}

/// The page's hidden inputs, as (name, value).
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| {
        tag.split(&format!("{name}=\""))
            .nth(1)?
            .split('"')
            .next()
            .map(str::to_owned)
    };
    html.split("<input")
        .skip(1)
        .filter_map(|rest| rest.split('>').next())
        .filter(|tag| tag.contains("type=\"hidden\""))
        .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value")?)))
        .collect()
}

/// The first form action of the page that ends with `suffix`.
fn action_ending(html: &str, suffix: &str) -> Option<String> {
    html.split("action=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find(|a| a.ends_with(suffix))
        .map(|a| a.replace("&amp;", "&"))
}

//! The demo app's pages.

use keyway_shared::User;
use leptos::prelude::*;
use wasm_bindgen::JsValue;

use crate::auth::{
    AuthState, CallbackPage, Loader, LoginButton, LogoutButton, RequireAuth, error_box,
    no_providers, provider_buttons, retry_button, status_line, use_auth,
};

/// The name to show for a user: name, else e-mail, else subject.
pub(super) fn display_name(user: &User) -> String {
    user.name
        .clone()
        .or_else(|| user.email.clone())
        .unwrap_or_else(|| user.sub.clone())
}

/// Seconds since the epoch as a date and time in the browser's locale.
fn format_time(secs: u64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(secs as f64 * 1000.0));
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"dateStyle".into(), &"medium".into());
    let _ = js_sys::Reflect::set(&options, &"timeStyle".into(), &"short".into());
    let locale = web_sys::window()
        .and_then(|w| w.navigator().language())
        .unwrap_or_else(|| "en".to_owned());
    date.to_locale_string(&locale, &options).into()
}

/// `/`: the product blurb, and sign-in buttons or the signed-in user.
#[component]
pub(super) fn Home() -> impl IntoView {
    let auth = use_auth();
    view! {
        <section class="card">
            <h1>"Sign in, safely"</h1>
            <p class="lead">
                "Keyway is a backend-for-frontend for OAuth 2.0 and OpenID Connect. "
                "It runs the authorization code flow with PKCE on the server and keeps every "
                "token there; your browser only ever holds an HttpOnly session cookie."
            </p>
            {move || match auth.state() {
                AuthState::Loading => status_line("Checking your session…"),
                AuthState::SignedIn(user) => {
                    let name = display_name(&user);
                    view! {
                        <p class="signed-in">"Signed in as " <strong>{name}</strong></p>
                        <p>
                            <a class="button" href="/profile">
                                "View your profile"
                            </a>
                        </p>
                    }
                        .into_any()
                }
                AuthState::Anonymous => view! { <ProviderButtons /> }.into_any(),
                AuthState::Failed(message) => {
                    error_box(message, retry_button(Box::new(move || auth.refetch())))
                }
            }}
        </section>
    }
}

/// One sign-in button per provider of `GET /bff/providers`.
#[component]
fn ProviderButtons() -> impl IntoView {
    let client = use_auth().client();
    let providers = Loader::new(move || {
        let client = client.clone();
        async move { client.providers().await }
    });
    move || match providers.get() {
        None => status_line("Loading sign-in options…"),
        Some(Err(e)) => error_box(
            e.user_message(),
            retry_button(Box::new(move || providers.refetch())),
        ),
        Some(Ok(list)) if list.is_empty() => no_providers(),
        Some(Ok(list)) => provider_buttons(list, "/".to_owned()),
    }
}

/// `/profile`: the signed-in user's details and the provider's userinfo.
#[component]
pub(super) fn Profile() -> impl IntoView {
    view! {
        <section class="card">
            <h1>"Your profile"</h1>
            <RequireAuth>
                <ProfileDetails />
            </RequireAuth>
        </section>
    }
}

#[component]
fn ProfileDetails() -> impl IntoView {
    let auth = use_auth();
    let client = auth.client();
    let userinfo = Loader::new(move || {
        let client = client.clone();
        async move { client.userinfo_pretty().await }
    });
    let details = move || {
        auth.user().map(|user| {
            let name = user.name.clone().unwrap_or_else(|| "(no name)".to_owned());
            let email = match (&user.email, user.email_verified) {
                (Some(email), Some(true)) => format!("{email} (verified)"),
                (Some(email), _) => email.clone(),
                (None, _) => "(no e-mail)".to_owned(),
            };
            let expires = format_time(user.expires_at);
            view! {
                <dl class="details">
                    <dt>"Name"</dt>
                    <dd id="user-name">{name}</dd>
                    <dt>"E-mail"</dt>
                    <dd id="user-email">{email}</dd>
                    <dt>"Subject"</dt>
                    <dd id="user-sub" class="mono">{user.sub}</dd>
                    <dt>"Provider"</dt>
                    <dd id="user-provider">{user.provider}</dd>
                    <dt>"Session ends"</dt>
                    <dd id="session-expires">{expires}</dd>
                </dl>
            }
        })
    };
    view! {
        {details}
        <h2>"Userinfo from the provider"</h2>
        {move || match userinfo.get() {
            None => status_line("Loading userinfo…"),
            Some(Ok(text)) => view! { <pre id="userinfo">{text}</pre> }.into_any(),
            Some(Err(e)) => {
                let action = if e.needs_login() {
                    view! { <LoginButton return_to="/profile">"Sign in again"</LoginButton> }
                        .into_any()
                } else {
                    retry_button(Box::new(move || userinfo.refetch()))
                };
                error_box(e.user_message(), action)
            }
        }}
        <div class="actions">
            <LogoutButton id="logout" />
        </div>
    }
}

/// `/callback`: where the provider sends the user back.
#[component]
pub(super) fn Callback() -> impl IntoView {
    view! {
        <section class="card">
            <CallbackPage />
        </section>
    }
}

/// Any other path.
#[component]
pub(super) fn NotFound() -> impl IntoView {
    view! {
        <section class="card">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address."</p>
            <p>
                <a class="button" href="/">
                    "Go to the home page"
                </a>
            </p>
        </section>
    }
}

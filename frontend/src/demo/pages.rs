//! The demo app's pages.

use keyway_shared::User;
use leptos::prelude::*;
use wasm_bindgen::JsValue;

use crate::auth::{
    AuthState, CallbackPage, Loader, LoginButton, LogoutButton, RequireAuth, use_auth,
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

fn loading(text: &'static str) -> impl IntoView {
    view! {
        <p class="status" role="status">
            <span class="spinner" aria-hidden="true"></span>
            {text}
        </p>
    }
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
                AuthState::Loading => loading("Checking your session…").into_any(),
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
                    view! {
                        <div id="error" class="error-box" role="alert">
                            <p>{message}</p>
                            <button type="button" class="button" on:click=move |_| auth.refetch()>
                                "Try again"
                            </button>
                        </div>
                    }
                        .into_any()
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
        None => loading("Loading sign-in options…").into_any(),
        Some(Err(e)) => view! {
            <div id="error" class="error-box" role="alert">
                <p>{e.user_message()}</p>
                <button type="button" class="button" on:click=move |_| providers.refetch()>
                    "Try again"
                </button>
            </div>
        }
        .into_any(),
        Some(Ok(list)) if list.is_empty() => {
            view! { <p class="notice">"No sign-in provider is configured."</p> }.into_any()
        }
        Some(Ok(list)) => view! {
            <div class="providers">
                {list
                    .into_iter()
                    .map(|p| {
                        view! {
                            <LoginButton provider=p.id preset=p.preset return_to="/">
                                "Sign in with "
                                {p.name}
                            </LoginButton>
                        }
                    })
                    .collect_view()}
            </div>
        }
        .into_any(),
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
            None => loading("Loading userinfo…").into_any(),
            Some(Ok(text)) => view! { <pre id="userinfo">{text}</pre> }.into_any(),
            Some(Err(e)) => {
                let needs_login = e.needs_login();
                view! {
                    <div id="error" class="error-box" role="alert">
                        <p>{e.user_message()}</p>
                        {if needs_login {
                            view! {
                                <LoginButton return_to="/profile">"Sign in again"</LoginButton>
                            }
                                .into_any()
                        } else {
                            view! {
                                <button
                                    type="button"
                                    class="button"
                                    on:click=move |_| userinfo.refetch()
                                >
                                    "Try again"
                                </button>
                            }
                                .into_any()
                        }}
                    </div>
                }
                    .into_any()
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

//! Leptos components of the auth layer.

use keyway_shared::{LogoutResponse, ProviderInfo};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use super::client::{AuthClient, AuthError};
use super::context::{AuthState, context_client, use_auth};
use super::nav::navigate;
use super::query::{safe_return_to, take_callback_query};

/// Starts a login: `POST /bff/login`, then navigates the window to the
/// provider's authorization URL. On success the page is being left.
pub async fn sign_in(
    client: &AuthClient,
    provider: Option<&str>,
    return_to: Option<&str>,
) -> Result<(), AuthError> {
    let response = client.login(provider, return_to).await?;
    assign_location(&response.authorization_url)
}

fn assign_location(url: &str) -> Result<(), AuthError> {
    web_sys::window()
        .ok_or_else(|| AuthError::Network("no window".to_owned()))?
        .location()
        .assign(url)
        .map_err(|_| AuthError::Network("could not navigate".to_owned()))
}

/// The path (with query) of the current page, as a `return_to`.
fn current_path() -> String {
    web_sys::window()
        .map(|w| {
            let l = w.location();
            l.pathname().unwrap_or_default() + &l.search().unwrap_or_default()
        })
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".to_owned())
}

/// Runs `f` when the browser shows the page again from its back/forward cache
/// (e.g. the user pressed Back at the provider): a busy state from before the
/// navigation must not stay.
fn on_restored_from_cache(f: impl Fn() + 'static) {
    let handle = window_event_listener_untyped("pageshow", move |ev| {
        if ev
            .dyn_ref::<web_sys::PageTransitionEvent>()
            .is_some_and(|e| e.persisted())
        {
            f();
        }
    });
    on_cleanup(move || handle.remove());
}

/// A status line with a spinner (`Loading…`). One function for every such
/// line: each distinct `view!` is compiled into code of its own.
pub(crate) fn status_line(text: &'static str) -> AnyView {
    view! {
        <p class="status" role="status">
            <span class="spinner" aria-hidden="true"></span>
            {text}
        </p>
    }
    .into_any()
}

/// A failure with an action, e.g. [`retry_button`]: `#error.error-box`.
pub(crate) fn error_box(message: String, action: AnyView) -> AnyView {
    view! {
        <div id="error" class="error-box" role="alert">
            <p>{message}</p>
            {action}
        </div>
    }
    .into_any()
}

/// A "Try again" button running `retry`.
pub(crate) fn retry_button(retry: Box<dyn Fn()>) -> AnyView {
    view! {
        <button type="button" class="button" on:click=move |_| retry()>
            "Try again"
        </button>
    }
    .into_any()
}

/// The notice shown when the BFF has no sign-in provider.
pub(crate) fn no_providers() -> AnyView {
    view! { <p class="notice">"No sign-in provider is configured."</p> }.into_any()
}

/// One [`LoginButton`] per provider, coming back to `return_to`.
pub(crate) fn provider_buttons(list: Vec<ProviderInfo>, return_to: String) -> AnyView {
    view! {
        <div class="providers">
            {list
                .into_iter()
                .map(|p| {
                    view! {
                        <LoginButton provider=p.id preset=p.preset return_to=return_to.clone()>
                            "Sign in with "
                            {p.name}
                        </LoginButton>
                    }
                })
                .collect_view()}
        </div>
    }
    .into_any()
}

/// The attributes telling the two action buttons apart.
#[derive(Default)]
struct ButtonAttrs {
    id: Option<String>,
    provider: Option<String>,
    preset: Option<String>,
}

/// The markup and states shared by [`LoginButton`] and [`LogoutButton`]: a
/// click sets `busy`, clears `error`, then runs `start`; while busy the
/// button is disabled and shows a spinner; `error` is shown below it.
fn action_button(
    class: &'static str,
    attrs: ButtonAttrs,
    label: AnyView,
    busy: RwSignal<bool>,
    error: RwSignal<Option<String>>,
    start: Box<dyn Fn()>,
) -> impl IntoView {
    on_restored_from_cache(move || busy.set(false));
    let on_click = move |_| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        start();
    };
    view! {
        <div class="action">
            <button
                type="button"
                class=class
                id=attrs.id
                data-provider=attrs.provider
                data-preset=attrs.preset
                disabled=move || busy.get()
                aria-busy=move || busy.get().to_string()
                on:click=on_click
            >
                {move || {
                    busy.get()
                        .then(|| view! { <span class="spinner" aria-hidden="true"></span> })
                }}
                {label}
            </button>
            {move || error.get().map(|m| view! { <p class="error" role="alert">{m}</p> })}
        </div>
    }
}

/// The children as the button's label, else `default`.
fn label(children: Option<Children>, default: &'static str) -> AnyView {
    match children {
        Some(children) => children(),
        None => default.into_any(),
    }
}

/// A button that starts the sign-in with a provider.
///
/// Posts to `/bff/login`, then sends the window to the provider. While that
/// runs the button is disabled and busy; a failure is shown below it. The
/// button has the class `login-button` and a `data-provider` attribute.
#[component]
pub fn LoginButton(
    /// Provider id; the BFF's first provider when absent.
    #[prop(optional, into)]
    provider: Option<String>,
    /// Same-origin path to come back to after signing in; `/` when absent.
    #[prop(optional, into)]
    return_to: Option<String>,
    /// The provider's preset (`github`, `google`, ...): shown as an icon
    /// through the `data-preset` attribute and the stylesheet.
    #[prop(optional_no_strip)]
    preset: Option<String>,
    /// The label; "Sign in" when absent.
    #[prop(optional)]
    children: Option<Children>,
) -> impl IntoView {
    let client = context_client();
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let attrs = ButtonAttrs {
        provider: provider.clone(),
        preset,
        ..ButtonAttrs::default()
    };
    let start = move || {
        let (client, provider, return_to) = (client.clone(), provider.clone(), return_to.clone());
        spawn_local(async move {
            // On success the window is navigating away: stay busy.
            if let Err(e) = sign_in(&client, provider.as_deref(), return_to.as_deref()).await {
                error.set(Some(e.user_message()));
                busy.set(false);
            }
        });
    };
    action_button(
        "button login-button",
        attrs,
        label(children, "Sign in"),
        busy,
        error,
        Box::new(start),
    )
}

/// A button that signs the user out.
///
/// Posts to `/bff/logout`; then sends the window to the provider's
/// end-session URL when there is one, else navigates home and refetches the
/// user. Must be used below [`provide_auth`](super::provide_auth).
#[component]
pub fn LogoutButton(
    /// The button's `id` attribute.
    #[prop(optional, into)]
    id: Option<String>,
    /// The label; "Sign out" when absent.
    #[prop(optional)]
    children: Option<Children>,
) -> impl IntoView {
    let auth = use_auth();
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let start = move || {
        spawn_local(async move {
            match auth.client().logout().await {
                Ok(LogoutResponse {
                    end_session_url: Some(url),
                }) => {
                    if let Err(e) = assign_location(&url) {
                        error.set(Some(e.user_message()));
                        busy.set(false);
                    }
                }
                Ok(LogoutResponse {
                    end_session_url: None,
                }) => {
                    // Leave the page first: a protected page seeing the user
                    // gone would start a new sign-in. The refetch keeps the
                    // old value until the BFF answers.
                    navigate("/", false);
                    auth.refetch();
                    busy.set(false);
                }
                Err(e) => {
                    error.set(Some(e.user_message()));
                    busy.set(false);
                }
            }
        });
    };
    action_button(
        "button secondary logout-button",
        ButtonAttrs {
            id,
            ..ButtonAttrs::default()
        },
        label(children, "Sign out"),
        busy,
        error,
        Box::new(start),
    )
}

/// The page the provider redirects to (the redirect URI, e.g. `/callback`).
///
/// Reads `code`, `state`, `iss` (or `error`, `error_description`) from the
/// query, first removes the query from the URL and history, posts it to
/// `/bff/callback`, then navigates (replacing the entry) to the `return_to`
/// the BFF answers. A failure is shown in plain words in `#callback-error`
/// with a "Try again" link home. Navigates with [`navigate`], which any
/// router following `popstate` obeys. Must be used below
/// [`provide_auth`](super::provide_auth).
#[component]
pub fn CallbackPage() -> impl IntoView {
    let auth = use_auth();
    let error = RwSignal::new(None::<String>);
    let request = take_callback_query();
    if request.code.is_none() && request.error.is_none() {
        error.set(Some(
            "There is no sign-in to finish here. Please start the sign-in from the home page."
                .to_owned(),
        ));
    } else {
        spawn_local(async move {
            match auth.client().callback(&request).await {
                Ok(response) => {
                    auth.set_user(Some(response.user));
                    navigate(safe_return_to(&response.return_to), true);
                }
                Err(e) => {
                    // "Try again" may lead to a protected page: let it start
                    // a new sign-in by itself.
                    auto_login_guard::clear();
                    error.set(Some(e.user_message()));
                }
            }
        });
    }
    move || match error.get() {
        None => status_line("Signing you in…"),
        Some(message) => view! {
            <div id="callback-error" class="error-box" role="alert">
                <h2>"Sign-in did not complete"</h2>
                <p>{message}</p>
                <a class="button" href="/">
                    "Try again"
                </a>
            </div>
        }
        .into_any(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Gate {
    Loading,
    SignedIn,
    Anonymous,
    Failed(String),
}

/// Shows its children only to a signed-in user.
///
/// An anonymous visitor is sent to sign in with `return_to` set to the
/// current path, and so comes back here: straight to the provider when
/// `provider` is given or only one is configured, else after choosing one.
/// Must be used below [`provide_auth`](super::provide_auth).
#[component]
pub fn RequireAuth(
    /// Provider to sign in with; when absent, the only one or the user's choice.
    #[prop(optional, into)]
    provider: Option<String>,
    /// The protected content.
    children: ChildrenFn,
) -> impl IntoView {
    let auth = use_auth();
    let gate = Memo::new(move |_| match auth.state() {
        AuthState::Loading => Gate::Loading,
        AuthState::SignedIn(_) => Gate::SignedIn,
        AuthState::Anonymous => Gate::Anonymous,
        AuthState::Failed(message) => Gate::Failed(message),
    });
    move || match gate.get() {
        Gate::Loading => status_line("Checking your session…"),
        Gate::SignedIn => {
            auto_login_guard::clear();
            children().into_any()
        }
        Gate::Anonymous => view! { <SignInRequired provider=provider.clone() /> }.into_any(),
        Gate::Failed(message) => error_box(message, retry_button(Box::new(move || auth.refetch()))),
    }
}

/// For an anonymous visitor of a protected page: starts the sign-in, or lets
/// them choose a provider.
#[component]
fn SignInRequired(provider: Option<String>) -> impl IntoView {
    let client = use_auth().client();
    let return_to = current_path();
    // A protected page that sends the user to sign in again right after a
    // sign-in (e.g. the session cookie is refused) must not loop.
    let manual = auto_login_guard::recently_started(&return_to);
    let error = RwSignal::new(None::<String>);
    let choices = RwSignal::new(None::<Vec<ProviderInfo>>);
    // The providers, kept for showing the choice after coming back.
    let known = StoredValue::new(Vec::<ProviderInfo>::new());
    on_restored_from_cache(move || {
        if choices.with_untracked(Option::is_none) {
            choices.set(Some(known.get_value()));
        }
    });
    let path = return_to.clone();
    spawn_local(async move {
        let list = match client.providers().await {
            Ok(list) => list,
            Err(e) => {
                error.set(Some(e.user_message()));
                return;
            }
        };
        if error.is_disposed() {
            // The page was left meanwhile (e.g. after signing out).
            return;
        }
        let auto = provider
            .clone()
            .or_else(|| (list.len() == 1).then(|| list[0].id.clone()));
        known.set_value(list.clone());
        match auto {
            Some(id) if !manual => {
                auto_login_guard::mark(&path);
                if let Err(e) = sign_in(&client, Some(&id), Some(&path)).await {
                    error.set(Some(e.user_message()));
                    choices.set(Some(list));
                }
            }
            _ => {
                let list = match provider {
                    Some(p) => list.into_iter().filter(|i| i.id == p).collect(),
                    None => list,
                };
                choices.set(Some(list));
            }
        }
    });
    view! {
        <div class="sign-in-required">
            {move || {
                error.get().map(|m| view! { <p id="error" class="error" role="alert">{m}</p> })
            }}
            {move || match choices.get() {
                None if error.with(Option::is_none) => status_line("Taking you to sign in…"),
                None => ().into_any(),
                Some(list) if list.is_empty() => no_providers(),
                Some(list) => view! {
                    <p>"Please sign in to see this page."</p>
                    {provider_buttons(list, return_to.clone())}
                }
                .into_any(),
            }}
        </div>
    }
}

/// Remembers (per tab) that a protected page just started an automatic sign-in.
mod auto_login_guard {
    const KEY: &str = "keyway.auto-login";
    const WINDOW_MS: u64 = 60_000;

    // Whole milliseconds: formatting and parsing floats costs kilobytes of wasm.
    fn now_ms() -> u64 {
        js_sys::Date::now() as u64
    }

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.session_storage().ok()?
    }

    pub(super) fn mark(path: &str) {
        if let Some(s) = storage() {
            let _ = s.set_item(KEY, &format!("{}\n{path}", now_ms()));
        }
    }

    pub(super) fn recently_started(path: &str) -> bool {
        let Some(value) = storage().and_then(|s| s.get_item(KEY).ok().flatten()) else {
            return false;
        };
        let Some((at, marked)) = value.split_once('\n') else {
            return false;
        };
        let at: u64 = at.parse().unwrap_or(0);
        marked == path && now_ms().saturating_sub(at) < WINDOW_MS
    }

    pub(super) fn clear() {
        if let Some(s) = storage() {
            let _ = s.remove_item(KEY);
        }
    }
}

//! Markup used on several pages: status lines, error boxes, the sign-in
//! buttons, the guard's fallback.

use keyway_leptos::{AuthError, AuthState, LoginButton, current_path, use_auth};
use leptos::prelude::*;

/// A status line with a spinner, announced politely.
pub fn status_line(text: &'static str) -> AnyView {
    view! {
        <p class="status" role="status">
            <span class="spinner" aria-hidden="true"></span>
            {text}
        </p>
    }
    .into_any()
}

/// A failure, announced at once, with an action (e.g. [`retry_button`]).
pub fn error_box(id: &'static str, message: String, action: AnyView) -> AnyView {
    view! {
        <div id=id class="error-box" role="alert">
            <p>{message}</p>
            {action}
        </div>
    }
    .into_any()
}

/// A "Try again" button running `retry`.
pub fn retry_button(retry: impl Fn() + 'static) -> AnyView {
    view! {
        <button type="button" class="button" on:click=move |_| retry()>
            "Try again"
        </button>
    }
    .into_any()
}

/// The last sign-in or sign-out error of the auth context, if any.
#[component]
pub fn AuthErrorLine() -> impl IntoView {
    let error = use_auth().error();
    move || {
        error.get().map(|e| {
            view! {
                <p id="auth-error" class="error" role="alert">
                    {e.user_message()}
                </p>
            }
        })
    }
}

/// One sign-in button per provider of `GET /bff/providers`, coming back to
/// `return_to`.
#[component]
pub fn ProviderButtons(#[prop(into)] return_to: String) -> impl IntoView {
    let auth = use_auth();
    let providers = auth.providers();
    move || match providers.get() {
        None => status_line("Loading sign-in options…"),
        Some(Err(e)) => error_box(
            "providers-error",
            e.user_message(),
            retry_button(move || auth.refetch_providers()),
        ),
        Some(Ok(list)) if list.is_empty() => {
            view! { <p class="notice">"No sign-in provider is configured."</p> }.into_any()
        }
        Some(Ok(list)) => {
            let return_to = return_to.clone();
            view! {
                <div class="providers">
                    {list
                        .into_iter()
                        .map(|p| {
                            view! {
                                <LoginButton
                                    provider=p.id.clone()
                                    return_to=return_to.clone()
                                    attr:class="button login-button"
                                    attr:data-provider=p.id
                                    attr:data-preset=p.preset
                                >
                                    "Sign in with "
                                    {p.name}
                                </LoginButton>
                            }
                        })
                        .collect_view()}
                </div>
                <AuthErrorLine />
            }
            .into_any()
        }
    }
}

/// What a protected page shows instead of its content: the session check,
/// the way to the provider, a session that ended, or the sign-in choice.
#[component]
pub fn GuardFallback() -> impl IntoView {
    let auth = use_auth();
    let (state, redirecting, ended) = (auth.state(), auth.redirecting(), auth.session_ended());
    move || match state.get() {
        AuthState::Loading => status_line("Checking your session…"),
        AuthState::Failed(e) => failed(e, move || auth.refetch()),
        _ if redirecting.get() => status_line("Taking you to sign in…"),
        _ => {
            let why = if ended.get() {
                "Your session has ended. Sign in again to see this page."
            } else {
                "Please sign in to see this page."
            };
            view! {
                <div class="sign-in-required">
                    <p id="signed-out" class="notice">{why}</p>
                    <ProviderButtons return_to=current_path() />
                </div>
            }
            .into_any()
        }
    }
}

fn failed(e: AuthError, retry: impl Fn() + 'static) -> AnyView {
    error_box("error", e.user_message(), retry_button(retry))
}

//! `/profile`: the signed-in user and the provider's userinfo.

use keyway_leptos::{Auth, Loader, LoginOptions, LogoutButton, Prompt, current_path, use_auth};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::sessions::Sessions;
use crate::format::format_time;
use crate::views::{AuthErrorLine, error_box, retry_button, status_line};

/// `/profile` (inside the guard): who is signed in, until when, and what the
/// provider's userinfo endpoint says (`GET /bff/userinfo`).
#[component]
pub fn Profile() -> impl IntoView {
    let auth = use_auth();
    let user = auth.user();
    let userinfo = Loader::new(move || async move {
        auth.userinfo::<serde_json::Value>()
            .await
            .map(|json| serde_json::to_string_pretty(&json).unwrap_or_default())
    });
    let details = move || {
        user.get().map(|user| {
            let name = user.name.clone().unwrap_or_else(|| "(no name)".to_owned());
            let email = match (&user.email, user.email_verified) {
                (Some(email), Some(true)) => format!("{email} (verified)"),
                (Some(email), _) => email.clone(),
                (None, _) => "(no e-mail)".to_owned(),
            };
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
                    <dd id="session-expires">{format_time(user.expires_at)}</dd>
                    <dt>"Signed in at provider"</dt>
                    <dd id="auth-time">{user.auth_time.map(format_time).unwrap_or_else(|| "(not said)".to_owned())}</dd>
                    <dt>"Authentication level"</dt>
                    <dd id="user-acr" class="mono">{user.acr.unwrap_or_else(|| "(not said)".to_owned())}</dd>
                </dl>
            }
        })
    };
    view! {
        {details}
        <h2>"Userinfo from the provider"</h2>
        {move || match userinfo.get() {
            None => status_line("Loading userinfo…"),
            Some(Ok(text)) => view! { <pre id="userinfo" tabindex="0" aria-label="Userinfo JSON">{text}</pre> }.into_any(),
            Some(Err(e)) => {
                error_box("userinfo-error", e.user_message(), retry_button(move || userinfo.refetch()))
            }
        }}
        <Sessions />
        <div class="actions">
            <LogoutButton attr:class="button secondary" attr:id="logout">
                "Sign out"
            </LogoutButton>
            <button type="button" class="button secondary" id="switch-account" on:click=move |_| switch_account(auth)>
                "Use another account"
            </button>
        </div>
        <AuthErrorLine />
    }
}

/// "Use another account": a sign-in with `prompt=select_account` (the
/// provider's account choice), back to this page; a failure shows in the
/// page's `AuthErrorLine`.
fn switch_account(auth: Auth) {
    let start = auth.sign_in_with(LoginOptions {
        prompt: Some(Prompt::SelectAccount),
        return_to: Some(current_path()),
        ..LoginOptions::default()
    });
    spawn_local(async move {
        let _ = start.await;
    });
}

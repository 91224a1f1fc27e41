//! The login-journey example of docs/frontend.md ("Login journeys"),
//! compiled by `cargo clippy --all-targets --target wasm32-unknown-unknown`.
//! Keep the two the same (tests/tests/docs_journeys.rs checks it).

// docs:start
use keyway_leptos::*;
use leptos::{prelude::*, task::spawn_local};

#[component]
fn App() -> impl IntoView {
    // Silent sign-in on first load: once per tab session; no error when the provider knows nobody.
    provide_auth_setup(AuthSetup {
        silent: true,
        ..AuthSetup::default()
    });
    view! { <AnotherAccount /> <Transfers /> <Sessions /> }
}

/// "Use another account": the provider's account choice, then back to this page.
#[component]
fn AnotherAccount() -> impl IntoView {
    let auth = use_auth();
    let choose = move |_| {
        let start = auth.sign_in_with(LoginOptions {
            prompt: Some(Prompt::SelectAccount), // or Prompt::Login, or max_age: Some(0)
            return_to: Some(current_path()),
            ..LoginOptions::default()
        });
        spawn_local(async move {
            let _ = start.await;
        });
    };
    view! { <button on:click=choose>"Use another account"</button> }
}

/// Step-up: an API that wants a stronger login answers `401 step_up_required`.
#[component]
fn Transfers() -> impl IntoView {
    let (auth, api) = (use_auth(), use_api("payments"));
    let cancel = move |_| {
        let api = api.clone();
        spawn_local(async move {
            let _ = api.delete::<()>("/transfers/7").await;
        });
    };
    let step_up = auth.step_up_required(); // Some(LoginOptions) after that 401
    view! {
        <button on:click=cancel>"Cancel transfer 7"</button>
        {move || step_up.get().map(|_| view! {
            <p role="alert">"This needs a stronger sign-in."</p>
            // Signs in with the API's acr_values/max_age, back here; nothing is retried by itself.
            <button on:click=move |_| auth.step_up()>"Sign in again"</button>
        })}
    }
}

/// The user's sessions on every device, each with "Sign out".
#[component]
fn Sessions() -> impl IntoView {
    let auth = use_auth();
    let list =
        Loader::new(move || async move { auth.client().sessions().await.unwrap_or_default() });
    let end = move |handle: String| {
        spawn_local(async move {
            let _ = auth.client().end_session(&handle).await; // or end_other_sessions()
            list.refetch();
        })
    };
    view! {
        <ul>{move || list.get().unwrap_or_default().into_iter().map(|s| {
            let handle = s.handle.clone();
            view! { <li>{s.user_agent}{s.current.then_some(" (this browser)")}
                <button on:click=move |_| end(handle.clone())>"Sign out"</button></li> }
        }).collect_view()}</ul>
    }
}
// docs:end

fn main() {
    leptos::mount::mount_to_body(App);
}

//! `/profile/api`: calls an API behind the BFF with `use_api`.

use keyway_leptos::{AuthError, use_api, use_auth};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::views::{error_box, status_line};

/// The API and path asked for when the page has no `?path=`: the demo's
/// BFF proxies the API `provider` to the local provider, whose `/me` is its
/// userinfo endpoint.
const DEFAULT_PATH: &str = "provider/me";

#[derive(Clone, PartialEq)]
enum Call {
    Idle,
    Running,
    Done(Result<String, AuthError>),
}

/// `/profile/api?path={api}/{path}` (inside the guard): a `GET` through
/// `/bff/api/{api}/{path}`, where the BFF adds the user's access token. The
/// query is the page's state, so a guarded visit with it comes back to it.
#[component]
pub fn ApiCall() -> impl IntoView {
    let query_path = use_query_map().with_untracked(|q| q.get("path"));
    let input = RwSignal::new(
        query_path
            .clone()
            .unwrap_or_else(|| DEFAULT_PATH.to_owned()),
    );
    let call = RwSignal::new(Call::Idle);
    let run = move |path: String| {
        call.set(Call::Running);
        let (name, rest) = path.split_once('/').unwrap_or((path.as_str(), ""));
        let api = use_api(name);
        let rest = rest.to_owned();
        spawn_local(async move {
            let result = api
                .get::<serde_json::Value>(&rest)
                .await
                .map(|json| serde_json::to_string_pretty(&json).unwrap_or_default());
            call.try_set(Call::Done(result));
        });
    };
    if let Some(path) = query_path {
        run(path);
    }
    let navigate = use_navigate();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let path = input
            .get_untracked()
            .trim()
            .trim_start_matches('/')
            .to_owned();
        let search = format!("?path={}", js_sys::encode_uri_component(&path));
        navigate(
            &search,
            NavigateOptions {
                replace: true,
                scroll: false,
                ..NavigateOptions::default()
            },
        );
        run(path);
    };
    view! {
        <p>
            "The BFF forwards " <code>"/bff/api/{name}/{path}"</code>
            " to the API configured as " <code>"name"</code>
            ", adding your access token; this page never sees it. With "
            <code>"scripts/demo"</code> ", " <code>"provider-mfa/me"</code>
            " is the same API behind a step-up: it asks for a sign-in with a one-time code."
        </p>
        <form class="api-form" on:submit=on_submit>
            <label for="api-path">"API name and path"</label>
            <div class="input-row">
                <span class="mono prefix" aria-hidden="true">"/bff/api/"</span>
                <input
                    id="api-path"
                    name="path"
                    type="text"
                    autocomplete="off"
                    spellcheck="false"
                    prop:value=move || input.get()
                    on:input=move |ev| input.set(event_target_value(&ev))
                />
                <button type="submit" class="button" id="api-send">"Send GET"</button>
            </div>
        </form>
        {move || match call.get() {
            Call::Idle => ().into_any(),
            Call::Running => status_line("Calling the API…"),
            Call::Done(Ok(text)) => view! {
                <h2>"Answer"</h2>
                <pre id="api-result" tabindex="0" aria-label="API answer">{text}</pre>
            }.into_any(),
            // 401 step_up_required: the API wants a stronger or fresher
            // sign-in; nothing is retried by itself.
            Call::Done(Err(e)) if e.needs_step_up() => {
                let auth = use_auth();
                let action = view! {
                    <button type="button" class="button" id="step-up" on:click=move |_| auth.step_up()>
                        "Sign in again to continue"
                    </button>
                };
                error_box("step-up-required", e.user_message(), action.into_any())
            }
            Call::Done(Err(e)) => error_box("api-error", e.user_message(), ().into_any()),
        }}
    }
}

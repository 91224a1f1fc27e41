//! The list of the user's sessions on the profile page: where they are
//! signed in (`GET /bff/sessions`), with "Sign out" per line and "Sign out
//! everywhere else".

use keyway_leptos::{AuthError, Loader, SessionInfo, use_auth};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::format::format_time;
use crate::views::{error_box, retry_button, status_line};

/// The user's sessions, each with a sign-out button.
#[component]
pub fn Sessions() -> impl IntoView {
    let auth = use_auth();
    let list = Loader::new(move || async move { auth.client().sessions().await });
    let failure = RwSignal::new(None::<AuthError>);
    let end = move |handle: Option<String>, current: bool| {
        spawn_local(async move {
            let client = auth.client();
            let result = match &handle {
                Some(h) => client.end_session(h).await,
                None => client.end_other_sessions().await,
            };
            match result {
                Ok(_) if current => auth.set_user(None),
                Ok(_) => list.refetch(),
                Err(e) => {
                    failure.try_set(Some(e));
                }
            }
        });
    };
    let row = move |s: SessionInfo| {
        let (handle, current) = (s.handle.clone(), s.current);
        let device = s
            .user_agent
            .clone()
            .unwrap_or_else(|| "An unknown browser".to_owned());
        let label = if current {
            format!("Sign out this browser ({device})")
        } else {
            format!(
                "Sign out {device}, last used {}",
                format_time(s.last_seen_at)
            )
        };
        view! {
            <li class="session-row" data-current=current.to_string()>
                <span>
                    <strong>{device}</strong>
                    {current.then_some(" (this browser)")}
                    <br />
                    <span class="muted">
                        "Signed in " {format_time(s.created_at)} " · last used "
                        {format_time(s.last_seen_at)}
                    </span>
                </span>
                <button
                    type="button"
                    class="button secondary end-session"
                    aria-label=label
                    on:click=move |_| end(Some(handle.clone()), current)
                >
                    "Sign out"
                </button>
            </li>
        }
    };
    view! {
        <h2>"Where you are signed in"</h2>
        {move || match list.get() {
            None => status_line("Loading your sessions…"),
            Some(Err(e)) => error_box("sessions-error", e.user_message(), retry_button(move || list.refetch())),
            Some(Ok(sessions)) => {
                let others = sessions.iter().filter(|s| !s.current).count();
                view! {
                    <ul id="sessions" class="sessions">
                        {sessions.into_iter().map(row).collect_view()}
                    </ul>
                    {(others > 0).then(|| view! {
                        <button type="button" class="button secondary" id="end-others"
                            on:click=move |_| end(None, false)>
                            "Sign out everywhere else"
                        </button>
                    })}
                }
                .into_any()
            }
        }}
        {move || failure.get().map(|e| view! { <p class="error" role="alert">{e.user_message()}</p> })}
    }
}

//! Accessibility helpers of the demo: focus follows navigation, and
//! session changes are announced.

use keyway_leptos::{AuthState, use_auth};
use leptos::html;
use leptos::prelude::*;
use leptos_router::hooks::use_location;
use wasm_bindgen::JsCast;

use crate::format::display_name;

/// Moves focus to the page's main heading (`main h1`) after each
/// client-side navigation to another path (the callback's jump to
/// `return_to` included), as a page load would put a screen reader at the
/// top of the new page.
#[component]
pub fn FocusOnNavigate() -> impl IntoView {
    let pathname = use_location().pathname;
    Effect::new(move |previous: Option<String>| {
        let path = pathname.get();
        if previous.is_some_and(|p| p != path) {
            // After the new route's view is in the document.
            request_animation_frame(focus_main_heading);
        }
        path
    });
}

/// Focuses `main h1` (which carries `tabindex="-1"`), if the page has one.
pub fn focus_main_heading() {
    if let Some(heading) = document()
        .query_selector("main h1")
        .ok()
        .flatten()
        .and_then(|el| el.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = heading.focus();
    }
}

/// Focuses the element as soon as it is in the document (for a heading that
/// replaces the page's content, e.g. the callback's error).
pub fn focus_when_mounted(node: NodeRef<html::H1>) {
    Effect::new(move |_| {
        if let Some(heading) = node.get() {
            let _ = heading.focus();
        }
    });
}

/// A polite live region, visually hidden, that announces the session's
/// changes the header shows without words on the page: signed in, signed
/// out, the session ended elsewhere, leaving for the provider.
#[component]
pub fn Announcer() -> impl IntoView {
    let auth = use_auth();
    let (state, ended, redirecting) = (auth.state(), auth.session_ended(), auth.redirecting());
    let message = Memo::new(move |previous: Option<&String>| {
        if redirecting.get() {
            return "Taking you to sign in…".to_owned();
        }
        match state.get() {
            AuthState::SignedIn(user) => format!("Signed in as {}.", display_name(&user)),
            AuthState::Anonymous if ended.get() => {
                "Your session has ended. Please sign in again.".to_owned()
            }
            AuthState::Anonymous if previous.is_some_and(|p| p.starts_with("Signed in")) => {
                "Signed out.".to_owned()
            }
            _ => String::new(),
        }
    });
    view! {
        <div id="announcer" class="visually-hidden" role="status" aria-live="polite" aria-atomic="true">
            {move || message.get()}
        </div>
    }
}

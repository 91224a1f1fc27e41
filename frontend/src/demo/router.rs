//! The demo's router: four fixed paths do not need `leptos_router` (which
//! alone would more than double the size of the wasm).
//!
//! It follows `popstate` (back/forward, and [`crate::auth::navigate`]) and
//! turns clicks on same-origin links into client-side navigation.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::auth::navigate;

/// The pages of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Page {
    Home,
    Profile,
    Callback,
    NotFound,
}

impl Page {
    /// The page of a path (`/profile/` is `/profile`).
    pub(super) fn of(path: &str) -> Page {
        let path = match path.trim_end_matches('/') {
            "" => "/",
            p => p,
        };
        match path {
            "/" | "/index.html" => Page::Home,
            "/profile" => Page::Profile,
            "/callback" => Page::Callback,
            _ => Page::NotFound,
        }
    }
}

fn location_path() -> String {
    window()
        .location()
        .pathname()
        .unwrap_or_else(|_| "/".to_owned())
}

/// Starts following the location; returns the current page, reactively.
pub(super) fn start() -> Memo<Page> {
    let path = RwSignal::new(location_path());
    // The app lives as long as the page: the listeners are never removed.
    let _ = window_event_listener(leptos::ev::popstate, move |_| path.set(location_path()));
    let _ = window_event_listener(leptos::ev::click, move |ev| follow_link(&ev));
    Memo::new(move |_| Page::of(&path.read()))
}

/// A plain left click on a same-origin link to a page of the SPA navigates
/// inside it.
fn follow_link(ev: &web_sys::MouseEvent) {
    if ev.default_prevented()
        || ev.button() != 0
        || ev.meta_key()
        || ev.ctrl_key()
        || ev.shift_key()
        || ev.alt_key()
    {
        return;
    }
    let Some(anchor) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .and_then(|el| el.closest("a[href]").ok().flatten())
        .and_then(|a| a.dyn_into::<web_sys::HtmlAnchorElement>().ok())
    else {
        return;
    };
    let same_origin = window()
        .location()
        .origin()
        .is_ok_and(|origin| origin == anchor.origin());
    // `/bff/...` links (e.g. `GET /bff/login`) and `rel="external"` ones are
    // for the server: let the browser follow them.
    if !same_origin
        || !anchor.target().is_empty()
        || anchor.has_attribute("download")
        || anchor.rel().split_whitespace().any(|r| r == "external")
        || anchor.pathname().starts_with("/bff/")
    {
        return;
    }
    ev.prevent_default();
    navigate(
        &(anchor.pathname() + &anchor.search() + &anchor.hash()),
        false,
    );
}

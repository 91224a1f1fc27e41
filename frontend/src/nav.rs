//! Client-side navigation: through `leptos_router` when the caller is inside
//! its `<Router>`, else with the History API plus a `popstate` event.

use std::sync::Arc;

use leptos::prelude::*;
use wasm_bindgen::JsValue;

type RouterNavigate = Arc<dyn Fn(&str, bool) + Send + Sync>;

/// How the auth layer moves between the app's pages.
///
/// Made by [`Navigator::here`] where a component is created: inside a
/// `leptos_router` `<Router>` (with the default `router` feature) it
/// navigates through the router, so the router's state, scrolling and
/// transitions stay right; elsewhere it uses [`navigate`].
#[derive(Clone)]
pub struct Navigator {
    router: Option<RouterNavigate>,
}

impl std::fmt::Debug for Navigator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Navigator")
            .field("router", &self.router.is_some())
            .finish()
    }
}

impl Navigator {
    /// The navigator for the calling component: the router's when there is
    /// one above it.
    pub fn here() -> Self {
        Self {
            router: router_navigate(),
        }
    }

    /// Whether navigation goes through `leptos_router`.
    pub fn uses_router(&self) -> bool {
        self.router.is_some()
    }

    /// Goes to `path` (a same-origin path with its query) in the SPA, adding
    /// a history entry, or replacing the current one with `replace`.
    pub fn go(&self, path: &str, replace: bool) {
        match &self.router {
            Some(go) => go(path, replace),
            None => navigate(path, replace),
        }
    }
}

#[cfg(feature = "router")]
fn router_navigate() -> Option<RouterNavigate> {
    use leptos_router::NavigateOptions;
    // `<Router>` provides its `BrowserUrl` next to its (private) context, so
    // its presence says whether `use_navigate` may be called.
    use_context::<leptos_router::location::BrowserUrl>()?;
    let go = leptos_router::hooks::use_navigate();
    Some(Arc::new(move |path: &str, replace: bool| {
        go(
            path,
            NavigateOptions {
                replace,
                ..NavigateOptions::default()
            },
        )
    }))
}

#[cfg(not(feature = "router"))]
fn router_navigate() -> Option<RouterNavigate> {
    None
}

/// Navigates within the SPA without a router: pushes (or, with `replace`,
/// replaces) the history entry, then fires `popstate`, which routers that
/// follow the browser's history (`leptos_router` among them) obey, and
/// scrolls to the top.
pub fn navigate(path: &str, replace: bool) {
    let window = window();
    let Ok(history) = window.history() else {
        return;
    };
    let _ = if replace {
        history.replace_state_with_url(&JsValue::NULL, "", Some(path))
    } else {
        history.push_state_with_url(&JsValue::NULL, "", Some(path))
    };
    if let Ok(event) = web_sys::PopStateEvent::new("popstate") {
        let _ = window.dispatch_event(&event);
    }
    window.scroll_to_with_x_and_y(0.0, 0.0);
}

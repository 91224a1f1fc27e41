//! Router-agnostic client-side navigation.

use wasm_bindgen::JsValue;

/// Navigates within the SPA without a page load: pushes (or, with `replace`,
/// replaces) the history entry, then fires `popstate` so the app's router
/// renders the new path. Works with `leptos_router` and with the demo's
/// router, which both follow `popstate`.
pub fn navigate(path: &str, replace: bool) {
    let Some(window) = web_sys::window() else {
        return;
    };
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

//! Noticing a session that ended elsewhere (logout in another tab,
//! back-channel logout, expiry) without a reload: the session is checked
//! again when the tab comes back to the front, when its `expires_at` passes,
//! and when the page is shown again from the back/forward cache.

use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::context::Auth;

/// Two checks on focus are at least this far apart (a tab switch fires both
/// `visibilitychange` and `focus`).
const MIN_GAP_MS: f64 = 1_000.0;

/// The longest delay `setTimeout` takes (about 24.8 days).
const MAX_TIMEOUT_MS: u64 = i32::MAX as u64;

/// Starts the watchers for the context's lifetime.
pub(crate) fn start(auth: Auth) {
    let last_check = StoredValue::new(0.0_f64);
    let check = move || {
        // An anonymous visitor has no session to lose (and a check would
        // cost a `401` in the console on every focus).
        if !auth.is_signed_in_untracked() {
            return;
        }
        let now = js_sys::Date::now();
        if now - last_check.get_value() < MIN_GAP_MS {
            return;
        }
        last_check.set_value(now);
        auth.refetch();
    };
    let focus = window_event_listener_untyped("focus", move |_| check());
    let visible = window_event_listener_untyped("visibilitychange", move |_| {
        if document().visibility_state() == web_sys::VisibilityState::Visible {
            check();
        }
    });
    // Back from the provider with the Back button: the page may be the one
    // that left for the provider, still "redirecting".
    let shown = window_event_listener_untyped("pageshow", move |ev| {
        if ev
            .dyn_ref::<web_sys::PageTransitionEvent>()
            .is_some_and(|e| e.persisted())
        {
            auth.stop_redirecting();
            auth.refetch();
        }
    });
    on_cleanup(move || {
        focus.remove();
        visible.remove();
        shown.remove();
    });
    check_at_expiry(auth);
}

/// Checks the session again one second after its `expires_at`.
fn check_at_expiry(auth: Auth) {
    Effect::new(move |previous: Option<Option<TimeoutHandle>>| {
        if let Some(Some(handle)) = previous {
            handle.clear();
        }
        let expires_at = auth.expires_at()?;
        // Whole milliseconds: no float formatting or parsing anywhere.
        let now_ms = js_sys::Date::now() as u64;
        let due_ms = expires_at.saturating_mul(1000).saturating_add(1000);
        let delay = due_ms.saturating_sub(now_ms).min(MAX_TIMEOUT_MS);
        set_timeout_with_handle(move || auth.refetch(), Duration::from_millis(delay)).ok()
    });
}

//! Noticing a session that ended elsewhere (logout in another tab,
//! back-channel logout) without a reload: the session is checked again when
//! the tab comes back to the front, and when the page is shown again from
//! the back/forward cache. (The check at the session's `expires_at` is set
//! with each user, in the context.)

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::context::Auth;

/// Two checks on focus are at least this far apart (a tab switch fires both
/// `visibilitychange` and `focus`).
const MIN_GAP_MS: f64 = 1_000.0;

/// The window events watched; one handler serves them all.
const EVENTS: [&str; 3] = ["focus", "visibilitychange", "pageshow"];

/// Starts the watchers for the context's lifetime.
pub(crate) fn start(auth: Auth) {
    let last_check = StoredValue::new(0.0_f64);
    let on_event = move |ev: web_sys::Event| {
        if ev.type_() == "pageshow" {
            // Back from the provider with the Back button: the page that
            // left for the provider, restored as it was.
            if ev
                .dyn_ref::<web_sys::PageTransitionEvent>()
                .is_some_and(|e| e.persisted())
            {
                auth.page_restored();
            }
            return;
        }
        // `visibilitychange` to hidden, or an anonymous visitor (who has no
        // session to lose, and would get a 401 in the console): nothing.
        if document().visibility_state() != web_sys::VisibilityState::Visible
            || !auth.is_signed_in_untracked()
        {
            return;
        }
        let now = js_sys::Date::now();
        if now - last_check.get_value() >= MIN_GAP_MS {
            last_check.set_value(now);
            auth.refetch();
        }
    };
    let handles = EVENTS.map(|name| window_event_listener_untyped(name, on_event));
    on_cleanup(move || handles.into_iter().for_each(|h| h.remove()));
}

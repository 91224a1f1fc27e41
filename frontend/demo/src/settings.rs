//! The demo's one setting: silent sign-in on first load, kept in this
//! browser's `localStorage` (a flag, never a token) and read when the app
//! starts (`AuthSetup::silent`), so it takes effect on the next visit.

use leptos::prelude::*;

const SILENT: &str = "keyway-demo.silent-sign-in";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// Whether the visitor turned silent sign-in on in this browser.
pub fn silent_sign_in() -> bool {
    storage().and_then(|s| s.get_item(SILENT).ok().flatten()) == Some("on".to_owned())
}

fn set_silent_sign_in(on: bool) {
    if let Some(s) = storage() {
        let _ = if on {
            s.set_item(SILENT, "on")
        } else {
            s.remove_item(SILENT)
        };
    }
}

/// The checkbox that turns silent sign-in on or off for the next visits.
#[component]
pub fn SilentSetting() -> impl IntoView {
    view! {
        <div class="setting">
            <input
                id="silent-sign-in"
                type="checkbox"
                aria-describedby="silent-sign-in-help"
                prop:checked=silent_sign_in()
                on:change=move |ev| set_silent_sign_in(event_target_checked(&ev))
            />
            <label for="silent-sign-in">"Sign me in automatically when I come back"</label>
            <p id="silent-sign-in-help" class="muted">
                "Silent sign-in: from your next visit on, this page asks the provider once per tab "
                "whether you are still signed in there, without showing its pages; if you are not, "
                "nothing changes. Kept in this browser only."
            </p>
        </div>
    }
}

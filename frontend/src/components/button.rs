//! The `<button>` of [`LoginButton`](super::LoginButton) and
//! [`LogoutButton`](super::LogoutButton).

use leptos::prelude::*;

/// A `<button type="button">` with the caller's label; while `busy` it has
/// `aria-busy="true"` and `aria-disabled="true"` (it keeps its focus, unlike
/// `disabled`) and ignores clicks. Not generic: one copy serves both buttons.
pub(super) fn action_button(
    label: Children,
    busy: Signal<bool>,
    on_click: Box<dyn Fn() + Send + Sync>,
) -> impl IntoView {
    let flag = move || if busy.get() { "true" } else { "false" };
    view! {
        <button
            type="button"
            aria-busy=flag
            aria-disabled=flag
            on:click=move |_| {
                if !busy.get_untracked() {
                    on_click();
                }
            }
        >
            {label()}
        </button>
    }
}

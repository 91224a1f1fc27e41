//! [`LogoutButton`]: signs the user out.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::button::action_button;
use crate::context::{assign_location, use_auth};
use crate::nav::Navigator;

/// A `<button>` that signs the user out: `POST /bff/logout`, then the
/// window goes to the provider's end-session page when it has one (which
/// comes back to the app's root); else the state turns signed out and the
/// app navigates to `to`.
///
/// While that runs the button has `aria-busy="true"` and
/// `aria-disabled="true"`; a failure goes to the context's
/// [`error`](crate::Auth::error). Must be used below
/// [`provide_auth`](crate::provide_auth).
#[component]
pub fn LogoutButton(
    /// Where to go after signing out when the provider has no end-session
    /// page; `/` when absent.
    #[prop(optional, into)]
    to: Option<String>,
    /// The label: the button's accessible name.
    children: Children,
) -> impl IntoView {
    let auth = use_auth();
    let navigator = StoredValue::new(Navigator::here());
    let to = StoredValue::new(to.unwrap_or_else(|| "/".to_owned()));
    let busy = RwSignal::new(false);
    let start = move || {
        busy.set(true);
        spawn_local(async move {
            match auth.sign_out().await {
                Ok(Some(end_session_url)) => {
                    if let Err(e) = assign_location(&end_session_url) {
                        // The session is gone all the same.
                        auth.set_user(None);
                        auth.set_error(Some(e));
                        busy.try_set(false);
                    }
                }
                Ok(None) => {
                    if let (Some(navigator), Some(to)) =
                        (navigator.try_get_value(), to.try_get_value())
                    {
                        navigator.go(&to, false);
                    }
                    busy.try_set(false);
                }
                Err(_) => {
                    busy.try_set(false);
                }
            }
        });
    };
    action_button(children, busy.into(), Box::new(start))
}

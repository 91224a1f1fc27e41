//! [`RequireAuth`]: the guard of protected routes.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::auto_login;
use crate::context::{AuthState, use_auth};
use crate::query::current_path;

/// Shows its children only to a signed-in user: the guard of a protected
/// route (wrap the route's view, or a `<ParentRoute>`'s `<Outlet/>` to
/// guard a whole branch).
///
/// A visitor who arrives here anonymous is sent to sign in, with
/// `return_to` set to the current path *and query*, and so comes back to
/// the same route: straight to the provider when `provider` is given or the
/// BFF has only one. With several providers (or `redirect=false`), or when
/// the session ended while the page was open (see
/// [`Auth::session_ended`](crate::Auth::session_ended)), the guard does not
/// leave the page: it shows `fallback`, which should offer the sign-in
/// (e.g. one [`LoginButton`](crate::LoginButton) per
/// [`Auth::providers`](crate::Auth::providers)).
///
/// `fallback` is shown whenever the children are not: while the session is
/// checked, while the window goes to the provider, and when the visitor must
/// sign in by hand. Read [`use_auth`] inside it to tell which
/// ([`state`](crate::Auth::state), [`redirecting`](crate::Auth::redirecting),
/// [`session_ended`](crate::Auth::session_ended)).
///
/// The children are created when the user becomes signed in and dropped
/// when the session ends; a refreshed user does not re-create them.
/// Must be used below [`provide_auth`](crate::provide_auth).
#[component]
pub fn RequireAuth(
    /// Provider to sign in with; when absent, the BFF's only provider (with
    /// several the guard does not choose: `fallback` should offer them).
    #[prop(optional, into)]
    provider: Option<String>,
    /// Whether an anonymous visitor is sent to the provider by the guard
    /// itself (the default); with `false` the guard only shows `fallback`.
    #[prop(default = true)]
    redirect: bool,
    /// Shown instead of the children while they cannot be.
    #[prop(optional, into)]
    fallback: ViewFn,
    /// The protected content.
    children: ChildrenFn,
) -> impl IntoView {
    let auth = use_auth();
    let state = auth.state();
    let signed_in = Memo::new(move |_| state.with(|s| matches!(s, AuthState::SignedIn(_))));
    // Whether this guard has shown its children: if the session ends
    // afterwards, the user is told so here rather than sent away.
    let seen_signed_in = StoredValue::new(false);
    let started = StoredValue::new(false);
    Effect::new(move |_| {
        if signed_in.get() {
            seen_signed_in.set_value(true);
            started.set_value(false);
            auto_login::clear();
            return;
        }
        let anonymous = state.with(|s| *s == AuthState::Anonymous);
        if !anonymous || !redirect || seen_signed_in.get_value() || started.get_value() {
            return;
        }
        let id = match &provider {
            Some(id) => id.clone(),
            None => match auth.providers().get() {
                Some(Ok(list)) if list.len() == 1 => list[0].id.clone(),
                // Still loading (the effect runs again), several, none, or failed.
                _ => return,
            },
        };
        let return_to = current_path();
        // A sign-in for this very page just came back without a session:
        // do not loop; `fallback` offers the sign-in by hand.
        if auto_login::recently_started(&return_to) {
            return;
        }
        started.set_value(true);
        auto_login::mark(&return_to);
        let sign_in = auth.sign_in(Some(&id), Some(&return_to));
        spawn_local(async move {
            if sign_in.await.is_err() {
                auto_login::clear();
            }
        });
    });
    move || {
        if signed_in.get() {
            children().into_any()
        } else {
            fallback.run()
        }
    }
}

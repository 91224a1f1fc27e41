//! [`RequireAuth`]: the guard of protected routes.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;

use leptos::prelude::*;

use crate::auto_login;
use crate::context::{Auth, SIGN_IN_CALL, use_auth};
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
    let signed_in = auth.is_signed_in();
    guard(auth, provider, redirect);
    move || {
        if signed_in.get() {
            children().into_any()
        } else {
            fallback.run()
        }
    }
}

/// Sends a visitor who arrives anonymous to sign in (the work of
/// [`RequireAuth`], apart from its views).
#[inline(never)]
fn guard(auth: Auth, provider: Option<String>, redirect: bool) {
    // Whether this guard has shown its children (if the session ends
    // afterwards, the user is told so here rather than sent away), and
    // whether it started a sign-in.
    let seen_signed_in = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    auth.on_change(Arc::new(move || {
        if auth.is_signed_in_untracked() {
            seen_signed_in.store(true, Relaxed);
            started.store(false, Relaxed);
            auto_login::clear();
            return;
        }
        if !redirect
            || !auth.is_anonymous_untracked()
            || auth.is_redirecting_untracked()
            || seen_signed_in.load(Relaxed)
            || started.load(Relaxed)
        {
            return;
        }
        // Without a given provider: the only one, once the list is known
        // (this runs again when it comes); with several, `fallback` offers them.
        let Some(id) = provider.clone().or_else(|| auth.only_provider()) else {
            return;
        };
        let return_to = current_path();
        // A sign-in for this very page just came back without a session:
        // do not loop; `fallback` offers the sign-in by hand.
        if auto_login::recently_started(&return_to) {
            return;
        }
        started.store(true, Relaxed);
        auto_login::mark(&return_to);
        auth.spawn_sign_in(SIGN_IN_CALL, Some(&id), Some(&return_to), auto_login::clear);
    }));
}

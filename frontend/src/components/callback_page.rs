//! [`CallbackPage`]: the route the provider sends the user back to.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::auto_login;
use crate::context::use_auth;
use crate::error::AuthError;
use crate::nav::Navigator;
use crate::query::{callback_provider_from_path, safe_return_to, take_callback_query};
use crate::silent;

/// The route component of the redirect URI: `/callback/{provider}` (one
/// redirect URI per provider) or `/callback` (a single provider); one
/// route, `path!("/callback/:provider?")`, serves both.
///
/// At once it reads `code`, `state`, `iss` (or `error`,
/// `error_description`) from the query and removes the query from the URL
/// and history; then it posts them to `POST /bff/callback/{provider}` (or
/// `POST /bff/callback`), sets the signed-in user and navigates, replacing
/// the entry, to the `return_to` the BFF answers (through the router when
/// there is one). Meanwhile it shows `fallback`.
///
/// The answer to a silent sign-in ([`AuthSetup::silent`](crate::AuthSetup::silent))
/// that says nobody is signed in at the provider (`login_required`, ...)
/// is no failure: it navigates back to the page the attempt started from,
/// anonymous, showing nothing.
///
/// On failure it shows `error(e)`; `e.user_message()` is the BFF's message
/// (for a provider's refusal it carries the provider's description, which
/// the BFF passes on only once it has accepted the login's `state`: nothing
/// shown comes from the URL). The error also goes to the context's
/// [`error`](crate::Auth::error). Must be used below
/// [`provide_auth`](crate::provide_auth).
///
/// ```ignore
/// <Route path=path!("/callback/:provider?") view=Callback/>
/// // fn Callback() -> impl IntoView:
/// view! {
///     <CallbackPage
///         fallback=|| view! { <p role="status">"Signing you in…"</p> }
///         error=|e: AuthError| view! { <p role="alert">{e.user_message()}</p> }
///     />
/// }
/// ```
#[component]
pub fn CallbackPage<E, EV>(
    /// Shown while the sign-in completes.
    #[prop(optional, into)]
    fallback: ViewFn,
    /// Shown when the sign-in failed, given why.
    error: E,
    /// The provider whose redirect URI this is, when neither the route's
    /// `:provider` param nor the path (`…/callback/{provider}`) tells it.
    #[prop(optional, into)]
    provider: Option<String>,
) -> impl IntoView
where
    E: Fn(AuthError) -> EV + Send + Sync + 'static,
    EV: IntoView + 'static,
{
    let failed = RwSignal::new(None::<AuthError>);
    finish_sign_in(provider, failed);
    move || match failed.get() {
        None => fallback.run(),
        Some(e) => error(e).into_any(),
    }
}

/// The work of [`CallbackPage`], apart from its views (not generic: one
/// copy whatever the views). A failure goes to `failed`.
#[inline(never)]
fn finish_sign_in(provider: Option<String>, failed: RwSignal<Option<AuthError>>) {
    let auth = use_auth();
    let navigator = StoredValue::new(Navigator::here());
    let provider = provider.or_else(route_provider).or_else(|| {
        callback_provider_from_path(&window().location().pathname().unwrap_or_default())
    });
    let request = take_callback_query();
    if request.code.is_none() && request.error.is_none() {
        failed.set(Some(AuthError::NoCallback));
        return;
    }
    auth.set_error(None);
    // The page a silent sign-in started from, if this is its answer.
    let silent_from = silent::take_return();
    spawn_local(async move {
        match auth.client().callback(provider.as_deref(), &request).await {
            Ok(response) => {
                auth.set_user(Some(response.user));
                if let Some(navigator) = navigator.try_get_value() {
                    navigator.go(safe_return_to(&response.return_to), true);
                }
            }
            // Silent sign-in, and nobody is signed in at the provider: back
            // to where the visitor was, anonymous, no error.
            Err(e) if e.is_silent_failure() && silent_from.is_some() => {
                auth.set_user(None);
                if let (Some(navigator), Some(path)) = (navigator.try_get_value(), silent_from) {
                    navigator.go(safe_return_to(&path), true);
                }
            }
            Err(e) => {
                // "Try again" may lead to a protected page: let it start
                // a new sign-in by itself.
                auto_login::clear();
                auth.set_error(Some(e.clone()));
                failed.try_set(Some(e));
            }
        }
    });
}

/// The `:provider` param of the matched route, inside a `leptos_router` route.
#[cfg(feature = "router")]
fn route_provider() -> Option<String> {
    use leptos_router::params::ParamsMap;
    use_context::<ArcMemo<ParamsMap>>()?
        .with_untracked(|params| params.get("provider"))
        .filter(|p| !p.is_empty())
}

#[cfg(not(feature = "router"))]
fn route_provider() -> Option<String> {
    None
}

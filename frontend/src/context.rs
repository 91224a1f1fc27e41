//! The auth context: the session as signals, and the actions that change it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use keyway_shared::{LogoutResponse, ProviderInfo, User};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::de::DeserializeOwned;

use crate::client::AuthClient;
use crate::error::AuthError;
use crate::options::LoginOptions;
use crate::{query, silent, watch};
use keyway_shared::Prompt;

/// The session state as the UI sees it (see [`Auth::state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthState {
    /// The first `GET /bff/user` has not answered yet.
    Loading,
    /// No session.
    Anonymous,
    /// A signed-in user.
    SignedIn(User),
    /// The session could not be checked (network, server error).
    Failed(AuthError),
}

type ProvidersResult = Result<Vec<ProviderInfo>, AuthError>;

/// Who started the sign-in under way (see [`Auth::redirecting`]): nobody,
/// [`Auth::sign_in`] or a guard, or the [`LoginButton`](crate::LoginButton)
/// with that number.
pub(crate) const NOBODY: u32 = 0;
pub(crate) const SIGN_IN_CALL: u32 = 1;

/// The longest delay `setTimeout` takes (about 24.8 days).
const MAX_TIMEOUT_MS: u64 = i32::MAX as u64;

/// Bookkeeping that no view reads.
#[derive(Default)]
struct Inner {
    /// Bumped by every request for and every setting of the user: an
    /// answer to an older request is dropped.
    generation: u64,
    /// Set while this tab signs out: the end of the session is then not
    /// one that ended elsewhere.
    signing_out: bool,
    /// `GET /bff/providers` was asked for.
    providers_asked: bool,
    /// The check at the session's end.
    expiry: Option<TimeoutHandle>,
    /// The last number given to a sign-in button or an observer.
    last_number: u32,
    /// Called after each change of the user or the providers (the guards).
    observers: Vec<(u32, Observer)>,
    /// Silent sign-in on first load: `Some(provider)` when asked for.
    silent: Option<Option<String>>,
    /// Whether the first answer about the user came.
    answered: bool,
}

/// How [`provide_auth_setup`] sets the auth context up.
#[derive(Debug, Clone, Default)]
pub struct AuthSetup {
    /// The client of the BFF (`/bff` by default).
    pub client: AuthClient,
    /// Try a silent sign-in (`prompt=none`, a top-level round trip to the
    /// provider: no iframe) when the first check finds no session, once per
    /// tab session. When the provider still knows the user, they come back
    /// signed in on the page they were on; when it does not
    /// (`login_required`, `interaction_required`, `consent_required`,
    /// `account_selection_required`) they come back anonymous to the same
    /// page, with no error shown.
    pub silent: bool,
    /// The provider of the silent sign-in; the BFF's first when `None`.
    pub provider: Option<String>,
}

/// A function called after each change of the user or the providers.
pub(crate) type Observer = Arc<dyn Fn() + Send + Sync>;

/// Handle on the auth context ([`provide_auth`], [`use_auth`]); `Copy`, so
/// it moves into closures freely.
///
/// Every state is a signal: [`state`](Auth::state), [`user`](Auth::user),
/// [`loading`](Auth::loading), [`is_signed_in`](Auth::is_signed_in),
/// [`error`](Auth::error), [`redirecting`](Auth::redirecting),
/// [`session_ended`](Auth::session_ended), [`providers`](Auth::providers).
#[derive(Clone, Copy)]
pub struct Auth {
    client: StoredValue<AuthClient>,
    state: RwSignal<AuthState>,
    signed_in: RwSignal<bool>,
    error: RwSignal<Option<AuthError>>,
    signing_in: RwSignal<u32>,
    session_ended: RwSignal<bool>,
    providers: RwSignal<Option<ProvidersResult>>,
    step_up: RwSignal<Option<LoginOptions>>,
    inner: StoredValue<Inner>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

impl Auth {
    /// The client the context was created with.
    pub fn client(&self) -> AuthClient {
        self.client.get_value()
    }

    /// The session state: loading, anonymous, signed in, or failed. While
    /// the session is checked again (on focus, after a `401`) it keeps its
    /// last value, and it changes only when the answer differs, so nothing
    /// flickers.
    pub fn state(&self) -> Signal<AuthState> {
        self.state.into()
    }

    /// The signed-in user; `None` while loading, anonymous or failed.
    pub fn user(&self) -> Signal<Option<User>> {
        let state = self.state;
        Signal::derive(move || match &*state.read() {
            AuthState::SignedIn(user) => Some(user.clone()),
            _ => None,
        })
    }

    /// Whether a user is signed in. Changes only when that does (not when a
    /// check of the session brings a refreshed user).
    pub fn is_signed_in(&self) -> Signal<bool> {
        self.signed_in.into()
    }

    /// Whether the session is still being checked for the first time.
    pub fn loading(&self) -> Signal<bool> {
        let state = self.state;
        Signal::derive(move || matches!(*state.read(), AuthState::Loading))
    }

    /// The last error of a sign-in, sign-out or callback started through
    /// this context ([`LoginButton`](crate::LoginButton),
    /// [`CallbackPage`](crate::CallbackPage), ...); cleared when the next
    /// one starts. Show it in an `aria-live` region of your own.
    pub fn error(&self) -> Signal<Option<AuthError>> {
        self.error.into()
    }

    /// Whether the window is on its way to the provider (a sign-in started:
    /// `POST /bff/login` is under way or answered).
    pub fn redirecting(&self) -> Signal<bool> {
        let signing_in = self.signing_in;
        Signal::derive(move || signing_in.get() != NOBODY)
    }

    /// Whether a session this page knew ended without this tab signing out:
    /// logout in another tab, back-channel logout, expiry. Cleared by the
    /// next sign-in.
    pub fn session_ended(&self) -> Signal<bool> {
        self.session_ended.into()
    }

    /// The sign-in providers of `GET /bff/providers`; asked for the first
    /// time this is called, then kept. `None` until it answers.
    pub fn providers(&self) -> Signal<Option<ProvidersResult>> {
        self.ask_providers();
        self.providers.into()
    }

    /// The single provider's id, once `GET /bff/providers` answered with
    /// exactly one (asking for it the first time); not tracked.
    pub(crate) fn only_provider(&self) -> Option<String> {
        self.ask_providers();
        self.providers
            .try_with_untracked(|p| match p {
                Some(Ok(list)) if list.len() == 1 => Some(list[0].id.clone()),
                _ => None,
            })
            .flatten()
    }

    fn ask_providers(&self) {
        let ask = self
            .inner
            .try_update_value(|i| !std::mem::replace(&mut i.providers_asked, true))
            .unwrap_or(false);
        if ask {
            self.refetch_providers();
        }
    }

    /// Asks `GET /bff/providers` again (after it failed).
    pub fn refetch_providers(&self) {
        let (auth, client, providers) = (*self, self.client(), self.providers);
        spawn_local(async move {
            let list = client.providers().await;
            providers.try_set(Some(list));
            auth.notify();
        });
    }

    /// Asks `GET /bff/user` again. The state keeps its value until it answers.
    pub fn refetch(&self) {
        let Some(generation) = self.next_generation() else {
            return;
        };
        let (auth, client) = (*self, self.client());
        spawn_local(async move {
            let user = client.user().await;
            if auth.inner.try_with_value(|i| i.generation) == Some(generation) {
                auth.apply(user);
            }
        });
    }

    /// Sets the current user without a request (e.g. from `POST
    /// /bff/callback`); a `GET /bff/user` still under way cannot overwrite it.
    pub fn set_user(&self, user: Option<User>) {
        if self.next_generation().is_some() {
            self.apply(Ok(user));
        }
    }

    /// Shows `error` through [`Auth::error`] (or clears it).
    pub fn set_error(&self, error: Option<AuthError>) {
        self.error.set(error);
    }

    /// Starts a sign-in: `POST /bff/login`, then sends the window to the
    /// provider's authorization URL. [`Auth::redirecting`] turns `true` at
    /// once (and stays so on success: the page is being left); a failure
    /// turns it back and is also put in [`Auth::error`].
    pub fn sign_in(
        &self,
        provider: Option<&str>,
        return_to: Option<&str>,
    ) -> impl Future<Output = Result<(), AuthError>> + 'static {
        self.sign_in_by(SIGN_IN_CALL, provider, return_to)
    }

    /// Starts a sign-in by `by` in the background; `then_on_error` runs if
    /// it fails (one copy for every starter of a sign-in).
    #[inline(never)]
    pub(crate) fn spawn_sign_in(
        &self,
        by: u32,
        provider: Option<&str>,
        return_to: Option<&str>,
        on_error: fn(),
    ) {
        let sign_in = self.sign_in_by(by, provider, return_to);
        spawn_local(async move {
            if sign_in.await.is_err() {
                on_error();
            }
        });
    }

    /// [`Auth::sign_in`], started by `by`.
    pub(crate) fn sign_in_by(
        &self,
        by: u32,
        provider: Option<&str>,
        return_to: Option<&str>,
    ) -> impl Future<Output = Result<(), AuthError>> + 'static {
        let options = LoginOptions {
            provider: provider.map(str::to_owned),
            return_to: return_to.map(str::to_owned),
            ..LoginOptions::default()
        };
        self.start(by, options, false)
    }

    /// Every sign-in: `POST /bff/login`, then the window goes to the
    /// provider. A failure is put in [`Auth::error`] unless `quiet` (a
    /// silent sign-in that could not start leaves the visitor anonymous).
    #[inline(never)]
    fn start(
        &self,
        by: u32,
        options: LoginOptions,
        quiet: bool,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), AuthError>>>> {
        self.error.set(None);
        self.step_up.set(None);
        self.signing_in.set(by);
        let (auth, client) = (*self, self.client());
        Box::pin(async move {
            let result = match client.login_with(&options).await {
                Ok(response) => assign_location(&response.authorization_url),
                Err(e) => Err(e),
            };
            if let Err(e) = &result {
                auth.signing_in.try_set(NOBODY);
                if !quiet {
                    auth.error.try_set(Some(e.clone()));
                }
            }
            result
        })
    }

    /// The silent sign-in of [`AuthSetup::silent`]: once per tab session,
    /// when the first answer finds no session, not on the callback route.
    fn maybe_sign_in_silently(&self) {
        let Some(Some(provider)) = self.inner.try_update_value(|i| {
            let first = !std::mem::replace(&mut i.answered, true);
            first.then(|| i.silent.clone()).flatten()
        }) else {
            return;
        };
        let path = query::current_path();
        let on_callback = path.starts_with("/callback");
        if silent::tried() || on_callback {
            return;
        }
        silent::mark(&path);
        let options = LoginOptions {
            provider,
            return_to: Some(path),
            prompt: Some(Prompt::None),
            ..LoginOptions::default()
        };
        let start = self.start(SIGN_IN_CALL, options, true);
        spawn_local(async move {
            let _ = start.await;
        });
    }

    /// Starts a sign-in with every option ([`LoginOptions`]: provider,
    /// return path, `prompt`, `max_age`, `acr_values`, `login_hint`); like
    /// [`Auth::sign_in`] otherwise.
    pub fn sign_in_with(
        &self,
        options: LoginOptions,
    ) -> impl Future<Output = Result<(), AuthError>> + 'static {
        self.start(SIGN_IN_CALL, options, false)
    }

    /// The sign-in an API asked for with `401 step_up_required` (through
    /// [`use_api`](crate::use_api)): its `acr_values` and `max_age`, back to
    /// the page it came from. `None` until then, and again once a sign-in
    /// starts. Show it as a prompt ("This needs a stronger sign-in") with a
    /// button calling [`Auth::step_up`]: nothing is retried by itself.
    pub fn step_up_required(&self) -> Signal<Option<LoginOptions>> {
        self.step_up.into()
    }

    /// Starts the sign-in of [`Auth::step_up_required`] (does nothing when
    /// no step-up was asked for).
    pub fn step_up(&self) {
        if let Some(options) = self.step_up.get_untracked() {
            let start = self.start(SIGN_IN_CALL, options, false);
            spawn_local(async move {
                let _ = start.await;
            });
        }
    }

    /// Signs out: `POST /bff/logout`. Answers the provider's end-session URL
    /// when it has one (the caller sends the window there, see
    /// [`LogoutButton`](crate::LogoutButton)); without one the state is
    /// signed out at once. A failure is also put in [`Auth::error`].
    pub async fn sign_out(&self) -> Result<Option<String>, AuthError> {
        self.error.set(None);
        match self.client().logout().await {
            Ok(LogoutResponse { end_session_url }) => {
                self.inner.try_update_value(|i| i.signing_out = true);
                if end_session_url.is_none() {
                    self.set_user(None);
                }
                Ok(end_session_url)
            }
            Err(e) => {
                self.error.try_set(Some(e.clone()));
                Err(e)
            }
        }
    }

    /// `GET /bff/userinfo`, read as `T`; when the BFF says the session is
    /// gone, the state turns signed out at once.
    pub async fn userinfo<T: DeserializeOwned>(&self) -> Result<T, AuthError> {
        let result = self.client().userinfo().await;
        if let Err(e) = &result {
            self.observe(e);
        }
        result
    }

    /// Learns from an error answer: the BFF's "the session is gone" signs
    /// the user out now; another `401` makes the session be checked again.
    pub(crate) fn observe(&self, error: &AuthError) {
        if error.needs_step_up() {
            self.step_up.set(LoginOptions::step_up_from(error));
        } else if error.session_ended() {
            if self.signed_in.try_get_untracked() == Some(true) {
                self.set_user(None);
            }
        } else if error.status() == Some(401) {
            self.refetch();
        }
    }

    /// Whether a user is signed in now, without tracking.
    pub(crate) fn is_signed_in_untracked(&self) -> bool {
        self.signed_in.try_get_untracked().unwrap_or(false)
    }

    /// Whether a sign-in is under way (the window is leaving), without tracking.
    pub(crate) fn is_redirecting_untracked(&self) -> bool {
        self.signing_in
            .try_get_untracked()
            .is_some_and(|b| b != NOBODY)
    }

    /// Whether the BFF said there is no session, without tracking.
    pub(crate) fn is_anonymous_untracked(&self) -> bool {
        self.state
            .try_with_untracked(|s| *s == AuthState::Anonymous)
            .unwrap_or(false)
    }

    /// The sign-in under way, by whom (reactive).
    pub(crate) fn signing_in_by(&self) -> u32 {
        self.signing_in.get()
    }

    /// A number for a new sign-in button or observer.
    pub(crate) fn next_number(&self) -> u32 {
        self.inner
            .try_update_value(|i| {
                i.last_number = i.last_number.max(SIGN_IN_CALL) + 1;
                i.last_number
            })
            .unwrap_or(NOBODY)
    }

    /// Calls `observer` once the calling component is built, and after each
    /// change of the user or the providers, until the component is dropped.
    /// (Cheaper than an effect per guard.)
    pub(crate) fn on_change(&self, observer: Observer) {
        let key = self.next_number();
        let inner = self.inner;
        inner.try_update_value(|i| i.observers.push((key, observer.clone())));
        on_cleanup(move || {
            inner.try_update_value(|i| i.observers.retain(|(k, _)| *k != key));
        });
        // Not while the component is being built: it may start a sign-in,
        // which sets signals.
        queue_microtask(move || {
            if inner.try_with_value(|i| i.observers.iter().any(|(k, _)| *k == key)) == Some(true) {
                observer();
            }
        });
    }

    fn notify(&self) {
        let observers: Vec<Observer> = self
            .inner
            .try_with_value(|i| i.observers.iter().map(|(_, o)| o.clone()).collect())
            .unwrap_or_default();
        observers.iter().for_each(|o| o());
    }

    /// The page came back from the provider through the back/forward cache:
    /// no sign-in is under way any more, and the session may have changed.
    pub(crate) fn page_restored(&self) {
        self.signing_in.set(NOBODY);
        self.refetch();
    }

    fn next_generation(&self) -> Option<u64> {
        self.inner.try_update_value(|i| {
            i.generation += 1;
            i.generation
        })
    }

    /// Takes an answer about the user: the state, whether the session ended
    /// elsewhere, and the check at the session's end.
    #[inline(never)]
    fn apply(&self, user: Result<Option<User>, AuthError>) {
        let was_signed_in = self.is_signed_in_untracked();
        let expires_at = user
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map(|u| u.expires_at);
        let signed_in = expires_at.is_some();
        let anonymous = matches!(user, Ok(None));
        let by_this_tab = self
            .inner
            .try_update_value(|i| {
                if let Some(handle) = i.expiry.take() {
                    handle.clear();
                }
                let by_this_tab = i.signing_out;
                if signed_in || anonymous {
                    i.signing_out = false;
                }
                by_this_tab
            })
            .unwrap_or(false);
        if let Some(expires_at) = expires_at {
            self.check_at(expires_at);
        }
        if signed_in {
            self.session_ended.set(false);
        } else if anonymous && was_signed_in {
            self.session_ended.set(!by_this_tab);
        }
        if was_signed_in != signed_in {
            self.signed_in.set(signed_in);
        }
        let state = match user {
            Ok(Some(user)) => AuthState::SignedIn(user),
            Ok(None) => AuthState::Anonymous,
            Err(e) => AuthState::Failed(e),
        };
        if self.state.try_with_untracked(|s| *s != state) == Some(true) {
            self.state.set(state);
        }
        if anonymous {
            self.maybe_sign_in_silently();
        } else {
            self.inner.try_update_value(|i| i.answered = true);
        }
        self.notify();
    }

    /// Checks the session again one second after `expires_at` (seconds).
    fn check_at(&self, expires_at: u64) {
        // Whole milliseconds: no float formatting or parsing anywhere.
        let now_ms = js_sys::Date::now() as u64;
        let due_ms = expires_at.saturating_mul(1000).saturating_add(1000);
        let delay = due_ms.saturating_sub(now_ms).min(MAX_TIMEOUT_MS);
        let auth = *self;
        let handle = set_timeout_with_handle(move || auth.refetch(), Duration::from_millis(delay));
        self.inner.try_update_value(|i| i.expiry = handle.ok());
    }
}

/// Sends the window to `url` (leaving the SPA).
pub(crate) fn assign_location(url: &str) -> Result<(), AuthError> {
    window()
        .location()
        .assign(url)
        .map_err(|_| AuthError::Network("could not navigate".to_owned()))
}

/// Provides the auth context for the default client (`/bff`) and returns it.
/// Call once, near the root of the app (above or below the `<Router>`).
pub fn provide_auth() -> Auth {
    provide_auth_with(AuthClient::default())
}

/// Provides the auth context for a given client and returns it.
///
/// It asks `GET /bff/user` at once, and again when the tab comes back to
/// the front (focus, `visibilitychange`), when the session's `expires_at`
/// passes, and when the page is shown again from the back/forward cache:
/// a session that ended elsewhere shows as signed out without a reload.
pub fn provide_auth_with(client: AuthClient) -> Auth {
    provide_auth_setup(AuthSetup {
        client,
        ..AuthSetup::default()
    })
}

/// Provides the auth context as `setup` says (the client, silent sign-in)
/// and returns it; otherwise like [`provide_auth_with`].
pub fn provide_auth_setup(setup: AuthSetup) -> Auth {
    let inner = Inner {
        silent: setup.silent.then_some(setup.provider),
        ..Inner::default()
    };
    let auth = Auth {
        client: StoredValue::new(setup.client),
        state: RwSignal::new(AuthState::Loading),
        signed_in: RwSignal::new(false),
        error: RwSignal::new(None),
        signing_in: RwSignal::new(NOBODY),
        session_ended: RwSignal::new(false),
        providers: RwSignal::new(None),
        step_up: RwSignal::new(None),
        inner: StoredValue::new(inner),
    };
    auth.refetch();
    watch::start(auth);
    on_cleanup(move || {
        if let Some(Some(handle)) = auth.inner.try_update_value(|i| i.expiry.take()) {
            handle.clear();
        }
    });
    provide_context(auth);
    auth
}

/// The auth context provided by [`provide_auth`].
///
/// # Panics
///
/// When no auth context was provided above the calling component.
pub fn use_auth() -> Auth {
    use_context::<Auth>()
        .expect("use_auth: no auth context; call keyway_leptos::provide_auth() first")
}

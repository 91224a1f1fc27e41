//! The auth context: the session as signals, and the actions that change it.

use keyway_shared::{LogoutResponse, ProviderInfo, User};
use leptos::prelude::*;
use serde::de::DeserializeOwned;

use crate::client::AuthClient;
use crate::error::AuthError;
use crate::loader::Loader;
use crate::watch;

/// The session as the UI sees it (see [`Auth::state`]).
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

type UserResult = Result<Option<User>, AuthError>;
type ProvidersResult = Result<Vec<ProviderInfo>, AuthError>;

/// Handle on the auth context ([`provide_auth`], [`use_auth`]); `Copy`, so
/// it moves into closures freely.
///
/// Every state is a signal: [`state`](Auth::state), [`user`](Auth::user),
/// [`loading`](Auth::loading), [`error`](Auth::error),
/// [`redirecting`](Auth::redirecting), [`session_ended`](Auth::session_ended).
#[derive(Clone, Copy)]
pub struct Auth {
    client: StoredValue<AuthClient>,
    user: Loader<UserResult>,
    state: Memo<AuthState>,
    error: RwSignal<Option<AuthError>>,
    redirecting: RwSignal<bool>,
    session_ended: RwSignal<bool>,
    /// Set while this tab signs out, so that the end of the session is not
    /// taken for one that ended elsewhere.
    signing_out: StoredValue<bool>,
    providers: Loader<ProvidersResult>,
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
    /// last value, so nothing flickers.
    pub fn state(&self) -> Signal<AuthState> {
        self.state.into()
    }

    /// The signed-in user; `None` while loading, anonymous or failed.
    pub fn user(&self) -> Signal<Option<User>> {
        let state = self.state;
        Signal::derive(move || match state.get() {
            AuthState::SignedIn(user) => Some(user),
            _ => None,
        })
    }

    /// Whether the session is still being checked for the first time.
    pub fn loading(&self) -> Signal<bool> {
        let state = self.state;
        Signal::derive(move || state.with(|s| *s == AuthState::Loading))
    }

    /// The last error of a sign-in, sign-out or session check started
    /// through this context (a [`LoginButton`](crate::LoginButton), the
    /// [`CallbackPage`](crate::CallbackPage), ...); cleared when the next
    /// one starts. Show it in an `aria-live` region of your own.
    pub fn error(&self) -> Signal<Option<AuthError>> {
        self.error.into()
    }

    /// Whether the window is on its way to the provider (a sign-in started
    /// and `POST /bff/login` answered or is under way).
    pub fn redirecting(&self) -> Signal<bool> {
        self.redirecting.into()
    }

    /// Whether a session this page knew ended without this tab signing out:
    /// logout in another tab, back-channel logout, expiry. Cleared by the
    /// next sign-in.
    pub fn session_ended(&self) -> Signal<bool> {
        self.session_ended.into()
    }

    /// The sign-in providers of `GET /bff/providers`; the request is made
    /// the first time this is called, then kept. `None` until it answers.
    pub fn providers(&self) -> Signal<Option<ProvidersResult>> {
        self.providers.ensure();
        self.providers.signal().into()
    }

    /// Asks `GET /bff/providers` again (after it failed).
    pub fn refetch_providers(&self) {
        self.providers.refetch();
    }

    /// Asks `GET /bff/user` again. The state keeps its value until it answers.
    pub fn refetch(&self) {
        self.user.refetch();
    }

    /// Sets the current user without a request (e.g. from `POST
    /// /bff/callback`); a `GET /bff/user` still under way cannot overwrite it.
    pub fn set_user(&self, user: Option<User>) {
        self.user.set(Ok(user));
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
        self.error.set(None);
        self.redirecting.set(true);
        let auth = *self;
        let client = self.client();
        let (provider, return_to) = (provider.map(str::to_owned), return_to.map(str::to_owned));
        async move {
            let result = match client
                .login(provider.as_deref(), return_to.as_deref())
                .await
            {
                Ok(response) => assign_location(&response.authorization_url),
                Err(e) => Err(e),
            };
            if let Err(e) = &result {
                auth.redirecting.set(false);
                auth.error.set(Some(e.clone()));
            }
            result
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
                self.signing_out.set_value(true);
                if end_session_url.is_none() {
                    self.set_user(None);
                }
                Ok(end_session_url)
            }
            Err(e) => {
                self.error.set(Some(e.clone()));
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
        if error.session_ended() {
            if self
                .state
                .try_with_untracked(|s| matches!(s, AuthState::SignedIn(_)))
                == Some(true)
            {
                self.set_user(None);
            }
        } else if error.status() == Some(401) {
            self.refetch();
        }
    }

    /// Whether a user is signed in now, without tracking.
    pub(crate) fn is_signed_in_untracked(&self) -> bool {
        self.state
            .try_with_untracked(|s| matches!(s, AuthState::SignedIn(_)))
            .unwrap_or(false)
    }

    /// When the signed-in user's session ends (seconds since the epoch); reactive.
    pub(crate) fn expires_at(&self) -> Option<u64> {
        self.state.with(|s| match s {
            AuthState::SignedIn(user) => Some(user.expires_at),
            _ => None,
        })
    }

    /// Clears [`Auth::redirecting`] (the page came back from the provider
    /// through the back/forward cache).
    pub(crate) fn stop_redirecting(&self) {
        self.redirecting.set(false);
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
    let for_user = client.clone();
    let for_providers = client.clone();
    let user = Loader::new(move || {
        let client = for_user.clone();
        async move { client.user().await }
    });
    let state = Memo::new(move |_| match user.get() {
        None => AuthState::Loading,
        Some(Ok(Some(user))) => AuthState::SignedIn(user),
        Some(Ok(None)) => AuthState::Anonymous,
        Some(Err(e)) => AuthState::Failed(e),
    });
    let auth = Auth {
        client: StoredValue::new(client),
        user,
        state,
        error: RwSignal::new(None),
        redirecting: RwSignal::new(false),
        session_ended: RwSignal::new(false),
        signing_out: StoredValue::new(false),
        providers: Loader::lazy(move || {
            let client = for_providers.clone();
            async move { client.providers().await }
        }),
    };
    track_session_end(auth);
    watch::start(auth);
    provide_context(auth);
    auth
}

/// Sets [`Auth::session_ended`] when a signed-in state turns anonymous
/// without this tab signing out.
fn track_session_end(auth: Auth) {
    Effect::new(move |was_signed_in: Option<bool>| {
        let signed_in = auth.state.with(|s| matches!(s, AuthState::SignedIn(_)));
        let anonymous = auth.state.with(|s| *s == AuthState::Anonymous);
        if signed_in {
            auth.session_ended.set(false);
            auth.signing_out.set_value(false);
        } else if anonymous && was_signed_in == Some(true) {
            let by_this_tab = auth.signing_out.get_value();
            auth.signing_out.set_value(false);
            auth.session_ended.set(!by_this_tab);
        }
        signed_in
    });
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

//! The auth context: the current user as a reactive resource.

use keyway_shared::User;
use leptos::prelude::*;

use super::client::{AuthClient, AuthError};
use super::loader::Loader;

/// The session state as the UI sees it (see [`Auth::state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthState {
    /// `GET /bff/user` has not answered yet.
    Loading,
    /// No session.
    Anonymous,
    /// A signed-in user.
    SignedIn(User),
    /// The session could not be checked; a sentence for a person.
    Failed(String),
}

/// Handle on the auth context; cheap to copy into closures.
#[derive(Clone, Copy)]
pub struct Auth {
    client: StoredValue<AuthClient>,
    user: Loader<Result<Option<User>, AuthError>>,
}

impl Auth {
    /// The client the context was created with.
    pub fn client(&self) -> AuthClient {
        self.client.get_value()
    }

    /// The loader of `GET /bff/user` (its value is `None` until the first answer).
    pub fn loader(&self) -> Loader<Result<Option<User>, AuthError>> {
        self.user
    }

    /// The current state; reactive. Keeps the last value while refetching.
    pub fn state(&self) -> AuthState {
        match self.user.get() {
            None => AuthState::Loading,
            Some(Ok(Some(user))) => AuthState::SignedIn(user),
            Some(Ok(None)) => AuthState::Anonymous,
            Some(Err(e)) => AuthState::Failed(e.user_message()),
        }
    }

    /// The signed-in user, `None` while loading, anonymous or failed; reactive.
    pub fn user(&self) -> Option<User> {
        self.user.get().and_then(|r| r.ok().flatten())
    }

    /// Whether a user is signed in; reactive.
    pub fn is_signed_in(&self) -> bool {
        self.user.with(|r| matches!(r, Some(Ok(Some(_)))))
    }

    /// Asks `GET /bff/user` again (after a login or logout).
    pub fn refetch(&self) {
        self.user.refetch();
    }

    /// Sets the current user without a request (e.g. from `POST /bff/callback`);
    /// an older `GET /bff/user` still under way cannot overwrite it.
    pub fn set_user(&self, user: Option<User>) {
        self.user.set(Ok(user));
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

/// Provides the auth context for the default client (`/bff`) and returns it.
/// Call once, near the root of the app.
pub fn provide_auth() -> Auth {
    provide_auth_with(AuthClient::default())
}

/// Provides the auth context for a given client and returns it.
pub fn provide_auth_with(client: AuthClient) -> Auth {
    let for_fetch = client.clone();
    let auth = Auth {
        client: StoredValue::new(client),
        user: Loader::new(move || {
            let client = for_fetch.clone();
            async move { client.user().await }
        }),
    };
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
        .expect("use_auth: no auth context; call keyway_frontend::auth::provide_auth() first")
}

/// The client of the auth context, or the default client without one.
pub(crate) fn context_client() -> AuthClient {
    use_context::<Auth>()
        .map(|auth| auth.client())
        .unwrap_or_default()
}

//! [`Loader`]: a small, refetchable async value.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use leptos::prelude::*;
use leptos::task::spawn_local;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;
type Fetcher<T> = Arc<dyn Fn() -> BoxFuture<T> + Send + Sync>;

/// The latest result of an async request, as a signal; refetchable.
///
/// Like Leptos' `LocalResource`, with two guarantees the session needs: a
/// value set with [`Loader::set`] or fetched later is never overwritten by
/// the answer of an older, slower request, and while refetching it keeps
/// the last value (nothing flickers). The fetcher is type-erased, so one
/// copy of the code serves every loader.
pub struct Loader<T: Send + Sync + 'static> {
    value: RwSignal<Option<T>>,
    generation: StoredValue<u64>,
    fetcher: StoredValue<Fetcher<T>>,
}

impl<T: Send + Sync + 'static> Clone for Loader<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Loader<T> {}

impl<T: Send + Sync + 'static> std::fmt::Debug for Loader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Loader")
    }
}

impl<T: Send + Sync + 'static> Loader<T> {
    /// Creates the loader and starts the first request at once.
    pub fn new<F, Fut>(fetcher: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let loader = Self::lazy(fetcher);
        loader.refetch();
        loader
    }

    /// Creates the loader without a request: the first comes with
    /// [`Loader::ensure`] (or [`Loader::refetch`]).
    pub fn lazy<F, Fut>(fetcher: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let fetcher: Fetcher<T> = Arc::new(move || Box::pin(fetcher()));
        Self {
            value: RwSignal::new(None),
            generation: StoredValue::new(0),
            fetcher: StoredValue::new(fetcher),
        }
    }

    /// Starts the first request unless one was made (or a value set) already.
    pub fn ensure(&self) {
        if self.generation.try_get_value() == Some(0) {
            self.refetch();
        }
    }

    /// Runs the request again; the current value stays until it answers.
    pub fn refetch(&self) {
        let Some(fetcher) = self.fetcher.try_get_value() else {
            return;
        };
        let Some(generation) = self.generation.try_update_value(|g| {
            *g += 1;
            *g
        }) else {
            return;
        };
        let this = *self;
        spawn_local(async move {
            let value = fetcher().await;
            // Ignore the answer when a newer request or `set` came meanwhile,
            // or when the owner is gone.
            if this.generation.try_get_value() == Some(generation) {
                this.value.try_set(Some(value));
            }
        });
    }

    /// Sets the value now; answers of requests started earlier are dropped.
    pub fn set(&self, value: T) {
        self.generation.update_value(|g| *g += 1);
        self.value.set(Some(value));
    }

    /// The value, `None` until the first answer; reactive.
    pub fn get(&self) -> Option<T>
    where
        T: Clone,
    {
        self.value.get()
    }

    /// The value, `None` until the first answer; not reactive.
    pub fn get_untracked(&self) -> Option<T>
    where
        T: Clone,
    {
        self.value.get_untracked()
    }

    /// Applies `f` to the value without cloning it; reactive.
    pub fn with<R>(&self, f: impl FnOnce(&Option<T>) -> R) -> R {
        self.value.with(f)
    }

    /// The value as a read-only signal.
    pub fn signal(&self) -> ReadSignal<Option<T>> {
        self.value.read_only()
    }
}

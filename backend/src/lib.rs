//! Keyway's backend-for-frontend: the confidential OAuth 2.0 / OpenID Connect
//! client behind a Leptos SPA.
//!
//! The browser holds only an HttpOnly session cookie; the BFF keeps state,
//! PKCE verifier and nonce, exchanges the code, validates the ID token, keeps
//! the tokens server-side and calls the provider with them.
//!
//! Use it as a library — [`router`] gives an Axum `Router` to nest in your own
//! app — or run the `keyway` binary. The login flow reads top to bottom in
//! [`login`]; the HTTP surface is in [`routes`].

#![forbid(unsafe_code)]

pub mod app;
pub mod backchannel;
pub mod config;
pub mod error;
pub mod extract;
pub mod guard;
pub mod login;
pub mod metrics;
pub mod provider;
pub mod proxy;
pub mod routes;
pub mod secret;
pub mod session;
pub mod static_files;
pub mod telemetry;
pub mod tokens;

pub use app::App;
pub use config::Config;
pub use error::Error;

/// Builds the Keyway router for a configuration: opens the session store and
/// starts loading the providers' discovery in the background.
pub async fn router(config: Config) -> Result<axum::Router, String> {
    let app = App::new(config).await?;
    Ok(routes::router(app))
}

/// Serves until `shutdown` resolves, then stops accepting connections and
/// lets in-flight requests finish, for at most `config.shutdown_timeout`.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("listen: cannot bind {}: {e}", config.listen))?;
    serve_on(listener, config, shutdown).await
}

/// Like [`serve`], on a listener already bound (tests bind port 0).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    use std::future::IntoFuture;
    let grace = config.shutdown_timeout;
    let app = router(config).await?;
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = signalled.send(());
        })
        .into_future();
    // The bound: once the signal came, in-flight requests get `grace`.
    let bound = async move {
        if on_signal.await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result.map_err(|e| e.to_string()),
        () = bound => {
            tracing::warn!(
                timeout = %humantime::format_duration(grace),
                "shutdown timeout reached; exiting with requests still in flight"
            );
            Ok(())
        }
    }
}

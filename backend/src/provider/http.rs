//! The outbound HTTP client: reqwest over rustls, with timeouts on every call,
//! no redirects followed (a provider cannot bounce the BFF's credentials to
//! another host), and a cap on response size (a provider that answers garbage
//! cannot grow the BFF's memory).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Largest response body read from a provider.
pub const MAX_PROVIDER_RESPONSE: usize = 1024 * 1024;

/// Why an outbound call failed. Never carries a request body or header.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No answer within the configured timeout.
    #[error("the provider did not answer in time")]
    Timeout,
    /// Connection refused, DNS failure, TLS failure, reset...
    #[error("cannot reach the provider: {0}")]
    Transport(String),
    /// The answer was larger than [`MAX_PROVIDER_RESPONSE`].
    #[error("the provider's answer is too large")]
    TooLarge,
}

impl HttpError {
    fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else {
            // reqwest's Display names the URL without query; strip the source
            // chain's details that may quote bodies.
            Self::Transport(e.without_url().to_string())
        }
    }
}

/// Installs rustls' ring provider once per process (reqwest is built without
/// a default provider so the crypto backend is chosen here).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A shared client for calls to providers and upstream APIs.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
}

/// The future an openidconnect/oauth2 request runs on.
pub type OidcFuture =
    Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send>>;

impl HttpClient {
    /// A client whose every call times out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        install_crypto_provider();
        let inner = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("keyway/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend initialises");
        Self { inner }
    }

    /// The underlying reqwest client (used by the API proxy).
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// An adapter for openidconnect / oauth2's `AsyncHttpClient`.
    pub fn oidc(&self) -> impl Fn(openidconnect::HttpRequest) -> OidcFuture + Send + Sync + use<> {
        let client = self.inner.clone();
        move |request: openidconnect::HttpRequest| {
            let client = client.clone();
            Box::pin(async move {
                let request = reqwest::Request::try_from(request).map_err(|e| {
                    HttpError::Transport(format!("bad request: {}", e.without_url()))
                })?;
                let response = client
                    .execute(request)
                    .await
                    .map_err(HttpError::from_reqwest)?;
                let status = response.status();
                let headers = response.headers().clone();
                let body = read_capped(response, MAX_PROVIDER_RESPONSE).await?;
                let mut out = http::Response::new(body);
                *out.status_mut() = status;
                *out.headers_mut() = headers;
                Ok(out)
            })
        }
    }
}

/// Sends a request to a provider and reads its answer (at most
/// [`MAX_PROVIDER_RESPONSE`]); failures become the contract's errors:
/// `504 provider_timeout` or `502 provider_error` naming `what` (never the URL's query).
pub async fn send_to_provider(
    request: reqwest::RequestBuilder,
    what: &str,
) -> Result<(reqwest::StatusCode, Vec<u8>), crate::error::Error> {
    use crate::error::Error;
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            Error::ProviderTimeout
        } else {
            Error::ProviderError(format!("{what}: {}", e.without_url()))
        }
    })?;
    let status = response.status();
    let body = read_capped(response, MAX_PROVIDER_RESPONSE)
        .await
        .map_err(|e| match e {
            HttpError::Timeout => Error::ProviderTimeout,
            other => Error::ProviderError(format!("{what}: {other}")),
        })?;
    Ok((status, body))
}

/// Reads a response body, refusing more than `cap` bytes.
pub async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, HttpError> {
    if response.content_length().is_some_and(|l| l as usize > cap) {
        return Err(HttpError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(HttpError::from_reqwest)? {
        if body.len() + chunk.len() > cap {
            return Err(HttpError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

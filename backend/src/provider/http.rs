//! The outbound HTTP client of provider calls: reqwest over rustls (the API
//! proxy's pooled client, built here with the same roots, is
//! [`super::api_client`]), with a timeout on every
//! call, no redirects followed (a provider cannot bounce the BFF's
//! credentials to another host), and a cap on response size (a provider that
//! answers garbage cannot grow the BFF's memory).
//!
//! Trust: the system's certificate authorities plus, if configured
//! (`tls_ca_file`), extra ones — a company CA, or a test CA. An application
//! embedding Keyway may adjust the client further (a proxy, DNS overrides)
//! through [`HttpOptions::customize`], after which Keyway's own policies
//! (timeouts, no redirects) are applied again so they cannot be lost.

use super::api_client::ApiClient;
use super::dpop::{DpopKey, Nonces};
use super::error::ProtocolError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Largest response body read from a provider.
pub(crate) const MAX_PROVIDER_RESPONSE: usize = 1024 * 1024;

/// Why one outbound call failed. Never carries a request body or header.
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
            // Without the URL (its query may hold a token) and without bodies.
            Self::Transport(e.without_url().to_string())
        }
    }

    /// As a protocol error of `what` (`discovery`, `PAR`...).
    pub fn during(self, what: &str) -> ProtocolError {
        match self {
            HttpError::Timeout => ProtocolError::Timeout,
            other => ProtocolError::Provider(format!("{what}: {other}")),
        }
    }
}

/// Installs rustls' ring provider once per process (reqwest is built without
/// a default provider so the crypto backend is chosen here).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A function that adjusts the reqwest client (proxies, DNS overrides...).
pub(crate) type Customize =
    Arc<dyn Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync>;

/// How the outbound client is built.
#[derive(Clone, Default)]
pub struct HttpOptions {
    /// Extra certificate authorities to trust, PEM.
    pub extra_roots_pem: Vec<Vec<u8>>,
    /// Adjustments by an embedding application.
    pub customize: Option<Customize>,
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("extra_roots", &self.extra_roots_pem.len())
            .field("customized", &self.customize.is_some())
            .finish()
    }
}

/// A shared client for calls to providers (reqwest) and, through
/// [`HttpClient::api`], to upstream APIs.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    /// The API proxy's client (pooled hyper; the customized reqwest client
    /// when the application adjusted it).
    api: ApiClient,
    /// The servers' DPoP nonces (shared by every clone).
    nonces: Arc<Nonces>,
}

/// The future an openidconnect/oauth2 request runs on.
pub(crate) type OidcFuture =
    Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send>>;

impl HttpClient {
    /// A client whose every call times out after `timeout`.
    pub fn new(timeout: Duration, options: &HttpOptions) -> Result<Self, String> {
        install_crypto_provider();
        let mut roots = Vec::new();
        for pem in &options.extra_roots_pem {
            let mut certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("tls_ca_file: not a PEM certificate bundle: {e}"))?;
            if certs.is_empty() {
                return Err("tls_ca_file: no certificate in the file".into());
            }
            roots.append(&mut certs);
        }
        let mut builder = reqwest::Client::builder().tls_certs_merge(roots);
        if let Some(customize) = &options.customize {
            builder = customize(builder);
        }
        let inner = builder
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("keyway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("the HTTP client cannot be built: {e}"))?;
        let api = match &options.customize {
            Some(_) => ApiClient::custom(inner.clone(), timeout),
            None => ApiClient::pooled(timeout, &options.extra_roots_pem)?,
        };
        Ok(Self {
            inner,
            api,
            nonces: Arc::default(),
        })
    }

    /// The servers' DPoP nonces, by origin.
    pub(crate) fn dpop_nonces(&self) -> &Nonces {
        &self.nonces
    }

    /// The underlying reqwest client (the provider calls').
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// The API proxy's client.
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// An adapter for openidconnect / oauth2's `AsyncHttpClient`.
    pub fn oidc(&self) -> impl Fn(openidconnect::HttpRequest) -> OidcFuture + Send + Sync + use<> {
        self.oidc_with(None)
    }

    /// The same adapter, adding a fresh DPoP proof (with the origin's last
    /// nonce) to every request when `dpop` is given, and remembering the
    /// nonces the answers carry.
    pub(crate) fn oidc_with(
        &self,
        dpop: Option<DpopKey>,
    ) -> impl Fn(openidconnect::HttpRequest) -> OidcFuture + Send + Sync + use<> {
        let client = self.inner.clone();
        let nonces = self.nonces.clone();
        move |request: openidconnect::HttpRequest| {
            let client = client.clone();
            let nonces = nonces.clone();
            let dpop = dpop.clone();
            Box::pin(async move {
                let mut request = reqwest::Request::try_from(request).map_err(|e| {
                    HttpError::Transport(format!("bad request: {}", e.without_url()))
                })?;
                let url = request.url().clone();
                if let Some(key) = &dpop {
                    let proof = key
                        .proof(
                            request.method().as_str(),
                            &url,
                            None,
                            nonces.get(&url).as_deref(),
                        )
                        .map_err(HttpError::Transport)?;
                    let value = reqwest::header::HeaderValue::try_from(proof)
                        .map_err(|_| HttpError::Transport("bad DPoP proof".into()))?;
                    request.headers_mut().insert("dpop", value);
                }
                let response = client
                    .execute(request)
                    .await
                    .map_err(HttpError::from_reqwest)?;
                let status = response.status();
                let headers = response.headers().clone();
                if dpop.is_some() {
                    nonces.remember(&url, &headers);
                }
                let body = read_capped(response, MAX_PROVIDER_RESPONSE).await?;
                let mut out = http::Response::new(body);
                *out.status_mut() = status;
                *out.headers_mut() = headers;
                Ok(out)
            })
        }
    }

    /// Sends a request to a provider and reads its answer (at most
    /// [`MAX_PROVIDER_RESPONSE`]).
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), HttpError> {
        let (status, _, body) = self.send_full(request).await?;
        Ok((status, body))
    }

    /// Like [`HttpClient::send`], with the answer's headers.
    pub(crate) async fn send_full(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>), HttpError> {
        let response = request.send().await.map_err(HttpError::from_reqwest)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_capped(response, MAX_PROVIDER_RESPONSE).await?;
        Ok((status, headers, body))
    }
}

/// Reads a response body, refusing more than `cap` bytes.
pub(crate) async fn read_capped(
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

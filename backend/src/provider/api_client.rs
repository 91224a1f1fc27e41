//! The API proxy's outbound client: hyper-util's pooled client over
//! hyper-rustls, which costs about a third of reqwest's CPU per call (no
//! URL, request and response wrappers to build; measured in
//! `BENCHMARKS.md`). reqwest stays for the provider calls, where its
//! form, JSON and error helpers are used.
//!
//! The same policies as the provider client ([`super::http`]): the same
//! trust (rustls on ring, the platform's verifier with the configured
//! extra roots, as reqwest builds it), a connect timeout of the timeout but
//! at most 5 s, a total timeout per call that also bounds the answer's body
//! ([`Deadline`]), no redirects followed (hyper never follows one), HTTP/1.1
//! or HTTP/2 by ALPN, idle connections pooled for 90 s. An application that
//! adjusted the reqwest client ([`super::http::HttpOptions::customize`]:
//! a proxy, DNS overrides) keeps that client for its API calls too, so its
//! choices are never bypassed.

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body::Frame;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// A boxed error, as hyper and reqwest give them.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why one call to an API failed (its sources say more: the browser's body
/// stream's own errors are among them).
#[derive(Debug, thiserror::Error)]
pub enum ApiCallError {
    /// No answer (headers) within the call's timeout.
    #[error("the API did not answer in time")]
    Timeout,
    /// The call failed: connection, TLS, or the request body.
    #[error("the API call failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The answer's body ran past the call's deadline.
#[derive(Debug, thiserror::Error)]
#[error("the API's answer did not end in time")]
pub(crate) struct BodyDeadline;

/// The client of API calls: pooled hyper, or the application's reqwest.
#[derive(Debug, Clone)]
pub struct ApiClient {
    inner: Inner,
    timeout: Duration,
    user_agent: HeaderValue,
}

#[derive(Debug, Clone)]
enum Inner {
    Pooled(Arc<Client<HttpsConnector<HttpConnector>, Body>>),
    Custom(reqwest::Client),
}

impl ApiClient {
    /// The pooled client trusting the platform's roots and `extra_roots_pem`.
    pub(crate) fn pooled(timeout: Duration, extra_roots_pem: &[Vec<u8>]) -> Result<Self, String> {
        let tls = tls_config(extra_roots_pem)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout.min(Duration::from_secs(5))));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Ok(Self::with(Inner::Pooled(Arc::new(client)), timeout))
    }

    /// API calls through an application's own reqwest client.
    pub(crate) fn custom(client: reqwest::Client, timeout: Duration) -> Self {
        Self::with(Inner::Custom(client), timeout)
    }

    fn with(inner: Inner, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            user_agent: HeaderValue::from_static(concat!("keyway/", env!("CARGO_PKG_VERSION"))),
        }
    }

    /// Sends `request` (absolute URI) and returns the answer as it comes:
    /// redirects are answers. `timeout` (else the client's) bounds the call
    /// until the answer's last byte.
    pub async fn send(
        &self,
        mut request: Request<Body>,
        timeout: Option<Duration>,
    ) -> Result<Response<Body>, ApiCallError> {
        let deadline = Instant::now() + timeout.unwrap_or(self.timeout);
        if !request.headers().contains_key(header::USER_AGENT) {
            request
                .headers_mut()
                .insert(header::USER_AGENT, self.user_agent.clone());
        }
        let answer = match &self.inner {
            Inner::Pooled(client) => {
                let sent = tokio::time::timeout_at(deadline, client.request(request)).await;
                let response = sent
                    .map_err(|_| ApiCallError::Timeout)?
                    .map_err(|e| ApiCallError::Failed(e.into()))?;
                response.map(Body::new)
            }
            Inner::Custom(client) => {
                let (parts, body) = request.into_parts();
                let body = reqwest::Body::wrap_stream(http_body_util::BodyDataStream::new(body));
                let request = reqwest::Request::try_from(Request::from_parts(parts, body))
                    .map_err(|e| ApiCallError::Failed(e.without_url().into()))?;
                let sent = tokio::time::timeout_at(deadline, client.execute(request)).await;
                let response = sent.map_err(|_| ApiCallError::Timeout)?.map_err(|e| {
                    if e.is_timeout() {
                        ApiCallError::Timeout
                    } else {
                        ApiCallError::Failed(e.without_url().into())
                    }
                })?;
                Response::from(response).map(Body::new)
            }
        };
        Ok(answer.map(|body| {
            Body::new(Deadline {
                body,
                sleep: tokio::time::sleep_until(deadline),
            })
        }))
    }
}

/// rustls as reqwest configures it: ring, TLS 1.2 and 1.3, the platform's
/// verifier (with the extra roots when there are any).
fn tls_config(extra_roots_pem: &[Vec<u8>]) -> Result<rustls::ClientConfig, String> {
    super::http::install_crypto_provider();
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let mut extra = Vec::new();
    for pem in extra_roots_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            extra.push(cert.map_err(|e| format!("tls_ca_file: not a PEM certificate: {e}"))?);
        }
    }
    let verifier = if extra.is_empty() {
        rustls_platform_verifier::Verifier::new(provider.clone())
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
    }
    .map_err(|e| format!("the TLS verifier cannot be built: {e}"))?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

pin_project_lite::pin_project! {
    /// A body that fails with [`BodyDeadline`] once its call's deadline
    /// passes (reqwest's total timeout bounds the body the same way).
    struct Deadline {
        #[pin]
        body: Body,
        #[pin]
        sleep: Sleep,
    }
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.body.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyDeadline.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

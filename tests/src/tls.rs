//! A TEST certificate authority, made at run time with `rcgen` (dev/test
//! only: its keys live in memory and in a temporary directory that is deleted
//! with the last handle, and nothing here is ever committed), plus the TLS
//! plumbing the fixtures share:
//!
//! - [`TestCa::new`] makes a self-signed CA; [`TestCa::leaf`] issues server
//!   certificates for DNS names and IP addresses (`"localhost"`,
//!   `"127.0.0.1"`, `"accounts.google.com"`, ...);
//! - PEM strings and PEM files ([`TestCa::ca_pem_path`] is what a BFF is told
//!   to trust; [`TestCertificate::cert_path`] / [`TestCertificate::key_path`]
//!   are what a Node `https` server loads);
//! - a `rustls::ServerConfig` for Rust-side TLS servers
//!   ([`TestCertificate::server_config`]) and an [`axum::serve::Listener`]
//!   that terminates TLS ([`TlsListener`]);
//! - a `reqwest::Client` that trusts the CA and nothing else
//!   ([`TestCa::client`]).
//!
//! rustls runs on `ring`, like the rest of the workspace:
//! [`install_crypto_provider`] installs it process-wide, idempotently.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a [`TlsListener`] waits for one client's TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Installs `ring` as the process-wide rustls crypto provider (idempotent;
/// a provider installed earlier is kept).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A test certificate authority: a self-signed CA certificate and its key,
/// generated at run time (ECDSA P-256). TEST-ONLY: trust it in test clients
/// only.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    ca_path: PathBuf,
    dir: Arc<tempfile::TempDir>,
    next_leaf: AtomicUsize,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("ca_path", &self.ca_path)
            .finish_non_exhaustive()
    }
}

/// A server certificate issued by a [`TestCa`], with its private key. Its PEM
/// files live in the CA's temporary directory, which stays until the CA and
/// all its leaves are dropped.
#[derive(Clone)]
pub struct TestCertificate {
    names: Vec<String>,
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
    cert_path: PathBuf,
    key_path: PathBuf,
    _dir: Arc<tempfile::TempDir>,
}

impl std::fmt::Debug for TestCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCertificate")
            .field("names", &self.names)
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl TestCa {
    /// Makes a new CA (a fresh key and a self-signed certificate, CN
    /// "Keyway test CA") and writes its certificate to `ca.pem` in a new
    /// temporary directory.
    ///
    /// # Panics
    /// If key generation or the temporary directory fails (a broken test host).
    pub fn new() -> TestCa {
        install_crypto_provider();
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty SAN list");
        params
            .distinguished_name
            .push(DnType::CommonName, "Keyway test CA (dev/test only)");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Keyway tests");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("generate the CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-sign the CA");
        let ca_pem = issuer.pem();
        let ca_der = issuer.der().clone();
        let dir = tempfile::Builder::new()
            .prefix("keyway-test-ca-")
            .tempdir()
            .expect("a temporary directory for the test CA");
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, &ca_pem).expect("write ca.pem");
        TestCa {
            issuer,
            ca_pem,
            ca_der,
            ca_path,
            dir: Arc::new(dir),
            next_leaf: AtomicUsize::new(1),
        }
    }

    /// Issues a server certificate (serverAuth) for `names`: each is an IP
    /// address (`"127.0.0.1"`, `"::1"`) or a DNS name (`"localhost"`,
    /// `"accounts.google.com"`). Writes `leaf-N.pem` and `leaf-N.key.pem`
    /// (PKCS#8) next to the CA's PEM.
    ///
    /// # Panics
    /// If `names` is empty or holds something that is neither an IP address
    /// nor a valid DNS name.
    pub fn leaf(&self, names: &[&str]) -> TestCertificate {
        assert!(!names.is_empty(), "a leaf certificate needs a name");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone())
            .unwrap_or_else(|e| panic!("bad certificate names {names:?}: {e}"));
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("generate a leaf key");
        let cert = params
            .signed_by(&key, &*self.issuer)
            .expect("sign the leaf certificate");

        let n = self.next_leaf.fetch_add(1, Ordering::SeqCst);
        let cert_path = self.dir.path().join(format!("leaf-{n}.pem"));
        let key_path = self.dir.path().join(format!("leaf-{n}.key.pem"));
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        std::fs::write(&cert_path, &cert_pem).expect("write the leaf certificate");
        std::fs::write(&key_path, &key_pem).expect("write the leaf key");
        TestCertificate {
            names,
            cert_pem,
            key_pem,
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
            cert_path,
            key_path,
            _dir: Arc::clone(&self.dir),
        }
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// The path of the CA certificate's PEM file: what a BFF is told to trust.
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca_path
    }

    /// The temporary directory holding the CA's and its leaves' PEM files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA as a reqwest root certificate.
    pub fn reqwest_certificate(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_der(self.ca_der.as_ref()).expect("the CA certificate parses")
    }

    /// A reqwest client builder that trusts this CA and nothing else
    /// (no system roots), ignores proxies and follows no redirects; add
    /// `.resolve(host, addr)` and the like, then build.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        install_crypto_provider();
        reqwest::Client::builder()
            .tls_certs_only([self.reqwest_certificate()])
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
    }

    /// A reqwest client that trusts this CA and nothing else (see
    /// [`TestCa::client_builder`]).
    pub fn client(&self) -> reqwest::Client {
        self.client_builder()
            .build()
            .expect("a reqwest client trusting the test CA builds")
    }
}

impl Default for TestCa {
    /// Same as [`TestCa::new`].
    fn default() -> Self {
        TestCa::new()
    }
}

impl TestCertificate {
    /// The names (SANs) the certificate was issued for, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The path of the certificate's PEM file.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The path of the private key's PEM file (PKCS#8).
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }

    /// A rustls server configuration (ring provider, TLS 1.2 and 1.3, no
    /// client authentication, ALPN `http/1.1`) presenting this certificate.
    ///
    /// # Panics
    /// If rustls refuses the key (it does not for keys made here).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        install_crypto_provider();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![self.cert_der.clone()], key)
        .expect("rustls accepts the test certificate and key");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A TLS-terminating [`axum::serve::Listener`]: accepts TCP connections and
/// runs each TLS handshake on its own task (bounded by 10 s), so one slow or
/// broken client does not hold up the others. Connections whose handshake
/// fails are dropped (a client that does not trust the CA sees its own
/// certificate error). Use it as `axum::serve(listener, router)`.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accept_task: JoinHandle<()>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    /// Binds `addr` (e.g. `127.0.0.1:0` for a free loopback port) and serves
    /// TLS with `config`.
    pub async fn bind(addr: SocketAddr, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Self::from_tcp(listener, config)
    }

    /// Serves TLS with `config` on an already bound listener.
    pub fn from_tcp(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(64);
        let accept_task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        // Out of file descriptors and the like: back off a little.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                    {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener {
            local,
            ready,
            accept_task,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task is gone (aborted): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

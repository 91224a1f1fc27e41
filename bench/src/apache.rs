//! The second peer: Apache httpd 2.4 with `mod_auth_openidc` (Debian's
//! `apache2` and `libapache2-mod-auth-openidc`, installed by `scripts/setup
//! --bench`), the certified C relying party many teams deploy as their BFF.
//!
//! Each run starts its own `apache2` on a free loopback port with its own
//! configuration in a temporary directory (`-f`, `-d`): the event MPM in
//! one process (`-X`, so its CPU is one `/proc/<pid>/stat`; 64 threads),
//! sessions kept server-side (`OIDCSessionType server-cache`, `OIDCCacheType
//! shm`), claims passed only as environment variables, and `/api/` proxied
//! to the same upstream with `Authorization: Bearer <access token>` set by
//! `mod_headers` from the module's `OIDC_access_token`. Its error log is
//! kept in the directory (level `warn`); there is no access log, as for the
//! plain proxy.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Where Debian keeps the modules.
const MODULES: &str = "/usr/lib/apache2/modules";

/// The modules the configuration needs.
const LOAD: &[(&str, &str)] = &[
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authn_core_module", "mod_authn_core.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_user_module", "mod_authz_user.so"),
    ("headers_module", "mod_headers.so"),
    ("proxy_module", "mod_proxy.so"),
    ("proxy_http_module", "mod_proxy_http.so"),
    ("auth_openidc_module", "mod_auth_openidc.so"),
];

/// What the peer is wired to.
pub struct Settings<'a> {
    /// The provider's issuer.
    pub issuer: &'a str,
    /// The upstream's base URL.
    pub upstream: &'a str,
    /// The loopback port to listen on.
    pub port: u16,
    /// The client registered at the provider.
    pub client_id: &'a str,
    /// Its secret.
    pub client_secret: &'a str,
}

/// The configuration file's text.
fn config(dir: &Path, s: &Settings<'_>) -> String {
    let mut conf = String::new();
    for (name, file) in LOAD {
        conf.push_str(&format!("LoadModule {name} {MODULES}/{file}\n"));
    }
    let passphrase = format!("{:032x}", rand::random::<u128>());
    let upstream = s.upstream.trim_end_matches('/');
    conf.push_str(&format!(
        r#"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {dir}/httpd.pid
ErrorLog {dir}/error.log
LogLevel warn
User www-data
Group www-data
ServerLimit 1
ThreadsPerChild 64
MaxRequestWorkers 64
KeepAlive On
MaxKeepAliveRequests 0

OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCClientID {client_id}
OIDCClientSecret {client_secret}
OIDCRedirectURI http://127.0.0.1:{port}/callback
OIDCCryptoPassphrase {passphrase}
OIDCScope "openid"
OIDCPKCEMethod S256
OIDCSessionType server-cache
OIDCCacheType shm
OIDCPassClaimsAs environment
OIDCSessionInactivityTimeout 3600

<Location />
  AuthType openid-connect
  Require valid-user
</Location>
<Location /api/>
  RequestHeader set Authorization "Bearer %{{OIDC_access_token}}e"
  ProxyPass {upstream}/
</Location>
"#,
        port = s.port,
        dir = dir.display(),
        issuer = s.issuer.trim_end_matches('/'),
        client_id = s.client_id,
        client_secret = s.client_secret,
    ));
    conf
}

/// Starts the peer; answers once it accepts connections.
pub async fn start(dir: &Path, s: &Settings<'_>) -> Result<(Child, String), String> {
    let binary = ["/usr/sbin/apache2", "/usr/sbin/httpd"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .ok_or("apache2 is missing: scripts/setup --bench installs it")?;
    if !Path::new(MODULES).join("mod_auth_openidc.so").is_file() {
        return Err("mod_auth_openidc is missing: scripts/setup --bench installs it".into());
    }
    let file = dir.join("httpd.conf");
    std::fs::write(&file, config(dir, s)).map_err(|e| format!("{}: {e}", file.display()))?;
    let stderr = std::fs::File::create(dir.join("stderr.log")).map_err(|e| e.to_string())?;
    let child = Command::new(binary)
        .arg("-X")
        .arg("-d")
        .arg(dir)
        .arg("-f")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {binary}: {e}"))?;
    let addr = format!("127.0.0.1:{}", s.port);
    // Bounded polling until it listens (or gives up with its log).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(&addr).await.is_err() {
        if std::time::Instant::now() > deadline {
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
            let log = read("stderr.log") + &read("error.log");
            return Err(format!("apache2 did not listen within 20 s:\n{log}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((child, format!("http://{addr}")))
}

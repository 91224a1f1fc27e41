//! A FAKE of the discovery hosts behind Keyway's provider presets: one Rust
//! https server (axum on a [`TlsListener`], certificate from a run-time
//! [`TestCa`] naming every host) that answers by the `Host` header with each
//! provider's discovery document AS THE REAL PROVIDER PUBLISHES IT (the exact
//! issuer string, trailing slash or not, Microsoft's templated `{tenantid}`
//! issuer for its multi-tenant endpoints, the real endpoint URLs and the
//! metadata each one publishes or leaves out), plus a JWKS at the document's
//! `jwks_uri`.
//!
//! The documents follow what Google, Microsoft Entra ID, GitLab, Keycloak,
//! Auth0 and Okta publish (tenant-specific values made up: `acme`,
//! `sso.example.com`); the keys are NOT theirs: every JWKS holds the test key
//! of the lying provider ([`SIGNING_KEY_PEM`]) under a kid of its own, so a
//! test can sign ID tokens the fake's JWKS verifies. Only discovery and JWKS
//! are served: every other URL (authorization, token, userinfo...) answers
//! 404, as does any path on a host it does not belong to.
//!
//! A client reaches the fake by resolving every name of
//! [`FakePresetHosts::hosts`] to [`FakePresetHosts::addr`] (reqwest:
//! `.resolve(host, addr)`, which [`FakePresetHosts::client`] does) and
//! trusting [`FakePresetHosts::ca_pem_path`].

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use url::Url;

use crate::tls::{TestCa, TestCertificate, TlsListener};

/// The private key (PEM) of the one RSA key every fake JWKS publishes: the
/// lying provider's test key (`tests/fixtures/lying-provider-key.pem`).
pub const SIGNING_KEY_PEM: &str = crate::lying_provider::SIGNING_KEY_PEM;

/// The single Microsoft Entra tenant of the fake (also the id Microsoft uses
/// for its consumer, MSA, tenant).
pub const MICROSOFT_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
/// The fake Keycloak's base URL; its realm is [`KEYCLOAK_REALM`].
pub const KEYCLOAK_BASE: &str = "https://sso.example.com";
/// The fake Keycloak's realm.
pub const KEYCLOAK_REALM: &str = "main";
/// The fake Auth0 tenant's domain.
pub const AUTH0_DOMAIN: &str = "acme.eu.auth0.com";
/// The fake Okta org's domain.
pub const OKTA_DOMAIN: &str = "acme.okta.com";

/// One provider's discovery document as the fake serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetDocument {
    /// A short name: `google`, `entra-common`, `entra-organizations`,
    /// `entra-consumers`, `entra-tenant`, `gitlab`, `keycloak`, `auth0`,
    /// `okta-org`, `okta-default`.
    pub name: &'static str,
    /// Where the document is published (`https://host/.../.well-known/openid-configuration`).
    pub discovery_url: String,
    /// The document's `issuer`, exactly (e.g. Auth0's ends with `/`, Entra's
    /// multi-tenant ones hold the literal `{tenantid}`).
    pub issuer: String,
    /// The document.
    pub document: Value,
    /// The document's `jwks_uri`.
    pub jwks_uri: String,
    /// The JWKS served at `jwks_uri`.
    pub jwks: Value,
}

impl PresetDocument {
    /// The key id of the document's one JWKS key.
    pub fn kid(&self) -> String {
        format!("{}-test-key", self.name)
    }
}

/// The fake's public test key as a JWK (RS256) under `kid`; `extra` members
/// are added (Entra adds `x5t` and `issuer`).
fn jwk(kid: &str, extra: &[(&str, Value)]) -> Value {
    let published: Value =
        serde_json::from_str(crate::lying_provider::JWKS_JSON).expect("the fixture JWKS parses");
    let key = &published["keys"][0];
    let mut jwk = json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": key["n"],
        "e": key["e"],
    });
    for (name, value) in extra {
        jwk[*name] = value.clone();
    }
    json!({ "keys": [jwk] })
}

fn google() -> PresetDocument {
    let document = json!({
        "issuer": "https://accounts.google.com",
        "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
        "device_authorization_endpoint": "https://oauth2.googleapis.com/device/code",
        "token_endpoint": "https://oauth2.googleapis.com/token",
        "userinfo_endpoint": "https://openidconnect.googleapis.com/v1/userinfo",
        "revocation_endpoint": "https://oauth2.googleapis.com/revoke",
        "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
        "response_types_supported": [
            "code", "token", "id_token", "code token", "code id_token",
            "token id_token", "code token id_token", "none"
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": [
            "aud", "email", "email_verified", "exp", "family_name", "given_name",
            "iat", "iss", "name", "picture", "sub"
        ],
        "code_challenge_methods_supported": ["plain", "S256"],
        "grant_types_supported": [
            "authorization_code", "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        ]
    });
    preset(
        "google",
        "https://accounts.google.com/.well-known/openid-configuration",
        document,
        &[],
    )
}

/// An Entra ID v2.0 document for `segment` (`common`, `organizations`,
/// `consumers` or a tenant id) whose issuer names `issuer_tenant`.
fn entra(name: &'static str, segment: &str, issuer_tenant: &str) -> PresetDocument {
    let base = format!("https://login.microsoftonline.com/{segment}");
    let issuer = format!("https://login.microsoftonline.com/{issuer_tenant}/v2.0");
    let document = json!({
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
            "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time",
            "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash",
            "c_hash", "email"
        ],
        "kerberos_endpoint": format!("{base}/kerberos"),
        "tenant_region_scope": null,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net"
    });
    let kid = format!("{name}-test-key");
    preset(
        name,
        &format!("{base}/v2.0/.well-known/openid-configuration"),
        document,
        &[("x5t", json!(kid)), ("issuer", json!(issuer))],
    )
}

fn gitlab() -> PresetDocument {
    let document = json!({
        "issuer": "https://gitlab.com",
        "authorization_endpoint": "https://gitlab.com/oauth/authorize",
        "token_endpoint": "https://gitlab.com/oauth/token",
        "revocation_endpoint": "https://gitlab.com/oauth/revoke",
        "introspection_endpoint": "https://gitlab.com/oauth/introspect",
        "userinfo_endpoint": "https://gitlab.com/oauth/userinfo",
        "jwks_uri": "https://gitlab.com/oauth/discovery/keys",
        "scopes_supported": [
            "api", "read_api", "read_user", "create_runner", "manage_runner", "k8s_proxy",
            "read_repository", "write_repository", "read_registry", "write_registry",
            "read_observability", "write_observability", "ai_features", "sudo",
            "admin_mode", "read_service_ping", "openid", "profile", "email"
        ],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": ["authorization_code", "password", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claim_types_supported": ["normal"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "sub_legacy", "name", "nickname",
            "preferred_username", "email", "email_verified", "website", "profile",
            "picture", "groups", "groups_direct",
            "https://gitlab.org/claims/groups/owner",
            "https://gitlab.org/claims/groups/maintainer",
            "https://gitlab.org/claims/groups/developer"
        ],
        "code_challenge_methods_supported": ["plain", "S256"]
    });
    preset(
        "gitlab",
        "https://gitlab.com/.well-known/openid-configuration",
        document,
        &[],
    )
}

fn keycloak() -> PresetDocument {
    let i = format!("{KEYCLOAK_BASE}/realms/{KEYCLOAK_REALM}");
    let oidc = format!("{i}/protocol/openid-connect");
    let document = json!({
        "issuer": i,
        "authorization_endpoint": format!("{oidc}/auth"),
        "token_endpoint": format!("{oidc}/token"),
        "introspection_endpoint": format!("{oidc}/token/introspect"),
        "userinfo_endpoint": format!("{oidc}/userinfo"),
        "end_session_endpoint": format!("{oidc}/logout"),
        "frontchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "jwks_uri": format!("{oidc}/certs"),
        "check_session_iframe": format!("{oidc}/login-status-iframe.html"),
        "grant_types_supported": [
            "authorization_code", "client_credentials", "implicit", "password",
            "refresh_token", "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:uma-ticket", "urn:openid:params:grant-type:ciba"
        ],
        "acr_values_supported": ["0", "1"],
        "response_types_supported": [
            "code", "none", "id_token", "token", "id_token token", "code id_token",
            "code token", "code id_token token"
        ],
        "subject_types_supported": ["public", "pairwise"],
        "prompt_values_supported": ["none", "login", "consent"],
        "id_token_signing_alg_values_supported": [
            "PS384", "RS384", "EdDSA", "ES384", "HS256", "HS512", "ES256", "RS256",
            "HS384", "ES512", "PS256", "PS512", "RS512"
        ],
        "id_token_encryption_alg_values_supported": ["ECDH-ES+A256KW", "ECDH-ES+A192KW", "ECDH-ES+A128KW", "RSA-OAEP", "RSA-OAEP-256", "RSA1_5", "ECDH-ES"],
        "id_token_encryption_enc_values_supported": ["A256GCM", "A192GCM", "A128GCM", "A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512"],
        "userinfo_signing_alg_values_supported": [
            "PS384", "RS384", "EdDSA", "ES384", "HS256", "HS512", "ES256", "RS256",
            "HS384", "ES512", "PS256", "PS512", "RS512", "none"
        ],
        "request_object_signing_alg_values_supported": [
            "PS384", "RS384", "EdDSA", "ES384", "HS256", "HS512", "ES256", "RS256",
            "HS384", "ES512", "PS256", "PS512", "RS512", "none"
        ],
        "response_modes_supported": ["query", "fragment", "form_post", "query.jwt", "fragment.jwt", "form_post.jwt", "jwt"]
    });
    // In two parts: one json! of it all is past the macro recursion limit.
    let more = json!({
        "registration_endpoint": format!("{i}/clients-registrations/openid-connect"),
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post", "tls_client_auth", "client_secret_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": [
            "PS384", "RS384", "EdDSA", "ES384", "HS256", "HS512", "ES256", "RS256",
            "HS384", "ES512", "PS256", "PS512", "RS512"
        ],
        "claims_supported": ["aud", "sub", "iss", "auth_time", "name", "given_name", "family_name", "preferred_username", "email", "acr"],
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": true,
        "scopes_supported": ["openid", "profile", "email", "roles", "web-origins", "offline_access", "acr", "basic", "address", "phone", "microprofile-jwt", "organization"],
        "request_parameter_supported": true,
        "request_uri_parameter_supported": true,
        "require_request_uri_registration": true,
        "code_challenge_methods_supported": ["plain", "S256"],
        "tls_client_certificate_bound_access_tokens": true,
        "revocation_endpoint": format!("{oidc}/revoke"),
        "revocation_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post", "tls_client_auth", "client_secret_jwt"],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "device_authorization_endpoint": format!("{oidc}/auth/device"),
        "backchannel_token_delivery_modes_supported": ["poll", "ping"],
        "backchannel_authentication_endpoint": format!("{oidc}/ext/ciba/auth"),
        "require_pushed_authorization_requests": false,
        "pushed_authorization_request_endpoint": format!("{oidc}/ext/par/request"),
        "authorization_response_iss_parameter_supported": true
    });
    let mut document = document;
    if let (Some(base), Value::Object(more)) = (document.as_object_mut(), more) {
        base.extend(more);
    }
    preset(
        "keycloak",
        &format!("{i}/.well-known/openid-configuration"),
        document,
        &[],
    )
}

fn auth0() -> PresetDocument {
    let d = format!("https://{AUTH0_DOMAIN}");
    let document = json!({
        "issuer": format!("{d}/"),
        "authorization_endpoint": format!("{d}/authorize"),
        "token_endpoint": format!("{d}/oauth/token"),
        "device_authorization_endpoint": format!("{d}/oauth/device/code"),
        "userinfo_endpoint": format!("{d}/userinfo"),
        "mfa_challenge_endpoint": format!("{d}/mfa/challenge"),
        "jwks_uri": format!("{d}/.well-known/jwks.json"),
        "registration_endpoint": format!("{d}/oidc/register"),
        "revocation_endpoint": format!("{d}/oauth/revoke"),
        "scopes_supported": [
            "openid", "profile", "offline_access", "name", "given_name", "family_name",
            "nickname", "email", "email_verified", "picture", "created_at", "identities",
            "phone", "address"
        ],
        "response_types_supported": ["code", "token", "id_token", "code token", "code id_token", "token id_token", "code token id_token"],
        "code_challenge_methods_supported": ["S256", "plain"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["public"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "claims_supported": [
            "aud", "auth_time", "created_at", "email", "email_verified", "exp",
            "family_name", "given_name", "iat", "identities", "iss", "name", "nickname",
            "phone_number", "picture", "sub"
        ],
        "request_uri_parameter_supported": false,
        "request_parameter_supported": false,
        "id_token_signing_alg_values_supported": ["HS256", "RS256", "PS256"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "PS256"],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "end_session_endpoint": format!("{d}/oidc/logout")
    });
    preset(
        "auth0",
        &format!("{d}/.well-known/openid-configuration"),
        document,
        &[],
    )
}

/// An Okta document for the authorization server at `server` (the org
/// server: the domain; a custom one: `.../oauth2/<id>`) whose endpoints are
/// under `endpoints` (`.../oauth2/v1` or `.../oauth2/<id>/v1`).
fn okta(name: &'static str, server: &str, endpoints: &str) -> PresetDocument {
    let e = endpoints;
    let auth_methods = json!([
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
        "none"
    ]);
    let mut document = json!({
        "issuer": server,
        "authorization_endpoint": format!("{e}/authorize"),
        "token_endpoint": format!("{e}/token"),
        "userinfo_endpoint": format!("{e}/userinfo"),
        "registration_endpoint": format!("https://{OKTA_DOMAIN}/oauth2/v1/clients"),
        "jwks_uri": format!("{e}/keys"),
        "response_types_supported": ["code", "id_token", "code id_token", "code token", "id_token token", "code id_token token"],
        "response_modes_supported": ["query", "fragment", "form_post", "okta_post_message"],
        "grant_types_supported": [
            "authorization_code", "implicit", "refresh_token", "password",
            "urn:ietf:params:oauth:grant-type:device_code"
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile", "address", "phone", "offline_access", "groups"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "claims_supported": [
            "iss", "ver", "sub", "aud", "iat", "exp", "jti", "auth_time", "amr", "idp",
            "nonce", "name", "nickname", "preferred_username", "given_name",
            "middle_name", "family_name", "email", "email_verified", "profile",
            "zoneinfo", "locale", "address", "phone_number", "picture", "website",
            "gender", "birthdate", "updated_at", "at_hash", "c_hash"
        ],
        "code_challenge_methods_supported": ["S256"],
        "introspection_endpoint": format!("{e}/introspect"),
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint": format!("{e}/revoke"),
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "end_session_endpoint": format!("{e}/logout"),
        "request_parameter_supported": true,
        "request_object_signing_alg_values_supported": ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"],
        "device_authorization_endpoint": format!("{e}/device/authorize"),
        "pushed_authorization_request_endpoint": format!("{e}/par"),
        "dpop_signing_alg_values_supported": ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]
    });
    if name == "okta-default" {
        // Custom authorization servers have no registration endpoint of their own.
        if let Some(object) = document.as_object_mut() {
            object.remove("registration_endpoint");
        }
    }
    preset(
        name,
        &format!("{server}/.well-known/openid-configuration"),
        document,
        &[],
    )
}

/// Assembles a [`PresetDocument`] from its document.
fn preset(
    name: &'static str,
    discovery_url: &str,
    document: Value,
    jwk_extra: &[(&str, Value)],
) -> PresetDocument {
    let issuer = document["issuer"]
        .as_str()
        .expect("every document has an issuer")
        .to_owned();
    let jwks_uri = document["jwks_uri"]
        .as_str()
        .expect("every document has a jwks_uri")
        .to_owned();
    PresetDocument {
        name,
        discovery_url: discovery_url.to_owned(),
        issuer,
        jwks: jwk(&format!("{name}-test-key"), jwk_extra),
        jwks_uri,
        document,
    }
}

/// Every document the fake serves, in a fixed order.
pub fn preset_documents() -> Vec<PresetDocument> {
    vec![
        google(),
        entra("entra-common", "common", "{tenantid}"),
        entra("entra-organizations", "organizations", "{tenantid}"),
        entra("entra-consumers", "consumers", MICROSOFT_TENANT_ID),
        entra("entra-tenant", MICROSOFT_TENANT_ID, MICROSOFT_TENANT_ID),
        gitlab(),
        keycloak(),
        auth0(),
        okta(
            "okta-org",
            &format!("https://{OKTA_DOMAIN}"),
            &format!("https://{OKTA_DOMAIN}/oauth2/v1"),
        ),
        okta(
            "okta-default",
            &format!("https://{OKTA_DOMAIN}/oauth2/default"),
            &format!("https://{OKTA_DOMAIN}/oauth2/default/v1"),
        ),
    ]
}

/// `(host, path)` of a URL.
fn host_and_path(url: &str) -> (String, String) {
    let url = Url::parse(url).unwrap_or_else(|e| panic!("bad URL {url:?}: {e}"));
    (
        url.host_str().expect("a host").to_ascii_lowercase(),
        url.path().to_owned(),
    )
}

#[derive(Debug)]
struct Shared {
    /// `(host, path)` -> JSON body.
    routes: HashMap<(String, String), Arc<String>>,
    /// `(host, path)` -> requests seen (served or not).
    counts: Mutex<HashMap<(String, String), usize>>,
}

/// A running fake of the preset providers' discovery hosts (see the module
/// documentation); stopped when dropped.
pub struct FakePresetHosts {
    addr: SocketAddr,
    ca: TestCa,
    leaf: TestCertificate,
    hosts: Vec<String>,
    documents: Vec<PresetDocument>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for FakePresetHosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePresetHosts")
            .field("addr", &self.addr)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl Drop for FakePresetHosts {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakePresetHosts {
    /// Makes a test CA, a certificate naming every host of every document
    /// (issuer hosts, JWKS hosts and the other endpoint hosts), and serves
    /// the documents over https on a free loopback port.
    pub async fn start() -> FakePresetHosts {
        let documents = preset_documents();
        let mut routes = HashMap::new();
        let mut hosts = BTreeSet::new();
        for doc in &documents {
            routes.insert(
                host_and_path(&doc.discovery_url),
                Arc::new(serde_json::to_string_pretty(&doc.document).expect("JSON")),
            );
            routes.insert(
                host_and_path(&doc.jwks_uri),
                Arc::new(serde_json::to_string(&doc.jwks).expect("JSON")),
            );
            hosts.insert(host_and_path(&doc.discovery_url).0);
            for value in doc.document.as_object().expect("an object").values() {
                let url = value
                    .as_str()
                    .filter(|v| v.starts_with("https://"))
                    .and_then(|v| Url::parse(v).ok());
                if let Some(host) = url.as_ref().and_then(Url::host_str) {
                    hosts.insert(host.to_ascii_lowercase());
                }
            }
        }
        let hosts: Vec<String> = hosts.into_iter().collect();
        let ca = TestCa::new();
        let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let leaf = ca.leaf(&names);
        let listener =
            TlsListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), leaf.server_config())
                .await
                .expect("bind a loopback port");
        let addr = listener.addr();
        let shared = Arc::new(Shared {
            routes,
            counts: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .fallback(serve)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakePresetHosts {
            addr,
            ca,
            leaf,
            hosts,
            documents,
            shared,
            task,
        }
    }

    /// The loopback address every host name must resolve to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every host name the fake answers for (and its certificate names),
    /// sorted: resolve each of them to [`FakePresetHosts::addr`].
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The path of the test CA's PEM file: what a client must trust.
    pub fn ca_pem_path(&self) -> &Path {
        self.ca.ca_pem_path()
    }

    /// The test CA's certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        self.ca.ca_pem()
    }

    /// The test CA (e.g. to issue more certificates it vouches for).
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// The server certificate the fake presents.
    pub fn certificate(&self) -> &TestCertificate {
        &self.leaf
    }

    /// Every document served.
    pub fn documents(&self) -> &[PresetDocument] {
        &self.documents
    }

    /// The document called `name` (see [`PresetDocument::name`]).
    pub fn document(&self, name: &str) -> Option<&PresetDocument> {
        self.documents.iter().find(|d| d.name == name)
    }

    /// How many requests for `path` arrived, on any host, served or not.
    pub fn requests(&self, path: &str) -> usize {
        self.lock_counts()
            .iter()
            .filter(|((_, p), _)| p == path)
            .map(|(_, n)| n)
            .sum()
    }

    /// How many requests for `path` arrived with `Host: host`.
    pub fn requests_at(&self, host: &str, path: &str) -> usize {
        self.lock_counts()
            .get(&(host.to_ascii_lowercase(), path.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// All request counts, by `(host, path)`.
    pub fn request_counts(&self) -> HashMap<(String, String), usize> {
        self.lock_counts().clone()
    }

    /// A reqwest client builder that resolves every host of the fake to its
    /// address and trusts its CA only.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        self.hosts
            .iter()
            .fold(self.ca.client_builder(), |builder, host| {
                builder.resolve(host, self.addr)
            })
    }

    /// Adds to any reqwest client builder a DNS override for every host of
    /// the fake (to [`FakePresetHosts::addr`]), leaving its trust as it is:
    /// what a BFF gets through `keyway_backend::Builder::http_client`
    /// (trust the fake's CA with `tls_ca_file` =
    /// [`FakePresetHosts::ca_pem_path`]).
    pub fn resolver(
        &self,
    ) -> impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync + 'static {
        let hosts = self.hosts.clone();
        let addr = self.addr;
        move |builder| {
            hosts
                .iter()
                .fold(builder, |builder, host| builder.resolve(host, addr))
        }
    }

    /// A client from [`FakePresetHosts::client_builder`].
    pub fn client(&self) -> reqwest::Client {
        self.client_builder()
            .build()
            .expect("a reqwest client for the fake preset hosts builds")
    }

    fn lock_counts(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), usize>> {
        self.shared.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A `Host` value without its port (`[::1]:443` -> `[::1]`, `a.b:443` -> `a.b`).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        host.split(':').next().unwrap_or(host)
    }
}

/// Answers `(Host, path)` from the table; 404 for anything else.
async fn serve(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let host = strip_port(host).to_ascii_lowercase();
    let key = (host, uri.path().to_owned());
    *shared
        .counts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key.clone())
        .or_insert(0) += 1;
    let Some(body) = shared.routes.get(&key) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error":"not_found"}"#,
        )
            .into_response();
    };
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body.as_str().to_owned(),
    )
        .into_response()
}

//! How Keyway, a confidential client, authenticates to a provider: one
//! negotiation, used by every endpoint that needs it (token, pushed
//! authorization requests, revocation).
//!
//! `client_secret_basic` is the RFC 6749 default and what a provider that
//! advertises nothing must accept; `client_secret_post` is used when the
//! provider advertises it and not basic. With basic, the id and secret are
//! form-encoded before they are joined (RFC 6749 §2.3.1), so a secret with
//! `:` or `%` in it still works. A configured `client_auth` wins over the
//! negotiation; `client_secret_jwt` and `private_key_jwt` send a fresh
//! client assertion ([`super::client_assertion`]) with every request.

use super::client_assertion::Assertions;
use crate::config::ClientAuthMethod;
use crate::secret::Secret;
use openidconnect::core::CoreClientAuthMethod;

/// A client-authentication method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic` with the form-encoded id and secret.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
    /// `client_id` and an HS256 client assertion keyed by the secret.
    SecretJwt,
    /// `client_id` and a client assertion signed with Keyway's private key.
    PrivateKeyJwt,
}

impl ClientAuth {
    /// The method for a provider that advertises `methods` for its token
    /// endpoint (`None`: it advertises nothing, so basic).
    pub fn negotiate(methods: Option<&[CoreClientAuthMethod]>) -> Self {
        let basic = methods.is_none_or(|m| m.contains(&CoreClientAuthMethod::ClientSecretBasic));
        let post = methods.is_some_and(|m| m.contains(&CoreClientAuthMethod::ClientSecretPost));
        if !basic && post {
            ClientAuth::Post
        } else {
            ClientAuth::Basic
        }
    }

    /// The configured method, else the negotiated one.
    pub fn configured_or(
        configured: Option<ClientAuthMethod>,
        methods: Option<&[CoreClientAuthMethod]>,
    ) -> Self {
        match configured {
            None => Self::negotiate(methods),
            Some(ClientAuthMethod::ClientSecretBasic) => ClientAuth::Basic,
            Some(ClientAuthMethod::ClientSecretPost) => ClientAuth::Post,
            Some(ClientAuthMethod::ClientSecretJwt) => ClientAuth::SecretJwt,
            Some(ClientAuthMethod::PrivateKeyJwt) => ClientAuth::PrivateKeyJwt,
        }
    }

    /// The same method for openidconnect's and oauth2's clients (the
    /// assertion methods send the client id in the body, the assertion as
    /// extra parameters: [`Credentials::token_params`]).
    pub fn auth_type(self) -> oauth2::AuthType {
        match self {
            ClientAuth::Basic => oauth2::AuthType::BasicAuth,
            ClientAuth::Post | ClientAuth::SecretJwt | ClientAuth::PrivateKeyJwt => {
                oauth2::AuthType::RequestBody
            }
        }
    }

    /// Whether the client secret goes to the provider as it is (basic, post).
    pub fn sends_secret(self) -> bool {
        matches!(self, ClientAuth::Basic | ClientAuth::Post)
    }
}

/// A client's credentials and how they are presented.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub secret: Secret,
    /// The method.
    pub auth: ClientAuth,
    /// What client assertions are made of (the assertion methods only).
    pub assertions: Option<Assertions>,
}

impl Credentials {
    /// The parameters that authenticate a token request to `token_url`
    /// (a fresh assertion each time); none for basic and post, which
    /// openidconnect's client sends itself.
    pub fn token_params(&self, token_url: &str) -> Result<Vec<(String, String)>, String> {
        match (&self.assertions, self.auth) {
            (Some(a), ClientAuth::SecretJwt | ClientAuth::PrivateKeyJwt) => {
                a.params(&self.client_id, token_url, &self.secret)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// A form POST to `url` carrying `form`, authenticated.
    pub fn post_form(
        &self,
        client: &reqwest::Client,
        url: &str,
        mut form: Vec<(String, String)>,
    ) -> Result<reqwest::RequestBuilder, String> {
        let request = client.post(url).header("accept", "application/json");
        Ok(match self.auth {
            ClientAuth::Basic => {
                // `client_id` may stay in the body (a pushed authorization
                // request carries it); the secret never does.
                form.retain(|(k, _)| k != "client_secret");
                request
                    .basic_auth(
                        form_encode(&self.client_id),
                        Some(form_encode(self.secret.expose())),
                    )
                    .form(&form)
            }
            ClientAuth::Post => {
                form.retain(|(k, _)| k != "client_id" && k != "client_secret");
                form.push(("client_id".into(), self.client_id.clone()));
                form.push(("client_secret".into(), self.secret.expose().to_owned()));
                request.form(&form)
            }
            ClientAuth::SecretJwt | ClientAuth::PrivateKeyJwt => {
                form.retain(|(k, _)| k != "client_id" && k != "client_secret");
                form.push(("client_id".into(), self.client_id.clone()));
                form.extend(self.token_params(url)?);
                request.form(&form)
            }
        })
    }
}

/// RFC 6749 §2.3.1: client id and secret are form-encoded before basic auth.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_unless_only_post_is_advertised() {
        use CoreClientAuthMethod::*;
        assert_eq!(ClientAuth::negotiate(Option::None), ClientAuth::Basic);
        assert_eq!(
            ClientAuth::negotiate(Some(&[ClientSecretPost])),
            ClientAuth::Post
        );
        assert_eq!(
            ClientAuth::negotiate(Some(&[ClientSecretPost, ClientSecretBasic])),
            ClientAuth::Basic
        );
        assert_eq!(
            ClientAuth::negotiate(Some(&[PrivateKeyJwt])),
            ClientAuth::Basic
        );
    }

    #[test]
    fn credentials_go_where_the_method_says() {
        crate::provider::http::install_crypto_provider();
        let client = reqwest::Client::new();
        let creds = |auth| Credentials {
            client_id: "id:1".into(),
            secret: Secret::new("p%ss"),
            auth,
            assertions: None,
        };
        let form = vec![("token".to_owned(), "t".to_owned())];
        let basic = creds(ClientAuth::Basic)
            .post_form(&client, "https://p.example/revoke", form.clone())
            .unwrap()
            .build()
            .unwrap();
        let header = basic.headers()["authorization"].to_str().unwrap();
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(header.trim_start_matches("Basic "))
            .unwrap();
        assert_eq!(decoded, b"id%3A1:p%25ss");
        let body = std::str::from_utf8(basic.body().unwrap().as_bytes().unwrap()).unwrap();
        assert_eq!(body, "token=t");
        let post = creds(ClientAuth::Post)
            .post_form(&client, "https://p.example/revoke", form)
            .unwrap()
            .build()
            .unwrap();
        assert!(post.headers().get("authorization").is_none());
        let body = std::str::from_utf8(post.body().unwrap().as_bytes().unwrap()).unwrap();
        assert_eq!(body, "token=t&client_id=id%3A1&client_secret=p%25ss");
    }
}

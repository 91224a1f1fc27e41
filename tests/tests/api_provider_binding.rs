//! API tokens stay with their provider (issue 15, item 2; security checklist
//! "API calls through the BFF": the access token is attached only when the
//! session's provider is that API's provider).
//!
//! Two real test providers, `alpha` and `beta`, behind one BFF; two APIs of
//! `alpha`: `orders` (`token = "user"`) and `catalog` (`token =
//! "user_or_client"`). A session of `beta` must never have its token sent to
//! an `alpha` API, nor be silently given the BFF's own client token instead:
//! `403 provider_mismatch`, and the upstream sees nothing.

use keyway_tests::bff::{
    SpaClient, TestBff, assert_error, client_for_provider, env_for, json_of, reserve,
};
use keyway_tests::provider::{Consent, ProviderConfig, TestProvider};
use keyway_tests::upstream::Upstream;
use serde_json::json;

struct Setup {
    alpha: TestProvider,
    beta: TestProvider,
    bff: TestBff,
    /// Checks bearers by `alpha`'s introspection.
    upstream: Upstream,
}

/// Two providers, an upstream for `alpha`'s APIs, and the BFF.
async fn setup() -> Setup {
    let reserved = reserve().await;
    let config = |id: &str| ProviderConfig {
        clients: vec![client_for_provider(&reserved.origin, id)],
        ..ProviderConfig::default()
    };
    let alpha = TestProvider::start(config("alpha")).await.expect("alpha");
    let beta = TestProvider::start(config("beta")).await.expect("beta");
    let introspection = alpha.endpoint("introspection_endpoint").unwrap();
    let upstream = Upstream::start(&introspection, "keyway", "keyway-secret").await;
    let toml = format!(
        r#"
        [[providers]]
        id = "alpha"
        issuer = "{alpha}"
        client_id = "keyway"
        client_secret_env = "ALPHA_SECRET"
        scopes = ["openid", "profile", "email", "offline_access"]
        [[providers]]
        id = "beta"
        issuer = "{beta}"
        client_id = "keyway"
        client_secret_env = "BETA_SECRET"
        scopes = ["openid", "profile", "email", "offline_access"]
        [[apis]]
        name = "orders"
        url = "{up}/orders"
        provider = "alpha"
        token = "user"
        [[apis]]
        name = "catalog"
        url = "{up}/catalog"
        provider = "alpha"
        token = "user_or_client"
        scopes = ["api"]
        "#,
        alpha = alpha.issuer,
        beta = beta.issuer,
        up = upstream.base,
    );
    let mut env = env_for(&reserved.origin, "unused");
    for k in [
        "KEYWAY_ISSUER",
        "KEYWAY_CLIENT_ID",
        "KEYWAY_CLIENT_SECRET",
        "KEYWAY_SCOPES",
    ] {
        env.remove(k);
    }
    env.insert("ALPHA_SECRET".into(), "keyway-secret".into());
    env.insert("BETA_SECRET".into(), "keyway-secret".into());
    let bff = TestBff::start_with_file(reserved, &toml, &env)
        .await
        .expect("BFF");
    Setup {
        alpha,
        beta,
        bff,
        upstream,
    }
}

/// A browser signed in with provider `id` (`alpha`: alice, `beta`: bob).
async fn signed_in(s: &Setup, id: &str) -> SpaClient {
    let spa = SpaClient::new(&s.bff);
    let (status, body) = json_of(spa.post("/bff/login", &json!({"provider": id})).await).await;
    assert_eq!(status, 200, "{body}");
    let url = body["authorization_url"].as_str().unwrap();
    let (provider, user, password) = match id {
        "alpha" => (&s.alpha, "alice", "wonderland"),
        _ => (&s.beta, "bob", "builder"),
    };
    let cb = spa
        .authorize(provider, url, user, password, Consent::Allow)
        .await;
    let (status, body) = json_of(spa.callback_for(id, &cb).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["provider"], id);
    spa
}

async fn call(spa: &SpaClient, s: &Setup, path: &str) -> (u16, serde_json::Value) {
    let r = spa
        .http
        .get(s.bff.url(path))
        .header("x-csrf", "1")
        .send()
        .await
        .unwrap();
    json_of(r).await
}

async fn client_grants(p: &TestProvider) -> u64 {
    p.token_requests("client_credentials").await.unwrap()
}

/// Item 2: a `beta` session on a `user` API of `alpha` is `403
/// provider_mismatch` and nothing reaches the upstream; an `alpha` session
/// gets through with alice's own token.
#[tokio::test]
async fn a_session_of_another_provider_is_refused_on_a_user_api() {
    let s = setup().await;
    let bob = signed_in(&s, "beta").await;
    let (status, body) = call(&bob, &s, "/bff/api/orders/items").await;
    assert_error(status, &body, 403, "provider_mismatch");
    assert!(
        s.upstream.seen().is_empty(),
        "beta's token reached alpha's API: {:?}",
        s.upstream.seen()
    );

    let alice = signed_in(&s, "alpha").await;
    let (status, body) = call(&alice, &s, "/bff/api/orders/items").await;
    assert_eq!(status, 200, "{body}");
    let seen = s.upstream.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, "/orders/items");
    assert_eq!(seen[0].introspection["active"], true);
    assert_eq!(seen[0].introspection["sub"], "alice");
}

/// Item 2: `user_or_client` falls back to the BFF's client token only when
/// nobody is signed in; a `beta` session is `403 provider_mismatch`, not a
/// fallback (no client-credentials grant, nothing upstream); an `alpha`
/// session sends alice's token.
#[tokio::test]
async fn user_or_client_falls_back_only_without_a_session() {
    let s = setup().await;

    // Anonymous: the client-credentials token of alpha.
    let anonymous = SpaClient::new(&s.bff);
    let (status, body) = call(&anonymous, &s, "/bff/api/catalog/list").await;
    assert_eq!(status, 200, "{body}");
    let seen = s.upstream.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].introspection["active"], true, "{seen:?}");
    assert_eq!(seen[0].introspection["client_id"], "keyway");
    assert!(
        seen[0].introspection.get("sub").is_none(),
        "a client-credentials token has no user: {}",
        seen[0].introspection
    );
    assert_eq!(client_grants(&s.alpha).await, 1);

    // A session of beta: refused, no fallback to the client token.
    let bob = signed_in(&s, "beta").await;
    let (status, body) = call(&bob, &s, "/bff/api/catalog/list").await;
    assert_error(status, &body, 403, "provider_mismatch");
    assert_eq!(s.upstream.seen().len(), 1, "{:?}", s.upstream.seen());
    assert_eq!(client_grants(&s.alpha).await, 1, "no new client grant");
    assert_eq!(client_grants(&s.beta).await, 0);

    // A session of alpha: alice's own token.
    let alice = signed_in(&s, "alpha").await;
    let (status, body) = call(&alice, &s, "/bff/api/catalog/list").await;
    assert_eq!(status, 200, "{body}");
    let seen = s.upstream.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].introspection["sub"], "alice");
    assert_ne!(seen[1].bearer, seen[0].bearer);
}

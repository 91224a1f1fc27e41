//! No token in any response, checked with the real values (issue 15, item
//! 15; contract "Tokens never reach the browser: not in a body, a header, a
//! cookie value"; security checklist "Tokens are stored only server-side").
//!
//! `bff_flow.rs::no_token_or_jwt_in_any_response` looks for JWT-shaped text
//! and the words `access_token`/`refresh_token`; the test provider's access
//! and refresh tokens are opaque strings, so it could not see them leak.
//! Here the test learns the actual values — the session's access, refresh
//! and ID tokens from the BFF's own session store (opened beside it with the
//! same key, through `keyway_backend::internals::Sessions`), the
//! client-credentials token from the upstream that received it — and looks
//! for each of them, and for the client secret, in every status line,
//! header (cookies included) and body the browser gets from every endpoint.
//! The one place the contract puts a token is the logout's
//! `end_session_url`, which carries the ID token as `id_token_hint` for the
//! provider: it must be there and only there.

use keyway_backend::internals::{MemoryStore, Sessions};
use keyway_backend::{Builder, Config};
use keyway_tests::bff::{SpaClient, TEST_SESSION_KEY, TestBff, client_for, env_for, reserve};
use keyway_tests::provider::{Consent, ProviderConfig, TestProvider};
use keyway_tests::upstream::Upstream;
use serde_json::{Value, json};
use url::Url;

/// Everything the browser got from one request, as text.
struct Seen {
    what: String,
    text: String,
}

async fn record(what: &str, r: reqwest::Response) -> Seen {
    let mut text = format!("{:?} {}\n", r.version(), r.status());
    for (k, v) in r.headers() {
        text.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    text.push('\n');
    text.push_str(&r.text().await.expect("body"));
    Seen {
        what: what.to_owned(),
        text,
    }
}

/// Item 15: log in, call every endpoint, and find none of the session's
/// real tokens, the client token or the client secret in anything the
/// browser receives (the ID token only as the end-session URL's
/// `id_token_hint`).
#[tokio::test]
async fn no_real_token_value_reaches_the_browser() {
    let reserved = reserve().await;
    let client = client_for(&reserved.origin);
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client.clone()],
        ..ProviderConfig::default()
    })
    .await
    .expect("provider");
    let introspection = provider.endpoint("introspection_endpoint").unwrap();
    let upstream = Upstream::start(&introspection, &client.client_id, &client.client_secret).await;
    let toml = format!(
        r#"
        [[apis]]
        name = "orders"
        url = "{up}/orders"
        [[apis]]
        name = "svc"
        url = "{up}/svc"
        token = "client"
        scopes = ["api"]
        "#,
        up = upstream.base
    );
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SESSION_KEY".into(), TEST_SESSION_KEY.into());
    let config = Config::from_sources(Some(&toml), &env).expect("config");
    let store = MemoryStore::open();
    let sessions = Sessions::new(store.clone(), &config.session);
    let bff = TestBff::start_built(reserved, Builder::new(config).store(store))
        .await
        .expect("BFF");

    let spa = SpaClient::new(&bff);
    let mut seen = Vec::new();
    let r = spa.post("/bff/login", &json!({})).await;
    let started = record("POST /bff/login", r).await;
    let body: Value = serde_json::from_str(started.text.split("\n\n").nth(1).unwrap()).unwrap();
    seen.push(started);
    let cb = spa
        .authorize(
            &provider,
            body["authorization_url"].as_str().unwrap(),
            "alice",
            "wonderland",
            Consent::Allow,
        )
        .await;
    let code = cb.code.clone().expect("a code");
    seen.push(record("POST /bff/callback", spa.callback(&cb).await).await);
    for path in [
        "/bff/user",
        "/bff/userinfo",
        "/bff/providers",
        "/readyz",
        "/healthz",
        "/metrics",
    ] {
        seen.push(record(&format!("GET {path}"), spa.get(path).await).await);
    }
    for path in ["/bff/api/orders/items", "/bff/api/svc/status"] {
        let r = spa
            .http
            .get(bff.url(path))
            .header("x-csrf", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        seen.push(record(&format!("GET {path}"), r).await);
    }

    // The real values: the session's tokens from the store, the client
    // token from the upstream.
    let ids = sessions.sessions_by_sub("default", "alice").await.unwrap();
    assert_eq!(ids.len(), 1, "one session of alice");
    let session = sessions
        .load_fresh(ids[0])
        .await
        .unwrap()
        .expect("the session");
    let tokens = &session.data.tokens;
    let access = tokens.access_token.expose().to_owned();
    let refresh = tokens
        .refresh_token
        .as_ref()
        .expect("offline_access gave a refresh token")
        .expose()
        .to_owned();
    let id_token = tokens
        .id_token
        .as_ref()
        .expect("an ID token")
        .expose()
        .to_owned();
    let up = upstream.seen();
    assert_eq!(up.len(), 2);
    assert_eq!(
        up[0].bearer.as_deref(),
        Some(access.as_str()),
        "the store's access token is the one sent upstream"
    );
    let client_token = up[1].bearer.clone().expect("a client token");
    assert_eq!(up[1].introspection["active"], true);
    assert!(up[1].introspection.get("sub").is_none(), "a client token");

    seen.push(
        record(
            "POST /bff/logout",
            spa.post("/bff/logout", &json!({})).await,
        )
        .await,
    );
    // After logout: anonymous answers.
    seen.push(record("GET /bff/user (after)", spa.get("/bff/user").await).await);

    // The end-session URL carries the ID token for the provider, as the
    // contract says: there, and nowhere else.
    let logout = seen
        .iter_mut()
        .find(|s| s.what == "POST /bff/logout")
        .unwrap();
    let logout_body: Value = serde_json::from_str(logout.text.split("\n\n").nth(1).unwrap())
        .unwrap_or_else(|_| panic!("logout body: {}", logout.text));
    let end_session = Url::parse(logout_body["end_session_url"].as_str().unwrap()).unwrap();
    assert!(
        end_session
            .as_str()
            .starts_with(&provider.endpoint("end_session_endpoint").unwrap()),
        "{end_session}"
    );
    let hint = end_session
        .query_pairs()
        .find(|(k, _)| k == "id_token_hint")
        .map(|(_, v)| v.into_owned());
    assert_eq!(hint.as_deref(), Some(id_token.as_str()));
    let hint_raw = end_session
        .query()
        .unwrap()
        .split('&')
        .find(|p| p.starts_with("id_token_hint="))
        .unwrap()
        .to_owned();
    assert_eq!(
        logout.text.matches(&hint_raw).count(),
        1,
        "the ID token appears once, as id_token_hint"
    );
    logout.text = logout.text.replace(&hint_raw, "id_token_hint=[checked]");

    for (name, value) in [
        ("access token", access.as_str()),
        ("refresh token", refresh.as_str()),
        ("ID token", id_token.as_str()),
        ("client-credentials token", client_token.as_str()),
        ("client secret", client.client_secret.as_str()),
        ("authorization code", code.as_str()),
    ] {
        assert!(value.len() >= 8, "{name} is too short to search for");
        for s in &seen {
            assert!(
                !s.text.contains(value),
                "the {name} reached the browser in {}:\n{}",
                s.what,
                s.text
            );
        }
    }
    // The ID token's signature part alone (any way of cutting it up).
    let signature = id_token.rsplit('.').next().unwrap();
    for s in &seen {
        assert!(!s.text.contains(signature), "{}: {}", s.what, s.text);
    }
}

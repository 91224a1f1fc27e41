//! Client-token freshness (issue 14: one freshness rule for user and client
//! tokens; contract "an access token is refreshed before use when it
//! expires within the skew: 60 s by default, and never more than half of
//! the token's lifetime").
//!
//! A `token = "client"` API against the real test provider whose access
//! tokens (client-credentials ones too) live 4 s: with the default 60 s skew
//! capped at half the lifetime, a client token must be renewed once 2 s of
//! it are left. The old rule capped the skew at half of the *remaining*
//! time, which is zero in the last second: the token was reused until its
//! very end, so a request in its final moments carried a token that expired
//! in flight.
//!
//! What is made deterministic: the API is called every 100 ms (pacing, not
//! synchronisation) for 9 s — more than two token lifetimes — and the
//! upstream records, for every request, when it arrived and the provider's
//! introspection of its bearer (`active`, `iat`, `exp`, seconds). Then:
//! every bearer was active; every bearer arrived with at least 0.5 s of life
//! left (the shared rule leaves at least ~1 s even with second rounding; the
//! old rule put ~5 requests per token into its last 0.5 s); each new token
//! was issued at least 1 s before the previous one expired (the old rule
//! fetched it only at expiry); and the provider issued exactly one token per
//! token seen (single flight, no wasted grants).

use keyway_tests::bff::{SpaClient, TestBff, client_for, env_for, reserve};
use keyway_tests::provider::{ProviderConfig, TestProvider};
use keyway_tests::upstream::Upstream;
use std::time::{Duration, Instant, UNIX_EPOCH};

const TTL: u64 = 4;

/// Issue 14: client tokens are renewed in the last half of their life, so
/// the upstream never receives an expired or nearly expired one.
#[tokio::test]
async fn client_tokens_are_renewed_before_they_expire() {
    let reserved = reserve().await;
    let client = client_for(&reserved.origin);
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client.clone()],
        access_token_ttl: TTL,
        ..ProviderConfig::default()
    })
    .await
    .expect("provider");
    let introspection = provider.endpoint("introspection_endpoint").unwrap();
    let upstream = Upstream::start(&introspection, &client.client_id, &client.client_secret).await;
    let toml = format!(
        r#"
        [[apis]]
        name = "svc"
        url = "{}/svc"
        token = "client"
        scopes = ["api"]
        "#,
        upstream.base
    );
    let env = env_for(&reserved.origin, &provider.issuer);
    let bff = TestBff::start_with_file(reserved, &toml, &env)
        .await
        .expect("BFF");
    let spa = SpaClient::new(&bff);

    let deadline = Instant::now() + Duration::from_secs(9);
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    let mut statuses = Vec::new();
    while Instant::now() < deadline {
        pace.tick().await;
        let r = spa
            .http
            .get(bff.url("/bff/api/svc/ping"))
            .header("x-csrf", "1")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }

    let seen = upstream.seen();
    assert_eq!(
        seen.len(),
        statuses.len(),
        "every call reached the upstream"
    );
    // Per token, in order of first use: (token, iat, exp).
    let mut tokens: Vec<(String, u64, u64)> = Vec::new();
    for (i, s) in seen.iter().enumerate() {
        let token = s.bearer.clone().expect("a bearer");
        let intro = &s.introspection;
        assert_eq!(
            intro["active"], true,
            "request {i} carried an inactive token: {intro} (status {})",
            statuses[i]
        );
        assert!(intro.get("sub").is_none(), "a client token: {intro}");
        let iat = intro["iat"].as_u64().expect("iat");
        let exp = intro["exp"].as_u64().expect("exp");
        assert_eq!(exp - iat, TTL, "{intro}");
        let arrived = s
            .received_at
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let left = exp as f64 - arrived;
        assert!(
            left >= 0.5,
            "request {i} arrived with a token {left:.3} s from its expiry (iat {iat}, exp {exp})"
        );
        if tokens.last().is_none_or(|(t, _, _)| *t != token) {
            assert!(
                tokens.iter().all(|(t, _, _)| *t != token),
                "request {i} went back to an older token"
            );
            tokens.push((token, iat, exp));
        }
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        tokens.len() >= 3,
        "only {} client tokens over 9 s of 4 s tokens",
        tokens.len()
    );
    for pair in tokens.windows(2) {
        let (_, _, old_exp) = pair[0];
        let (_, new_iat, _) = pair[1];
        assert!(
            new_iat < old_exp,
            "a new client token (iat {new_iat}) was fetched only when the old one expired ({old_exp})"
        );
    }
    assert_eq!(
        provider.token_requests("client_credentials").await.unwrap(),
        tokens.len() as u64,
        "one client-credentials grant per token seen"
    );
}

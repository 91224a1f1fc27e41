//! The dev loop of docs/development.md: `trunk serve` of the demo with
//! `Trunk.toml`'s `[[proxy]]` of `/bff/` to the BFF, whose public URL is
//! Trunk's origin. A person signs in through Trunk's port.

use keyway_tests::bff::{TestBff, client_for, env_for, reserve};
use keyway_tests::browser::{Browser, run};
use keyway_tests::provider::{ProviderConfig, TestProvider};
use keyway_tests::trunk::TrunkServe;
use std::sync::Arc;
use url::Url;

#[tokio::test]
async fn sign_in_through_trunk_serve_and_its_proxy() {
    let reserved = reserve().await;
    let bff_listen = reserved.origin.clone();
    let trunk = TrunkServe::start(bff_listen.as_str())
        .await
        .expect("trunk serve");
    let public = Url::parse(&trunk.origin).unwrap();
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&public)],
        ..ProviderConfig::default()
    })
    .await
    .expect("provider starts");
    let mut env = env_for(&public, &provider.issuer);
    env.insert(
        "KEYWAY_LISTEN".into(),
        format!("127.0.0.1:{}", bff_listen.port().unwrap()),
    );
    env.insert("KEYWAY_PROVIDER_NAME".into(), "Test provider".into());
    let _bff = TestBff::start(reserved, &env).await.expect("BFF starts");
    let home = format!("{}/", trunk.origin);
    let result = run("trunk_serve", |b: Arc<Browser>| async move {
        let c = &b.client;
        c.goto(&home).await.map_err(|e| e.to_string())?;
        b.wait_css(".login-button")
            .await?
            .click()
            .await
            .map_err(|e| e.to_string())?;
        b.provider_sign_in("alice", "wonderland", true).await?;
        // The provider sent the browser back to Trunk's /callback; the SPA
        // posted it through Trunk's proxy.
        b.wait_text("main", "Signed in as Alice Liddell").await?;
        let url = c.current_url().await.map_err(|e| e.to_string())?;
        if !url.as_str().starts_with(&home) {
            return Err(format!("not on Trunk's origin: {url}"));
        }
        c.goto(&format!("{home}profile"))
            .await
            .map_err(|e| e.to_string())?;
        b.wait_text("#userinfo", "alice@example.com").await?;
        Ok(())
    })
    .await;
    if result.is_err() {
        eprintln!("trunk serve's log:\n{}", trunk.log());
    }
    result.unwrap();
}

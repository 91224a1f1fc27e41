//! Failover, measured: three real `keyway` processes behind nginx (the
//! recipe of docs/sessions.md: `deploy/nginx/keyway.conf` with
//! `deploy/nginx/keyway-upstream.conf`), fifty signed-in users calling
//! `/bff/api` through it — access tokens live 12 s (refreshed after 6 s) and refresh tokens rotate
//! on every use, so refreshes run all the time — while a part fails:
//!
//! - (a) the Redis master behind Sentinel is killed (`SIGKILL`);
//! - (b) one of three Redis Cluster masters, one with a replica, is killed;
//! - (c) PostgreSQL crashes (immediate shutdown) and is started again;
//! - (d) one Keyway instance is stopped (`SIGTERM`, as an orchestrator
//!   does); its users go on on the others.
//!
//! Every request must get `200` or the contract's `503
//! session_store_unavailable`; afterwards every user is still signed in,
//! the provider refused no refresh token (with rotation, a token spent twice
//! would be refused and its grant revoked), and five users who logged out
//! just before the failure stay logged out. The run lasts
//! `KEYWAY_FAILOVER_SECS` seconds (12 by default; docs/sessions.md has the
//! figures of 60-second runs) and prints its figures (`FAILOVER …` lines,
//! shown with `--nocapture`).

use keyway_tests::bff::{SpaClient, client_for, env_for, json_of};
use keyway_tests::nginx::{Nginx, deploy_file, render};
use keyway_tests::postgres::PgServer;
use keyway_tests::provider::{ProviderConfig, TestProvider};
use keyway_tests::redis::free_port;
use keyway_tests::redis_ha::{RedisCluster, RedisSentinel};
use keyway_tests::store_suite::session_cookie;
use keyway_tests::upstream::Upstream;
use serde_json::json;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::Url;

const KEYWAY: &str = env!("CARGO_BIN_EXE_keyway");
/// Users calling the API through the whole run.
const USERS: usize = 50;
/// Users who log out just before the failure.
const LEAVING: usize = 5;
/// Each user's pace.
const PACE: Duration = Duration::from_millis(250);
/// Upper bound of every wait for a part to come up.
const DEADLINE: Duration = Duration::from_secs(30);

/// The scenarios share the machine's two cores: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn run_length() -> Duration {
    let secs = std::env::var("KEYWAY_FAILOVER_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    Duration::from_secs(secs)
}

/// One `keyway serve` process.
struct Instance {
    child: Option<Child>,
    port: u16,
    log: std::path::PathBuf,
}

impl Instance {
    fn start(port: u16, env: &BTreeMap<String, String>, config: &std::path::Path) -> Instance {
        let log = config.with_file_name(format!("keyway-{port}.log"));
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = Command::new(KEYWAY)
            .env_clear()
            .envs(env)
            .env("KEYWAY_LISTEN", format!("127.0.0.1:{port}"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start keyway");
        Instance {
            child: Some(child),
            port,
            log,
        }
    }

    async fn wait_ready(&self) {
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("instance {} never ready:\n{}", self.port, self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `SIGTERM`, and waits (bounded) for the graceful exit.
    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let end = Instant::now() + DEADLINE;
            while Instant::now() < end {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn metrics(&self) -> Option<String> {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        reqwest::get(url).await.ok()?.text().await.ok()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Three instances on one store, behind nginx, with a provider and an API.
struct Deployment {
    instances: Vec<Instance>,
    nginx: Nginx,
    origin: Url,
    provider: TestProvider,
    _upstream: Upstream,
    _dir: tempfile::TempDir,
}

async fn deploy(store: &str) -> Deployment {
    let origin = Url::parse(&format!("http://127.0.0.1:{}", free_port())).unwrap();
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&origin)],
        access_token_ttl: 12,
        rotate_refresh_tokens: true,
        ..ProviderConfig::default()
    })
    .await
    .expect("provider");
    let introspection = provider.endpoint("introspection_endpoint").unwrap();
    let upstream = Upstream::start(&introspection, "keyway", "keyway-secret").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keyway.toml");
    let toml = format!(
        "[[apis]]\nname = \"orders\"\nurl = \"{}/v1\"\n",
        upstream.base
    );
    std::fs::write(&config, toml).unwrap();
    let mut env = env_for(&origin, &provider.issuer);
    env.insert("KEYWAY_SESSION_STORE".into(), store.to_owned());
    env.insert(
        "KEYWAY_SESSION_KEY".into(),
        keyway_tests::bff::TEST_SESSION_KEY.into(),
    );
    let instances: Vec<Instance> = (0..3)
        .map(|_| Instance::start(free_port(), &env, &config))
        .collect();
    for i in &instances {
        i.wait_ready().await;
    }
    let nginx = start_nginx(&origin, &instances, dir.path());
    let providers = format!("{}bff/providers", origin);
    let end = Instant::now() + DEADLINE;
    while !reqwest::get(&providers)
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            Instant::now() < end,
            "nginx never answered:\n{}",
            nginx.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Deployment {
        instances,
        nginx,
        origin,
        provider,
        _upstream: upstream,
        _dir: dir,
    }
}

/// The recipe's two files, rendered as `envsubst` would.
fn start_nginx(origin: &Url, instances: &[Instance], dir: &std::path::Path) -> Nginx {
    let listen = format!("127.0.0.1:{}", origin.port().unwrap());
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    let dist = dist.display().to_string();
    let backends: Vec<String> = instances
        .iter()
        .map(|i| format!("127.0.0.1:{}", i.port))
        .collect();
    let server = render(
        &deploy_file("keyway.conf"),
        &[
            ("KEYWAY_NGINX_LISTEN", listen.as_str()),
            ("KEYWAY_DIST", dist.as_str()),
            ("KEYWAY_BACKEND", "keyway"),
            ("KEYWAY_CSP", "default-src 'self'"),
        ],
    );
    let upstream = render(
        &deploy_file("keyway-upstream.conf"),
        &[
            ("KEYWAY_BACKEND_1", backends[0].as_str()),
            ("KEYWAY_BACKEND_2", backends[1].as_str()),
            ("KEYWAY_BACKEND_3", backends[2].as_str()),
        ],
    );
    Nginx::start(&[upstream, server]).expect("nginx starts")
}

/// What one API call got.
#[derive(Debug, Clone)]
struct Outcome {
    at: Duration,
    took: Duration,
    status: u16,
    code: Option<String>,
    user: usize,
}

/// Signs `n` users in through nginx; each with its session cookie's value.
async fn sign_in(d: &Deployment, n: usize) -> Vec<(SpaClient, String)> {
    let mut users = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(5) {
        let logins = chunk.iter().map(|_| async {
            let spa = SpaClient::at(&d.origin);
            let r = spa.login(&d.provider, "alice", "wonderland").await;
            let cookie = session_cookie(&r);
            let (s, body) = json_of(r).await;
            assert_eq!(s, 200, "login through nginx: {body}");
            (spa, cookie)
        });
        users.extend(futures_util::future::join_all(logins).await);
    }
    users
}

async fn call_until(
    spa: SpaClient,
    user: usize,
    base: String,
    start: Instant,
    end: Instant,
    out: Arc<Mutex<Vec<Outcome>>>,
) {
    let mut tick = tokio::time::interval(PACE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < end {
        tick.tick().await;
        let sent = Instant::now();
        let r = spa
            .http
            .get(format!("{base}/bff/api/orders/items"))
            .header("x-csrf", "1")
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        let (status, code) = match r {
            Ok(r) => {
                let status = r.status().as_u16();
                let body: serde_json::Value = r.json().await.unwrap_or(json!(null));
                (status, body["error"].as_str().map(str::to_owned))
            }
            Err(e) => (0, Some(format!("transport: {e}"))),
        };
        out.lock().unwrap().push(Outcome {
            at: sent - start,
            took: sent.elapsed(),
            status,
            code,
            user,
        });
    }
}

/// Runs the load, with `fault` at a third of the run; checks and prints.
async fn run_scenario<F, Fut>(name: &str, d: &Deployment, fault: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let users: Vec<SpaClient> = sign_in(d, USERS)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    let leaving = sign_in(d, LEAVING).await;
    let refreshes_before = d.provider.token_requests("refresh_token").await.unwrap();
    let length = run_length();
    let start = Instant::now();
    let end = start + length;
    let out = Arc::new(Mutex::new(Vec::new()));
    let base = d.origin.as_str().trim_end_matches('/').to_owned();
    let tasks: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, spa)| {
            tokio::spawn(call_until(
                spa.clone(),
                i,
                base.clone(),
                start,
                end,
                out.clone(),
            ))
        })
        .collect();
    tokio::time::sleep_until((start + length / 3).into()).await;
    // Logouts just before the failure: they must not be undone by it.
    let logouts = leaving.iter().map(|(spa, _)| async {
        let (s, body) = json_of(spa.post("/bff/logout", &json!({})).await).await;
        assert_eq!(s, 200, "logout: {body}");
    });
    futures_util::future::join_all(logouts).await;
    let gone: Vec<String> = leaving.into_iter().map(|(_, cookie)| cookie).collect();
    let fault_at = start.elapsed();
    fault().await;
    for t in tasks {
        t.await.unwrap();
    }
    let outcomes = out.lock().unwrap().clone();
    report_and_check(
        name,
        d,
        &users,
        &gone,
        &outcomes,
        fault_at,
        refreshes_before,
    )
    .await;
}

async fn report_and_check(
    name: &str,
    d: &Deployment,
    users: &[SpaClient],
    gone: &[String],
    outcomes: &[Outcome],
    fault_at: Duration,
    refreshes_before: u64,
) {
    let bad: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| {
            !(o.status == 200
                || (o.status == 503 && o.code.as_deref() == Some("session_store_unavailable")))
        })
        .collect();
    let unavailable: Vec<&Outcome> = outcomes.iter().filter(|o| o.status == 503).collect();
    let window = match (unavailable.first(), unavailable.last()) {
        (Some(first), Some(last)) => {
            let first = unavailable.iter().map(|o| o.at).min().unwrap_or(first.at);
            let last = unavailable
                .iter()
                .map(|o| o.at + o.took)
                .max()
                .unwrap_or(last.at);
            format!(
                "{:.1}s (from {:+.1}s to {:+.1}s after the failure)",
                (last - first).as_secs_f64(),
                first.as_secs_f64() - fault_at.as_secs_f64(),
                last.as_secs_f64() - fault_at.as_secs_f64()
            )
        }
        _ => "none".into(),
    };
    let early = unavailable
        .iter()
        .filter(|o| o.at + o.took < fault_at)
        .count();
    let slowest = outcomes.iter().map(|o| o.took).max().unwrap_or_default();
    let affected: std::collections::BTreeSet<usize> = unavailable.iter().map(|o| o.user).collect();
    let refreshes = d.provider.token_requests("refresh_token").await.unwrap() - refreshes_before;
    let mut unreplicated = 0u64;
    for i in &d.instances {
        if let Some(m) = i.metrics().await {
            unreplicated += m
                .lines()
                .filter(|l| l.starts_with("keyway_session_store_unreplicated_writes_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    println!(
        "FAILOVER {name}: {} s, {} users, {} requests: {} ok, {} x 503 session_store_unavailable \
         ({early} of them before the failure; {} users saw one), 503 window {window}; slowest \
         answer {:.2} s; {refreshes} refresh grants; {unreplicated} writes not acknowledged by a \
         replica; other answers: {}",
        run_length().as_secs(),
        users.len(),
        outcomes.len(),
        outcomes.iter().filter(|o| o.status == 200).count(),
        unavailable.len(),
        affected.len(),
        slowest.as_secs_f64(),
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "answers other than 200 and 503 session_store_unavailable: {:?}\nnginx:\n{}\n{}",
        &bad[..bad.len().min(10)],
        d.nginx.log(),
        d.instances
            .iter()
            .map(Instance::log_text)
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    assert!(
        refreshes >= users.len() as u64,
        "only {refreshes} refresh grants: the run did not refresh"
    );
    every_user_still_signed_in(users).await;
    // The logged-out sessions' cookies, sent again as they were.
    let http = reqwest::Client::new();
    for cookie in gone {
        let r = http
            .get(format!("{}bff/user", d.origin))
            .header("cookie", format!("keyway={cookie}"))
            .send()
            .await
            .unwrap();
        let (s, body) = json_of(r).await;
        assert_eq!(s, 401, "a logout was undone: {body}");
    }
    assert_eq!(
        d.provider.token_errors("refresh_token").await.unwrap(),
        0,
        "the provider refused a refresh token: one was spent twice"
    );
}

/// Every user gets `200` on `/bff/user` (a `503` is waited out; a `401` is a
/// lost session).
async fn every_user_still_signed_in(users: &[SpaClient]) {
    let end = Instant::now() + DEADLINE;
    for spa in users {
        loop {
            let (s, body) = json_of(spa.get("/bff/user").await).await;
            if s == 200 {
                break;
            }
            assert_eq!(s, 503, "a session was lost: {body}");
            assert!(Instant::now() < end, "the store never came back: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sentinel_failover_keeps_every_user_signed_in() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut group = RedisSentinel::start().await.unwrap();
    let d = deploy(&group.url()).await;
    let group = &mut group;
    run_scenario("redis-sentinel (master killed)", &d, || async move {
        let killed = group.kill_master().unwrap();
        let end = Instant::now() + DEADLINE;
        while group.master_port().is_none_or(|p| p == killed) {
            assert!(Instant::now() < end, "no failover");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_master_failover_keeps_every_user_signed_in() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = RedisCluster::start().await.unwrap();
    let d = deploy(&cluster.url()).await;
    let cluster = &mut cluster;
    run_scenario("redis-cluster (a master killed)", &d, || async move {
        let port = *cluster
            .masters_with_replica()
            .first()
            .expect("a master with a replica");
        cluster.node(port).unwrap().kill();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_keeps_every_user_signed_in() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut pg = PgServer::start().await.unwrap();
    let d = deploy(&pg.url()).await;
    let pg = &mut pg;
    run_scenario("postgres (crash and restart)", &d, || async move {
        pg.crash();
        pg.restart().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_going_away_leaves_its_users_on_the_others() {
    let _one = ONE_AT_A_TIME.lock().await;
    let pg = PgServer::start().await.unwrap();
    let mut d = deploy(&pg.url()).await;
    let stopped = d.instances.remove(0);
    let stopped = Arc::new(Mutex::new(stopped));
    let handle = stopped.clone();
    run_scenario("one keyway instance stopped (SIGTERM)", &d, || async move {
        tokio::task::spawn_blocking(move || handle.lock().unwrap().terminate())
            .await
            .unwrap();
    })
    .await;
    assert!(stopped.lock().unwrap().child.is_none());
}

//! `keyway-bench`: Keyway's benchmark, in one run on one machine.
//!
//! It starts an upstream (a minimal JSON handler), a plain reverse proxy to
//! it without authentication (the limit), the release `keyway` binary once
//! per session store (memory, SQLite, Redis, PostgreSQL, Redis Cluster) with
//! a session signed in
//! through the real test OpenID provider, the Node peer (Auth0's
//! express-openid-connect with http-proxy-middleware, `bench/peer/`) and
//! Apache httpd with mod_auth_openidc ([`apache`]), drives
//! each with `wrk` at each concurrency after a warm-up, and prints requests/s,
//! p50, p99 and the server's CPU per request, with the ratios Keyway / plain
//! proxy and Keyway / peers. Then: BFF CPU per login and outbound calls per
//! login (N logins against each Keyway process; on the Redis store, the
//! commands and bytes Redis received per login), memory per idle session in
//! the memory store, and the SPA's size: what Keyway's auth layer adds to a
//! small leptos_router app, and the demo's total (`spa-size` alone). See
//! BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release -p keyway-backend -p keyway-bench
//! target/release/keyway-bench
//! ```

mod apache;
mod load;
mod login;
mod memory;
mod servers;
mod spa;

use clap::{Args, Parser, Subcommand};
use keyway_tests::provider::{ClientConfig, ProviderConfig, TestProvider};
use load::Load;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The same allocator as the `keyway` binary, so that the plain proxy (run
/// by this binary) stays the limit of Keyway's own stack.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long a Keyway under test may take to answer `/readyz` with 200.
const READY_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Parser)]
#[command(
    name = "keyway-bench",
    about = "Keyway's benchmark (see BENCHMARKS.md)"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Runs the whole benchmark (the default).
    Run(RunArgs),
    /// Only the SPA's size: what Keyway adds to an app, and the demo's total
    /// (the builds must exist: `scripts/bench spa-size` makes them).
    SpaSize(spa::SpaArgs),
    /// Serves the upstream (a child process of `run`).
    #[command(hide = true)]
    Upstream {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// Serves the plain proxy (a child process of `run`).
    #[command(hide = true)]
    PlainProxy {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        #[arg(long)]
        upstream: String,
    },
    /// Measures memory per session in the memory store (a child of `run`).
    #[command(hide = true)]
    SessionMemory {
        #[arg(long)]
        sessions: usize,
        #[arg(long)]
        id_token: String,
    },
}

/// The settings of a benchmark run.
#[derive(Debug, Clone, Args)]
struct RunArgs {
    /// Seconds of each measured load run.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Seconds of warm-up before each measured run (not counted).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Rounds over all targets (figures are medians over rounds).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrencies (wrk connections).
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    concurrency: Vec<u32>,
    /// Session stores to run Keyway with (`memory`, `sqlite`, `redis`,
    /// `postgres`, `redis-cluster`; the servers are started by the run).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "memory,sqlite,redis,postgres,redis-cluster"
    )]
    stores: Vec<String>,
    /// Logins per store for CPU per login and outbound calls (0: skip).
    #[arg(long, default_value_t = 200)]
    logins: usize,
    /// Logins at once in the second login measurement (the first is one
    /// login at a time).
    #[arg(long, default_value_t = 8)]
    login_concurrency: usize,
    /// Sessions created for memory per session (0: skip).
    #[arg(long, default_value_t = 100_000)]
    sessions: usize,
    /// Skip the Node peer.
    #[arg(long)]
    no_peer: bool,
    /// Skip the Apache httpd + mod_auth_openidc peer.
    #[arg(long)]
    no_apache: bool,
    /// The keyway binary (default: `keyway` next to this executable).
    #[arg(long)]
    keyway: Option<PathBuf>,
    /// Another keyway binary (e.g. built from the commit before a change)
    /// run beside the first on every store, as the targets `keyway
    /// baseline-STORE`: its ratios come from the same rounds.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// RUST_LOG for the Keyway processes (default: unset, Keyway's own
    /// default `info`; its log goes to a file).
    #[arg(long)]
    keyway_log: Option<String>,
    /// After the rounds, one more run per target at the highest concurrency
    /// with `perf record -e cpu-clock -g` attached to the server, written
    /// to DIR/<target>.data (`perf report -i ...`).
    #[arg(long, value_name = "DIR")]
    profile: Option<PathBuf>,
    /// The SPA builds to measure.
    #[command(flatten)]
    spa: spa::SpaArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = rt.block_on(async move {
        match cli.command {
            None => run(cli.run).await,
            Some(Sub::Run(args)) => run(args).await,
            Some(Sub::SpaSize(args)) => spa::report(&args, &repo()),
            Some(Sub::Upstream { listen }) => servers::upstream(&listen).await,
            Some(Sub::PlainProxy { listen, upstream }) => {
                servers::plain_proxy(&listen, &upstream).await
            }
            Some(Sub::SessionMemory { sessions, id_token }) => {
                memory::run(sessions, &id_token).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyway-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root (this crate is `bench/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_owned()
}

/// Spawns `cmd` (killed on drop) and waits for its `READY <url>` line.
async fn spawn_ready(mut cmd: Command, what: &str) -> Result<(Child, String), String> {
    cmd.stdout(Stdio::piped()).kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .map_err(|_| format!("{what} did not start in 30 s"))?
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{what} exited before READY"))?;
    let url = line
        .strip_prefix("READY ")
        .ok_or_else(|| format!("{what} said {line:?}"))?
        .to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, url))
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    keyway_tests::redis::free_port()
}

/// One server under load.
struct Target {
    name: String,
    url: String,
    headers: Vec<String>,
    pid: Option<u32>,
}

/// A Keyway process on one store.
struct Keyway {
    store: String,
    origin: String,
    child: Child,
    cookie: String,
}

/// What every Keyway process of a run shares.
#[derive(Clone, Copy)]
struct KeywayCommon<'a> {
    bin: &'a Path,
    issuer: &'a str,
    upstream: &'a str,
    dir: &'a Path,
    log: Option<&'a str>,
}

async fn start_keyway(
    common: &KeywayCommon<'_>,
    store: &str,
    store_setting: &str,
    port: u16,
) -> Result<Keyway, String> {
    let KeywayCommon {
        bin,
        issuer,
        upstream,
        dir,
        log,
    } = *common;
    let origin = format!("http://127.0.0.1:{port}");
    let config = dir.join(format!("keyway-{store}.toml"));
    std::fs::write(
        &config,
        format!("[[apis]]\nname = \"bench\"\nurl = \"{upstream}\"\ntoken = \"user\"\n"),
    )
    .map_err(|e| e.to_string())?;
    let log_file = std::fs::File::create(dir.join(format!("keyway-{store}.log")))
        .map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("KEYWAY_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.arg("--config")
        .arg(&config)
        .arg("serve")
        .env("KEYWAY_LISTEN", format!("127.0.0.1:{port}"))
        .env("KEYWAY_PUBLIC_URL", &origin)
        .env("KEYWAY_ISSUER", issuer)
        .env("KEYWAY_CLIENT_ID", "keyway")
        .env("KEYWAY_CLIENT_SECRET", "keyway-secret")
        .env("KEYWAY_SCOPES", "openid profile email offline_access")
        .env("KEYWAY_SESSION_STORE", store_setting)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .kill_on_drop(true);
    if store_setting != "memory" {
        // A fixed benchmark-only key (base64 of 32 bytes).
        cmd.env(
            "KEYWAY_SESSION_KEY",
            "a2V5d2F5LWJlbmNoLW9ubHkta2V5LTAxMjM0NTY3ODk=",
        );
    }
    if let Some(l) = log {
        cmd.env("RUST_LOG", l);
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let http = reqwest::Client::new();
    // A store that is slow to start (PostgreSQL on a loaded machine) gets
    // Keyway's own start-up bounds and then some.
    let deadline = Instant::now() + READY_WAIT;
    let mut ready = false;
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{origin}/readyz")).send().await
            && r.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !ready {
        // The temporary directory goes with the run: show the log's end.
        let log =
            std::fs::read_to_string(dir.join(format!("keyway-{store}.log"))).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "keyway ({store}) not ready in {READY_WAIT:?}; the end of its log:\n{}",
            tail.join("\n")
        ));
    }
    Ok(Keyway {
        store: store.to_owned(),
        origin,
        child,
        cookie: String::new(),
    })
}

/// One request as the load generator will make it: must be 200.
async fn check(url: &str, headers: &[String]) -> Result<(), String> {
    let mut req = reqwest::Client::new().get(url);
    for h in headers {
        if let Some((k, v)) = h.split_once(": ") {
            req = req.header(k, v);
        }
    }
    let r = req.send().await.map_err(|e| e.to_string())?;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    if status != 200 || body != servers::UPSTREAM_BODY {
        return Err(format!("{url} answered {status}: {body}"));
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn spread(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.2} ({lo:.2}–{hi:.2})", median(v.to_vec()))
}

async fn run(args: RunArgs) -> Result<(), String> {
    let started = Instant::now();
    keyway_backend::internals::install_crypto_provider();
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = args
        .keyway
        .clone()
        .unwrap_or_else(|| me.with_file_name("keyway"));
    if !bin.is_file() {
        return Err(format!(
            "{} is missing: cargo build --release -p keyway-backend -p keyway-bench",
            bin.display()
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let script = dir.path().join("report.lua");
    std::fs::write(&script, load::WRK_SCRIPT).map_err(|e| e.to_string())?;

    println!("# keyway-bench");
    println!();
    machine();

    // The upstream and the plain proxy, each its own process.
    let mut up = Command::new(&me);
    up.arg("upstream");
    let (_upstream, upstream_url) = spawn_ready(up, "the upstream").await?;
    let mut plain = Command::new(&me);
    plain.args(["plain-proxy", "--upstream", &upstream_url]);
    let (plain_child, plain_url) = spawn_ready(plain, "the plain proxy").await?;

    // The provider, with a client for every Keyway port and one for the peer.
    // (label, store, binary, port): every store, then the baseline's.
    let mut ports: Vec<(String, String, PathBuf, u16)> = args
        .stores
        .iter()
        .map(|s| (s.clone(), s.clone(), bin.clone(), free_port()))
        .collect();
    if let Some(base) = &args.baseline {
        for s in &args.stores {
            ports.push((
                format!("baseline-{s}"),
                s.clone(),
                base.clone(),
                free_port(),
            ));
        }
    }
    let peer_port = free_port();
    let apache_port = free_port();
    let keyway_client = ClientConfig {
        client_id: "keyway".into(),
        client_secret: "keyway-secret".into(),
        redirect_uris: ports
            .iter()
            .map(|(_, _, _, p)| format!("http://127.0.0.1:{p}/callback"))
            .collect(),
        post_logout_redirect_uris: vec![],
        // Registered so that ID tokens carry a `sid`, as at a provider with
        // back-channel logout: each login then files two login-index
        // entries (`sid` and `sub`). The bench never logs out, so nothing
        // is ever sent there.
        backchannel_logout_uri: ports
            .first()
            .map(|(_, _, _, p)| format!("http://127.0.0.1:{p}/bff/backchannel-logout")),
    };
    let peer_client = ClientConfig {
        client_id: "peer".into(),
        client_secret: "peer-secret".into(),
        redirect_uris: vec![format!("http://127.0.0.1:{peer_port}/callback")],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
    };
    let apache_client = ClientConfig {
        client_id: "apache".into(),
        client_secret: "apache-secret".into(),
        redirect_uris: vec![format!("http://127.0.0.1:{apache_port}/callback")],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
    };
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![keyway_client, peer_client, apache_client],
        ..ProviderConfig::default()
    })
    .await?;

    let redis = if args.stores.iter().any(|s| s == "redis") {
        Some(keyway_tests::redis::RedisServer::start().await?)
    } else {
        None
    };

    let postgres = if args.stores.iter().any(|s| s == "postgres") {
        Some(keyway_tests::postgres::PgServer::start().await?)
    } else {
        None
    };
    let cluster = if args.stores.iter().any(|s| s == "redis-cluster") {
        Some(keyway_tests::redis_ha::RedisCluster::start().await?)
    } else {
        None
    };

    let mut keyways = Vec::new();
    for (label, store, bin, port) in &ports {
        let setting = match store.as_str() {
            "memory" => "memory".to_owned(),
            "sqlite" => format!(
                "sqlite://{}",
                dir.path().join(format!("{label}.db")).display()
            ),
            "redis" => redis.as_ref().map(|r| r.url()).unwrap_or_default(),
            "postgres" => postgres.as_ref().map(|p| p.url()).unwrap_or_default(),
            "redis-cluster" => cluster.as_ref().map(|c| c.url()).unwrap_or_default(),
            other => return Err(format!("unknown store {other:?}")),
        };
        let common = KeywayCommon {
            bin,
            issuer: &provider.issuer,
            upstream: &upstream_url,
            dir: dir.path(),
            log: args.keyway_log.as_deref(),
        };
        let mut k = start_keyway(&common, label, &setting, *port).await?;
        k.cookie = login::keyway(&provider, &k.origin).await?;
        keyways.push(k);
    }

    let peer = if args.no_peer {
        None
    } else {
        let peer_dir = repo().join("bench/peer");
        if !peer_dir
            .join("node_modules/express-openid-connect")
            .is_dir()
        {
            return Err("bench/peer/node_modules is missing: npm ci --prefix bench/peer".into());
        }
        let mut cmd = Command::new(std::env::var_os("NODE").unwrap_or_else(|| "node".into()));
        cmd.arg("server.mjs")
            .current_dir(&peer_dir)
            .env("NODE_ENV", "production")
            .env("PEER_PORT", peer_port.to_string())
            .env("PEER_ISSUER", &provider.issuer)
            .env("PEER_UPSTREAM", &upstream_url)
            .env("PEER_CLIENT_ID", "peer")
            .env("PEER_CLIENT_SECRET", "peer-secret")
            .stderr(Stdio::null());
        let (child, url) = spawn_ready(cmd, "the peer").await?;
        let cookie = login::peer(&provider, &url).await?;
        Some((child, url, cookie))
    };

    let apache_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let apache = if args.no_apache {
        None
    } else {
        // Its worker threads run as www-data and write nothing here but
        // its pid file and log (written by the parent, as root).
        let settings = apache::Settings {
            issuer: &provider.issuer,
            upstream: &upstream_url,
            port: apache_port,
            client_id: "apache",
            client_secret: "apache-secret",
        };
        let (child, url) = apache::start(apache_dir.path(), &settings).await?;
        let cookie = login::apache(&provider, &url).await?;
        Some((child, url, cookie))
    };

    // The targets, each checked once.
    let mut targets = vec![Target {
        name: "plain proxy".into(),
        url: format!("{plain_url}/item"),
        headers: vec![],
        pid: plain_child.id(),
    }];
    for k in &keyways {
        targets.push(Target {
            name: format!("keyway {}", k.store),
            url: format!("{}/bff/api/bench/item", k.origin),
            headers: vec![format!("Cookie: {}", k.cookie), "X-CSRF: 1".into()],
            pid: k.child.id(),
        });
    }
    if let Some((child, url, cookie)) = &peer {
        targets.push(Target {
            name: "peer (express-openid-connect)".into(),
            url: format!("{url}/api/item"),
            headers: vec![format!("Cookie: {cookie}")],
            pid: child.id(),
        });
    }
    if let Some((child, url, cookie)) = &apache {
        targets.push(Target {
            name: "peer (mod_auth_openidc)".into(),
            url: format!("{url}/api/item"),
            headers: vec![format!("Cookie: {cookie}")],
            pid: child.id(),
        });
    }
    for t in &targets {
        check(&t.url, &t.headers).await?;
    }

    // Load: rounds over every target and concurrency.
    let mut results: BTreeMap<(usize, u32), Vec<Load>> = BTreeMap::new();
    for round in 0..args.rounds {
        for (i, t) in targets.iter().enumerate() {
            for &c in &args.concurrency {
                if args.warmup > 0 {
                    load::wrk(&script, &t.url, &t.headers, c, args.warmup, None).await?;
                }
                let l = load::wrk(&script, &t.url, &t.headers, c, args.duration, t.pid).await?;
                eprintln!(
                    "round {} {:<32} c={c:<3} {:>9.0} req/s p50 {:>7.0} µs p99 {:>7.0} µs cpu {:>5.1} µs/req errors {}",
                    round + 1,
                    t.name,
                    l.rps,
                    l.p50_us,
                    l.p99_us,
                    l.cpu_us_per_req,
                    l.errors
                );
                results.entry((i, c)).or_default().push(l);
            }
        }
    }
    if args.rounds > 0 {
        report_load(&targets, &results, &args);
    }
    if let Some(out) = &args.profile {
        profile(out, &script, &targets, &args).await?;
    }

    // Logins: CPU, outbound calls and Redis commands.
    if args.logins > 0 {
        report_logins(&args, &provider, &keyways, redis.as_ref()).await?;
    }

    // Memory per idle session.
    if args.sessions > 0 {
        let now = keyway_backend::internals::now_secs();
        let id_token = provider
            .sign_test_jwt(
                &serde_json::json!({
                    "iss": provider.issuer, "sub": "alice", "aud": "keyway",
                    "exp": now + 3600, "iat": now, "auth_time": now,
                    "nonce": "Zk3h0QdC4u1s3mWbq9Y2nP7rXo5aT8vLgE6iJcKyB0w",
                    "at_hash": "x8wW1Ym4sQ2fPq9tR3nA5g", "sid": "c2Vzc2lvbi1pZC0xMjM0NTY3",
                    "name": "Alice Liddell", "given_name": "Alice", "family_name": "Liddell",
                    "email": "alice@example.com", "email_verified": true,
                }),
                false,
            )
            .await?;
        println!(
            "\n## Memory per idle session (memory store, {} sessions, ID token {} bytes)\n",
            args.sessions,
            id_token.len()
        );
        println!("| session data | RSS growth | per login |");
        println!("| --- | --- | --- |");
        let out = std::process::Command::new(&me)
            .args([
                "session-memory",
                "--sessions",
                &args.sessions.to_string(),
                "--id-token",
                &id_token,
            ])
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("KEYWAY_BENCH_MEMORY "))
            .ok_or_else(|| {
                format!(
                    "session-memory failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
        let v: Vec<f64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let growth = v[1] - v[0];
        // The memory store keeps sessions decoded, with or without a key.
        println!(
            "| a session and its two login-index entries (`KEYWAY_SESSION_STORE=memory`) | {:.1} MiB | {:.0} B ({:.2} KiB) |",
            growth / 1048576.0,
            growth / v[2],
            growth / v[2] / 1024.0
        );
    }

    spa::report(&args.spa, &repo())?;
    println!(
        "\n(total run time {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    drop(keyways);
    drop(peer);
    drop(apache);
    drop(redis);
    drop(postgres);
    drop(cluster);
    Ok(())
}

/// Redis's own counters (`INFO stats`): commands processed and bytes
/// received, since it started.
fn redis_counters(redis: &keyway_tests::redis::RedisServer) -> Result<[f64; 2], String> {
    let out = redis.cli(&["INFO", "stats"])?;
    let text = String::from_utf8_lossy(&out);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
            .ok_or_else(|| format!("no {name} in Redis's INFO stats"))
    };
    Ok([
        field("total_commands_processed")?,
        field("total_net_input_bytes")?,
    ])
}

/// The logins table: BFF CPU per login (N one at a time, then N more
/// `login_concurrency` at a time), the provider's token requests and key
/// fetches, and on the Redis store what the Redis server received.
async fn report_logins(
    args: &RunArgs,
    provider: &TestProvider,
    keyways: &[Keyway],
    redis: Option<&keyway_tests::redis::RedisServer>,
) -> Result<(), String> {
    let streams = args.login_concurrency.max(1);
    println!(
        "\n## Logins (N = {} per store, one at a time; then N more, {streams} at a time; ID tokens with a `sid`)\n",
        args.logins
    );
    println!(
        "| store | BFF CPU per login, one at a time | BFF CPU per login, {streams} at a time | token requests per login | discovery fetches | JWKS fetches | Redis commands per login¹ | bytes to Redis per login¹ |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for k in keyways {
        // One login first, so that a first JWKS fetch is not counted.
        login::keyway(provider, &k.origin).await?;
        let pid = k.child.id().ok_or("keyway exited")?;
        // The Redis server of the `redis` store (the baseline's shares it).
        let on_redis = redis.filter(|_| k.store.trim_start_matches("baseline-") == "redis");
        let r0 = on_redis.map(redis_counters).transpose()?;
        let s0 = provider.stats().await?;
        let c0 = load::cpu_time(pid)?;
        for _ in 0..args.logins {
            login::keyway(provider, &k.origin).await?;
        }
        let c1 = load::cpu_time(pid)?;
        let per_stream = args.logins.div_ceil(streams);
        let stream = || async {
            for _ in 0..per_stream {
                login::keyway(provider, &k.origin).await?;
            }
            Ok::<_, String>(())
        };
        futures_util::future::try_join_all((0..streams).map(|_| stream())).await?;
        let c2 = load::cpu_time(pid)?;
        let s1 = provider.stats().await?;
        let r1 = on_redis.map(redis_counters).transpose()?;
        let delta = |f: &dyn Fn(&serde_json::Value) -> &serde_json::Value| {
            f(&s1).as_f64().unwrap_or(f64::NAN) - f(&s0).as_f64().unwrap_or(f64::NAN)
        };
        let n = args.logins as f64;
        let total = n + (per_stream * streams) as f64;
        // Less the first `INFO` itself (one command; the bytes of the
        // second are counted, about 25).
        let redis_per_login = |i: usize, less: f64, digits: usize| match (r0, r1) {
            (Some(a), Some(b)) => format!("{:.digits$}", (b[i] - a[i] - less) / total),
            _ => "–".into(),
        };
        println!(
            "| {} | {:.3} ms | {:.3} ms | {:.2} | {} | {} | {} | {} |",
            k.store,
            (c1 - c0).as_secs_f64() * 1e3 / n,
            (c2 - c1).as_secs_f64() * 1e3 / (per_stream * streams) as f64,
            delta(&|s| &s["token_requests"]["authorization_code"]) / total,
            delta(&|s| &s["discovery_requests"]),
            delta(&|s| &s["jwks_requests"]),
            redis_per_login(0, 1.0, 2),
            redis_per_login(1, 0.0, 0),
        );
    }
    println!(
        "\n¹ The `redis` store only (`–`: another store): the deltas of the \
         bench's redis-server `INFO stats` `total_commands_processed` and \
         `total_net_input_bytes` over both login runs, divided by the logins. \
         Redis counts the commands a Lua script runs too: a login sends 4 \
         (the replay-cache `SET`, the session's create script, the `sid` and \
         `sub` index scripts), which run 11 more (3 + 4 + 4), so 15. The \
         counts take in every client of that server, not only this Keyway's \
         logins: its change-tracking connection's heartbeat `PING` (one a \
         second) and any `CLIENT TRACKING` it turns on again, the same from \
         the other Keyway on that server (`baseline-redis` shares it), \
         `/readyz` checks (`PING`) if anything polls them (nothing does \
         here), and the bench's own `INFO` (one command, subtracted; about \
         25 bytes, not). Invalidation notices are pushed by the server, not \
         commands sent to it."
    );
    Ok(())
}

fn report_load(targets: &[Target], results: &BTreeMap<(usize, u32), Vec<Load>>, args: &RunArgs) {
    println!(
        "\n## API proxy under load (wrk, {} s runs after {} s warm-up, median of {} rounds)\n",
        args.duration, args.warmup, args.rounds
    );
    println!("| target | conns | req/s | p50 | p99 | server CPU per request | errors |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for &c in &args.concurrency {
        for (i, t) in targets.iter().enumerate() {
            let v = &results[&(i, c)];
            println!(
                "| {} | {c} | {:.0} | {:.0} µs | {:.0} µs | {:.1} µs | {} |",
                t.name,
                median(v.iter().map(|l| l.rps).collect()),
                median(v.iter().map(|l| l.p50_us).collect()),
                median(v.iter().map(|l| l.p99_us).collect()),
                median(v.iter().map(|l| l.cpu_us_per_req).collect()),
                v.iter().map(|l| l.errors).sum::<u64>(),
            );
        }
    }
    println!("\n## Ratios (per round, then the median and the range over rounds)\n");
    println!(
        "| Keyway on | conns | req/s ÷ plain proxy | added p50 | CPU/request ÷ plain proxy | req/s ÷ Node peer | req/s ÷ mod_auth_openidc | CPU/request ÷ mod_auth_openidc |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let peer = targets
        .iter()
        .position(|t| t.name.starts_with("peer (express"));
    let apache = targets
        .iter()
        .position(|t| t.name.starts_with("peer (mod_auth"));
    for &c in &args.concurrency {
        let plain = &results[&(0, c)];
        for (i, t) in targets.iter().enumerate() {
            if !t.name.starts_with("keyway") {
                continue;
            }
            // `keyway baseline-memory`: the baseline binary on that store.
            let k = &results[&(i, c)];
            let ratio = |f: fn(&Load) -> f64, base: &[Load]| -> Vec<f64> {
                k.iter().zip(base).map(|(a, b)| f(a) / f(b)).collect()
            };
            let added: Vec<f64> = k
                .iter()
                .zip(plain)
                .map(|(a, b)| a.p50_us - b.p50_us)
                .collect();
            let vs_peer = peer.map_or("–".into(), |p| {
                spread(&ratio(|l| l.rps, &results[&(p, c)]))
            });
            let (vs_apache, cpu_vs_apache) = apache.map_or(("–".into(), "–".into()), |a| {
                (
                    spread(&ratio(|l| l.rps, &results[&(a, c)])),
                    spread(&ratio(|l| l.cpu_us_per_req, &results[&(a, c)])),
                )
            });
            println!(
                "| {} | {c} | {} | {:.0} µs | {} | {} | {} | {} |",
                t.name.trim_start_matches("keyway "),
                spread(&ratio(|l| l.rps, plain)),
                median(added),
                spread(&ratio(|l| l.cpu_us_per_req, plain)),
                vs_peer,
                vs_apache,
                cpu_vs_apache,
            );
        }
    }
}

/// One load run per target with `perf record` attached to its server.
async fn profile(
    out: &Path,
    script: &Path,
    targets: &[Target],
    args: &RunArgs,
) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let c = args.concurrency.iter().copied().max().unwrap_or(32);
    for t in targets {
        let Some(pid) = t.pid else { continue };
        let file = out.join(format!(
            "{}.data",
            t.name
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join("-")
        ));
        let mut perf = Command::new("perf");
        perf.args(["record", "-e", "cpu-clock", "-F", "1999", "-g", "-o"])
            .arg(&file)
            .args([
                "-p",
                &pid.to_string(),
                "--",
                "sleep",
                &args.duration.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut perf = perf.spawn().map_err(|e| format!("cannot run perf: {e}"))?;
        load::wrk(script, &t.url, &t.headers, c, args.duration, None).await?;
        let _ = perf.wait().await;
        eprintln!("profile of {} at c={c}: {}", t.name, file.display());
    }
    Ok(())
}

/// Cores, memory and load average of this machine.
fn machine() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or("?".into(), |kb| format!("{:.1} GiB", kb / 1048576.0));
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    println!(
        "machine: {cores} cores ({model}), {mem} memory; load average before the run: {}",
        loadavg.trim()
    );
}

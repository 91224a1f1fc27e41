//! The real `keyway` binary as an operator runs it: its logs (text and JSON,
//! request ids, no secrets), graceful shutdown on SIGTERM with its bound, and
//! `keyway check-config`. Providers are the real oidc-provider of
//! `keyway-tests` (`npm ci --prefix tests/provider` once).

use keyway_tests::bff::{callback_request, client_for};
use keyway_tests::provider::{Consent, ProviderConfig, TestProvider};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, oneshot};
use url::Url;

const KEYWAY: &str = env!("CARGO_BIN_EXE_keyway");
const SECRET: &str = "keyway-secret";
/// Upper bound of every wait in these tests.
const DEADLINE: Duration = Duration::from_secs(20);

/// A free loopback port (bound and released: the binary binds it itself).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running `keyway serve` whose stderr is collected line by line.
struct Keyway {
    child: Child,
    origin: String,
    port: u16,
    stderr: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Keyway {
    /// Starts `keyway [--config FILE] serve` with exactly `env` (plus nothing inherited).
    fn start(
        port: u16,
        env: &BTreeMap<String, String>,
        config: Option<&std::path::Path>,
    ) -> Keyway {
        // reqwest (rustls without a default provider) needs one installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut cmd = Command::new(KEYWAY);
        cmd.env_clear()
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd.arg("serve").spawn().expect("start keyway");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(line);
            }
        });
        Keyway {
            child,
            origin: format!("http://127.0.0.1:{port}"),
            port,
            stderr,
            reader: Some(reader),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Polls `path` until it answers 200.
    async fn wait_for(&self, path: &str) {
        let http = reqwest::Client::new();
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            if let Ok(r) = http.get(self.url(path)).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "keyway never answered 200 on {path}; stderr:\n{}",
            self.lines().join("\n")
        );
    }

    fn sigterm(&self) {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits (polling, bounded) for the process to exit; returns its status.
    async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    fn lines(&self) -> Vec<String> {
        self.stderr.lock().expect("lines").clone()
    }

    fn refuses_connections(&self) -> bool {
        TcpStream::connect_timeout(
            &format!("127.0.0.1:{}", self.port).parse().expect("addr"),
            Duration::from_millis(200),
        )
        .is_err()
    }
}

impl Drop for Keyway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Settings of a BFF on `port` against `issuer`, memory sessions.
fn env_for(port: u16, issuer: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (k, v) in [
        ("KEYWAY_LISTEN", format!("127.0.0.1:{port}")),
        ("KEYWAY_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
        ("KEYWAY_ISSUER", issuer.to_owned()),
        ("KEYWAY_CLIENT_ID", "keyway".to_owned()),
        ("KEYWAY_CLIENT_SECRET", SECRET.to_owned()),
        ("KEYWAY_SESSION_STORE", "memory".to_owned()),
        (
            "KEYWAY_SCOPES",
            "openid profile email offline_access".to_owned(),
        ),
        ("RUST_LOG", "info".to_owned()),
    ] {
        env.insert(k.to_owned(), v);
    }
    env
}

/// The `request_id` a JSON log line carries in its current span or span list.
fn request_id_of(line: &serde_json::Value) -> Option<String> {
    let from_span = line["span"]["request_id"].as_str();
    let from_list = line["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find_map(|s| s["request_id"].as_str()));
    from_span.or(from_list).map(str::to_owned)
}

/// A login through the real binary with JSON logs: every line is a JSON
/// object; every line about a request carries its `x-request-id`; no line
/// carries the code, the state, a token, the session cookie or the secret.
#[tokio::test]
async fn json_logs_carry_the_request_id_and_no_secret() {
    let port = free_port();
    let origin = Url::parse(&format!("http://127.0.0.1:{port}")).expect("url");
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&origin)],
        ..ProviderConfig::default()
    })
    .await
    .expect("provider");
    // An upstream that records the access token the BFF sends it.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let upstream_addr = upstream.local_addr().expect("addr");
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
            let seen_tx = seen_tx.clone();
            async move {
                if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    let _ = seen_tx.send(v.trim_start_matches("Bearer ").to_owned());
                }
                "{}"
            }
        });
        let _ = axum::serve(upstream, app).await;
    });
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("keyway.toml");
    std::fs::write(
        &file,
        format!("[[apis]]\nname = \"echo\"\nurl = \"http://{upstream_addr}/\"\ntoken = \"user\"\n"),
    )
    .expect("write config");
    let mut env = env_for(port, &provider.issuer);
    env.insert("KEYWAY_LOG_FORMAT".into(), "json".into());
    // `proxied` (the upstream's own time) is a debug line: asked for here,
    // as an operator debugging the proxy would.
    env.insert("RUST_LOG".into(), "info,keyway_backend::proxy=debug".into());
    let mut keyway = Keyway::start(port, &env, Some(&file));
    keyway.wait_for("/readyz").await;

    let spa = TestProvider::browser();
    let browser = TestProvider::browser();
    let started: serde_json::Value = spa
        .post(keyway.url("/bff/login"))
        .header("x-csrf", "1")
        .header("x-request-id", "login-req-1")
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let auth_url = started["authorization_url"]
        .as_str()
        .expect("authorization_url");
    let back = provider
        .sign_in_with(&browser, auth_url, "alice", "wonderland", Consent::Allow)
        .await
        .expect("sign in");
    let cb = callback_request(&back);
    let code = cb.code.clone().expect("code");
    let state = cb.state.clone().expect("state");
    let done = spa
        .post(keyway.url("/bff/callback"))
        .header("x-csrf", "1")
        .header("x-request-id", "callback-req-1")
        .json(&cb)
        .send()
        .await
        .expect("callback");
    assert_eq!(done.status(), 200);
    assert_eq!(done.headers()["x-request-id"], "callback-req-1");
    let cookie_value = done
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("keyway="))
        .and_then(|c| c.split(';').next())
        .and_then(|c| c.strip_prefix("keyway="))
        .expect("session cookie")
        .to_owned();
    let proxied = spa
        .get(keyway.url("/bff/api/echo/x"))
        .header("x-csrf", "1")
        .header("x-request-id", "proxy-req-1")
        .send()
        .await
        .expect("proxy");
    assert_eq!(proxied.status(), 200);
    let access_token = seen_rx.recv().await.expect("the upstream saw a token");
    let user = spa
        .get(keyway.url("/bff/userinfo"))
        .header("x-request-id", "userinfo-req-1")
        .send()
        .await
        .expect("userinfo");
    assert_eq!(user.status(), 200);

    keyway.sigterm();
    let status = keyway.wait_exit(DEADLINE).await.expect("keyway exits");
    assert!(status.success(), "exit status {status}");
    let lines = keyway.lines();
    let all = lines.join("\n");

    // One JSON object a line.
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(parsed.iter().all(serde_json::Value::is_object));
    // Every line about one of our requests names it; the events of the
    // login and the access log lines are there with the right id.
    for id in [
        "login-req-1",
        "callback-req-1",
        "proxy-req-1",
        "userinfo-req-1",
    ] {
        let of_request: Vec<_> = parsed
            .iter()
            .filter(|l| request_id_of(l).as_deref() == Some(id))
            .collect();
        assert!(
            of_request
                .iter()
                .any(|l| l["message"] == "finished processing request"),
            "no access log line for {id}:\n{all}"
        );
    }
    let find = |msg: &str| {
        parsed
            .iter()
            .find(|l| l["message"] == msg)
            .unwrap_or_else(|| panic!("no `{msg}` line:\n{all}"))
    };
    assert_eq!(
        request_id_of(find("login started")).as_deref(),
        Some("login-req-1")
    );
    assert_eq!(
        request_id_of(find("login completed")).as_deref(),
        Some("callback-req-1")
    );
    assert_eq!(
        request_id_of(find("proxied")).as_deref(),
        Some("proxy-req-1")
    );
    for l in &parsed {
        if l["spans"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["name"] == "request"))
        {
            assert!(
                request_id_of(l).is_some(),
                "a request line without request_id: {l}"
            );
        }
    }
    // Nothing secret.
    for (what, value) in [
        ("the code", code.as_str()),
        ("the state", state.as_str()),
        ("the session cookie", cookie_value.as_str()),
        ("the access token", access_token.as_str()),
        ("the client secret", SECRET),
    ] {
        assert!(value.len() >= 8, "{what} is suspiciously short: {value:?}");
        assert!(!all.contains(value), "{what} is in the logs:\n{all}");
    }
    assert!(!all.contains("eyJ"), "a JWT is in the logs:\n{all}");
}

/// Text logs are the default: human lines (not JSON) that carry the request id.
#[tokio::test]
async fn text_logs_are_the_default_and_carry_the_request_id() {
    let port = free_port();
    // No provider is needed for /healthz; discovery just keeps failing.
    let dead = free_port();
    let mut keyway = Keyway::start(
        port,
        &env_for(port, &format!("http://127.0.0.1:{dead}")),
        None,
    );
    keyway.wait_for("/healthz").await;
    let r = reqwest::Client::new()
        .get(keyway.url("/healthz"))
        .header("x-request-id", "text-req-7")
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.headers()["x-request-id"], "text-req-7");
    keyway.sigterm();
    let status = keyway.wait_exit(DEADLINE).await.expect("exits");
    assert!(status.success(), "exit status {status}");
    let lines = keyway.lines();
    let ours: Vec<_> = lines.iter().filter(|l| l.contains("text-req-7")).collect();
    assert!(
        !ours.is_empty(),
        "no line with the request id:\n{}",
        lines.join("\n")
    );
    for l in &ours {
        assert!(l.contains("request_id=text-req-7"), "{l}");
        assert!(
            serde_json::from_str::<serde_json::Value>(l).is_err(),
            "JSON by default: {l}"
        );
    }
    // The access line, written by the log thread (not the request's), is
    // there; so is the last line, written after the runtime stopped (the
    // writer's queue is flushed at exit).
    assert!(
        ours.iter()
            .any(|l| l.contains("finished processing request") && l.contains("status=200")),
        "no access line:\n{}",
        lines.join("\n")
    );
    assert!(
        lines.iter().any(|l| l.contains("keyway stopped")),
        "{}",
        lines.join("\n")
    );
}

/// An upstream whose one route answers 200 only when the test releases it,
/// and says when a request has arrived.
async fn held_upstream() -> (String, Arc<Notify>, oneshot::Sender<()>) {
    let arrived = Arc::new(Notify::new());
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release = Arc::new(Mutex::new(Some(release_rx)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let arrived2 = arrived.clone();
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(move || {
            let arrived = arrived2.clone();
            let release = release.clone();
            async move {
                arrived.notify_one();
                let rx = release.lock().expect("release").take();
                if let Some(rx) = rx {
                    // At most 10 s, so that a failing test never hangs.
                    let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
                }
                "slow answer"
            }
        });
        let _ = axum::serve(listener, app).await;
    });
    (base, arrived, release_tx)
}

/// Starts a provider (for the client-credentials token) and keyway with an
/// `[[apis]] slow` on the held upstream.
async fn slow_stack(
    extra: &[(&str, &str)],
) -> (
    TestProvider,
    Keyway,
    Arc<Notify>,
    oneshot::Sender<()>,
    tempfile::TempDir,
) {
    let port = free_port();
    let origin = Url::parse(&format!("http://127.0.0.1:{port}")).expect("url");
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&origin)],
        ..ProviderConfig::default()
    })
    .await
    .expect("provider");
    let (base, arrived, release) = held_upstream().await;
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("keyway.toml");
    std::fs::write(
        &file,
        format!("[[apis]]\nname = \"slow\"\nurl = \"{base}/\"\ntoken = \"client\"\nscopes = [\"api\"]\ntimeout = \"30s\"\n"),
    )
    .expect("write config");
    let mut env = env_for(port, &provider.issuer);
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    let keyway = Keyway::start(port, &env, Some(&file));
    keyway.wait_for("/readyz").await;
    (provider, keyway, arrived, release, dir)
}

/// SIGTERM during a slow proxied request: no new connection is accepted, the
/// request still gets its 200, and the process exits with status 0.
#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish() {
    let (_provider, mut keyway, arrived, release, _dir) = slow_stack(&[]).await;
    let url = keyway.url("/bff/api/slow/work");
    let request = tokio::spawn(async move {
        let r = reqwest::Client::new()
            .get(url)
            .header("x-csrf", "1")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let body = r.text().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((status, body))
    });
    tokio::time::timeout(DEADLINE, arrived.notified())
        .await
        .expect("the request reached the upstream");
    keyway.sigterm();
    // The listener closes while the request is still held upstream.
    let end = Instant::now() + DEADLINE;
    while !keyway.refuses_connections() {
        assert!(
            Instant::now() < end,
            "still accepting connections after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        keyway.child.try_wait().expect("try_wait").is_none(),
        "exited before the request finished"
    );
    assert!(
        !request.is_finished(),
        "the request finished before the upstream answered"
    );
    let _ = release.send(());
    let (status, body) = tokio::time::timeout(DEADLINE, request)
        .await
        .expect("the request finishes")
        .expect("task")
        .expect("the request succeeds");
    assert_eq!((status, body.as_str()), (200, "slow answer"));
    let exit = keyway.wait_exit(DEADLINE).await.expect("keyway exits");
    assert!(exit.success(), "exit status {exit}");
}

/// A request that outlives `KEYWAY_SHUTDOWN_TIMEOUT` does not keep the
/// process alive: it exits anyway, with status 0.
#[tokio::test]
async fn shutdown_timeout_bounds_the_wait() {
    let (_provider, mut keyway, arrived, release, _dir) =
        slow_stack(&[("KEYWAY_SHUTDOWN_TIMEOUT", "1s")]).await;
    let url = keyway.url("/bff/api/slow/work");
    let request = tokio::spawn(async move {
        reqwest::Client::new()
            .get(url)
            .header("x-csrf", "1")
            .send()
            .await
            .map(|r| r.status())
    });
    tokio::time::timeout(DEADLINE, arrived.notified())
        .await
        .expect("the request reached the upstream");
    let signalled = Instant::now();
    keyway.sigterm();
    let exit = keyway
        .wait_exit(Duration::from_secs(8))
        .await
        .expect("keyway exits within the timeout (plus a margin) although a request is held");
    assert!(exit.success(), "exit status {exit}");
    assert!(
        signalled.elapsed() >= Duration::from_millis(900),
        "exited before the timeout: {:?}",
        signalled.elapsed()
    );
    let outcome = tokio::time::timeout(DEADLINE, request)
        .await
        .expect("request ends")
        .expect("task");
    assert!(
        outcome.is_err(),
        "the held request cannot have succeeded: {outcome:?}"
    );
    let lines = keyway.lines().join("\n");
    assert!(lines.contains("shutdown timeout reached"), "{lines}");
    drop(release);
}

/// Runs `keyway check-config` with exactly `env` and optionally a file.
fn check_config(env: &[(&str, &str)], toml: Option<&str>) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cmd = Command::new(KEYWAY);
    cmd.env_clear().envs(env.iter().copied());
    if let Some(t) = toml {
        let file = dir.path().join("keyway.toml");
        std::fs::write(&file, t).expect("write");
        cmd.arg("--config").arg(file);
    }
    let out = cmd.arg("check-config").output().expect("run keyway");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const HIDDEN: &str = "Sup3r-hidden-client-secret";

/// A good file: exit 0, the effective settings printed, the secret redacted.
#[test]
fn check_config_prints_a_good_configuration_redacted() {
    let toml = r#"
        listen = "127.0.0.1:8088"
        public_url = "https://app.example.com"
        shutdown_timeout = "45s"
        [session]
        store = "memory"
        [[providers]]
        id = "corp"
        name = "Corp SSO"
        issuer = "https://sso.example.com"
        client_id = "keyway"
        client_secret_env = "CORP_SECRET"
    "#;
    let (code, out, err) = check_config(&[("CORP_SECRET", HIDDEN)], Some(toml));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for expected in [
        "listen = \"127.0.0.1:8088\"",
        "public_url = \"https://app.example.com\"",
        "shutdown_timeout = \"45s\"",
        "id = \"corp\"",
        "client_secret = \"[redacted]\"",
        "# configuration OK",
    ] {
        assert!(out.contains(expected), "`{expected}` missing from:\n{out}");
    }
    assert!(
        !out.contains(HIDDEN) && !err.contains(HIDDEN),
        "the secret was printed"
    );
}

/// A bad configuration: exit 1, every problem on its own line naming its
/// setting, and the secret nowhere.
#[test]
fn check_config_lists_every_problem_by_setting() {
    let (code, out, err) = check_config(
        &[
            ("KEYWAY_PUBLIC_URL", "http://app.example.com"),
            ("KEYWAY_ISSUER", "https://sso.example.com"),
            ("KEYWAY_CLIENT_ID", "keyway"),
            ("KEYWAY_CLIENT_SECRET", HIDDEN),
            ("KEYWAY_SESSION_STORE", "memory"),
            ("KEYWAY_LOG_FORMAT", "xml"),
            ("KEYWAY_HTTP_TIMEOUT", "soon"),
            ("KEYWAY_SHUTDOWN_TIMEOUT", "never"),
        ],
        None,
    );
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    // Each problem is named as the user wrote it: here, by its variable.
    for setting in [
        "KEYWAY_PUBLIC_URL",
        "KEYWAY_LOG_FORMAT",
        "KEYWAY_HTTP_TIMEOUT",
        "KEYWAY_SHUTDOWN_TIMEOUT",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("keyway: invalid configuration: {setting}: "))),
            "no line names {setting}:\n{err}"
        );
    }
    assert_eq!(lines.len(), 4, "one line per problem:\n{err}");
    for l in &lines {
        let rest = l
            .strip_prefix("keyway: invalid configuration: ")
            .unwrap_or_else(|| panic!("not a problem line: {l}"));
        let (setting, problem) = rest
            .split_once(": ")
            .unwrap_or_else(|| panic!("no setting: {l}"));
        assert!(
            !setting.is_empty() && !setting.contains(' '),
            "setting {setting:?} in {l}"
        );
        assert!(!problem.is_empty(), "{l}");
    }
    assert!(
        !out.contains(HIDDEN) && !err.contains(HIDDEN),
        "the secret was printed"
    );
}

/// With nothing configured at all, every missing setting is listed at once
/// (not only the first one found).
#[test]
fn check_config_with_nothing_set_lists_every_missing_setting() {
    let (code, out, err) = check_config(&[], None);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    for setting in ["KEYWAY_SESSION_KEY", "KEYWAY_ISSUER"] {
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("keyway: invalid configuration: {setting}: "))),
            "no line names {setting}:\n{err}"
        );
    }
}

/// A secret written inline in the file is refused without being quoted.
#[test]
fn check_config_refuses_an_inline_secret_without_quoting_it() {
    let toml = format!(
        "[[providers]]\nid = \"corp\"\nissuer = \"https://sso.example.com\"\nclient_id = \"keyway\"\nclient_secret = \"{HIDDEN}\"\n"
    );
    let (code, out, err) = check_config(
        &[("KEYWAY_PUBLIC_URL", "http://127.0.0.1:8080")],
        Some(&toml),
    );
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("client_secret"), "{err}");
    assert!(
        !out.contains(HIDDEN) && !err.contains(HIDDEN),
        "the secret was printed:\n{err}"
    );
}

/// One process owns a SQLite store (its sessions are cached in that
/// process's memory): a second `keyway` on the same file is refused with an
/// error naming the file, and the file is free again once the first exits.
#[tokio::test]
async fn a_sqlite_store_is_owned_by_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keyway.db");
    // No provider is needed to serve /healthz; discovery just keeps retrying.
    let env = |port: u16| {
        let mut env = env_for(port, "http://127.0.0.1:9/");
        env.insert(
            "KEYWAY_SESSION_STORE".into(),
            format!("sqlite://{}", db.display()),
        );
        env.insert(
            "KEYWAY_SESSION_KEY".into(),
            keyway_tests::bff::TEST_SESSION_KEY.into(),
        );
        env
    };
    let port = free_port();
    let first = Keyway::start(port, &env(port), None);
    first.wait_for("/healthz").await;

    let port = free_port();
    let mut second = Keyway::start(port, &env(port), None);
    let status = second
        .wait_exit(DEADLINE)
        .await
        .expect("the second process exits");
    assert!(!status.success());
    let lines = second.lines().join("\n");
    assert!(
        lines.contains("is in use by another process") && lines.contains("keyway.db"),
        "{lines}"
    );

    drop(first);
    let port = free_port();
    let third = Keyway::start(port, &env(port), None);
    third.wait_for("/healthz").await;
}

//! The static-hosting deployment, for real: Debian's nginx (unprivileged, on
//! a free port, from a temporary prefix) serves the release SPA with
//! `deploy/nginx/keyway.conf` and reverse-proxies `/bff/` to a BFF whose
//! public URL is nginx's origin; Chromium signs in through it end to end.

use keyway_tests::bff::{TestBff, client_for, env_for, reserve};
use keyway_tests::browser::{Browser, dist_dir, run};
use keyway_tests::provider::{ProviderConfig, TestProvider};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

const NGINX: &str = "/usr/sbin/nginx";

fn template() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/keyway.conf");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What envsubst does with the four variables the template names.
fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    assert!(
        !out.contains("${KEYWAY_"),
        "an unrendered variable is left:\n{out}"
    );
    out
}

/// nginx in the foreground, everything under a temporary prefix; killed on drop.
struct Nginx {
    child: Child,
    error_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(server_block: &str) -> Nginx {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path();
        std::fs::write(p.join("keyway.conf"), server_block).expect("write server block");
        let main = format!(
            "daemon off;\nmaster_process off;\npid {p}/nginx.pid;\nerror_log {p}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n  \
             access_log {p}/access.log;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n  \
             fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n  \
             include {p}/keyway.conf;\n}}\n",
            p = p.display()
        );
        let conf = p.join("nginx.conf");
        std::fs::write(&conf, main).expect("write nginx.conf");
        let error_log = p.join("error.log");
        let check = Command::new(NGINX)
            .arg("-t")
            .arg("-p")
            .arg(p)
            .arg("-e")
            .arg(&error_log)
            .arg("-c")
            .arg(&conf)
            .output()
            .expect("run nginx -t (apt-get install nginx)");
        assert!(
            check.status.success(),
            "nginx -t refused the configuration:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(p)
            .arg("-e")
            .arg(&error_log)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        Nginx {
            child,
            error_log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.error_log).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test]
async fn spa_on_nginx_with_bff_behind_it_signs_in() {
    let dist = dist_dir().expect("the release SPA");
    let port = free_port();
    let origin = Url::parse(&format!("http://127.0.0.1:{port}")).expect("url");
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&origin)],
        ..ProviderConfig::default()
    })
    .await
    .expect("provider");
    // The BFF on its own port; the browser only ever sees nginx's origin.
    let reserved = reserve().await;
    let backend = format!(
        "127.0.0.1:{}",
        reserved.listener.local_addr().expect("addr").port()
    );
    let mut env = env_for(&origin, &provider.issuer);
    env.insert("KEYWAY_LISTEN".into(), backend.clone());
    env.insert("KEYWAY_PROVIDER_NAME".into(), "Test provider".into());
    let bff = TestBff::start(reserved, &env).await.expect("BFF");

    // What `keyway csp dist/` prints.
    let csp = keyway_backend::content_security_policy(&dist).expect("dist/index.html");
    assert!(
        csp.contains("'wasm-unsafe-eval'") && csp.contains("'sha256-"),
        "{csp}"
    );
    let listen = format!("127.0.0.1:{port}");
    let dist_text = dist.canonicalize().expect("dist").display().to_string();
    let nginx = Nginx::start(&render(
        &template(),
        &[
            ("KEYWAY_NGINX_LISTEN", &listen),
            ("KEYWAY_DIST", &dist_text),
            ("KEYWAY_BACKEND", &backend),
            ("KEYWAY_CSP", &csp),
        ],
    ));

    let http = TestProvider::browser();
    let home = format!("{}/", origin.as_str().trim_end_matches('/'));
    let deadline = Instant::now() + Duration::from_secs(20);
    let index = loop {
        if let Ok(r) = http.get(&home).send().await
            && r.status() == 200
        {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "nginx never answered:\n{}",
            nginx.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The static files carry the security headers, index.html is revalidated.
    let h = index.headers();
    assert_eq!(h["content-security-policy"], csp.as_str());
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-cache");
    // A client route falls back to index.html, with the same headers.
    let r = http
        .get(format!("{home}callback?code=x&state=y"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-security-policy"], csp.as_str());
    assert!(r.text().await.unwrap().contains("<script type=\"module\">"));
    // Hashed assets are cached for long, wasm with its type.
    let wasm = std::fs::read_dir(&dist)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|n| n.ends_with("_bg.wasm"))
        .expect("a wasm file in dist/");
    let r = http.get(format!("{home}{wasm}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/wasm");
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    // /bff/ reaches the backend, uncached, with the request id passed through.
    let r = http
        .get(format!("{home}bff/user"))
        .header("x-request-id", "through-nginx-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-request-id"], "through-nginx-1");
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "unauthenticated"
    );
    // The backend's operational endpoints are not exposed through nginx.
    let r = http.get(format!("{home}metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // The whole sign-in in Chromium, through nginx.
    let result = run("deploy_nginx", |b: Arc<Browser>| {
        let home = home.clone();
        async move {
            let c = &b.client;
            c.goto(&home).await.map_err(|e| e.to_string())?;
            b.wait_css(".login-button")
                .await?
                .click()
                .await
                .map_err(|e| e.to_string())?;
            b.provider_sign_in("alice", "wonderland", true).await?;
            b.wait_text("body", "Alice Liddell").await?;
            let url = c.current_url().await.map_err(|e| e.to_string())?;
            if url.origin() != Url::parse(&home).map_err(|e| e.to_string())?.origin() {
                return Err(format!("signed in, but not on nginx's origin: {url}"));
            }
            c.goto(&format!("{home}profile"))
                .await
                .map_err(|e| e.to_string())?;
            b.wait_text("#user-name", "Alice Liddell").await?;
            Ok(())
        }
    })
    .await;
    if let Err(e) = &result {
        panic!("{e}\nnginx error log:\n{}", nginx.log());
    }
    drop(bff);
}

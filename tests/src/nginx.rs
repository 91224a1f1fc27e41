//! Debian's nginx for the tests: unprivileged, in the foreground, everything
//! under a temporary prefix, on the files of `deploy/nginx/` rendered as
//! `envsubst` would; killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const NGINX: &str = "/usr/sbin/nginx";

/// A file of `deploy/nginx/`.
pub fn deploy_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/nginx")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What `envsubst` does with the variables a template names; panics if a
/// `${KEYWAY_…}` is left.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
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

/// A running nginx.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    error_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx with `http_blocks` (server and upstream blocks) in its
    /// `http` context, after `nginx -t` accepted them.
    pub fn start(http_blocks: &[String]) -> Result<Nginx, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let p = dir.path();
        let mut includes = String::new();
        for (i, block) in http_blocks.iter().enumerate() {
            let file = p.join(format!("block{i}.conf"));
            std::fs::write(&file, block).map_err(|e| e.to_string())?;
            includes.push_str(&format!("  include {};\n", file.display()));
        }
        let main = format!(
            "daemon off;\nmaster_process off;\npid {p}/nginx.pid;\nerror_log {p}/error.log info;\n\
             events {{ worker_connections 2048; }}\n\
             http {{\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n  \
             access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n  \
             fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
             {includes}}}\n",
            p = p.display()
        );
        let conf = p.join("nginx.conf");
        std::fs::write(&conf, main).map_err(|e| e.to_string())?;
        let error_log = p.join("error.log");
        let args = |cmd: &mut Command| {
            cmd.arg("-p")
                .arg(p)
                .arg("-e")
                .arg(&error_log)
                .arg("-c")
                .arg(&conf);
        };
        let mut check = Command::new(NGINX);
        args(&mut check);
        let checked = check
            .arg("-t")
            .output()
            .map_err(|e| format!("cannot run nginx (apt-get install nginx): {e}"))?;
        if !checked.status.success() {
            return Err(format!(
                "nginx -t refused the configuration:\n{}",
                String::from_utf8_lossy(&checked.stderr)
            ));
        }
        let mut run = Command::new(NGINX);
        args(&mut run);
        let child = run
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start nginx: {e}"))?;
        Ok(Nginx {
            child,
            error_log,
            _dir: dir,
        })
    }

    /// nginx's error log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.error_log).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

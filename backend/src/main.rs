//! `keyway`: the Keyway backend-for-frontend.

use clap::{Parser, Subcommand};
use keyway_backend::Config;
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: a proxied request allocates and frees
/// on whichever worker thread runs it, and glibc's arenas then contend on
/// their locks (40 % of the process's `futex` calls under load in
/// BENCHMARKS.md, round 4). Only the `keyway` binary chooses this; an
/// application embedding `keyway_backend` keeps its own allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keyway: "Log in with OAuth 2.0 / OpenID Connect" for single-page apps.
#[derive(Debug, Parser)]
#[command(name = "keyway", version, about)]
struct Cli {
    /// A TOML configuration file (also `KEYWAY_CONFIG`).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the backend until SIGTERM or Ctrl-C.
    Serve,
    /// Validates the configuration, prints it with secrets redacted, and exits 0 (good) or 1.
    CheckConfig,
    /// Prints the Content-Security-Policy that fits the built SPA in DIR
    /// (Trunk's dist/), for a web server that serves it instead of Keyway.
    Csp {
        /// The built SPA (the folder holding index.html).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Csp { dir } = &cli.command {
        return match keyway_backend::content_security_policy(dir) {
            Ok(csp) => {
                println!("{csp}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "keyway: cannot read {}: {e}",
                    dir.join("index.html").display()
                );
                ExitCode::from(1)
            }
        };
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("keyway: invalid configuration: {e}");
            }
            return ExitCode::from(1);
        }
    };
    match cli.command {
        Command::CheckConfig => {
            print!("{}", config.describe());
            println!("\n# configuration OK");
            ExitCode::SUCCESS
        }
        Command::Csp { .. } => ExitCode::SUCCESS,
        Command::Serve => {
            // Kept to the end: dropping it writes the queued lines.
            let logs = keyway_backend::init_logging(config.log_format);
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            let listen = config.listen;
            let public = config.public_url.clone();
            let result = runtime.block_on(async move {
                tracing::info!(%listen, public_url = %public, "keyway starting");
                keyway_backend::serve(config, shutdown_signal()).await
            });
            // Requests still running after the shutdown timeout are dropped here.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            match result {
                Ok(()) => {
                    tracing::info!("keyway stopped");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    // The queued lines first, so the reason is the last line.
                    drop(logs);
                    eprintln!("keyway: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

//! The SPA's size, as users feel it: `gzip -9` of the wasm and JS a browser
//! downloads.
//!
//! Two figures: what Keyway's auth layer adds to an app (the size
//! benchmark's SPA, `bench/spa/`, built by Trunk without and with the
//! feature `keyway`, same toolchain and release settings), and the demo's
//! total (`dist/`). `scripts/bench` builds all three first.

use clap::Args;
use std::path::{Path, PathBuf};

/// The most the auth layer may add to an app (wasm + JS, gzip -9), in bytes.
pub const BUDGET: u64 = 20_000;

/// Where the builds to measure are.
#[derive(Debug, Clone, Args)]
pub struct SpaArgs {
    /// The demo's release build (default: `dist` of the repository).
    #[arg(long)]
    pub dist: Option<PathBuf>,
    /// The size benchmark's SPA built without Keyway (default:
    /// `target/bench-spa/baseline`: `trunk build --release --offline
    /// --dist target/bench-spa/baseline bench/spa/index.html`).
    #[arg(long)]
    pub spa_baseline: Option<PathBuf>,
    /// The same SPA built with Keyway (default: `target/bench-spa/keyway`,
    /// from `bench/spa/keyway.html`).
    #[arg(long)]
    pub spa_keyway: Option<PathBuf>,
}

/// The raw and gzip -9 sizes of one file.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    raw: u64,
    gzip: u64,
}

impl std::ops::Add for Size {
    type Output = Size;
    fn add(self, o: Size) -> Size {
        Size {
            raw: self.raw + o.raw,
            gzip: self.gzip + o.gzip,
        }
    }
}

/// The wasm and the JS of a Trunk build.
#[derive(Debug, Clone, Default)]
struct Build {
    wasm: Size,
    js: Size,
    files: Vec<(String, Size)>,
}

impl Build {
    fn total(&self) -> Size {
        self.wasm + self.js
    }
}

fn gzip9(path: &Path) -> Result<u64, String> {
    let out = std::process::Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    if !out.status.success() {
        return Err(format!("gzip failed on {}", path.display()));
    }
    Ok(out.stdout.len() as u64)
}

/// Measures the `.wasm` and `.js` files of a Trunk build.
fn measure(dir: &Path) -> Result<Build, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "{} cannot be read ({e}): build it first (scripts/bench does)",
            dir.display()
        )
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm" || x == "js"))
        .collect();
    paths.sort();
    let mut build = Build::default();
    for path in paths {
        let size = Size {
            raw: std::fs::metadata(&path).map_err(|e| e.to_string())?.len(),
            gzip: gzip9(&path)?,
        };
        if path.extension().is_some_and(|x| x == "wasm") {
            build.wasm = build.wasm + size;
        } else {
            build.js = build.js + size;
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        build.files.push((name.into_owned(), size));
    }
    if build.wasm.raw == 0 || build.js.raw == 0 {
        return Err(format!("{} has no .wasm or no .js", dir.display()));
    }
    Ok(build)
}

fn kb(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1000.0)
}

/// Prints both figures as Markdown tables.
pub fn report(args: &SpaArgs, repo: &Path) -> Result<(), String> {
    let baseline_dir = args
        .spa_baseline
        .clone()
        .unwrap_or_else(|| repo.join("target/bench-spa/baseline"));
    let keyway_dir = args
        .spa_keyway
        .clone()
        .unwrap_or_else(|| repo.join("target/bench-spa/keyway"));
    let demo_dir = args.dist.clone().unwrap_or_else(|| repo.join("dist"));
    let baseline = measure(&baseline_dir)?;
    let keyway = measure(&keyway_dir)?;
    let demo = measure(&demo_dir)?;

    println!("\n## What Keyway adds to an app (bench/spa, gzip -9)\n");
    println!(
        "A small leptos_router + gloo-net + serde app (two routes, JSON read and posted), \
         and the same app with keyway-leptos wired in (provider buttons, guard, callback \
         route, user menu, use_api); same toolchain, wasm-release profile, wasm-opt -Oz.\n"
    );
    println!("| build | wasm | JS | wasm + JS |");
    println!("| --- | --- | --- | --- |");
    for (name, b) in [("baseline", &baseline), ("with keyway-leptos", &keyway)] {
        println!(
            "| {name} | {} B ({} raw) | {} B ({} raw) | **{} B ({})** |",
            b.wasm.gzip,
            b.wasm.raw,
            b.js.gzip,
            b.js.raw,
            b.total().gzip,
            kb(b.total().gzip)
        );
    }
    let added = keyway.total().gzip.saturating_sub(baseline.total().gzip);
    println!(
        "| **Keyway adds** | {} B | {} B | **{} B ({}), ×{:.2} the baseline** |",
        keyway.wasm.gzip as i64 - baseline.wasm.gzip as i64,
        keyway.js.gzip as i64 - baseline.js.gzip as i64,
        added,
        kb(added),
        keyway.total().gzip as f64 / baseline.total().gzip as f64
    );
    println!(
        "\nBudget: at most {} added: {}.",
        kb(BUDGET),
        if added <= BUDGET {
            "met".to_owned()
        } else {
            format!("not met (over by {})", kb(added - BUDGET))
        }
    );

    println!("\n## The demo's total ({}, gzip -9)\n", demo_dir.display());
    println!("| file | bytes | gzip -9 |");
    println!("| --- | --- | --- |");
    for (name, size) in &demo.files {
        println!("| {name} | {} | {} |", size.raw, size.gzip);
    }
    println!(
        "| **wasm + JS** | {} | **{} ({})** |",
        demo.total().raw,
        demo.total().gzip,
        kb(demo.total().gzip)
    );
    Ok(())
}

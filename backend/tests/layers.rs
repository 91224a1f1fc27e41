//! The layering of `backend/src` (docs/architecture.md, "Layers"), checked
//! on the source: each module uses only the layers below it, so a change in
//! one layer never reaches down. Every `crate::…` path of every file counts,
//! `use` lines, grouped `use crate::{a, b::c}` and paths in code and doc links
//! alike.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layer of a top-level module of `backend/src`, from the bottom (0) up;
/// `None` for the crate's own glue (the shared state, the library surface,
/// the binary), which may use anything.
fn layer(module: &str) -> Option<u8> {
    Some(match module {
        // The bottom: configuration and what every layer shares.
        "config" | "secret" | "jose" | "metrics" => 0,
        // The protocol and the sessions.
        "provider" | "session" => 1,
        // The features, and the one error type they share.
        "login" | "tokens" | "proxy" | "backchannel" | "own_sessions" | "error" => 2,
        // The HTTP layer.
        "http" => 3,
        "app" | "lib" | "main" | "internals" | "telemetry" => return None,
        other => panic!("backend/src/{other}: a module this test does not place in a layer"),
    })
}

/// Whether `from` may use `to`.
fn allowed(from: &str, to: &str) -> bool {
    if from == to || to == "app" {
        return true;
    }
    let (Some(f), Some(t)) = (layer(from), layer(to)) else {
        return layer(from).is_none() || to == "internals" && from == "session";
    };
    match (from, to) {
        // A session record holds the protocol's `Identity`; nothing in
        // `provider` knows about sessions.
        ("session", "provider") => true,
        _ if f == t => f != 1,
        _ => t < f,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source text names through `crate::`.
fn modules_used(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The top-level names of a group: split at depth 0.
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        used.insert(ident(group[start..i].trim()));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        used.insert(ident(group[start..i].trim()));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            used.insert(ident(rest));
        }
    }
    used.retain(|m| !m.is_empty() && m.chars().next().is_some_and(char::is_lowercase));
    used
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 40, "found the sources: {}", files.len());
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs")
            .to_owned();
        let text = std::fs::read_to_string(file).unwrap();
        for used in modules_used(&text) {
            if !allowed(&top, &used) {
                wrong.push(format!("{} uses crate::{used}", relative.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checker_sees_plain_grouped_and_nested_paths() {
    let used = modules_used(
        "use crate::config::X;\nuse crate::{http::a, session::{b, c}, tokens};\n\
         fn f() { crate::proxy::go(); } // [`crate::App`]",
    );
    let names: Vec<&str> = used.iter().map(String::as_str).collect();
    assert_eq!(names, ["config", "http", "proxy", "session", "tokens"]);
    assert!(!allowed("config", "session"));
    assert!(!allowed("provider", "session"));
    assert!(allowed("session", "provider"));
    assert!(!allowed("login", "http"));
    assert!(allowed("http", "login"));
    assert!(!allowed("metrics", "session"));
}

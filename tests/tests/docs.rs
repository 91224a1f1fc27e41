//! Code shown in the docs that is compiled elsewhere stays the same as that
//! code.

use std::path::Path;

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_frontend_guides_example_is_the_compiled_example() {
    let example = read("frontend/examples/router_app.rs");
    let start = example.find("// docs:start\n").expect("docs:start marker") + 14;
    let end = example.find("// docs:end").expect("docs:end marker");
    let code = &example[start..end];
    let guide = read("docs/frontend.md");
    assert!(
        guide.contains(&format!("```rust\n{code}```")),
        "docs/frontend.md does not show frontend/examples/router_app.rs as it is"
    );
    // The issue's bound: adding Keyway to an app in under 40 lines.
    assert!(code.lines().count() < 40, "{} lines", code.lines().count());
}

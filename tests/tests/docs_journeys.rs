//! The login-journey example of docs/frontend.md is the compiled
//! `frontend/examples/journeys.rs`, as it is.

use std::path::Path;

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_frontend_guides_journey_example_is_the_compiled_example() {
    let example = read("frontend/examples/journeys.rs");
    let start = example.find("// docs:start\n").expect("docs:start marker") + 14;
    let end = example.find("// docs:end").expect("docs:end marker");
    let code = &example[start..end];
    let guide = read("docs/frontend.md");
    assert!(
        guide.contains(&format!("```rust\n{code}```")),
        "docs/frontend.md does not show frontend/examples/journeys.rs as it is"
    );
}

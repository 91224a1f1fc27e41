//! `return_to` validation. Invariant: an accepted value, and every
//! percent-decoding of it, starts with exactly one `/`, has no `\`, no
//! control characters and no whitespace, and is returned unchanged.
#![no_main]

use keyway_backend::internals::return_to::{MAX_LEN, validate};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;

fn check(layer: &str, raw: &str) {
    assert!(
        layer.starts_with('/'),
        "{raw:?}: layer {layer:?} not a path"
    );
    assert!(
        !layer.starts_with("//"),
        "{raw:?}: layer {layer:?} starts with //"
    );
    assert!(!layer.contains('\\'), "{raw:?}: backslash in {layer:?}");
    assert!(
        !layer.chars().any(char::is_control),
        "{raw:?}: control character"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(accepted) = validate(raw) else { return };
    assert_eq!(accepted, raw);
    assert!(raw.len() <= MAX_LEN);
    assert!(!raw.chars().any(char::is_whitespace));
    // Every decoding layer, down to a fixed point, is a safe path.
    let mut current = raw.to_owned();
    loop {
        check(&current, raw);
        let decoded = percent_decode_str(&current)
            .decode_utf8()
            .expect("an accepted value decodes as UTF-8")
            .into_owned();
        if decoded == current {
            break;
        }
        current = decoded;
    }
    // A browser resolving it against the app's origin stays on that origin.
    let base = url::Url::parse("https://app.example/").unwrap();
    if let Ok(joined) = base.join(raw) {
        assert_eq!(joined.origin(), base.origin(), "{raw:?} leaves the origin");
    }
});

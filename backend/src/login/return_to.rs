//! Validation of `return_to`: only a relative path on the app's own origin.
//!
//! Refused: anything not starting with exactly one `/` (`//evil`,
//! `https://evil`, `javascript:`), backslashes (`/\evil`, which browsers read
//! as `//evil`), control characters and whitespace, and the percent-encoded
//! forms of all these (checked after decoding, repeatedly, so double encoding
//! does not help).

use percent_encoding::percent_decode_str;

/// Longest `return_to` accepted.
pub const MAX_LEN: usize = 2048;

/// Checks `return_to`; `Ok` carries the path to store, `Err` the reason.
pub fn validate(raw: &str) -> Result<String, &'static str> {
    if raw.is_empty() {
        return Err("empty");
    }
    if raw.len() > MAX_LEN {
        return Err("too long");
    }
    if raw.chars().any(char::is_whitespace) {
        return Err("contains spaces");
    }
    let mut current = raw.to_owned();
    // Decode until stable (bounded), checking every layer.
    for _ in 0..4 {
        check_layer(&current)?;
        let decoded = percent_decode_str(&current)
            .decode_utf8()
            .map_err(|_| "not UTF-8 once decoded")?;
        if decoded == current {
            return Ok(raw.to_owned());
        }
        current = decoded.into_owned();
    }
    Err("encoded too many times")
}

fn check_layer(s: &str) -> Result<(), &'static str> {
    if !s.starts_with('/') {
        return Err("not a path starting with /");
    }
    if s.starts_with("//") {
        return Err("starts with //");
    }
    if s.contains('\\') {
        return Err("contains a backslash");
    }
    if s.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_plain_paths() {
        for ok in ["/", "/profile", "/a/b?x=1&y=%20z#frag", "/%E2%9C%93"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_attacks() {
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "evil",
            "/%2F%2Fevil",
            "%2F%2Fevil",
            "/%5Cevil",
            "/%09/evil",
            "/\t/evil",
            "/\r\nSet-Cookie:x",
            "/%0d%0aLocation:x",
            "/%252F%252Fevil",
            "\\\\evil",
            "/ evil",
            "data:text/html,x",
        ] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate(&format!("/{}", "a".repeat(3000))).is_err());
    }
}

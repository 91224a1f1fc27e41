//! Cookie parsing (`cookie::read`) and what Keyway does with the
//! value next (parse it as a session id). Invariants: any `Cookie` header
//! bytes are read without panic, deterministically; a valid cookie planted
//! first is found intact whatever garbage follows (first wins); a value that
//! parses as a session id prints back to an id that parses to the same id.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use keyway_backend::internals::SessionId;
use keyway_backend::internals::cookie::read;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 4] = [
    "keyway",
    "__Host-keyway",
    "keyway-login-AAAAAAAAAAAA",
    "__Host-keyway-login-AAAAAAAAAAAA",
];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    // Several Cookie headers: split the input at NUL bytes.
    for part in data.split(|b| *b == 0) {
        if let Ok(v) = HeaderValue::from_bytes(part) {
            headers.append(header::COOKIE, v);
        }
    }
    for name in NAMES {
        let value = read(&headers, name);
        assert_eq!(value, read(&headers, name), "deterministic");
        if let Some(v) = value
            && let Ok(id) = v.parse::<SessionId>()
        {
            assert_eq!(id.to_string().parse::<SessionId>().ok(), Some(id));
        }
    }
    // A well-formed cookie first, then the fuzzer's bytes: found intact.
    let planted: String = data.iter().take(16).map(|b| format!("{b:02x}")).collect();
    if planted.is_empty() {
        return;
    }
    let mut line = format!("__Host-keyway={planted}; ").into_bytes();
    line.extend_from_slice(data);
    if let Ok(v) = HeaderValue::from_bytes(&line) {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, v);
        assert_eq!(read(&h, "__Host-keyway").as_deref(), Some(planted.as_str()));
    }
});

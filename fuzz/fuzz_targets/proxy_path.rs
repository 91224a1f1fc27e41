//! The API proxy's path check (`proxy_path::upstream_path`) and URL join.
//! Invariants: an accepted path has no segment that decodes to `.` or `..`,
//! no encoded `/`, `\` or NUL; joined to the configured base it stays on the
//! base's origin and under its path.
#![no_main]

use keyway_backend::ApiBase;
use keyway_backend::internals::proxy_path::{upstream_path, upstream_uri};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // Only what can reach the handler: a request target hyper accepted.
    let Ok(uri) = format!("/bff/api/orders{s}").parse::<http::Uri>() else {
        return;
    };
    if uri.path() != "/bff/api/orders" && !uri.path().starts_with("/bff/api/orders/") {
        return;
    }
    let Ok(rest) = upstream_path(uri.path(), "orders") else {
        return;
    };
    for segment in rest.split('/') {
        let d = percent_decode_str(segment).decode_utf8_lossy();
        assert!(d != ".." && d != ".", "{uri}: dot segment {segment:?}");
        assert!(
            !d.contains('/') && !d.contains('\\') && !d.contains('\0'),
            "{uri}"
        );
    }
    let base = url::Url::parse("https://orders.internal.example/v1").unwrap();
    let Ok(joined) = upstream_uri(&ApiBase::new(&base).unwrap(), rest, uri.query()) else {
        return;
    };
    if let Ok(u) = url::Url::parse(&joined.to_string()) {
        assert_eq!(u.origin(), base.origin(), "{uri} → {joined}");
        assert!(
            u.path() == "/v1" || u.path().starts_with("/v1/"),
            "{uri} → {joined} leaves the base path"
        );
    }
});

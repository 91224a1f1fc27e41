//! The path below an API's base URL, as the browser sent it (still
//! percent-encoded), checked so that no request reaches anything but that
//! API's own paths.
//!
//! Refused: segments that are `.` or `..` once decoded — at every layer of
//! decoding, so `%2e%2e` and the double-encoded `%252e%252e` are refused too
//! — and segments that some servers read as `..` (`..;jsessionid`, Tomcat's
//! path parameters), encoded slashes and backslashes, NUL, and percent
//! escapes that decode to invalid UTF-8 (the overlong `%c0%ae` is a dot to
//! some decoders).

use crate::config::ApiBase;
use crate::error::Error;
use percent_encoding::percent_decode_str;

/// Layers of percent-encoding looked through.
const MAX_LAYERS: usize = 4;

fn refused() -> Error {
    Error::InvalidRequest(
        "the API path may not contain `.`, `..` (in any encoding) or encoded slashes".into(),
    )
}

/// The raw rest of the path after `/bff/api/{name}/`, checked.
pub fn upstream_path<'a>(full_path: &'a str, name: &str) -> Result<&'a str, Error> {
    let prefix_len = "/bff/api/".len() + name.len();
    let rest = full_path.get(prefix_len..).unwrap_or("");
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    for segment in rest.split('/') {
        check_segment(segment)?;
    }
    Ok(rest)
}

fn check_segment(raw: &str) -> Result<(), Error> {
    let mut current = raw.to_owned();
    for _ in 0..MAX_LAYERS {
        // What a server that strips `;` path parameters would see.
        let before_params = current.split(';').next().unwrap_or("");
        if matches!(before_params, "." | "..") {
            return Err(refused());
        }
        let decoded = percent_decode_str(&current)
            .decode_utf8()
            .map_err(|_| refused())?;
        if decoded.contains(['/', '\\', '\0']) {
            return Err(refused());
        }
        if decoded == current {
            return Ok(());
        }
        current = decoded.into_owned();
    }
    Err(refused())
}

/// The upstream URI: the API's base, the checked path below it and the
/// browser's query, joined without parsing a URL (the parts of the base
/// were checked once, at start).
pub fn upstream_uri(base: &ApiBase, rest: &str, query: Option<&str>) -> Result<http::Uri, Error> {
    let len = base.path().len() + rest.len() + query.map_or(0, str::len) + 2;
    let mut target = String::with_capacity(len);
    target.push_str(base.path());
    if !rest.is_empty() {
        target.push('/');
        target.push_str(rest);
    }
    if target.is_empty() {
        target.push('/');
    }
    if let Some(q) = query {
        target.push('?');
        target.push_str(q);
    }
    let path_and_query = http::uri::PathAndQuery::from_maybe_shared(bytes::Bytes::from(target))
        .map_err(|_| Error::InvalidRequest("bad path".into()))?;
    http::Uri::builder()
        .scheme(base.scheme().clone())
        .authority(base.authority().clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| Error::InvalidRequest("bad path".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_in_any_encoding_is_refused() {
        for bad in [
            "/bff/api/orders/../x",
            "/bff/api/orders/a/%2e%2e/x",
            "/bff/api/orders/%2E%2E",
            "/bff/api/orders/a%2Fb",
            "/bff/api/orders/a%5cb",
            "/bff/api/orders/./x",
            "/bff/api/orders/%00",
            "/bff/api/orders/..;/admin",
            "/bff/api/orders/..;jsessionid=x/admin",
            "/bff/api/orders/.;/x",
            "/bff/api/orders/%252e%252e/admin",
            "/bff/api/orders/%25252e%25252e/admin",
            "/bff/api/orders/%2e%2e%3b/admin",
            "/bff/api/orders/%c0%ae%c0%ae/admin",
            "/bff/api/orders/%252F",
        ] {
            assert!(upstream_path(bad, "orders").is_err(), "{bad}");
        }
    }

    #[test]
    fn ordinary_paths_pass_unchanged() {
        assert_eq!(
            upstream_path("/bff/api/orders/a/b%20c", "orders").unwrap(),
            "a/b%20c"
        );
        assert_eq!(upstream_path("/bff/api/orders", "orders").unwrap(), "");
        assert_eq!(
            upstream_path("/bff/api/orders/v1.2/file..txt", "orders").unwrap(),
            "v1.2/file..txt"
        );
        assert_eq!(
            upstream_path("/bff/api/orders/caf%C3%A9", "orders").unwrap(),
            "caf%C3%A9"
        );
    }

    fn base(url: &str) -> ApiBase {
        ApiBase::new(&url::Url::parse(url).unwrap()).unwrap()
    }

    #[test]
    fn joins_below_the_base() {
        let v1 = base("https://orders.internal/v1/");
        let join = |b: &ApiBase, rest, q| upstream_uri(b, rest, q).unwrap().to_string();
        assert_eq!(
            join(&v1, "items/7", Some("a=1")),
            "https://orders.internal/v1/items/7?a=1"
        );
        assert_eq!(join(&v1, "", None), "https://orders.internal/v1");
        assert_eq!(
            join(&v1, "caf%C3%A9", Some("")),
            "https://orders.internal/v1/caf%C3%A9?"
        );
        let root = base("http://127.0.0.1:8081");
        assert_eq!(join(&root, "", None), "http://127.0.0.1:8081/");
        assert_eq!(
            join(&root, "a/b", Some("x=%20")),
            "http://127.0.0.1:8081/a/b?x=%20"
        );
        let v6 = base("https://[::1]:9443/api");
        assert_eq!(join(&v6, "x", None), "https://[::1]:9443/api/x");
    }

    /// What `url` made of the same join (the proxy parsed the joined string
    /// with it before): the same URI for what a browser sends.
    #[test]
    fn the_same_uri_as_a_parsed_url() {
        let v1 = base("https://orders.internal/v1/");
        for (rest, q) in [
            ("items/7", Some("a=1&b=%2F")),
            ("a/b%20c/", None),
            ("v1.2/file..txt", Some("q=caf%C3%A9")),
            ("", Some("x")),
            ("", None),
            ("~user/!$&'()*+,;=:@", None),
        ] {
            let mut joined = "https://orders.internal/v1".to_owned();
            if !rest.is_empty() {
                joined = format!("{joined}/{rest}");
            }
            if let Some(q) = q {
                joined = format!("{joined}?{q}");
            }
            let parsed = url::Url::parse(&joined).unwrap();
            let ours = upstream_uri(&v1, rest, q).unwrap();
            assert_eq!(ours.to_string(), parsed.as_str(), "{rest:?} {q:?}");
        }
    }
}

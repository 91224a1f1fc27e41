//! Which headers cross the proxy, each way: allow-lists, not deny-lists, so
//! a header nobody thought of stays on its side.
//!
//! To the upstream: the content and caching headers of the request, the
//! request id and trace context, and the extra headers an API allows
//! (`forward_headers`). Never the browser's cookies, `Authorization`,
//! `X-CSRF`, `Origin`/`Referer`, hop-by-hop headers or its own forwarding
//! headers (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`): Keyway sets those
//! itself, from what it knows.
//!
//! To the browser: content, caching and range headers, `WWW-Authenticate`,
//! `Retry-After`, the request id. Never the upstream's cookies, HSTS,
//! CORS, `Clear-Site-Data` or anything else; a redirect stays only if it
//! points below the API's own base URL (rewritten to the API's path at the
//! BFF), else the response is refused.

use crate::config::NEVER_FORWARDED;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use url::Url;

const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Request headers forwarded to every upstream.
const REQUEST_ALLOWED: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "content-encoding",
    "content-language",
    "content-type",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "pragma",
    "range",
    "user-agent",
    "x-request-id",
    "traceparent",
    "tracestate",
];

/// Response headers passed back to the browser.
const RESPONSE_ALLOWED: &[&str] = &[
    "accept-ranges",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-range",
    "content-type",
    "etag",
    "expires",
    "last-modified",
    "location",
    "retry-after",
    "vary",
    "www-authenticate",
    "x-request-id",
];

/// What Keyway says of its own origin to every upstream, built once from
/// the public URL (nothing of it is formatted per request): the
/// `Forwarded` header's `proto` and `host`, `X-Forwarded-Proto`,
/// `X-Forwarded-Host`.
#[derive(Debug, Clone)]
pub struct ForwardedOrigin {
    /// `proto=…;host="…"`: the `Forwarded` header without the peer.
    forwarded: Option<HeaderValue>,
    proto: Option<HeaderValue>,
    host: Option<HeaderValue>,
}

impl ForwardedOrigin {
    /// The headers for a BFF at `public_url`.
    pub fn new(public_url: &Url) -> Self {
        let proto = public_url.scheme();
        let host = public_url.host_str().unwrap_or_default();
        let host = match public_url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let forwarded = format!("proto={proto};host=\"{host}\"");
        Self {
            forwarded: HeaderValue::try_from(forwarded).ok(),
            proto: HeaderValue::from_str(proto).ok(),
            host: HeaderValue::try_from(host).ok(),
        }
    }
}

/// What Keyway says about the browser's request to the upstream.
#[derive(Debug, Clone)]
pub struct Forwarded<'a> {
    /// Keyway's own origin (its public URL), prebuilt.
    pub origin: &'a ForwardedOrigin,
    /// The address of the peer that connected to Keyway, if known.
    pub peer: Option<std::net::IpAddr>,
}

/// The headers sent upstream: the allowed ones of the browser's request,
/// and Keyway's own forwarding headers.
pub fn to_upstream(
    incoming: &HeaderMap,
    extra_allowed: &[String],
    fwd: &Forwarded<'_>,
) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(incoming.len() + 4);
    for (name, value) in incoming {
        let n = name.as_str();
        let allowed = REQUEST_ALLOWED.contains(&n) || extra_allowed.iter().any(|e| e == n);
        if allowed && !NEVER_FORWARDED.contains(&n) {
            out.append(name.clone(), value.clone());
        }
    }
    let origin = fwd.origin;
    if let Some(forwarded) = &origin.forwarded {
        let value = match fwd.peer {
            // The one header formatted per request: `for=` and the rest.
            Some(peer) => {
                let rest = forwarded.to_str().unwrap_or_default();
                let text = match peer {
                    std::net::IpAddr::V6(v6) => format!("for=\"[{v6}]\";{rest}"),
                    v4 => format!("for={v4};{rest}"),
                };
                HeaderValue::try_from(text).ok()
            }
            None => Some(forwarded.clone()),
        };
        if let Some(value) = value {
            out.insert(header::FORWARDED, value);
        }
    }
    if let Some(proto) = &origin.proto {
        out.insert(X_FORWARDED_PROTO, proto.clone());
    }
    if let Some(host) = &origin.host {
        out.insert(X_FORWARDED_HOST, host.clone());
    }
    if let Some(peer) = fwd.peer
        && let Ok(value) = HeaderValue::try_from(peer.to_string())
    {
        out.insert(X_FORWARDED_FOR, value);
    }
    out
}

/// Why an upstream response cannot be passed back.
#[derive(Debug, PartialEq, Eq)]
pub struct ForeignRedirect;

/// The headers passed back to the browser. A `Location` below the API's
/// base URL (`called` is the URI that was called) is rewritten to the
/// same path at the BFF (`/bff/api/{name}/...`); any other is refused.
pub fn to_browser(
    upstream: &HeaderMap,
    called: &http::Uri,
    base: &Url,
    api_name: &str,
) -> Result<HeaderMap, ForeignRedirect> {
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        let n = name.as_str();
        if !RESPONSE_ALLOWED.contains(&n) {
            continue;
        }
        if name == header::LOCATION {
            let location =
                rewrite_location(value, called, base, api_name).ok_or(ForeignRedirect)?;
            out.append(name.clone(), location);
        } else {
            out.append(name.clone(), value.clone());
        }
    }
    Ok(out)
}

fn rewrite_location(
    value: &HeaderValue,
    called: &http::Uri,
    base: &Url,
    api_name: &str,
) -> Option<HeaderValue> {
    // Parsed only here: most answers carry no `Location`.
    let called = Url::parse(&called.to_string()).ok()?;
    let target = called.join(value.to_str().ok()?).ok()?;
    let base_path = base.path().trim_end_matches('/');
    let same_origin = target.origin() == base.origin();
    let rest = target.path().strip_prefix(base_path)?;
    if !same_origin || !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let mut local = format!("/bff/api/{api_name}{rest}");
    if let Some(q) = target.query() {
        local.push('?');
        local.push_str(q);
    }
    HeaderValue::from_str(&local).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_allowed_request_headers_go_up_and_forwarding_is_keyways() {
        let public = Url::parse("https://app.example.com").unwrap();
        let incoming = headers(&[
            ("accept", "application/json"),
            ("cookie", "__Host-keyway=s"),
            ("authorization", "Bearer browser"),
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
            ("x-custom", "kept"),
            ("x-other", "dropped"),
            ("x-csrf", "1"),
        ]);
        let origin = ForwardedOrigin::new(&public);
        let fwd = Forwarded {
            origin: &origin,
            peer: Some("10.0.0.7".parse().unwrap()),
        };
        let out = to_upstream(&incoming, &["x-custom".into(), "cookie".into()], &fwd);
        assert_eq!(out["accept"], "application/json");
        assert_eq!(out["x-custom"], "kept");
        for gone in ["cookie", "authorization", "x-other", "x-csrf", "x-real-ip"] {
            assert!(out.get(gone).is_none(), "{gone}");
        }
        assert_eq!(out["x-forwarded-for"], "10.0.0.7");
        assert_eq!(out["x-forwarded-proto"], "https");
        assert_eq!(out["x-forwarded-host"], "app.example.com");
        assert_eq!(
            out["forwarded"],
            "for=10.0.0.7;proto=https;host=\"app.example.com\""
        );
        assert_eq!(out.get_all("x-forwarded-for").iter().count(), 1);
    }

    #[test]
    fn forwarding_headers_name_a_v6_peer_and_the_port() {
        let origin = ForwardedOrigin::new(&Url::parse("http://127.0.0.1:8080").unwrap());
        let v6 = Forwarded {
            origin: &origin,
            peer: Some("::1".parse().unwrap()),
        };
        let out = to_upstream(&HeaderMap::new(), &[], &v6);
        assert_eq!(
            out["forwarded"],
            "for=\"[::1]\";proto=http;host=\"127.0.0.1:8080\""
        );
        assert_eq!(out["x-forwarded-for"], "::1");
        assert_eq!(out["x-forwarded-proto"], "http");
        assert_eq!(out["x-forwarded-host"], "127.0.0.1:8080");
        let unknown = Forwarded {
            origin: &origin,
            peer: None,
        };
        let out = to_upstream(&HeaderMap::new(), &[], &unknown);
        assert_eq!(out["forwarded"], "proto=http;host=\"127.0.0.1:8080\"");
        assert!(out.get("x-forwarded-for").is_none());
    }

    #[test]
    fn only_allowed_response_headers_come_back() {
        let base = Url::parse("https://orders.internal/v1/").unwrap();
        let called: http::Uri = "https://orders.internal/v1/items".parse().unwrap();
        let upstream = headers(&[
            ("content-type", "application/json"),
            ("set-cookie", "a=b"),
            ("strict-transport-security", "max-age=1"),
            ("access-control-allow-origin", "*"),
            ("clear-site-data", "\"*\""),
            ("x-powered-by", "php"),
            (
                "www-authenticate",
                "Bearer error=\"insufficient_user_authentication\"",
            ),
        ]);
        let out = to_browser(&upstream, &called, &base, "orders").unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.get("content-type").is_some() && out.get("www-authenticate").is_some());
    }

    #[test]
    fn redirects_stay_below_the_api_or_are_refused() {
        let base = Url::parse("https://orders.internal/v1").unwrap();
        let called: http::Uri = "https://orders.internal/v1/items".parse().unwrap();
        let loc = |v: &str| headers(&[("location", v)]);
        let out = to_browser(&loc("/v1/items/7?x=1"), &called, &base, "orders").unwrap();
        assert_eq!(out["location"], "/bff/api/orders/items/7?x=1");
        let out = to_browser(&loc("items/8"), &called, &base, "orders").unwrap();
        assert_eq!(out["location"], "/bff/api/orders/items/8");
        for bad in [
            "https://evil.example/",
            "//evil.example/v1",
            "/admin",
            "/v10/x",
            "http://orders.internal/v1/x",
        ] {
            assert_eq!(
                to_browser(&loc(bad), &called, &base, "orders"),
                Err(ForeignRedirect),
                "{bad}"
            );
        }
    }
}

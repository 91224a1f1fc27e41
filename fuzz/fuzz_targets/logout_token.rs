//! Back-channel logout tokens: `backchannel::parse` and `check_claims`.
//! The input is either a compact JWS, or (when it holds NUL bytes) a header
//! JSON, a payload JSON and a signature, which the target base64url-encodes,
//! so the fuzzer reaches the claim checks. Invariants: the signing input is
//! exactly `header.payload` of the token; claims that pass the checks have
//! this client in `aud`, `iat` within the skew, `exp` not passed, the
//! back-channel event, no `nonce`, and a `sid` or `sub`.
#![no_main]

use keyway_backend::backchannel::{BACKCHANNEL_EVENT, LogoutClaims, check_claims, parse};
use keyway_backend::provider::{IAT_FUTURE_SKEW, IAT_MAX_AGE};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const NOW: i64 = 1_700_000_000;

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let token = if data.contains(&0) {
        let mut parts = data.splitn(3, |b| *b == 0);
        let h = parts.next().unwrap_or_default();
        let p = parts.next().unwrap_or_default();
        let s = parts.next().unwrap_or_default();
        format!("{}.{}.{}", b64(h), b64(p), b64(s))
    } else {
        match std::str::from_utf8(data) {
            Ok(s) => s.to_owned(),
            Err(_) => return,
        }
    };
    let Ok((header, payload, input, _signature)) = parse(&token) else {
        return;
    };
    let mut dots = token.match_indices('.').map(|(i, _)| i);
    let second = dots.nth(1).expect("a parsed JWS has two dots");
    assert_eq!(input, &token[..second], "signing input");
    let _ = header.alg.len();
    let Ok(claims) = serde_json::from_value::<LogoutClaims>(payload) else {
        return;
    };
    if check_claims(&claims, "keyway", NOW).is_ok() {
        let aud_ok = match &claims.aud {
            Value::String(s) => s == "keyway",
            Value::Array(a) => a.iter().any(|v| v.as_str() == Some("keyway")),
            _ => false,
        };
        assert!(aud_ok, "accepted another audience");
        assert!(claims.iat <= NOW + IAT_FUTURE_SKEW.as_secs() as i64);
        assert!(claims.iat >= NOW - IAT_MAX_AGE.as_secs() as i64);
        assert!(claims.exp.is_none_or(|e| e > NOW));
        assert!(claims.nonce.is_none());
        assert!(claims.sid.is_some() || claims.sub.is_some());
        assert!(
            claims
                .events
                .as_ref()
                .and_then(|e| e.get(BACKCHANNEL_EVENT))
                .is_some_and(Value::is_object)
        );
    }
});

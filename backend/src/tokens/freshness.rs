//! When a token is due for renewal: one rule for users' access tokens and
//! the BFF's own client-credentials tokens.
//!
//! A token is renewed before use when it expires within the skew (60 s by
//! default, `refresh_skew`), and the skew is never more than half of the
//! token's lifetime (a 10 s token is renewed in its last 5 s, not at once).
//! A token whose lifetime is unknown is used until the provider refuses it.

/// Whether a token issued at `issued_at` and expiring at `expires_at`
/// (seconds since the epoch) must be renewed at `now`.
pub(crate) fn due(issued_at: u64, expires_at: Option<u64>, skew_secs: u64, now: u64) -> bool {
    let Some(expires_at) = expires_at else {
        return false;
    };
    let lifetime = expires_at.saturating_sub(issued_at);
    let skew = skew_secs.min(lifetime / 2);
    now + skew >= expires_at
}

#[cfg(test)]
mod tests {
    use super::due;

    #[test]
    fn skew_is_capped_at_half_the_lifetime() {
        // 10 s token, 60 s skew: renewed only in its last 5 s.
        assert!(!due(1000, Some(1010), 60, 1004));
        assert!(due(1000, Some(1010), 60, 1005));
        // 1 h token: renewed in its last 60 s.
        assert!(!due(0, Some(3600), 60, 3539));
        assert!(due(0, Some(3600), 60, 3540));
        // Unknown lifetime: never due.
        assert!(!due(0, None, 60, 99999));
        // Expired: due.
        assert!(due(0, Some(10), 0, 10));
    }
}

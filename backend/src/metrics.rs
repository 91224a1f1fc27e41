//! Prometheus metrics, served as text at `GET /metrics`.
//!
//! Every [`App`](crate::App) owns its own [`PrometheusRecorder`]: nothing is
//! installed as the process-wide `metrics` recorder, so several BFFs in one
//! process (the tests run many) each count only their own events, and an
//! application that embeds Keyway keeps its global recorder for itself.
//! Handles are registered on that recorder directly (the `metrics` facade's
//! [`Recorder`] trait) instead of through the macros and the global.
//!
//! The proxy is the hot path: its histogram and its counters per status are
//! registered once per configured API (status counters on first use, in a
//! lock-free slot per status code), so a proxied request costs a lookup by
//! API name and two atomic updates, with no allocation. Logins, refreshes,
//! revocations and back-channel logouts each already cost a round trip to the
//! provider; their counters are looked up in the recorder's registry on use.
//!
//! Label values come only from the configuration (provider ids, API names)
//! and from fixed sets (outcomes, error codes, status codes), never from what
//! a client sends, so nobody can make the number of series grow.

use crate::config::Config;
use metrics::{Counter, Histogram, Key, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

/// `keyway_logins_total{provider,outcome,kind}`.
pub(crate) const LOGINS: &str = "keyway_logins_total";
/// `keyway_login_failures_total{provider,reason}`.
pub(crate) const LOGIN_FAILURES: &str = "keyway_login_failures_total";
/// `keyway_refreshes_total{provider,outcome}`.
pub(crate) const REFRESHES: &str = "keyway_refreshes_total";
/// `keyway_revocations_total{provider,outcome}`.
pub(crate) const REVOCATIONS: &str = "keyway_revocations_total";
/// `keyway_backchannel_logouts_total{outcome}`.
pub(crate) const BACKCHANNEL_LOGOUTS: &str = "keyway_backchannel_logouts_total";
/// `keyway_proxy_requests_total{api,status}`.
pub(crate) const PROXY_REQUESTS: &str = "keyway_proxy_requests_total";
/// `keyway_proxy_request_duration_seconds{api}` (histogram).
pub(crate) const PROXY_DURATION: &str = "keyway_proxy_request_duration_seconds";
/// `keyway_dpop_nonce_retries_total{provider}` and `{api}`: requests sent
/// again because the server asked for a DPoP nonce (RFC 9449 §8, §9).
pub(crate) const DPOP_NONCE_RETRIES: &str = "keyway_dpop_nonce_retries_total";
/// `keyway_step_ups_total{api,source}`: `401 step_up_required` answers.
pub(crate) const STEP_UPS: &str = "keyway_step_ups_total";
/// `keyway_user_sessions_ended_total{how}`: sessions a user ended from
/// `/bff/sessions` (`one`, `others`).
pub(crate) const USER_SESSIONS_ENDED: &str = "keyway_user_sessions_ended_total";
/// `keyway_sessions_active` (only where the store can count).
pub(crate) const SESSIONS_ACTIVE: &str = "keyway_sessions_active";

/// `keyway_session_store_up{store}`: 1 when the store answered the scrape's ping.
pub(crate) const STORE_UP: &str = "keyway_session_store_up";
/// `keyway_session_store_cache_live{store}`: 1 while sessions are served from memory.
pub(crate) const STORE_CACHE_LIVE: &str = "keyway_session_store_cache_live";
/// Prefix of the store's own counters (`keyway_session_store_<name>{store}`).
const STORE_COUNTER_PREFIX: &str = "keyway_session_store_";

/// The `provider` label of a callback that failed before its pending login
/// (and so its provider) was known, e.g. `invalid_state`; also its `kind`.
pub(crate) const UNKNOWN_PROVIDER: &str = "unknown";

/// The `kind` labels of logins: interactive, silent (`prompt=none`), step-up.
pub(crate) const LOGIN_KINDS: [&str; 3] = ["interactive", "silent", "step_up"];

/// Buckets of the proxy duration histogram, in seconds.
const PROXY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The metadata handed to the recorder (the Prometheus recorder ignores it).
static METADATA: Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, None);

/// The error codes a login failure is counted under as they are: Keyway's own
/// codes and the standard codes of RFC 6749 4.1.2.1 and OpenID Connect Core
/// 3.1.2.6. A provider's other codes are counted as `provider_error`, so the
/// codes a caller posts to `/bff/callback` cannot create new series.
const KNOWN_REASONS: &[&str] = &[
    "invalid_state",
    "login_expired",
    "issuer_mismatch",
    "provider_mismatch",
    "invalid_id_token",
    "token_exchange_failed",
    "provider_timeout",
    "provider_error",
    "unknown_provider",
    "session_store_unavailable",
    "internal_error",
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
    "invalid_request_uri",
    "invalid_request_object",
    "request_not_supported",
    "request_uri_not_supported",
    "registration_not_supported",
];

/// How a refresh grant ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshOutcome {
    /// New tokens were stored.
    Succeeded,
    /// The provider refused the refresh token (`invalid_grant`): the session ended.
    Refused,
    /// The provider failed or did not answer.
    Failed,
}

impl RefreshOutcome {
    fn label(self) -> &'static str {
        match self {
            RefreshOutcome::Succeeded => "succeeded",
            RefreshOutcome::Refused => "refused",
            RefreshOutcome::Failed => "failed",
        }
    }
}

/// How a back-channel logout request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BackchannelOutcome {
    /// The token was valid; the matching sessions are gone.
    Succeeded,
    /// The logout token failed validation (`400 invalid_logout_token`).
    Invalid,
    /// Another failure (the session store, the provider's JWKS).
    Failed,
}

/// Status codes 100..=599 each have a slot.
const STATUS_SLOTS: usize = 500;

/// The pre-registered metrics of one configured API.
#[derive(Debug)]
struct ApiMetrics {
    duration: Histogram,
    by_status: Box<[OnceLock<Counter>]>,
}

/// The state of the session store, as `/metrics` shows it.
#[derive(Debug, Clone)]
pub struct StoreStatus {
    /// What the store is (`Sessions::store_kind`).
    pub kind: &'static str,
    /// Whether it answered a ping.
    pub up: bool,
    /// Whether sessions are served from this process's memory right now.
    pub cache_live: bool,
    /// The store's own counters (`Store::counters`).
    pub counters: Vec<(&'static str, u64)>,
}

/// The metrics of one [`App`](crate::App): its own recorder and the handles of
/// the hot path.
pub(crate) struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    apis: HashMap<String, ApiMetrics>,
    backchannel: [Counter; 3],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("apis", &self.apis.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh recorder for one App, with the series of the configured
    /// providers and APIs registered at zero.
    pub(crate) fn new(config: &Config) -> Result<Self, String> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(PROXY_DURATION.to_owned()), PROXY_BUCKETS)
            .map_err(|e| format!("metrics: {e}"))?
            .build_recorder();
        let handle = recorder.handle();
        describe(&recorder);
        describe_store(&recorder);
        let mut metrics = Metrics {
            backchannel: ["succeeded", "invalid", "failed"].map(|outcome| {
                recorder.register_counter(
                    &Key::from_parts(
                        BACKCHANNEL_LOGOUTS,
                        vec![Label::from_static_parts("outcome", outcome)],
                    ),
                    &METADATA,
                )
            }),
            apis: HashMap::new(),
            recorder,
            handle,
        };
        for api in &config.apis {
            let duration = metrics.recorder.register_histogram(
                &Key::from_parts(PROXY_DURATION, vec![Label::new("api", api.name.clone())]),
                &METADATA,
            );
            let by_status = (0..STATUS_SLOTS).map(|_| OnceLock::new()).collect();
            metrics.apis.insert(
                api.name.clone(),
                ApiMetrics {
                    duration,
                    by_status,
                },
            );
        }
        // Zero-valued series, so that rates work from the first event.
        for p in &config.providers {
            for outcome in ["started", "completed", "failed"] {
                for kind in LOGIN_KINDS {
                    metrics
                        .counter(
                            LOGINS,
                            &[("provider", &p.id), ("outcome", outcome), ("kind", kind)],
                        )
                        .increment(0);
                }
            }
        }
        Ok(metrics)
    }

    /// Looks up (registering on first use) a counter of this App's recorder.
    fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        let labels: Vec<Label> = labels
            .iter()
            .map(|(k, v)| Label::new(*k, (*v).to_owned()))
            .collect();
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    /// A login of `kind` (one of [`LOGIN_KINDS`]) was started (`POST`/`GET
    /// /bff/login` answered the authorization URL).
    pub(crate) fn login_started(&self, provider: &str, kind: &'static str) {
        let labels = [
            ("provider", provider),
            ("outcome", "started"),
            ("kind", kind),
        ];
        self.counter(LOGINS, &labels).increment(1);
    }

    /// A callback created a session.
    pub(crate) fn login_completed(&self, provider: &str, kind: &'static str) {
        let labels = [
            ("provider", provider),
            ("outcome", "completed"),
            ("kind", kind),
        ];
        self.counter(LOGINS, &labels).increment(1);
    }

    /// A callback failed; `provider` and `kind` are `None` when it failed
    /// before its pending login was found. Counts
    /// `keyway_logins_total{outcome="failed"}` and
    /// `keyway_login_failures_total{reason=<error code>}`.
    pub(crate) fn login_failed(&self, provider: Option<&str>, kind: Option<&str>, code: &str) {
        let provider = provider.unwrap_or(UNKNOWN_PROVIDER);
        let kind = kind.unwrap_or(UNKNOWN_PROVIDER);
        let labels = [
            ("provider", provider),
            ("outcome", "failed"),
            ("kind", kind),
        ];
        self.counter(LOGINS, &labels).increment(1);
        let reason = KNOWN_REASONS
            .iter()
            .find(|k| **k == code)
            .copied()
            .unwrap_or("provider_error");
        self.counter(
            LOGIN_FAILURES,
            &[("provider", provider), ("reason", reason)],
        )
        .increment(1);
    }

    /// A refresh grant was sent and ended this way.
    pub(crate) fn refresh(&self, provider: &str, outcome: RefreshOutcome) {
        self.counter(
            REFRESHES,
            &[("provider", provider), ("outcome", outcome.label())],
        )
        .increment(1);
    }

    /// One token revocation (RFC 7009) was sent and succeeded or not.
    pub(crate) fn revocation(&self, provider: &str, succeeded: bool) {
        let outcome = if succeeded { "succeeded" } else { "failed" };
        self.counter(REVOCATIONS, &[("provider", provider), ("outcome", outcome)])
            .increment(1);
    }

    /// An API call was refused with `401 step_up_required`; `source` is
    /// `policy` (the API's `require_acr`/`max_auth_age`) or `upstream` (its
    /// RFC 9470 challenge).
    pub(crate) fn step_up(&self, api: &str, source: &'static str) {
        self.counter(STEP_UPS, &[("api", api), ("source", source)])
            .increment(1);
    }

    /// A user ended `count` of their sessions; `how` is `one` or `others`.
    pub(crate) fn user_sessions_ended(&self, how: &'static str, count: u64) {
        self.counter(USER_SESSIONS_ENDED, &[("how", how)])
            .increment(count);
    }

    /// A back-channel logout request was handled.
    pub(crate) fn backchannel(&self, outcome: BackchannelOutcome) {
        let i = match outcome {
            BackchannelOutcome::Succeeded => 0,
            BackchannelOutcome::Invalid => 1,
            BackchannelOutcome::Failed => 2,
        };
        self.backchannel[i].increment(1);
    }

    /// A request to the configured API `api` was answered with `status` after
    /// `elapsed`. Requests naming no configured API are not counted.
    pub(crate) fn proxied(&self, api: &str, status: u16, elapsed: Duration) {
        let Some(m) = self.apis.get(api) else {
            return;
        };
        m.duration.record(elapsed.as_secs_f64());
        let Some(slot) = usize::from(status)
            .checked_sub(100)
            .and_then(|i| m.by_status.get(i))
        else {
            return;
        };
        slot.get_or_init(|| {
            self.recorder.register_counter(
                &Key::from_parts(
                    PROXY_REQUESTS,
                    vec![
                        Label::new("api", api.to_owned()),
                        Label::new("status", status.to_string()),
                    ],
                ),
                &METADATA,
            )
        })
        .increment(1);
    }

    /// Sets the session store's series (see [`StoreStatus`]),
    /// labelled with the kind of store.
    pub(crate) fn store_status(&self, status: &StoreStatus) {
        let label = || vec![Label::new("store", status.kind)];
        let gauge = |name: &'static str, on: bool| {
            self.recorder
                .register_gauge(&Key::from_parts(name, label()), &METADATA)
                .set(if on { 1.0 } else { 0.0 });
        };
        gauge(STORE_UP, status.up);
        gauge(STORE_CACHE_LIVE, status.cache_live);
        for (name, value) in &status.counters {
            self.recorder
                .register_counter(
                    &Key::from_parts(format!("{STORE_COUNTER_PREFIX}{name}"), label()),
                    &METADATA,
                )
                .absolute(*value);
        }
    }

    /// The counters of DPoP nonce retries, registered at zero for every
    /// provider and API that binds tokens, keyed as
    /// `provider::dpop::Nonces` counts them: (is an API, its name).
    pub(crate) fn dpop_nonce_retries(&self, config: &Config) -> HashMap<(bool, String), Counter> {
        let providers = config
            .providers
            .iter()
            .filter(|p| p.dpop)
            .map(|p| (false, "provider", p.id.clone()));
        let apis = config
            .apis
            .iter()
            .filter(|a| a.dpop)
            .map(|a| (true, "api", a.name.clone()));
        providers
            .chain(apis)
            .map(|(is_api, label, name)| {
                let counter = self.counter(DPOP_NONCE_RETRIES, &[(label, &name)]);
                counter.increment(0);
                ((is_api, name), counter)
            })
            .collect()
    }

    /// The Prometheus text exposition of this App's metrics, with
    /// `keyway_sessions_active` set first when the store can count.
    pub(crate) fn render(&self, sessions_active: Option<u64>) -> String {
        if let Some(n) = sessions_active {
            self.recorder
                .register_gauge(&Key::from_static_name(SESSIONS_ACTIVE), &METADATA)
                .set(n as f64);
        }
        self.handle.render()
    }
}

/// The `# HELP` lines.
fn describe(r: &PrometheusRecorder) {
    let help: [(&'static str, Option<Unit>, &'static str); 10] = [
        (
            LOGINS,
            None,
            "Logins by provider, outcome (started, completed, failed) and kind (interactive, silent, step_up).",
        ),
        (
            LOGIN_FAILURES,
            None,
            "Failed login callbacks by provider and error code.",
        ),
        (
            REFRESHES,
            None,
            "Refresh grants by provider and outcome (succeeded, refused, failed).",
        ),
        (
            REVOCATIONS,
            None,
            "Token revocations (RFC 7009) by provider and outcome.",
        ),
        (
            BACKCHANNEL_LOGOUTS,
            None,
            "Back-channel logout requests by outcome (succeeded, invalid, failed).",
        ),
        (
            PROXY_REQUESTS,
            None,
            "Requests to the API proxy by API and response status.",
        ),
        (
            SESSIONS_ACTIVE,
            None,
            "Signed-in sessions held by the store (memory store only).",
        ),
        (
            DPOP_NONCE_RETRIES,
            None,
            "Requests sent again with the DPoP nonce a provider or API asked for, by provider or API.",
        ),
        (
            STEP_UPS,
            None,
            "API calls answered 401 step_up_required, by API and source (policy, upstream).",
        ),
        (
            USER_SESSIONS_ENDED,
            None,
            "Sessions users ended from /bff/sessions, by how (one, others).",
        ),
    ];
    for (name, unit, text) in help {
        if name == SESSIONS_ACTIVE {
            r.describe_gauge(name.into(), unit, text.into());
        } else {
            r.describe_counter(name.into(), unit, text.into());
        }
    }
    r.describe_histogram(
        PROXY_DURATION.into(),
        Some(Unit::Seconds),
        "Time from the proxied request's arrival to the upstream's response headers, by API."
            .into(),
    );
}

/// The `# HELP` lines of the session store's series.
fn describe_store(r: &PrometheusRecorder) {
    r.describe_gauge(
        STORE_UP.into(),
        None,
        "1 when the session store answered a ping at this scrape, by kind of store.".into(),
    );
    r.describe_gauge(
        STORE_CACHE_LIVE.into(),
        None,
        "1 while sessions are served from this instance's memory (change notices are live).".into(),
    );
    r.describe_counter(
        format!("{STORE_COUNTER_PREFIX}unreplicated_writes_total").into(),
        None,
        "Redis Sentinel/Cluster writes no replica acknowledged in time (they stand on the master alone)."
            .into(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let toml = r#"
            [[apis]]
            name = "orders"
            url = "http://127.0.0.1:1/v1"
        "#;
        let mut env = std::collections::BTreeMap::new();
        for (k, v) in [
            ("KEYWAY_PUBLIC_URL", "http://127.0.0.1:8080"),
            ("KEYWAY_ISSUER", "http://127.0.0.1:9090"),
            ("KEYWAY_CLIENT_ID", "keyway"),
            ("KEYWAY_CLIENT_SECRET", "s3cret"),
            ("KEYWAY_SESSION_STORE", "memory"),
        ] {
            env.insert(k.to_owned(), v.to_owned());
        }
        Config::from_sources(Some(toml), &env).expect("config")
    }

    #[test]
    fn two_apps_count_separately() {
        let a = Metrics::new(&config()).unwrap();
        let b = Metrics::new(&config()).unwrap();
        a.login_started("default", "interactive");
        a.proxied("orders", 200, Duration::from_millis(3));
        a.proxied("orders", 200, Duration::from_millis(30));
        a.proxied("nope", 200, Duration::from_millis(3));
        let text = a.render(Some(2));
        assert!(
            text.contains(
                r#"keyway_logins_total{provider="default",outcome="started",kind="interactive"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"keyway_proxy_requests_total{api="orders",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"keyway_proxy_request_duration_seconds_bucket{api="orders",le="0.005"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"keyway_proxy_request_duration_seconds_count{api="orders"} 2"#),
            "{text}"
        );
        assert!(text.contains("keyway_sessions_active 2"), "{text}");
        assert!(!text.contains("nope"), "{text}");
        let other = b.render(None);
        assert!(
            other.contains(
                r#"keyway_logins_total{provider="default",outcome="started",kind="silent"} 0"#
            ),
            "{other}"
        );
        assert!(!other.contains("keyway_sessions_active"), "{other}");
    }

    #[test]
    fn posted_error_codes_do_not_make_new_series() {
        let m = Metrics::new(&config()).unwrap();
        m.login_failed(None, None, "made_up_by_a_caller");
        m.login_failed(Some("default"), Some("silent"), "access_denied");
        m.login_failed(None, None, "invalid_state");
        let text = m.render(None);
        assert!(!text.contains("made_up"), "{text}");
        assert!(
            text.contains(
                r#"keyway_login_failures_total{provider="unknown",reason="provider_error"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"keyway_login_failures_total{provider="default",reason="access_denied"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"keyway_login_failures_total{provider="unknown",reason="invalid_state"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"keyway_logins_total{provider="unknown",outcome="failed",kind="unknown"} 2"#
            ),
            "{text}"
        );
    }
}

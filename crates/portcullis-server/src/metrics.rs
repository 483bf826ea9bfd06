//! Prometheus metrics. The `metrics` facade records nothing until
//! [`install`] puts the recorder in place (once per process); `GET /metrics`
//! renders it. Counters are bumped where things happen; the gauges that are
//! cheaper to read than to track (set sizes, queue depth, key age, live
//! sessions) are read when scraped. Labels are bounded: route templates,
//! never raw paths; outcome names, never user input.

use std::sync::{LazyLock, OnceLock};

use metrics::{Counter, Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "portcullis_http_requests_total";
pub const HTTP_DURATION: &str = "portcullis_http_request_duration_seconds";
pub const LOGINS: &str = "portcullis_logins_total";
pub const REFRESHES: &str = "portcullis_refreshes_total";
pub const SECURITY_EVENTS: &str = "portcullis_security_events_total";
pub const REVOCATIONS: &str = "portcullis_revocations_total";
pub const REVOCATION_SET: &str = "portcullis_revocation_set_size";
pub const HASH_QUEUE: &str = "portcullis_password_hash_queue_depth";
pub const HASH_WAIT: &str = "portcullis_password_hash_wait_seconds";
pub const HASH_REFUSED: &str = "portcullis_password_hash_refused_total";
pub const CACHE_HITS: &str = "portcullis_verification_cache_hits_total";
pub const CACHE_MISSES: &str = "portcullis_verification_cache_misses_total";
pub const ACTIVE_SESSIONS: &str = "portcullis_active_sessions";
pub const KEY_AGE: &str = "portcullis_signing_key_age_seconds";
pub const HASH_COST: &str = "portcullis_password_hash_cost_seconds";
pub const HASH_CPU: &str = "portcullis_password_hash_cpu_seconds";

/// The verification cache's counters, bumped on every authenticated
/// request: registered once, since a lookup in the recorder costs more than
/// the cache hit it counts. Bound to the recorder [`install`] put in place
/// before the server's first request.
pub static CACHE_HIT_COUNT: LazyLock<Counter> = LazyLock::new(|| metrics::counter!(CACHE_HITS));
pub static CACHE_MISS_COUNT: LazyLock<Counter> = LazyLock::new(|| metrics::counter!(CACHE_MISSES));

/// Request latencies span a cached verification (well under a millisecond)
/// to a password check (a few hundred milliseconds) and a long-poll.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder on first call; later calls return the same
/// handle. `None` when another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "Requests by method, route template and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Request latency by method and route template."
    );
    describe_counter!(
        LOGINS,
        "Password logins by result (ok, failed, locked, disabled)."
    );
    describe_counter!(
        REFRESHES,
        "Refreshes by result (rotated, grace_replay, reused)."
    );
    describe_counter!(SECURITY_EVENTS, "Audit events by type.");
    describe_counter!(
        REVOCATIONS,
        "Revocation entries this instance wrote, by kind (sid, jti, sub, kid)."
    );
    describe_gauge!(
        REVOCATION_SET,
        "Live entries in the in-memory revocation set."
    );
    describe_gauge!(
        HASH_QUEUE,
        "Password hashes admitted and waiting for a worker."
    );
    describe_histogram!(
        HASH_WAIT,
        Unit::Seconds,
        "Time a password hash waited for a worker."
    );
    describe_histogram!(
        HASH_CPU,
        Unit::Seconds,
        "CPU time of each password hash or verification (its thread's own clock, so time preempted by other work is not counted): login capacity is cores ÷ this."
    );
    describe_counter!(
        HASH_REFUSED,
        "Password hashes refused because the queue was full (503)."
    );
    describe_counter!(
        CACHE_HITS,
        "Access tokens answered from the verified-token cache."
    );
    describe_counter!(
        CACHE_MISSES,
        "Access tokens verified in full (signature and claims)."
    );
    describe_gauge!(
        ACTIVE_SESSIONS,
        "Sessions neither revoked nor expired, all users."
    );
    describe_gauge!(
        KEY_AGE,
        Unit::Seconds,
        "How long the current signing key has been signing."
    );
}

/// Counts an audit event, and the named counters that dashboards want for
/// the events that matter most.
pub fn security_event(kind: &str) {
    metrics::counter!(SECURITY_EVENTS, "type" => kind.to_owned()).increment(1);
    let named = match kind {
        "login" => Some((LOGINS, "ok")),
        "login_failed" => Some((LOGINS, "failed")),
        "login_locked" => Some((LOGINS, "locked")),
        "login_refused_disabled" => Some((LOGINS, "disabled")),
        "refresh" => Some((REFRESHES, "rotated")),
        "refresh_grace_replay" => Some((REFRESHES, "grace_replay")),
        "refresh_token_reused" => Some((REFRESHES, "reused")),
        _ => None,
    };
    if let Some((name, result)) = named {
        metrics::counter!(name, "result" => result).increment(1);
    }
}

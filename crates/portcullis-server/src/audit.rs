//! The audit trail: every event logged with `target: "audit"` is also
//! stored in the database (by a background writer, so logging never waits
//! on it, or by the store in the change's own transaction:
//! [`STORED_WITH_THEIR_CHANGE`]) for `GET /api/admin/audit`. Only the
//! fields the events carry are kept — ids, addresses, outcomes — never a
//! secret.

use std::sync::OnceLock;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{Filtered, Targets};
use tracing_subscriber::layer::Context;

/// One stored security event.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[schema(value_type = Object)]
    pub detail: Value,
}

static SINK: OnceLock<mpsc::Sender<AuditEvent>> = OnceLock::new();

/// Events the store writes in the transaction of the change they record,
/// so the sink skips them. A refresh is the busiest event there is: its
/// own write, after the rotation's, was a second hand-off to the
/// database's thread and a second commit, 5-12 % of a refresh's CPU
/// (BENCHMARKS.md); in the rotation's transaction it can't be lost to a
/// full queue either.
pub const STORED_WITH_THEIR_CHANGE: &[&str] = &["refresh"];

/// Starts taking events for the database; the receiver goes to the writer.
pub fn sink() -> Option<mpsc::Receiver<AuditEvent>> {
    let (tx, rx) = mpsc::channel(4096);
    SINK.set(tx).ok().map(|()| rx)
}

/// The tracing layer that copies `audit` events into the sink. Install it
/// through [`layer`], which gives it its filter.
#[derive(Debug, Default)]
pub struct AuditLayer;

/// Security events only: the `audit` target at INFO and above.
pub fn events_only() -> Targets {
    Targets::new().with_target("audit", tracing::Level::INFO)
}

/// [`AuditLayer`] behind [`events_only`]. A layer without a filter would
/// make every span and event of every crate enabled for the whole
/// subscriber, and each request would build spans and dispatch hyper's
/// trace events that nobody records.
pub fn layer<S>() -> Filtered<AuditLayer, Targets, S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    AuditLayer.with_filter(events_only())
}

#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            Value::from(format!("{value:?}").trim_matches('"')),
        );
    }
}

impl<S: tracing::Subscriber> Layer<S> for AuditLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut detail = fields.0;
        let mut take = |name: &str| match detail.remove(name) {
            Some(Value::String(s)) => Some(s),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        let kind = take("event").unwrap_or_else(|| "event".into());
        crate::metrics::security_event(&kind);
        let Some(sink) = SINK.get() else { return };
        if STORED_WITH_THEIR_CHANGE.contains(&kind.as_str()) {
            return;
        }
        let record = AuditEvent {
            id: 0,
            kind,
            user_id: take("user_id"),
            session_id: take("session_id"),
            ip: take("ip"),
            user_agent: take("user_agent"),
            at: OffsetDateTime::now_utc(),
            detail: {
                detail.remove("message");
                Value::Object(detail)
            },
        };
        if sink.try_send(record).is_err() {
            // The writer is behind; the event is still in the log stream.
        }
    }
}

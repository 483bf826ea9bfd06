//! Logging: human-readable text by default, JSON lines with `LOG_FORMAT=json`.
//! Security events use the `audit` target and are always JSON, so they can be
//! shipped and queried apart from the rest. Nothing here ever formats a
//! request body, a token or a password: only ids, routes and outcomes.

use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::config::LogFormat;

/// `to_stderr` for CLI subcommands, whose stdout is their output.
pub fn init(format: LogFormat, to_stderr: bool) {
    let filter = || EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let not_audit = Targets::new()
        .with_default(tracing::Level::TRACE)
        .with_target("audit", tracing::level_filters::LevelFilter::OFF);
    let writer = move || -> Box<dyn std::io::Write> {
        if to_stderr {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        }
    };
    let ansi = !to_stderr && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let general = match format {
        LogFormat::Text => fmt::layer()
            .with_target(false)
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(writer)
            .boxed(),
    };
    let audit = fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_writer(writer)
        .with_filter(crate::audit::events_only());
    // A second init (tests, `user create` after a failed start) is harmless.
    // Every layer has a filter (see `audit::layer`).
    let _ = tracing_subscriber::registry()
        .with(general.with_filter(not_audit).with_filter(filter()))
        .with(audit)
        .with(crate::audit::layer())
        .try_init();
}

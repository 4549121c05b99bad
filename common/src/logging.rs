//! Log set-up shared by both binaries: an `EnvFilter` from settings, human-readable text or JSON lines, and with an
//! OTLP endpoint the spans exported as OpenTelemetry traces ([`telemetry`](crate::telemetry)).

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::{EnvFilter, filter::Targets, fmt, prelude::*};

use crate::{settings::Settings, telemetry::Telemetry};

/// Installs the global tracing subscriber; call once, first thing in `main`. `service` names the process in traces
/// unless `OTEL_SERVICE_NAME` does; shut the returned export down last, to send its last spans.
///
/// `THUMBQ_LOG` filters the logs only: traces get thumbq's spans at INFO whatever the log level, so that a quiet
/// log (`warn`) does not empty the traces.
pub fn init(settings: &Settings, service: &str) -> Telemetry {
    let filter = EnvFilter::try_new(&settings.log.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let (traces, telemetry) = crate::telemetry::layer(&settings.telemetry, service);
    let ours =
        Targets::new().with_targets(["thumbq_api", "thumbq_worker", "thumbq_common"].map(|t| (t, LevelFilter::INFO)));
    let registry = tracing_subscriber::registry().with(traces.map(|layer| layer.with_filter(ours)));
    if settings.log.json {
        registry.with(fmt::layer().json().flatten_event(true).with_current_span(true).with_filter(filter)).init();
    } else {
        // Colours only on a terminal: `make start` writes logs to files.
        registry.with(fmt::layer().with_ansi(std::io::stdout().is_terminal()).with_filter(filter)).init();
    }
    telemetry
}

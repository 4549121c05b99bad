//! Log set-up shared by both binaries: an `EnvFilter` from settings, human-readable text or JSON lines.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::settings::LogSettings;

/// Installs the global tracing subscriber; call once, first thing in `main`.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if settings.json {
        registry.with(fmt::layer().json().flatten_event(true).with_current_span(true)).init();
    } else {
        // Colours only on a terminal: `make start` writes logs to files.
        registry.with(fmt::layer().with_ansi(std::io::stdout().is_terminal())).init();
    }
}

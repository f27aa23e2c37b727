//! Weir's own logs (tracing), configured from `service.telemetry.logs`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogEncoding, LogLevel};

/// A subscriber writing to stderr at `level` in `encoding`. `RUST_LOG`, when set, overrides
/// the level (handy for debugging one module).
pub fn subscriber(
    level: LogLevel,
    encoding: LogEncoding,
) -> Box<dyn tracing::Subscriber + Send + Sync> {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(level.as_filter()));
    // Colours only on a terminal: log files and log collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match encoding {
        LogEncoding::Json => Box::new(builder.json().finish()),
        LogEncoding::Console => Box::new(builder.finish()),
    }
}

/// Installs the process-wide subscriber (once; later calls are ignored).
pub fn init(level: LogLevel, encoding: LogEncoding) {
    let _ = tracing::subscriber::set_global_default(subscriber(level, encoding));
}

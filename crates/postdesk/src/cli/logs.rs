//! How postdesk writes its log, on standard error: text for people (the default), or
//! one JSON object a line (`--log-format json`) for log shippers, with `timestamp`,
//! `level`, `target` and the event's `fields` (its `message` among them). Nothing logs a
//! secret: passwords, tokens and client secrets are never a field of any event, and
//! database errors are logged without the URL (which may hold a password).
//!
//! [`status`] is for the lines `serve` prints for the operator ("web UI on …"): plain
//! lines in text mode, log events in JSON mode, so that the stream stays JSON throughout.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

/// Whether [`init`] chose JSON.
static JSON: AtomicBool = AtomicBool::new(false);

/// The target of [`status`] events, always shown in JSON mode whatever `POSTDESK_LOG` says.
const STATUS_TARGET: &str = "postdesk::status";

/// Sets the process's log up: the level from `POSTDESK_LOG` (default `warn`).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("POSTDESK_LOG").unwrap_or_else(|_| "warn".into());
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_env_filter(filter).init(),
        LogFormat::Json => {
            JSON.store(true, Ordering::Relaxed);
            let status = format!("{STATUS_TARGET}=info")
                .parse()
                .expect("the status directive parses");
            builder
                .json()
                .with_current_span(false)
                .with_env_filter(filter.add_directive(status))
                .init()
        }
    }
}

/// A line for the operator: `postdesk: {message}` on standard error, or an `info`
/// event in JSON mode.
pub fn status(message: &str) {
    if JSON.load(Ordering::Relaxed) {
        tracing::info!(target: STATUS_TARGET, "{message}");
    } else {
        eprintln!("postdesk: {message}");
    }
}

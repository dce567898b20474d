//! The log: text lines on standard error, or, with `[log] format = "json"`,
//! one JSON object a line with the same fields (`timestamp`, `level`,
//! `target`, `message`, then the line's own fields), for log shippers. The
//! format is taken from the config once it is read; what is logged before
//! that is text.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, layer::Layered, reload};

use crate::config::LogFormat;

type Filtered = Layered<EnvFilter, Registry>;
type Output = Box<dyn Layer<Filtered> + Send + Sync>;

static FORMAT: OnceLock<reload::Handle<Output, Filtered>> = OnceLock::new();

/// Log to standard error, by `RUST_LOG` or else `default_filter`.
pub fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into());
    let (output, handle) = reload::Layer::new(output(LogFormat::Text));
    tracing_subscriber::registry().with(filter).with(output).init();
    let _ = FORMAT.set(handle);
}

/// Write the log in `format` from now on.
pub fn use_format(format: LogFormat) {
    if let Some(handle) = FORMAT.get() {
        let _ = handle.reload(output(format));
    }
}

fn output(format: LogFormat) -> Output {
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => layer
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
    }
}

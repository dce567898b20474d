//! Sinks: where the commands action plugins emit are delivered. A plugin
//! names a sink; the operator's config says where it is and holds its
//! credentials, so plugins never see either.

mod http;

use std::collections::HashMap;

pub use http::HttpSink;

use crate::config::{Config, ConfigError, SinkKind};
use crate::wit::sinks::Command;

/// Why a command was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("no sink named `{0}`")]
    UnknownSink(String),
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("answered {0}")]
    Status(hyper::StatusCode),
    #[error("bad command: {0}")]
    BadCommand(String),
}

/// Every configured sink, by name.
pub struct Sinks {
    by_name: HashMap<String, HttpSink>,
}

impl Sinks {
    /// Build every `[[sinks]]` entry, reading its secrets now.
    pub fn from_config(config: &Config) -> Result<Sinks, ConfigError> {
        let mut by_name = HashMap::new();
        for (i, sink) in config.sinks.iter().enumerate() {
            let built = match sink.kind {
                SinkKind::Http => HttpSink::from_config(config, i, sink)?,
            };
            by_name.insert(sink.name.clone(), built);
        }
        Ok(Sinks { by_name })
    }

    /// Deliver one command to the sink it names.
    pub async fn deliver(&self, command: &Command) -> Result<(), DeliveryError> {
        let sink = self
            .by_name
            .get(&command.sink)
            .ok_or_else(|| DeliveryError::UnknownSink(command.sink.clone()))?;
        sink.deliver(command).await
    }
}

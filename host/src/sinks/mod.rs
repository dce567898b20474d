//! Sinks: where the commands action plugins emit are delivered. A plugin
//! names a sink; the operator's config says where it is and holds its
//! credentials, so plugins never see either. A sink makes one attempt;
//! retries, ordering and dead letters are the [outbox](crate::outbox)'s.

mod http;
mod mqtt;
mod settings;

use std::collections::HashMap;
use std::time::Duration;

pub use http::HttpSink;
pub use mqtt::MqttSink;
pub use settings::{Retries, SinkConfig, SinkKind, SinkSettings};

use crate::settings::{ConfigError, Context, Errors};
use crate::wit::sinks::Command;

/// Why a command was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("no sink named `{0}`")]
    UnknownSink(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("answered {0}")]
    Status(hyper::StatusCode, Option<Duration>),
    #[error("refused: {0}")]
    Refused(String),
    #[error("bad command: {0}")]
    BadCommand(String),
}

/// Why trying a command again cannot help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permanent {
    /// No sink by that name runs.
    UnknownSink,
    /// The sink says the command itself is wrong.
    Rejected,
}

impl DeliveryError {
    /// Why trying again cannot help, as the dead-letter reason; `None` when
    /// a retry might succeed.
    pub fn permanent(&self) -> Option<Permanent> {
        match self {
            DeliveryError::UnknownSink(_) => Some(Permanent::UnknownSink),
            DeliveryError::BadCommand(_) | DeliveryError::Refused(_) => Some(Permanent::Rejected),
            // 408 Request Timeout, 425 Too Early and 429 Too Many Requests
            // ask to come back later; any other 4xx means the request itself
            // is wrong.
            DeliveryError::Status(status, _)
                if status.is_client_error() && ![408, 425, 429].contains(&status.as_u16()) =>
            {
                Some(Permanent::Rejected)
            }
            _ => None,
        }
    }

    /// The wait the sink asked for (`Retry-After` on 429 or 503).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::Status(status, after) if [429, 503].contains(&status.as_u16()) => *after,
            _ => None,
        }
    }
}

/// How the outbox treats a sink's commands.
#[derive(Debug, Clone)]
pub struct Policy {
    pub attempts: u32,
    pub give_up_after: Duration,
    pub backoff: Duration,
    pub backoff_max: Duration,
    pub max_age: Option<Duration>,
}

enum Transport {
    Http(HttpSink),
    Mqtt(MqttSink),
}

struct Sink {
    transport: Transport,
    policy: Policy,
}

/// Every configured sink, by name.
pub struct Sinks {
    by_name: HashMap<String, Sink>,
}

impl Sinks {
    /// Build every `[[sinks]]` entry, reading its secrets now.
    pub fn build(ctx: &Context<'_>, sinks: &[SinkConfig]) -> Result<Sinks, ConfigError> {
        let mut by_name = HashMap::new();
        let mut errors = Errors::default();
        for (i, sink) in sinks.iter().enumerate() {
            let transport = match &sink.settings {
                SinkSettings::Http(http) => errors.keep(HttpSink::from_settings(ctx, i, http)).map(Transport::Http),
                SinkSettings::Mqtt(mqtt) => errors.keep(MqttSink::from_settings(ctx, i, mqtt)).map(Transport::Mqtt),
            };
            let Some(transport) = transport else { continue };
            by_name.insert(
                sink.name.clone(),
                Sink {
                    transport,
                    policy: sink.retries().policy(),
                },
            );
        }
        errors.or(|| Sinks { by_name })
    }

    /// The retry policy of the sink named `name`.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.by_name.get(name).map(|s| &s.policy)
    }

    /// One attempt to deliver `command` to the sink it names.
    pub async fn deliver(&self, command: &Command, idempotency_key: &str) -> Result<(), DeliveryError> {
        let sink = self
            .by_name
            .get(&command.sink)
            .ok_or_else(|| DeliveryError::UnknownSink(command.sink.clone()))?;
        match &sink.transport {
            Transport::Http(http) => http.deliver(command, idempotency_key).await,
            Transport::Mqtt(mqtt) => mqtt.deliver(command, idempotency_key).await,
        }
    }
}

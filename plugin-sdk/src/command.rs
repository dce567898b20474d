//! Commands for sinks, built in one expression:
//!
//! ```no_run
//! # fn act() -> Result<(), vestibule_plugin_sdk::Error> {
//! use std::time::Duration;
//! use vestibule_plugin_sdk::Command;
//!
//! Command::json("lights", &serde_json::json!({ "entity_id": "light.lobby" }))
//!     .header("X-Reason", "badge")
//!     .send()?;
//! Command::json("lights-off", &serde_json::json!({ "entity_id": "light.lobby" }))
//!     .send_after(Duration::from_secs(300))?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use crate::{Command, Error, SendError, imports};

impl Command {
    /// A command whose body is `body` as JSON, for the sink named `sink`.
    pub fn json(sink: &str, body: &impl serde::Serialize) -> Command {
        Command {
            sink: sink.to_string(),
            // Serializing a `Serialize` value into a string only fails for
            // maps with non-string keys; say so in the body rather than panic.
            body: serde_json::to_string(body).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
            headers: Vec::new(),
        }
    }

    /// A command whose body is `body` as it is.
    pub fn text(sink: &str, body: impl Into<String>) -> Command {
        Command {
            sink: sink.to_string(),
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// Add a header (HTTP sinks) or user property (MQTT sinks). The
    /// operator's headers win, and some are the host's alone (`Authorization`,
    /// `Host`, `Idempotency-Key`, …).
    pub fn header(mut self, name: &str, value: &str) -> Command {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Ask the host to deliver it once the call succeeds.
    pub fn send(&self) -> Result<(), Error> {
        imports::send(self, 0).map_err(Error::from)
    }

    /// Ask the host to deliver it `delay` after the event was received (at
    /// most a day). A later delayed command from this plugin to the same sink
    /// about the same door replaces it if it is not due yet, so each unlock
    /// restarts a "lights off" timer.
    pub fn send_after(&self, delay: Duration) -> Result<(), Error> {
        imports::send(self, delay.as_millis().min(u64::MAX as u128) as u64).map_err(Error::from)
    }
}

impl From<SendError> for Error {
    fn from(error: SendError) -> Error {
        Error::Failed(match error {
            SendError::UnknownSink(sink) => format!("sink `{sink}` is not one this plugin may use"),
            SendError::TooMany => "too many commands for one event".to_string(),
        })
    }
}

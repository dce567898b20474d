//! Sends every event it sees, as JSON, to sink `echo` (or the sink its
//! `[plugins.config] sink` names): lets tests see the normalized event
//! exactly as plugins get it.

use vestibule_plugin_sdk::{Action, Error, Event, export, send};

#[derive(serde::Deserialize)]
struct Config {
    #[serde(default = "echo")]
    sink: String,
}

fn echo() -> String {
    "echo".into()
}

struct EchoEvent;

impl Action for EchoEvent {
    type Config = Config;

    fn act(event: Event, config: &Config) -> Result<(), Error> {
        let json = serde_json::to_string(&event).map_err(|e| Error::Failed(e.to_string()))?;
        send(&config.sink, json)
    }
}

export!(action: EchoEvent);

//! Sends every event it sees, as JSON, to sink `echo`: lets tests see the
//! normalized event exactly as plugins get it.

use vestibule_plugin_sdk::{Action, Error, Event, export, send};

struct EchoEvent;

impl Action for EchoEvent {
    fn act(event: Event) -> Result<(), Error> {
        let json = serde_json::to_string(&event).map_err(|e| Error::Failed(e.to_string()))?;
        send("echo", json).map_err(|e| Error::Failed(format!("{e:?}")))
    }
}

export!(action: EchoEvent);

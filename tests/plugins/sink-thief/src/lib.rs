//! An action that tries to send the event to sink `vault`, which it was
//! not granted, ignoring the refusal, then to `echo`, which it was.

use vestibule_plugin_sdk::{Action, Error, Event, NoConfig, export, send};

struct SinkThief;

impl Action for SinkThief {
    type Config = NoConfig;

    fn act(event: Event, _: &NoConfig) -> Result<(), Error> {
        for _ in 0..1000 {
            let _ = send("vault", event.raw.clone());
        }
        send("echo", event.id)
    }
}

export!(action: SinkThief);

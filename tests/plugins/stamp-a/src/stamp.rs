// The plugin both stamp crates build, each with its own `VERSION`.

use vestibule_plugin_sdk::{Enricher, Error, Event, export};

struct Stamp;

impl Enricher for Stamp {
    fn enrich(mut event: Event) -> Result<Event, Error> {
        event.set_attribute("version", VERSION);
        Ok(event)
    }
}

export!(enricher: Stamp);

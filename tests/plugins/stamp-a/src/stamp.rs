// The plugin both stamp crates build, each with its own `VERSION`.

use vestibule_plugin_sdk::{NoConfig, Enricher, Error, Event, export};

struct Stamp;

impl Enricher for Stamp {
    type Config = NoConfig;

    fn enrich(mut event: Event, _: &NoConfig) -> Result<Event, Error> {
        event.set_attribute("version", VERSION);
        Ok(event)
    }
}

export!(enricher: Stamp);

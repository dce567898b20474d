//! Adds `tagged = "yes"` to every event: the smallest useful enricher.

use vestibule_plugin_sdk::{Enricher, Error, Event, NoConfig, export};

struct TagEnricher;

impl Enricher for TagEnricher {
    type Config = NoConfig;

    fn enrich(mut event: Event, _: &NoConfig) -> Result<Event, Error> {
        event.set_attribute("tagged", "yes");
        Ok(event)
    }
}

export!(enricher: TagEnricher);

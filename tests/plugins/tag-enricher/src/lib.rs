//! Adds `tagged = "yes"` to every event: the smallest useful enricher.

use vestibule_plugin_sdk::{Enricher, Error, Event, export};

struct TagEnricher;

impl Enricher for TagEnricher {
    fn enrich(mut event: Event) -> Result<Event, Error> {
        event.set_attribute("tagged", "yes");
        Ok(event)
    }
}

export!(enricher: TagEnricher);

//! An enricher that hands back far more than a plugin should:
//! `[plugins.config] attribute_bytes` bytes in one attribute, and
//! `attributes` attributes.

use serde::Deserialize;
use vestibule_plugin_sdk::{Enricher, Error, Event, export};

#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    attribute_bytes: usize,
    #[serde(default)]
    attributes: usize,
}

struct BigEnricher;

impl Enricher for BigEnricher {
    type Config = Config;

    fn enrich(mut event: Event, config: &Config) -> Result<Event, Error> {
        event.set_attribute("big", "x".repeat(config.attribute_bytes));
        for n in 0..config.attributes {
            event.set_attribute(format!("a{n}"), "y");
        }
        Ok(event)
    }
}

export!(enricher: BigEnricher);

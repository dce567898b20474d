//! Switches on the lights by a door when someone is let in, with a Home
//! Assistant `light.turn_on` service call sent to sink `lights`.
//!
//! ```toml
//! [plugins.config]
//! sink = "lights"                         # default
//! kinds = ["access.granted", "door.unlocked"]  # default
//! [plugins.config.entities]               # door name or id -> light entity
//! "Front Door" = "light.front_porch"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use vestibule_plugin_sdk::{Action, Error, Event, config, export, log, send};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_sink")]
    sink: String,
    #[serde(default = "default_kinds")]
    kinds: Vec<String>,
    entities: BTreeMap<String, String>,
}

fn default_sink() -> String {
    "lights".into()
}

fn default_kinds() -> Vec<String> {
    vec!["access.granted".into(), "door.unlocked".into()]
}

struct LightsOnUnlock;

impl Action for LightsOnUnlock {
    fn act(event: Event) -> Result<(), Error> {
        let config: Config = config()?;
        if !config.kinds.iter().any(|k| event.is(k)) {
            return Ok(());
        }
        let Some(entity) = [event.door_name(), event.door_id()]
            .into_iter()
            .flatten()
            .find_map(|door| config.entities.get(door))
        else {
            log::debug("No light configured for this door.", &[("event", &event.id)]);
            return Ok(());
        };
        let body = serde_json::json!({ "entity_id": entity }).to_string();
        send(&config.sink, body).map_err(|e| Error::Failed(format!("{e:?}")))?;
        log::info("Lights on.", &[("entity", entity), ("event", &event.id)]);
        Ok(())
    }
}

export!(action: LightsOnUnlock);

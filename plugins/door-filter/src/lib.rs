//! Keeps only the events for the doors (and kinds) you name; drops the rest.
//!
//! ```toml
//! [plugins.config]
//! doors = ["Front Door", "7f0d…"]      # door names or vendor ids; empty = any door
//! kinds = ["access.*", "door.forced"]  # normalized kinds or families; empty = any kind
//! ```

use serde::Deserialize;
use vestibule_plugin_sdk::{Error, Event, Filter, Verdict, export};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    doors: Vec<String>,
    #[serde(default)]
    kinds: Vec<String>,
}

struct DoorFilter;

impl Filter for DoorFilter {
    type Config = Config;

    fn filter(event: Event, config: &Config) -> Result<Verdict, Error> {
        Ok(decide(config, &event))
    }
}

fn decide(config: &Config, event: &Event) -> Verdict {
    let door_listed = config.doors.is_empty()
        || [event.door_name(), event.door_id()]
            .into_iter()
            .flatten()
            .any(|d| config.doors.iter().any(|want| want == d));
    if !door_listed {
        let door = event.door_name().or(event.door_id()).unwrap_or("(none)");
        return Verdict::Drop(format!("door {door} is not listed"));
    }
    if !config.kinds.is_empty() && !config.kinds.iter().any(|k| event.is(k)) {
        return Verdict::Drop(format!("kind {} is not listed", event.kind));
    }
    Verdict::Keep
}

export!(filter: DoorFilter);

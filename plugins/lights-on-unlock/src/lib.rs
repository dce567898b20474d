//! Switches on the lights by a door when someone is let in, with a Home
//! Assistant `light.turn_on` call sent to sink `lights` — and, with
//! `off_after`, off again that long after the last unlock, through sink
//! `off_sink` (`light.turn_off`). Each unlock restarts the timer.
//!
//! ```toml
//! [plugins.config]
//! sink = "lights"                              # default
//! kinds = ["access.granted", "door.unlocked"]  # default
//! off_sink = "lights-off"                      # default
//! off_after = "5m"                             # default: leave them on
//! [plugins.config.entities]                    # door name or id -> light entity
//! "Front Door" = "light.front_porch"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use vestibule_plugin_sdk::{Action, Command, Duration, Error, Event, export, log};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_sink")]
    sink: String,
    #[serde(default = "default_kinds")]
    kinds: Vec<String>,
    #[serde(default = "default_off_sink")]
    off_sink: String,
    off_after: Option<Duration>,
    entities: BTreeMap<String, String>,
}

fn default_sink() -> String {
    "lights".into()
}

fn default_off_sink() -> String {
    "lights-off".into()
}

fn default_kinds() -> Vec<String> {
    vec!["access.granted".into(), "door.unlocked".into()]
}

struct LightsOnUnlock;

impl Action for LightsOnUnlock {
    type Config = Config;

    fn act(event: Event, config: &Config) -> Result<(), Error> {
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
        let light = serde_json::json!({ "entity_id": entity });
        Command::json(&config.sink, &light).send()?;
        if let Some(after) = config.off_after {
            Command::json(&config.off_sink, &light).send_after(after.0)?;
        }
        log::info("Lights on.", &[("entity", entity), ("event", &event.id)]);
        Ok(())
    }
}

export!(action: LightsOnUnlock);

#[cfg(test)]
mod tests {
    use super::*;
    use vestibule_plugin_sdk::kind;
    use vestibule_plugin_sdk::testing::FakeHost;

    const CONFIG: &str = r#"
        off_after = "5m"
        [entities]
        "Lobby" = "light.lobby"
    "#;

    #[test]
    fn an_unlock_switches_on_now_and_off_later() {
        let host = FakeHost::new().config(CONFIG).sinks(&["lights", "lights-off"]);
        let event = Event::builder().kind(kind::ACCESS_GRANTED).door("Lobby").build();
        let run = host.act::<LightsOnUnlock>(event);
        assert!(run.result.is_ok(), "{:?}", run.result);
        let sent: Vec<(&str, &str)> = run
            .commands
            .iter()
            .map(|c| (c.sink.as_str(), c.body.as_str()))
            .collect();
        assert_eq!(
            sent,
            [
                ("lights", r#"{"entity_id":"light.lobby"}"#),
                ("lights-off", r#"{"entity_id":"light.lobby"}"#)
            ]
        );
        assert_eq!(run.delays, [0, 300_000]);
        assert_eq!(run.logs[0].message, "Lights on.");
    }

    #[test]
    fn other_doors_and_kinds_are_left_alone() {
        let host = FakeHost::new().config(CONFIG);
        for event in [
            Event::builder().kind(kind::ACCESS_GRANTED).door("Garage").build(),
            Event::builder().kind(kind::ACCESS_DENIED).door("Lobby").build(),
        ] {
            let run = host.act::<LightsOnUnlock>(event);
            assert!(run.result.is_ok());
            assert!(run.commands.is_empty());
        }
    }

    #[test]
    fn a_config_without_entities_says_so() {
        let run = FakeHost::new()
            .config("sink = \"x\"")
            .act::<LightsOnUnlock>(Event::builder().kind(kind::ACCESS_GRANTED).build());
        assert_eq!(
            run.result,
            Err(Error::Config("[plugins.config]: missing field `entities`".into()))
        );
    }
}

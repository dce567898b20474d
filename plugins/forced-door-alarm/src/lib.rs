//! Raises the alarm when a door is forced or held open: publishes an alarm
//! to an MQTT sink (for the building's alarm panel or a dashboard) and calls
//! an HTTP sink (a security desk, a siren).
//!
//! ```toml
//! [plugins.config]
//! mqtt_sink = "alarms"                        # default
//! http_sink = "security-desk"                 # default
//! kinds = ["door.forced", "door.held-open"]   # default
//! ```
//!
//! Both get `{"alarm": "door.forced", "door": "Server Room", "at": <ms>,
//! "event": "<id>", "source": "<source>"}`.

use serde::Deserialize;
use vestibule_plugin_sdk::{Action, Command, Error, Event, export, kind, log};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_mqtt")]
    mqtt_sink: String,
    #[serde(default = "default_http")]
    http_sink: String,
    #[serde(default = "default_kinds")]
    kinds: Vec<String>,
}

fn default_mqtt() -> String {
    "alarms".into()
}

fn default_http() -> String {
    "security-desk".into()
}

fn default_kinds() -> Vec<String> {
    vec![kind::DOOR_FORCED.into(), kind::DOOR_HELD_OPEN.into()]
}

struct ForcedDoorAlarm;

impl Action for ForcedDoorAlarm {
    type Config = Config;

    fn act(event: Event, config: &Config) -> Result<(), Error> {
        if !config.kinds.iter().any(|k| event.is(k)) {
            return Ok(());
        }
        let door = event.door_name().or(event.door_id()).unwrap_or("unknown door");
        let alarm = serde_json::json!({
            "alarm": event.kind,
            "door": door,
            "at": event.occurred_at,
            "event": event.id,
            "source": event.source,
        });
        Command::json(&config.mqtt_sink, &alarm).send()?;
        Command::json(&config.http_sink, &alarm).send()?;
        log::warn("Alarm raised.", &[("alarm", &event.kind), ("door", door)]);
        Ok(())
    }
}

export!(action: ForcedDoorAlarm);

#[cfg(test)]
mod tests {
    use super::*;
    use vestibule_plugin_sdk::testing::FakeHost;

    #[test]
    fn a_forced_door_goes_to_both_sinks() {
        let event = Event::builder()
            .id("e-9")
            .source("pdk")
            .kind(kind::DOOR_FORCED)
            .door("Server Room")
            .at(5)
            .build();
        let run = FakeHost::new()
            .sinks(&["alarms", "security-desk"])
            .act::<ForcedDoorAlarm>(event);
        assert_eq!(run.result, Ok(()));
        let sinks: Vec<&str> = run.commands.iter().map(|c| c.sink.as_str()).collect();
        assert_eq!(sinks, ["alarms", "security-desk"]);
        let alarm: serde_json::Value = serde_json::from_str(&run.commands[0].body).unwrap();
        assert_eq!(
            alarm,
            serde_json::json!({"alarm": "door.forced", "door": "Server Room", "at": 5, "event": "e-9", "source": "pdk"})
        );
        assert_eq!(run.logs[0].level, "warn");
    }

    #[test]
    fn held_open_too_and_nothing_else() {
        let held = Event::builder().kind(kind::DOOR_HELD_OPEN).door("Dock").build();
        assert_eq!(FakeHost::new().act::<ForcedDoorAlarm>(held).commands.len(), 2);
        let opened = Event::builder().kind(kind::DOOR_OPENED).door("Dock").build();
        assert!(FakeHost::new().act::<ForcedDoorAlarm>(opened).commands.is_empty());
    }
}

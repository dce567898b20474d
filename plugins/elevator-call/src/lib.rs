//! Calls the lift to the floor of whoever is let in at a lobby door: on
//! `access.granted` at one of `doors`, a destination call goes to the sink,
//! shaped like a typical lift-integration REST call. The floor comes from
//! the event's `floor` attribute, which an enricher such as `directory`
//! adds; without one, no call.
//!
//! ```toml
//! [plugins.config]
//! sink = "elevator"              # default
//! site = "hq"
//! lift_group = "A"
//! doors = ["Lobby"]              # door names or ids
//! from_floor = 0                 # the lobby's floor (default 0)
//! ```
//!
//! The body: `{"site": "hq", "liftGroup": "A", "fromFloor": 0, "toFloor": 7,
//! "passenger": "<actor id>", "requestId": "<event id>"}`.

use serde::Deserialize;
use vestibule_plugin_sdk::{Action, Command, Error, Event, export, kind, log};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_sink")]
    sink: String,
    site: String,
    lift_group: String,
    doors: Vec<String>,
    #[serde(default)]
    from_floor: i32,
}

fn default_sink() -> String {
    "elevator".into()
}

struct ElevatorCall;

impl Action for ElevatorCall {
    type Config = Config;

    fn act(event: Event, config: &Config) -> Result<(), Error> {
        let at_lobby = [event.door_name(), event.door_id()]
            .into_iter()
            .flatten()
            .any(|door| config.doors.iter().any(|d| d == door));
        if !event.is(kind::ACCESS_GRANTED) || !at_lobby {
            return Ok(());
        }
        let Some(floor) = event.attribute("floor") else {
            log::debug("No floor for this person; no lift call.", &[("event", &event.id)]);
            return Ok(());
        };
        let to_floor: i32 = floor
            .trim()
            .parse()
            .map_err(|_| Error::Failed(format!("floor `{floor}` is not a floor number")))?;
        let call = serde_json::json!({
            "site": config.site,
            "liftGroup": config.lift_group,
            "fromFloor": config.from_floor,
            "toFloor": to_floor,
            "passenger": event.actor.as_ref().and_then(|a| a.id.clone()),
            "requestId": event.id,
        });
        Command::json(&config.sink, &call).send()?;
        log::info("Lift called.", &[("to_floor", floor), ("event", &event.id)]);
        Ok(())
    }
}

export!(action: ElevatorCall);

#[cfg(test)]
mod tests {
    use super::*;
    use vestibule_plugin_sdk::testing::FakeHost;

    const CONFIG: &str = r#"
        site = "hq"
        lift_group = "A"
        doors = ["Lobby"]
    "#;

    fn act(event: Event) -> vestibule_plugin_sdk::testing::Run<Result<(), Error>> {
        FakeHost::new()
            .config(CONFIG)
            .sinks(&["elevator"])
            .act::<ElevatorCall>(event)
    }

    #[test]
    fn a_badge_at_the_lobby_calls_the_lift_to_the_persons_floor() {
        let event = Event::builder()
            .id("e-1")
            .kind(kind::ACCESS_GRANTED)
            .door("Lobby")
            .actor_id("u-7")
            .attribute("floor", "7")
            .build();
        let run = act(event);
        assert_eq!(run.result, Ok(()));
        assert_eq!(run.commands.len(), 1);
        let body: serde_json::Value = serde_json::from_str(&run.commands[0].body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"site": "hq", "liftGroup": "A", "fromFloor": 0, "toFloor": 7, "passenger": "u-7", "requestId": "e-1"})
        );
    }

    #[test]
    fn no_call_without_a_floor_elsewhere_or_when_refused() {
        let no_floor = Event::builder().kind(kind::ACCESS_GRANTED).door("Lobby").build();
        let garage = Event::builder()
            .kind(kind::ACCESS_GRANTED)
            .door("Garage")
            .attribute("floor", "7")
            .build();
        let denied = Event::builder()
            .kind(kind::ACCESS_DENIED)
            .door("Lobby")
            .attribute("floor", "7")
            .build();
        for event in [no_floor, garage, denied] {
            let run = act(event);
            assert_eq!(run.result, Ok(()));
            assert!(run.commands.is_empty());
        }
    }

    #[test]
    fn a_floor_that_is_not_a_number_fails_the_call() {
        let event = Event::builder()
            .kind(kind::ACCESS_GRANTED)
            .door("Lobby")
            .attribute("floor", "roof")
            .build();
        assert_eq!(
            act(event).result,
            Err(Error::Failed("floor `roof` is not a floor number".into()))
        );
    }
}

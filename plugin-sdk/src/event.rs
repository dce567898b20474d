//! Conveniences on the generated [`Event`] record.

use crate::{Attribute, Event};

impl Event {
    /// The door's name, if the vendor sent one.
    pub fn door_name(&self) -> Option<&str> {
        self.door.as_ref()?.name.as_deref()
    }

    /// The door's vendor id, if the vendor sent one.
    pub fn door_id(&self) -> Option<&str> {
        self.door.as_ref()?.id.as_deref()
    }

    /// The actor's name, if the vendor sent one and this plugin may see it.
    pub fn actor_name(&self) -> Option<&str> {
        self.actor.as_ref()?.name.as_deref()
    }

    /// Whether the event's normalized kind matches `pattern`: an exact kind
    /// (`"door.forced"`), a family (`"door.*"`), or `"*"`.
    pub fn is(&self, pattern: &str) -> bool {
        crate::kind::matches(pattern, &self.kind)
    }

    /// The value of attribute `key`, if set.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|a| a.key == key).map(|a| a.value.as_str())
    }

    /// Set attribute `key`, replacing an earlier value.
    pub fn set_attribute(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        match self.attributes.iter_mut().find(|a| a.key == key) {
            Some(existing) => existing.value = value,
            None => self.attributes.push(Attribute { key, value }),
        }
    }
}

//! The normalized event: the WIT record every vendor's payload becomes, plus
//! the list of normalized kinds.

pub use crate::wit::types::{Actor, Attribute, Credential, Device, Door, Event};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The normalized kinds the vendor mappings produce. Plugins see them as
/// strings (`Kind::AccessGranted.as_str() == "access.granted"`), so adding one
/// does not change the WIT contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `access.granted`: Someone was let in.
    AccessGranted,
    /// `access.denied`: Someone was refused; the vendor's reason is kept in attribute `reason`.
    AccessDenied,
    /// `access.duress`: A duress credential was used.
    AccessDuress,
    /// `door.unlocked`: The door was unlocked (remotely, by button, schedule or mode).
    DoorUnlocked,
    /// `door.locked`: The door was locked.
    DoorLocked,
    /// `door.opened`: The door position sensor reports open.
    DoorOpened,
    /// `door.closed`: The door position sensor reports closed.
    DoorClosed,
    /// `door.forced`: Opened without an unlock.
    DoorForced,
    /// `door.held-open`: Left open too long.
    DoorHeldOpen,
    /// `door.tailgating`: More people went through than were let in.
    DoorTailgating,
    /// `door.alarm-cleared`: A forced or held-open alarm ended.
    DoorAlarmCleared,
    /// `door.mode-changed`: A door mode (auto-open, forced open/closed, override) changed.
    DoorModeChanged,
    /// `doorbell.ring`: A visitor rang.
    DoorbellRing,
    /// `doorbell.ended`: The ring was answered, declined, cancelled or timed out.
    DoorbellEnded,
    /// `emergency.started`: Lockdown, evacuation or fire alarm began.
    EmergencyStarted,
    /// `emergency.ended`: It ended.
    EmergencyEnded,
    /// `device.online`: A reader, panel or controller came (back) online.
    DeviceOnline,
    /// `device.offline`: It went offline.
    DeviceOffline,
    /// `device.tamper`: Tamper detected.
    DeviceTamper,
    /// `device.battery-low`: Battery low.
    DeviceBatteryLow,
    /// `device.status`: Any other device health or state report.
    DeviceStatus,
    /// `device.error`: The device reported an error.
    DeviceError,
    /// `lift.called`: A lift was called or floors released.
    LiftCalled,
    /// `lift.failed`: A lift call failed.
    LiftFailed,
    /// `admin.login`: Someone logged in to the system.
    AdminLogin,
    /// `admin.login-failed`: A login failed.
    AdminLoginFailed,
    /// `config.changed`: People, credentials, doors, devices or permissions changed.
    ConfigChanged,
    /// `visitor.changed`: A visitor's status changed.
    VisitorChanged,
    /// `source.silent`: The host heard nothing from a source (or a door) for its `silent_after`.
    SourceSilent,
    /// `source.back`: A silent source (or door) sent an event again.
    SourceBack,
    /// `other`: Anything without a mapping; the raw payload says what.
    Other,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::AccessGranted => "access.granted",
            Kind::AccessDenied => "access.denied",
            Kind::AccessDuress => "access.duress",
            Kind::DoorUnlocked => "door.unlocked",
            Kind::DoorLocked => "door.locked",
            Kind::DoorOpened => "door.opened",
            Kind::DoorClosed => "door.closed",
            Kind::DoorForced => "door.forced",
            Kind::DoorHeldOpen => "door.held-open",
            Kind::DoorTailgating => "door.tailgating",
            Kind::DoorAlarmCleared => "door.alarm-cleared",
            Kind::DoorModeChanged => "door.mode-changed",
            Kind::DoorbellRing => "doorbell.ring",
            Kind::DoorbellEnded => "doorbell.ended",
            Kind::EmergencyStarted => "emergency.started",
            Kind::EmergencyEnded => "emergency.ended",
            Kind::DeviceOnline => "device.online",
            Kind::DeviceOffline => "device.offline",
            Kind::DeviceTamper => "device.tamper",
            Kind::DeviceBatteryLow => "device.battery-low",
            Kind::DeviceStatus => "device.status",
            Kind::DeviceError => "device.error",
            Kind::LiftCalled => "lift.called",
            Kind::LiftFailed => "lift.failed",
            Kind::AdminLogin => "admin.login",
            Kind::AdminLoginFailed => "admin.login-failed",
            Kind::ConfigChanged => "config.changed",
            Kind::VisitorChanged => "visitor.changed",
            Kind::SourceSilent => "source.silent",
            Kind::SourceBack => "source.back",
            Kind::Other => "other",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key event ids are derived with, when the vendor sends no id of its
/// own. Derived ids are keyed so that they say nothing about what they are
/// derived from: the body, or the vendor's fields, hold PINs and card
/// numbers that a plugin cleared only to a higher secrecy level must not
/// recover by hashing guesses. Kept in the data folder (see
/// [`crate::store`]), so an event gets the same id across restarts and
/// vendor retries.
#[derive(Clone)]
pub struct IdKey([u8; 32]);

impl IdKey {
    pub const fn new(bytes: [u8; 32]) -> IdKey {
        IdKey(bytes)
    }

    /// A fresh key from the operating system's random source.
    pub fn random() -> IdKey {
        let mut bytes = [0; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source is available");
        IdKey(bytes)
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The id of an event known by `parts` (its body, or the vendor's
    /// fields that identify it): 32 hex digits of HMAC-SHA256, each part
    /// length-prefixed so that different splits never collide.
    pub fn derive(&self, parts: &[&[u8]]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

impl std::fmt::Debug for IdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdKey([redacted])")
    }
}

/// What every event has, however the vendor shapes the rest.
pub struct Head<'a> {
    pub source: &'a str,
    pub id: String,
    pub vendor: &'a str,
    pub vendor_event_type: &'a str,
    pub kind: Kind,
    pub occurred_at: i64,
    pub received_at: i64,
    /// The vendor's body, as received.
    pub raw: &'a [u8],
}

impl Event {
    /// A new event with the fields every vendor mapping fills in; the
    /// mapping adds door, actor, credential and device.
    pub fn new(head: Head<'_>) -> Event {
        Event {
            id: head.id,
            source: head.source.to_string(),
            vendor: head.vendor.to_string(),
            vendor_event_type: head.vendor_event_type.to_string(),
            kind: head.kind.as_str().to_string(),
            occurred_at: head.occurred_at,
            received_at: head.received_at,
            door: None,
            actor: None,
            credential: None,
            device: None,
            attributes: Vec::new(),
            // Bodies that parsed as JSON are UTF-8 already: checked, not
            // rebuilt character by character.
            raw: match std::str::from_utf8(head.raw) {
                Ok(text) => text.to_owned(),
                Err(_) => String::from_utf8_lossy(head.raw).into_owned(),
            },
        }
    }

    /// Events of one door are processed in order, and so are their commands to
    /// each sink: the key is the door's name (what `events list` shows) or id,
    /// else the device's. Two doors of one name merely share a lane.
    pub fn lane(&self) -> String {
        let door = self.door.as_ref().and_then(|d| d.name.as_ref().or(d.id.as_ref()));
        let device = self.device.as_ref().and_then(|d| d.name.as_ref().or(d.id.as_ref()));
        door.or(device).cloned().unwrap_or_default()
    }

    /// Add an attribute.
    pub fn attr(&mut self, key: &str, value: impl Into<String>) {
        self.attributes.push(Attribute {
            key: key.to_string(),
            value: value.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_depend_on_the_key_and_on_every_part() {
        let (a, b) = (IdKey::new([1; 32]), IdKey::new([2; 32]));
        let id = a.derive(&[b"door", b"4711"]);
        assert_eq!(id.len(), 32);
        assert_eq!(id, a.derive(&[b"door", b"4711"]), "stable for one key");
        assert_ne!(id, b.derive(&[b"door", b"4711"]), "another key, another id");
        assert_ne!(id, a.derive(&[b"door4", b"711"]), "parts do not run together");
        assert_eq!(format!("{a:?}"), "IdKey([redacted])");
    }
}

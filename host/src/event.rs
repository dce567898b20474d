//! The normalized event: the WIT record every vendor's payload becomes, plus
//! the list of normalized kinds.

pub use crate::wit::types::{Actor, Attribute, Credential, Device, Door, Event};

use sha2::{Digest, Sha256};

/// The normalized kinds the vendor mappings produce. Plugins see them as
/// strings (`Kind::AccessGranted.as_str() == "access.granted"`), so adding one
/// does not change the WIT contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AccessGranted,
    AccessDenied,
    DoorUnlocked,
    DoorLocked,
    DoorOpened,
    DoorClosed,
    DoorForced,
    DoorHeldOpen,
    DoorbellRing,
    DoorbellEnded,
    EmergencyStarted,
    EmergencyEnded,
    DeviceStatus,
    Other,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::AccessGranted => "access.granted",
            Kind::AccessDenied => "access.denied",
            Kind::DoorUnlocked => "door.unlocked",
            Kind::DoorLocked => "door.locked",
            Kind::DoorOpened => "door.opened",
            Kind::DoorClosed => "door.closed",
            Kind::DoorForced => "door.forced",
            Kind::DoorHeldOpen => "door.held-open",
            Kind::DoorbellRing => "doorbell.ring",
            Kind::DoorbellEnded => "doorbell.ended",
            Kind::EmergencyStarted => "emergency.started",
            Kind::EmergencyEnded => "emergency.ended",
            Kind::DeviceStatus => "device.status",
            Kind::Other => "other",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The event id derived from the body: a retried delivery of the same body
/// gets the same id. Vendors with an event id of their own replace it.
pub fn body_id(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    hex::encode(&digest[..16])
}

impl Event {
    /// A new event for `request`, with the fields every vendor mapping fills
    /// in; the mapping adds door, actor, credential and device.
    pub fn new(
        request: &crate::vendors::Request<'_>,
        vendor: &str,
        vendor_event_type: &str,
        kind: Kind,
        occurred_at: i64,
    ) -> Event {
        Event {
            id: body_id(request.body),
            source: request.source.to_string(),
            vendor: vendor.to_string(),
            vendor_event_type: vendor_event_type.to_string(),
            kind: kind.as_str().to_string(),
            occurred_at,
            received_at: request.received_at,
            door: None,
            actor: None,
            credential: None,
            device: None,
            attributes: Vec::new(),
            raw: String::from_utf8_lossy(request.body).into_owned(),
        }
    }

    /// Add an attribute.
    pub fn attr(&mut self, key: &str, value: impl Into<String>) {
        self.attributes.push(Attribute {
            key: key.to_string(),
            value: value.into(),
        });
    }
}

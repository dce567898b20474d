//! The normalized event: the WIT record every vendor's payload becomes, plus
//! the list of normalized kinds.

pub use crate::wit::types::{Actor, Attribute, Credential, Device, Door, Event};

use sha2::{Digest, Sha256};

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

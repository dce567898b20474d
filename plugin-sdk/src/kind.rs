//! The normalized kinds an [`Event`](crate::Event) can have.
//!
//! Kinds are strings so that new ones can be added without breaking plugins;
//! these constants are the ones the host produces today.

/// Someone was let in.
pub const ACCESS_GRANTED: &str = "access.granted";
/// Someone was refused; the vendor's reason is kept in attribute `reason`.
pub const ACCESS_DENIED: &str = "access.denied";
/// A duress credential was used.
pub const ACCESS_DURESS: &str = "access.duress";
/// The door was unlocked (remotely, by button, schedule or mode).
pub const DOOR_UNLOCKED: &str = "door.unlocked";
/// The door was locked.
pub const DOOR_LOCKED: &str = "door.locked";
/// The door position sensor reports open.
pub const DOOR_OPENED: &str = "door.opened";
/// The door position sensor reports closed.
pub const DOOR_CLOSED: &str = "door.closed";
/// Opened without an unlock.
pub const DOOR_FORCED: &str = "door.forced";
/// Left open too long.
pub const DOOR_HELD_OPEN: &str = "door.held-open";
/// More people went through than were let in.
pub const DOOR_TAILGATING: &str = "door.tailgating";
/// A forced or held-open alarm ended.
pub const DOOR_ALARM_CLEARED: &str = "door.alarm-cleared";
/// A door mode (auto-open, forced open/closed, override) changed.
pub const DOOR_MODE_CHANGED: &str = "door.mode-changed";
/// A visitor rang.
pub const DOORBELL_RING: &str = "doorbell.ring";
/// The ring was answered, declined, cancelled or timed out.
pub const DOORBELL_ENDED: &str = "doorbell.ended";
/// Lockdown, evacuation or fire alarm began.
pub const EMERGENCY_STARTED: &str = "emergency.started";
/// It ended.
pub const EMERGENCY_ENDED: &str = "emergency.ended";
/// A reader, panel or controller came (back) online.
pub const DEVICE_ONLINE: &str = "device.online";
/// It went offline.
pub const DEVICE_OFFLINE: &str = "device.offline";
/// Tamper detected.
pub const DEVICE_TAMPER: &str = "device.tamper";
/// Battery low.
pub const DEVICE_BATTERY_LOW: &str = "device.battery-low";
/// Any other device health or state report.
pub const DEVICE_STATUS: &str = "device.status";
/// The device reported an error.
pub const DEVICE_ERROR: &str = "device.error";
/// A lift was called or floors released.
pub const LIFT_CALLED: &str = "lift.called";
/// A lift call failed.
pub const LIFT_FAILED: &str = "lift.failed";
/// Someone logged in to the system.
pub const ADMIN_LOGIN: &str = "admin.login";
/// A login failed.
pub const ADMIN_LOGIN_FAILED: &str = "admin.login-failed";
/// People, credentials, doors, devices or permissions changed.
pub const CONFIG_CHANGED: &str = "config.changed";
/// A visitor's status changed.
pub const VISITOR_CHANGED: &str = "visitor.changed";
/// Anything without a mapping; the raw payload says what.
pub const OTHER: &str = "other";

/// Whether `kind` matches `pattern`: equal, `"*"`, or a family such as
/// `"door.*"` (which matches `"door.opened"` but not `"doorbell.ring"`).
pub fn matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix(".*") {
        _ if pattern == "*" => true,
        Some(family) => kind.strip_prefix(family).is_some_and(|rest| rest.starts_with('.')),
        None => pattern == kind,
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn families_match_on_dot_boundaries() {
        assert!(matches("door.*", "door.opened"));
        assert!(matches("door.*", "door.held-open"));
        assert!(!matches("door.*", "doorbell.ring"));
        assert!(!matches("door.*", "door"));
        assert!(matches("*", "other"));
        assert!(matches("access.granted", "access.granted"));
        assert!(!matches("access.granted", "access.denied"));
    }
}

//! The normalized kinds an [`Event`](crate::Event) can have.
//!
//! Kinds are strings so that new ones can be added without breaking plugins;
//! these constants are the ones the host produces today.

pub const ACCESS_GRANTED: &str = "access.granted";
pub const ACCESS_DENIED: &str = "access.denied";
pub const DOOR_UNLOCKED: &str = "door.unlocked";
pub const DOOR_LOCKED: &str = "door.locked";
pub const DOOR_OPENED: &str = "door.opened";
pub const DOOR_CLOSED: &str = "door.closed";
pub const DOOR_FORCED: &str = "door.forced";
pub const DOOR_HELD_OPEN: &str = "door.held-open";
pub const DOORBELL_RING: &str = "doorbell.ring";
pub const DOORBELL_ENDED: &str = "doorbell.ended";
pub const EMERGENCY_STARTED: &str = "emergency.started";
pub const EMERGENCY_ENDED: &str = "emergency.ended";
pub const DEVICE_STATUS: &str = "device.status";
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

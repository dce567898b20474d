"""The normalized kinds an event can have (the ones the host produces today;
kinds are strings so that new ones can be added without breaking plugins)."""

ACCESS_GRANTED = "access.granted"
ACCESS_DENIED = "access.denied"
ACCESS_DURESS = "access.duress"
DOOR_UNLOCKED = "door.unlocked"
DOOR_LOCKED = "door.locked"
DOOR_OPENED = "door.opened"
DOOR_CLOSED = "door.closed"
DOOR_FORCED = "door.forced"
DOOR_HELD_OPEN = "door.held-open"
DOOR_TAILGATING = "door.tailgating"
DOOR_ALARM_CLEARED = "door.alarm-cleared"
DOOR_MODE_CHANGED = "door.mode-changed"
DOORBELL_RING = "doorbell.ring"
DOORBELL_ENDED = "doorbell.ended"
EMERGENCY_STARTED = "emergency.started"
EMERGENCY_ENDED = "emergency.ended"
DEVICE_ONLINE = "device.online"
DEVICE_OFFLINE = "device.offline"
DEVICE_TAMPER = "device.tamper"
DEVICE_BATTERY_LOW = "device.battery-low"
DEVICE_STATUS = "device.status"
DEVICE_ERROR = "device.error"
LIFT_CALLED = "lift.called"
LIFT_FAILED = "lift.failed"
ADMIN_LOGIN = "admin.login"
ADMIN_LOGIN_FAILED = "admin.login-failed"
CONFIG_CHANGED = "config.changed"
VISITOR_CHANGED = "visitor.changed"
OTHER = "other"


def matches(pattern: str, kind: str) -> bool:
    """Whether `kind` matches `pattern`: equal, "*", or a family such as
    "door.*" (which matches "door.opened" but not "doorbell.ring")."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        family = pattern[:-2]
        return kind.startswith(family) and kind[len(family) : len(family) + 1] == "."
    return pattern == kind

// The normalized kinds an event can have. Kinds are strings so that new
// ones can be added without breaking plugins; these are the ones the host
// produces today.

export const ACCESS_GRANTED = "access.granted";
export const ACCESS_DENIED = "access.denied";
export const ACCESS_DURESS = "access.duress";
export const DOOR_UNLOCKED = "door.unlocked";
export const DOOR_LOCKED = "door.locked";
export const DOOR_OPENED = "door.opened";
export const DOOR_CLOSED = "door.closed";
export const DOOR_FORCED = "door.forced";
export const DOOR_HELD_OPEN = "door.held-open";
export const DOOR_TAILGATING = "door.tailgating";
export const DOOR_ALARM_CLEARED = "door.alarm-cleared";
export const DOOR_MODE_CHANGED = "door.mode-changed";
export const DOORBELL_RING = "doorbell.ring";
export const DOORBELL_ENDED = "doorbell.ended";
export const EMERGENCY_STARTED = "emergency.started";
export const EMERGENCY_ENDED = "emergency.ended";
export const DEVICE_ONLINE = "device.online";
export const DEVICE_OFFLINE = "device.offline";
export const DEVICE_TAMPER = "device.tamper";
export const DEVICE_BATTERY_LOW = "device.battery-low";
export const DEVICE_STATUS = "device.status";
export const DEVICE_ERROR = "device.error";
export const LIFT_CALLED = "lift.called";
export const LIFT_FAILED = "lift.failed";
export const ADMIN_LOGIN = "admin.login";
export const ADMIN_LOGIN_FAILED = "admin.login-failed";
export const CONFIG_CHANGED = "config.changed";
export const VISITOR_CHANGED = "visitor.changed";
export const OTHER = "other";

/** Whether `kind` matches `pattern`: equal, "*", or a family such as
 * "door.*" (which matches "door.opened" but not "doorbell.ring"). */
export function matches(pattern: string, kind: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith(".*")) {
    const family = pattern.slice(0, -2);
    return kind.startsWith(family) && kind[family.length] === ".";
  }
  return pattern === kind;
}

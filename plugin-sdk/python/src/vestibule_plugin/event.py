"""The normalized event, as plugins see it: the WIT record's fields, and a
few helpers."""

import json
from dataclasses import dataclass, field
from typing import Any, List, Optional

from . import kind as kinds


@dataclass
class Door:
    id: Optional[str] = None
    name: Optional[str] = None
    location: Optional[str] = None


@dataclass
class Actor:
    """`name`, `email` and `phone` are personal data: a plugin cleared only
    to secrecy level 2 or lower sees them removed."""

    id: Optional[str] = None
    name: Optional[str] = None
    email: Optional[str] = None
    phone: Optional[str] = None
    kind: Optional[str] = None


@dataclass
class Credential:
    method: str = ""
    value: Optional[str] = None


@dataclass
class Device:
    id: Optional[str] = None
    name: Optional[str] = None
    model: Optional[str] = None


@dataclass
class Attribute:
    key: str
    value: str


@dataclass
class Event:
    """One access-control event, the same shape for every vendor. Times are
    milliseconds since the epoch, UTC."""

    id: str = "evt-1"
    source: str = "test"
    vendor: str = "test"
    vendor_event_type: str = "test"
    kind: str = kinds.ACCESS_GRANTED
    occurred_at: int = 1_767_225_600_000
    received_at: int = 1_767_225_600_000
    door: Optional[Door] = None
    actor: Optional[Actor] = None
    credential: Optional[Credential] = None
    device: Optional[Device] = None
    attributes: List[Attribute] = field(default_factory=list)
    raw: str = "{}"

    def is_kind(self, pattern: str) -> bool:
        """Whether the kind is `pattern`: equal, "*", or a family ("door.*"
        matches "door.opened", not "doorbell.ring")."""
        return kinds.matches(pattern, self.kind)

    def attribute(self, key: str) -> Optional[str]:
        """The first attribute named `key`."""
        return next((a.value for a in self.attributes if a.key == key), None)

    def set_attribute(self, key: str, value: str) -> None:
        """Set attribute `key`, replacing the first of that name or adding it."""
        for a in self.attributes:
            if a.key == key:
                a.value = value
                return
        self.attributes.append(Attribute(key, value))

    def json(self) -> Any:
        """The vendor's body parsed; None where it is not JSON."""
        try:
            return json.loads(self.raw)
        except ValueError:
            return None

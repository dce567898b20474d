"""Write Vestibule plugins in Python. A plugin is one handler of its role:

    from vestibule_plugin import filter, keep, drop

    @filter(config={"door": "Front Door"})
    def plugin(event, config):
        return keep() if event.door and event.door.name == config["door"] else drop(f"not {config['door']}")

`vestibule-plugin build` makes the module a WebAssembly component the host
loads; `vestibule-plugin test` runs its tests with pytest and a fake host.
"""

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Union

from . import _host, kind
from .config import ConfigError, duration_ms
from .event import Actor, Attribute, Credential, Device, Door, Event

__all__ = [
    "Actor", "Attribute", "ConfigError", "Credential", "Device", "Door", "Event", "Plugin",
    "action", "drop", "duration_ms", "enricher", "filter", "keep", "kind", "log", "send",
]


@dataclass(frozen=True)
class Keep:
    pass


@dataclass(frozen=True)
class Drop:
    reason: str


Verdict = Union[Keep, Drop]


def keep() -> Keep:
    """The event goes on."""
    return Keep()


def drop(reason: str) -> Drop:
    """The event stops here; `reason` is logged."""
    return Drop(str(reason))


@dataclass
class Plugin:
    """A plugin of one role: what a decorator makes of its handler."""

    world: str
    handle: Callable[[Event, Dict[str, Any]], Any]
    config: Optional[Dict[str, Any]] = None
    required: List[str] = field(default_factory=list)
    check: Optional[Callable[[Dict[str, Any]], Optional[str]]] = None


def _role(world: str):
    def decorator(config=None, required=(), check=None):
        """`config`: every key of the plugin's `[plugins.config]` with its
        default (a key not there is refused, a value of another type too;
        a default of None takes any). `required`: keys without a default.
        `check(config)`: returns (or raises) what else is wrong."""

        def wrap(handle):
            return Plugin(world, handle, config, list(required), check)

        return wrap

    return decorator


filter = _role("filter")
"""Decides whether an event goes on: the handler returns keep() or drop(reason)."""
enricher = _role("enricher")
"""Fills in the event or adds attributes: the handler changes it and returns it (or None)."""
action = _role("action")
"""Acts on an event by sending commands to the sinks it may use."""


class SendRefused(Exception):
    """The host refused a command (a sink this plugin may not use, too many)."""


def send(sink: str, body: Any, headers: Optional[Dict[str, str]] = None, after_ms: Optional[int] = None) -> None:
    """Ask the host to deliver `body` to the sink named `sink` once the
    handler returns: a str as it is, anything else as JSON. `after_ms`: this
    long after the event was received (at most a day); a later delayed
    command from this plugin to the same sink about the same door replaces
    it if it is not due yet."""
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    pairs = [(str(k), str(v)) for k, v in (headers or {}).items()]
    _host.sender()(sink, text, pairs, 0 if after_ms is None else int(after_ms))


class _Log:
    """Structured log lines, attributed to this plugin by the host."""

    def _at(self, level: str, message: str, fields: Optional[Dict[str, Any]]) -> None:
        _host.current().log(level, str(message), [(str(k), str(v)) for k, v in (fields or {}).items()])

    def trace(self, message: str, fields: Optional[Dict[str, Any]] = None) -> None:
        self._at("trace", message, fields)

    def debug(self, message: str, fields: Optional[Dict[str, Any]] = None) -> None:
        self._at("debug", message, fields)

    def info(self, message: str, fields: Optional[Dict[str, Any]] = None) -> None:
        self._at("info", message, fields)

    def warn(self, message: str, fields: Optional[Dict[str, Any]] = None) -> None:
        self._at("warn", message, fields)

    def error(self, message: str, fields: Optional[Dict[str, Any]] = None) -> None:
        self._at("error", message, fields)


log = _Log()

"""Testing a plugin natively, with pytest: a FakeHost gives the plugin its
config and records what it logs and sends, through the very code the
component runs (config checks, errors and all).

    host = FakeHost(config={"doors": ["Lobby"]})
    run = host.call(plugin, Event(kind=kind.ACCESS_GRANTED, door=Door(name="Lobby")))
    assert run.result == keep()
"""

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from . import Plugin, SendRefused, _host
from .event import Event
from .run import call, check


@dataclass
class Logged:
    level: str
    message: str
    fields: Dict[str, str]


@dataclass
class Sent:
    sink: str
    body: str
    headers: Dict[str, str]
    #: How long after the event it is due (ms; 0 for now).
    after_ms: int


@dataclass
class Run:
    """What the plugin did with one event: its result, or the error the host
    would be told ("config" or "failed", and the message)."""

    result: Any = None
    error: Optional[tuple] = None
    logs: List[Logged] = field(default_factory=list)
    commands: List[Sent] = field(default_factory=list)


class FakeHost:
    def __init__(self, config: Optional[Dict[str, Any]] = None, sinks: Optional[List[str]] = None):
        self.config = config or {}
        #: The sinks the plugin may send to; any when None.
        self.sinks = sinks

    def call(self, plugin: Plugin, event: Event) -> Run:
        run = Run()
        self._install(run)
        status, value = call(plugin, event)
        if status == "ok":
            run.result = value
        else:
            run.error = (status, value)
        return run

    def check_config(self, plugin: Plugin) -> Optional[str]:
        """What the host is told when it asks whether the config fits: None,
        or the message."""
        self._install(Run())
        return check(plugin)

    def _install(self, run: Run) -> None:
        text = json.dumps(self.config)

        def send(sink, body, headers, after_ms):
            if self.sinks is not None and sink not in self.sinks:
                raise SendRefused(f"sink `{sink}` is not one this plugin may use")
            run.commands.append(Sent(sink, body, dict(headers), after_ms))

        _host.install(
            _host.Host(
                config=lambda: text,
                log=lambda level, message, fields: run.logs.append(Logged(level, message, dict(fields))),
                send=send,
            )
        )

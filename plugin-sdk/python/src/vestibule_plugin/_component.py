"""What the component exports, made from the plugin: the role's function
and `check_config`, turning the plugin's outcome into WIT. Imported only
inside the component, where `wit_world` exists."""

import types as pytypes
from typing import Optional

from componentize_py_types import Err

import wit_world
from wit_world.imports import host, types

from . import Drop, Plugin, SendRefused, _host
from .event import Actor, Attribute, Credential, Device, Door, Event
from .run import call, check

_LEVELS = {
    "trace": host.Level.TRACE,
    "debug": host.Level.DEBUG,
    "info": host.Level.INFO,
    "warn": host.Level.WARN,
    "error": host.Level.ERROR,
}


def _from_wit(e: "types.Event") -> Event:
    def part(cls, value):
        return None if value is None else cls(**vars(value))

    return Event(
        id=e.id,
        source=e.source,
        vendor=e.vendor,
        vendor_event_type=e.vendor_event_type,
        kind=e.kind,
        occurred_at=e.occurred_at,
        received_at=e.received_at,
        door=part(Door, e.door),
        actor=part(Actor, e.actor),
        credential=part(Credential, e.credential),
        device=part(Device, e.device),
        attributes=[Attribute(a.key, a.value) for a in e.attributes],
        raw=e.raw,
    )


def _to_wit(e: Event) -> "types.Event":
    def part(cls, value):
        return None if value is None else cls(**vars(value))

    return types.Event(
        id=str(e.id),
        source=str(e.source),
        vendor=str(e.vendor),
        vendor_event_type=str(e.vendor_event_type),
        kind=str(e.kind),
        occurred_at=int(e.occurred_at),
        received_at=int(e.received_at),
        door=part(types.Door, e.door),
        actor=part(types.Actor, e.actor),
        credential=part(types.Credential, e.credential),
        device=part(types.Device, e.device),
        attributes=[types.Attribute(str(a.key), str(a.value)) for a in e.attributes],
        raw=str(e.raw),
    )


def _sender():
    from wit_world.imports import sinks

    def send(sink: str, body: str, headers, after_ms: int) -> None:
        command = sinks.Command(sink, body, headers)
        try:
            if after_ms:
                sinks.send_later(command, after_ms)
            else:
                sinks.send(command)
        except Err as e:
            refused = e.value
            if isinstance(refused, sinks.SendError_UnknownSink):
                raise SendRefused(f"sink `{refused.value}` is not one this plugin may use") from None
            raise SendRefused("too many commands for one event") from None

    return send


def _the_plugin(module: pytypes.ModuleType, world: str) -> Plugin:
    found = [v for v in vars(module).values() if isinstance(v, Plugin)]
    if len(found) != 1:
        raise RuntimeError(f"{module.__name__}: expected one plugin (a function under @{world}(…)), found {len(found)}")
    if found[0].world != world:
        raise RuntimeError(f"{module.__name__}: the plugin is a {found[0].world}, but it is built as a {world}")
    return found[0]


def world_for(world: str, module: pytypes.ModuleType):
    """The `WitWorld` class componentize-py exports, for the plugin in `module`."""
    plugin = _the_plugin(module, world)
    _host.install(
        _host.Host(
            config=host.config,
            log=lambda level, message, fields: host.log(_LEVELS[level], message, fields),
            send=_sender() if world == "action" else None,
        )
    )

    def outcome(event: "types.Event"):
        status, value = call(plugin, _from_wit(event))
        if status == "config":
            raise Err(types.Error_Config(value))
        if status == "failed":
            raise Err(types.Error_Failed(value))
        return value

    class WitWorld:
        def check_config(self) -> None:
            problem: Optional[str] = check(plugin)
            if problem is not None:
                raise Err(problem)

    if world == "filter":

        def filter(self, event):
            verdict = outcome(event)
            return wit_world.Verdict_Drop(verdict.reason) if isinstance(verdict, Drop) else wit_world.Verdict_Keep()

        WitWorld.filter = filter
    elif world == "enricher":
        WitWorld.enrich = lambda self, event: _to_wit(outcome(event))
    else:
        WitWorld.act = lambda self, event: outcome(event)
    return WitWorld

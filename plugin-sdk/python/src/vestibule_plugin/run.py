"""Calling a plugin as the host does, in plain Python values: its config
read and checked, its handler called, any exception turned into the WIT
error with its message. The component and the fake host both use this."""

from typing import Any, Optional, Tuple

from . import Drop, Keep, Plugin, _host
from .config import ConfigError, read
from .event import Event


def config_of(plugin: Plugin):
    return read(_host.current().config(), plugin.config, plugin.required, plugin.check)


def message(e: BaseException) -> str:
    return str(e) or type(e).__name__


def call(plugin: Plugin, event: Event) -> Tuple[str, Any]:
    """("ok", result) or ("config" | "failed", message)."""
    try:
        config = config_of(plugin)
        result = plugin.handle(event, config)
        if plugin.world == "filter" and not isinstance(result, (Keep, Drop)):
            raise TypeError("a filter returns keep() or drop(reason)")
        if plugin.world == "enricher":
            result = event if result is None else result
            if not isinstance(result, Event):
                raise TypeError("an enricher returns the event (or None)")
        return ("ok", result if plugin.world != "action" else None)
    except ConfigError as e:
        return ("config", message(e))
    except Exception as e:  # anything a plugin raises is its failure, with its message
        return ("failed", message(e))


def check(plugin: Plugin) -> Optional[str]:
    """None, or what is wrong with the config (without the table's name)."""
    try:
        config_of(plugin)
        return None
    except ConfigError as e:
        return message(e).removeprefix("[plugins.config]: ")

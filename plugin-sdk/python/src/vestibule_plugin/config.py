"""Reading a plugin's `[plugins.config]` (the host hands it over as JSON)
against what the plugin declared: its keys with their defaults, those it
requires, and a check of its own. Messages read like the Rust SDK's."""

import copy
import json
from typing import Any, Callable, Dict, Iterable, Optional


class ConfigError(Exception):
    """A config the plugin cannot work with: the host refuses the plugin."""


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a table"


def read(
    text: str,
    defaults: Optional[Dict[str, Any]],
    required: Iterable[str],
    check: Optional[Callable[[Dict[str, Any]], Optional[str]]],
) -> Dict[str, Any]:
    """The config, read and checked; raises ConfigError."""
    try:
        given = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"[plugins.config]: not JSON: {e}") from None
    if not isinstance(given, dict):
        raise ConfigError("[plugins.config]: expected a table")
    config = given
    if defaults is not None:
        known = list(defaults)
        for key, value in given.items():
            if key not in defaults:
                expected = ", ".join(f"`{k}`" for k in known)
                raise ConfigError(
                    f"[plugins.config]: unknown field `{key}`, "
                    + (f"expected one of {expected}" if known else "expected none")
                )
            want = defaults[key]
            if want is not None and _kind_of(want) != _kind_of(value):
                raise ConfigError(f"[plugins.config]: `{key}` should be {_kind_of(want)}, not {_kind_of(value)}")
        # Copied: a handler that changes its config cannot change the next call's.
        config = {**copy.deepcopy(defaults), **given}
    for key in required:
        if key not in given:
            raise ConfigError(f"[plugins.config]: missing field `{key}`")
    if check is not None:
        try:
            problem = check(config)
        except Exception as e:  # the plugin's own words, whatever it raised
            problem = str(e)
        if problem:
            raise ConfigError(f"[plugins.config]: {problem}")
    return config


# Durations as people write them in config files, read as the host reads them.
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_MAX_MS = 3650 * 86_400_000


def duration_ms(text: str) -> int:
    """`text` ("50ms", "5s", "2m", "1h", "7d") in milliseconds; raises
    ValueError saying what is wrong."""
    stripped = str(text).strip()
    digits = len(stripped) - len(stripped.lstrip("0123456789"))
    unit = _UNITS.get(stripped[digits:].strip())
    if digits == 0 or unit is None:
        raise ValueError(f'expected a duration such as "50ms", "5s", "2m", "1h" or "7d", got {json.dumps(text)}')
    ms = int(stripped[:digits]) * unit
    if ms > _MAX_MS:
        raise ValueError(f'{json.dumps(text)} is too long: at most "3650d" (ten years)')
    return ms

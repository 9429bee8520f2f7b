"""The workspace's settings: defaults for every tunable, overlaid with ``config.json``.

Pure data (no I/O): :mod:`agentcoord.workspace` reads the file; the domain areas are built from a
:class:`Config` and read their tunables through it.
"""

from __future__ import annotations

import math

from ..errors import InvalidInput
from .validate import MAX_DURATION, MAX_INT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

#: Defaults for every tunable; ``config.json`` overrides any of them.
DEFAULTS: dict[str, Any] = {
    "backend": "markdown",
    "url": None,
    "lease_seconds": 600,
    "max_attempts": 3,
    "keep_events": 100,
    "durable": True,
    "lock_timeout": 10.0,
    # Redis: how long transient connection errors are retried before exit 5.
    "retry_seconds": 2.0,
    "breaker_threshold": 3,
    "breaker_cooldown": 300,
    # Monitor classes (timer seed, "Monitoring Thresholds"): silence below each bound; "gone":
    # the silence after which an agent that holds no work is Gone rather than Idle (24 h).
    "monitor": {"normal": 60, "acceptable": 120, "concerning": 180, "stuck": 300, "gone": 86400},
    "context_max_bytes": 256 * 1024,
    # Seconds two machines' clocks may disagree before a time from "the future" (a lease ending
    # further ahead than it lasts, a sign of life not yet due) is treated as a clock's fault.
    "clock_skew": 60,
    # SPEC section 11: claim/assign by an agent that was never registered registers it instead
    # of being refused (exit 3).
    "auto_register": False,
    # SPEC section 12: the PostToolUse hook renews an agent's leases at most this often (and at
    # least every quarter of lease_seconds); a session's end gives back what its agent holds.
    "session_beat_seconds": 30,
    "release_on_session_end": True,
}


BACKENDS = ("markdown", "redis")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
MONITOR_BOUNDS = ("normal", "acceptable", "concerning", "stuck")
#: The ``monitor`` table's keys: the four class bounds, ``gone`` (an agent without work is Gone
#: after this much silence) and ``git`` (false: no commit signs).
MONITOR_KEYS = (*MONITOR_BOUNDS, "gone", "git")
#: Largest whole number and longest duration a setting may hold: as for what users give.
_MAX_INT = MAX_INT
_MAX_SECONDS = MAX_DURATION

#: key -> (kind, minimum, whether the minimum itself is allowed). Kinds: "seconds" (a finite
#: number, at most 100 years), "int" (a whole number, at most 2**53 - 1), "bool".
_RULES: dict[str, tuple[str, float, bool]] = {
    "lease_seconds": ("seconds", 0.001, True),  # as a task's own lease (MIN_LEASE)
    "max_attempts": ("int", 1, True),
    "keep_events": ("int", 1, True),
    "durable": ("bool", 0, True),
    "lock_timeout": ("seconds", 0.0, False),
    "retry_seconds": ("seconds", 0.0, True),
    "breaker_threshold": ("int", 1, True),
    "breaker_cooldown": ("seconds", 0.0, True),
    "context_max_bytes": ("int", 1, True),
    "clock_skew": ("seconds", 0.0, True),
    "auto_register": ("bool", 0, True),
    "session_beat_seconds": ("seconds", 0.0, True),
    "release_on_session_end": ("bool", 0, True),
}


class ConfigProblem(InvalidInput):
    """A ``config.json`` value that is not allowed: ``key`` (dotted for the ``monitor`` table)
    and ``reason``. :mod:`agentcoord.workspace` reports it as corrupt data (exit 6) naming the
    file and the key's line."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"config key {key!r} {reason}", key=key)
        self.key = key
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.reason))


def check(values: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigProblem` for the first setting of ``values`` (a parsed
    ``config.json``) that is unknown, of the wrong type or out of range, or for a ``backend``
    and ``url`` that do not go together. Keys left out take their defaults."""
    for key, value in values.items():
        if key not in DEFAULTS:
            raise ConfigProblem(key, f"is not a setting{_did_you_mean(key, DEFAULTS)}")
        if key == "backend":
            if value not in BACKENDS:
                raise ConfigProblem(
                    key, f"must be {' or '.join(map(repr, BACKENDS))}, not {_shown(value)}"
                )
        elif key == "url":
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigProblem(key, f"must be a Redis URL or null, not {_shown(value)}")
            if isinstance(value, str) and not value.startswith(REDIS_SCHEMES):
                # Only the scheme is shown: the rest may hold a password.
                scheme = f"{value.split('://', 1)[0][:20]}://..." if "://" in value else "no scheme"
                raise ConfigProblem(
                    key, f"must start with {', '.join(REDIS_SCHEMES)}, not {scheme}"
                )
        elif key == "monitor":
            _check_monitor(value)
        else:
            kind, minimum, inclusive = _RULES[key]
            _check_value(key, value, kind, minimum, inclusive)
    backend = values.get("backend", DEFAULTS["backend"])
    url = values.get("url")
    if backend == "redis" and url is None:
        raise ConfigProblem("backend", "is 'redis' but there is no 'url' (the Redis URL to use)")
    if backend != "redis" and url is not None:
        raise ConfigProblem(
            "url", f'is set but \'backend\' is {backend!r}: a URL needs "backend": "redis"'
        )


def _check_monitor(table: object) -> None:
    if not isinstance(table, dict):
        raise ConfigProblem("monitor", f"must be an object {{...}}, not {_shown(table)}")
    for key, value in table.items():
        if key not in MONITOR_KEYS:
            raise ConfigProblem(
                f"monitor.{key}", f"is not a setting{_did_you_mean(str(key), MONITOR_KEYS)}"
            )
        _check_value(f"monitor.{key}", value, "bool" if key == "git" else "seconds", 0.0, True)
    merged = {**DEFAULTS["monitor"], **table}
    bounds = [float(merged[k]) for k in MONITOR_BOUNDS]
    if bounds != sorted(bounds):
        shown = ", ".join(f"{k}={v:g}" for k, v in zip(MONITOR_BOUNDS, bounds, strict=True))
        raise ConfigProblem(
            "monitor", f"has class bounds that decrease ({shown}): each must be >= the one before"
        )


def _check_value(key: str, value: object, kind: str, minimum: float, inclusive: bool) -> None:
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigProblem(key, f"must be true or false, not {_shown(value)}")
        return
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigProblem(key, f"must be a whole number, not {_shown(value)}")
        if not minimum <= value <= _MAX_INT:
            raise ConfigProblem(
                key, f"must be a whole number from {minimum:g} to {_MAX_INT}, not {_shown(value)}"
            )
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigProblem(key, f"must be a number of seconds, not {_shown(value)}")
    low_ok = value >= minimum if inclusive else value > minimum
    # Compared before isfinite, which cannot take an int beyond any float; NaN fails low_ok.
    if not (low_ok and value <= _MAX_SECONDS and math.isfinite(value)):
        low = f">= {minimum:g}" if inclusive else f"more than {minimum:g}"
        raise ConfigProblem(
            key, f"must be a number of seconds {low} and at most 100 years, not {_shown(value)}"
        )


def _shown(value: object) -> str:
    import json

    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**60:
        return f"a number of {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _did_you_mean(key: str, known: Iterable[str]) -> str:
    from difflib import get_close_matches

    names = sorted(known)
    close = get_close_matches(key, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{hint}; known settings: {', '.join(names)}"


class Config:
    """The workspace's settings: :data:`DEFAULTS` overlaid with ``config.json``."""

    __slots__ = ("values",)

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        merged = dict(DEFAULTS)
        merged["monitor"] = dict(DEFAULTS["monitor"])
        for key, value in (values or {}).items():
            if key == "monitor" and isinstance(value, dict):
                merged["monitor"].update(value)
            else:
                merged[key] = value
        self.values = merged

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def float(self, key: str) -> float:
        value = self.values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"config {key!r} must be a number, not {value!r}")
        return float(value)

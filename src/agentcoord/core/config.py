"""The workspace's settings: defaults for every tunable, overlaid with ``config.json``.

Pure data (no I/O): :mod:`agentcoord.workspace` reads the file; the domain areas are built from a
:class:`Config` and read their tunables through it.
"""

from __future__ import annotations

from ..errors import InvalidInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
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
    # Monitor classes (timer seed, "Monitoring Thresholds"): silence below each bound.
    "monitor": {"normal": 60, "acceptable": 120, "concerning": 180, "stuck": 300},
    "context_max_bytes": 256 * 1024,
    # Seconds two machines' clocks may disagree before a time from "the future" (a lease ending
    # further ahead than it lasts, a sign of life not yet due) is treated as a clock's fault.
    "clock_skew": 60,
}


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

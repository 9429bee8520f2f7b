"""Checks of values users and agents supply, with messages that say what was expected."""

from __future__ import annotations

import math

from .errors import InvalidInput

MAX_TITLE = 300
MAX_TEXT = 4000


def text(value: str, what: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text")
    value = value.strip()
    if not value:
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidInput(f"{what} is {len(value)} characters; the limit is {limit}")
    return value


def number(value: float, what: str, *, minimum: float = 0.0, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"{what} must be a finite number, not {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else f">= {minimum:g}"
        raise InvalidInput(f"{what} must be {bound}, not {value:g}")
    return float(value)


def json_data(value: object, what: str) -> str:
    """``value`` as compact JSON text; :class:`InvalidInput` for anything JSON cannot hold
    faithfully (NaN, infinities, non-string keys' objects, nesting deep enough to overflow)."""
    import json

    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except RecursionError:
        raise InvalidInput(f"{what} is nested too deeply") from None
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} is not valid JSON data: {exc}") from None

"""Checks of what users and agents supply: names and ids (SPEC section 3), text, numbers and
JSON data, with messages that say what was expected.

Every name that becomes part of a file name or a Redis key goes through :func:`check_name` before
any file is touched, so ``..``, path separators and control characters can never reach the store.
"""

from __future__ import annotations

import math
import re

from ..errors import InvalidInput, InvalidName

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_NAME = re.compile(NAME_PATTERN)


#: Archive entries add a ``-YYYYmmddTHHMMSS[-N]`` suffix to a name reused after archiving.
_ARCHIVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def is_valid_name(value: str) -> bool:
    return _NAME.fullmatch(value) is not None


def is_valid_archive_name(value: str) -> bool:
    """A record name, or one with an archive suffix (up to 128 characters)."""
    return _ARCHIVE_NAME.fullmatch(value) is not None


def check_name(value: object, what: str = "name") -> str:
    """Return ``value`` if it is a valid name, else raise :class:`InvalidName` (exit 2)."""
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        shown = repr(value) if isinstance(value, str) else type(value).__name__
        if isinstance(value, str) and len(value) > 64:
            shown = repr(value[:40] + "...")
        raise InvalidName(
            f"invalid {what} {shown}: use 1-64 characters from A-Z a-z 0-9 . _ - "
            "starting with a letter or digit",
            field=what,
        )
    return value


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


def normalize_block(text: str) -> str:
    """The form free text is stored in: no leading or trailing blank lines."""
    return text.strip("\n")

"""Checks of what users and agents supply: names and ids (SPEC section 3), text, numbers, times
and JSON data, with messages that say what was expected.

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

#: Whole numbers from users (seqs, cursors, limits, counts, priorities, epochs) stay below 2**53:
#: Redis stream ids, Lua numbers and JSON readers hold integers exactly only up to there.
MAX_INT = 2**53 - 1
#: The latest time a record may hold: 9999-12-31T23:59:59Z (four-digit years render and parse
#: back; ``time.gmtime`` overflows not far beyond).
MAX_TIME = 253402300799.0
#: The longest duration a user may give (a lease, an ETA from now, a window, an interval): 100
#: years, so that now plus it is still a time a record can hold.
MAX_DURATION = 100 * 365 * 86400.0
MAX_DURATION_TEXT = "100 years (3153600000 seconds)"


def encodable(value: str, what: str) -> str:
    """``value`` if it can be stored as UTF-8, else :class:`InvalidInput` naming ``what``.

    Python hands undecodable bytes of a command line or file name over as lone surrogates
    (``\\udcff``); nothing can write them to a file or send them to Redis."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        raise InvalidInput(
            f"{what} is not valid text: character {exc.start + 1} is {bad!r}, which stands for "
            "bytes that are not UTF-8 (an undecodable command-line argument, say) and cannot be "
            "stored; give it as UTF-8",
            field=what,
        ) from None
    return value


def text(value: str, what: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text")
    encodable(value, what)
    value = value.strip()
    if not value:
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidInput(f"{what} is {len(value)} characters; the limit is {limit}")
    return value


#: What a one-line value (a title) must not hold: C0 controls (line breaks and tab included), DEL,
#: C1 controls (NEL U+0085 among them) and the Unicode line and paragraph separators.
_NOT_ONE_LINE = "[\x00-\x1f\x7f-\x9f\u2028\u2029]"


def one_line(value: str, what: str, limit: int = MAX_TITLE) -> str:
    """:func:`text` that must also be one line (SPEC section 16: a newline in a title is
    refused): :class:`InvalidInput` (exit 2) naming ``what`` and the first control character,
    line break, tab, DEL, C1 control or U+2028/U+2029 in it. Only spaces and tabs around it are
    trimmed: a line break or another control character is refused even at either end (``str.strip``
    would silently drop ``\x1c``-``\x1f``, NEL and U+2028 there). (Bidi and other format
    characters are allowed, and escaped wherever the value is shown: see
    :mod:`agentcoord.core.text`.)"""
    if isinstance(value, str):
        value = value.strip(" \t")
    value = text(value, what, limit) if not isinstance(value, str) or value.isprintable() else value
    if not value.isprintable():  # a cheap test first: False for every character refused
        found = re.search(_NOT_ONE_LINE, value)
        if found is not None:
            ch = found.group(0)
            kind = "a line break" if ch in "\n\r\x85\u2028\u2029" else "a control character"
            raise InvalidInput(
                f"{what} must be one line without control characters: character "
                f"{found.start() + 1} is {kind} ({ch!r})",
                field=what,
            )
        value = text(value, what, limit)  # the other rules (empty, length, encodable)
    return value


def number(value: float, what: str, *, minimum: float = 0.0, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{what} must be a finite number, not {value!r}", field=what)
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int beyond any float
        finite = False
    if not finite:
        raise InvalidInput(f"{what} must be a finite number, not {_shown(value)}", field=what)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else f">= {minimum:g}"
        raise InvalidInput(f"{what} must be {bound}, not {_shown(value)}", field=what)
    return float(value)


def whole(value: int, what: str, *, minimum: int = 0, maximum: int = MAX_INT) -> int:
    """``value`` if it is a whole number from ``minimum`` to ``maximum`` (at most
    :data:`MAX_INT`), else :class:`InvalidInput` naming ``what`` and the range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be a whole number, not {value!r}", field=what)
    if not minimum <= value <= maximum:
        raise InvalidInput(
            f"{what} must be a whole number from {minimum} to {maximum}, not {_shown(value)}",
            field=what,
        )
    return value


def seconds(value: float, what: str, *, minimum: float = 0.0, positive: bool = False) -> float:
    """A duration in seconds: finite, at least ``minimum`` (more than 0 if ``positive``) and at
    most :data:`MAX_DURATION`, else :class:`InvalidInput` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{what} must be a number of seconds, not {value!r}", field=what)
    try:
        ok = math.isfinite(value) and value >= minimum and (value > 0 or not positive)
    except OverflowError:
        ok = False
    if not ok or value > MAX_DURATION:
        low = "more than 0" if positive and minimum <= 0 else f"at least {minimum:g}"
        raise InvalidInput(
            f"{what} must be {low} and at most {MAX_DURATION_TEXT}, not {_shown(value)}",
            field=what,
        )
    return float(value)


def timestamp(value: float, what: str) -> float:
    """A time in POSIX seconds a record can hold: from 1970-01-01 to 9999-12-31T23:59:59Z."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{what} must be a time in POSIX seconds, not {value!r}", field=what)
    try:
        ok = math.isfinite(value) and 0 <= value <= MAX_TIME
    except OverflowError:
        ok = False
    if not ok:
        raise InvalidInput(
            f"{what} must be a time from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z "
            f"(0 to {MAX_TIME:.0f} POSIX seconds), not {_shown(value)}",
            field=what,
        )
    return float(value)


def _shown(value: object) -> str:
    """A number for a message: ``1e+300``, not three hundred digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) < 10**15:
            return str(value)
        try:
            return f"{float(value):g}"
        except OverflowError:
            return f"a number of {int(value.bit_length() * 0.30103) + 1} digits"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


def json_data(value: object, what: str) -> str:
    """``value`` as compact JSON text; :class:`InvalidInput` for anything JSON cannot hold
    faithfully (NaN, infinities, non-string keys' objects, nesting deep enough to overflow)."""
    import json

    try:
        dumped = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except RecursionError:
        raise InvalidInput(f"{what} is nested too deeply") from None
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} is not valid JSON data: {exc}") from None
    return encodable(dumped, what)


def normalize_block(text: str, what: str = "note") -> str:
    """The form free text is stored in: no leading or trailing blank lines. :class:`InvalidInput`
    for text that cannot be stored (see :func:`encodable`)."""
    return encodable(text, what).strip("\n")

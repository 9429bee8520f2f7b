"""Time: one clock for the whole domain, and the timestamp and duration formats of the seed files.

Timestamps are UTC ISO 8601 with second precision and a ``Z`` (``2025-10-12T14:30:00Z``), as in the
seed. Internally times are float POSIX seconds, so a fake clock in tests can move time without
sleeping.
"""

from __future__ import annotations

import math
import re
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    Clock = Callable[[], float]

system_clock = time.time

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"\s*(Z|z|UTC|[+-]\d{2}:?\d{2})?"
)


def iso(ts: float) -> str:
    """Format POSIX seconds as the seed's ``YYYY-MM-DDTHH:MM:SSZ`` (four-digit years always:
    ``strftime`` writes year 999 as ``999``, which nothing would parse back)."""
    t = time.gmtime(ts)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
        f"{t.tm_sec:02d}Z"
    )


def iso_ms(ts: float) -> str:
    """ISO 8601 UTC like :func:`iso`, plus ``.mmm`` when the time has a sub-second part (event
    times keep milliseconds)."""
    sec, ms = divmod(round(ts * 1000), 1000)
    base = iso(sec)[:-1]
    return f"{base}.{ms:03d}Z" if ms else f"{base}Z"


def round_ms(ts: float) -> float:
    """``ts`` rounded to the millisecond exactly as :func:`iso_ms` + :func:`parse_iso` give it
    back (same float operations), so a stored event time survives every backend's round trip."""
    sec, ms = divmod(round(ts * 1000), 1000)
    return float(sec) + ms / 1000 if ms else float(sec)


def stamp(ts: float) -> str:
    """The log-line format ``YYYY-MM-DD HH:MM:SS`` (UTC) used in Logs blocks and the timer file."""
    return iso(ts)[:-1].replace("T", " ")


def parse_iso(text: str) -> float:
    """Parse an ISO-like timestamp a person may have typed; naive times are taken as UTC.

    Raises ValueError on anything else, including impossible dates (2025-13-01, Feb 30).
    """
    m = _ISO.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a timestamp: {text!r}")
    y, mo, d, h, mi, s, frac, tz = m.groups()
    year, month, day = int(y), int(mo), int(d)
    hour, minute, second = int(h), int(mi), int(s or 0)
    if year < 1 or not (1 <= month <= 12 and 1 <= day <= _month_days(year, month)):
        raise ValueError(f"no such date: {text!r}")
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"no such time: {text!r}")
    value = float(_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)
    if frac:
        value += int(frac) / 10 ** len(frac)
    if tz and tz not in ("Z", "z", "UTC"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        value -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    if not FIRST_TIME <= value < LAST_TIME + 1:
        # 9999-12-31T23:30-01:00 is in year 10000 UTC: it would be written back with five digits.
        raise ValueError(f"outside years 0001-9999 in UTC: {text!r}")
    return value


# Date arithmetic by hand: ``datetime`` costs 1-3 ms of import on every CLI start.
def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def duration(seconds: float) -> str:
    """Render a duration the way the seed does: ``4h 30m``, ``45m``, ``12s``, ``2d 3h``."""
    s = max(0, round(seconds))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {s}s" if s and minutes < 10 else f"{minutes}m"
    return f"{s}s"


_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_DUR = re.compile(rf"\s*({_NUM})\s*(ms|s|m|h|d)?\s*", re.IGNORECASE)
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Parse ``90``, ``90s``, ``10m``, ``1h``, ``1h 30m``, ``1.5e-05s`` into seconds.
    Raises ValueError. (Callers decide whether a negative duration makes sense.)"""
    pos, total, text = 0, 0.0, text.strip()
    if not text:
        raise ValueError("empty duration")
    while pos < len(text):
        m = _DUR.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"not a duration: {text!r} (use e.g. 90, 90s, 10m, 1h)")
        unit = m.group(2).lower() if m.group(2) else None
        total += float(m.group(1)) * _UNIT[unit]
        pos = m.end()
    if not math.isfinite(total):
        raise ValueError(f"not a finite duration: {text!r}")
    return total


def fmt_number(value: float) -> str:
    """Numbers as people write them: ``3500`` not ``3500.0``; other floats exactly (``repr``).
    Infinities and NaN, which no record may hold, are written as Python spells them."""
    if not math.isfinite(value):
        return repr(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def exact_duration(seconds: float) -> str:
    """A duration the seed's way (``2h 15m``) that parses back to exactly ``seconds``; falls
    back to plain seconds (``1e-05s``) when the pretty form would round."""

    text = f"{fmt_number(seconds)}s"
    if 0 <= seconds < 1e15:
        rest = int(seconds)
        frac = seconds - rest
        parts = []
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            n, rest = divmod(rest, size)
            if n:
                parts.append(f"{n}{unit}")
        if rest or frac or not parts:
            parts.append(f"{fmt_number(rest + frac)}s")
        pretty = " ".join(parts)
        # Whole seconds are always exact; float sums can round, and then plain is exact.
        if not frac or parse_duration(pretty) == seconds:
            text = pretty
    return text


#: The first and last second a timestamp can name: 0001-01-01T00:00:00Z, 9999-12-31T23:59:59Z.
FIRST_TIME = float(_days_from_civil(1, 1, 1) * 86400)
LAST_TIME = float(_days_from_civil(10000, 1, 1) * 86400 - 1)

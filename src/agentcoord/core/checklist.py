"""Acceptance criteria: the ``- [ ]`` / ``- [x]`` items of a task's description (SPEC section 11).

A task's description is free markdown; its check-list items are its acceptance criteria, numbered
from 1 in the order they appear (nested items included). ``task check ID N`` ticks item N and
``--uncheck`` clears it. Pure functions over the text; no I/O.
"""

from __future__ import annotations

import re

from ..errors import InvalidInput

#: ``- [ ] text``, ``* [x] text``, ``+ [X] text``, ``1. [ ] text``, indented or not.
_ITEM = re.compile(r"^(\s*(?:[-*+]|\d{1,9}[.)])\s+\[)([ xX])(\](?:\s|$))")


def items(description: str) -> list[tuple[bool, str]]:
    """``(checked, text)`` of every check-list item of ``description``, in order."""
    out = []
    for line in description.split("\n"):
        m = _ITEM.match(line)
        if m is not None:
            out.append((m.group(2) != " ", line[m.end() :].strip()))
    return out


def tick(description: str, number: int, checked: bool = True) -> str:
    """``description`` with item ``number`` (1-based) checked (or cleared); every other
    character unchanged. :class:`InvalidInput` (exit 2) when there is no such item."""
    lines = description.split("\n")
    seen = 0
    for i, line in enumerate(lines):
        m = _ITEM.match(line)
        if m is None:
            continue
        seen += 1
        if seen == number:
            mark = "x" if checked else " "
            lines[i] = m.group(1) + mark + line[m.end(2) :]
            return "\n".join(lines)
    count = len(items(description))
    have = f"items 1-{count}" if count else "no '- [ ]' items"
    raise InvalidInput(f"no acceptance criterion {number}: the description has {have}")


def summary(description: str) -> tuple[int, int]:
    """``(done, total)`` of the check-list items."""
    found = items(description)
    return sum(1 for done, _ in found if done), len(found)

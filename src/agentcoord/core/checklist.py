"""Acceptance criteria: the ``- [ ]`` / ``- [x]`` items of a task's description (SPEC section 11).

A task's description is free markdown; its check-list items are its acceptance criteria, numbered
from 1 in the order they appear (nested items included). Lines inside a fenced code block (three
or more backticks or tildes) are example text, not items. ``task check ID N`` ticks item N and
``--uncheck`` clears it. Pure functions over the text; no I/O.
"""

from __future__ import annotations

import re

from ..errors import InvalidInput

#: ``- [ ] text``, ``* [x] text``, ``+ [X] text``, ``1. [ ] text``, indented or not.
_ITEM = re.compile(r"^(\s*(?:[-*+]|\d{1,9}[.)])\s+\[)([ xX])(\](?:\s|$))")
#: A code fence (CommonMark: up to 3 spaces, then 3 or more backticks or tildes).
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _matches(lines: list[str]) -> list[tuple[int, re.Match[str]]]:
    """``(line number, match)`` of every item line outside fenced code blocks. A fence closes
    with the same character, at least as many, and nothing after it; an unclosed fence runs
    to the end (as in CommonMark)."""
    out = []
    fence: str | None = None
    for i, line in enumerate(lines):
        f = _FENCE.match(line)
        if fence is None:
            if f is not None:
                fence = f.group(1)
                continue
            m = _ITEM.match(line)
            if m is not None:
                out.append((i, m))
        elif (
            f is not None
            and f.group(1)[0] == fence[0]
            and len(f.group(1)) >= len(fence)
            and not line[f.end() :].strip()
        ):
            fence = None
    return out


def items(description: str) -> list[tuple[bool, str]]:
    """``(checked, text)`` of every check-list item of ``description``, in order."""
    return [
        (m.group(2) != " ", m.string[m.end() :].strip())
        for _, m in _matches(description.split("\n"))
    ]


def tick(description: str, number: int, checked: bool = True) -> str:
    """``description`` with item ``number`` (1-based) checked (or cleared); every other
    character unchanged. :class:`InvalidInput` (exit 2) when there is no such item."""
    lines = description.split("\n")
    found = _matches(lines)
    if 1 <= number <= len(found):
        i, m = found[number - 1]
        mark = "x" if checked else " "
        lines[i] = m.group(1) + mark + lines[i][m.end(2) :]
        return "\n".join(lines)
    count = len(items(description))
    have = f"items 1-{count}" if count else "no '- [ ]' items"
    raise InvalidInput(f"no acceptance criterion {number}: the description has {have}")


def summary(description: str) -> tuple[int, int]:
    """``(done, total)`` of the check-list items."""
    found = items(description)
    return sum(1 for done, _ in found if done), len(found)

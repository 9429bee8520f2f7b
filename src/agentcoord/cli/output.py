"""Printing results and errors: JSON under ``--json`` (stdout only JSON), plain text otherwise.

No colour and no prompts: plain text is what agents read from a pipe. (The dashboard is the place
for colour.)
"""

from __future__ import annotations

import json
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    from ..errors import CoordError


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


def print_error(exc: CoordError, as_json: bool) -> None:
    if as_json:
        sys.stderr.write(dumps({"error": exc.to_dict()}) + "\n")
    else:
        sys.stderr.write(f"coord: error: {exc.message}\n")


def warn(message: str, as_json: bool) -> None:
    if as_json:
        sys.stderr.write(dumps({"warning": message}) + "\n")
    else:
        sys.stderr.write(f"coord: warning: {message}\n")


def notice(kind: str, message: str, data: dict[str, Any], as_json: bool) -> None:
    """Something a reader of a stream must know (a channel was reset): on stderr, as
    ``{"notice": {"kind", "message", ...}}`` under ``--json`` (stdout keeps only the stream)."""
    if as_json:
        sys.stderr.write(dumps({"notice": {"kind": kind, "message": message, **data}}) + "\n")
    else:
        sys.stderr.write(f"coord: notice: {message}\n")
    sys.stderr.flush()


def emit(data: Any, text: str | Callable[[], str] | None, *, as_json: bool, quiet: bool) -> None:
    """Print ``data`` as JSON, or ``text`` for people (nothing when quiet)."""
    if as_json:
        sys.stdout.write(dumps(data) + "\n")
    elif not quiet and text is not None:
        out = text() if callable(text) else text
        if out:
            sys.stdout.write(out + ("" if out.endswith("\n") else "\n"))


def select(rows: Iterable[dict[str, Any]], fields: Sequence[str] | None) -> list[dict[str, Any]]:
    """Keep only ``fields`` of each row (``--fields id,status``)."""
    if not fields:
        return list(rows)
    return [{f: row.get(f) for f in fields} for row in rows]


def parse_fields(value: str | None) -> list[str] | None:
    if not value:
        return None
    from ..core.validate import encodable

    encodable(value, "--fields")  # the names come back as keys of the output
    return [f.strip() for f in value.split(",") if f.strip()]


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain, aligned text table (no colour, no box drawing: it is read in pipes too)."""
    if not rows:
        return ""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    head = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    body = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join([head.rstrip(), *body])


def plain(value: Any) -> str:
    """A value for a ``key: value`` line: scalars as themselves (``-`` for none), a list of
    scalars comma-separated, anything nested as compact JSON (never a Python repr)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (str, int, float)) for v in value):
            return ",".join(str(v) for v in value) or "-"
        return dumps(list(value))
    if isinstance(value, dict):
        return dumps(value)
    return str(value)


def _cell(value: Any) -> str:
    text = plain(value)
    return text if len(text) <= 60 else text[:57] + "..."

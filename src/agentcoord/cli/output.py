"""Printing results and errors: JSON under ``--json`` (stdout only JSON), plain text otherwise.

No colour and no prompts: plain text is what agents read from a pipe. (The dashboard is the place
for colour.)

Terminal safety (SPEC section 16, :mod:`agentcoord.core.text`): text from agents and the store
reaches people only escaped. Values formatted here (:func:`plain`, :func:`table` cells) go through
:func:`~agentcoord.core.text.shown` (control, format and separator characters escaped, line
breaks included, so no value forges a row); every human output (:func:`emit`'s text, errors,
warnings, notices) gets a last :func:`~agentcoord.core.text.scrub` (the same classes but the
newline), so a command that formats a record itself cannot send ESC, C1 or bidi controls to a
terminal; JSON (``--json``, and nested values in text) is written with those characters as JSON
``\\u`` escapes (:func:`~agentcoord.core.text.json_safe`): the same JSON to a parser.
"""

from __future__ import annotations

import json
import sys

from ..core.text import json_safe, scrub, shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    from ..errors import CoordError


def dumps(data: Any) -> str:
    return json_safe(json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str))


def print_error(exc: CoordError, as_json: bool) -> None:
    if as_json:
        sys.stderr.write(dumps({"error": exc.to_dict()}) + "\n")
    else:
        sys.stderr.write(f"coord: error: {scrub(exc.message)}\n")


def warn(message: str, as_json: bool) -> None:
    if as_json:
        sys.stderr.write(dumps({"warning": message}) + "\n")
    else:
        sys.stderr.write(f"coord: warning: {scrub(message)}\n")


def notice(kind: str, message: str, data: dict[str, Any], as_json: bool) -> None:
    """Something a reader of a stream must know (a channel was reset): on stderr, as
    ``{"notice": {"kind", "message", ...}}`` under ``--json`` (stdout keeps only the stream)."""
    if as_json:
        sys.stderr.write(dumps({"notice": {"kind": kind, "message": message, **data}}) + "\n")
    else:
        sys.stderr.write(f"coord: notice: {scrub(message)}\n")
    sys.stderr.flush()


def emit(
    data: Any,
    text: str | Callable[[], str] | None,
    *,
    as_json: bool,
    quiet: bool,
    brief: str | None = None,
) -> None:
    """Print ``data`` as JSON, or ``text`` for people (when quiet: only ``brief``, the one value
    a script needs, if given), terminal-safe: ``text`` is
    :func:`~agentcoord.core.text.scrub`-bed (values in it should already be
    :func:`~agentcoord.core.text.shown`, which this leaves unchanged)."""
    if as_json:
        sys.stdout.write(dumps(data) + "\n")
    elif quiet:
        if brief is not None:
            sys.stdout.write(shown(brief) + "\n")
    elif text is not None:
        out = scrub(text() if callable(text) else text)
        if out:
            sys.stdout.write(out + ("" if out.endswith("\n") else "\n"))


def select(rows: Iterable[dict[str, Any]], fields: Sequence[str] | None) -> list[dict[str, Any]]:
    """Keep only ``fields`` of each row (``--fields id,status``)."""
    if not fields:
        return list(rows)
    return [{f: row.get(f) for f in fields} for row in rows]


def parse_fields(value: str | None, valid: Iterable[str] | None = None) -> list[str] | None:
    """``--fields a,b``: the names, in order (None when not given). With ``valid`` (the keys
    the command's rows or record can have), a name outside it is :class:`InvalidInput` (exit
    2) listing the valid ones: a misspelt field is never silently shown as empty."""
    if not value:
        return None
    from ..core.validate import encodable

    encodable(value, "--fields")  # the names come back as keys of the output
    fields = [f.strip() for f in value.split(",") if f.strip()]
    if valid is not None:
        known = list(dict.fromkeys(valid))
        unknown = [f for f in fields if f not in known]
        if unknown:
            from ..errors import InvalidInput

            raise InvalidInput(
                f"--fields: unknown field{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(shown(f) for f in unknown)}; valid: {', '.join(known)}",
                field="--fields",
                unknown=unknown,
                valid=known,
            )
    return fields


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain, aligned text table (no colour, no box drawing: it is read in pipes too)."""
    if not rows:
        return ""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(shown(c)), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    head = "  ".join(shown(c).upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    body = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join([head.rstrip(), *body])


def plain(value: Any) -> str:
    """A value for a ``key: value`` line or a table cell: scalars as themselves (``-`` for
    none), a list of scalars comma-separated, anything nested as compact JSON (never a Python
    repr). Text is :func:`~agentcoord.core.text.shown` (one line, terminal-safe)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (str, int, float)) for v in value):
            return ",".join(shown(str(v)) for v in value) or "-"
        return dumps(list(value))
    if isinstance(value, dict):
        return dumps(value)
    return shown(str(value))


def _cell(value: Any) -> str:
    text = plain(value)
    return text if len(text) <= 60 else text[:57] + "..."

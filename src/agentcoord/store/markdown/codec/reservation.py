"""``reservations.md``: the file reservation table (SPEC section 13), in the seed style.

::

    # File Reservations

    **Last Updated**: 2025-10-12T09:50:00.000Z
    **Count**: 2

    ## Reservation: res-1

    **Agent**: backend-dev
    **Patterns**: `src/api/**`, `docs/*.md`
    **Mode**: exclusive
    **Task**: task-42
    **Epoch**: 3
    **Reason**: reworking the API
    **Created**: 2025-10-12T09:40:00.000Z
    **Expires**: -

So ``grep -A3 '^## Reservation' reservations.md`` or ``grep 'Patterns.*src/'`` answer "who holds
what" without coord. A ``-`` stands for "none" (no task, no epoch, no reason, no expiry).

Escaping: the reason is :func:`escape_line`-d (and a reason that is exactly ``-`` is written
``\\x2d``), so it can never start a heading, a field or a block. Patterns never hold a
backslash or a control character (:func:`agentcoord.core.paths.normalize` refuses them); a
backtick in one is written ``\\x60`` inside its code span, so ```, ``` always separates two of them.
Times keep milliseconds. Blocks a person added by hand are read like the written ones; other
sections are ignored. The file holds the whole table; an empty table has no file.
"""

from __future__ import annotations

from ....core.clock import iso_ms, parse_iso, round_ms
from ....core.models import RESERVATION_MODES, Reservation, ReservationTable
from ....core.paths import normalize
from ....core.validate import is_valid_name
from ....errors import InvalidInput
from .text import escape_line, parse_doc, parse_int, unescape_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .text import Doc, Section

NONE = "-"
TITLE = "File Reservations"
HEADING = "Reservation: "
_SEP = "`, `"


def _pattern(pattern: str) -> str:
    return "`" + pattern.replace("`", "\\x60") + "`"


def _reason(reason: str | None) -> str:
    if reason is None:
        return NONE
    if reason == NONE:
        return "\\x2d"
    return escape_line(reason)


def _time(ts: float | None) -> str:
    return NONE if ts is None else iso_ms(ts)


def render_reservations(table: list[Reservation], now: float) -> str:
    """The markdown of the whole table (``now`` stamps **Last Updated**)."""
    out = [f"# {TITLE}", "", f"**Last Updated**: {iso_ms(now)}", f"**Count**: {len(table)}"]
    for r in table:
        out += [
            "",
            f"## {HEADING}{r.id}",
            "",
            f"**Agent**: {r.agent}",
            f"**Patterns**: {', '.join(_pattern(p) for p in r.patterns)}",
            f"**Mode**: {r.mode}",
            f"**Task**: {NONE if r.task is None else r.task}",
            f"**Epoch**: {NONE if r.epoch is None else r.epoch}",
            f"**Reason**: {_reason(r.reason)}",
            f"**Created**: {_time(r.created)}",
            f"**Expires**: {_time(r.expires)}",
        ]
    out.append("")
    return "\n".join(out)


def parse_reservations(text: str, path: str) -> list[Reservation]:
    """The table in a ``reservations.md``; :class:`CorruptData` names the line it cannot read
    (a missing or malformed field, an invalid name or pattern, an id given twice)."""
    doc = parse_doc(text, path)
    out = ReservationTable()
    seen: dict[str, int] = {}
    for section in doc.sections:
        if not section.heading.startswith(HEADING.strip()):
            continue
        rid = section.heading[len(HEADING.strip()) :].strip()
        if not is_valid_name(rid):
            raise doc.corrupt(section.line, f"invalid reservation id {rid!r}")
        if rid in seen:
            raise doc.corrupt(section.line, f"reservation {rid} is given twice (line {seen[rid]})")
        seen[rid] = section.line
        out.append(_parse_block(doc, section, rid))
    return out


def _parse_block(doc: Doc, section: Section, rid: str) -> Reservation:
    fields = section.fields()

    def field(name: str, *, required: bool = True) -> tuple[str, int] | None:
        got = fields.get(name.lower())
        if got is None and required:
            raise doc.corrupt(section.line, f"reservation {rid}: missing field **{name}**")
        return None if got is None else (got[0].strip(), got[1])

    agent, line = field("Agent") or ("", 0)
    if not is_valid_name(agent):
        raise doc.corrupt(line, f"invalid agent name {agent!r}")
    raw, line = field("Patterns") or ("", 0)
    if not (raw.startswith("`") and raw.endswith("`") and len(raw) >= 2):
        raise doc.corrupt(line, "**Patterns** must be `pattern`, `pattern`...")
    patterns = [p.replace("\\x60", "`") for p in raw[1:-1].split(_SEP)]
    for pattern in patterns:
        try:
            ok = normalize(pattern) == pattern
        except InvalidInput as exc:
            raise doc.corrupt(line, exc.message) from None
        if not ok:
            raise doc.corrupt(
                line, f"{pattern!r} is not a canonical path (write it as {normalize(pattern)!r})"
            )
    mode, line = field("Mode") or ("", 0)
    if mode not in RESERVATION_MODES:
        raise doc.corrupt(line, f"**Mode** must be one of {', '.join(RESERVATION_MODES)}")
    r = Reservation(rid, agent, patterns, mode=mode)
    got = field("Task", required=False)
    if got is not None and got[0] != NONE:
        if not is_valid_name(got[0]):
            raise doc.corrupt(got[1], f"invalid task id {got[0]!r}")
        r.task = got[0]
    got = field("Epoch", required=False)
    if got is not None and got[0] != NONE:
        r.epoch = parse_int(doc, got[0], got[1], "Epoch")
        if r.epoch < 0:
            raise doc.corrupt(got[1], "**Epoch** must not be negative")
    reason = fields.get("reason")
    if reason is not None and reason[0].strip() != NONE:
        r.reason = unescape_line(reason[0].strip()) or None
    created, line = field("Created") or ("", 0)
    r.created = _parse_time(doc, created, line, "Created")
    got = field("Expires", required=False)
    if got is not None and got[0] != NONE:
        r.expires = _parse_time(doc, got[0], got[1], "Expires")
    return r


def _parse_time(doc: Doc, value: str, line: int, name: str) -> float:
    try:
        return round_ms(parse_iso(value))
    except ValueError:
        raise doc.corrupt(line, f"**{name}** is not a timestamp: {value!r}") from None

"""``coord stale``, ``coord cleanup`` and ``coord doctor``.

``--json`` shapes:

- ``stale``: ``[{"kind", "key", "status", "updated", "age" (seconds), "age_text", "path"}]``,
  oldest first (``path`` is null where the store has no files).
- ``cleanup``: ``[{"kind", "key", "what", "detail", "done"}]``, every action taken (``done``:
  true), planned (``--dry-run``) or skipped (``what``: ``skip``, with the reason).
- ``doctor``: ``{"found": [violation], "fixed": [text], "remaining": [violation]}`` where a
  violation is ``{"kind", "key", "file", "message", "repairable"}`` (see
  :mod:`agentcoord.ops.doctor`); without ``--fix`` nothing changes and ``remaining`` = ``found``.

Exit codes: 0 ok; ``doctor``: 1 when a violation remains, 6 when a record does not parse (never
repaired automatically); 2 bad input.
"""

from __future__ import annotations

from ..errors import InvalidInput
from .base import count, dispatch, seconds
from .output import parse_fields, plain, select, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from ..domain.housekeeping import Action
    from .base import Context, Parser
    from .main import Globals

DEFAULT_LIMIT = 50
_DONE = {
    "archive": "archived",
    "rotate": "rotated",
    "remove": "removed",
    "reap": "reaped",
    "rebuild": "rebuilt view of",
}


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    builders = {
        "stale": (_build_stale, "List records not updated for a while (default 1h)."),
        "cleanup": (
            _build_cleanup,
            "Archive finished tasks and silent agents, rotate event logs, remove orphaned "
            "temp files.",
        ),
        "doctor": (_build_doctor, "Check the workspace; --fix repairs what is safe to repair."),
    }
    build, text = builders[command]
    return dispatch(command, argv, g, build, text)


def _hours(text: str) -> float:
    """``--stale-hours``: a number of hours from 0 to 100 years' worth (876000)."""
    from ..core.validate import MAX_DURATION

    top = MAX_DURATION / 3600
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"--stale-hours: {text[:40]!r} is not a number of hours") from None
    if not 0 <= value <= top:
        raise InvalidInput(
            f"--stale-hours must be a number of hours from 0 to {top:.0f} (100 years), "
            f"not {text[:40]!r}",
            field="--stale-hours",
        )
    return value


def _build_stale(parser: Parser) -> None:
    parser.add_argument(
        "--max-age", type=seconds("--max-age"), default=3600.0, help="e.g. 30m, 1h (1h)"
    )
    parser.add_argument(
        "--limit", type=count("--limit"), default=DEFAULT_LIMIT, help=f"default {DEFAULT_LIMIT}"
    )
    parser.add_argument("--fields", help="comma-separated fields to show")
    parser.set_defaults(handler=_stale)


def _build_cleanup(parser: Parser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="list what would be done")
    parser.add_argument("--stale-hours", type=_hours, default=24.0, help="default 24")
    parser.add_argument(
        "--keep-events",
        type=count("--keep-events"),
        help="events kept per live log (default: keep_events, 100)",
    )
    parser.set_defaults(handler=_cleanup)


def _build_doctor(parser: Parser) -> None:
    parser.add_argument("--fix", action="store_true", help="repair (otherwise only report)")
    parser.set_defaults(handler=_doctor)


def _action_line(action: Action) -> str:
    """One line per action; keys and details (file names, messages) shown escaped (SPEC 16)."""
    kind, key, detail = plain(action.kind), plain(action.key), plain(action.detail)
    if action.what == "skip":
        return f"skipped {kind} {key}: {detail}"
    if action.what == "corrupt":
        return f"unreadable {kind} record: {detail}"
    verb = _DONE.get(action.what, action.what)
    if not action.done:
        verb = f"would {'rebuild view of' if action.what == 'rebuild' else action.what}"
    return f"{verb} {kind} {key}: {detail}"


def _stale(ctx: Context, ns: argparse.Namespace) -> int:
    found = ctx.coord.maintenance.stale(ns.max_age)
    shown = found[: ns.limit] if ns.limit else found
    if len(shown) < len(found):
        ctx.warn(f"showing {len(shown)} of {len(found)} stale records; use --limit to see more")
    from ..domain.housekeeping import StaleRecord

    fields = parse_fields(ns.fields, StaleRecord("task", "x", 0.0, 0.0).to_dict())
    rows = select((r.to_dict() for r in shown), fields)

    def text() -> str:
        if not rows:
            from ..core.clock import duration

            return f"nothing older than {duration(ns.max_age)}"
        return table(rows, fields or ["kind", "key", "status", "age_text", "updated", "path"])

    ctx.emit(rows, text)
    return 0


def _cleanup(ctx: Context, ns: argparse.Namespace) -> int:
    actions = ctx.coord.maintenance.cleanup(
        dry_run=ns.dry_run, stale_hours=ns.stale_hours, keep_events=ns.keep_events
    )

    def text() -> str:
        if not actions:
            return "nothing to clean up"
        return "\n".join(_action_line(a) for a in actions)

    ctx.emit([a.to_dict() for a in actions], text)
    return 0


def _doctor(ctx: Context, ns: argparse.Namespace) -> int:
    doctor = ctx.coord.doctor
    found = doctor.check()
    fixed = doctor.fix() if ns.fix and any(v.repairable for v in found) else []
    remaining = doctor.check() if fixed else found

    def text() -> str:
        if not found:
            return "no problems found"
        lines = [f"{v.kind}: {plain(v.file or v.key)}: {plain(v.message)}" for v in remaining]
        lines += [f"fixed: {plain(line)}" for line in fixed]
        if remaining and not ns.fix and any(v.repairable for v in remaining):
            lines.append("run 'coord doctor --fix' to repair what is marked repairable")
        return "\n".join(lines)

    ctx.emit(
        {
            "found": [v.to_dict() for v in found],
            "fixed": fixed,
            "remaining": [v.to_dict() for v in remaining],
        },
        text,
    )
    if any(v.kind == "corrupt" for v in remaining):
        return 6
    return 1 if remaining else 0

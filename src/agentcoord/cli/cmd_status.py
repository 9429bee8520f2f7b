"""``coord status``: one screen with agents (monitor class), tasks by state and alerts.

``--json`` prints the object documented in :mod:`agentcoord.domain.reports` (``time``, ``agents``,
``attention``, ``tasks``, ``total_tasks``, ``alerts``), with ``agents`` and ``alerts`` cut to
``--limit`` (``"more_agents"``/``"more_alerts"`` count what was cut), and ``reservations``:
``{"live", "exclusive"}`` (the live file reservations, SPEC section 13; ``{"live": null,
"exclusive": null, "error": text}`` when the table cannot be read). Exit 0: status reports; use
``coord monitor`` for an exit code that says "attention needed".
"""

from __future__ import annotations

from .base import count, dispatch
from .output import plain, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

    from .base import Context, Parser
    from .main import Globals

DEFAULT_LIMIT = 20


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    return dispatch("status", argv, g, _build, "Agents, tasks by state and alerts, on one screen.")


def _build(parser: Parser) -> None:
    parser.add_argument(
        "--limit",
        type=count("--limit"),
        default=DEFAULT_LIMIT,
        help=f"rows per part (default {DEFAULT_LIMIT})",
    )
    parser.set_defaults(handler=_status)


def render(data: dict[str, Any]) -> str:
    from ..core.clock import duration

    out = [f"coord status at {data['time']}", ""]
    agents = data["agents"]
    out.append(f"agents ({len(agents) + data.get('more_agents', 0)}):")
    if agents:
        rows = []
        for row in agents:
            silence = row["silence"]
            rows.append(
                {
                    **row,
                    "silence": duration(silence) if silence is not None else "never",
                    "tasks": [*row["active"], *(f"{t} (assigned)" for t in row["assigned"])],
                }
            )
        cols = ["agent", "class", "silence", "status", "workload", "breaker", "tasks"]
        out.extend("  " + line for line in table(rows, cols).splitlines())
    else:
        out.append("  none live (coord agent list --all shows every agent)")
    if data.get("more_agents"):
        out.append(f"  ... {data['more_agents']} more (coord monitor)")
    out.append("")
    counts = [f"{state} {n}" for state, n in data["tasks"].items() if n]
    out.append(f"tasks ({data['total_tasks']}): " + (", ".join(counts) if counts else "none"))
    held = data.get("reservations")
    if isinstance(held, dict):
        if held.get("live") is None:
            out.append(f"reservations: unreadable ({plain(str(held.get('error', '')))})")
        else:
            out.append(f"reservations: {held['live']} live ({held['exclusive']} exclusive)")
    out.append("")
    alerts = data["alerts"]
    total = len(alerts) + data.get("more_alerts", 0)
    out.append(f"alerts ({total}):" if total else "alerts: none")
    out.extend(f"  ! {plain(a['message'])}" for a in alerts)  # one line each (SPEC 16)
    if data.get("more_alerts"):
        out.append(f"  ... {data['more_alerts']} more (coord status --limit N)")
    return "\n".join(out)


def _status(ctx: Context, ns: argparse.Namespace) -> int:
    data = ctx.coord.reports.status()
    data["reservations"] = reservation_counts(ctx)
    if ns.limit:
        for key in ("agents", "alerts"):
            extra = len(data[key]) - ns.limit
            if extra > 0:
                data[key] = data[key][: ns.limit]
                data[f"more_{key}"] = extra
    ctx.emit(data, lambda: render(data))
    return 0


def reservation_counts(ctx: Context) -> dict[str, Any]:
    """``{"live", "exclusive"}``: the live reservations and how many are exclusive (one read
    of the table); ``{"live": None, "exclusive": None, "error"}`` when it cannot be read."""
    from ..errors import CoordError

    try:
        live = ctx.coord.reservations.list()
    except CoordError as exc:
        return {"live": None, "exclusive": None, "error": exc.message}
    return {"live": len(live), "exclusive": sum(1 for r in live if r.exclusive)}

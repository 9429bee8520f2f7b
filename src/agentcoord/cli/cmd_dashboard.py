"""``coord dashboard``: the live terminal view (agents with their unread messages, tasks, file
reservations, events, timer, alerts).

On a terminal it takes the screen and refreshes on change until ``q`` (or Ctrl-C). Otherwise,
or with ``--once``, it prints one frame (``--width``/``--height``, default the terminal's or
100x30) and exits; ``--svg FILE`` also saves that frame as an SVG image; ``--json`` prints the
snapshot behind the frame (``time``, ``location``, ``agents``, ``tasks``, ``counts``,
``total_tasks``, ``events``, ``timers``, ``alerts``, ``notes``, ``error``, ``reservations``,
``reservations_total``; each agent with ``unread``). Exit 0.
"""

from __future__ import annotations

from ..errors import InvalidInput
from .base import count, dispatch

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

    from rich.console import Console

    from ..dashboard.app import Snapshot
    from .base import Context, Parser
    from .main import Globals

DEFAULT_SIZE = (100, 30)
MIN_SIZE = (40, 12)
MAX_SIZE = (1000, 500)


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    return dispatch(
        "dashboard", argv, g, _build, "Live view of agents, tasks, events, timer and alerts."
    )


def _build(parser: Parser) -> None:
    parser.add_argument("--once", action="store_true", help="print one frame and exit")
    parser.add_argument("--width", type=count("--width"), help="frame width for --once (columns)")
    parser.add_argument("--height", type=count("--height"), help="frame height for --once (lines)")
    parser.add_argument("--svg", metavar="FILE", help="with --once: also save the frame as SVG")
    parser.add_argument(
        "--events",
        type=count("--events", maximum=1000),
        default=30,
        help="newest events to read (default 30)",
    )
    parser.set_defaults(handler=_dashboard)


def _size(ns: argparse.Namespace, tty: bool) -> tuple[int, int]:
    for value, what, low, high in (
        (ns.width, "--width", MIN_SIZE[0], MAX_SIZE[0]),
        (ns.height, "--height", MIN_SIZE[1], MAX_SIZE[1]),
    ):
        if value is not None and not low <= value <= high:
            raise InvalidInput(f"{what} must be from {low} to {high}, not {value}")
    width, height = DEFAULT_SIZE
    if tty:
        import shutil

        width, height = shutil.get_terminal_size(DEFAULT_SIZE)
    return (ns.width or width, ns.height or height)


def snapshot_json(snap: Snapshot) -> dict[str, Any]:
    """The ``--json`` shape of a snapshot (tasks in the ``task list --json`` shape, plus
    ``ready``, ``eta_in`` and ``metrics``)."""
    from ..core.clock import iso
    from ..core.models import IN_PROGRESS
    from ..shapes import event_row, task_summary

    tasks = []
    for task in snap.tasks:
        row = task_summary(task, snap.now)
        if task.id in snap.ready:
            row["ready"] = True
        if task.eta is not None and task.status == IN_PROGRESS:
            row["eta_in"] = round(max(0.0, task.eta - snap.now), 1)
        if task.metrics:
            row["metrics"] = task.metrics
        tasks.append(row)
    return {
        "time": iso(snap.now), "location": snap.location, "agents": snap.agents,
        "tasks": tasks, "counts": snap.counts, "total_tasks": snap.total_tasks,
        "events": [event_row(e) for e in snap.events], "timers": snap.timers,
        "alerts": snap.alerts, "notes": snap.notes, "error": snap.error,
        "reservations": snap.reservations, "reservations_total": snap.reservations_total,
    }  # fmt: skip


def _print(console: Console, snap: Snapshot, width: int, height: int) -> None:
    from ..dashboard.view import render

    console.print(render(snap, width, height, now=snap.now))


def _dashboard(ctx: Context, ns: argparse.Namespace) -> int:
    import sys

    if not 0 <= ns.events <= 1000:
        raise InvalidInput(f"--events must be from 0 to 1000, not {ns.events}")
    tty = sys.stdout.isatty()
    width, height = _size(ns, tty)
    if ns.svg and not ns.once:
        raise InvalidInput("--svg needs --once")
    from ..dashboard.app import gather

    coord = ctx.coord
    if ctx.json:
        ctx.emit(snapshot_json(gather(coord, max_events=ns.events)))
        return 0
    if ns.once or not tty:
        import io

        from rich.console import Console

        snap = gather(coord, max_events=ns.events)
        _print(Console(width=width, height=height, force_terminal=tty or None), snap, width, height)
        if ns.svg:
            rec = Console(
                width=width,
                height=height,
                record=True,
                file=io.StringIO(),
                force_terminal=True,
                color_system="truecolor",
            )
            _print(rec, snap, width, height)
            rec.save_svg(ns.svg, title="coord dashboard")
        return 0
    from ..dashboard.app import run as live

    how = live(coord)
    return 130 if how == "interrupted" else 0

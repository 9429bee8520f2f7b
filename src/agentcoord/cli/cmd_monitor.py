"""``coord monitor [--watch]`` and ``coord metrics``.

``monitor --json`` prints ``{"time": ISO, "attention": bool, "thresholds": {"normal": s,
"acceptable": s, "concerning": s, "stuck": s, "gone": s}, "agents": [ROW, ...]}`` where ``ROW``
is ``{"agent", "class", "action", "silence" (seconds or null), "last_sign" (ISO or null),
"source" ("heartbeat"|"task"|"git"|null), "status", "workload", "breaker", "breaker_retry",
"active" (tasks in progress), "assigned" (tasks assigned, not yet claimed), "waiting" (those of
"assigned" the agent cannot claim yet: a dependency or child is open; they are not work it holds),
"expired" (task ids), "reason"}``; the text table's ACTIVE column lists the assigned tasks too
(``t2 (assigned)``, ``t1 (assigned, not ready)``); ``--fields`` narrows the rows. ``class`` is
Normal ... Blocked for an agent that holds work (or reports BLOCKED), Idle or Gone for one that
holds none (SPEC section 4). With
``--watch`` the same object is printed as NDJSON each time it changes. Exit 1 when any agent is
Stuck or Blocked (never for Idle or Gone; for ``--watch``: in the last state shown, when it ends
by Ctrl-C or ``--count``), else 0.

``metrics --json`` prints the figures of :mod:`agentcoord.domain.reports` plus ``"written"`` (the
document name, or null with ``--no-write``).
"""

from __future__ import annotations

import sys

from ..core.text import scrub
from .base import count, dispatch, seconds
from .output import dumps, parse_fields, plain, select, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator, Sequence
    from typing import Any

    from ..store.base import Store
    from .base import Context, Parser
    from .main import Globals

DEFAULT_LIMIT = 50
DEFAULT_INTERVAL = 5.0
#: At most this many renders per second in --watch, however fast files change.
MIN_GAP = 0.2
COLUMNS = ["agent", "class", "silence", "source", "status", "workload", "breaker", "active"]


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    if command == "metrics":
        return dispatch(
            "metrics", argv, g, _build_metrics, "Compute figures; write metrics-performance.md."
        )
    return dispatch(
        "monitor",
        argv,
        g,
        _build_monitor,
        "Classify agents that hold work by silence (seed thresholds); the others are Idle, "
        "or Gone past monitor.gone (24h).",
    )


def _build_monitor(parser: Parser) -> None:
    parser.add_argument("--watch", action="store_true", help="keep the table live (Ctrl-C ends)")
    parser.add_argument(
        "--interval",
        type=seconds("--interval", positive=True),
        default=DEFAULT_INTERVAL,
        metavar="S",
        help=f"--watch: re-check at least this often (default {DEFAULT_INTERVAL:g}s)",
    )
    parser.add_argument(
        "--count", type=count("--count"), default=0, help="--watch: stop after N updates"
    )
    parser.add_argument(
        "--limit", type=count("--limit"), default=DEFAULT_LIMIT, help=f"default {DEFAULT_LIMIT}"
    )
    parser.add_argument("--fields", help="comma-separated row fields to show")
    parser.set_defaults(handler=_monitor)


def _build_metrics(parser: Parser) -> None:
    parser.add_argument(
        "--window",
        type=seconds("--window", positive=True),
        default=24 * 3600.0,
        metavar="DURATION",
        help="figures over this period ending now (default 24h)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write the document")
    parser.set_defaults(handler=_metrics)


# -- monitor ---------------------------------------------------------------------------------
def _row_fields() -> list[str]:
    """The keys of a monitor row (what ``--fields`` may name)."""
    from ..domain.monitor import AgentHealth

    row = AgentHealth(
        "x",
        health="Normal",
        silence=None,
        last_sign=None,
        source=None,
        status="idle",
        workload=0,
        breaker="closed",
    )
    return list(row.to_dict())


def report(ctx: Context, limit: int, fields: list[str] | None) -> dict[str, Any]:
    from ..core.clock import iso
    from ..domain.monitor import BOUND_KEYS, needs_attention
    from ..errors import CorruptData

    coord = ctx.coord
    errors: list[CorruptData] = []
    rows = coord.monitor.classify(errors=errors)
    for err in errors:
        ctx.warn(f"skipped unreadable file: {err.message}")
    if limit and len(rows) > limit:
        ctx.warn(f"showing {limit} of {len(rows)} agents; use --limit to see more")
    bounds = coord.monitor.bounds
    return {
        "time": iso(coord.now()),
        "attention": needs_attention(rows),
        "thresholds": {**dict(zip(BOUND_KEYS, bounds, strict=True)), "gone": coord.monitor.gone},
        "agents": select([r.to_dict() for r in (rows[:limit] if limit else rows)], fields),
    }


def _assigned(task: str, row: dict[str, Any]) -> str:
    """An assigned task in the ACTIVE column: ``(assigned)``, or ``(assigned, not ready)`` when
    its agent cannot claim it yet (it does not count as work the agent holds)."""
    return f"{task} (assigned, not ready)" if task in row["waiting"] else f"{task} (assigned)"


def render(data: dict[str, Any], fields: list[str] | None) -> str:
    from ..core.clock import duration

    if not data["agents"]:
        return "no agents to monitor"
    shown = []
    for original in data["agents"]:
        row = dict(original)
        if "silence" in row:
            row["silence"] = duration(row["silence"]) if row["silence"] is not None else "never"
        if not fields:  # the default table shows assigned tasks too, as `coord status` does
            row["active"] = [*row["active"], *(_assigned(t, row) for t in row["assigned"])]
        shown.append(row)
    lines = [table(shown, fields or COLUMNS)]
    if not fields:
        lines.append("")
        for row in data["agents"]:
            if row["class"] not in ("Normal", "Acceptable", "Idle", "Gone") or row["expired"]:
                agent, health, action, reason = (
                    plain(row[k]) for k in ("agent", "class", "action", "reason")
                )  # one line each, terminal-safe (SPEC 16)
                lines.append(f"{agent}: {health} - {action} ({reason})")
        if data["attention"]:
            lines.append("attention: an agent is Stuck or Blocked")
    return "\n".join(lines).rstrip()


def _monitor(ctx: Context, ns: argparse.Namespace) -> int:
    fields = parse_fields(ns.fields, _row_fields())
    if not ns.watch:
        data = report(ctx, ns.limit, fields)
        ctx.emit(data, lambda: render(data, fields))
        return 1 if data["attention"] else 0
    return _watch(ctx, ns, fields)


def _watch(ctx: Context, ns: argparse.Namespace, fields: list[str] | None) -> int:
    import time

    clear = not ctx.json and sys.stdout.isatty()
    store = ctx.coord.store
    attention, shown, updates = False, None, 0
    try:
        while True:
            # Open the feed before reading, so a change made while we read is not missed.
            feed = _feed(store, ns.interval)
            started = time.monotonic()
            try:
                data = report(ctx, ns.limit, fields)
                attention = bool(data["attention"])
                text = dumps({**data, "time": None}) if ctx.json else render(data, fields)
                if text != shown:
                    shown = text
                    if ctx.json:
                        text = dumps(data)
                    if clear:
                        sys.stdout.write("\x1b[H\x1b[2J")
                    elif updates and not ctx.json:
                        sys.stdout.write("\n")
                    sys.stdout.write(scrub(text) + "\n")  # SPEC 16; the clear above stays
                    sys.stdout.flush()
                    updates += 1
                    if ns.count and updates >= ns.count:
                        break
                _wait(feed, started + ns.interval)
            finally:
                _close(feed)
            gap = time.monotonic() - started
            if gap < MIN_GAP:
                time.sleep(MIN_GAP - gap)
    except KeyboardInterrupt:
        pass
    return 1 if attention else 0


def _feed(store: Store, interval: float) -> Iterator[Any] | None:
    """The store's change feed (ending after ``interval`` s of quiet), or None if it has none."""
    try:
        feed = store.watch(timeout=interval)
    except (NotImplementedError, AttributeError, OSError):
        return None
    return feed


def _wait(feed: Iterator[Any] | None, deadline: float) -> None:
    """Return on the first change, or at ``deadline`` (monotonic): silence grows with time
    alone, so the table is re-checked even when nothing is written."""
    import time

    if feed is not None:
        try:
            for _batch in feed:
                return
        except (NotImplementedError, OSError):
            pass
    left = deadline - time.monotonic()
    if left > 0:
        time.sleep(left)


def _close(feed: Iterator[Any] | None) -> None:
    close = getattr(feed, "close", None)
    if close is not None:
        close()


# -- metrics ---------------------------------------------------------------------------------
def _metrics(ctx: Context, ns: argparse.Namespace) -> int:
    from ..domain.reports import DOCUMENT

    coord = ctx.coord
    reports = coord.reports
    data = reports.metrics(ns.window) if ns.no_write else reports.write_metrics(ns.window)
    data["written"] = None if ns.no_write else f"{DOCUMENT}.md"

    def text() -> str:
        from ..core.clock import duration

        overall = data["overall"]
        rows = [{"agent": name, **fig} for name, fig in data["agents"].items()]
        rows.append({"agent": "(all)", **overall})
        for row in rows:
            avg = row["average_duration"]
            row["average_duration"] = duration(avg) if avg is not None else None
        cols = [
            "agent",
            "finished",
            "succeeded",
            "failed",
            "success_rate",
            "average_duration",
            "in_progress",
            "throughput_per_hour",
        ]
        head = f"metrics over {duration(data['window'])} (since {data['since']})"
        out = [head, table(rows, cols)]
        if data["written"]:
            out.append(f"wrote {data['written']}")
        return "\n".join(out)

    ctx.emit(data, text)
    return 0

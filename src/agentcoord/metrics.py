"""Performance figures per agent and overall, and ``metrics-performance.md`` (seed naming).

Figures come from the task records (the truth), over a window ending now (default 24 h). A task
counts as *finished* in the window when it completed or failed inside it; cancelled tasks are not
an agent's result and are left out. ``compute`` returns (the ``coord metrics --json`` shape)::

    {"generated": ISO, "since": ISO, "window": seconds,
     "overall": FIGURES, "agents": {NAME: FIGURES, ...}}

    FIGURES = {"finished", "succeeded", "failed": int, "success_rate": percent or null,
               "average_duration": seconds or null, "in_progress": int,
               "throughput_per_hour": finished tasks per hour of the window}

``overall`` also has ``pending``, ``blocked`` and ``agents`` (count of agents with a record).
"""

from __future__ import annotations

from .clock import duration, iso
from .errors import InvalidInput
from .models import BLOCKED, COMPLETE, FAILED, IN_PROGRESS, PENDING

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .api import Coordinator
    from .errors import CorruptData
    from .models import Task

DEFAULT_WINDOW = 24 * 3600.0
DOCUMENT = "metrics-performance"


def figures(finished: list[Task], in_progress: int, window: float) -> dict[str, Any]:
    succeeded = sum(1 for t in finished if t.status == COMPLETE)
    durations = [
        max(0.0, (t.completed_at or 0.0) - t.started_at)
        for t in finished
        if t.started_at is not None and t.completed_at is not None
    ]
    count = len(finished)
    return {
        "finished": count,
        "succeeded": succeeded,
        "failed": count - succeeded,
        "success_rate": round(100.0 * succeeded / count, 1) if count else None,
        "average_duration": round(sum(durations) / len(durations), 1) if durations else None,
        "in_progress": in_progress,
        "throughput_per_hour": round(count * 3600.0 / window, 3),
    }


class Metrics:
    """``coord.metrics``: compute figures and write ``metrics-performance.md``."""

    def __init__(self, coord: Coordinator) -> None:
        self.coord = coord

    def compute(
        self,
        window: float = DEFAULT_WINDOW,
        *,
        now: float | None = None,
        errors: list[CorruptData] | None = None,
    ) -> dict[str, Any]:
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not window > 0:
            raise InvalidInput(f"window must be a positive number of seconds, not {window!r}")
        when = self.coord.now() if now is None else now
        since = when - window
        store = self.coord.store
        tasks = store.list_tasks(errors=errors)
        names = sorted({a.name for a in store.list_agents(errors=errors)})
        done = [
            t
            for t in tasks
            if t.status in (COMPLETE, FAILED)
            and t.completed_at is not None
            and since <= t.completed_at <= when
        ]
        running = [t for t in tasks if t.status == IN_PROGRESS]
        everyone = sorted(set(names) | {t.agent for t in done + running if t.agent})
        per_agent = {
            name: figures(
                [t for t in done if t.agent == name],
                sum(1 for t in running if t.agent == name),
                window,
            )
            for name in everyone
        }
        overall = figures(done, len(running), window)
        overall["pending"] = sum(1 for t in tasks if t.status == PENDING)
        overall["blocked"] = sum(1 for t in tasks if t.status == BLOCKED)
        overall["agents"] = len(names)
        return {
            "generated": iso(when),
            "since": iso(since),
            "window": window,
            "overall": overall,
            "agents": per_agent,
        }

    def write(self, window: float = DEFAULT_WINDOW, *, now: float | None = None) -> dict[str, Any]:
        """Compute and store ``metrics-performance.md``; returns the figures."""
        data = self.compute(window, now=now)
        self.coord.store.put_document(DOCUMENT, render(data))
        return data


def _rate(fig: dict[str, Any]) -> str:
    rate = fig["success_rate"]
    shown = f"{rate:g}%" if rate is not None else "N/A"
    return f"{shown} ({fig['succeeded']}/{fig['finished']})"


def _dur(value: float | None) -> str:
    return duration(value) if value is not None else "N/A"


def render(data: dict[str, Any]) -> str:
    """The markdown document: seed-style fields, a table per agent, and the figures as json."""
    from .codec.text import escape_line, json_block

    overall = data["overall"]
    lines = [
        "# Metrics: performance",
        "",
        f"**Last Updated**: {data['generated']}",
        f"**Window**: {_dur(data['window'])} (since {data['since']})",
        "",
        "## Overall",
        "",
        f"- **Success Rate**: {_rate(overall)}",
        f"- **Average Duration**: {_dur(overall['average_duration'])}",
        f"- **Total Tasks ({_dur(data['window'])})**: {overall['finished']}",
        f"- **Failed Tasks**: {overall['failed']}",
        f"- **In Progress**: {overall['in_progress']}",
        f"- **Pending**: {overall['pending']}",
        f"- **Blocked**: {overall['blocked']}",
        f"- **Throughput**: {overall['throughput_per_hour']:g} tasks/h",
        "",
        "## Agents",
        "",
    ]
    if data["agents"]:
        lines.append(
            "| Agent | Finished | Success Rate | Failed | Average Duration | In Progress "
            "| Tasks/h |"
        )
        lines.append("| --- | --- | --- | --- | --- | --- | --- |")
        for name, fig in data["agents"].items():
            cell = escape_line(name).replace("|", "\\x7c")
            lines.append(
                f"| {cell} | {fig['finished']} | {_rate(fig)} | {fig['failed']} "
                f"| {_dur(fig['average_duration'])} | {fig['in_progress']} "
                f"| {fig['throughput_per_hour']:g} |"
            )
    else:
        lines.append("No agents.")
    lines += ["", "## Data", "", json_block(data), ""]
    return "\n".join(lines)

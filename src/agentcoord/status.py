"""The data behind ``coord status``: agents with their monitor class, tasks by state, alerts.

``summary`` returns (the ``coord status --json`` shape)::

    {"time": ISO, "agents": [AGENT_HEALTH, ...], "attention": bool,
     "tasks": {STATE: count, ...}, "total_tasks": int,
     "alerts": [{"kind": KIND, "message": str, "task"|"agent"|"path": ...}, ...]}

``AGENT_HEALTH`` is the ``coord monitor --json`` row. Alert kinds, most urgent first: ``corrupt``
(a file that does not parse), ``blocked_agent``, ``stuck_agent``, ``expired_lease`` (the holder
stopped renewing: the next claim, ``coord reap`` or the timer takes the task back),
``breaker_open`` and ``stale_task`` (an open task nobody touched for over an hour; the seed's
staleness check, applied only where staleness means something).
"""

from __future__ import annotations

from .clock import duration, iso
from .models import OPEN_STATES, TASK_STATES
from .monitor import BLOCKED, STUCK

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .api import Coordinator
    from .monitor import Snapshot

STALE_AFTER = 3600.0
KINDS = (
    "corrupt",
    "blocked_agent",
    "stuck_agent",
    "expired_lease",
    "breaker_open",
    "stale_task",
)


def summary(
    coord: Coordinator,
    *,
    now: float | None = None,
    stale_after: float = STALE_AFTER,
    snap: Snapshot | None = None,
) -> dict[str, Any]:
    """The ``coord status`` data. Pass ``snap`` (a :meth:`Monitor.snapshot`) when the caller
    has already read the workspace, so it is not read twice."""
    monitor = coord.monitor
    if snap is None:
        snap = monitor.snapshot(now)
    when = snap.now
    rows = monitor.assess(snap)
    alerts: list[dict[str, Any]] = []

    def alert(kind: str, message: str, **where: Any) -> None:
        alerts.append({"kind": kind, "message": message, **where})

    for err in snap.errors:
        alert("corrupt", err.message, path=err.path)
    for row in rows:
        if row.health in (BLOCKED, STUCK):
            kind = "blocked_agent" if row.health == BLOCKED else "stuck_agent"
            alert(kind, f"agent {row.agent} is {row.health}: {row.reason}", agent=row.agent)
        if row.breaker == "open":
            retry = f"; claims resume {iso(row.breaker_retry)}" if row.breaker_retry else ""
            alert(
                "breaker_open", f"agent {row.agent}: circuit breaker open{retry}", agent=row.agent
            )
    counts = dict.fromkeys(TASK_STATES, 0)
    for task in snap.tasks:
        counts[task.status] = counts.get(task.status, 0) + 1
        if task.lease_expired(when):
            ago = duration(when - (task.lease_expires or when))
            tries = task.attempts + 1
            fate = (
                "fails when taken back (max_attempts reached)"
                if tries >= task.max_attempts
                else f"reclaimable (attempt {tries} of {task.max_attempts})"
            )
            alert(
                "expired_lease",
                f"task {task.id}: lease of {task.agent} expired {ago} ago; {fate}",
                task=task.id,
                agent=task.agent,
            )
        elif task.status in OPEN_STATES and when - task.last_activity() > stale_after:
            alert(
                "stale_task",
                f"task {task.id} ({task.status}) not updated for "
                f"{duration(when - task.last_activity())}",
                task=task.id,
            )
    alerts.sort(key=lambda a: KINDS.index(a["kind"]))
    return {
        "time": iso(when),
        "agents": [r.to_dict() for r in rows],
        "attention": any(r.attention for r in rows),
        "tasks": counts,
        "total_tasks": len(snap.tasks),
        "alerts": alerts,
    }

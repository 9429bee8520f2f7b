"""Reports (``coord.reports``): the data behind ``coord status``, a timer check-in and
``coord metrics``. Each reads the workspace once and returns plain JSON-ready data.

``status()`` (the ``coord status --json`` shape)::

    {"time": ISO, "agents": [AGENT_HEALTH, ...], "attention": bool,
     "tasks": {STATE: count, ...}, "total_tasks": int,
     "alerts": [{"kind": KIND, "message": str, "task"|"agent"|"path": ...}, ...]}

``AGENT_HEALTH`` is the ``coord monitor --json`` row. ``attention`` and the agent alerts come only
from agents that hold work or report BLOCKED: an Idle or Gone agent (no work) raises none (SPEC
section 4, Monitor). Alert kinds, most urgent first: ``corrupt``
(a file that does not parse), ``blocked_agent``, ``stuck_agent``, ``expired_lease`` (the holder
stopped renewing: the next claim, ``coord reap`` or the timer takes the task back),
``orphaned_task``, ``failed_task`` (a task failed: it names the error and how many tasks it
blocks, and needs a person to retry, reopen or cancel it), ``clock_skew`` (a lease ending
further ahead than it lasts, or a sign of life in the future: a machine's clock is ahead),
``breaker_open`` and ``stale_task`` (an open task nobody touched
for over an hour; the seed's staleness check, applied only where staleness means something).

``check_in(since=T)`` (the checkpoint sidecar's ``health`` and the check-in summary, seed 004)::

    {"time": ISO, "since": ISO | null,
     "agents": {"total", "by_class": {CLASS: n}, "attention": [...], "stuck": [...],
                "idle": [NAME, ...], "trouble": bool} | null,
     "tasks": {"total", "by_status": {STATE: n}, "open"},
     "reclaimed": {"count", "tasks": [{"id", "holder", "status", "attempts", "time"}]},
     "commits": {"since", "count", "recent": [{"sha", "author", "subject"}]},
     "errors": [str]}

Every part is best effort: an unreadable record, a missing git binary or a store hiccup is
recorded under ``errors`` and never stops a tick or a check-in. Lists are bounded (:data:`LIMIT`)
because the result ends up in an agent's context.

``metrics(window)`` (the ``coord metrics --json`` shape): figures per agent and overall from the
task records (the truth), over a window ending now (default 24 h). A task counts as *finished*
in the window when it completed or failed inside it; cancelled tasks are not an agent's result::

    {"generated": ISO, "since": ISO, "window": seconds,
     "overall": FIGURES, "agents": {NAME: FIGURES, ...}}

    FIGURES = {"finished", "succeeded", "failed": int, "success_rate": percent or null,
               "average_duration": seconds or null, "in_progress": int,
               "throughput_per_hour": finished tasks per hour of the window}

``overall`` also has ``pending``, ``blocked`` and ``agents`` (count of agents with a record).
:meth:`Reports.write_metrics` stores the figures as the document ``metrics-performance`` (on
markdown: ``metrics-performance.md``, seed naming).
"""

from __future__ import annotations

from ..core import leases
from ..core.clock import duration, iso
from ..core.models import (
    BLOCKED,
    COMPLETE,
    FAILED,
    IN_PROGRESS,
    OPEN_STATES,
    PENDING,
    TASK_STATES,
)
from ..core.validate import seconds
from . import monitor as mon

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..core.models import Task
    from ..errors import CorruptData
    from ..store.base import Store
    from ..store.gitlog import Commit
    from .monitor import AgentHealth, Monitor, Snapshot

#: Open tasks untouched this long raise a ``stale_task`` alert.
STALE_AFTER = 3600.0
KINDS = (
    "corrupt",
    "blocked_agent",
    "stuck_agent",
    "expired_lease",
    "orphaned_task",
    "failed_task",
    "clock_skew",
    "breaker_open",
    "stale_task",
)
#: Classes that make ``--adaptive`` snap back to the base interval (never Idle or Gone: an agent
#: without work is no reason to check in more often).
TROUBLE = frozenset({mon.CONCERNING, mon.STUCK, mon.BLOCKED})
#: Classes listed as "stuck agents" in a check-in.
STUCK = frozenset({mon.STUCK, mon.BLOCKED})
OPEN = ("pending", "assigned", "in_progress")
#: At most this many entries in any list of a check-in.
LIMIT = 20
DEFAULT_WINDOW = 24 * 3600.0
#: The document :meth:`Reports.write_metrics` stores (``metrics-performance.md`` on markdown).
DOCUMENT = "metrics-performance"


def _orphans(snap: Snapshot, alert: Callable[..., None]) -> None:
    """``orphaned_task`` alerts: tasks held by or assigned to an agent that is retired or not
    registered (SPEC section 11), which no monitor row shows."""
    unsure = bool(snap.agent_errors)  # an unreadable agent file may be the holder's
    status = {a.name: a.status for a in snap.agents}
    for task in snap.tasks:
        if task.status not in ("in_progress", "assigned") or not task.agent:
            continue
        state = status.get(task.agent)
        if state == "retired":
            why = "retired"
        elif state is None and not unsure:
            why = "not registered"
        else:
            continue
        fix = (
            "its lease runs out, then it is reclaimed"
            if task.status == "in_progress"
            else f"reassign it: coord task assign {task.id} AGENT --force"
        )
        alert(
            "orphaned_task",
            f"task {task.id} ({task.status}) is held by {task.agent}, which is {why}; {fix}",
            task=task.id,
            agent=task.agent,
        )


def _failures(snap: Snapshot, alert: Callable[..., None]) -> None:
    """``failed_task`` alerts: a failed task waits for a person (retry, reopen or cancel), and
    its dependents stay blocked until then. Says how many tasks it blocks (directly or through
    other blocked tasks); the dependents map is built once for all failed tasks."""
    failed = [t for t in snap.tasks if t.status == FAILED]
    if not failed:
        return
    dependents: dict[str, list[str]] = {}
    for t in snap.tasks:
        if t.status == BLOCKED:
            for dep in t.depends_on:
                dependents.setdefault(dep, []).append(t.id)
    newest = sorted(failed, key=lambda t: (-(t.completed_at or t.updated_at or 0.0), t.id))
    for task in newest:  # newest failure first
        seen: set[str] = set()
        stack = list(dependents.get(task.id, ()))
        while stack:
            tid = stack.pop()
            if tid not in seen:
                seen.add(tid)
                stack.extend(dependents.get(tid, ()))
        error = " ".join((task.error or "no error recorded").split())
        if len(error) > 200:
            error = error[:199] + "…"
        blocks = f" (blocks {len(seen)} task{'s' if len(seen) != 1 else ''})" if seen else ""
        alert(
            "failed_task",
            f"task {task.id} failed: {error}{blocks}; coord task retry {task.id} (or reopen, "
            "or cancel it)",
            task=task.id,
            agent=task.agent,
            blocks=len(seen),
        )


class Reports:
    """Summaries of the workspace, read through ``monitor`` (one snapshot each) and ``store``."""

    def __init__(self, store: Store, clock: Callable[[], float], monitor: Monitor) -> None:
        self.store = store
        self.clock = clock
        self.monitor = monitor

    # -- coord status ------------------------------------------------------------------------
    def status(
        self,
        *,
        now: float | None = None,
        stale_after: float = STALE_AFTER,
        snap: Snapshot | None = None,
    ) -> dict[str, Any]:
        """The ``coord status`` data. Pass ``snap`` (a :meth:`Monitor.snapshot`) when the caller
        has already read the workspace, so it is not read twice."""
        if snap is None:
            snap = self.monitor.snapshot(now)
        when = snap.now
        rows = self.monitor.assess(snap)
        alerts: list[dict[str, Any]] = []

        def alert(kind: str, message: str, **where: Any) -> None:
            alerts.append({"kind": kind, "message": message, **where})

        for err in snap.errors:
            alert("corrupt", err.message, path=err.path)
        skew = self.monitor.config.float("clock_skew")
        for row in rows:
            if "in the future" in row.reason:
                alert("clock_skew", f"agent {row.agent}: {row.reason}", agent=row.agent)
            if row.health in (mon.BLOCKED, mon.STUCK):
                kind = "blocked_agent" if row.health == mon.BLOCKED else "stuck_agent"
                alert(kind, f"agent {row.agent} is {row.health}: {row.reason}", agent=row.agent)
            if row.breaker == "open":
                retry = f"; claims resume {iso(row.breaker_retry)}" if row.breaker_retry else ""
                alert(
                    "breaker_open",
                    f"agent {row.agent}: circuit breaker open{retry}",
                    agent=row.agent,
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
            elif leases.too_far(
                task.status, task.lease_expires, leases.lease_length(task), when, skew
            ):
                alert(
                    "clock_skew",
                    f"task {task.id}: the lease of {task.agent} ends "
                    f"{iso(task.lease_expires or 0)}, further ahead than it lasts (a clock "
                    "ahead?); 'coord reap' bounds it",
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
        _orphans(snap, alert)
        _failures(snap, alert)
        alerts.sort(key=lambda a: KINDS.index(a["kind"]))
        return {
            "time": iso(when),
            "agents": [r.to_dict() for r in rows],
            "attention": any(r.attention for r in rows),
            "tasks": counts,
            "total_tasks": len(snap.tasks),
            "alerts": alerts,
        }

    # -- timer check-in ----------------------------------------------------------------------
    def check_in(self, *, since: float | None, now: float | None = None) -> dict[str, Any]:
        """Agents, tasks, reclaimed tasks and commits, with anything new counted from
        ``since`` (see the module docstring for the shape)."""
        when = self.clock() if now is None else now
        data: dict[str, Any] = {"time": iso(when), "since": iso(since) if since else None}
        errors: list[str] = []
        tasks: list[Task] = []
        commits: list[Commit] = []
        rows: list[AgentHealth] | None = None
        try:
            snap = self.monitor.snapshot(when)
            tasks, commits = snap.tasks, snap.commits
            errors.extend(e.message for e in snap.errors[:5])
            rows = self.monitor.assess(snap)
        except Exception as exc:  # a store hiccup must not stop a tick
            errors.append(f"{type(exc).__name__}: {exc}")
        counts: dict[str, int] = {}
        for task in tasks:
            counts[task.status] = counts.get(task.status, 0) + 1
        data["agents"] = _agent_classes(rows) if rows is not None else None
        data["tasks"] = {
            "total": len(tasks),
            "by_status": dict(sorted(counts.items())),
            "open": sum(counts.get(s, 0) for s in OPEN),
        }
        reclaimed = reclaimed_since(tasks, since)
        data["reclaimed"] = {"count": len(reclaimed), "tasks": reclaimed[:LIMIT]}
        for entry in data["reclaimed"]["tasks"]:
            entry["time"] = iso(entry["time"])
        data["commits"] = _commits(commits, since)
        data["errors"] = errors[:LIMIT]
        return data

    # -- coord metrics -----------------------------------------------------------------------
    def metrics(
        self,
        window: float = DEFAULT_WINDOW,
        *,
        now: float | None = None,
        errors: list[CorruptData] | None = None,
    ) -> dict[str, Any]:
        """Figures per agent and overall over ``window`` seconds ending ``now``; unreadable
        records are skipped and appended to ``errors``. :class:`InvalidInput` for a window that
        is not a positive, finite number (an infinite one has no start, and the document that
        holds the figures is JSON, which has no infinities)."""
        seconds(window, "window", positive=True)
        when = self.clock() if now is None else now
        since = when - window
        tasks = self.store.list_tasks(errors=errors)
        names = sorted({a.name for a in self.store.list_agents(errors=errors)})
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

    def write_metrics(
        self, window: float = DEFAULT_WINDOW, *, now: float | None = None
    ) -> dict[str, Any]:
        """Compute the figures and store them as the document :data:`DOCUMENT`; returns them."""
        data = self.metrics(window, now=now)
        self.store.put_document(DOCUMENT, data)
        return data


class Metrics:
    """``coord.metrics`` (the 0.1 API): :meth:`compute` is :meth:`Reports.metrics`,
    :meth:`write` is :meth:`Reports.write_metrics`."""

    def __init__(self, reports: Reports) -> None:
        self.reports = reports

    def compute(
        self,
        window: float = DEFAULT_WINDOW,
        *,
        now: float | None = None,
        errors: list[CorruptData] | None = None,
    ) -> dict[str, Any]:
        return self.reports.metrics(window, now=now, errors=errors)

    def write(self, window: float = DEFAULT_WINDOW, *, now: float | None = None) -> dict[str, Any]:
        return self.reports.write_metrics(window, now=now)


def figures(finished: list[Task], in_progress: int, window: float) -> dict[str, Any]:
    """The FIGURES of ``finished`` tasks (see the module docstring)."""
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


def reclaimed_since(tasks: list[Task], since: float | None) -> list[dict[str, Any]]:
    """Tasks whose lease expired after ``since`` (by anyone: a tick, a claim, ``coord reap``),
    newest first. The task log is the record: ``lease of AGENT expired; ...``."""
    out: list[dict[str, Any]] = []
    for task in tasks:
        for line in reversed(task.logs):
            if since is not None and line.time <= since:
                break
            msg = line.message
            if msg.startswith("lease of ") and " expired" in msg:
                holder = msg[len("lease of ") :].split(" expired", 1)[0]
                out.append(
                    {
                        "id": task.id,
                        "holder": holder,
                        "status": task.status,
                        "attempts": task.attempts,
                        "time": line.time,
                    }
                )
                break
    out.sort(key=lambda r: -r["time"])
    return out


def _agent_classes(rows: list[AgentHealth]) -> dict[str, Any]:
    by_class = dict.fromkeys(mon.ALL_CLASSES, 0)
    attention = []
    idle = []
    for row in rows:
        by_class[row.health] = by_class.get(row.health, 0) + 1
        if row.health == mon.IDLE:
            idle.append(row.agent)
        if row.health in TROUBLE:
            attention.append(
                {
                    "agent": row.agent,
                    "class": row.health,
                    "silence": round(row.silence, 1) if row.silence is not None else None,
                    "reason": row.reason,
                }
            )
    order = {c: i for i, c in enumerate(mon.CLASSES)}
    attention.sort(key=lambda r: (-order.get(str(r["class"]), 0), str(r["agent"])))
    return {
        "total": len(rows),
        "by_class": {c: n for c, n in by_class.items() if n},
        "attention": attention[:LIMIT],
        "stuck": [r["agent"] for r in attention if r["class"] in STUCK][:LIMIT],
        "idle": idle[:LIMIT],
        "trouble": bool(attention),
    }


def _commits(commits: list[Commit], since: float | None) -> dict[str, Any]:
    fresh = [c for c in commits if since is None or c.time > since]
    return {
        "since": iso(since) if since is not None else None,
        "count": len(fresh),
        "recent": [
            {"sha": c.sha[:10], "author": c.author_name, "subject": c.subject[:120]}
            for c in fresh[:5]
        ],
    }

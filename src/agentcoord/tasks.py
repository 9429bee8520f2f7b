"""The task board: create, claim, assign, progress, log, finish, release, list and reap tasks.

All state changes are single-record atomic updates (see :mod:`agentcoord.store.base`), so claims
are exactly-once under any number of concurrent claimers: the check "is this still claimable?"
runs inside the update. Follow-up effects on other records (blocking dependents of a failed task,
refreshing agent views) are separate updates that are safe to repeat and are re-derived by
``claim``/``reap`` if a process dies in between.
"""

from __future__ import annotations

import re

from . import deps, leases
from .claims import Claims, order_key
from .errors import Conflict, CorruptData, InvalidInput, InvalidTransition, NotFound
from .holder import HolderUpdates
from .models import (
    ASSIGNED,
    BLOCKED,
    CANCELLED,
    MAX_LOG_LINES,
    OPEN_STATES,
    PENDING,
    TASK_STATES,
    Task,
    TaskHead,
)
from .names import check_name
from .validate import MAX_TITLE, json_data, number, text

TYPE_CHECKING = False
if TYPE_CHECKING:
    # TaskBoard.list shadows the builtin inside the class body.
    HeadList = list[TaskHead]
    TaskList = list[Task]
    ErrorList = list[CorruptData]
    from collections.abc import Iterable
    from typing import Any

    from .api import Coordinator


def _statuses(status: str | Iterable[str] | None) -> list[str] | None:
    if status is None:
        return None
    wanted = [status] if isinstance(status, str) else list(status)
    out = []
    for s in wanted:
        norm = s.strip().lower().replace("-", "_")
        if norm == "open":
            out.extend(sorted(OPEN_STATES))
            continue
        if norm not in TASK_STATES:
            raise InvalidInput(f"unknown status {s!r}: one of {', '.join(TASK_STATES)}, open")
        out.append(norm)
    return out


class TaskBoard(Claims, HolderUpdates):
    """Task operations of a :class:`~agentcoord.api.Coordinator` (``coord.tasks``).

    Reading, creating, assigning and cancelling live here; claiming and lease upkeep in
    :mod:`agentcoord.claims`; the lease holder's updates in :mod:`agentcoord.holder`.
    """

    def __init__(self, coord: Coordinator) -> None:
        self.coord = coord
        self.store = coord.store

    # -- reading ---------------------------------------------------------------------------
    def get(self, task_id: str) -> Task:
        return self.store.get_task(check_name(task_id, "task id"))

    def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        agent: str | None = None,
        project: str | None = None,
        ready: bool | None = None,
        limit: int | None = None,
        errors: list[CorruptData] | None = None,
    ) -> list[Task]:
        """Tasks in claim order, filtered. Unreadable files are skipped and reported in
        ``errors`` (so one corrupt file never hides the board)."""
        if limit is not None and limit < 0:
            raise InvalidInput("limit must be >= 0")
        found = self.heads(status=status, agent=agent, project=project, ready=ready, errors=errors)
        return self.load(found[:limit] if limit is not None else found, errors=errors)

    def heads(
        self,
        *,
        status: str | Iterable[str] | None = None,
        agent: str | None = None,
        project: str | None = None,
        ready: bool | None = None,
        errors: ErrorList | None = None,
    ) -> HeadList:
        """The heads of the matching tasks in claim order: filters and sorting work on the
        index, so listing a few of 10,000 tasks reads only those few files."""
        if agent is not None:
            check_name(agent, "agent name")
        statuses = _statuses(status)
        every = self.store.list_task_heads(
            statuses=statuses if ready is None else None, errors=errors
        )
        found = every
        if ready is not None:
            states = {h.id: h.status for h in every}
            found = [h for h in every if (not deps.unmet(h, states)) == ready]
            if statuses is not None:
                found = [h for h in found if h.status in statuses]
        if agent is not None:
            found = [h for h in found if h.agent == agent]
        if project is not None:
            found = [h for h in found if h.project == project]
        found.sort(key=order_key)
        return found

    def load(self, heads: Iterable[TaskHead], *, errors: ErrorList | None = None) -> TaskList:
        """The full tasks for ``heads`` (skipping ones deleted or made unreadable since)."""
        out = []
        for head in heads:
            try:
                out.append(self.store.get_task(head.id))
            except NotFound:
                continue
            except CorruptData as exc:
                if errors is None:
                    raise
                errors.append(exc)
        return out

    # -- creating --------------------------------------------------------------------------
    def create(
        self,
        title: str,
        *,
        id: str | None = None,
        project: str | None = None,
        priority: int = 0,
        depends_on: Iterable[str] = (),
        assign: str | None = None,
        total: float | None = None,
        unit: str = "steps",
        eta: float | None = None,
        context_refs: Iterable[tuple[str, str]] = (),
        next_steps: Iterable[str] = (),
        max_attempts: int | None = None,
        lease_seconds: float | None = None,
        created_by: str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> Task:
        title = text(title, "title", MAX_TITLE)
        if id is not None:
            check_name(id, "task id")
        for name, what in (
            (project, "project"),
            (assign, "agent name"),
            (created_by, "agent name"),
        ):
            if name is not None:
                check_name(name, what)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise InvalidInput(f"priority must be a whole number, not {priority!r}")
        dep_ids = list(dict.fromkeys(check_name(d, "dependency id") for d in depends_on))
        attempts = self.coord.config["max_attempts"] if max_attempts is None else max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise InvalidInput(f"max attempts must be a whole number >= 1, not {attempts!r}")
        lease = number(
            self.coord.config.float("lease_seconds") if lease_seconds is None else lease_seconds,
            "lease",
            minimum=0.001,
        )
        if total is not None:
            number(total, "total", minimum=1e-9)
        if not re.fullmatch(r"[A-Za-z][A-Za-z _-]{0,23}", unit):
            raise InvalidInput(f"progress unit must be a short word, not {unit!r}")
        refs = [
            (text(label, "reference label", 100), text(ref, "reference", 500))
            for label, ref in context_refs
        ]
        steps = [text(s, "next step", 500) for s in next_steps]
        if metrics:
            json_data(metrics, "metrics")
        now = self.coord.now()
        task = Task(
            id or "",
            title,
            project=project,
            priority=priority,
            depends_on=dep_ids,
            max_attempts=attempts,
            lease_seconds=lease,
            created_at=now,
            created_by=created_by,
            updated_at=now,
            eta=eta,
            progress_total=total,
            progress_unit=unit,
            progress_current=0.0 if total is not None else None,
            metrics=dict(metrics or {}),
            context_refs=refs,
            next_steps=steps,
        )
        if dep_ids:
            existing = {h.id: h for h in self.store.list_task_heads()}
            if id is not None:
                deps.check_acyclic(id, dep_ids, existing)
            missing = [d for d in dep_ids if d not in existing]
            if missing:
                raise NotFound(f"unknown dependency: {', '.join(missing)}", missing=missing)
            for d in dep_ids:
                task.dep_titles[d] = self.store.get_task(d).title
                task.dep_states[d] = existing[d].status
            failed = deps.failed_dependency(task, task.dep_states)
            if failed is not None:
                task.status = BLOCKED
                task.blocked_reason = f"dependency {failed} is {existing[failed].status}"
        if assign is not None and task.status == PENDING:
            task.status = ASSIGNED
            task.agent = assign
            task.assigned_at = now
        if id is not None:
            self.store.create_task(task)
            return task
        while True:  # generated ids: numbers from the workspace counter, skipping taken ones
            task.id = str(self.store.next_id("task"))
            try:
                self.store.create_task(task)
            except Conflict:
                continue
            return task

    def assign(self, task_id: str, agent: str) -> Task:
        """Reserve a pending task for ``agent`` (only it can claim the task)."""
        check_name(task_id, "task id")
        check_name(agent, "agent name")
        previous: list[str | None] = [None]

        def fn(task: Task) -> Task:
            if task.status not in (PENDING, ASSIGNED):
                raise InvalidTransition(
                    f"task {task.id} is {task.status}; only pending or assigned tasks can be "
                    "assigned",
                    task=task.id,
                )
            previous[0] = task.agent
            now = self.coord.now()
            task.status, task.agent, task.assigned_at, task.updated_at = ASSIGNED, agent, now, now
            leases.add_log(task, now, f"assigned to {agent}", MAX_LOG_LINES)
            return task

        task = self.store.update_task(task_id, fn)
        self.coord.agents.on_task_change(task, previous[0])
        return task

    def cancel(self, task_id: str, *, reason: str | None = None) -> Task:
        """Withdraw an unfinished task (a coordinator's decision; no lease needed)."""
        check_name(task_id, "task id")
        why = text(reason, "reason") if reason is not None else None
        previous: list[str | None] = [None]

        def fn(task: Task) -> Task:
            if task.finished:
                raise InvalidTransition(f"task {task.id} is already {task.status}", task=task.id)
            now = self.coord.now()
            previous[0] = task.agent
            task.status, task.lease_expires, task.completed_at, task.updated_at = (
                CANCELLED,
                None,
                now,
                now,
            )
            task.error = why
            leases.add_log(task, now, "cancelled" + (f": {why}" if why else ""), MAX_LOG_LINES)
            return task

        task = self.store.update_task(task_id, fn)
        self._block_dependents(task)
        self.coord.agents.on_task_change(task, previous[0])
        return task

"""Claiming tasks and keeping leases honest: claim (by id or next ready), renewals by
heartbeat, reaping expired leases, and blocking the dependents of a failed task.

Exactly-once comes from the store: the "is it still claimable?" check runs inside the atomic
update of the task record, so of any number of concurrent claimers exactly one sees it pending.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

from . import deps, leases
from .errors import Conflict, InvalidTransition, NotFound, NothingToClaim
from .models import ASSIGNED, BLOCKED, IN_PROGRESS, MAX_LOG_LINES, PENDING, Task
from .names import check_name
from .validate import number

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from .api import Coordinator
    from .models import TaskHead
    from .store.base import Store


_NATURAL = re.compile(r"(\d+)")


@lru_cache(maxsize=65536)  # every claim sorts every candidate: ids repeat across calls
def natural_key(task_id: str) -> tuple[Any, ...]:
    """``task-2`` before ``task-10``."""
    return tuple(int(p) if p.isdigit() else p for p in _NATURAL.split(task_id))


def order_key(task: Task | TaskHead) -> tuple[Any, ...]:
    """Claim order: highest priority first, then oldest, then id."""
    return (-task.priority, task.created_at, natural_key(task.id))


_SKIPPED = object()  # _claim_one without waiting found the task locked by another writer
SPREAD = 8  # how many equal-priority candidates a contended claimer chooses among


def _spread(pending: list[TaskHead]) -> int:
    """A random index among the first :data:`SPREAD` candidates that share the first one's
    priority (claim order across priorities is kept). ``os.urandom`` instead of ``random``:
    one fewer import on the CLI's start-up path."""
    top = pending[0].priority
    width = 1
    while width < min(SPREAD, len(pending)) and pending[width].priority == top:
        width += 1
    return os.urandom(1)[0] % width


class Claims:
    """Mixin of :class:`~agentcoord.tasks.TaskBoard`."""

    coord: Coordinator
    store: Store

    # -- claiming --------------------------------------------------------------------------
    def claim(
        self,
        task_id: str | None = None,
        *,
        agent: str,
        lease_seconds: float | None = None,
        project: str | None = None,
    ) -> Task:
        """Claim ``task_id``, or the ready task with the highest priority (oldest first).

        Exactly once: the claimability check runs inside the store's atomic update. Raises
        :class:`NothingToClaim` (exit 3) or :class:`Conflict` (exit 4) with the reason."""
        check_name(agent, "agent name")
        if lease_seconds is not None:
            number(lease_seconds, "lease", minimum=0.001)
        self.coord.agents.before_claim(agent)
        if task_id is not None:
            check_name(task_id, "task id")
            claimed = self._claim_one(task_id, agent, lease_seconds, explicit=True)
            assert isinstance(claimed, Task)  # explicit claims raise instead of returning None
            return claimed
        heads = self.store.list_task_heads(statuses=(PENDING, ASSIGNED, IN_PROGRESS))
        states = {h.id: h.status for h in heads}
        if any(h.depends_on for h in heads):  # finished dependencies are not among the open
            states = {h.id: h.status for h in self.store.list_task_heads()}
        now = self.coord.now()
        candidates = [
            h
            for h in heads
            if (project is None or h.project == project)
            and (
                h.status == PENDING
                or (h.status == ASSIGNED and h.agent == agent)
                or h.lease_expired(now)
            )
            # Waiting on a dependency: not claimable. A failed dependency still goes through
            # _claim_one, which marks the task blocked (repairing a missed propagation).
            and not (deps.unmet(h, states) and deps.failed_dependency(h, states) is None)
        ]
        candidates.sort(key=order_key)
        # First pass: skip candidates another claimer is writing right now (it will most
        # likely win them); second pass: wait for those, in order, if nothing else was free.
        # A claimer that loses a race is evidently not alone: from then on it picks among the
        # next few candidates of the same priority at random, so that concurrent claimers
        # spread out instead of all racing for the same next task.
        busy: list[TaskHead] = []
        for wait, batch in ((False, candidates), (True, busy)):
            pending = list(batch)
            contended = False
            while pending:
                cand = pending.pop(_spread(pending) if contended else 0)
                try:
                    task = self._claim_one(cand.id, agent, lease_seconds, explicit=False, wait=wait)
                except (Conflict, NotFound):
                    contended = True  # someone else got it first (or it is not ready)
                    continue
                if task is _SKIPPED:
                    contended = True
                    busy.append(cand)
                elif isinstance(task, Task):
                    return task
        raise NothingToClaim(
            f"no ready task to claim for {agent}" + (f" in project {project}" if project else ""),
            agent=agent,
        )

    def _dep_states(self, task: Task) -> dict[str, str]:
        states: dict[str, str] = {}
        for dep in task.depends_on:
            try:
                states[dep] = self.store.get_task(dep).status
            except NotFound:
                continue
        return states

    def _claim_one(
        self,
        task_id: str,
        agent: str,
        lease_seconds: float | None,
        *,
        explicit: bool,
        wait: bool = True,
    ) -> Any:
        """Claim one task; None when it turned out blocked or failed (claim-next moves on),
        ``_SKIPPED`` when ``wait`` is False and another writer holds it."""
        outcome: dict[str, Any] = {}

        def fn(task: Task) -> Task:
            outcome.clear()
            now = self.coord.now()
            outcome["previous"] = task.agent
            # Dependencies are read here, under this task's lock (reads of other records take
            # no lock), so the decision uses their state as of now.
            states = self._dep_states(task) if task.depends_on else {}
            task.dep_states.update(states)
            failed = deps.failed_dependency(task, states)
            if failed is not None and task.status in (PENDING, ASSIGNED):
                task.status = BLOCKED
                task.blocked_reason = f"dependency {failed} is {states[failed]}"
                task.updated_at = now
                outcome["blocked"] = True
                return task
            if task.status == IN_PROGRESS:
                if not task.lease_expired(now):
                    if task.agent == agent:
                        outcome["renewed"] = True
                        leases.renew(task, now)
                        return task
                    raise Conflict(
                        f"task {task.id} is held by {task.agent} (lease until "
                        f"{_iso(task.lease_expires)})",
                        task=task.id,
                        holder=task.agent,
                    )
                if leases.expire(task, now, MAX_LOG_LINES):
                    outcome["failed"] = True
                    return task
                outcome["reclaimed"] = outcome["previous"]
            if task.status == ASSIGNED and task.agent != agent:
                raise Conflict(
                    f"task {task.id} is assigned to {task.agent}", task=task.id, holder=task.agent
                )
            if task.status not in (PENDING, ASSIGNED):
                reason = f": {task.blocked_reason}" if task.blocked_reason else ""
                raise InvalidTransition(
                    f"task {task.id} is {task.status}{reason}; only pending tasks can be claimed",
                    task=task.id,
                    status=task.status,
                )
            waiting = deps.unmet(task, states)
            if waiting:
                raise Conflict(
                    f"task {task.id} is not ready: waiting for {', '.join(waiting)}",
                    task=task.id,
                    waiting=waiting,
                )
            leases.grant(task, agent, now, lease_seconds)
            leases.add_log(task, now, f"claimed by {agent} (epoch {task.epoch})", MAX_LOG_LINES)
            return task

        if wait:
            task = self.store.update_task(task_id, fn)
        else:
            got = self.store.try_update_task(task_id, fn)
            if got is None:
                return _SKIPPED
            task = got
        if outcome.get("blocked"):
            if explicit:
                raise InvalidTransition(
                    f"task {task.id} is blocked: {task.blocked_reason}", task=task.id
                )
            return None
        if outcome.get("failed"):
            self._after_failure(task, str(outcome["previous"]))
            if explicit:
                raise InvalidTransition(f"task {task.id} failed: {task.error}", task=task.id)
            return None
        if outcome.get("reclaimed"):
            self.coord.agents.on_task_change(task, str(outcome["reclaimed"]))
        if not outcome.get("renewed"):
            self.coord.agents.on_task_change(task, None)
        return task

    # -- leases ------------------------------------------------------------------------------
    def renew_all(self, agent: str) -> list[Task]:
        """Renew every live lease ``agent`` holds (called by heartbeats)."""
        renewed = []
        for cand in self.store.list_task_heads(statuses=[IN_PROGRESS]):
            if cand.agent != agent:
                continue

            def fn(task: Task) -> Task | None:
                now = self.coord.now()
                if task.status != IN_PROGRESS or task.agent != agent or task.lease_expired(now):
                    return None  # an expired lease is not revived by a late heartbeat
                leases.renew(task, now)
                return task

            try:
                renewed.append(self.store.update_task(cand.id, fn))
            except NotFound:
                continue
        return renewed

    def reap(self, ids: Iterable[str] | None = None) -> list[Task]:
        """Take back every expired lease (pending with attempts + 1, or failed), or only those
        of ``ids`` (each re-checked under its lock). Returns the tasks it changed."""
        changed = []
        if ids is not None:
            candidates = [check_name(i, "task id") for i in ids]
        else:
            now = self.coord.now()
            candidates = [
                h.id
                for h in self.store.list_task_heads(statuses=[IN_PROGRESS])
                if h.lease_expired(now)
            ]
        for cand_id in candidates:
            outcome: dict[str, Any] = {}

            def fn(task: Task, outcome: dict[str, Any] = outcome) -> Task | None:
                outcome.clear()
                if not task.lease_expired(self.coord.now()):
                    return None
                outcome["holder"] = task.agent
                outcome["failed"] = leases.expire(task, self.coord.now(), MAX_LOG_LINES)
                return task

            try:
                task = self.store.update_task(cand_id, fn)
            except NotFound:
                continue
            if not outcome:
                continue
            changed.append(task)
            if outcome["failed"]:
                self._after_failure(task, str(outcome["holder"]))
            else:
                self.coord.agents.on_task_change(task, str(outcome["holder"]))
        return changed

    # -- failure propagation -----------------------------------------------------------------
    def _after_failure(self, task: Task, agent: str) -> None:
        self._block_dependents(task)
        self.coord.agents.on_task_change(task, agent)

    def _block_dependents(self, failed: Task) -> None:
        everything = self.store.list_task_heads()
        for dep_id in deps.dependents_closure(failed.id, everything):

            def fn(task: Task) -> Task | None:
                if task.status not in (PENDING, ASSIGNED):
                    return None
                now = self.coord.now()
                task.status, task.updated_at = BLOCKED, now
                task.blocked_reason = f"dependency {failed.id} is {failed.status}"
                task.dep_states[failed.id] = failed.status
                leases.add_log(task, now, f"blocked: {task.blocked_reason}", MAX_LOG_LINES)
                return task

            try:
                self.store.update_task(dep_id, fn)
            except NotFound:
                continue


def _iso(ts: float | None) -> str:
    from .clock import iso

    return iso(ts) if ts is not None else "-"

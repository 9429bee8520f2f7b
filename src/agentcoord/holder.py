"""Updates by the lease holder: progress, log, complete, fail and release.

Each runs :func:`agentcoord.leases.check_holder` inside the atomic update, so a holder whose
lease expired or was taken over is refused (exit 4) and its late write changes nothing.
"""

from __future__ import annotations

from . import leases
from .errors import InvalidInput
from .models import COMPLETE, FAILED, MAX_LOG_LINES, PENDING
from .names import check_name
from .validate import json_data, number, text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .api import Coordinator
    from .models import Task
    from .store.base import Store


#: The agent file's progress figures are refreshed by a progress report only when the task had
#: not been updated for this long; ownership changes and heartbeats always refresh the view.
VIEW_REFRESH = 5.0


class HolderUpdates:
    """Mixin of :class:`~agentcoord.tasks.TaskBoard`."""

    coord: Coordinator
    store: Store

    if TYPE_CHECKING:

        def _after_failure(self, task: Task, agent: str) -> None: ...

    # -- the holder's updates --------------------------------------------------------------
    def progress(
        self,
        task_id: str,
        *,
        agent: str,
        current: float | None = None,
        total: float | None = None,
        percent: float | None = None,
        metrics: dict[str, Any] | None = None,
        message: str | None = None,
        eta: float | None = None,
        epoch: int | None = None,
    ) -> Task:
        """Record progress (``current``/``total`` or ``percent``), merge ``metrics`` into the
        json block, estimate the ETA from the rate so far, and renew the lease."""
        check_name(task_id, "task id")
        check_name(agent, "agent name")
        if current is None and percent is None and not metrics and message is None:
            raise InvalidInput(
                "nothing to report: give current (and total), percent, metrics or a message"
            )
        if current is not None and percent is not None:
            raise InvalidInput("give either current/total or percent, not both")
        if percent is not None:
            percent = number(percent, "percent", maximum=100.0)
        if current is not None:
            current = number(current, "current")
        if total is not None:
            total = number(total, "total", minimum=1e-9)
        msg = text(message, "message") if message is not None else None
        if metrics:
            json_data(metrics, "metrics")

        refresh = [False]

        def fn(task: Task) -> Task:
            now = self.coord.now()
            leases.check_holder(task, agent, now, epoch)
            refresh[0] = task.updated_at is None or now - task.updated_at >= VIEW_REFRESH
            if current is not None:
                tot = total if total is not None else task.progress_total
                if tot is None:
                    raise InvalidInput(f"task {task.id} has no total: pass --total with --current")
                if current > tot:
                    raise InvalidInput(f"current {current:g} is more than total {tot:g}")
                task.progress_current, task.progress_total, task.percent = current, tot, None
                task.metrics["step"] = _plain(current)
                task.metrics["total_steps"] = _plain(tot)
            elif percent is not None:
                task.percent = percent
            if metrics:
                task.metrics.update(metrics)
            pct = task.progress_percent()
            if eta is not None:
                task.eta = eta
            elif pct and task.started_at is not None and now > task.started_at:
                task.eta = task.started_at + (now - task.started_at) * 100.0 / pct
            if msg is not None:
                leases.add_log(task, now, msg, MAX_LOG_LINES)
            leases.renew(task, now)
            return task

        task = self.store.update_task(task_id, fn)
        if refresh[0]:  # rapid progress loops skip the agent-file write (and its imports)
            self.coord.agents.on_task_change(task, agent, progress_only=True)
        return task

    def log(self, task_id: str, message: str, *, agent: str, epoch: int | None = None) -> Task:
        check_name(task_id, "task id")
        check_name(agent, "agent name")
        msg = text(message, "message")

        def fn(task: Task) -> Task:
            now = self.coord.now()
            leases.check_holder(task, agent, now, epoch)
            leases.add_log(task, now, msg, MAX_LOG_LINES)
            leases.renew(task, now)
            return task

        return self.store.update_task(task_id, fn)

    def complete(
        self, task_id: str, *, agent: str, result: str | None = None, epoch: int | None = None
    ) -> Task:
        return self._finish(task_id, agent, COMPLETE, result, epoch)

    def fail(self, task_id: str, *, agent: str, error: str, epoch: int | None = None) -> Task:
        task = self._finish(task_id, agent, FAILED, text(error, "error"), epoch)
        return task

    def _finish(
        self, task_id: str, agent: str, status: str, outcome: str | None, epoch: int | None
    ) -> Task:
        check_name(task_id, "task id")
        check_name(agent, "agent name")
        body = text(outcome, "result") if outcome is not None else None

        def fn(task: Task) -> Task:
            now = self.coord.now()
            leases.check_holder(task, agent, now, epoch)
            task.status, task.completed_at, task.updated_at = status, now, now
            task.lease_expires = None
            if status == COMPLETE:
                task.result = body
                if task.progress_total is not None:
                    task.progress_current = task.progress_total
                elif task.percent is not None:
                    task.percent = 100.0
            else:
                task.error = body
            leases.add_log(task, now, f"{status} by {agent}", MAX_LOG_LINES)
            return task

        task = self.store.update_task(task_id, fn)
        if status == FAILED:
            self._after_failure(task, agent)
        else:
            self.coord.agents.on_task_change(task, agent)
        return task

    def release(
        self, task_id: str, *, agent: str, reason: str | None = None, epoch: int | None = None
    ) -> Task:
        """Give the task back (pending, no holder) without counting an attempt."""
        check_name(task_id, "task id")
        check_name(agent, "agent name")
        why = text(reason, "reason") if reason is not None else None

        def fn(task: Task) -> Task:
            now = self.coord.now()
            leases.check_holder(task, agent, now, epoch)
            task.status, task.agent, task.lease_expires, task.updated_at = PENDING, None, None, now
            leases.add_log(
                task, now, f"released by {agent}" + (f": {why}" if why else ""), MAX_LOG_LINES
            )
            return task

        task = self.store.update_task(task_id, fn)
        self.coord.agents.on_task_change(task, agent)
        return task


def _plain(value: float) -> float | int:
    """``3500`` rather than ``3500.0`` in the json block, as the seed shows it."""
    return int(value) if value == int(value) else value

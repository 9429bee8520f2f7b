"""Lease and fencing rules: who may change a task, and what an expired lease turns into.

A claim grants a lease (``lease_expires``) and bumps the task's fencing ``epoch``. Every later
write by the holder must come from the same agent, before the lease expires, and (when the caller
passes one) with the same epoch; otherwise it is refused with :class:`LeaseLost` or
:class:`StaleEpoch` (exit 4). These functions run inside the store's atomic update.
"""

from __future__ import annotations

import math

from ..errors import LeaseLost, StaleEpoch
from .clock import iso
from .models import FAILED, IN_PROGRESS, PENDING, LogLine, Task

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


def check_holder(task: Task, agent: str, now: float, epoch: int | None = None) -> None:
    """Raise unless ``agent`` holds a live lease on ``task`` (at ``epoch`` if given)."""
    if task.status != IN_PROGRESS:
        raise LeaseLost(
            f"task {task.id} is {task.status}, not in progress: {agent} holds no lease on it",
            task=task.id,
            status=task.status,
        )
    if task.agent != agent:
        raise LeaseLost(
            f"task {task.id} is held by {task.agent}, not {agent}",
            task=task.id,
            holder=task.agent,
        )
    if epoch is not None and epoch != task.epoch:
        raise StaleEpoch(
            f"stale epoch {epoch} for task {task.id}: the current grant is epoch {task.epoch}",
            task=task.id,
            epoch=task.epoch,
        )
    if task.lease_expires is not None and task.lease_expires <= now:
        raise LeaseLost(
            f"{agent}'s lease on task {task.id} expired at {iso(task.lease_expires)}; "
            "claim it again to continue",
            task=task.id,
            expired=iso(task.lease_expires),
        )


class Renewal(list[Task]):
    """What a heartbeat did to an agent's leases: it is the list of the tasks renewed, and
    ``lost`` holds the ids of the tasks the agent no longer holds (the lease expired, or another
    agent took the task over)."""

    def __init__(self, renewed: Iterable[Task] = (), lost: Iterable[str] = ()) -> None:
        super().__init__(renewed)
        self.lost = list(lost)


def lease_length(task: Task) -> float:
    """Seconds the current grant's lease lasts: the claim's own ``--lease`` if it gave one,
    else the task's ``lease_seconds``."""
    return task.lease_grant if task.lease_grant is not None else task.lease_seconds


def too_far(
    status: str, lease_expires: float | None, length: float, now: float, skew: float
) -> bool:
    """Whether an in-progress lease ends further ahead than it lasts (plus ``skew``): it was
    granted by a machine whose clock is ahead, and would otherwise hold the task that long."""
    return (
        status == IN_PROGRESS and lease_expires is not None and lease_expires - now > length + skew
    )


def bound(task: Task, now: float, log_limit: int) -> None:
    """Bring a lease that ends too far ahead (:func:`too_far`) back to its length from now."""
    ends = task.lease_expires
    task.lease_expires = float(math.ceil(now + lease_length(task)))
    add_log(
        task,
        now,
        f"lease of {task.agent} ended at {iso(ends or now)}, further ahead than it lasts "
        f"(a clock ahead?); bounded to {iso(task.lease_expires)}",
        log_limit,
    )


def renew(task: Task, now: float) -> None:
    # Whole seconds, rounded up: the task file stores second precision, and a lease must never
    # end earlier than granted because of how it was written down.
    task.lease_expires = float(math.ceil(now + lease_length(task)))
    task.updated_at = now


def end(task: Task) -> None:
    """The grant is over (finished, released, taken back, cancelled): no lease, and the claim's
    own lease length ends with it."""
    task.lease_expires = None
    task.lease_grant = None


def grant(task: Task, agent: str, now: float, lease_seconds: float | None) -> None:
    """Grant ``agent`` a lease: of ``lease_seconds`` for this grant only when given, else of
    the task's own ``lease_seconds``; the fencing epoch grows."""
    task.lease_grant = lease_seconds
    task.status = IN_PROGRESS
    task.agent = agent
    task.epoch += 1
    task.started_at = now
    if task.assigned_at is None:
        task.assigned_at = now
    task.blocked_reason = None
    renew(task, now)


def add_log(task: Task, now: float, message: str, limit: int) -> None:
    task.logs.append(LogLine(now, message))
    if len(task.logs) > limit:
        del task.logs[: len(task.logs) - limit]


def expire(task: Task, now: float, log_limit: int) -> bool:
    """Take back an expired lease: pending again with ``attempts + 1``, or failed once
    ``max_attempts`` leases have expired. Returns True when the task failed."""
    holder = task.agent
    task.attempts += 1
    end(task)
    task.updated_at = now
    if task.attempts >= task.max_attempts:
        task.status = FAILED
        task.completed_at = now
        task.error = (
            f"lease expired {task.attempts} time(s) (max_attempts {task.max_attempts}); "
            f"last holder {holder}"
        )
        add_log(
            task,
            now,
            f"lease of {holder} expired; failed after {task.attempts} attempts",
            log_limit,
        )
        return True
    task.status = PENDING
    task.agent = None
    add_log(task, now, f"lease of {holder} expired; requeued (attempt {task.attempts})", log_limit)
    return False

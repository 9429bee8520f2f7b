"""The task board (``coord.tasks``): create, claim, assign, progress, log, finish, release, cancel,
list and reap tasks.

All state changes are single-record atomic updates (see :mod:`agentcoord.store.base`), so claims
are exactly-once under any number of concurrent claimers: the check "is this still claimable?"
runs inside the update (SPEC section 4). The lease holder's writes (progress, log, complete,
fail, release) check the lease and the fencing epoch inside their own update
(:func:`agentcoord.core.leases.check_holder`), so a holder whose lease expired or was taken over
is refused (exit 4) and its late write changes nothing.

Follow-up effects on other records (blocking dependents of a failed task, refreshing agent views)
are separate updates that are safe to repeat and are re-derived by ``claim``/``reap`` if a process
dies in between. The board learns nothing about agents by itself: :class:`BoardHooks` (wired by
:class:`agentcoord.api.Coordinator` to the agents area and the router) is how it asks for the
circuit breaker's consent, reports ownership changes and routes ``assign --auto``.
"""

from __future__ import annotations

import os
import re

from ..core import deps, leases
from ..core.deps import order_key
from ..core.models import (
    ASSIGNED,
    BLOCKED,
    CANCELLED,
    COMPLETE,
    FAILED,
    IN_PROGRESS,
    MAX_LOG_LINES,
    OPEN_STATES,
    PENDING,
    TASK_STATES,
    Task,
    TaskHead,
)
from ..core.validate import (
    MAX_INT,
    MAX_TIME,
    MAX_TITLE,
    check_name,
    json_data,
    number,
    one_line,
    seconds,
    text,
    timestamp,
    whole,
)
from ..errors import (
    Conflict,
    CoordError,
    CorruptData,
    InvalidInput,
    InvalidTransition,
    NotFound,
    NothingToClaim,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    # TaskBoard.list shadows the builtin inside the class body.
    HeadList = list[TaskHead]
    TaskList = list[Task]
    ErrorList = list[CorruptData]
    from collections.abc import Callable, Iterable
    from typing import Any

    from ..core.config import Config
    from ..store.base import Store


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


#: The agent file's progress figures are refreshed by a progress report only when the task had
#: not been updated for this long; ownership changes and heartbeats always refresh the view.
VIEW_REFRESH = 5.0
#: The shortest lease a task or a claim may have (seconds).
MIN_LEASE = 0.001


def _no_change(task: Task, previous: str | None, progress_only: bool) -> None:
    return None


def _no_check(agent: str) -> None:
    return None


def _no_router(capability: str | None) -> str:
    raise NotFound("automatic assignment is not available here (no router)")


def _ignore(message: str) -> None:
    return None


class BoardHooks:
    """What the board tells, and asks of, the rest of the domain.

    - ``before_claim(agent)``: raise to refuse the claim (the circuit breaker, exit 4);
    - ``on_change(task, previous_holder, progress_only)``: a task's ownership or progress changed
      after its write committed (agent views); must not raise for ordinary failures;
    - ``pick_agent(capability)``: the agent ``assign --auto`` routes to, or :class:`NotFound`;
    - ``warn(message)``: a follow-up effect failed after the operation's own write committed
      (the interface shows it; the next operation or ``coord doctor`` repairs it).
    """

    __slots__ = ("before_claim", "on_change", "pick_agent", "warn")

    def __init__(
        self,
        *,
        before_claim: Callable[[str], None] = _no_check,
        on_change: Callable[[Task, str | None, bool], None] = _no_change,
        pick_agent: Callable[[str | None], str] = _no_router,
        warn: Callable[[str], None] = _ignore,
    ) -> None:
        self.before_claim = before_claim
        self.on_change = on_change
        self.pick_agent = pick_agent
        self.warn = warn


class TaskBoard:
    """The task operations, over a :class:`~agentcoord.store.base.Store`.

    ``config`` supplies the defaults of new tasks (``lease_seconds``, ``max_attempts``), ``clock``
    the time (POSIX seconds), ``hooks`` the links to agents and routing (:class:`BoardHooks`).
    """

    def __init__(
        self,
        store: Store,
        config: Config,
        clock: Callable[[], float],
        hooks: BoardHooks | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.hooks = hooks if hooks is not None else BoardHooks()

    def _before_claim(self, agent: str) -> None:
        self.hooks.before_claim(agent)

    def _on_change(self, task: Task, previous: str | None, *, progress_only: bool = False) -> None:
        """Follow-up: the agents' views. Never fails the operation (see :meth:`_follow_up`)."""
        self._follow_up(
            f"the agent view of task {task.id}",
            lambda: self.hooks.on_change(task, previous, progress_only),
        )

    def _follow_up(self, what: str, effect: Callable[[], None]) -> None:
        """Run a follow-up effect of an operation whose own write already committed (SPEC
        section 4, "the commit point"): its failure (a lock that stays held, the backend gone,
        an unreadable record) is reported through ``hooks.warn`` and repaired later (by the
        next operation, ``coord reap`` or ``coord doctor``), never raised: the caller must not
        retry what already happened."""
        try:
            effect()
        except CoordError as exc:
            self.hooks.warn(
                f"{what} was not updated ({exc.message}); the operation itself succeeded, and "
                "'coord doctor --fix' or the next operation repairs it"
            )

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
    ) -> TaskList:
        """Tasks in claim order, filtered. Unreadable files are skipped and reported in
        ``errors`` (so one corrupt file never hides the board)."""
        if limit is not None:
            whole(limit, "limit")
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
        index, so listing a few of 10,000 tasks reads only those few files.

        ``ready=True``: only the tasks a claim would take now (:func:`agentcoord.core.deps.ready`:
        pending, or assigned to ``agent``, or with an expired lease, and every dependency
        complete); with ``agent`` that means "claimable by that agent", not "held by it".
        ``ready=False``: the open tasks a claim would not take now."""
        if agent is not None:
            check_name(agent, "agent name")
        statuses = _statuses(status)
        every = self.store.list_task_heads(
            statuses=statuses if ready is None else None, errors=errors
        )
        found = every
        if ready is not None:
            states = {h.id: h.status for h in every}
            now = self.clock()
            found = [
                h
                for h in every
                if h.status in OPEN_STATES and deps.ready(h, states, now, agent) == ready
            ]
            if statuses is not None:
                found = [h for h in found if h.status in statuses]
        if agent is not None and not ready:
            found = [h for h in found if h.agent == agent]
        if project is not None:
            found = [h for h in found if h.project == project]
        found.sort(key=order_key)
        return found

    def readiness(self, heads: Iterable[TaskHead], *, agent: str | None = None) -> dict[str, bool]:
        """For each pending or assigned task among ``heads``: whether a claim (by ``agent``)
        would take it now (ready) or not (waiting on a dependency, or assigned to another)."""
        waiting = [h for h in heads if h.status in (PENDING, ASSIGNED)]
        if not waiting:
            return {}
        everything = self.store.list_task_heads()
        states = {h.id: h.status for h in everything}
        now = self.clock()
        return {h.id: deps.ready(h, states, now, agent) for h in waiting}

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
        title = one_line(title, "title", MAX_TITLE)  # SPEC 16: a newline in a title is refused
        if id is not None:
            check_name(id, "task id")
        for name, what in (
            (project, "project"),
            (assign, "agent name"),
            (created_by, "agent name"),
        ):
            if name is not None:
                check_name(name, what)
        whole(priority, "priority", minimum=-MAX_INT)
        dep_ids = list(dict.fromkeys(check_name(d, "dependency id") for d in depends_on))
        attempts = whole(
            self.config["max_attempts"] if max_attempts is None else max_attempts,
            "max attempts",
            minimum=1,
        )
        lease = seconds(
            self.config.float("lease_seconds") if lease_seconds is None else lease_seconds,
            "lease",
            minimum=MIN_LEASE,
        )
        if eta is not None:
            eta = timestamp(eta, "eta")
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
        now = self.clock()
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
            now = self.clock()
            task.status, task.agent, task.assigned_at, task.updated_at = ASSIGNED, agent, now, now
            leases.add_log(task, now, f"assigned to {agent}", MAX_LOG_LINES)
            return task

        task = self.store.update_task(task_id, fn)
        self._on_change(task, previous[0])
        return task

    def assign_auto(self, task_id: str, *, capability: str | None = None) -> Task:
        """Assign ``task_id`` to the agent the router picks (the healthy, least-loaded agent with a
        closed breaker, see :mod:`agentcoord.domain.routing`); :class:`NotFound` (exit 3) says why
        when none qualifies."""
        self.get(task_id)  # an unknown task is reported as such, before routing
        return self.assign(task_id, self.hooks.pick_agent(capability))

    def cancel(self, task_id: str, *, reason: str | None = None) -> Task:
        """Withdraw an unfinished task (a coordinator's decision; no lease needed)."""
        check_name(task_id, "task id")
        why = text(reason, "reason") if reason is not None else None
        previous: list[str | None] = [None]

        def fn(task: Task) -> Task:
            if task.finished:
                raise InvalidTransition(f"task {task.id} is already {task.status}", task=task.id)
            now = self.clock()
            previous[0] = task.agent
            task.status, task.completed_at, task.updated_at = CANCELLED, now, now
            leases.end(task)
            task.error = why
            leases.add_log(task, now, "cancelled" + (f": {why}" if why else ""), MAX_LOG_LINES)
            return task

        task = self.store.update_task(task_id, fn)
        self._block_dependents(task)
        self._on_change(task, previous[0])
        return task

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
            lease_seconds = seconds(lease_seconds, "lease", minimum=MIN_LEASE)
        self._before_claim(agent)
        if task_id is not None:
            check_name(task_id, "task id")
            claimed = self._claim_one(task_id, agent, lease_seconds, explicit=True)
            assert isinstance(claimed, Task)  # explicit claims raise instead of returning None
            return claimed
        heads = self.store.list_task_heads(statuses=(PENDING, ASSIGNED, IN_PROGRESS))
        states = {h.id: h.status for h in heads}
        if any(h.depends_on for h in heads):  # finished dependencies are not among the open
            states = {h.id: h.status for h in self.store.list_task_heads()}
        now = self.clock()
        candidates = [
            h
            for h in heads
            if (project is None or h.project == project)
            and deps.takeable(h, now, agent)
            # Ready ones, and those with a failed dependency: _claim_one marks these blocked
            # (repairing a missed propagation) and moves on. Waiting ones are not candidates.
            and (not deps.unmet(h, states) or deps.failed_dependency(h, states) is not None)
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
            now = self.clock()
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
                        if lease_seconds is not None:
                            task.lease_grant = lease_seconds
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
            self._on_change(task, str(outcome["reclaimed"]))
        if not outcome.get("renewed"):
            self._on_change(task, None)
        return task

    # -- leases ------------------------------------------------------------------------------
    def renew_all(self, agent: str) -> leases.Renewal:
        """Renew every live lease ``agent`` holds (a heartbeat). Returns exactly the tasks
        renewed; ``.lost`` lists the ids of those it held but no longer does (the lease expired,
        or another agent took the task over): an expired lease is never revived by a late
        heartbeat (SPEC section 4)."""
        check_name(agent, "agent name")
        renewed: TaskList = []
        lost: list[str] = []
        for cand in self.store.list_task_heads(statuses=[IN_PROGRESS]):
            if cand.agent != agent:
                continue
            outcome: list[str] = []

            def fn(task: Task, outcome: list[str] = outcome) -> Task | None:
                outcome.clear()
                now = self.clock()
                if task.status == IN_PROGRESS and task.agent == agent:
                    if task.lease_expired(now):
                        outcome.append("lost")
                        return None
                    leases.renew(task, now)
                    outcome.append("renewed")
                    return task
                if task.agent != agent or task.status in (PENDING, ASSIGNED):
                    outcome.append("lost")  # taken back or taken over since the heads read
                return None  # finished by the agent itself meanwhile: neither

            try:
                task = self.store.update_task(cand.id, fn)
            except NotFound:
                continue
            if outcome == ["renewed"]:
                renewed.append(task)
            elif outcome == ["lost"]:
                lost.append(task.id)
        return leases.Renewal(renewed, lost)

    def release_all(self, agent: str, *, reason: str | None = None) -> TaskList:
        """Give back every task ``agent`` holds (pending, no attempt counted) and drop its
        reservations (tasks assigned to it go back to pending for anyone); a task that moved on
        meanwhile is left alone. Returns the tasks changed (``agent retire``)."""
        check_name(agent, "agent name")
        released = []
        for head in self.store.list_task_heads(statuses=[IN_PROGRESS, ASSIGNED]):
            if head.agent != agent:
                continue
            try:
                if head.status == IN_PROGRESS:
                    released.append(self.release(head.id, agent=agent, reason=reason))
                else:
                    task = self._unreserve(head.id, agent, reason)
                    if task is not None:
                        released.append(task)
            except (Conflict, NotFound):
                continue
        return released

    def _unreserve(self, task_id: str, agent: str, reason: str | None) -> Task | None:
        """Back to pending for anyone, if ``task_id`` is still reserved for ``agent``."""

        done: list[bool] = [False]

        def fn(task: Task) -> Task | None:
            done[0] = task.status == ASSIGNED and task.agent == agent  # fn may run again
            if not done[0]:
                return None
            now = self.clock()
            task.status, task.agent, task.updated_at = PENDING, None, now
            why = f": {reason}" if reason else ""
            leases.add_log(task, now, f"reservation for {agent} dropped{why}", MAX_LOG_LINES)
            return task

        task = self.store.update_task(task_id, fn)
        return task if done[0] else None

    @property
    def clock_skew(self) -> float:
        """Config ``clock_skew`` (seconds, default 60): how far ahead a time may be before it
        is a clock's fault."""
        return self.config.float("clock_skew")

    def reap(self, ids: Iterable[str] | None = None) -> TaskList:
        """Take back every expired lease (pending with attempts + 1, or failed), or only those
        of ``ids`` (each re-checked under its lock); and bound a lease that ends further ahead
        than it lasts (granted by a machine whose clock is ahead: it would hold the task that
        long) to its length from now. Returns the tasks it changed."""
        changed = []
        skew = self.clock_skew
        if ids is not None:
            candidates = [check_name(i, "task id") for i in ids]
        else:
            now = self.clock()
            candidates = [
                h.id
                for h in self.store.list_task_heads(statuses=[IN_PROGRESS])
                if h.lease_expired(now)
                or leases.too_far(h.status, h.lease_expires, h.lease_length, now, skew)
            ]
        for cand_id in candidates:
            outcome: dict[str, Any] = {}

            def fn(task: Task, outcome: dict[str, Any] = outcome) -> Task | None:
                outcome.clear()
                now = self.clock()
                length = leases.lease_length(task)
                if leases.too_far(task.status, task.lease_expires, length, now, skew):
                    leases.bound(task, now, MAX_LOG_LINES)
                    outcome["bounded"] = True
                    return task
                if not task.lease_expired(now):
                    return None
                outcome["holder"] = task.agent
                outcome["failed"] = leases.expire(task, now, MAX_LOG_LINES)
                return task

            try:
                task = self.store.update_task(cand_id, fn)
            except NotFound:
                continue
            if not outcome:
                continue
            changed.append(task)
            if outcome.get("bounded"):
                continue
            if outcome["failed"]:
                self._after_failure(task, str(outcome["holder"]))
            else:
                self._on_change(task, str(outcome["holder"]))
        return changed

    # -- failure propagation -----------------------------------------------------------------
    def _after_failure(self, task: Task, agent: str) -> None:
        self._block_dependents(task)
        self._on_change(task, agent)

    def _block_dependents(self, failed: Task) -> None:
        """Follow-up: block the open dependents of ``failed``. A dependent left pending is
        blocked by the next claim that meets it, or by ``coord doctor --fix``."""
        self._follow_up(
            f"the dependents of task {failed.id}", lambda: self._block_dependents_now(failed)
        )

    def _block_dependents_now(self, failed: Task) -> None:
        everything = self.store.list_task_heads()
        for dep_id in deps.dependents_closure(failed.id, everything):

            def fn(task: Task) -> Task | None:
                if task.status not in (PENDING, ASSIGNED):
                    return None
                now = self.clock()
                task.status, task.updated_at = BLOCKED, now
                task.blocked_reason = f"dependency {failed.id} is {failed.status}"
                task.dep_states[failed.id] = failed.status
                leases.add_log(task, now, f"blocked: {task.blocked_reason}", MAX_LOG_LINES)
                return task

            try:
                self.store.update_task(dep_id, fn)
            except NotFound:
                continue

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
        if eta is not None:
            eta = timestamp(eta, "eta")
        _epoch(epoch)

        refresh = [False]

        def fn(task: Task) -> Task:
            now = self.clock()
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
                task.eta = _estimate(task.started_at, now, pct)
            if msg is not None:
                leases.add_log(task, now, msg, MAX_LOG_LINES)
            leases.renew(task, now)
            return task

        task = self.store.update_task(task_id, fn)
        if refresh[0]:  # rapid progress loops skip the agent-file write (and its imports)
            self._on_change(task, agent, progress_only=True)
        return task

    def log(self, task_id: str, message: str, *, agent: str, epoch: int | None = None) -> Task:
        check_name(task_id, "task id")
        check_name(agent, "agent name")
        msg = text(message, "message")
        _epoch(epoch)

        def fn(task: Task) -> Task:
            now = self.clock()
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
        _epoch(epoch)

        def fn(task: Task) -> Task | None:
            now = self.clock()
            if _finished_by(task, agent, status, epoch):
                return None  # a retry of what already happened: success, nothing changes
            leases.check_holder(task, agent, now, epoch)
            task.status, task.completed_at, task.updated_at = status, now, now
            leases.end(task)
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
            self._on_change(task, agent)
        return task

    def release(
        self, task_id: str, *, agent: str, reason: str | None = None, epoch: int | None = None
    ) -> Task:
        """Give the task back (pending, no holder) without counting an attempt."""
        check_name(task_id, "task id")
        check_name(agent, "agent name")
        why = text(reason, "reason") if reason is not None else None
        _epoch(epoch)

        def fn(task: Task) -> Task:
            now = self.clock()
            leases.check_holder(task, agent, now, epoch)
            task.status, task.agent, task.updated_at = PENDING, None, now
            leases.end(task)
            leases.add_log(
                task, now, f"released by {agent}" + (f": {why}" if why else ""), MAX_LOG_LINES
            )
            return task

        task = self.store.update_task(task_id, fn)
        self._on_change(task, agent)
        return task


def _epoch(epoch: int | None) -> None:
    """A fencing epoch from the caller: a whole number the store holds exactly."""
    if epoch is not None:
        whole(epoch, "epoch")


def _estimate(started: float, now: float, pct: float) -> float | None:
    """The ETA from the rate so far, or None when it lies beyond any time a record can hold
    (a tiny percentage: ``percent 1e-300`` would put it past year 9999)."""
    eta = started + (now - started) * 100.0 / pct
    return eta if eta <= MAX_TIME else None


def _finished_by(task: Task, agent: str, status: str, epoch: int | None) -> bool:
    """Whether ``task`` already is ``status`` by ``agent``'s own hand (at ``epoch`` if given):
    completing or failing it again is then a safe retry (SPEC section 4), not a conflict."""
    if task.status != status or task.agent != agent or task.completed_at is None:
        return False
    if epoch is not None and epoch != task.epoch:
        return False
    last = next(
        (ln.message for ln in reversed(task.logs) if ln.message.endswith(f" by {agent}")), ""
    )
    return last == f"{status} by {agent}"


def _iso(ts: float | None) -> str:
    from ..core.clock import iso

    return iso(ts) if ts is not None else "-"


def _plain(value: float) -> float | int:
    """``3500`` rather than ``3500.0`` in the json block, as the seed shows it."""
    return int(value) if value == int(value) else value

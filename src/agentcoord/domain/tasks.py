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
    normalize_block,
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
    DependencyCycle,
    InvalidInput,
    InvalidTransition,
    LeaseLost,
    NotFound,
    NothingToClaim,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    # TaskBoard.list shadows the builtin inside the class body.
    HeadList = list[TaskHead]
    Names = list[str]
    TaskList = list[Task]
    ErrorList = list[CorruptData]
    from collections.abc import Callable, Iterable, Mapping
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


def open_parents(tasks: Iterable[Task | TaskHead]) -> set[str]:
    """The ids of tasks with an open child among ``tasks`` (heads are enough: they carry
    ``parent``). Such a task is not ready: it cannot complete while a child is open, so a claim
    would hand out work that can never finish (SPEC sections 4 and 11)."""
    return {t.parent for t in tasks if t.parent and t.status in OPEN_STATES}


def claimable_now(
    task: Task | TaskHead,
    states: dict[str, str],
    parents: set[str],
    now: float,
    agent: str | None = None,
) -> bool:
    """ "Ready" means claimable now (SPEC section 4): :func:`agentcoord.core.deps.ready` (takeable
    by ``agent``, every dependency complete) and no open child (``parents``: from
    :func:`open_parents` over every head). ``claim``, ``task list --ready``, the API, MCP and
    the monitor all use this rule."""
    return task.id not in parents and deps.ready(task, states, now, agent)


def _no_change(task: Task, previous: str | None, progress_only: bool) -> None:
    return None


def _no_check(agent: str, register: bool = False) -> None:
    return None


def _anyone(agent: str, purpose: str, register: bool) -> None:
    return None


def _no_router(capability: str | list[str] | None) -> str:
    raise NotFound("automatic assignment is not available here (no router)")


def _ignore(message: str) -> None:
    return None


class BoardHooks:
    """What the board tells, and asks of, the rest of the domain.

    - ``before_claim(agent, register)``: raise to refuse the claim (strict identity: an unknown
      agent exit 3 unless ``register``, a retired one exit 4; the circuit breaker, exit 4);
    - ``identify(agent, purpose, register)``: strict identity for ``purpose`` "assign" (the
      assignee: unknown exit 3 unless ``register``, retired exit 4) or "act" (a lease holder's
      update that was refused: an unknown agent is told it is unknown, exit 3);
    - ``on_change(task, previous_holder, progress_only)``: a task's ownership or progress changed
      after its write committed (agent views); must not raise for ordinary failures;
    - ``pick_agent(capability)``: the agent ``assign --auto`` routes to (one capability or a
      list of them, all required), or :class:`NotFound`;
    - ``warn(message)``: something the caller should know about an operation that succeeded:
      a follow-up effect failed after its own write committed (the next operation or ``coord
      doctor`` repairs it), or an edit removed something the task did not have (the interface
      shows it on stderr, MCP under ``warnings``).
    """

    __slots__ = ("before_claim", "identify", "on_change", "pick_agent", "warn")

    def __init__(
        self,
        *,
        before_claim: Callable[[str, bool], None] = _no_check,
        identify: Callable[[str, str, bool], None] = _anyone,
        on_change: Callable[[Task, str | None, bool], None] = _no_change,
        pick_agent: Callable[[str | list[str] | None], str] = _no_router,
        warn: Callable[[str], None] = _ignore,
    ) -> None:
        self.before_claim = before_claim
        self.identify = identify
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

    def _before_claim(self, agent: str, register: bool = False) -> None:
        self.hooks.before_claim(agent, register)

    def _update_held(self, task_id: str, fn: Callable[[Task], Task | None], agent: str) -> Task:
        """``update_task`` for a lease holder's write: when it is refused because ``agent``
        does not hold the lease, an agent that was never registered is told so (exit 3, SPEC
        section 11) rather than that it lost a lease it never had."""
        try:
            return self.store.update_task(task_id, fn)
        except LeaseLost:
            self.hooks.identify(agent, "act", False)
            raise

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

    def find(self, task_id: str) -> tuple[Task, str | None]:
        """``(task, None)`` for a live task, ``(task, archive name)`` for an archived one
        (archived tasks stay readable, SPEC section 11); :class:`NotFound` (exit 3) if it is
        neither."""
        try:
            return self.get(task_id), None
        except NotFound:
            found = self.store.find_archived_task(task_id)
            if found is None:
                raise
            name, task = found
            return task, name

    def show(self, task_id: str) -> tuple[Task, str | None]:
        """:meth:`find` for showing: the task with its dependencies' states read now (one read
        of the heads), not as they were at the task's own last write. The stored
        ``dep_states`` (the markdown file's ``## Dependencies`` section) is a snapshot for
        people reading the file; every show (CLI, API, MCP) goes through here. A dependency no
        longer on the board shows its archived state (it is finished)."""
        task, archive = self.find(task_id)
        if task.depends_on:
            live = {h.id: h.status for h in self.store.list_task_heads()}
            states: dict[str, str] = {}
            for dep in task.depends_on:
                if dep in live:
                    states[dep] = live[dep]
                    continue
                found = self.store.find_archived_task(dep)
                if found is not None:
                    states[dep] = found[1].status
                elif dep in task.dep_states:
                    states[dep] = task.dep_states[dep]
            task.dep_states = states
        return task, archive

    def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        agent: str | None = None,
        project: str | None = None,
        ready: bool | None = None,
        limit: int | None = None,
        errors: list[CorruptData] | None = None,
        label: str | None = None,
        parent: str | None = None,
        archived: bool = False,
    ) -> TaskList:
        """Tasks in claim order, filtered (see :meth:`heads`). Unreadable files are skipped and
        reported in ``errors`` (so one corrupt file never hides the board). ``archived``: the
        archived tasks instead of the live ones (``ready`` does not apply to them)."""
        if limit is not None:
            whole(limit, "limit")
        if archived:
            if ready is not None:
                raise InvalidInput("ready does not apply to archived tasks")
            found_tasks = self.archived(
                status=status, agent=agent, project=project, label=label, parent=parent
            )
            return found_tasks[:limit] if limit is not None else found_tasks
        found = self.heads(
            status=status,
            agent=agent,
            project=project,
            ready=ready,
            errors=errors,
            label=label,
            parent=parent,
        )
        return self.load(found[:limit] if limit is not None else found, errors=errors)

    def archived(
        self,
        *,
        status: str | Iterable[str] | None = None,
        agent: str | None = None,
        project: str | None = None,
        label: str | None = None,
        parent: str | None = None,
        errors: ErrorList | None = None,
    ) -> TaskList:
        """The archived tasks (``cleanup`` moved them), filtered like :meth:`heads`, newest
        archive entry of each id only, in claim order."""
        wanted = _statuses(status)
        for value, what in ((agent, "agent name"), (project, "project"), (label, "label")):
            if value is not None:
                check_name(value, what)
        if parent is not None:
            check_name(parent, "parent id")
        newest: dict[str, Task] = {}
        for _, task in self.store.list_archived_tasks(errors=errors):
            seen = newest.get(task.id)
            if seen is None or (task.updated_at or 0.0) >= (seen.updated_at or 0.0):
                newest[task.id] = task
        out = [
            t
            for t in newest.values()
            if (wanted is None or t.status in wanted)
            and (agent is None or t.agent == agent)
            and (project is None or t.project == project)
            and (label is None or label in t.labels)
            and (parent is None or t.parent == parent)
        ]
        out.sort(key=order_key)
        return out

    def search(
        self,
        text: str,
        *,
        label: str | None = None,
        status: str | Iterable[str] | None = None,
        archived: bool = False,
        limit: int | None = None,
        errors: ErrorList | None = None,
    ) -> tuple[TaskList, int]:
        """Tasks whose id, title, description or a label contains ``text`` (case-insensitive),
        in claim order: ``(the first limit of them, how many matched)``. ``archived``: search
        the archived tasks instead of the live ones (SPEC section 11)."""
        needle = one_line(text, "search text", MAX_TITLE).casefold()
        if limit is not None:
            whole(limit, "limit")
        if label is not None:
            check_name(label, "label")
        if archived:
            pool = self.archived(status=status, label=label, errors=errors)
        else:
            wanted = _statuses(status)
            pool = self.store.list_tasks(statuses=wanted, errors=errors)
            if label is not None:
                pool = [t for t in pool if label in t.labels]
            pool.sort(key=order_key)
        found = [
            t
            for t in pool
            if needle in t.id.casefold()
            or needle in t.title.casefold()
            or needle in t.description.casefold()
            or any(needle in lb.casefold() for lb in t.labels)
        ]
        return (found[:limit] if limit is not None else found), len(found)

    def heads(
        self,
        *,
        status: str | Iterable[str] | None = None,
        agent: str | None = None,
        project: str | None = None,
        ready: bool | None = None,
        errors: ErrorList | None = None,
        label: str | None = None,
        parent: str | None = None,
    ) -> HeadList:
        """The heads of the matching tasks in claim order: filters and sorting work on the
        index, so listing a few of 10,000 tasks reads only those few files.

        ``ready=True``: only the tasks a claim would take now (:func:`claimable_now`: pending, or
        assigned to ``agent``, or with an expired lease, every dependency complete and no open
        child); with ``agent`` that means "claimable by that agent", not "held by it".
        ``ready=False``: the open tasks a claim would not take now. A task that requires
        capabilities is ready for an agent only when the agent has them all.

        ``label``: only tasks with that label; ``parent``: only the children of that task."""
        if agent is not None:
            check_name(agent, "agent name")
        if label is not None:
            check_name(label, "label")
        if parent is not None:
            check_name(parent, "parent id")
        statuses = _statuses(status)
        every = self.store.list_task_heads(
            statuses=statuses if ready is None else None, errors=errors
        )
        found = every
        if ready is not None:
            states = {h.id: h.status for h in every}
            parents = open_parents(every)
            now = self.clock()
            caps: set[str] | None = None
            if agent is not None and any(h.requires for h in every):
                caps = set(self._capabilities(agent))

            def claimable(h: TaskHead) -> bool:
                able = claimable_now(h, states, parents, now, agent)
                return able and (caps is None or set(h.requires) <= caps)

            found = [h for h in every if h.status in OPEN_STATES and claimable(h) == ready]
            if statuses is not None:
                found = [h for h in found if h.status in statuses]
        if agent is not None and not ready:
            found = [h for h in found if h.agent == agent]
        if project is not None:
            found = [h for h in found if h.project == project]
        if label is not None:
            found = [h for h in found if label in h.labels]
        if parent is not None:
            found = [h for h in found if h.parent == parent]
        found.sort(key=order_key)
        return found

    def _capabilities(self, agent: str) -> Names:
        """The capabilities ``agent`` registered (none for an unknown agent). Read only when a
        task requires some, so claims of tasks without requirements cost nothing more."""
        try:
            return list(self.store.get_agent(agent).capabilities)
        except NotFound:
            return []

    def readiness(self, heads: Iterable[TaskHead], *, agent: str | None = None) -> dict[str, bool]:
        """For each pending or assigned task among ``heads``: whether a claim (by ``agent``)
        would take it now (ready) or not (waiting on a dependency or an open child, or assigned
        to another). One read of the heads, whatever the number of tasks asked about."""
        waiting = [h for h in heads if h.status in (PENDING, ASSIGNED)]
        if not waiting:
            return {}
        everything = self.store.list_task_heads()
        states = {h.id: h.status for h in everything}
        parents = open_parents(everything)
        now = self.clock()
        return {h.id: claimable_now(h, states, parents, now, agent) for h in waiting}

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
        labels: Iterable[str] = (),
        requires: Iterable[str] = (),
        parent: str | None = None,
        description: str | None = None,
    ) -> Task:
        """Create a task and return it (its id generated unless ``id`` is given).

        SPEC sections 4 and 11: ``depends_on`` must exist and form no cycle
        (:class:`DependencyCycle`, exit 2); a failed dependency creates it blocked. ``labels``
        (names), ``requires`` (capabilities a claimer must have registered), ``parent`` (an
        existing task that is not complete) and ``description`` (free markdown, ``- [ ]`` items
        are acceptance criteria). Bad input is :class:`InvalidInput` (exit 2), an unknown
        dependency or parent :class:`NotFound` (exit 3), a taken id :class:`AlreadyExists`
        (exit 4)."""
        title = one_line(title, "title", MAX_TITLE)  # SPEC 16: a newline in a title is refused
        label_ids = _names(labels, "label")
        caps = _names(requires, "capability")
        if parent is not None:
            check_name(parent, "parent id")
        body = _description(description) if description is not None else ""
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
            labels=label_ids,
            requires=caps,
            parent=parent,
            description=body,
        )
        if parent is not None:
            _check_parent(id or "", parent, {h.id: h for h in self.store.list_task_heads()})
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
        if assign is not None:  # strict identity (SPEC section 11), as for task assign
            self.hooks.identify(assign, "assign", False)
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

    def assign(
        self, task_id: str, agent: str, *, register: bool = False, force: bool = False
    ) -> Task:
        """Reserve a pending task for ``agent`` (only it can claim the task).

        Strict identity (SPEC section 11): an agent never registered is :class:`NotFound`
        (exit 3) unless ``register`` (or ``auto_register``); a retired one :class:`Conflict`
        (exit 4). A task already assigned to another agent is :class:`Conflict` (exit 4, with
        ``holder``) unless ``force`` reassigns it; assigning it again to the same agent
        changes nothing."""
        check_name(task_id, "task id")
        check_name(agent, "agent name")
        self.hooks.identify(agent, "assign", register)
        previous: list[str | None] = [None]

        def fn(task: Task) -> Task | None:
            if task.status not in (PENDING, ASSIGNED):
                raise InvalidTransition(
                    f"task {task.id} is {task.status}; only pending or assigned tasks can be "
                    "assigned",
                    task=task.id,
                )
            previous[0] = task.agent
            if task.status == ASSIGNED and task.agent == agent:
                return None  # already so: a repeat changes nothing
            if task.status == ASSIGNED and not force:
                raise Conflict(
                    f"task {task.id} is already assigned to {task.agent}; pass --force "
                    f"(API: force=True) to reassign it to {agent}",
                    task=task.id,
                    holder=task.agent,
                )
            self._check_capable(task, agent)
            now = self.clock()
            task.status, task.agent, task.assigned_at, task.updated_at = ASSIGNED, agent, now, now
            was = f" (was {previous[0]})" if previous[0] and previous[0] != agent else ""
            leases.add_log(task, now, f"assigned to {agent}{was}", MAX_LOG_LINES)
            return task

        task = self.store.update_task(task_id, fn)
        self._on_change(task, previous[0])
        return task

    def assign_auto(
        self, task_id: str, *, capability: str | None = None, force: bool = False
    ) -> Task:
        """Assign ``task_id`` to the agent the router picks (the healthy, least-loaded agent with a
        closed breaker, see :mod:`agentcoord.domain.routing`); :class:`NotFound` (exit 3) says why
        when none qualifies. ``force`` as in :meth:`assign`. The router picks only among agents
        that have ``capability`` and every capability the task requires (SPEC section 11)."""
        task = self.get(task_id)  # an unknown task is reported as such, before routing
        needs = list(dict.fromkeys([*task.requires, *([capability] if capability else [])]))
        wanted: str | Names | None = needs[0] if len(needs) == 1 else (needs or None)
        return self.assign(task_id, self.hooks.pick_agent(wanted), force=force)

    def _check_capable(self, task: Task, agent: str) -> None:
        """Raise :class:`Conflict` (exit 4, naming what is missing) unless ``agent`` registered
        every capability ``task`` requires (SPEC section 11). Reads the agent only when the
        task requires something."""
        if not task.requires:
            return
        have = self._capabilities(agent)
        missing = [c for c in task.requires if c not in have]
        if missing:
            raise Conflict(
                f"task {task.id} requires capability {', '.join(missing)}, which {agent} lacks "
                f"(has: {', '.join(have) or 'none'}; 'agent register {agent} --capability "
                f"{missing[0]}' adds it)",
                task=task.id,
                missing=missing,
            )

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

    # -- the lifecycle (SPEC section 11) ---------------------------------------------------
    def retry(self, task_id: str, *, reason: str | None = None) -> Task:
        """A failed or blocked task back to ``pending`` (SPEC section 11); returns it.

        ``attempts`` are kept; a task that used up ``max_attempts`` gets one more (its
        ``max_attempts`` grows to ``attempts + 1``, logged), so the next lease that expires
        fails it again rather than leave ``attempts`` above the maximum. The error moves to the
        log and the holder is dropped; a task that was reserved (``assigned``) before it was
        blocked stays reserved for that agent. Dependents the failure blocked are unblocked
        (a follow-up, :meth:`unblock_dependents`) when none of their other dependencies keeps
        them blocked. A failed task whose own dependency is failed, cancelled or blocked by
        now becomes ``blocked`` (with the reason) instead, and its dependents stay blocked. A
        blocked task whose dependency is still failed, cancelled or blocked is refused with
        :class:`InvalidTransition` (exit 4, naming it): retry that one first.
        Anything else (pending, in progress, complete, cancelled) is :class:`InvalidTransition`
        (exit 4); complete and cancelled tasks are :meth:`reopen`-ed."""
        check_name(task_id, "task id")
        why = text(reason, "reason") if reason is not None else None
        previous: list[str | None] = [None]

        def fn(task: Task) -> Task:
            if task.status not in (FAILED, BLOCKED):
                hint = "; 'task reopen' reopens it" if task.status in (COMPLETE, CANCELLED) else ""
                raise InvalidTransition(
                    f"task {task.id} is {task.status}; only failed or blocked tasks can be "
                    f"retried{hint}",
                    task=task.id,
                    status=task.status,
                )
            now = self.clock()
            previous[0] = task.agent if task.status == FAILED else None
            if task.status == BLOCKED:
                states = self._dep_states(task) if task.depends_on else {}
                task.dep_states.update(states)
                failed = deps.failed_dependency(task, states)
                if failed is not None:
                    raise InvalidTransition(
                        f"task {task.id} is blocked: its dependency {failed} is "
                        f"{states[failed]}; retry or reopen {failed} first",
                        task=task.id,
                        dependency=failed,
                    )
                was = f"blocked ({task.blocked_reason})" if task.blocked_reason else "blocked"
                _reopen(task, now, ASSIGNED if task.agent else PENDING)
            else:
                was = f"failed: {task.error}" if task.error else "failed"
                _reopen(task, now, PENDING)
                if task.attempts >= task.max_attempts:
                    task.max_attempts = task.attempts + 1
                    was += f"; max attempts raised to {task.max_attempts}"
            note = f" ({why})" if why else ""
            leases.add_log(task, now, f"retried{note}; was {was}", MAX_LOG_LINES)
            self._rederive(task, now)  # a failed task's own dependency may have failed since
            return task

        task = self.store.update_task(task_id, fn)
        self._after_reopen(task, previous[0])
        return task

    def reopen(self, task_id: str, *, reason: str | None = None) -> Task:
        """A complete or cancelled task back to ``pending`` (SPEC section 11); returns it.

        The result (or the cancel reason) moves to the log; attempts, epoch and the rest are
        kept. Dependents the cancel blocked are unblocked (:meth:`unblock_dependents`).
        Dependents that are pending simply wait for it again; dependents that already started
        or finished are left as they are (they ran on the work as it was: reopen them too if
        they must run again). A task whose own dependency is failed, cancelled or blocked
        becomes ``blocked`` (with the reason) instead of pending, and its dependents stay
        blocked. A failed task is :meth:`retry`-ed; any other state is
        :class:`InvalidTransition` (exit 4)."""
        check_name(task_id, "task id")
        why = text(reason, "reason") if reason is not None else None
        previous: list[str | None] = [None]

        def fn(task: Task) -> Task:
            if task.status not in (COMPLETE, CANCELLED):
                hint = "; 'task retry' retries it" if task.status == FAILED else ""
                raise InvalidTransition(
                    f"task {task.id} is {task.status}; only complete or cancelled tasks can "
                    f"be reopened{hint}",
                    task=task.id,
                    status=task.status,
                )
            now = self.clock()
            previous[0] = task.agent
            outcome = task.result if task.status == COMPLETE else task.error
            was = task.status + (f": {outcome}" if outcome else "")
            _reopen(task, now, PENDING)
            note = f" ({why})" if why else ""
            leases.add_log(task, now, f"reopened{note}; was {was}", MAX_LOG_LINES)
            self._rederive(task, now)  # blocked, not pending, if a dependency failed
            return task

        task = self.store.update_task(task_id, fn)
        self._after_reopen(task, previous[0])
        return task

    def _after_reopen(self, task: Task, previous: str | None) -> None:
        """Follow-ups of a task open again (retry, reopen, an edit that unblocked it): its
        dependents are unblocked; if it came back ``blocked`` they are blocked instead. A
        blocked one is first re-checked under its lock (write-then-verify): a dependency
        retried meanwhile ran its own unblock cascade before it could see this task blocked,
        and this re-read comes after that dependency's write, so one of the two unblocks it."""

        def unblock() -> None:
            if task.status != BLOCKED or self.unblock([task.id]):
                self.unblock_dependents(task.id)
            else:
                self._block_dependents_now(task)

        self._follow_up(f"the dependents of task {task.id}", unblock)
        if previous is not None:
            self._on_change(task, previous)

    def unblock_dependents(self, task_id: str) -> TaskList:
        """Unblock every blocked task that depends on ``task_id`` (transitively) and has no
        failed, cancelled or blocked dependency left: back to ``pending`` (``assigned`` if it
        was reserved). Each is decided under its own lock from its dependencies' states then,
        dependencies first; safe to repeat. Returns the tasks unblocked (``retry``, ``reopen``
        and ``coord doctor --fix`` use it)."""
        check_name(task_id, "task id")
        return self.unblock(deps.blocked_dependents(task_id, self.store.list_task_heads()))

    def unblock(self, ids: Iterable[str]) -> TaskList:
        """Unblock each of ``ids`` that is blocked with no failed, cancelled or blocked
        dependency (in the order given: dependencies first); returns those unblocked."""
        done: TaskList = []
        for dep_id in ids:
            changed = [False]

            def fn(task: Task, changed: list[bool] = changed) -> Task | None:
                changed[0] = False
                if task.status != BLOCKED:
                    return None
                states = self._dep_states(task) if task.depends_on else {}
                if deps.failed_dependency(task, states) is not None:
                    return None
                now = self.clock()
                was = task.blocked_reason
                task.dep_states.update(states)
                _reopen(task, now, ASSIGNED if task.agent else PENDING)
                leases.add_log(
                    task, now, "unblocked" + (f"; was blocked: {was}" if was else ""), MAX_LOG_LINES
                )
                changed[0] = True
                return task

            try:
                task = self.store.update_task(dep_id, fn)
            except NotFound:
                continue
            if changed[0]:
                done.append(task)
        return done

    def edit(
        self,
        task_id: str,
        *,
        title: str | None = None,
        priority: int | None = None,
        lease_seconds: float | None = None,
        max_attempts: int | None = None,
        add_deps: Iterable[str] = (),
        remove_deps: Iterable[str] = (),
        labels: Iterable[str] = (),
        unlabel: Iterable[str] = (),
        requires: Iterable[str] = (),
        unrequire: Iterable[str] = (),
        parent: str | None = None,
        description: str | None = None,
    ) -> Task:
        """Change a task's own fields in one atomic update (SPEC section 11); returns it.

        ``title`` (one line, :func:`~agentcoord.core.validate.one_line`), ``priority``,
        ``lease_seconds`` (what the *next* grant gets: a holder keeps the length of its current
        grant), ``max_attempts`` (at least the attempts used), dependencies added (each must
        exist; a cycle is :class:`DependencyCycle`, exit 2) or removed, labels and required
        capabilities added or removed, ``parent`` (an existing task that is not complete and
        not a descendant; ``""`` clears it) and ``description`` (free markdown; ``""`` clears
        it). Ownership, status, lease and epoch are untouched, so a holder's lease and fencing
        stay valid; a pending or blocked task's blocked state is re-derived from its new
        dependencies. Nothing to change is :class:`InvalidInput` (exit 2); an unknown task or
        dependency :class:`NotFound` (exit 3). Removing a dependency, label or capability the
        task does not have changes nothing and is said through ``hooks.warn``. The cycle checks
        read a snapshot, so a racing edit can slip past them: the edges added are verified
        after the write and taken back when they closed a cycle (:meth:`_verify_edges`). An
        edit that unblocks the task unblocks its dependents too, as :meth:`retry` does."""
        check_name(task_id, "task id")
        if title is not None:
            title = one_line(title, "title", MAX_TITLE)
        if priority is not None:
            whole(priority, "priority", minimum=-MAX_INT)
        if lease_seconds is not None:
            lease_seconds = seconds(lease_seconds, "lease", minimum=MIN_LEASE)
        if max_attempts is not None:
            whole(max_attempts, "max attempts", minimum=1)
        add = _names(add_deps, "dependency id")
        drop = _names(remove_deps, "dependency id")
        label_add, label_drop = _names(labels, "label"), _names(unlabel, "label")
        cap_add, cap_drop = _names(requires, "capability"), _names(unrequire, "capability")
        if parent is not None and parent != "":
            check_name(parent, "parent id")
        if description is not None:
            description = _description(description)
        given = [title, priority, lease_seconds, max_attempts, parent, description]
        lists = [add, drop, label_add, label_drop, cap_add, cap_drop]
        if all(v is None for v in given) and not any(lists):
            raise InvalidInput(f"task edit {task_id}: nothing to change")
        if set(add) & set(drop) or set(label_add) & set(label_drop) or set(cap_add) & set(cap_drop):
            raise InvalidInput("the same name is both added and removed")
        existing: dict[str, TaskHead] = {}
        if add or parent:
            existing = {h.id: h for h in self.store.list_task_heads()}
        dep_titles: dict[str, str] = {}
        if add:
            missing = [d for d in add if d not in existing]
            if missing:
                raise NotFound(f"unknown dependency: {', '.join(missing)}", missing=missing)
            if task_id in existing:  # the check sees the task's current dependencies too
                current = [d for d in existing[task_id].depends_on if d not in drop]
                deps.check_acyclic(task_id, [*current, *add], existing)
            for d in add:
                dep_titles[d] = self.store.get_task(d).title
        if parent:
            _check_parent(task_id, parent, existing)
        previous: list[str | None] = [None]
        absent: list[str] = []  # removals of what the task does not have (said, not refused)
        added: list[str] = []  # dependency edges this edit wrote (verified after the write)
        parented: list[str | None] = []  # [the parent replaced] when this edit set a parent
        was_blocked = [False]

        def fn(task: Task) -> Task:
            now = self.clock()
            previous[0] = task.agent
            added.clear()  # fn may run again (optimistic backends): only the last run counts
            parented.clear()
            was_blocked[0] = task.status == BLOCKED
            absent[:] = [
                *(
                    f"{d} was not a dependency of task {task.id}"
                    for d in drop
                    if d not in task.depends_on
                ),
                *(
                    f"label {v} was not on task {task.id}"
                    for v in label_drop
                    if v not in task.labels
                ),
                *(
                    f"capability {v} was not required by task {task.id}"
                    for v in cap_drop
                    if v not in task.requires
                ),
            ]
            changed: list[str] = []
            if title is not None and title != task.title:
                task.title = title
                changed.append("title")
            if priority is not None and priority != task.priority:
                task.priority = priority
                changed.append(f"priority {priority}")
            if lease_seconds is not None and lease_seconds != task.lease_seconds:
                if task.status == IN_PROGRESS and task.lease_grant is None:
                    task.lease_grant = task.lease_seconds  # the current grant keeps its length
                task.lease_seconds = lease_seconds
                changed.append(f"lease {lease_seconds:g}s")
            if max_attempts is not None and max_attempts != task.max_attempts:
                if max_attempts < task.attempts:
                    raise InvalidInput(
                        f"max attempts {max_attempts} is below the {task.attempts} attempt(s) "
                        f"task {task.id} already used",
                        field="max_attempts",
                    )
                task.max_attempts = max_attempts
                changed.append(f"max attempts {max_attempts}")
            new_deps = [d for d in task.depends_on if d not in drop]
            new_deps += [d for d in add if d not in new_deps]
            deps_changed = new_deps != task.depends_on
            if deps_changed:
                gone = [d for d in task.depends_on if d not in new_deps]
                added[:] = [d for d in new_deps if d not in task.depends_on]
                task.depends_on = new_deps
                for d in gone:
                    task.dep_states.pop(d, None)
                    task.dep_titles.pop(d, None)
                task.dep_titles.update(dep_titles)
                changed.append("dependencies " + ", ".join(new_deps or ["none"]))
            for attr, plus, minus, what in (
                ("labels", label_add, label_drop, "labels"),
                ("requires", cap_add, cap_drop, "requires"),
            ):
                old = getattr(task, attr)
                new = [v for v in old if v not in minus] + [v for v in plus if v not in old]
                if new != old:
                    setattr(task, attr, new)
                    changed.append(f"{what} " + (", ".join(new) or "none"))
            if parent is not None and (parent or None) != task.parent:
                if parent == task.id:
                    raise DependencyCycle(f"task {task.id} cannot be its own parent", task=task.id)
                if parent:
                    parented[:] = [task.parent]
                task.parent = parent or None
                changed.append(f"parent {parent or 'none'}")
            if description is not None and description != task.description:
                task.description = description
                changed.append("description")
            if deps_changed and task.status in (PENDING, ASSIGNED, BLOCKED):
                self._rederive(task, now)
            if not changed:
                return task  # written anyway: the caller sees the task as it is
            task.updated_at = now
            leases.add_log(task, now, "edited: " + "; ".join(changed), MAX_LOG_LINES)
            return task

        task = self.store.update_task(task_id, fn)
        for message in absent:
            self.hooks.warn(f"{message}; nothing to remove")
        refused: DependencyCycle | None = None
        if added or parented:
            undone, refused = self._verify_edges(
                task_id, added, parent if parented else None, parented[0] if parented else None
            )
            task = undone or task
        if task.status == BLOCKED:
            self._block_dependents(task)
        elif was_blocked[0]:  # the edit unblocked it: so are its dependents, as after a retry
            self._after_reopen(task, None)
        if refused is not None:
            asked = sum(v is not None for v in given) + sum(bool(v) for v in lists)
            if asked > bool(added) + bool(parented):  # say so: exit 2 but not nothing changed
                refused.message += "; the edit's other changes were made"
                refused.args = (refused.message,)
            raise refused
        return task

    def _verify_edges(
        self, task_id: str, added: Names, parent: str | None, replaced: str | None
    ) -> tuple[Task | None, DependencyCycle | None]:
        """Write-then-verify for the edges an :meth:`edit` just wrote (``task_id -> added``
        dependencies, ``task_id -> parent``): re-read the graph and, when a cycle through
        ``task_id`` now exists, take back exactly those edges (a conditional update: only
        while they are still there; the replaced parent is put back unless that would close a
        cycle too, else none) and return the task as left with the
        :class:`DependencyCycle` to raise. The edit's other changes stand.

        Why no cycle survives: the pre-check in :meth:`edit` reads a snapshot, and the store
        locks one record at a time, so two edits can each close half of a cycle. But every
        edge is added by a write to one record, and those writes are linearizable. Take any
        cycle and the edge of it written last: its writer reads the graph (each record read
        afresh with ``get_task``, never a cached index) only after that write committed, so
        it sees every other edge of the cycle that still exists, finds the cycle, and takes
        its own edge back. A cycle whose other edges are gone by then no longer exists. Both
        racers may be refused (each may see the other's edge before it is taken back); that
        is safe, and a retry succeeds. ``create --depends-on``/``--parent`` need no check
        after the write: nothing can point at a task before it exists, so every edge into a
        new task is written later, by an edit, which verifies."""
        cycle: DependencyCycle | None = None
        path: list[str] | None = None
        if added:
            try:
                now_deps = self.store.get_task(task_id).depends_on
            except NotFound:
                return None, None  # archived meanwhile: no longer in the graph
            path = deps.cycle_through(task_id, [d for d in added if d in now_deps], self._deps_of)
            if path is not None:
                cycle = DependencyCycle("dependency cycle: " + " -> ".join(path), task=task_id)
        pchain = deps.parent_cycle(task_id, self._parent_of) if parent is not None else None
        if pchain is not None:
            msg = "parent cycle: " + " -> ".join(pchain)
            cycle = cycle or DependencyCycle(msg, task=task_id)
        if cycle is None:
            return None, None
        put_back = replaced

        def as_before(tid: str) -> str | None:
            return replaced if tid == task_id else self._parent_of(tid)

        if pchain is not None and replaced is not None and deps.parent_cycle(task_id, as_before):
            put_back = None
        drop = added if path is not None else []
        undo_parent = pchain is not None

        def fn(task: Task) -> Task | None:
            gone = [d for d in drop if d in task.depends_on]
            back = undo_parent and task.parent == parent
            if not gone and not back:
                return None
            now = self.clock()
            what = []
            if gone:
                task.depends_on = [d for d in task.depends_on if d not in gone]
                for d in gone:
                    task.dep_states.pop(d, None)
                    task.dep_titles.pop(d, None)
                what.append("dependencies " + ", ".join(gone) + " not added")
                if task.status in (PENDING, ASSIGNED, BLOCKED):
                    self._rederive(task, now)
            if back:
                task.parent = put_back
                what.append(f"parent {parent} not set")
            task.updated_at = now
            leases.add_log(task, now, f"edit refused: {cycle}; " + "; ".join(what), MAX_LOG_LINES)
            return task

        try:
            return self.store.update_task(task_id, fn), cycle
        except NotFound:
            return None, cycle

    def _deps_of(self, task_id: str) -> Names:
        try:
            return self.store.get_task(task_id).depends_on
        except NotFound:
            return []

    def _parent_of(self, task_id: str) -> str | None:
        try:
            return self.store.get_task(task_id).parent
        except NotFound:
            return None

    def _rederive(self, task: Task, now: float) -> None:
        """Blocked or not, from the dependencies' states now (inside the task's update)."""
        states = self._dep_states(task) if task.depends_on else {}
        task.dep_states.update(states)
        failed = deps.failed_dependency(task, states)
        if failed is not None and task.status != BLOCKED:
            task.status = BLOCKED
            task.blocked_reason = f"dependency {failed} is {states[failed]}"
            leases.add_log(task, now, f"blocked: {task.blocked_reason}", MAX_LOG_LINES)
        elif failed is None and task.status == BLOCKED:
            was = task.blocked_reason
            _reopen(task, now, ASSIGNED if task.agent else PENDING)
            leases.add_log(
                task, now, "unblocked" + (f"; was blocked: {was}" if was else ""), MAX_LOG_LINES
            )

    def check(self, task_id: str, number: int, *, checked: bool = True) -> Task:
        """Tick acceptance criterion ``number`` (1-based: the ``- [ ]`` items of the
        description, :mod:`agentcoord.core.checklist`), or clear it with ``checked=False``;
        returns the task. No such item is :class:`InvalidInput` (exit 2). Like :meth:`edit`,
        it leaves ownership, lease and epoch alone."""
        from ..core import checklist

        check_name(task_id, "task id")
        whole(number, "criterion number", minimum=1)

        def fn(task: Task) -> Task | None:
            new = checklist.tick(task.description, number, checked)
            if new == task.description:
                return None
            now = self.clock()
            task.description, task.updated_at = new, now
            item = checklist.items(new)[number - 1][1]
            verb = "checked" if checked else "unchecked"
            leases.add_log(task, now, f"criterion {number} {verb}: {item}", MAX_LOG_LINES)
            return task

        return self.store.update_task(task_id, fn)

    # -- claiming --------------------------------------------------------------------------
    def claim(
        self,
        task_id: str | None = None,
        *,
        agent: str,
        lease_seconds: float | None = None,
        project: str | None = None,
        register: bool = False,
    ) -> Task:
        """Claim ``task_id``, or the ready task with the highest priority (oldest first).

        Exactly once: the claimability check runs inside the store's atomic update. Raises
        :class:`NothingToClaim` (exit 3) or :class:`Conflict` (exit 4) with the reason.

        Strict identity (SPEC section 11): an agent that was never registered is
        :class:`NotFound` (exit 3) unless ``register`` (or the workspace's ``auto_register``)
        registers it; a retired one is :class:`Conflict` (exit 4). Claiming a task the agent
        already holds is a new grant: the lease is renewed and the epoch grows, so an older
        session using the same name is fenced out (its writes with the old epoch are refused)."""
        check_name(agent, "agent name")
        if lease_seconds is not None:
            lease_seconds = seconds(lease_seconds, "lease", minimum=MIN_LEASE)
        self._before_claim(agent, register)
        if task_id is not None:
            check_name(task_id, "task id")
            claimed = self._claim_one(task_id, agent, lease_seconds, explicit=True)
            assert isinstance(claimed, Task)  # explicit claims raise instead of returning None
            return claimed
        # Every open head (blocked ones too: a blocked child still keeps its parent open).
        heads = self.store.list_task_heads(statuses=OPEN_STATES)
        states = {h.id: h.status for h in heads}
        if any(h.depends_on for h in heads):  # finished dependencies are not among the open
            states = {h.id: h.status for h in self.store.list_task_heads()}
        # A task with an open child is not ready (it could never complete): from the heads
        # already read, so this costs no read per candidate.
        parents = open_parents(heads)
        now = self.clock()
        # SPEC section 11: a task that requires capabilities is only for agents that have them
        # (the agent is read only when some task requires something).
        caps: set[str] | None = None
        if any(h.requires for h in heads):
            caps = set(self._capabilities(agent))
        candidates = [
            h
            for h in heads
            if (project is None or h.project == project)
            and (caps is None or set(h.requires) <= caps)
            and h.id not in parents
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
                    task = self._claim_one(
                        cand.id, agent, lease_seconds, explicit=False, wait=wait, parents=parents
                    )
                except (Conflict, NotFound):
                    contended = True  # someone else got it first (or it is not ready)
                    continue
                if task is _SKIPPED:
                    contended = True
                    busy.append(cand)
                elif isinstance(task, Task):
                    return task
        where = f" in project {project}" if project else ""
        # Say why when ready tasks exist but need capabilities the agent lacks (a re-register
        # that dropped one otherwise looks like an empty board).
        lacking = [
            h
            for h in heads
            if caps is not None
            and not set(h.requires) <= caps
            and (project is None or h.project == project)
            and claimable_now(h, states, parents, now, agent)
        ]
        if lacking:
            lacking.sort(key=order_key)
            missing = sorted({c for h in lacking for c in h.requires if c not in (caps or ())})
            n = len(lacking)
            raise NothingToClaim(
                f"no ready task for {agent}{where}: {n} ready task{'s' if n != 1 else ''} "
                f"need{'s' if n == 1 else ''} capabilities it lacks ({', '.join(missing)}); "
                f"'coord agent register {agent} --capability ...' sets them",
                agent=agent,
                lacking=missing,
                tasks=[h.id for h in lacking],
            )
        raise NothingToClaim(f"no ready task to claim for {agent}{where}", agent=agent)

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
        parents: set[str] | None = None,
    ) -> Any:
        """Claim one task; None when it turned out blocked or failed (claim-next moves on),
        ``_SKIPPED`` when ``wait`` is False and another writer holds it.

        ``parents``: the tasks with an open child, as the caller read them (next-ready claim);
        None reads the open heads here, for an explicit claim. A child created after that read
        can slip past, as in :meth:`_check_children`."""
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
                        # Claimed again by its holder's name: a new grant (SPEC section 11). A
                        # second session using the name must not share the first one's epoch.
                        outcome["renewed"] = True
                        task.lease_grant = lease_seconds
                        task.epoch += 1
                        leases.renew(task, now)
                        leases.add_log(
                            task,
                            now,
                            f"claimed again by {agent} (epoch {task.epoch}; epoch "
                            f"{task.epoch - 1} is fenced out)",
                            MAX_LOG_LINES,
                        )
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
            self._check_capable(task, agent)
            waiting = deps.unmet(task, states)
            if waiting:
                raise Conflict(
                    f"task {task.id} is not ready: waiting for {', '.join(waiting)}",
                    task=task.id,
                    waiting=waiting,
                )
            if parents is None:
                self._check_children(task, "is not ready: it has")
            elif task.id in parents:
                raise Conflict(f"task {task.id} is not ready: it has open children", task=task.id)
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

    def taken_back(self, agent: str, grants: Mapping[str, int]) -> Names:
        """Of ``grants`` (task id -> the epoch ``agent`` held it under, 0 when not known), the
        ids taken from the agent rather than finished or released by it: granted again since
        (the epoch moved on), or its lease expired and was taken back (the task's log says
        so). For a session hook that tells the model it lost work (SPEC section 12). Tasks gone
        from the board are skipped (only finished tasks are archived)."""
        check_name(agent, "agent name")
        expired = f"lease of {agent} expired"
        lost: list[str] = []
        for task_id, epoch in grants.items():
            try:
                task = self.store.get_task(check_name(task_id, "task id"))
            except NotFound:
                continue
            if task.status == IN_PROGRESS and task.agent == agent:
                continue  # held (again)
            if (epoch and task.epoch != epoch) or any(
                line.message.startswith(expired) for line in task.logs[-3:]
            ):
                lost.append(task.id)
        return lost

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

        task = self._update_held(task_id, fn, agent)
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

        return self._update_held(task_id, fn, agent)

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
            if status == COMPLETE:
                self._check_children(task)
            task.status, task.completed_at, task.updated_at = status, now, now
            leases.end(task)
            if status == COMPLETE:
                task.result = body
                # Complete is 100 %, whatever was last reported (a percent and a count may
                # both be set: the percent wins when shown, so both end at the top).
                if task.progress_total is not None:
                    task.progress_current = task.progress_total
                if task.percent is not None:
                    task.percent = 100.0
            else:
                task.error = body
            leases.add_log(task, now, f"{status} by {agent}", MAX_LOG_LINES)
            return task

        task = self._update_held(task_id, fn, agent)
        if status == FAILED:
            self._after_failure(task, agent)
        else:
            self._on_change(task, agent)
        return task

    def _check_children(self, task: Task, verb: str = "has") -> None:
        """A parent cannot complete while a child is open (SPEC section 11):
        :class:`Conflict` (exit 4) naming the open children. Runs inside the parent's update;
        a child is another record, so one created at this very moment can slip past (as a
        dependency added meanwhile would), and ``task reopen`` of a child is not refused."""
        open_children = sorted(
            (h for h in self.store.list_task_heads(statuses=OPEN_STATES) if h.parent == task.id),
            key=order_key,
        )
        if open_children:
            shown = ", ".join(f"{h.id} ({h.status})" for h in open_children[:10])
            more = f" and {len(open_children) - 10} more" if len(open_children) > 10 else ""
            raise Conflict(
                f"task {task.id} {verb} open children: {shown}{more}; finish or cancel them first",
                task=task.id,
                children=[h.id for h in open_children],
            )

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

        task = self._update_held(task_id, fn, agent)
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


#: The longest description a task may hold (characters): a page of markdown, not a document.
MAX_DESCRIPTION = 20_000


def _reopen(task: Task, now: float, status: str) -> None:
    """``task`` open again as ``status`` (pending, or assigned to the agent it was reserved
    for): no holder, no lease, no outcome; progress starts over. Attempts and epoch stay."""
    task.status = status
    if status != ASSIGNED:
        task.agent = None
    leases.end(task)
    task.completed_at = task.result = task.error = task.blocked_reason = task.eta = None
    task.percent = None
    if task.progress_current is not None:
        task.progress_current = 0.0 if task.progress_total is not None else None
    task.updated_at = now


def _names(values: Iterable[str] | str, what: str) -> list[str]:
    """Names given to a list option, each once, in order (a bare string is one name)."""
    items = [values] if isinstance(values, str) else list(values)
    return list(dict.fromkeys(check_name(v, what) for v in items))


def _description(value: str) -> str:
    """A description as stored (free markdown, the ``## Description`` section)."""
    if not isinstance(value, str):
        raise InvalidInput("the description must be text")
    if len(value) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"the description is {len(value)} characters; at most {MAX_DESCRIPTION}",
            field="description",
        )
    return normalize_block(value, "description").strip()


def _check_parent(task_id: str, parent: str, existing: dict[str, TaskHead]) -> None:
    """``parent`` may be ``task_id``'s parent: it exists, is not complete (a parent cannot be
    complete while a child is open) and is not ``task_id`` itself or one of its descendants."""
    head = existing.get(parent)
    if head is None:
        raise NotFound(f"unknown parent task {parent}", missing=[parent])
    if head.status == COMPLETE:
        raise InvalidTransition(
            f"parent task {parent} is complete; reopen it first ('task reopen {parent}')",
            task=parent,
        )
    if parent == task_id:
        raise DependencyCycle(f"task {task_id} cannot be its own parent", task=task_id)
    deps.check_parent(task_id, parent, existing)

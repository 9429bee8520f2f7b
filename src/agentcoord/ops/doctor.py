"""``coord doctor``: check a workspace's invariants, and repair what is safe to repair.

:func:`check` reads everything and changes nothing; :func:`fix` repairs the violations marked
``repairable`` and returns what it did. The invariants are the ones ``tests/reliability`` checks
after torture and crashes (see ``docs/reliability.md``):

================  ============================================================  ==========
kind              invariant                                                     repairable
================  ============================================================  ==========
corrupt           every record parses (``path:line: reason``), documents too     no
state             a task's status is one of the seven states                    no
index             the head index agrees with the task records (one state each)  yes (rebuild)
lease             in_progress <=> an agent and a lease; no lease otherwise       no
expired_lease     an in_progress lease that has expired                          yes (reap)
future_lease      a lease ends further ahead than it lasts (a clock ahead)       yes (bound)
future_time       a task's or an agent's time lies in the future                 no
epoch             granted tasks have epoch >= 1; logged grants never exceed it   no
attempts          0 <= attempts <= max_attempts                                  no
dependency        every dependency is on the board or archived                  no
cycle             dependencies form no cycle                                    no
parent_cycle      parents form no cycle (else none of its tasks can complete)   no
open_child        a complete parent has no open child (a documented race)       no
blocked           a blocked task has a failed or cancelled (transitive) dep     yes (unblock)
unblocked         a pending/assigned task with a failed/cancelled dep           yes (block)
agent_view        an agent's active tasks = the in_progress tasks it holds       yes (rebuild)
event_seq         per channel, seqs 1..N with no gap across archive + live      no
last_seq          ``Last Seq`` >= the largest seq                               no
cursor            every consumer cursor <= the channel's last seq               no
temp_file         no temp file of a dead writer (or older than a day)           yes (remove)
lock_held         no lock stays held (flock: only a live process can hold one)   no
symlink           no symlinks in the workspace (writes replace them, reads      no
                  and directories follow them)
permissions       nothing world-writable                                        yes (chmod)
credentials       a config.json holding a credential is 0600 (0640 when the     yes (chmod)
                  workspace is shared by a Unix group; SPEC section 16)
reservation       no orphan file reservation: one held by an agent that is      yes (drop)
                  unknown, retired, offline or Gone, or tied to a task its
                  holder no longer holds (SPEC section 13; one past its TTL
                  is simply ended, not an orphan)
================  ============================================================  ==========

Epochs are checked from one snapshot (no memo of earlier runs): a task that was ever granted has
epoch >= 1 and the grants its log still shows ("claimed by X (epoch N)") increase and never
exceed the current epoch. Monotonicity over time is what the fencing update guarantees and the
torture tests observe. Run ``check`` on a quiet workspace: under load, agent views and the index
lag the task records by one write, and a re-check clears such reports.

Everything goes through the :class:`~agentcoord.store.base.Store` interface, so any backend is
checked alike: the storage's own problems (files: ``temp_file``, ``lock_held``, ``symlink``,
``permissions``; an unreadable counter) come from :meth:`Store.check_storage` and are repaired by
:meth:`Store.repair_storage`; ``file`` is :meth:`Store.record_path` where the store has files.
"""

from __future__ import annotations

import itertools
import os
import re

from ..core import leases
from ..core.clock import iso
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
)
from ..core.validate import is_valid_name
from ..errors import CorruptData, NotFound
from ..store.base import Violation

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Protocol

    from ..core.models import Task
    from ..domain.agents import Agents
    from ..domain.reservations import Reservations
    from ..domain.tasks import TaskBoard
    from ..store.base import Store

    class FileChecks(Protocol):
        """The workspace's own files (``config.json``): :class:`agentcoord.workspace.Workspace`."""

        def check_files(self) -> list[Violation]: ...
        def repair_files(self, found: Sequence[Violation]) -> list[str]: ...


__all__ = ["Doctor", "Violation", "check", "fix"]

_GRANT = re.compile(r"claimed by [A-Za-z0-9][A-Za-z0-9._-]{0,63} \(epoch (\d+)\)")
_BAD_ENDS = frozenset({FAILED, CANCELLED})


def _corrupt(exc: CorruptData) -> Violation:
    return Violation("corrupt", os.path.basename(exc.path), exc.message, file=exc.path)


# -- check -------------------------------------------------------------------------------------
def check(store: Store, *, now: float, skew: float = 60.0) -> list[Violation]:
    """Every violated invariant of the workspace in ``store`` at time ``now`` (POSIX seconds);
    changes nothing. ``skew``: seconds a time may lie ahead of ``now`` before it counts as a
    clock's fault (config ``clock_skew``)."""
    out: list[Violation] = list(store.check_storage())
    errors: list[CorruptData] = []
    tasks = {t.id: t for t in store.list_tasks(errors=errors)}
    archived = {t.id: t.status for _, t in store.list_archived_tasks(errors=errors)}
    out += [_corrupt(e) for e in errors]
    statuses = {**archived, **{tid: t.status for tid, t in tasks.items()}}

    def path(task_id: str) -> str | None:
        return store.record_path("task", task_id)

    for task in tasks.values():
        out += _check_task(task, now, skew, set(tasks) | set(archived), path(task.id))
    out += _check_graph(tasks, statuses, path)
    # Check the index every other process reads, not this process's copy of it.
    out += _check_index(store.fresh(), tasks)
    out += _check_agents(store, tasks, now, skew)
    errors = []
    store.list_contexts(errors=errors)
    out += [_corrupt(e) for e in errors]
    out += _check_documents(store)
    out += _check_events(store)
    # A record the storage's own checks also read (a Redis document) is reported once.
    unique = {(v.kind, v.key, v.file, v.message): v for v in reversed(out)}
    return [v for v in out if unique[(v.kind, v.key, v.file, v.message)] is v]


def _check_documents(store: Store) -> list[Violation]:
    """Every document (``metrics-*``) has a valid name and reads back."""
    errors: list[CorruptData] = []
    for name in store.list_documents(errors=errors):
        try:
            store.get_document(name)
        except CorruptData as exc:
            errors.append(exc)
    return [_corrupt(e) for e in errors]


def _check_task(
    task: Task, now: float, skew: float, known: set[str], path: str | None
) -> list[Violation]:
    out: list[Violation] = []

    def bad(kind: str, message: str, *, repairable: bool = False) -> None:
        out.append(Violation(kind, task.id, message, file=path, repairable=repairable))

    if task.status not in TASK_STATES:
        bad("state", f"task {task.id} has unknown status {task.status!r}")
    if task.status == IN_PROGRESS:
        if not task.agent or task.lease_expires is None:
            bad("lease", f"task {task.id} is in_progress without an agent and a lease")
        elif task.lease_expires <= now:
            bad("expired_lease", f"{task.agent}'s lease on task {task.id} expired", repairable=True)
        elif leases.too_far(task.status, task.lease_expires, leases.lease_length(task), now, skew):
            bad(
                "future_lease",
                f"{task.agent}'s lease on task {task.id} ends {iso(task.lease_expires)}, further "
                f"ahead than its {leases.lease_length(task):g}s (granted by a clock ahead?)",
                repairable=True,
            )
    elif task.lease_expires is not None or task.lease_grant is not None:
        bad("lease", f"task {task.id} is {task.status} but still has a lease")
    ahead = [
        name
        for name, value in (
            ("created", task.created_at),
            ("started", task.started_at),
            ("updated", task.updated_at),
        )
        if value is not None and value > now + skew
    ]
    if ahead:
        bad("future_time", f"task {task.id}: {', '.join(ahead)} in the future (a clock ahead?)")
    if task.epoch < 0 or (
        task.epoch < 1 and (task.status == IN_PROGRESS or task.started_at is not None)
    ):
        bad("epoch", f"task {task.id} was granted but its epoch is {task.epoch}")
    grants = [int(m.group(1)) for ln in task.logs if (m := _GRANT.fullmatch(ln.message))]
    if any(b <= a for a, b in itertools.pairwise(grants)) or (grants and grants[-1] > task.epoch):
        bad("epoch", f"task {task.id}: logged grants {grants} against epoch {task.epoch}")
    if not 0 <= task.attempts <= task.max_attempts:
        bad("attempts", f"task {task.id} has {task.attempts}/{task.max_attempts} attempts")
    for dep in task.depends_on:
        if dep not in known:
            bad(
                "dependency", f"task {task.id} depends on {dep}, which is neither live nor archived"
            )
    return out


def _root_cause(tid: str, deps: dict[str, list[str]], statuses: dict[str, str]) -> str | None:
    """A failed or cancelled task among ``tid``'s dependencies, transitively (None if none)."""
    seen: set[str] = set()
    stack = list(deps.get(tid, ()))
    while stack:
        dep = stack.pop()
        if dep in seen:
            continue
        seen.add(dep)
        if statuses.get(dep) in _BAD_ENDS:
            return dep
        stack.extend(deps.get(dep, ()))
    return None


def _should_block(tasks: dict[str, Task], statuses: dict[str, str]) -> dict[str, str]:
    """Pending or assigned tasks that a failed/cancelled dependency should have blocked."""
    deps = {tid: t.depends_on for tid, t in tasks.items()}
    out: dict[str, str] = {}
    for tid, task in tasks.items():
        if task.status in (PENDING, ASSIGNED) and task.depends_on:
            cause = _root_cause(tid, deps, statuses)
            if cause is not None:
                out[tid] = cause
    return out


def _check_graph(
    tasks: dict[str, Task], statuses: dict[str, str], file_of: Callable[[str], str | None]
) -> list[Violation]:
    out: list[Violation] = []
    deps = {tid: t.depends_on for tid, t in tasks.items()}
    for tid, task in sorted(tasks.items()):
        if task.status == BLOCKED and _root_cause(tid, deps, statuses) is None:
            msg = f"task {tid} is blocked but no dependency of it failed or was cancelled"
            out.append(Violation("blocked", tid, msg, file=file_of(tid), repairable=True))
    for tid, cause in sorted(_should_block(tasks, statuses).items()):
        msg = f"task {tid} is {tasks[tid].status} but its dependency {cause} is {statuses[cause]}"
        out.append(Violation("unblocked", tid, msg, file=file_of(tid), repairable=True))
    # Cycles: iterative DFS, white/grey/black; each cycle reported once by its smallest id.
    colour: dict[str, int] = {}
    reported: set[frozenset[str]] = set()
    for start in sorted(tasks):
        if colour.get(start):
            continue
        path: list[str] = [start]
        colour[start] = 1
        iters = [iter(deps.get(start, ()))]
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                colour[path.pop()] = 2
                iters.pop()
            elif colour.get(nxt) == 1:
                cycle = path[path.index(nxt) :]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    first = min(cycle)
                    shown = " -> ".join([*cycle, nxt])
                    msg = f"dependency cycle: {shown}"
                    out.append(Violation("cycle", first, msg, file=file_of(first)))
            elif not colour.get(nxt) and nxt in tasks:
                colour[nxt] = 1
                path.append(nxt)
                iters.append(iter(deps.get(nxt, ())))
    return out + _check_parents(tasks, statuses, file_of)


def _check_parents(
    tasks: dict[str, Task], statuses: dict[str, str], file_of: Callable[[str], str | None]
) -> list[Violation]:
    """Parent cycles (each reported once, by its smallest id) and complete parents with an open
    child. Neither is repaired: which edge is wrong is the person's call."""
    out: list[Violation] = []
    reported: set[frozenset[str]] = set()
    for start in sorted(tasks):
        chain, node = [start], tasks[start].parent
        while node is not None and node in tasks and node not in chain:
            chain.append(node)
            node = tasks[node].parent
        if node is None or node not in chain or frozenset(chain[chain.index(node) :]) in reported:
            continue
        cycle = chain[chain.index(node) :]
        reported.add(frozenset(cycle))
        first = min(cycle)
        turn = cycle.index(first)
        shown = " -> ".join([*cycle[turn:], *cycle[:turn], first])
        msg = (
            f"parent cycle: {shown}; none of them can complete: clear one parent "
            f"('task edit {first} --parent \"\"')"
        )
        out.append(Violation("parent_cycle", first, msg, file=file_of(first)))
    children: dict[str, list[str]] = {}
    for tid, task in tasks.items():
        if task.parent and task.status in OPEN_STATES and statuses.get(task.parent) == COMPLETE:
            children.setdefault(task.parent, []).append(tid)
    for parent, kids in sorted(children.items()):
        shown = ", ".join(f"{k} ({tasks[k].status})" for k in sorted(kids))
        msg = (
            f"task {parent} is complete but has open children: {shown}; reopen it "
            f"('task reopen {parent}') or finish or cancel them"
        )
        out.append(Violation("open_child", parent, msg, file=file_of(parent)))
    return out


def _check_index(store: Store, tasks: dict[str, Task]) -> list[Violation]:
    out: list[Violation] = []
    seen: dict[str, str] = {}
    for head in store.list_task_heads(errors=[]):
        task = tasks.get(head.id)
        if head.id in seen:
            msg = f"task {head.id} is indexed twice ({seen[head.id]} and {head.status})"
        elif task is not None and task.status != head.status:
            msg = f"task {head.id} is {task.status} but indexed as {head.status}"
        else:
            seen[head.id] = head.status
            continue
        out.append(Violation("index", head.id, msg, repairable=True))
    return out


def _holdings(tasks: dict[str, Task]) -> dict[str, set[str]]:
    holds: dict[str, set[str]] = {}
    for task in tasks.values():
        if task.status == IN_PROGRESS and task.agent:
            holds.setdefault(task.agent, set()).add(task.id)
    return holds


def _view_drift(store: Store, tasks: dict[str, Task], errors: list[CorruptData]) -> list[Violation]:
    holds = _holdings(tasks)
    out = []
    for agent in store.list_agents(errors=errors):
        shown = {str(e.get("id")) for e in agent.active}
        truth = holds.get(agent.name, set())
        if shown != truth:
            msg = (
                f"agent {agent.name}'s view lists {sorted(shown) or 'no tasks'}; the task "
                f"records say it holds {sorted(truth) or 'none'}"
            )
            path = store.record_path("agent", agent.name)
            out.append(Violation("agent_view", agent.name, msg, file=path, repairable=True))
    return out


def _check_agents(store: Store, tasks: dict[str, Task], now: float, skew: float) -> list[Violation]:
    errors: list[CorruptData] = []
    out = _view_drift(store, tasks, errors)
    for agent in store.list_agents():
        if max(agent.last_seen, agent.registered_at) > now + skew:
            path = store.record_path("agent", agent.name)
            out.append(
                Violation(
                    "future_time",
                    agent.name,
                    f"agent {agent.name}'s last sign of life {iso(agent.last_seen)} is in the "
                    "future (a clock ahead?)",
                    file=path,
                )
            )
    return [_corrupt(e) for e in errors] + out


def _check_events(store: Store) -> list[Violation]:
    errors: list[CorruptData] = []
    cursors = store.list_cursors(errors=errors)
    out = [_corrupt(e) for e in errors]
    channels = store.list_channels()
    for channel in sorted(c for c in set(channels) | set(cursors) if is_valid_name(c)):
        try:
            seqs = [e.seq for e in store.read_events(channel)]
            last = store.last_seq(channel)
        except CorruptData as exc:
            out.append(_corrupt(exc))
            continue
        path = store.record_path("event", channel)

        def bad(kind: str, msg: str, channel: str = channel, path: str | None = path) -> None:
            out.append(Violation(kind, channel, msg, file=path))

        expected = 1
        for seq in seqs:
            if seq != expected:
                what = f"{expected}..{seq - 1} missing" if seq > expected else "out of order"
                bad("event_seq", f"channel {channel}: seq {seq} where {expected} was due ({what})")
                break
            expected = seq + 1
        if seqs and last < seqs[-1]:
            bad("last_seq", f"channel {channel}: Last Seq {last} < newest seq {seqs[-1]}")
        for consumer, seq in sorted(cursors.get(channel, {}).items()):
            if seq > last:
                bad("cursor", f"channel {channel}: cursor of {consumer} is {seq} > last seq {last}")
    return out


# -- fix ---------------------------------------------------------------------------------------
def fix(store: Store, *, now: float, board: TaskBoard, agents: Agents) -> list[str]:
    """Repair every repairable violation :func:`check` finds; return what was done. Reaps
    expired leases (``board``), blocks dependents of failed/cancelled tasks, unblocks blocked
    tasks none of whose dependencies failed or was cancelled, rebuilds agent views
    (``agents``) and the task index, and lets the store repair its own (temp files, world write
    permission). Each repair is an atomic update that re-checks its condition, so running it on
    a live board is safe."""
    found = check(store, now=now, skew=board.clock_skew)
    kinds = {v.kind for v in found if v.repairable}
    actions: list[str] = []
    if "index" in kinds and store.rebuild_index():
        actions.append("rebuilt the task index (from the task records)")
    if "expired_lease" in kinds or "future_lease" in kinds:
        # Exactly the tasks check() found (each re-checked under its lock).
        expired = [v.key for v in found if v.kind in ("expired_lease", "future_lease")]
        for task in board.reap(ids=expired):
            if task.lease_expires is not None:
                actions.append(f"bounded the lease on task {task.id} (it ended too far ahead)")
            else:
                actions.append(f"reaped task {task.id}: lease expired, now {task.status}")
    if "unblocked" in kinds or "expired_lease" in kinds:
        actions += _block(store, now)
    if "blocked" in kinds:
        # Dependencies first: a blocked task whose blocked dependency is unblocked in this
        # pass is unblocked in the next (each decided under its lock, from its deps then).
        stuck = sorted(v.key for v in found if v.kind == "blocked")
        while stuck:
            done = board.unblock(stuck)
            if not done:
                break
            for task in done:
                actions.append(f"unblocked task {task.id}: no dependency of it failed")
            stuck = [tid for tid in stuck if tid not in {t.id for t in done}]
    if "agent_view" in kinds or "expired_lease" in kinds:
        tasks = {t.id: t for t in store.list_tasks()}
        for v in _view_drift(store, tasks, []):
            agents.rebuild_views(v.key)
            actions.append(f"rebuilt the task views of agent {v.key}")
    actions += store.repair_storage([v for v in found if v.repairable])
    return actions


def _block(store: Store, now: float) -> list[str]:
    tasks = {t.id: t for t in store.list_tasks()}
    archived = {t.id: t.status for _, t in store.list_archived_tasks(errors=[])}
    statuses = {**archived, **{tid: t.status for tid, t in tasks.items()}}
    actions = []
    for tid, cause in sorted(_should_block(tasks, statuses).items()):
        reason = f"dependency {cause} is {statuses[cause]}"

        def fn(task: Task, reason: str = reason, cause: str = cause) -> Task | None:
            if task.status not in (PENDING, ASSIGNED):
                return None
            task.status, task.updated_at, task.blocked_reason = BLOCKED, now, reason
            task.dep_states[cause] = statuses[cause]
            leases.add_log(task, now, f"blocked: {reason}", MAX_LOG_LINES)
            return task

        try:
            if store.update_task(tid, fn).status == BLOCKED:
                actions.append(f"blocked task {tid}: {reason}")
        except NotFound:  # archived meanwhile
            continue
    return actions


class Doctor:
    """``coord.doctor``: :func:`check` and :func:`fix` bound to one workspace's store, clock,
    board and agents (built by :class:`agentcoord.api.Coordinator`)."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        board: TaskBoard,
        agents: Agents,
        *,
        files: FileChecks | None = None,
        reservations: Reservations | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.board = board
        self.agents = agents
        #: The workspace's own files (a config.json holding a credential), when there is one.
        self.files = files
        #: The file reservations (orphans are the ``reservation`` kind), when wired.
        self.reservations = reservations

    def check(self) -> list[Violation]:
        """Every violated invariant now; changes nothing."""
        found = check(self.store, now=self.clock(), skew=self.board.clock_skew)
        if self.reservations is not None:
            found += check_reservations(self.store, self.reservations)
        return found + (self.files.check_files() if self.files is not None else [])

    def fix(self) -> list[str]:
        """Repair what is repairable; returns what was done."""
        actions = fix(self.store, now=self.clock(), board=self.board, agents=self.agents)
        if self.reservations is not None:
            actions += fix_reservations(self.store, self.reservations)
        if self.files is not None:
            done = self.files.repair_files(self.files.check_files())
            actions += done
        return actions


def check_reservations(store: Store, reservations: Reservations) -> list[Violation]:
    """The orphan reservations (kind ``reservation``, repairable: :func:`fix_reservations`):
    ended for a reason other than their TTL (the agent unknown, retired, offline or Gone; the
    task no longer held or its lease run out) yet still in the table. A table that does not
    parse is ``corrupt``."""
    try:
        table = reservations.table()
    except CorruptData as exc:
        return [_corrupt(exc)]
    path = store.record_path("reservations", "")
    out = []
    for r, why in table:
        if why is None or why.startswith("expired at "):
            continue
        patterns = ", ".join(r.patterns[:4]) + (", ..." if len(r.patterns) > 4 else "")
        out.append(
            Violation(
                "reservation",
                r.id,
                f"reservation {r.id} of {r.agent} ({patterns}) is an orphan: {why}",
                file=path,
                repairable=True,
            )
        )
    return out


def fix_reservations(store: Store, reservations: Reservations) -> list[str]:
    """Drop the orphan reservations (with every other ended one: :meth:`Reservations.prune`);
    returns one line per orphan dropped."""
    orphans = {v.key for v in check_reservations(store, reservations) if v.kind == "reservation"}
    if not orphans:
        return []
    dropped = reservations.prune()
    return [
        f"dropped orphan reservation {r.id} of {r.agent} ({', '.join(r.patterns[:4])})"
        for r in dropped
        if r.id in orphans
    ]

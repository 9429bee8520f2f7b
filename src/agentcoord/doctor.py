"""``coord doctor``: check a workspace's invariants, and repair what is safe to repair.

:func:`check` reads everything and changes nothing; :func:`fix` repairs the violations marked
``repairable`` and returns what it did. The invariants are the ones ``tests/reliability`` checks
after torture and crashes (see ``docs/reliability.md``):

================  ============================================================  ==========
kind              invariant                                                     repairable
================  ============================================================  ==========
corrupt           every record parses (``path:line: reason``)                   no
state             a task's status is one of the seven states                    no
index             the head index agrees with the task records (one state each)  markdown
lease             in_progress <=> an agent and a lease; no lease otherwise       no
expired_lease     an in_progress lease that has expired                          yes (reap)
epoch             granted tasks have epoch >= 1; logged grants never exceed it   no
attempts          0 <= attempts <= max_attempts                                  no
dependency        every dependency is on the board or archived                  no
cycle             dependencies form no cycle                                    no
blocked           a blocked task has a failed or cancelled (transitive) dep     no
unblocked         a pending/assigned task with a failed/cancelled dep           yes (block)
agent_view        an agent's active tasks = the in_progress tasks it holds       yes (rebuild)
event_seq         per channel, seqs 1..N with no gap across archive + live      no
last_seq          ``Last Seq`` >= the largest seq                               no
cursor            every consumer cursor <= the channel's last seq               no
temp_file         no temp file of a dead writer (or older than a minute)        yes (remove)
lock_held         no lock stays held (flock: only a live process can hold one)   no
symlink           no symlinks in the workspace (writes replace them, reads      no
                  and directories follow them)
permissions       nothing world-writable                                        yes (chmod)
================  ============================================================  ==========

Epochs are checked from one snapshot (no memo of earlier runs): a task that was ever granted has
epoch >= 1 and the grants its log still shows ("claimed by X (epoch N)") increase and never
exceed the current epoch. Monotonicity over time is what the fencing update guarantees and the
torture tests observe. Run ``check`` on a quiet workspace: under load, agent views and the index
lag the task records by one write, and a re-check clears such reports.
"""

from __future__ import annotations

import itertools
import os
import re

from . import leases
from .errors import CorruptData, NotFound
from .models import (
    ASSIGNED,
    BLOCKED,
    CANCELLED,
    FAILED,
    IN_PROGRESS,
    MAX_LOG_LINES,
    PENDING,
    TASK_STATES,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .api import Coordinator
    from .models import Task
    from .store.base import Store
    from .store.markdown import MarkdownStore

_GRANT = re.compile(r"claimed by [A-Za-z0-9][A-Za-z0-9._-]{0,63} \(epoch (\d+)\)")
_BAD_ENDS = frozenset({FAILED, CANCELLED})


class Violation:
    """One broken invariant: ``kind`` (see the table above), the record's ``key`` (task id,
    agent, channel or file name), its ``file`` (markdown) and a ``message`` for people."""

    __slots__ = ("file", "key", "kind", "message", "repairable")

    def __init__(
        self,
        kind: str,
        key: str,
        message: str,
        *,
        file: str | None = None,
        repairable: bool = False,
    ) -> None:
        self.kind = kind
        self.key = key
        self.message = message
        self.file = file
        self.repairable = repairable

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "file": self.file,
            "message": self.message,
            "repairable": self.repairable,
        }

    def __repr__(self) -> str:
        return f"Violation({self.kind!r}, {self.key!r}, {self.message!r})"


def _corrupt(exc: CorruptData) -> Violation:
    return Violation("corrupt", os.path.basename(exc.path), exc.message, file=exc.path)


def _markdown(store: Store) -> MarkdownStore | None:
    from .store.markdown import MarkdownStore

    return store if isinstance(store, MarkdownStore) else None


# -- check -------------------------------------------------------------------------------------
def check(coord: Coordinator) -> list[Violation]:
    """Every violated invariant of the workspace; changes nothing."""
    store = coord.store
    out: list[Violation] = []
    md = _markdown(store)
    if md is not None:
        from .doctor_files import check_files

        out += check_files(md)
    errors: list[CorruptData] = []
    tasks = {t.id: t for t in store.list_tasks(errors=errors)}
    archived = _archived(store, errors)
    out += [_corrupt(e) for e in errors]
    statuses = {**archived, **{tid: t.status for tid, t in tasks.items()}}
    now = coord.now()
    for task in tasks.values():
        out += _check_task(task, now, set(tasks) | set(archived), _path(md, task.id))
    out += _check_graph(tasks, statuses, md)
    # Check the index every other process reads (on disk), not this process's copy of it.
    view = type(md)(md.root, durable=False) if md is not None else store
    out += _check_index(view, tasks, md is not None)
    out += _check_agents(store, tasks)
    errors = []
    store.list_contexts(errors=errors)
    out += [_corrupt(e) for e in errors]
    out += _check_events(store, md)
    return out


def _archived(store: Store, errors: list[CorruptData]) -> dict[str, str]:
    """Archived task id -> status (markdown: ``archive/``; other stores: a hook)."""
    md = _markdown(store)
    if md is not None:
        from .doctor_files import archived_tasks

        return archived_tasks(md, errors)
    hook = getattr(store, "list_archived_tasks", None)
    return {t.id: t.status for t in (hook(errors=errors) if callable(hook) else ())}


def _path(md: MarkdownStore | None, task_id: str) -> str | None:
    return md.path(f"task-{task_id}.md") if md is not None else None


def _check_task(task: Task, now: float, known: set[str], path: str | None) -> list[Violation]:
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
    elif task.lease_expires is not None:
        bad("lease", f"task {task.id} is {task.status} but still has a lease")
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
    tasks: dict[str, Task], statuses: dict[str, str], md: MarkdownStore | None
) -> list[Violation]:
    out: list[Violation] = []
    deps = {tid: t.depends_on for tid, t in tasks.items()}
    for tid, task in sorted(tasks.items()):
        if task.status == BLOCKED and _root_cause(tid, deps, statuses) is None:
            msg = f"task {tid} is blocked but no dependency of it failed or was cancelled"
            out.append(Violation("blocked", tid, msg, file=_path(md, tid)))
    for tid, cause in sorted(_should_block(tasks, statuses).items()):
        msg = f"task {tid} is {tasks[tid].status} but its dependency {cause} is {statuses[cause]}"
        out.append(Violation("unblocked", tid, msg, file=_path(md, tid), repairable=True))
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
                    out.append(Violation("cycle", first, msg, file=_path(md, first)))
            elif not colour.get(nxt) and nxt in tasks:
                colour[nxt] = 1
                path.append(nxt)
                iters.append(iter(deps.get(nxt, ())))
    return out


def _check_index(store: Store, tasks: dict[str, Task], markdown: bool) -> list[Violation]:
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
        out.append(Violation("index", head.id, msg, repairable=markdown))
    return out


def _holdings(tasks: dict[str, Task]) -> dict[str, set[str]]:
    holds: dict[str, set[str]] = {}
    for task in tasks.values():
        if task.status == IN_PROGRESS and task.agent:
            holds.setdefault(task.agent, set()).add(task.id)
    return holds


def _view_drift(store: Store, tasks: dict[str, Task], errors: list[CorruptData]) -> list[Violation]:
    holds = _holdings(tasks)
    md = _markdown(store)
    out = []
    for agent in store.list_agents(errors=errors):
        shown = {str(e.get("id")) for e in agent.active}
        truth = holds.get(agent.name, set())
        if shown != truth:
            msg = (
                f"agent {agent.name}'s view lists {sorted(shown) or 'no tasks'}; the task "
                f"records say it holds {sorted(truth) or 'none'}"
            )
            path = md.path(f"agent-{agent.name}.md") if md is not None else None
            out.append(Violation("agent_view", agent.name, msg, file=path, repairable=True))
    return out


def _check_agents(store: Store, tasks: dict[str, Task]) -> list[Violation]:
    errors: list[CorruptData] = []
    out = _view_drift(store, tasks, errors)
    return [_corrupt(e) for e in errors] + out


def _check_events(store: Store, md: MarkdownStore | None) -> list[Violation]:
    out: list[Violation] = []
    channels = store.list_channels()
    if md is not None:
        from .doctor_files import cursors as read_cursors

        cursors = read_cursors(md, out)
    else:
        hook = getattr(store, "list_cursors", None)
        cursors = hook() if callable(hook) else {}
    from .names import is_valid_name

    for channel in sorted(c for c in set(channels) | set(cursors) if is_valid_name(c)):
        try:
            seqs = [e.seq for e in store.read_events(channel)]
            last = store.last_seq(channel)
        except CorruptData as exc:
            out.append(_corrupt(exc))
            continue
        path = md.path(f"events-{channel}.md") if md is not None else None

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
def fix(coord: Coordinator) -> list[str]:
    """Repair every repairable violation :func:`check` finds; return what was done. Reaps
    expired leases, blocks dependents of failed/cancelled tasks, rebuilds agent views, removes
    orphaned temp files, drops a stale task index, removes world write permission. Each repair
    is an atomic update that re-checks its condition, so running it on a live board is safe."""
    found = check(coord)
    kinds = {v.kind for v in found if v.repairable}
    actions: list[str] = []
    store = coord.store
    md = _markdown(store)
    if md is not None and "index" in kinds:
        from .doctor_files import drop_index

        actions += drop_index(md)
    if "expired_lease" in kinds:
        # Exactly the tasks check() found in the files (each re-checked under its lock).
        expired = [v.key for v in found if v.kind == "expired_lease"]
        for task in coord.tasks.reap(ids=expired):
            actions.append(f"reaped task {task.id}: lease expired, now {task.status}")
    if "unblocked" in kinds or "expired_lease" in kinds:
        actions += _block(coord)
    if "agent_view" in kinds or "expired_lease" in kinds:
        tasks = {t.id: t for t in store.list_tasks()}
        for v in _view_drift(store, tasks, []):
            coord.agents.rebuild_views(v.key)
            actions.append(f"rebuilt the task views of agent {v.key}")
    if md is not None:
        from .doctor_files import chmod_safe, remove_orphans

        if "temp_file" in kinds:
            actions += remove_orphans(md)
        for v in found:
            if v.kind == "permissions" and v.file is not None:
                actions += chmod_safe(v.file)
    return actions


def _block(coord: Coordinator) -> list[str]:
    store = coord.store
    tasks = {t.id: t for t in store.list_tasks()}
    statuses = {**_archived(store, []), **{tid: t.status for tid, t in tasks.items()}}
    actions = []
    for tid, cause in sorted(_should_block(tasks, statuses).items()):
        reason = f"dependency {cause} is {statuses[cause]}"

        def fn(task: Task, reason: str = reason, cause: str = cause) -> Task | None:
            if task.status not in (PENDING, ASSIGNED):
                return None
            now = coord.now()
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

"""Task dependencies and claim order (SPEC section 4): a DAG with cycle refusal, readiness,
blocking on failure, and which ready task comes first.

Pure functions over tasks or their heads; no I/O.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..errors import DependencyCycle
from .models import (
    ASSIGNED,
    BLOCKED,
    COMPLETE,
    FINISHED_STATES,
    IN_PROGRESS,
    PENDING,
    Task,
    TaskHead,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

_NATURAL = re.compile(r"(\d+)")


@lru_cache(maxsize=65536)  # every claim sorts every candidate: ids repeat across calls
def natural_key(task_id: str) -> tuple[Any, ...]:
    """``task-2`` before ``task-10``."""
    return tuple(int(p) if p.isdigit() else p for p in _NATURAL.split(task_id))


def order_key(task: Task | TaskHead) -> tuple[Any, ...]:
    """Claim order: highest priority first, then oldest, then id (naturally sorted)."""
    return (-task.priority, task.created_at, natural_key(task.id))


def check_acyclic(
    new_id: str, depends_on: Iterable[str], tasks: Mapping[str, Task | TaskHead]
) -> None:
    """Refuse ``new_id -> depends_on`` if it would close a cycle through existing tasks (which a
    person may have hand-edited into any shape). The error names the whole cycle."""

    def deps_of(tid: str) -> Iterable[str]:
        task = tasks.get(tid)
        return task.depends_on if task is not None else ()

    chain = cycle_through(new_id, depends_on, deps_of)
    if chain is not None:
        raise DependencyCycle("dependency cycle: " + " -> ".join(chain), task=new_id)


def unmet(task: Task | TaskHead, states: Mapping[str, str]) -> list[str]:
    """Dependencies of ``task`` that are not complete. A dependency no longer on the board counts
    as complete: only finished tasks are archived, and a failed one blocks its dependents first."""
    return [d for d in task.depends_on if states.get(d, COMPLETE) != COMPLETE]


def takeable(task: Task | TaskHead, now: float, agent: str | None = None) -> bool:
    """Whether a claim by ``agent`` may take ``task`` by its state alone: pending; assigned to
    that agent; or in progress with an expired lease (the claim takes it back). With no agent,
    a task assigned to someone is not takeable."""
    if task.status == PENDING:
        return True
    if task.status == ASSIGNED:
        return agent is not None and task.agent == agent
    return task.status == IN_PROGRESS and task.lease_expired(now)


def ready(
    task: Task | TaskHead, states: Mapping[str, str], now: float, agent: str | None = None
) -> bool:
    """ "Ready" means claimable now (SPEC section 4): :func:`takeable` and every dependency
    complete. ``claim`` grants exactly the ready tasks; ``task list --ready``, the API and MCP
    list exactly them."""
    return takeable(task, now, agent) and not unmet(task, states)


def failed_dependency(task: Task | TaskHead, states: Mapping[str, str]) -> str | None:
    """A dependency that can no longer complete: failed, cancelled, or itself blocked (by a
    failure further up), so the task would otherwise wait forever."""
    for dep in task.depends_on:
        state = states.get(dep)
        if state == BLOCKED or (state in FINISHED_STATES and state != COMPLETE):
            return dep
    return None


def dependents_closure(root: str, tasks: Iterable[Task | TaskHead]) -> list[str]:
    """Every task that depends on ``root`` directly or transitively, not yet finished."""
    children: dict[str, list[str]] = {}
    live: set[str] = set()
    for t in tasks:
        for dep in t.depends_on:
            children.setdefault(dep, []).append(t.id)
        if t.status not in FINISHED_STATES and t.status != BLOCKED:
            live.add(t.id)
    out: list[str] = []
    stack = list(children.get(root, ()))
    seen: set[str] = set()
    while stack:
        tid = stack.pop()
        if tid in seen:
            continue
        seen.add(tid)
        if tid in live:
            out.append(tid)
        stack.extend(children.get(tid, ()))
    return out


def blocked_dependents(root: str, tasks: Iterable[Task | TaskHead]) -> list[str]:
    """The blocked tasks that depend on ``root`` directly or transitively, dependencies before
    their dependents (so unblocking them in this order sees each one's dependencies already
    unblocked). ``task retry``/``reopen`` of ``root`` unblocks them."""
    by_id = {t.id: t for t in tasks}
    children: dict[str, list[str]] = {}
    for t in by_id.values():
        for dep in t.depends_on:
            children.setdefault(dep, []).append(t.id)
    reach: set[str] = set()
    stack = list(children.get(root, ()))
    while stack:
        tid = stack.pop()
        task = by_id.get(tid)
        if tid in reach or tid == root or task is None or task.status != BLOCKED:
            continue
        reach.add(tid)
        stack.extend(children.get(tid, ()))
    # Kahn's order over the reached tasks (a hand-made cycle among them is appended as is).
    indegree = {tid: sum(1 for d in by_id[tid].depends_on if d in reach) for tid in reach}
    ready_ids = sorted((t for t, n in indegree.items() if n == 0), key=natural_key)
    out: list[str] = []
    while ready_ids:
        tid = ready_ids.pop(0)
        out.append(tid)
        for child in sorted(children.get(tid, ()), key=natural_key):
            if child in indegree:
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready_ids.append(child)
    out += sorted((t for t in reach if t not in out), key=natural_key)
    return out


def check_parent(task_id: str, parent: str, tasks: Mapping[str, Task | TaskHead]) -> None:
    """Refuse ``task_id``'s parent ``parent`` if the parent chain would come back to
    ``task_id`` (:class:`DependencyCycle`, exit 2, naming the chain)."""
    chain = [task_id, parent]
    seen = {task_id}
    node: str | None = parent
    while node is not None and node not in seen:
        seen.add(node)
        head = tasks.get(node)
        node = head.parent if head is not None else None
        if node is not None:
            chain.append(node)
    if node == task_id:
        raise DependencyCycle("parent cycle: " + " -> ".join(chain), task=task_id)


def cycle_through(
    task_id: str, added: Iterable[str], depends_on: Callable[[str], Iterable[str]]
) -> list[str] | None:
    """The dependency cycle ``task_id -> a -> ... -> task_id`` that one of the ``added`` edges
    (``task_id -> a``) closes, as a list of ids from ``task_id`` back to it, or None.
    ``depends_on(id)`` reads a task's dependencies now (an unknown task has none)."""
    via: dict[str, str] = {}  # node -> the node that depends on it
    stack: list[str] = []
    for dep in added:
        if dep not in via:
            via[dep] = task_id
            stack.append(dep)
    while stack:
        tid = stack.pop()
        if tid == task_id:
            chain, node = [task_id], via[task_id]
            while node != task_id:
                chain.append(node)
                node = via[node]
            chain.append(task_id)
            return list(reversed(chain))
        for nxt in depends_on(tid):
            if nxt not in via:
                via[nxt] = tid
                stack.append(nxt)
    return None


def parent_cycle(task_id: str, parent_of: Callable[[str], str | None]) -> list[str] | None:
    """The parent chain ``task_id -> parent -> ... -> task_id`` when it comes back to
    ``task_id``, or None. ``parent_of(id)`` reads a task's parent now (None when unknown)."""
    chain = [task_id]
    seen = {task_id}
    node = parent_of(task_id)
    while node is not None:
        chain.append(node)
        if node == task_id:
            return chain
        if node in seen:
            return None  # a cycle above task_id, not through it
        seen.add(node)
        node = parent_of(node)
    return None

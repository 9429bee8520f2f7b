"""Housekeeping: ``cleanup`` and ``stale`` (SPEC section 4, "Maintenance"); the invariant
checks of ``coord doctor`` live in :mod:`agentcoord.ops.doctor`.

Everything here goes through the Store interface, one atomic record operation at a time, and
every decision is re-checked under the record's lock (``archive_task(id, check)``), so a task
that was reopened or an agent that came back between the scan and the archive is left alone.
Each step is reported as an :class:`Action`; ``dry_run`` reports the same list and changes
nothing.

Backend specifics stay in the stores: ``rotate_events`` moves all but the newest events of a
channel to the archive, ``remove_orphans`` removes temp files of writers that died (markdown
only; Redis has none) and ``record_path`` names a record's file for ``stale`` output.
"""

from __future__ import annotations

from ..core.models import COMPLETE, FINISHED_STATES, IN_PROGRESS, OPEN_STATES
from ..errors import CorruptData, InvalidInput
from . import events

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..core.config import Config
    from ..core.models import Agent, Task
    from ..store.base import Store

HOUR = 3600.0
#: Temp files younger than this may belong to a write in progress on another machine.
ORPHAN_MIN_AGE = 60.0


class Action:
    """One thing maintenance did (``done``) or would do / could not do (``done`` False).

    ``kind``: task | agent | event | context | file; ``what``: archive | rotate | remove |
    reap | rebuild | corrupt | skip."""

    __slots__ = ("detail", "done", "key", "kind", "what")

    def __init__(self, kind: str, key: str, what: str, detail: str, *, done: bool) -> None:
        self.kind = kind
        self.key = key
        self.what = what
        self.detail = detail
        self.done = done

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "what": self.what,
            "detail": self.detail,
            "done": self.done,
        }

    def __repr__(self) -> str:
        return f"Action({self.kind!r}, {self.key!r}, {self.what!r}, done={self.done})"


class StaleRecord:
    """A record not updated for a while (``coord stale``)."""

    __slots__ = ("age", "key", "kind", "path", "status", "updated")

    def __init__(
        self,
        kind: str,
        key: str,
        updated: float,
        age: float,
        *,
        status: str | None = None,
        path: str | None = None,
    ) -> None:
        self.kind = kind
        self.key = key
        self.updated = updated
        self.age = age
        self.status = status
        self.path = path

    def to_dict(self) -> dict[str, Any]:
        from ..core.clock import duration, iso

        return {
            "kind": self.kind,
            "key": self.key,
            "status": self.status,
            "updated": iso(self.updated) if self.updated else None,
            "age": round(self.age),
            "age_text": duration(self.age),
            "path": self.path,
        }


def _last_update(task: Task) -> float:
    return max(task.last_activity(), task.completed_at or 0.0)


def _hours(value: float, what: str) -> float:
    from ..core.validate import number

    return number(value, what)


class Maintenance:
    """Housekeeping (``coord.maintenance``), over a :class:`~agentcoord.store.base.Store`."""

    def __init__(self, store: Store, config: Config, clock: Callable[[], float]) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    # -- cleanup -------------------------------------------------------------------------------
    def cleanup(
        self,
        *,
        dry_run: bool = False,
        stale_hours: float = 24.0,
        keep_events: int | None = None,
    ) -> list[Action]:
        """Archive finished tasks and silent agents older than ``stale_hours``, rotate event
        logs down to ``keep_events`` (default config ``keep_events``), remove orphaned temp
        files. Returns every action (done, or planned under ``dry_run``) and every skip."""
        cutoff = self.clock() - _hours(stale_hours, "stale hours") * HOUR
        keep = events.keep_events(self.config) if keep_events is None else keep_events
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
            raise InvalidInput(f"keep events must be a whole number >= 0, not {keep!r}")
        actions = self._archive_tasks(cutoff, dry_run)
        actions += self._archive_agents(cutoff, dry_run)
        actions += self._rotate(keep, dry_run)
        actions += self._orphans(dry_run)
        return actions

    def _archive_tasks(self, cutoff: float, dry_run: bool) -> list[Action]:
        errors: list[CorruptData] = []
        finished = self.store.list_tasks(statuses=FINISHED_STATES, errors=errors)
        actions = [_corrupt("task", e, "skip") for e in errors]
        # Archived tasks count as complete for their dependents (deps.unmet): a failed or
        # cancelled one stays while an unfinished task still depends on it, blocked ones
        # included (they wait for its retry or reopen; issue 16).
        waiting = {
            dep
            for head in self.store.list_task_heads(statuses=OPEN_STATES)
            for dep in head.depends_on
        }

        def check(task: Task) -> bool:
            return (
                task.finished
                and _last_update(task) <= cutoff
                and (task.status == COMPLETE or task.id not in waiting)
            )

        from ..core.clock import iso

        for task in sorted(finished, key=lambda t: (_last_update(t), t.id)):
            if _last_update(task) > cutoff:
                continue
            detail = f"{task.status}, last update {iso(_last_update(task))}"
            if not check(task):
                actions.append(
                    Action(
                        "task", task.id, "skip", f"{detail}; an open task depends on it", done=False
                    )
                )
                continue
            done = False if dry_run else self.store.archive_task(task.id, check)
            if dry_run or done:
                actions.append(Action("task", task.id, "archive", detail, done=done))
        return actions

    def _archive_agents(self, cutoff: float, dry_run: bool) -> list[Action]:
        errors: list[CorruptData] = []
        agents = self.store.list_agents(errors=errors)
        actions = [_corrupt("agent", e, "skip") for e in errors]
        holding: dict[str, str] = {}
        for head in self.store.list_task_heads(statuses=(IN_PROGRESS,)):
            if head.agent:
                holding.setdefault(head.agent, head.id)

        def seen(agent: Agent) -> float:
            return max(agent.last_seen, agent.registered_at)

        def check(agent: Agent) -> bool:
            return seen(agent) <= cutoff and not agent.active and agent.name not in holding

        from ..core.clock import iso

        for agent in sorted(agents, key=lambda a: a.name):
            if seen(agent) > cutoff:
                continue
            detail = f"silent since {iso(seen(agent))}" if seen(agent) else "never seen"
            if not check(agent):
                held = holding.get(agent.name) or ",".join(str(e.get("id")) for e in agent.active)
                actions.append(
                    Action("agent", agent.name, "skip", f"{detail}; holds task {held}", done=False)
                )
                continue
            done = False if dry_run else self.store.archive_agent(agent.name, check)
            if dry_run or done:
                actions.append(Action("agent", agent.name, "archive", detail, done=done))
        return actions

    def _rotate(self, keep: int, dry_run: bool) -> list[Action]:
        channels = self.store.list_channels()
        if not channels:
            return []
        actions = []
        for channel in channels:
            try:
                moved = self.store.rotate_events(channel, keep=keep, dry_run=dry_run)
            except CorruptData as exc:
                actions.append(_corrupt("event", exc, "skip"))
                continue
            if moved:
                detail = f"{moved} event(s) to the archive, keeping the newest {keep}"
                actions.append(Action("event", channel, "rotate", detail, done=not dry_run))
        return actions

    def _orphans(self, dry_run: bool, min_age: float = ORPHAN_MIN_AGE) -> list[Action]:
        names = self.store.remove_orphans(min_age=min_age, dry_run=dry_run)
        return [
            Action("file", name, "remove", "orphaned temp file of a dead writer", done=not dry_run)
            for name in names
        ]

    # -- stale ---------------------------------------------------------------------------------
    def stale(self, max_age: float) -> list[StaleRecord]:
        """Records not updated for ``max_age`` seconds, oldest first: open tasks, agents (not
        retired), event channels (by their newest event) and context documents."""
        from ..core.validate import number

        max_age = number(max_age, "max age")
        now = self.clock()
        found: list[StaleRecord] = []

        def add(kind: str, key: str, updated: float, status: str | None = None) -> None:
            if now - updated >= max_age:
                path = self.store.record_path(kind, key)
                found.append(
                    StaleRecord(kind, key, updated, now - updated, status=status, path=path)
                )

        for head in self.store.list_task_heads(statuses=OPEN_STATES):
            add("task", head.id, max(head.updated_at or 0.0, head.created_at), head.status)
        for agent in self.store.list_agents():
            if agent.status != "retired":
                add("agent", agent.name, max(agent.last_seen, agent.registered_at), agent.status)
        for channel in self.store.list_channels():
            last = self.store.last_seq(channel)
            newest = self.store.read_events(channel, after=max(0, last - 1)) if last else []
            if newest:
                add("event", channel, newest[-1].time)
        for doc in self.store.list_contexts():
            add("context", f"{doc.project}-{doc.domain}", doc.updated_at)
        found.sort(key=lambda r: (-r.age, r.kind, r.key))
        return found


def _corrupt(kind: str, exc: CorruptData, what: str) -> Action:
    return Action(kind, exc.path, what, exc.message, done=False)

"""The in-memory store: the reference implementation of :class:`~agentcoord.store.base.Store`.

Everything a backend must do, with nothing else in the way: records are objects in dictionaries,
one lock makes every call atomic, and every record crosses the boundary as a copy (a caller can
never change stored state except through an update). Read it as the executable specification;
the conformance suite runs every behavioural test on it as well as on the markdown and Redis
backends. It lives in one process and keeps nothing on disk: use it for tests and embedding.
"""

from __future__ import annotations

import threading
import time

from ..core.clock import round_ms
from ..core.validate import check_name
from ..errors import AlreadyExists, NotFound
from .base import ARCHIVE_KINDS, Change, Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable
    from typing import Any

    from ..core.models import Agent, ContextDoc, Event, Reservation, Task, TaskHead
    from ..errors import CorruptData
    from .base import AgentFn, ReservationFn, TaskFn


class _Channel:
    __slots__ = ("archive", "cursors", "last_seq", "live")

    def __init__(self) -> None:
        self.live: list[Event] = []
        self.archive: list[Event] = []
        self.last_seq = 0
        self.cursors: dict[str, int] = {}


class MemoryStore(Store):
    """Records in dictionaries, guarded by one lock; ``clock`` stamps events without a time."""

    def __init__(self, *, clock: Callable[[], float] = time.time, name: str = "memory") -> None:
        self.clock = clock
        self.location = f"memory:{name}"
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._tasks: dict[str, Task] = {}
        self._agents: dict[str, Agent] = {}
        self._archives: dict[str, dict[str, Task | Agent]] = {k: {} for k in ARCHIVE_KINDS}
        self._counters: dict[str, int] = {}
        self._channels: dict[str, _Channel] = {}
        self._contexts: dict[str, ContextDoc] = {}
        self._documents: dict[str, dict[str, Any]] = {}
        self._reservations: list[Reservation] = []
        #: Every change hint ever published, in order; watchers keep a position in it.
        self._feed: list[Change] = []

    def _publish(self, kind: str, key: str, action: str) -> None:
        self._feed.append(Change(kind, key, action))
        self._changed.notify_all()

    # == tasks ================================================================================
    def get_task(self, task_id: str) -> Task:
        self.check_key("task", task_id)
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise NotFound(f"no task {task_id!r} in {self.location}", task=task_id)
            return task.copy()

    def list_tasks(
        self,
        *,
        statuses: Iterable[str] | None = None,
        errors: list[CorruptData] | None = None,
    ) -> list[Task]:
        wanted = None if statuses is None else frozenset(statuses)
        with self._lock:
            return [
                self._tasks[i].copy()
                for i in self.record_order(self._tasks)
                if wanted is None or self._tasks[i].status in wanted
            ]

    def list_task_heads(
        self,
        *,
        statuses: Iterable[str] | None = None,
        errors: list[CorruptData] | None = None,
    ) -> list[TaskHead]:
        from ..core.models import TaskHead

        wanted = None if statuses is None else frozenset(statuses)
        with self._lock:
            return [
                TaskHead.of(self._tasks[i])
                for i in self.record_order(self._tasks)
                if wanted is None or self._tasks[i].status in wanted
            ]

    def get_task_head(self, task_id: str) -> TaskHead:
        from ..core.models import TaskHead

        self.check_key("task", task_id)
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise NotFound(f"no task {task_id!r} in {self.location}", task=task_id)
            return TaskHead.of(task)

    def create_task(self, task: Task) -> None:
        task = self.check_task(task)
        with self._lock:
            if task.id in self._tasks:
                raise AlreadyExists(f"task {task.id!r} already exists", task=task.id)
            self._tasks[task.id] = task.copy()
            self._publish("task", task.id, "created")

    def update_task(self, task_id: str, fn: TaskFn) -> Task:
        self.check_key("task", task_id)
        with self._lock:
            current = self._tasks.get(task_id)
            if current is None:
                raise NotFound(f"no task {task_id!r} in {self.location}", task=task_id)
            got = fn(current.copy())  # fn's own copy: what it does to it is its business
            if got is None:  # "no change": the task as stored
                return current.copy()
            new = self.updated_task(task_id, got)
            self._tasks[task_id] = new.copy()
            self._publish("task", task_id, "changed")
            return new

    def archive_task(self, task_id: str, check: Callable[[Task], bool]) -> bool:
        return self._archive("task", self._tasks, self.check_key("task", task_id), check)

    def list_archived_tasks(
        self, *, errors: list[CorruptData] | None = None
    ) -> list[tuple[str, Task]]:
        return self._archived("task")  # type: ignore[return-value]

    def next_id(self, kind: str) -> int:
        self.check_key("counter", kind)
        with self._lock:
            self._counters[kind] = self._counters.get(kind, 0) + 1
            return self._counters[kind]

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counters.items()))

    def set_counter(self, kind: str, value: int) -> None:
        value = self.check_counter(kind, value)
        with self._lock:
            if value > self._counters.get(kind, 0):  # never lowered; nothing made for <= 0
                self._counters[kind] = value

    # == agents ===============================================================================
    def get_agent(self, name: str) -> Agent:
        self.check_key("agent", name)
        with self._lock:
            agent = self._agents.get(name)
            if agent is None:
                raise NotFound(f"no agent {name!r} in {self.location}", agent=name)
            return agent.copy()

    def list_agents(self, *, errors: list[CorruptData] | None = None) -> list[Agent]:
        with self._lock:
            return [self._agents[n].copy() for n in self.record_order(self._agents)]

    def update_agent(self, name: str, fn: AgentFn, *, durable: bool = True) -> Agent | None:
        self.check_key("agent", name)
        with self._lock:
            current = self._agents.get(name)
            got = fn(current.copy() if current is not None else None)
            if got is None:  # "no change": the agent as stored
                return current.copy() if current is not None else None
            new = self.updated_agent(name, got)
            self._agents[name] = new.copy()
            self._publish("agent", name, "created" if current is None else "changed")
            return new

    def archive_agent(self, name: str, check: Callable[[Agent], bool]) -> bool:
        return self._archive("agent", self._agents, self.check_key("agent", name), check)

    def list_archived_agents(
        self, *, errors: list[CorruptData] | None = None
    ) -> list[tuple[str, Agent]]:
        return self._archived("agent")  # type: ignore[return-value]

    def import_archived(self, kind: str, name: str, record: Task | Agent) -> None:
        record = self.check_archived(kind, name, record)
        with self._lock:
            self._archives[kind][name] = record.copy()

    def _archive(
        self, kind: str, live: dict[str, Any], key: str, check: Callable[[Any], bool]
    ) -> bool:
        with self._lock:
            record = live.get(key)
            if record is None or not check(record.copy()):
                return False
            archive = self._archives[kind]
            archive[self.archive_name(key, archive.__contains__, self.clock())] = record
            del live[key]
            self._publish(kind, key, "archived")
            return True

    def _archived(self, kind: str) -> list[tuple[str, Task | Agent]]:
        with self._lock:
            entries = self._archives[kind]
            return [(n, entries[n].copy()) for n in self.record_order(entries)]

    # == events ===============================================================================
    def _channel(self, channel: str) -> _Channel:
        found = self._channels.get(channel)
        if found is None:
            found = self._channels[channel] = _Channel()
        return found

    def append_events(self, channel: str, events: list[Event], *, keep: int) -> list[Event]:
        return self._write_events(channel, events, keep, explicit=False)

    def import_events(self, channel: str, events: list[Event], *, keep: int) -> list[Event]:
        return self._write_events(channel, events, keep, explicit=True)

    def _write_events(
        self, channel: str, events: list[Event], keep: int, *, explicit: bool
    ) -> list[Event]:
        self.check_events(channel, events, keep)
        if not events:
            return []
        with self._lock:
            log = self._channel(channel)
            if explicit:
                self.check_import_seqs(channel, log.last_seq, events)
            now = self.clock()
            added = []
            for event in events:
                stored = event.copy()
                stored.channel = channel
                stored.seq = event.seq if explicit else log.last_seq + 1
                stored.time = round_ms(event.time or now)
                log.last_seq = stored.seq
                added.append(stored)
            log.live.extend(added)
            self._trim(log, keep)
            self._publish("event", channel, "created")
            return [e.copy() for e in added]

    @staticmethod
    def _trim(log: _Channel, keep: int) -> int:
        drop = max(0, len(log.live) - keep)
        if drop:
            log.archive.extend(log.live[:drop])
            del log.live[:drop]
        return drop

    def rotate_events(self, channel: str, *, keep: int, dry_run: bool = False) -> int:
        check_name(channel, "channel")
        self.check_count(keep, "keep")
        with self._lock:
            log = self._channels.get(channel)
            if log is None:
                return 0
            if dry_run:
                return max(0, len(log.live) - keep)
            moved = self._trim(log, keep)
            if moved:
                self._publish("event", channel, "changed")
            return moved

    def read_events(self, channel: str, *, after: int = 0, limit: int | None = None) -> list[Event]:
        check_name(channel, "channel")
        self.check_count(after, "after")
        if limit is not None:
            self.check_count(limit, "limit")
        with self._lock:
            log = self._channels.get(channel)
            if log is None:
                return []
            found = [e.copy() for e in (*log.archive, *log.live) if e.seq > after]
        return found if limit is None else found[:limit]

    def last_seq(self, channel: str) -> int:
        check_name(channel, "channel")
        with self._lock:
            log = self._channels.get(channel)
            return log.last_seq if log is not None else 0

    def raise_last_seq(self, channel: str, seq: int) -> int:
        check_name(channel, "channel")
        self.check_count(seq, "seq")
        with self._lock:
            log = self._channel(channel)
            log.last_seq = max(log.last_seq, seq)
            return log.last_seq

    def live_event_count(self, channel: str) -> int:
        check_name(channel, "channel")
        with self._lock:
            log = self._channels.get(channel)
            return len(log.live) if log is not None else 0

    def list_channels(self) -> list[str]:
        with self._lock:
            return sorted(c for c, log in self._channels.items() if log.last_seq)

    def get_cursor(self, channel: str, consumer: str) -> int:
        check_name(channel, "channel")
        check_name(consumer, "consumer")
        with self._lock:
            log = self._channels.get(channel)
            return log.cursors.get(consumer, 0) if log is not None else 0

    def advance_cursor(self, channel: str, consumer: str, seq: int) -> int:
        check_name(channel, "channel")
        check_name(consumer, "consumer")
        self.check_count(seq, "seq")
        with self._lock:
            log = self._channels.get(channel)
            current = log.cursors.get(consumer, 0) if log is not None else 0
            if seq <= current:  # not forward: nothing stored (no cursor made at 0)
                return current
            self._channel(channel).cursors[consumer] = seq
            return seq

    def reset_cursor(self, channel: str, consumer: str, seq: int) -> int:
        check_name(channel, "channel")
        check_name(consumer, "consumer")
        self.check_count(seq, "seq")
        with self._lock:
            self._channel(channel).cursors[consumer] = seq
            return seq

    def list_cursors(self, *, errors: list[CorruptData] | None = None) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                c: dict(sorted(log.cursors.items()))
                for c, log in sorted(self._channels.items())
                if log.cursors
            }

    # == context ==============================================================================
    def put_context(self, doc: ContextDoc) -> None:
        doc = self.check_context(doc)
        name = self.context_name(doc.project, doc.domain)
        with self._lock:
            current = self._contexts.get(name)
            self.check_context_slot(current, doc)
            self._contexts[name] = doc.copy()
            self._publish("context", name, "created" if current is None else "changed")

    def get_context(self, project: str, domain: str) -> ContextDoc:
        with self._lock:
            doc = self._contexts.get(self.context_name(project, domain))
            if doc is None or (doc.project, doc.domain) != (project, domain):
                raise NotFound(f"no context for project {project!r}, domain {domain!r}")
            return doc.copy()

    def list_contexts(self, *, errors: list[CorruptData] | None = None) -> list[ContextDoc]:
        with self._lock:
            return [self._contexts[n].copy() for n in self.record_order(self._contexts)]

    # == documents ============================================================================
    def put_document(self, name: str, data: dict[str, Any]) -> None:
        stored = self.document_data(name, data)  # exactly the JSON value, never shared
        with self._lock:
            self._documents[name] = stored
            self._publish("metrics", name.removeprefix("metrics-"), "changed")

    def get_document(self, name: str) -> dict[str, Any] | None:
        import json

        self.check_document(name)
        with self._lock:
            data = self._documents.get(name)
            return None if data is None else dict(json.loads(json.dumps(data)))

    def list_documents(self, *, errors: list[CorruptData] | None = None) -> list[str]:
        with self._lock:
            return sorted(self._documents)

    # == file reservations ====================================================================
    def get_reservations(self) -> list[Reservation]:
        with self._lock:
            return [r.copy() for r in self._reservations]

    def update_reservations(self, fn: ReservationFn) -> list[Reservation]:
        with self._lock:
            got = fn([r.copy() for r in self._reservations])
            if got is None:  # "no change": the table as stored
                return [r.copy() for r in self._reservations]
            new = self.check_reservations(got)
            self._reservations = [r.copy() for r in new]
            self._publish("reservation", "*", "changed")
            return new

    # == the workspace as a whole =============================================================
    def identity(self) -> tuple[str, ...]:
        return ("memory", str(id(self)))

    def prepare(self) -> None:
        return None

    def record_names(self) -> list[str]:
        with self._lock:
            out = [f"task-{i}" for i in self._tasks] + [f"agent-{n}" for n in self._agents]
            for kind, entries in self._archives.items():
                out += [f"archive/{kind}-{n}" for n in entries]
            for channel, log in self._channels.items():
                if log.last_seq:
                    out.append(f"events-{channel}")
                if log.cursors:
                    out.append(f"cursors-{channel}")
            out += [f"context-{n}" for n in self._contexts]
            out += list(self._documents) + [f"counter-{k}" for k in self._counters]
            if self._reservations:
                out.append("reservations")
            return sorted(out)

    def clear(self) -> int:
        with self._lock:
            count = len(self.record_names())
            self._tasks.clear()
            self._agents.clear()
            for entries in self._archives.values():
                entries.clear()
            self._counters.clear()
            self._channels.clear()
            self._contexts.clear()
            self._documents.clear()
            self._reservations = []
            self._publish("store", "*", "removed")
            return count

    # == change feed ==========================================================================
    def watch(self, *, timeout: float | None = None) -> Generator[list[Change], None, None]:
        with self._lock:
            start = len(self._feed)
        return self._follow(start, timeout)

    def _follow(self, position: int, timeout: float | None) -> Generator[list[Change], None, None]:
        while True:
            with self._lock:
                deadline = None if timeout is None else time.monotonic() + timeout
                while len(self._feed) == position:
                    wait = None if deadline is None else deadline - time.monotonic()
                    if wait is not None and wait <= 0:
                        return
                    self._changed.wait(wait)
                batch = list(dict.fromkeys(self._feed[position:]))
                position = len(self._feed)
            yield batch

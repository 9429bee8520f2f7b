"""The Redis backend: the same records and semantics as the markdown files, in one Redis.

Key layout (``B`` = ``{prefix}:{{workspace}}``, one hash tag, so one cluster slot per workspace):

================================  ================================================================
``B:task:{id}``                   JSON of :meth:`Task.to_dict`
``B:tasks:all``                   SET of live task ids
``B:tasks:status:{status}``       SET of the ids in that status
``B:tasks:heads:{status}``        HASH id -> JSON of its :class:`TaskHead` (:mod:`.heads`)
``B:tasks:archive``               HASH archive name -> JSON (``id-YYYYmmddTHHMMSS[-N]`` if reused)
``B:agent:{name}``                JSON of :meth:`Agent.to_dict`; ``B:agents:all`` SET of names
``B:agents:archive``              HASH archive name -> JSON
``B:context:{project}-{domain}``  JSON of :meth:`ContextDoc.to_dict`; ``B:contexts`` SET
``B:doc:{name}``                  JSON of a document (``metrics-performance``)
``B:reservations``                JSON list of the file reservations (absent when there is none)
``B:counters``                    HASH kind -> last number handed out by :meth:`next_id`
``B:events:{channel}:...``        streams, counter and cursors (:mod:`.events`); ``B:channels``
``B:op:{token}``                  short-lived marker of a committed write (:mod:`.connection`)
``B:changes``                     the pub/sub channel of change hints (:mod:`.watch`)
================================  ================================================================

Atomicity per operation: task and agent updates read the record, apply ``fn`` and write with a
Lua compare-and-set (written only if the record is still the one read, else ``fn`` runs again on
the new value) that also moves the id between index sets, writes the head and publishes the hint;
archiving and ``put_context`` are ``WATCH`` / ``MULTI`` / ``EXEC`` loops; ``create_task``,
``append_events``, ``rotate_events`` and ``advance_cursor`` are Lua scripts; ``next_id`` is
``HINCRBY``. All keys one operation touches share the workspace's hash tag.

The sets and heads hashes are derived from the records: ``coord doctor`` checks them against the
records and rebuilds them (:mod:`.checks`), which also names the records the way every backend
does (:meth:`RedisStore.record_names`).

Each record is decoded at most once per operation: the decoded record of the last value this
process read or wrote is kept with that value (:class:`~agentcoord.store.cache.RecordCache` keyed by
the exact JSON), and the compare-and-set loop starts from it.

The workspace name comes from ``workspace=`` or the URL's ``?workspace=NAME`` (default
``default``); ``redis`` is imported only when a store is opened (it costs ~200 ms).
"""

from __future__ import annotations

import time

from ...core.models import Agent, ContextDoc, Task
from ...errors import AlreadyExists, CorruptData, NotFound
from ..base import Store
from ..cache import RecordCache
from .connection import BUSY, COMPARE, NOT_DONE, Cas, Connection
from .events import EventStreams
from .heads import HeadIndex, head_json
from .watch import ChangeFeed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable
    from typing import Any, TypeVar

    import redis

    from ...core.models import Event, Reservation, TaskHead
    from ..base import AgentFn, Change, ReservationFn, TaskFn, Violation
    from .connection import Pipeline, Writes

    T = TypeVar("T")

# KEYS: record, all-set, status-set, heads.  ARGV: json, id, pub/sub channel, hint, head.
# Returns nil when created, else the value already there.
_CREATE = """
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[5])
redis.pcall('PUBLISH', ARGV[3], ARGV[4])
return false
"""

# KEYS: task, old state set, new state set, old heads, new heads, op, turn.
# ARGV: (compare), new json, id, head, op ttl (ms), pub/sub channel, hint.  Returns 1 if written.
_UPDATE_TASK = (
    COMPARE
    + """
redis.call('SET', KEYS[1], ARGV[3])
if KEYS[2] ~= KEYS[3] then
  redis.call('SREM', KEYS[2], ARGV[4])
  redis.call('HDEL', KEYS[4], ARGV[4])
end
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('HSET', KEYS[5], ARGV[4], ARGV[5])
redis.call('SET', KEYS[6], '1', 'PX', ARGV[6])
redis.pcall('PUBLISH', ARGV[7], ARGV[8])
return 1
"""
)

# KEYS: agent, all-agents set, op, turn.  ARGV: (compare), new json, name, op ttl (ms), pub/sub
# channel, hint.  Returns 1 if written.
_UPDATE_AGENT = (
    COMPARE
    + """
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[5])
redis.pcall('PUBLISH', ARGV[6], ARGV[7])
return 1
"""
)

# KEYS: the reservation table, op, turn.  ARGV: (compare), new json ('' = delete), op ttl (ms),
# pub/sub channel, hint.  Returns 1 if written.
_UPDATE_RESERVATIONS = (
    COMPARE
    + """
if ARGV[3] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[3]) end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
redis.pcall('PUBLISH', ARGV[5], ARGV[6])
return 1
"""
)

_MGET_CHUNK = 500


def reservations_from_json(data: dict[str, Any]) -> list[Reservation]:
    """The table stored as ``{"reservations": [...]}``."""
    from ...core.models import Reservation, ReservationTable

    rows = data["reservations"]
    if not isinstance(rows, list):
        raise ValueError("reservations must be a list")
    return ReservationTable(Reservation.from_dict(r) for r in rows)


class RedisStore(Store):
    """Records as JSON values in Redis, indexed by sets, events on streams (see module doc).

    ``url``: ``redis://``, ``rediss://`` or ``unix://`` (``?workspace=NAME`` selects the
    workspace); ``retry_seconds`` bounds the retries of transient failures (then
    :class:`BackendUnavailable`, exit 5), ``lock_timeout`` the optimistic loops under contention
    (then :class:`LockTimeout`); ``clock`` stamps events and archive names."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "coord",
        workspace: str | None = None,
        clock: Callable[[], float] = time.time,
        client: redis.Redis | None = None,
        retry_seconds: float = 2.0,
        lock_timeout: float = 10.0,
        socket_timeout: float = 5.0,
        connect_timeout: float = 1.0,
    ) -> None:
        self.c = Connection(
            url,
            prefix=prefix,
            workspace=workspace,
            client=client,
            retry_seconds=retry_seconds,
            lock_timeout=lock_timeout,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
        )
        self.url = url
        self.location = self.c.location
        self.workspace = self.c.workspace
        self.clock = clock
        self.events = EventStreams(self.c, clock)
        self.heads = HeadIndex(self.c)
        self.feed = ChangeFeed(self.c)
        self._decoded = RecordCache()

    def ping(self) -> None:
        """Raise :class:`BackendUnavailable` unless the server answers (for ``coord init``)."""
        self.c.call(self.c.client.ping)

    def close(self) -> None:
        self.feed.close()
        self.c.close()

    # -- records ----------------------------------------------------------------------------
    def _decode(self, key: str, raw: str, from_dict: Callable[[dict[str, Any]], T]) -> T:
        """The record stored as ``raw`` under ``key``, decoded once per value (then copied)."""
        encoded = raw.encode("utf-8", "surrogatepass")
        found: T | None = self._decoded.get(key, encoded)
        if found is not None:
            return found
        record = self.c.decode(key, raw, from_dict)
        self._decoded.put(key, encoded, record)
        return record

    def _read_many(
        self,
        kind: str,
        names: Iterable[str],
        from_dict: Callable[[dict[str, Any]], T],
        errors: list[CorruptData] | None,
    ) -> list[T]:
        """The records ``names`` of ``kind`` in :meth:`record_order`, MGET in chunks, one round
        trip. Not a snapshot across records (neither is a directory scan)."""
        keys = [self.c.key(kind, name) for name in self.record_order(names)]
        if not keys:
            return []

        def read() -> list[Any]:
            with self.c.client.pipeline(transaction=False) as pipe:
                for i in range(0, len(keys), _MGET_CHUNK):
                    pipe.mget(keys[i : i + _MGET_CHUNK])
                chunks: list[list[Any]] = pipe.execute()
            return [raw for chunk in chunks for raw in chunk]

        out: list[T] = []
        for key, raw in zip(keys, self.c.call(read), strict=True):
            if raw is None:  # archived between the index read and the MGET
                continue
            try:
                out.append(self.c.decode(key, raw, from_dict))
            except CorruptData as exc:
                if errors is not None:
                    errors.append(exc)
        return out

    def _get(self, key: str, from_dict: Callable[[dict[str, Any]], T]) -> T | None:
        raw = self.c.call(lambda: self.c.client.get(key))
        if raw is None:
            return None
        record = self._decode(key, raw, from_dict)
        self.c.remember(key, raw)  # the likely starting point of this process's next update
        return record

    # -- tasks ------------------------------------------------------------------------------
    def get_task(self, task_id: str) -> Task:
        self.check_key("task", task_id)
        task = self._get(self.c.key("task", task_id), Task.from_dict)
        if task is None:
            raise NotFound(f"no task {task_id!r} in {self.location}", task=task_id)
        return task

    def list_tasks(
        self,
        *,
        statuses: Iterable[str] | None = None,
        errors: list[CorruptData] | None = None,
    ) -> list[Task]:
        wanted = None if statuses is None else frozenset(statuses)

        def ids() -> set[str]:
            if wanted is None:
                members: set[str] = self.c.client.smembers(self.c.key("tasks", "all"))
                return members
            if not wanted:
                return set()
            union: set[str] = self.c.client.sunion(
                [self.c.key("tasks", "status", s) for s in sorted(wanted)]
            )
            return union

        none: set[str] = set()
        found = self.c.read_index(ids, self.c.key("tasks", "*"), errors, none)
        tasks = self._read_many("task", found, Task.from_dict, errors)
        if wanted is not None:  # a task may have moved on between the index read and the MGET
            tasks = [t for t in tasks if t.status in wanted]
        return tasks

    def list_task_heads(
        self,
        *,
        statuses: Iterable[str] | None = None,
        errors: list[CorruptData] | None = None,
    ) -> list[TaskHead]:
        return self.heads.read(None if statuses is None else frozenset(statuses), errors)

    def create_task(self, task: Task) -> None:
        task = self.check_task(task)
        key = self.c.key("task", task.id)
        data = self.c.dumps(task.to_dict())
        keys = [
            key,
            self.c.key("tasks", "all"),
            self.c.key("tasks", "status", task.status),
            self.heads.key(task.status),
        ]
        args = [data, task.id, self.c.changes, self.c.hint("task", "created", task.id)]
        args.append(head_json(task))
        script = self.c.script("create", _CREATE)

        def committed() -> Any:  # a retry that finds exactly our record: the first try won
            return None if self.c.client.get(key) == data else NOT_DONE

        existing = self.c.call(lambda: script(keys=keys, args=args), committed)
        if existing is not None:
            self.c.decode(key, existing, Task.from_dict)  # a corrupt record is reported as such
            raise AlreadyExists(f"task {task.id!r} already exists", task=task.id)

    def update_task(self, task_id: str, fn: TaskFn) -> Task:
        task: Task = self._update_task(task_id, fn, once=False)
        return task

    def try_update_task(self, task_id: str, fn: TaskFn) -> Task | None:
        """One compare-and-set: None if the task changed between the read and the write (a
        concurrent claimer most likely won it), instead of recomputing ``fn``."""
        got = self._update_task(task_id, fn, once=True)
        return None if got is BUSY else got

    def _update_task(self, task_id: str, fn: TaskFn, *, once: bool) -> Any:
        key = self.c.key("task", self.check_key("task", task_id))
        op_key = self.c.key("op", self.c.token())
        script = self.c.script("update_task", _UPDATE_TASK)
        hint = self.c.hint("task", "changed", task_id)

        def plan(raw: str | None) -> tuple[list[str] | None, list[Any], Task]:
            if raw is None:
                raise NotFound(f"no task {task_id!r} in {self.location}", task=task_id)
            current = self._decode(key, raw, Task.from_dict)
            old_status = current.status
            got = fn(current)
            if got is None:  # "no change": the task as stored, not what fn did to its copy
                return None, [], self._decode(key, raw, Task.from_dict)
            new = self.updated_task(task_id, got)
            data = self.c.dumps(new.to_dict())
            self._decoded.put(key, data.encode("utf-8", "surrogatepass"), new)
            keys = [
                key,
                self.c.key("tasks", "status", old_status),
                self.c.key("tasks", "status", new.status),
                self.heads.key(old_status),
                self.heads.key(new.status),
                op_key,
            ]
            args: list[Any] = [data, task_id, head_json(new)]
            return keys, [*args, self.c.op_ttl_ms, self.c.changes, hint], new

        def stored() -> Task:
            raw = self.c.client.get(key)
            if raw is None:  # committed, then archived by someone else meanwhile
                raise NotFound(f"no task {task_id!r} in {self.location}", task=task_id)
            return self.c.decode(key, raw, Task.from_dict)

        return self.c.call(
            lambda: self.c.watched([key], Cas(key, plan, script, once=once)),
            self.c.committed(op_key, stored),
        )

    def archive_task(self, task_id: str, check: Callable[[Task], bool]) -> bool:
        return self._archive("task", task_id, Task.from_dict, check)

    def list_archived_tasks(
        self, *, errors: list[CorruptData] | None = None
    ) -> list[tuple[str, Task]]:
        return self._list_archived("task", Task.from_dict, errors)

    def next_id(self, kind: str) -> int:
        self.check_key("counter", kind)
        # A retry after a lost reply skips a number; numbers are never handed out twice.
        value = self.c.call(lambda: self.c.client.hincrby(self.c.key("counters"), kind, 1))
        return int(value)

    def counters(self) -> dict[str, int]:
        key = self.c.key("counters")
        raw: dict[str, str] = self.c.call(lambda: self.c.client.hgetall(key))
        return {kind: self.c.to_int(f"{key}#{kind}", v) for kind, v in sorted(raw.items())}

    def set_counter(self, kind: str, value: int) -> None:
        value = self.check_counter(kind, value)
        key = self.c.key("counters")

        def step(pipe: Pipeline) -> tuple[Writes, None]:
            if self.c.to_int(f"{key}#{kind}", pipe.hget(key, kind)) >= value:
                return None, None
            return (lambda p: p.hset(key, kind, int(value))), None

        self.c.call(lambda: self.c.watched([key], step))

    # -- agents -----------------------------------------------------------------------------
    def get_agent(self, name: str) -> Agent:
        self.check_key("agent", name)
        agent = self._get(self.c.key("agent", name), Agent.from_dict)
        if agent is None:
            raise NotFound(f"no agent {name!r} in {self.location}", agent=name)
        return agent

    def list_agents(self, *, errors: list[CorruptData] | None = None) -> list[Agent]:
        key = self.c.key("agents", "all")
        none: set[str] = set()
        names = self.c.read_index(lambda: self.c.client.smembers(key), key, errors, none)
        return self._read_many("agent", names, Agent.from_dict, errors)

    def update_agent(self, name: str, fn: AgentFn, *, durable: bool = True) -> Agent | None:
        key = self.c.key("agent", self.check_key("agent", name))
        op_key = self.c.key("op", self.c.token())
        script = self.c.script("update_agent", _UPDATE_AGENT)

        def plan(raw: str | None) -> tuple[list[str] | None, list[Any], Agent | None]:
            current = None if raw is None else self._decode(key, raw, Agent.from_dict)
            got = fn(current)
            if got is None:  # "no change": the agent as stored, not what fn did to its copy
                return None, [], None if raw is None else self._decode(key, raw, Agent.from_dict)
            new = self.updated_agent(name, got)
            action = "created" if current is None else "changed"
            data = self.c.dumps(new.to_dict())
            self._decoded.put(key, data.encode("utf-8", "surrogatepass"), new)
            keys = [key, self.c.key("agents", "all"), op_key]
            args: list[Any] = [data, name, self.c.op_ttl_ms, self.c.changes]
            return keys, [*args, self.c.hint("agent", action, name)], new

        def stored() -> Agent | None:
            raw = self.c.client.get(key)
            return None if raw is None else self.c.decode(key, raw, Agent.from_dict)

        # Every write is as durable as the server's persistence makes it (docs/redis.md), so
        # ``durable`` changes nothing here.
        result: Agent | None = self.c.call(
            lambda: self.c.watched([key], Cas(key, plan, script)),
            self.c.committed(op_key, stored),
        )
        return result

    def archive_agent(self, name: str, check: Callable[[Agent], bool]) -> bool:
        return self._archive("agent", name, Agent.from_dict, check)

    def list_archived_agents(
        self, *, errors: list[CorruptData] | None = None
    ) -> list[tuple[str, Agent]]:
        return self._list_archived("agent", Agent.from_dict, errors)

    # -- archives ---------------------------------------------------------------------------
    def _archive(
        self,
        kind: str,
        name: str,
        from_dict: Callable[[dict[str, Any]], Any],
        check: Callable[[Any], bool],
    ) -> bool:
        key = self.c.key(kind, self.check_key(kind, name))
        archive = self.c.key(kind + "s", "archive")
        op_key = self.c.key("op", self.c.token())

        def step(pipe: Pipeline) -> tuple[Writes, bool]:
            raw = pipe.get(key)
            if raw is None:
                return None, False
            record = self.c.decode(key, raw, from_dict)
            if not check(record):
                return None, False
            field = self.archive_name(name, lambda f: bool(pipe.hexists(archive, f)), self.clock())
            status = getattr(record, "status", None) if kind == "task" else None

            def writes(p: Pipeline) -> None:
                p.delete(key)
                p.srem(self.c.key(kind + "s", "all"), name)
                if status is not None:
                    p.srem(self.c.key("tasks", "status", status), name)
                    p.hdel(self.heads.key(status), name)
                p.hset(archive, field, raw)
                p.set(op_key, "1", px=self.c.op_ttl_ms)

            return writes, True

        moved: bool = self.c.call(
            lambda: self.c.watched([key], step), self.c.committed(op_key, lambda: True)
        )
        if moved:
            self.c.notify(self.c.hint(kind, "archived", name))
        return moved

    def _list_archived(
        self, kind: str, from_dict: Callable[[dict[str, Any]], T], errors: list[CorruptData] | None
    ) -> list[tuple[str, T]]:
        archive = self.c.key(kind + "s", "archive")
        entries: dict[str, str] = self.c.call(lambda: self.c.client.hgetall(archive))
        out: list[tuple[str, T]] = []
        for field in self.record_order(entries):
            try:
                out.append((field, self.c.decode(f"{archive}#{field}", entries[field], from_dict)))
            except CorruptData as exc:
                if errors is None:
                    raise
                errors.append(exc)
        return out

    def import_archived(self, kind: str, name: str, record: Task | Agent) -> None:
        record = self.check_archived(kind, name, record)
        archive = self.c.key(kind + "s", "archive")
        raw = self.c.dumps(record.to_dict())
        self.c.call(lambda: self.c.client.hset(archive, name, raw))

    # -- events (see .events) ---------------------------------------------------------------
    def append_events(self, channel: str, events: list[Event], *, keep: int) -> list[Event]:
        return self.events.append_events(channel, events, keep=keep)

    def import_events(self, channel: str, events: list[Event], *, keep: int) -> list[Event]:
        return self.events.import_events(channel, events, keep=keep)

    def rotate_events(self, channel: str, *, keep: int, dry_run: bool = False) -> int:
        return self.events.rotate_events(channel, keep=keep, dry_run=dry_run)

    def read_events(self, channel: str, *, after: int = 0, limit: int | None = None) -> list[Event]:
        return self.events.read_events(channel, after=after, limit=limit)

    def last_seq(self, channel: str) -> int:
        return self.events.last_seq(channel)

    def raise_last_seq(self, channel: str, seq: int) -> int:
        return self.events.raise_last_seq(channel, seq)

    def live_event_count(self, channel: str) -> int:
        return self.events.live_event_count(channel)

    def list_channels(self) -> list[str]:
        return self.events.list_channels()

    def get_cursor(self, channel: str, consumer: str) -> int:
        return self.events.get_cursor(channel, consumer)

    def advance_cursor(self, channel: str, consumer: str, seq: int) -> int:
        return self.events.advance_cursor(channel, consumer, seq)

    def reset_cursor(self, channel: str, consumer: str, seq: int) -> int:
        return self.events.reset_cursor(channel, consumer, seq)

    def list_cursors(self, *, errors: list[CorruptData] | None = None) -> dict[str, dict[str, int]]:
        return self.events.list_cursors(errors=errors)

    # -- context ----------------------------------------------------------------------------
    def put_context(self, doc: ContextDoc) -> None:
        doc = self.check_context(doc)
        name = self.context_name(doc.project, doc.domain)
        key = self.c.key("context", name)
        data = self.c.dumps(doc.to_dict())

        def step(pipe: Pipeline) -> tuple[Writes, None]:
            raw = pipe.get(key)
            current = None if raw is None else self.c.decode(key, raw, ContextDoc.from_dict)
            self.check_context_slot(current, doc)
            action.append("created" if current is None else "changed")

            def writes(p: Pipeline) -> None:
                p.set(key, data)
                p.sadd(self.c.key("contexts"), name)

            return writes, None

        action: list[str] = []
        # A plain overwrite: running it again after a lost reply changes nothing.
        self.c.call(lambda: self.c.watched([key], step))
        self.c.notify(self.c.hint("context", action[-1], name))

    def get_context(self, project: str, domain: str) -> ContextDoc:
        key = self.c.key("context", self.context_name(project, domain))
        doc = self._get(key, ContextDoc.from_dict)
        if doc is None or (doc.project, doc.domain) != (project, domain):
            raise NotFound(f"no context for project {project!r}, domain {domain!r}")
        return doc

    def list_contexts(self, *, errors: list[CorruptData] | None = None) -> list[ContextDoc]:
        key = self.c.key("contexts")
        none: set[str] = set()
        names = self.c.read_index(lambda: self.c.client.smembers(key), key, errors, none)
        return self._read_many("context", names, ContextDoc.from_dict, errors)

    # -- documents --------------------------------------------------------------------------
    def put_document(self, name: str, data: dict[str, Any]) -> None:
        self.check_document(name, data)
        key = self.c.key("doc", name)
        raw = self.c.dumps(data)
        # Documents are rendered reports (metrics-performance.md): hint kind "metrics".
        hint = self.c.hint("metrics", "changed", name.removeprefix("metrics-"))

        self.c.call(lambda: self.c.client.set(key, raw))
        self.c.notify(hint)

    def get_document(self, name: str) -> dict[str, Any] | None:
        self.check_document(name)
        key = self.c.key("doc", name)
        raw = self.c.call(lambda: self.c.client.get(key))
        if raw is None:
            return None
        data: dict[str, Any] = self.c.decode(key, raw, dict)
        return data

    def list_documents(self, *, errors: list[CorruptData] | None = None) -> list[str]:
        prefix = self.c.key("doc", "")
        pattern = self.c.glob(prefix) + "*"
        keys = self.c.call(lambda: list(self.c.client.scan_iter(pattern, 1000)))
        out: list[str] = []
        for key in sorted(keys):
            name = key[len(prefix) :]
            if self.is_document_name(name):
                out.append(name)
            elif errors is not None:
                errors.append(CorruptData(key, 1, "document key name is not valid"))
        return out

    # -- file reservations ------------------------------------------------------------------
    def get_reservations(self) -> list[Reservation]:
        table = self._get(self.c.key("reservations"), reservations_from_json)
        return [] if table is None else table

    def update_reservations(self, fn: ReservationFn) -> list[Reservation]:
        """A Lua compare-and-set of the one key, as :meth:`update_agent` (``fn`` runs again
        after a lost race); an empty table deletes the key."""
        key = self.c.key("reservations")
        op_key = self.c.key("op", self.c.token())
        script = self.c.script("update_reservations", _UPDATE_RESERVATIONS)

        def decode(raw: str | None) -> list[Reservation]:
            return [] if not raw else self._decode(key, raw, reservations_from_json)

        def plan(raw: str | None) -> tuple[list[str] | None, list[Any], list[Reservation]]:
            got = fn(decode(raw))
            if got is None:  # "no change": the table as stored
                return None, [], decode(raw)
            new = self.check_reservations(got)
            data = self.c.dumps({"reservations": [r.to_dict() for r in new]}) if new else ""
            if data:
                from ...core.models import ReservationTable

                table = ReservationTable(new)
                self._decoded.put(key, data.encode("utf-8", "surrogatepass"), table)
            hint = self.c.hint("reservation", "changed", "*")
            args: list[Any] = [data, self.c.op_ttl_ms, self.c.changes, hint]
            return [key, op_key], args, new

        def stored() -> list[Reservation]:
            return decode(self.c.client.get(key))

        result: list[Reservation] = self.c.call(
            lambda: self.c.watched([key], Cas(key, plan, script)),
            self.c.committed(op_key, stored),
        )
        return [r.copy() for r in result]

    # -- the workspace as a whole -----------------------------------------------------------
    def identity(self) -> tuple[str, ...]:
        """The server's run id, database and key base."""
        info: dict[str, Any] = self.c.call(lambda: self.c.client.info("server"))
        db = self.c.client.connection_pool.connection_kwargs.get("db", 0)
        return ("redis", str(info.get("run_id", "")), str(db), self.c.base)

    def prepare(self) -> None:
        self.ping()

    def record_names(self) -> list[str]:
        """Every record, named as on every backend (``task-{id}``, ``archive/task-{name}``,
        ``events-{channel}``, ``counter-{kind}``...: :func:`.checks.record_names`), never
        Redis keys."""
        from . import checks

        return checks.record_names(self.c)

    def clear(self) -> int:
        """Delete every key of this workspace (records and what is derived from them); return
        how many records there were. Other workspaces on the same server are untouched (their
        hash tag differs)."""
        from . import checks

        space = checks.scan(self.c)
        count = len(checks.record_names(self.c, space))
        keys = space.keys

        def drop() -> None:
            with self.c.client.pipeline(transaction=False) as pipe:
                for i in range(0, len(keys), 500):
                    pipe.unlink(*keys[i : i + 500])
                pipe.execute()

        if keys:
            self.c.call(drop)
        self.c.notify(self.c.hint("store", "removed", "*"))
        self.c.seen.clear()
        self._decoded.clear()
        return count

    def check_storage(self) -> list[Violation]:
        """The derived structures (task heads, state sets, the all-sets, the channel set)
        against the records, and the values no listing reads (documents, archived agents,
        counters): :mod:`.checks`."""
        from . import checks

        return checks.check(self.c)

    def rebuild_index(self) -> bool:
        """Re-derive the heads, state sets, all-sets and the channel set from the records, one
        record at a time and only where the record is still what was read (:mod:`.checks`)."""
        from . import checks

        checks.rebuild(self.c)
        return True

    # -- change feed ------------------------------------------------------------------------
    def watch(self, *, timeout: float | None = None) -> Generator[list[Change], None, None]:
        return self.feed.watch(timeout=timeout)

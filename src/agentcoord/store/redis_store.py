"""The Redis backend: the same records and semantics as the markdown files, in one Redis.

Key layout (``B`` = ``{prefix}:{{workspace}}``, one hash tag, so one cluster slot per workspace):

================================  ================================================================
``B:task:{id}``                   JSON of :meth:`Task.to_dict`
``B:tasks:all``                   SET of live task ids
``B:tasks:status:{status}``       SET of the ids in that status (the index ``claim``/``list`` use)
``B:tasks:heads:{status}``        HASH id -> JSON of its :class:`TaskHead` (:mod:`.redis_heads`)
``B:tasks:archive``               HASH archived id -> JSON (``id-YYYYmmddTHHMMSS`` if reused)
``B:agent:{name}``                JSON of :meth:`Agent.to_dict`; ``B:agents:all`` SET of names
``B:agents:archive``              HASH archived name -> JSON
``B:context:{project}-{domain}``  JSON of :meth:`ContextDoc.to_dict`; ``B:contexts`` SET
``B:doc:{name}``                  the text of a rendered document (``metrics-performance``)
``B:counters``                    HASH kind -> last number handed out by :meth:`next_id`
``B:events:{channel}:...``        streams, counter and cursors (:mod:`.redis_events`)
``B:op:{token}``                  short-lived marker of a committed write (:mod:`.redis_conn`)
``B:changes``                     the pub/sub channel of change hints (:mod:`.redis_watch`)
================================  ================================================================

Atomicity per operation: task and agent updates read the record, apply ``fn`` and write with a
Lua compare-and-set (written only if the record is still the one read, else ``fn`` runs again on
the new value) that also moves the id between index sets, writes the head and publishes the hint;
archiving and ``put_context`` are ``WATCH`` / ``MULTI`` / ``EXEC`` loops; ``create_task``,
``append_events``, ``rotate_events`` and ``advance_cursor`` are Lua scripts; ``next_id`` is
``HINCRBY``. All keys one operation touches share the workspace's hash tag.

Workspace-wide views for ``coord migrate`` (archive entries, counters, cursors, documents, all
keys, dropping a workspace) live in :mod:`.redis_records` and :mod:`.redis_events`.

The workspace name comes from ``workspace=`` or the URL's ``?workspace=NAME`` (default
``default``); ``redis`` is imported only when a store is opened (it costs ~200 ms).
"""

from __future__ import annotations

import time

from ..errors import AlreadyExists, Conflict, CorruptData, InvalidInput, NotFound
from ..models import Agent, ContextDoc, Task
from ..names import check_name
from .base import Store
from .redis_cas import BUSY, COMPARE, Cas, RedisCas
from .redis_conn import (
    _NOT_DONE,
    CHANGES,
    DEFAULT_WORKSPACE,
    check_key_part,
    mask_url,
    open_client,
    split_workspace,
)
from .redis_events import RedisEvents
from .redis_heads import RedisHeads, head_json
from .redis_records import RedisRecords
from .redis_watch import RedisWatch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, TypeVar

    import redis

    from ..models import TaskHead
    from .base import AgentFn, TaskFn
    from .redis_conn import Pipeline, Writes

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
redis.call('PUBLISH', ARGV[3], ARGV[4])
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
redis.call('PUBLISH', ARGV[7], ARGV[8])
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
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
"""
)


class RedisStore(RedisCas, RedisRecords, RedisHeads, RedisEvents, RedisWatch, Store):
    """Records as JSON values in Redis, indexed by sets, events on streams (see module doc)."""

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
        bare_url, url_workspace = split_workspace(url)
        self.url = url
        self.location = mask_url(url)
        self.prefix = check_key_part(prefix, "prefix")
        self.workspace = check_key_part(
            workspace or url_workspace or DEFAULT_WORKSPACE, "workspace"
        )
        self.clock = clock
        self.retry_seconds = retry_seconds
        self.lock_timeout = lock_timeout
        self.socket_timeout = socket_timeout
        # Long enough to outlive every retry of the write it marks.
        self.op_ttl_ms = int((retry_seconds + socket_timeout) * 1000) + 10_000
        self._base = f"{self.prefix}:{{{self.workspace}}}"
        self._changes = self._key(CHANGES)
        self._scripts = {}
        self._seen = {}
        self._pubsubs = []
        self._own_client = client is None
        self._client = (
            client
            if client is not None
            else open_client(
                bare_url, socket_timeout=socket_timeout, connect_timeout=connect_timeout
            )
        )

    def ping(self) -> None:
        """Raise :class:`BackendUnavailable` unless the server answers (for ``coord init``)."""
        self._call(self._client.ping)

    def close(self) -> None:
        self._close_watches()
        if self._own_client:
            self._client.close()

    # -- tasks ------------------------------------------------------------------------------
    def get_task(self, task_id: str) -> Task:
        key = self._key("task", task_id)
        raw = self._get_raw(key)
        if raw is None:
            raise NotFound(f"no task {task_id!r} in {self.location}", task=task_id)
        task = self._decode(key, raw, Task.from_dict)
        self._remember(key, raw)  # the likely starting point of this process's next update
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
                members: set[str] = self._client.smembers(self._key("tasks", "all"))
                return members
            if not wanted:
                return set()
            union: set[str] = self._client.sunion(
                [self._key("tasks", "status", s) for s in sorted(wanted)]
            )
            return union

        tasks = self._read_many("task", self._call(ids), Task.from_dict, errors)
        if wanted is not None:  # a task may have moved on between the index read and the MGET
            tasks = [t for t in tasks if t.status in wanted]
        return tasks

    def list_task_heads(
        self,
        *,
        statuses: Iterable[str] | None = None,
        errors: list[CorruptData] | None = None,
    ) -> list[TaskHead]:
        return self._read_heads(None if statuses is None else frozenset(statuses), errors)

    def create_task(self, task: Task) -> None:
        check_name(task.id, "task id")
        key = self._key("task", task.id)
        data = self._dumps(task.to_dict())
        keys = [
            key,
            self._key("tasks", "all"),
            self._key("tasks", "status", task.status),
            self._heads_key(task.status),
        ]
        args = [data, task.id, self._changes, self._hint("task", "created", task.id)]
        args.append(head_json(task))
        script = self._script("create", _CREATE)

        def committed() -> Any:  # a retry that finds exactly our record: the first try won
            return None if self._client.get(key) == data else _NOT_DONE

        existing = self._call(lambda: script(keys=keys, args=args), committed)
        if existing is not None:
            self._decode(key, existing, Task.from_dict)  # a corrupt record is reported as such
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
        key = self._key("task", task_id)
        op_key = self._key("op", self._token())
        script = self._script("update_task", _UPDATE_TASK)
        hint = self._hint("task", "changed", task_id)

        def plan(raw: str | None) -> tuple[list[str] | None, list[Any], Task]:
            if raw is None:
                raise NotFound(f"no task {task_id!r} in {self.location}", task=task_id)
            current = self._decode(key, raw, Task.from_dict)
            old_status = current.status
            new = fn(current)
            if new is None:
                return None, [], current
            if new.id != task_id:
                raise InvalidInput(f"an update of task {task_id!r} returned task {new.id!r}")
            keys = [
                key,
                self._key("tasks", "status", old_status),
                self._key("tasks", "status", new.status),
                self._heads_key(old_status),
                self._heads_key(new.status),
                op_key,
            ]
            args: list[Any] = [self._dumps(new.to_dict()), task_id, head_json(new)]
            return keys, [*args, self.op_ttl_ms, self._changes, hint], new

        def stored() -> Task:
            raw = self._client.get(key)
            if raw is None:  # committed, then archived by someone else meanwhile
                raise NotFound(f"no task {task_id!r} in {self.location}", task=task_id)
            return self._decode(key, raw, Task.from_dict)

        return self._call(
            lambda: self._watched([key], Cas(key, plan, script, once=once)),
            self._committed(op_key, stored),
        )

    def archive_task(self, task_id: str, check: Callable[[Task], bool]) -> bool:
        return self._archive("task", task_id, Task.from_dict, check)

    def list_archived_tasks(self, *, errors: list[CorruptData] | None = None) -> list[Task]:
        """Every archived task, in archive-name order like the files."""
        return [t for _, t in self._list_archived("task", Task.from_dict, errors)]

    def next_id(self, kind: str) -> int:
        # A retry after a lost reply skips a number; numbers are never handed out twice.
        value = self._call(lambda: self._client.hincrby(self._key("counters"), kind, 1))
        return int(value)

    # -- agents -----------------------------------------------------------------------------
    def get_agent(self, name: str) -> Agent:
        key = self._key("agent", name)
        raw = self._get_raw(key)
        if raw is None:
            raise NotFound(f"no agent {name!r} in {self.location}", agent=name)
        agent = self._decode(key, raw, Agent.from_dict)
        self._remember(key, raw)
        return agent

    def list_agents(self, *, errors: list[CorruptData] | None = None) -> list[Agent]:
        names = self._call(lambda: self._client.smembers(self._key("agents", "all")))
        return self._read_many("agent", names, Agent.from_dict, errors)

    def update_agent(self, name: str, fn: AgentFn, *, durable: bool = True) -> Agent | None:
        key = self._key("agent", name)
        op_key = self._key("op", self._token())
        script = self._script("update_agent", _UPDATE_AGENT)

        def plan(raw: str | None) -> tuple[list[str] | None, list[Any], Agent | None]:
            current = None if raw is None else self._decode(key, raw, Agent.from_dict)
            new = fn(current)
            if new is None:
                return None, [], current
            if new.name != name:
                raise InvalidInput(f"an update of agent {name!r} returned agent {new.name!r}")
            action = "created" if current is None else "changed"
            keys = [key, self._key("agents", "all"), op_key]
            args: list[Any] = [self._dumps(new.to_dict()), name, self.op_ttl_ms, self._changes]
            return keys, [*args, self._hint("agent", action, name)], new

        def stored() -> Agent | None:
            raw = self._client.get(key)
            return None if raw is None else self._decode(key, raw, Agent.from_dict)

        # Every write is as durable as the server's persistence makes it (docs/redis.md), so
        # ``durable`` changes nothing here.
        result: Agent | None = self._call(
            lambda: self._watched([key], Cas(key, plan, script)), self._committed(op_key, stored)
        )
        return result

    def archive_agent(self, name: str, check: Callable[[Agent], bool]) -> bool:
        return self._archive("agent", name, Agent.from_dict, check)

    def list_archived_agents(self, *, errors: list[CorruptData] | None = None) -> list[Agent]:
        """Every archived agent, in archive-name order like the files."""
        return [a for _, a in self._list_archived("agent", Agent.from_dict, errors)]

    # -- context ----------------------------------------------------------------------------
    def put_context(self, doc: ContextDoc) -> None:
        name = f"{doc.project}-{doc.domain}"
        key = self._key("context", name)
        data = self._dumps(doc.to_dict())

        def step(pipe: Pipeline) -> tuple[Writes, None]:
            raw = pipe.get(key)
            current = None if raw is None else self._decode(key, raw, ContextDoc.from_dict)
            # Same rule as the files: "a-b"/"c" and "a"/"b-c" would share context-a-b-c.md.
            if current is not None and (current.project, current.domain) != (
                doc.project,
                doc.domain,
            ):
                raise Conflict(
                    f"context-{name}.md already holds project {current.project!r}, domain "
                    f"{current.domain!r}; choose other names"
                )
            action = "created" if current is None else "changed"

            def writes(p: Pipeline) -> None:
                p.set(key, data)
                p.sadd(self._key("contexts"), name)
                p.publish(self._changes, self._hint("context", action, name))

            return writes, None

        # A plain overwrite: running it again after a lost reply changes nothing.
        self._call(lambda: self._watched([key], step))

    def get_context(self, project: str, domain: str) -> ContextDoc:
        key = self._key("context", f"{project}-{domain}")
        raw = self._get_raw(key)
        doc = None if raw is None else self._decode(key, raw, ContextDoc.from_dict)
        if doc is None or (doc.project, doc.domain) != (project, domain):
            raise NotFound(f"no context for project {project!r}, domain {domain!r}")
        return doc

    def list_contexts(self, *, errors: list[CorruptData] | None = None) -> list[ContextDoc]:
        names = self._call(lambda: self._client.smembers(self._key("contexts")))
        return self._read_many("context", names, ContextDoc.from_dict, errors)

    # -- documents --------------------------------------------------------------------------
    def put_document(self, name: str, text: str) -> None:
        key = self._key("doc", name)
        # Documents are rendered reports (metrics-performance.md): hint kind "metrics".
        hint = self._hint("metrics", "changed", name.removeprefix("metrics-"))

        def write() -> None:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.set(key, text)
                pipe.publish(self._changes, hint)
                pipe.execute()

        self._call(write)

    def get_document(self, name: str) -> str | None:
        raw = self._get_raw(self._key("doc", name))
        return None if raw is None else str(raw)

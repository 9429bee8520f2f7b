"""The task head index of the Redis backend: ``claim`` and ``list --status`` without parsing
every task (SPEC section 8: 10,000 tasks, each within 150 ms).

Every live task has a *head* (JSON of :meth:`TaskHead.to_list`, ~60 bytes) in the hash of its
state, ``B:tasks:heads:{status}`` (id -> head), next to the state set ``B:tasks:status:{status}``.
The head is written in the same ``MULTI`` or script as the task itself (create, update, archive),
so it is never older or newer than the task.

Reading: one script takes ``HVALS`` of the wanted states' hashes and returns them joined into a
single string. With redis-py's pure-Python reply parser 10,000 separate replies cost ~10 us each;
one string and one ``json.loads`` cost a fraction of that. The script also compares each hash's
size with its state set: a task stored before this index existed has no head yet, and is read
whole once (and its head written, unless the task changed meanwhile).
"""

from __future__ import annotations

import json

from ...core.models import TASK_STATES, Task, TaskHead
from ...errors import CorruptData

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .connection import Connection

# KEYS: pairs of (heads hash, state set) per state.  Returns the heads joined with ",", and the
# positions (1-based pair numbers) of the states whose hash and set differ in size.
_HEADS = """
local parts, odd = {}, {}
for i = 1, #KEYS, 2 do
  local heads = redis.call('HVALS', KEYS[i])
  if #heads > 0 then parts[#parts + 1] = table.concat(heads, ',') end
  if #heads ~= redis.call('SCARD', KEYS[i + 1]) then odd[#odd + 1] = (i + 1) / 2 end
end
return {table.concat(parts, ','), odd}
"""

# KEYS: task, heads hash of its state.  ARGV: id, the task JSON the head was made from, head.
# Backfills a missing head only if the task is still exactly what the head was made from.
_BACKFILL = """
if redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
return 1
"""

#: The slot order :meth:`TaskHead.to_list` writes; :func:`_head` assigns in this order.
_LAYOUT = (
    "agent",
    "created_at",
    "depends_on",
    "epoch",
    "id",
    "labels",
    "lease_expires",
    "lease_length",
    "parent",
    "priority",
    "project",
    "requires",
    "status",
    "updated_at",
)
_FAST = TaskHead.__slots__ == _LAYOUT


def head_json(task: Task) -> str:
    """The compact head of ``task`` as stored in ``B:tasks:heads:{status}``."""
    return json.dumps(TaskHead.of(task).to_list(), ensure_ascii=False, separators=(",", ":"))


def _head(row: Any, new: Any = object.__new__) -> TaskHead:
    """A TaskHead from a stored row without the keyword plumbing of ``from_list``: a claim
    builds 10,000 of them, and this is ~4x faster. Raises TypeError/ValueError on a bad row."""
    if not _FAST or type(row) is not list:
        return TaskHead.from_list(row)
    h: TaskHead = new(TaskHead)
    (
        h.agent,
        h.created_at,
        h.depends_on,
        h.epoch,
        h.id,
        h.labels,
        h.lease_expires,
        h.lease_length,
        h.parent,
        h.priority,
        h.project,
        h.requires,
        h.status,
        h.updated_at,
    ) = row
    return h


class HeadIndex:
    """The task head index of one workspace (:class:`~.store.RedisStore`), over its
    :class:`~.connection.Connection`."""

    def __init__(self, conn: Connection) -> None:
        self.c = conn

    def key(self, status: str) -> str:
        """The heads hash of ``status``."""
        return self.c.key("tasks", "heads", status)

    def read(
        self, wanted: frozenset[str] | None, errors: list[CorruptData] | None
    ) -> list[TaskHead]:
        """Heads of the tasks in ``wanted`` states (all if None), in no particular order."""
        states = sorted(TASK_STATES if wanted is None else wanted)
        if not states:
            return []
        keys: list[str] = []
        for status in states:
            keys += [self.key(status), self.c.key("tasks", "status", status)]
        script = self.c.script("heads", _HEADS)
        where = self.c.key("tasks", "*")
        joined, odd = self.c.read_index(lambda: script(keys=keys), where, errors, ("", []))
        try:
            rows: list[Any] = json.loads("[" + joined + "]") if joined else []
            heads = [_head(row) for row in rows]
        except (ValueError, TypeError):  # a damaged head: rebuild the index of these states
            heads, odd = [], list(range(1, len(states) + 1))
        if odd:
            heads = self._repair([states[i - 1] for i in odd], heads, errors)
        if wanted is not None:  # defensive: a head stored under the wrong state
            heads = [h for h in heads if h.status in wanted]
        return heads

    def _repair(
        self, states: list[str], heads: list[TaskHead], errors: list[CorruptData] | None
    ) -> list[TaskHead]:
        """For ``states`` whose heads hash and state set disagree: drop heads of ids not in the
        set, and read (and backfill) the tasks in the set that have no head."""
        sets = [self.c.key("tasks", "status", s) for s in states]
        where = self.c.key("tasks", "*")
        members: set[str] = self.c.read_index(
            lambda: self.c.client.sunion(sets), where, errors, set()
        )
        repaired = set(states)
        kept = [h for h in heads if h.status not in repaired or h.id in members]
        have = {h.id for h in kept if h.status in repaired}
        missing = sorted(members - have)
        if not missing:
            return kept
        task_keys = [self.c.key("task", n) for n in missing]
        raws: list[Any] = self.c.call(lambda: self.c.client.mget(task_keys))
        script = self.c.script("backfill_head", _BACKFILL)
        for name, key, raw in zip(missing, task_keys, raws, strict=True):
            if raw is None:  # archived meanwhile
                continue
            try:
                task = self.c.decode(key, raw, Task.from_dict)
            except CorruptData as exc:
                if errors is not None:
                    errors.append(exc)
                continue
            args = [name, raw, head_json(task)]
            self._backfill(script, [key, self.key(task.status)], args)
            if task.status in repaired:
                kept.append(TaskHead.of(task))
        return kept

    def _backfill(self, script: Any, keys: list[str], args: list[str]) -> None:
        try:
            self.c.call(lambda: script(keys=keys, args=args))
        except CorruptData:  # the heads hash holds another type: best effort, doctor --fix
            pass

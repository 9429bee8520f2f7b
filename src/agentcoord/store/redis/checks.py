"""What only a Redis key space can get wrong (``coord doctor``'s storage half, reached through
:meth:`RedisStore.check_storage <agentcoord.store.redis.store.RedisStore.check_storage>`), its
repair (:meth:`RedisStore.rebuild_index <agentcoord.store.redis.store.RedisStore.rebuild_index>`)
and the canonical names of a workspace's records (:func:`record_names`).

The records (``task:{id}``, ``agent:{name}``, ``context:{name}``, ``doc:{name}``, ``counters``,
the archives, and per channel ``seq``, the ``live`` and ``archive`` streams and ``cursors``) are
the truth. The *derived* structures are a function of them, written in the same script or
transaction as the record:

- ``tasks:all`` holds exactly the ids of the task keys; ``tasks:status:{S}`` exactly the ids of
  the readable tasks whose status is ``S``; ``tasks:heads:{S}`` maps exactly those ids to the
  head computed from the record (:func:`.heads.head_json`, every field). An unreadable task is
  in ``tasks:all`` (listings report it) and in no state (as the markdown index leaves out a
  corrupt file);
- ``agents:all`` and ``contexts`` hold exactly the names of the agent and context keys;
- ``channels`` holds exactly the channels with a sequence counter or a stream.

:func:`check` reports (read-only):

- ``index`` (repairable): a derived structure that disagrees with the records: a task id in the
  wrong state set or heads hash, missing from its own, or from ``tasks:all``; a head whose
  fields differ from the record's; a *phantom* (an id or name listed for a record that does not
  exist); a derived key holding another Redis type;
- ``corrupt``: what no generic check of the doctor reads: documents, archived agents and id
  counters that do not decode (counters: whole numbers >= 0), task, agent and context records
  missing from their set (so invisible to listings), sequence counters of channels nobody lists,
  and record keys holding another Redis type.

:func:`rebuild` re-derives every structure from the records: per record, one script that writes
that record's entries *if the record is still the value the check read* (a concurrent writer
keeps its own entries right), so ``doctor --fix`` is safe on a live board. A phantom is dropped
only if its record still does not exist.
"""

from __future__ import annotations

import json

from ...core.models import TASK_STATES, Agent, ContextDoc, Task, TaskHead
from ...errors import CorruptData
from ..base import Violation
from .heads import head_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from .connection import Connection

#: Keys that are one per workspace, and the Redis type each must have.
RECORD_SINGLES = {
    "counters": "hash",
    "tasks:archive": "hash",
    "agents:archive": "hash",
    "reservations": "string",
}
DERIVED_SINGLES = {"tasks:all": "set", "agents:all": "set", "contexts": "set", "channels": "set"}
#: Per-channel keys (``events:{channel}:{part}``) and their types.
EVENT_PARTS = {"seq": "string", "live": "stream", "archive": "stream", "cursors": "hash"}
#: Record kinds stored as one JSON string per key (``{kind}:{name}``).
STRING_RECORDS = ("task", "agent", "context", "doc")

_CHUNK = 500

# KEYS: task, all-tasks set, then (state set, heads hash) per state.  ARGV: id, the task JSON the
# entries were derived from ('' = no task), the pair number of its state (0 = none), its head.
# Writes the entries only if the task is still that JSON; returns 1 if it did.
_FIX_TASK = """
local cur = redis.call('GET', KEYS[1])
if (cur or '') ~= ARGV[2] then return 0 end
if cur then redis.call('SADD', KEYS[2], ARGV[1]) else redis.call('SREM', KEYS[2], ARGV[1]) end
local target = tonumber(ARGV[3])
for i = 3, #KEYS, 2 do
  if (i - 1) / 2 == target then
    redis.call('SADD', KEYS[i], ARGV[1])
    redis.call('HSET', KEYS[i + 1], ARGV[1], ARGV[4])
  else
    redis.call('SREM', KEYS[i], ARGV[1])
    redis.call('HDEL', KEYS[i + 1], ARGV[1])
  end
end
return 1
"""

# KEYS: a set, then the keys whose existence puts ARGV[1] in it.  Returns 1 if it is a member.
_FIX_MEMBER = """
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('SADD', KEYS[1], ARGV[1])
    return 1
  end
end
redis.call('SREM', KEYS[1], ARGV[1])
return 0
"""

# KEYS: a derived key.  ARGV: the type it must have.  Deletes it if it holds another type.
_DROP_WRONG_TYPE = """
if redis.call('TYPE', KEYS[1]).ok ~= ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


def _text(value: Any) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


# -- the key space ---------------------------------------------------------------------------
class KeySpace:
    """Every key of a workspace (one ``SCAN``), sorted by role, with its Redis type."""

    def __init__(self) -> None:
        #: kind ("task", "agent", "context", "doc") -> name -> type.
        self.records: dict[str, dict[str, str]] = {kind: {} for kind in STRING_RECORDS}
        #: "counters", "tasks:archive", "agents:archive", "tasks:all"... -> type.
        self.singles: dict[str, str] = {}
        #: State -> type of ``tasks:status:{S}`` / ``tasks:heads:{S}``.
        self.status: dict[str, str] = {}
        self.heads: dict[str, str] = {}
        #: Channel -> part ("seq", "live", "archive", "cursors") -> type.
        self.events: dict[str, dict[str, str]] = {}
        #: Keys of the workspace that none of its structures explains (their suffixes).
        self.other: list[str] = []
        #: Every key (full names), except the short-lived markers.
        self.keys: list[str] = []

    def add(self, suffix: str, key: str, kind: str) -> None:
        """File ``key`` (``suffix`` after the workspace's base) of Redis type ``kind``."""
        head, _, rest = suffix.partition(":")
        if head == "op" or (head in ("task", "agent") and rest.endswith(":turn")):
            return  # short-lived markers (connection.py), never records
        self.keys.append(key)
        if head in STRING_RECORDS and rest and ":" not in rest:
            self.records[head][rest] = kind
        elif suffix in RECORD_SINGLES or suffix in DERIVED_SINGLES:
            self.singles[suffix] = kind
        elif head == "tasks" and rest.startswith(("status:", "heads:")):
            part, _, status = rest.partition(":")
            (self.status if part == "status" else self.heads)[status] = kind
        elif head == "events" and rest.rpartition(":")[2] in EVENT_PARTS and ":" in rest:
            channel, _, part = rest.rpartition(":")
            self.events.setdefault(channel, {})[part] = kind
        else:
            self.other.append(suffix)

    def statuses(self) -> list[str]:
        """The seven states and every other one that has a key."""
        return sorted(set(TASK_STATES) | set(self.status) | set(self.heads))

    def channel_has_data(self, channel: str) -> bool:
        return any(p in self.events.get(channel, {}) for p in ("seq", "live", "archive"))


def scan(c: Connection) -> KeySpace:
    """One ``SCAN`` of the workspace and the type of every key (not a snapshot)."""
    base = c.key("")

    def read() -> tuple[list[str], list[Any]]:
        found = sorted({_text(k) for k in c.client.scan_iter(match=c.glob(base) + "*", count=1000)})
        with c.client.pipeline(transaction=False) as pipe:
            for key in found:
                pipe.type(key)
            types: list[Any] = pipe.execute()
        return found, types

    space = KeySpace()
    for key, kind in zip(*c.call(read), strict=True):
        if _text(kind) != "none":  # deleted between the scan and the TYPE
            space.add(key[len(base) :], key, _text(kind))
    return space


def record_names(c: Connection, space: KeySpace | None = None) -> list[str]:
    """The names of every record, as :meth:`MemoryStore.record_names` spells them
    (``task-{id}``, ``agent-{name}``, ``archive/task-{name}``, ``events-{channel}``,
    ``cursors-{channel}``, ``context-{name}``, a document's name, ``counter-{kind}``), plus the
    suffix of any key the layout does not explain (data, not emptiness)."""
    space = space if space is not None else scan(c)
    hashes = {
        "counters": "counter-",
        "tasks:archive": "archive/task-",
        "agents:archive": "archive/agent-",
    }
    present = [s for s in hashes if space.singles.get(s) == "hash"]

    def read() -> list[Any]:
        with c.client.pipeline(transaction=False) as pipe:
            for single in present:
                pipe.hkeys(c.key(single))
            fields: list[Any] = pipe.execute(raise_on_error=False)
        return fields

    out = [f"task-{n}" for n in space.records["task"]]
    out += [f"agent-{n}" for n in space.records["agent"]]
    out += [f"context-{n}" for n in space.records["context"]]
    out += list(space.records["doc"])
    for single, fields in zip(present, c.call(read), strict=True):
        if isinstance(fields, Exception):
            out.append(single)
        else:
            out += [hashes[single] + _text(f) for f in fields]
    out += [
        s
        for s, kind in space.singles.items()
        if (s in RECORD_SINGLES and kind != RECORD_SINGLES[s]) or s == "reservations"
    ]
    for channel, parts in space.events.items():
        if space.channel_has_data(channel):
            out.append(f"events-{channel}")
        if "cursors" in parts:
            out.append(f"cursors-{channel}")
    out += space.other
    return sorted(out)


# -- one consistent view of the records and what is derived from them ------------------------
class TaskView:
    """A task id as one atomic read saw it: its record and where the derived structures list
    it."""

    __slots__ = ("heads", "id", "in_all", "raw", "sets", "wrong_type")

    def __init__(self, task_id: str) -> None:
        self.id = task_id
        self.raw: str | None = None
        self.wrong_type = False
        self.in_all = False
        self.sets: set[str] = set()
        self.heads: dict[str, str] = {}


class Snapshot:
    """What :func:`read_snapshot` read in one ``MULTI``."""

    def __init__(self) -> None:
        self.tasks: dict[str, TaskView] = {}
        #: Set key suffix ("agents:all", "contexts", "channels") -> members.
        self.sets: dict[str, set[str]] = {s: set() for s in DERIVED_SINGLES}
        #: kind -> name -> raw JSON of the string records read (agent, context, doc).
        self.raw: dict[str, dict[str, str]] = {k: {} for k in STRING_RECORDS}
        self.counters: dict[str, str] = {}
        self.agent_archive: dict[str, str] = {}
        self.seqs: dict[str, str] = {}
        self.reservations: str | None = None


def _view(snap: Snapshot, task_id: str) -> TaskView:
    view = snap.tasks.get(task_id)
    if view is None:
        view = snap.tasks[task_id] = TaskView(task_id)
    return view


def read_snapshot(c: Connection, space: KeySpace) -> Snapshot:
    """Every derived structure and the records of ``space`` in one ``MULTI`` (one instant).

    Ids listed by a derived structure whose record key the scan did not see (created since,
    or phantoms) are re-read one by one by :func:`confirm_tasks`."""
    statuses = space.statuses()
    scanned = {
        kind: sorted(n for n, t in names.items() if t == "string")
        for kind, names in space.records.items()
    }
    seq_channels = sorted(ch for ch, p in space.events.items() if p.get("seq") == "string")

    def read() -> Snapshot:
        sinks: list[Callable[[Any], None]] = []
        snap = Snapshot()
        with c.client.pipeline(transaction=True) as pipe:

            def add(sink: Callable[[Any], None], command: str, *args: Any) -> None:
                getattr(pipe, command)(*args)
                sinks.append(sink)

            def fill_all(members: Any) -> None:
                for m in members:
                    _view(snap, _text(m)).in_all = True

            add(fill_all, "smembers", c.key("tasks:all"))
            for status in statuses:

                def fill_set(members: Any, status: str = status) -> None:
                    for m in members:
                        _view(snap, _text(m)).sets.add(status)

                def fill_heads(entries: Any, status: str = status) -> None:
                    for m, head in entries.items():
                        _view(snap, _text(m)).heads[status] = _text(head)

                add(fill_set, "smembers", c.key("tasks", "status", status))
                add(fill_heads, "hgetall", c.key("tasks", "heads", status))
            for single in ("agents:all", "contexts", "channels"):

                def fill(members: Any, single: str = single) -> None:
                    snap.sets[single] = {_text(m) for m in members}

                add(fill, "smembers", c.key(single))

            def fill_counters(entries: Any) -> None:
                snap.counters = {_text(k): _text(v) for k, v in entries.items()}

            def fill_archive(entries: Any) -> None:
                snap.agent_archive = {_text(k): _text(v) for k, v in entries.items()}

            def fill_reservations(raw: Any) -> None:
                snap.reservations = None if raw is None else _text(raw)

            add(fill_counters, "hgetall", c.key("counters"))
            add(fill_reservations, "get", c.key("reservations"))
            add(fill_archive, "hgetall", c.key("agents:archive"))
            for kind, names in scanned.items():
                for i in range(0, len(names), _CHUNK):
                    chunk = names[i : i + _CHUNK]

                    def fill_raw(values: Any, kind: str = kind, chunk: list[str] = chunk) -> None:
                        for name, raw in zip(chunk, values, strict=True):
                            if raw is None:
                                continue
                            if kind == "task":
                                _view(snap, name).raw = _text(raw)
                            else:
                                snap.raw[kind][name] = _text(raw)

                    add(fill_raw, "mget", [c.key(kind, n) for n in chunk])
            for i in range(0, len(seq_channels), _CHUNK):
                chunk = seq_channels[i : i + _CHUNK]

                def fill_seqs(values: Any, chunk: list[str] = chunk) -> None:
                    for channel, raw in zip(chunk, values, strict=True):
                        if raw is not None:
                            snap.seqs[channel] = _text(raw)

                add(fill_seqs, "mget", [c.key("events", ch, "seq") for ch in chunk])
            results: list[Any] = pipe.execute(raise_on_error=False)
        for sink, result in zip(sinks, results, strict=True):
            if not isinstance(result, Exception):  # a key whose type changed since the scan
                sink(result)
        return snap

    snap = c.call(read)
    for name, kind in space.records["task"].items():
        if kind != "string":
            _view(snap, name).wrong_type = True
    unseen = [t for t in snap.tasks if t not in space.records["task"]]
    confirm_tasks(c, snap, unseen, statuses)
    return snap


def confirm_tasks(c: Connection, snap: Snapshot, ids: list[str], statuses: list[str]) -> None:
    """Re-read the ``ids`` (record and every structure that may list them) in one ``MULTI``."""
    if not ids:
        return

    def read() -> list[Any]:
        with c.client.pipeline(transaction=True) as pipe:
            for task_id in ids:
                pipe.get(c.key("task", task_id))
                pipe.sismember(c.key("tasks:all"), task_id)
                for status in statuses:
                    pipe.sismember(c.key("tasks", "status", status), task_id)
                    pipe.hget(c.key("tasks", "heads", status), task_id)
            results: list[Any] = pipe.execute(raise_on_error=False)
        return results

    results = iter(c.call(read))
    for task_id in ids:
        view = snap.tasks[task_id] = TaskView(task_id)
        raw = next(results)
        if isinstance(raw, Exception):
            view.wrong_type = True
        elif raw is not None:
            view.raw = _text(raw)
        view.in_all = next(results) == 1  # SISMEMBER: 0 or 1
        for status in statuses:
            member, head = next(results), next(results)
            if member == 1:
                view.sets.add(status)
            if isinstance(head, (str, bytes)):
                view.heads[status] = _text(head)


# -- verdicts ----------------------------------------------------------------------------------
class TaskVerdict:
    """What is wrong with one task's derived entries, and what they should be."""

    __slots__ = ("corrupt", "head", "problems", "status")

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.status: str | None = None  # the state it belongs to (None: none, or no task)
        self.head: str | None = None
        self.corrupt: CorruptData | None = None


def head_diff(stored: str, expected: str) -> list[str]:
    """The :class:`TaskHead` fields on which the ``stored`` head differs from ``expected``."""
    want: list[Any] = json.loads(expected)
    try:
        got = json.loads(stored)
    except ValueError:
        return ["every field (the head is not JSON)"]
    if not isinstance(got, list) or len(got) != len(want):
        return ["every field (the head is not a list of its fields)"]
    return [
        name
        for name, a, b in zip(TaskHead.__slots__, got, want, strict=True)
        if a != b or isinstance(a, bool) != isinstance(b, bool)
    ]


def judge_task(c: Connection, view: TaskView) -> TaskVerdict:
    verdict = TaskVerdict()
    problems = verdict.problems
    if view.wrong_type:
        return verdict  # reported as corrupt; its entries are left as they are
    if view.raw is None:
        where = ["the all-tasks set"] if view.in_all else []
        where += [f"state set {s}" for s in sorted(view.sets)]
        where += [f"heads of {s}" for s in sorted(view.heads)]
        if where:
            problems.append(f"does not exist but is listed in {', '.join(where)} (a phantom)")
        return verdict
    key = c.key("task", view.id)
    try:
        task = c.decode(key, view.raw, Task.from_dict)
    except CorruptData as exc:
        verdict.corrupt = exc
        task = None
    if task is not None:
        verdict.status, verdict.head = task.status, head_json(task)
    status = verdict.status
    if not view.in_all:
        problems.append("is missing from the all-tasks set")
    wrong = sorted(view.sets - {status} if status else view.sets)
    is_what = f"it is {status}" if status else "its record is unreadable"
    if wrong:
        problems.append(f"is in the wrong state set {', '.join(wrong)} ({is_what})")
    if status is not None and status not in view.sets:
        problems.append(f"is missing from state set {status}")
    wrong = sorted(set(view.heads) - ({status} if status else set()))
    if wrong:
        problems.append(f"has a head under {', '.join(wrong)} ({is_what})")
    if status is not None and verdict.head is not None:
        stored = view.heads.get(status)
        if stored is None:
            problems.append(f"has no head under {status}")
        else:
            diff = head_diff(stored, verdict.head)
            if diff:
                problems.append(f"has a head that disagrees with its record on {', '.join(diff)}")
    return verdict


def _counter_ok(raw: str) -> bool:
    return raw.isascii() and raw.isdigit()


class Audit:
    """Everything :func:`check` reports and :func:`rebuild` repairs, from one snapshot."""

    def __init__(self, c: Connection, space: KeySpace) -> None:
        self.c = c
        self.space = space
        self.snap = read_snapshot(c, space)
        self.violations: list[Violation] = []
        #: Derived keys holding another Redis type: suffix -> the type they must have.
        self.wrong_derived: dict[str, str] = {}
        #: (task view, verdict) of every task whose entries must be rewritten.
        self.task_fixes: list[tuple[TaskView, TaskVerdict]] = []
        #: (set suffix, member, keys whose existence makes it one) to re-derive.
        self.member_fixes: list[tuple[str, str, list[str]]] = []
        self._audit()

    def _index(self, key: str, message: str) -> None:
        self.violations.append(Violation("index", key, message, repairable=True))

    def _corrupt(self, exc: CorruptData) -> None:
        self.violations.append(Violation("corrupt", exc.path, exc.message, file=exc.path))

    def _audit(self) -> None:
        self._audit_types()
        self._audit_tasks()
        for kind, single, decode in (
            ("agent", "agents:all", Agent.from_dict),
            ("context", "contexts", ContextDoc.from_dict),
        ):
            self._audit_members(kind, single, decode)
        self._audit_channels()
        self._audit_values()

    def _audit_types(self) -> None:
        c, space = self.c, self.space
        derived = [(s, DERIVED_SINGLES[s], space.singles.get(s)) for s in DERIVED_SINGLES]
        derived += [(f"tasks:status:{s}", "set", t) for s, t in sorted(space.status.items())]
        derived += [(f"tasks:heads:{s}", "hash", t) for s, t in sorted(space.heads.items())]
        for suffix, want, kind in derived:
            if kind is not None and kind != want:
                self.wrong_derived[suffix] = want
                self._index(suffix, f"{c.key(suffix)} holds a {kind}, not a {want}")
        records = [(c.key(s), RECORD_SINGLES[s], space.singles.get(s)) for s in RECORD_SINGLES]
        for kind, names in space.records.items():
            records += [(c.key(kind, n), "string", t) for n, t in sorted(names.items())]
        for channel, parts in sorted(space.events.items()):
            records += [
                (c.key("events", channel, p), EVENT_PARTS[p], t) for p, t in sorted(parts.items())
            ]
        for key, want, kind in records:
            if kind is not None and kind != want:
                self._corrupt(CorruptData(key, 1, f"holds a Redis {kind}, not a {want}"))

    def _audit_tasks(self) -> None:
        for task_id in sorted(self.snap.tasks):
            view = self.snap.tasks[task_id]
            verdict = judge_task(self.c, view)
            if verdict.corrupt is not None and not view.in_all:
                self._corrupt(verdict.corrupt)  # invisible to listings until the index is fixed
            if verdict.problems:
                self._index(task_id, f"task {task_id} " + "; ".join(verdict.problems))
                self.task_fixes.append((view, verdict))

    def _audit_members(
        self, kind: str, single: str, decode: Callable[[dict[str, Any]], Any]
    ) -> None:
        c = self.c
        names = self.space.records[kind]
        members = self.snap.sets[single]
        # (a record the snapshot no longer found was archived since the scan: not missing)
        missing = [
            n
            for n in sorted(set(names) - members)
            if n in self.snap.raw[kind] or names[n] != "string"
        ]
        phantoms = sorted(members - set(names))
        phantoms = [n for n in phantoms if self._phantom(single, n, [c.key(kind, n)])]
        for name in missing:
            self._index(name, f"{kind} {name} is missing from the set {c.key(single)}")
            raw = self.snap.raw[kind].get(name)
            if raw is not None:  # listings skip it until the set is fixed: report it here
                try:
                    c.decode(c.key(kind, name), raw, decode)
                except CorruptData as exc:
                    self._corrupt(exc)
        for name in phantoms:
            self._index(name, f"{c.key(single)} lists {kind} {name}, which does not exist")
        for name in [*missing, *phantoms]:
            self.member_fixes.append((single, name, [c.key(kind, name)]))

    def _audit_channels(self) -> None:
        c, space = self.c, self.space
        members = self.snap.sets["channels"]
        with_data = {ch for ch in space.events if space.channel_has_data(ch)}

        def keys(ch: str) -> list[str]:
            return [c.key("events", ch, p) for p in ("seq", "live", "archive")]

        missing = sorted(with_data - members)
        phantoms = [
            ch for ch in sorted(members - with_data) if self._phantom("channels", ch, keys(ch))
        ]
        for ch in missing:
            self._index(
                ch, f"channel {ch} has events or a last seq but is not in {c.key('channels')}"
            )
        for ch in phantoms:
            self._index(ch, f"{c.key('channels')} lists channel {ch}, which has no events")
        self.member_fixes += [("channels", ch, keys(ch)) for ch in [*missing, *phantoms]]
        # Sequence counters of channels that no listing reaches (the doctor reads the others).
        for ch, raw in sorted(self.snap.seqs.items()):
            listed = ch in members or "cursors" in space.events.get(ch, {})
            if not listed and not _counter_ok(raw):
                key = c.key("events", ch, "seq")
                self._corrupt(CorruptData(key, 1, f"not a whole number >= 0: {raw!r}"))

    def _audit_values(self) -> None:
        c = self.c
        key = c.key("counters")
        for kind, raw in sorted(self.snap.counters.items()):
            if not _counter_ok(raw):
                self._corrupt(CorruptData(f"{key}#{kind}", 1, f"not a whole number >= 0: {raw!r}"))
        for name, raw in sorted(self.snap.raw["doc"].items()):
            try:
                c.decode(c.key("doc", name), raw, dict)
            except CorruptData as exc:
                self._corrupt(exc)
        if self.snap.reservations is not None:
            from .store import reservations_from_json

            try:
                c.decode(c.key("reservations"), self.snap.reservations, reservations_from_json)
            except CorruptData as exc:
                self._corrupt(exc)
        archive = c.key("agents:archive")
        for name, raw in sorted(self.snap.agent_archive.items()):
            try:
                c.decode(f"{archive}#{name}", raw, Agent.from_dict)
            except CorruptData as exc:
                self._corrupt(exc)

    def _phantom(self, single: str, member: str, keys: list[str]) -> bool:
        """Whether the set ``single`` lists ``member`` while none of ``keys`` exists, now (one
        ``MULTI``: a record created and archived since the snapshot is no phantom)."""
        c = self.c

        def read() -> list[Any]:
            with c.client.pipeline(transaction=True) as pipe:
                pipe.sismember(c.key(single), member)
                pipe.exists(*keys)
                replies: list[Any] = pipe.execute(raise_on_error=False)
            return replies

        listed, present = c.call(read)
        return bool(listed == 1 and present == 0)


# -- the doctor's entry points -------------------------------------------------------------------
def check(c: Connection) -> list[Violation]:
    """Every ``index`` and ``corrupt`` violation of the key space (read-only)."""
    try:
        return Audit(c, scan(c)).violations
    except CorruptData as exc:  # e.g. a value that is not UTF-8: the audit cannot read on
        return [Violation("corrupt", exc.path, exc.message, file=exc.path)]


def rebuild(c: Connection) -> int:
    """Re-derive every derived structure from the records (see the module doc); return how many
    entries (ids, names, keys) were rewritten."""
    audit = Audit(c, scan(c))
    done = 0
    if audit.wrong_derived:
        drop = c.script("drop_wrong_type", _DROP_WRONG_TYPE)
        done += _run(c, [(drop, [c.key(s)], [want]) for s, want in audit.wrong_derived.items()])
        audit = Audit(c, scan(c))  # every entry those keys held is missing now
    statuses = audit.space.statuses()
    fix_task = c.script("fix_task", _FIX_TASK)
    calls: list[tuple[Any, list[str], list[Any]]] = []
    for view, verdict in audit.task_fixes:
        status = verdict.status
        if status is not None and status not in statuses:
            statuses = sorted({*statuses, status})
        pair = 0 if status is None else statuses.index(status) + 1  # in this call's key list
        keys = [c.key("task", view.id), c.key("tasks:all")]
        for s in statuses:
            keys += [c.key("tasks", "status", s), c.key("tasks", "heads", s)]
        calls.append((fix_task, keys, [view.id, view.raw or "", pair, verdict.head or ""]))
    fix_member = c.script("fix_member", _FIX_MEMBER)
    for single, name, keys in audit.member_fixes:
        calls.append((fix_member, [c.key(single), *keys], [name]))
    done += _run(c, calls)
    return done


def _run(c: Connection, calls: Iterable[tuple[Any, list[str], list[Any]]]) -> int:
    """Run the (idempotent) fix scripts, pipelined in chunks."""
    todo = list(calls)
    for i in range(0, len(todo), _CHUNK):
        chunk = todo[i : i + _CHUNK]

        def send(chunk: list[tuple[Any, list[str], list[Any]]] = chunk) -> None:
            with c.client.pipeline(transaction=False) as pipe:
                for script, keys, args in chunk:
                    script(keys=keys, args=args, client=pipe)
                pipe.execute()

        c.call(send)
    return len(todo)


__all__ = ["check", "rebuild", "record_names", "scan"]

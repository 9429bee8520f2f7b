"""The storage interface the domain logic is written against: everything a backend does.

It is deliberately not file-shaped. The unit is a *record* (task, agent, context document,
rendered document) addressed by kind and key, read whole and changed only through
:meth:`Store.update_task`-style atomic read-modify-write calls, plus an append-only, per-channel
*event log* with store-assigned sequence numbers and per-consumer cursors. Every call is
linearizable per key; nothing needs multi-key transactions (derived views such as the agent
file's task sections are rebuilt from task records).

Abstract methods are what a backend implements; concrete methods here are the rules every backend
shares (argument checks, the context-name collision, archive naming, list order), written once.
:class:`~agentcoord.store.memory.MemoryStore` is the reference implementation: read it as the
executable specification. The conformance suite (``tests/conftest.py``'s ``coord`` fixture) runs
every behavioural test against each backend.

``fn`` passed to an update may be called more than once (an optimistic backend re-runs it after
a conflicting write), so it must be a pure function of the record it is given; it returns the new
record, ``None`` for "no change", or raises a :class:`~agentcoord.errors.CoordError` to abort
with nothing written. ``None`` means exactly that: nothing is written and the update returns the
record as stored, so whatever ``fn`` did to the record it was given before returning ``None`` is
discarded (every backend hands ``fn`` a record of its own).

What crosses the boundary is checked and normalized here, once, for every backend (the
``check_*`` methods below): names and ids (:func:`~agentcoord.core.validate.check_name`) before
any file or key is touched; JSON data (task metrics, context data, documents, the agent views) is
stored as exactly the JSON value it encodes (one round trip through JSON text: tuples become
lists, ``int``/``float``/``str``/``dict`` subclasses plain values, non-string keys strings), and
anything JSON cannot hold (NaN, infinities, sets, objects, text that is not UTF-8) is refused
with :class:`~agentcoord.errors.InvalidInput` (exit 2). Fields that only decorate a file for
people keep what the file can hold (:meth:`Store.check_task`: a task's dependency snapshots). So
a record reads back the same from every backend, and nothing a caller still holds is shared with
the store. The one difference left is on purpose: the markdown files keep most times to the whole
second (event and context times to the millisecond), as people and the seed's recipes read them.

How each backend keeps each record is one table, in ``docs/architecture.md`` ("The backends"); the
key layout of Redis is in :mod:`agentcoord.store.redis.store`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

from ..core.validate import check_name, json_data, normalize_block
from ..errors import Conflict, InvalidInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Sequence
    from typing import Any, TypeVar

    from ..core.models import Agent, ContextDoc, Event, Reservation, Task, TaskHead
    from ..errors import CorruptData

    TaskFn = Callable[[Task], "Task | None"]
    AgentFn = Callable[["Agent | None"], "Agent | None"]
    ReservationFn = Callable[[list[Reservation]], "list[Reservation] | None"]
    R = TypeVar("R")

#: Kinds of archived records (``archive/{kind}-{name}.md``).
ARCHIVE_KINDS = ("task", "agent")

#: ``check_document(name)``: the name alone (``None`` is data, and refused).
_NO_DATA: Any = object()

#: What :meth:`Store.check_key` calls the key of each kind of record in its messages.
_KEY_WHAT = {"task": "task id", "agent": "agent name", "counter": "counter"}


class Change:
    """A hint that something in the store changed: re-read the state, do not trust the hint.

    ``kind``: task | agent | event | context | metrics | reservation | store; ``key``: task id,
    agent name, channel, "project-domain", document name without ``metrics-``, or ``*``
    (reservations: the table as a whole); ``action``:
    created | changed | archived | removed | reconnected."""

    __slots__ = ("action", "key", "kind")

    def __init__(self, kind: str, key: str, action: str) -> None:
        self.kind = kind
        self.key = key
        self.action = action

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "key": self.key, "action": self.action}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Change):
            return NotImplemented
        return (self.kind, self.key, self.action) == (other.kind, other.key, other.action)

    def __hash__(self) -> int:
        return hash((self.kind, self.key, self.action))

    def __repr__(self) -> str:
        return f"Change({self.kind!r}, {self.key!r}, {self.action!r})"


class Violation:
    """One broken invariant (``coord doctor``): ``kind`` (see :mod:`agentcoord.ops.doctor`), the
    record's ``key`` (task id, agent, channel or file name), where it lives (``file``, when the
    store has files) and a ``message`` for people. ``repairable`` ones ``doctor --fix`` mends."""

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


class Store(ABC):
    """Backend-neutral storage. Implementations: :class:`~.memory.MemoryStore` (the reference),
    :class:`~.markdown.store.MarkdownStore`, :class:`~.redis.store.RedisStore`."""

    #: Where the data lives, for messages (a directory, or a URL with the password hidden).
    location: str = ""

    # == tasks ================================================================================
    @abstractmethod
    def get_task(self, task_id: str) -> Task:
        """The task, or :class:`NotFound`; :class:`CorruptData` if it cannot be read."""

    @abstractmethod
    def list_tasks(
        self,
        *,
        statuses: Iterable[str] | None = None,
        errors: list[CorruptData] | None = None,
    ) -> list[Task]:
        """Tasks (optionally only those in ``statuses``) in :meth:`record_order`. Unreadable
        records are skipped and appended to ``errors`` when given (so one bad file never hides
        the board)."""

    def list_task_heads(
        self,
        *,
        statuses: Iterable[str] | None = None,
        errors: list[CorruptData] | None = None,
    ) -> list[TaskHead]:
        """Like :meth:`list_tasks` but only the fields that order and filter tasks, in no
        particular order (callers sort by claim order); backends override it to answer from an
        index without reading every task."""
        from ..core.models import TaskHead

        return [TaskHead.of(t) for t in self.list_tasks(statuses=statuses, errors=errors)]

    def get_task_head(self, task_id: str) -> TaskHead:
        """The task's head as stored now (:class:`NotFound` if there is none); backends answer
        from their index when it is known to be current, without parsing the task."""
        from ..core.models import TaskHead

        return TaskHead.of(self.get_task(task_id))

    @abstractmethod
    def create_task(self, task: Task) -> None:
        """Store a new task; :class:`AlreadyExists` if the id is taken (an unreadable record
        under that id is reported as :class:`CorruptData`, never replaced)."""

    @abstractmethod
    def update_task(self, task_id: str, fn: TaskFn) -> Task:
        """Atomically apply ``fn`` to the task and store the result (:meth:`check_task`); return
        the stored task, or the task as stored when ``fn`` returns None (nothing written).
        :class:`NotFound` if there is no such task; ``fn``'s own errors pass through."""

    def try_update_task(self, task_id: str, fn: TaskFn) -> Task | None:
        """Like :meth:`update_task`, but return None instead of waiting when another writer is
        changing the task right now. ``claim`` uses it to move on to the next candidate rather
        than queue behind a claimer that will most likely win. (Default: just update.)"""
        return self.update_task(task_id, fn)

    @abstractmethod
    def archive_task(self, task_id: str, check: Callable[[Task], bool]) -> bool:
        """Move the task out of the live set if ``check(task)`` holds (decided atomically with
        the move); its archive entry is named by :meth:`archive_name`. Returns whether it
        moved."""

    @abstractmethod
    def list_archived_tasks(
        self, *, errors: list[CorruptData] | None = None
    ) -> list[tuple[str, Task]]:
        """(archive name, task) of every archived task, in :meth:`record_order` of the names."""

    def find_archived_task(self, task_id: str) -> tuple[str, Task] | None:
        """The newest archive entry of task ``task_id`` (its archive name and the task), or
        None. Archive names are the id, then ``{id}-{time}`` (:meth:`archive_name`), so the
        newest is the one archived last. Unreadable entries are skipped. (Default: scan
        :meth:`list_archived_tasks`; a backend may answer it without reading every entry.)"""
        check_name(task_id, "task id")
        found = [
            (name, task) for name, task in self.list_archived_tasks(errors=[]) if task.id == task_id
        ]
        if not found:
            return None
        return max(found, key=lambda pair: (pair[1].updated_at or 0.0, pair[1].created_at))

    @abstractmethod
    def next_id(self, kind: str) -> int:
        """A number never returned before for ``kind`` (a name: :meth:`check_key`) in this
        workspace (generated ids)."""

    @abstractmethod
    def counters(self) -> dict[str, int]:
        """Every :meth:`next_id` counter: kind -> the last number handed out."""

    @abstractmethod
    def set_counter(self, kind: str, value: int) -> None:
        """Continue :meth:`next_id` for ``kind`` after ``value`` (:meth:`check_counter`). Never
        lowers the counter, and a value that would not raise it (0 or less for a counter that
        was never used) creates nothing."""

    # == agents ===============================================================================
    @abstractmethod
    def get_agent(self, name: str) -> Agent:
        """The agent, or :class:`NotFound`; :class:`CorruptData` if it cannot be read."""

    @abstractmethod
    def list_agents(self, *, errors: list[CorruptData] | None = None) -> list[Agent]:
        """Every live agent in :meth:`record_order`; unreadable ones go to ``errors``."""

    @abstractmethod
    def update_agent(self, name: str, fn: AgentFn, *, durable: bool = True) -> Agent | None:
        """Atomically apply ``fn`` to the agent (``None`` if it does not exist yet); store
        (:meth:`check_agent`) and return what ``fn`` returns, or, when it returns None, the agent
        as stored (None if there is none) with nothing written. ``durable=False`` allows skipping
        the flush to stable storage for changes that can be rebuilt (the views of task records):
        still atomic."""

    @abstractmethod
    def archive_agent(self, name: str, check: Callable[[Agent], bool]) -> bool:
        """Like :meth:`archive_task`, for agents."""

    @abstractmethod
    def list_archived_agents(
        self, *, errors: list[CorruptData] | None = None
    ) -> list[tuple[str, Agent]]:
        """(archive name, agent) of every archived agent, in :meth:`record_order`."""

    @abstractmethod
    def import_archived(self, kind: str, name: str, record: Task | Agent) -> None:
        """Store ``record`` in the archive of ``kind`` under exactly ``name`` (``coord
        migrate``), replacing an entry of that name. :class:`InvalidInput` for an unknown kind,
        a name that is not a valid archive name, or a record that is not a valid record of that
        kind (:meth:`check_archived`)."""

    # == events ===============================================================================
    @abstractmethod
    def append_events(self, channel: str, events: list[Event], *, keep: int) -> list[Event]:
        """Append in order, assigning each the channel's next ``seq`` (and the store's time when
        it has none; times keep milliseconds) and keeping the newest ``keep`` in the live log
        (older ones move to the archive, never lost). Returns the stored events."""

    @abstractmethod
    def import_events(self, channel: str, events: list[Event], *, keep: int) -> list[Event]:
        """Append events *keeping their seq* (``coord migrate``): each must be larger than the
        channel's last seq and than the one before it, else :class:`InvalidInput` and nothing
        written. Gaps are allowed; later appends continue after the largest."""

    @abstractmethod
    def rotate_events(self, channel: str, *, keep: int, dry_run: bool = False) -> int:
        """Move all but the newest ``keep`` live events to the archive now (``cleanup``);
        return how many moved (or would move)."""

    @abstractmethod
    def read_events(self, channel: str, *, after: int = 0, limit: int | None = None) -> list[Event]:
        """Events with ``seq > after`` in order, from the archive and the live log."""

    @abstractmethod
    def last_seq(self, channel: str) -> int:
        """The largest seq the channel ever assigned (0 for none), also after rotation."""

    @abstractmethod
    def raise_last_seq(self, channel: str, seq: int) -> int:
        """Make the channel's next seq at least ``seq + 1`` (``coord migrate`` of a log whose
        newest events were removed by hand); never lowers it. Returns the last seq after."""

    @abstractmethod
    def live_event_count(self, channel: str) -> int:
        """How many events sit in the live log (the rest are archived)."""

    @abstractmethod
    def list_channels(self) -> list[str]:
        """Every channel that ever assigned a seq (events live or archived, or a raised last
        seq), sorted."""

    @abstractmethod
    def get_cursor(self, channel: str, consumer: str) -> int:
        """The consumer's cursor (the last seq it acknowledged; 0 for none)."""

    @abstractmethod
    def advance_cursor(self, channel: str, consumer: str, seq: int) -> int:
        """Move the consumer's cursor forward to ``seq`` (never backwards); return the cursor.
        A ``seq`` that does not move it (0 for a consumer without a cursor) stores nothing."""

    @abstractmethod
    def reset_cursor(self, channel: str, consumer: str, seq: int) -> int:
        """Set the consumer's cursor to ``seq`` even if that moves it back: only after the
        channel was reset (its seqs start again), so that the consumer skips nothing. Returns
        the cursor."""

    @abstractmethod
    def list_cursors(self, *, errors: list[CorruptData] | None = None) -> dict[str, dict[str, int]]:
        """Every consumer cursor: channel -> consumer -> seq. Unreadable cursor records are
        skipped and appended to ``errors`` (else raised)."""

    # == context ==============================================================================
    @abstractmethod
    def put_context(self, doc: ContextDoc) -> None:
        """Store (replace) the document (:meth:`check_context`); :class:`Conflict` when another
        (project, domain) pair already holds its name (:meth:`check_context_slot`)."""

    @abstractmethod
    def get_context(self, project: str, domain: str) -> ContextDoc:
        """The document, or :class:`NotFound`."""

    @abstractmethod
    def list_contexts(self, *, errors: list[CorruptData] | None = None) -> list[ContextDoc]:
        """Every document in :meth:`record_order` of their names."""

    # == documents (reports such as metrics-performance) ======================================
    @abstractmethod
    def put_document(self, name: str, data: dict[str, Any]) -> None:
        """Store (replace) the JSON object ``data`` as document ``name`` (markdown renders it
        for people, ``metrics-performance.md``); :meth:`check_document` first."""

    @abstractmethod
    def get_document(self, name: str) -> dict[str, Any] | None:
        """The document's data, or None; :class:`CorruptData` if it cannot be read."""

    @abstractmethod
    def list_documents(self, *, errors: list[CorruptData] | None = None) -> list[str]:
        """Names of the stored documents, sorted: only valid document names
        (:meth:`check_document`), so every name listed can be read with :meth:`get_document`.
        A stored document under any other name (a file or key made by hand) is skipped, and
        appended to ``errors`` when given. The documents themselves are not read."""

    # == the workspace as a whole (coord migrate, coord doctor) ===============================
    @abstractmethod
    def identity(self) -> tuple[str, ...]:
        """What makes two stores the same data (a resolved directory; a server, database and
        key base): ``migrate`` refuses to copy a workspace onto itself."""

    @abstractmethod
    def prepare(self) -> None:
        """Make the store ready to be written (create the directory layout; reach the server).
        Idempotent."""

    @abstractmethod
    def record_names(self) -> list[str]:
        """Names of every record present (live, archived, cursors, counters, documents); empty
        for an empty store. ``migrate`` refuses a non-empty target without ``--force``."""

    @abstractmethod
    def clear(self) -> int:
        """Remove every record of this workspace (``migrate --force`` onto it); return how many.
        Other workspaces (other directories, other hash tags) are untouched."""

    def check_storage(self) -> list[Violation]:
        """What only this kind of storage can get wrong (files: symlinks, permissions, temp
        files of dead writers, locks that stay held). Read-only. (Default: nothing.)"""
        return []

    def repair_storage(self, found: Sequence[Violation]) -> list[str]:
        """Repair the repairable ones of ``found`` (from :meth:`check_storage`); return what was
        done. (Default: nothing to repair.)"""
        return []

    def fresh(self) -> Store:
        """A view of the same data without this process's caches (``doctor`` checks what other
        processes read). (Default: this store, which keeps none.)"""
        return self

    def rebuild_index(self) -> bool:
        """Rebuild the task head index from the task records; returns whether there was one to
        rebuild. (Default: no index.)"""
        return False

    def remove_orphans(self, *, min_age: float, dry_run: bool = False) -> list[str]:
        """Remove leftovers of writers that died mid-write, older than ``min_age`` seconds;
        return their names. Only file-based stores leave any."""
        return []

    def record_path(self, kind: str, key: str) -> str | None:
        """Where a person can look at a record (a file path), if the store has one."""
        return None

    # == file reservations (SPEC section 13) ==================================================
    @abstractmethod
    def get_reservations(self) -> list[Reservation]:
        """The reservation table as stored (live or not: liveness is the domain's to decide),
        in the order it was written; empty when there is none. :class:`CorruptData` if it
        cannot be read."""

    @abstractmethod
    def update_reservations(self, fn: ReservationFn) -> list[Reservation]:
        """Atomically apply ``fn`` to the whole table (it is small) and store the result
        (:meth:`check_reservations`); return the stored table, or the table as stored when
        ``fn`` returns None (nothing written). The same discipline as :meth:`update_agent`:
        ``fn`` may run more than once and may raise a :class:`CoordError` to abort. An empty
        table is no record at all (:meth:`record_names` does not list it)."""

    # == change feed ==========================================================================
    @abstractmethod
    def watch(self, *, timeout: float | None = None) -> Generator[list[Change], None, None]:
        """Yield batches of change hints as they happen (until ``timeout`` seconds of silence,
        if set).

        Changes after the call are never missed, so "watch, then read, then iterate" is safe.
        ``close()`` the generator to stop watching. Besides record kinds, a backend may yield
        ``Change("store", "*", "reconnected")`` after a connection loss: re-read everything."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and file handles."""

    # == shared rules (every backend calls these; write them nowhere else) ====================
    @staticmethod
    def check_count(value: object, what: str) -> int:
        """``value`` if it is a whole number >= 0, else :class:`InvalidInput` (exit 2)."""
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"{what} must be a whole number >= 0, not {value!r}", field=what)
        return value

    @classmethod
    def check_events(cls, channel: str, events: Iterable[Event], keep: int) -> None:
        """Refuse (exit 2) a bad channel, event type, empty field name or ``keep`` before
        anything is written."""
        check_name(channel, "channel")
        cls.check_count(keep, "keep")
        for event in events:
            check_name(event.type, "event type")
            for key, _ in event.fields:
                if not key or not key.strip():
                    raise InvalidInput("event field names must not be empty", field="key")

    @staticmethod
    def check_import_seqs(channel: str, last: int, events: Iterable[Event]) -> None:
        """Refuse imported events whose seqs do not increase above ``last`` (exit 2)."""
        seq = last
        for event in events:
            if event.seq <= seq:
                raise InvalidInput(
                    f"imported events for channel {channel!r} must have increasing seqs "
                    f"above {last}; got {event.seq} after {seq}"
                )
            seq = event.seq

    @staticmethod
    def context_name(project: str, domain: str) -> str:
        """The key of a context document: ``{project}-{domain}`` (``context-{p}-{d}.md``);
        :class:`InvalidName` (exit 2) unless both are valid names."""
        return f"{check_name(project, 'project')}-{check_name(domain, 'domain')}"

    @classmethod
    def check_context_slot(cls, current: ContextDoc | None, doc: ContextDoc) -> None:
        """Names join with a dash, so ``a-b``/``c`` and ``a``/``b-c`` would share one record:
        refuse (exit 4) to overwrite another pair's document."""
        if current is not None and (current.project, current.domain) != (doc.project, doc.domain):
            raise Conflict(
                f"context-{cls.context_name(doc.project, doc.domain)}.md already holds project "
                f"{current.project!r}, domain {current.domain!r}; choose other names",
                project=current.project,
                domain=current.domain,
            )

    @staticmethod
    def check_same_record(kind: str, key: str, new_key: str) -> None:
        """An update of record ``key`` must return that record, not another (exit 2)."""
        if new_key != key:
            raise InvalidInput(f"an update of {kind} {key!r} returned {kind} {new_key!r}")

    @staticmethod
    def archive_name(name: str, taken: Callable[[str], bool], now: float) -> str:
        """The archive entry for ``name``: ``name`` itself when free, else (an id reused after
        archiving) ``{name}-{YYYYmmddTHHMMSS}``, then ``-1``, ``-2``... so that two archives in
        the same second never overwrite each other."""
        if not taken(name):
            return name
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
        candidate, n = f"{name}-{stamp}", 1
        while taken(candidate):
            candidate, n = f"{name}-{stamp}-{n}", n + 1
        return candidate

    @staticmethod
    def check_archive_kind(kind: str, name: str) -> None:
        """:class:`InvalidInput` unless ``kind`` is archived and ``name`` is a valid archive
        entry name (a record name, or one with a ``-stamp`` suffix: up to 128 characters)."""
        from ..core.validate import is_valid_archive_name

        if kind not in ARCHIVE_KINDS:
            raise InvalidInput(f"unknown record kind {kind!r}: one of {', '.join(ARCHIVE_KINDS)}")
        if not is_valid_archive_name(name):
            raise InvalidInput(f"invalid archive entry name {name!r}")

    @classmethod
    def check_document(cls, name: str, data: object = _NO_DATA) -> None:
        """Documents are reports named ``metrics-{type}`` (seed naming) holding a JSON object
        (:meth:`document_data`, when ``data`` is given); anything else is :class:`InvalidInput`
        (exit 2)."""
        check_name(name, "document name")
        if not name.startswith("metrics-") or name == "metrics-":
            raise InvalidInput(f"document names start with 'metrics-', not {name!r}")
        if data is not _NO_DATA:
            cls.json_object(data, f"document {name}")

    @classmethod
    def document_data(cls, name: str, data: object) -> dict[str, Any]:
        """:meth:`check_document`, and ``data`` as it is stored: exactly its JSON value
        (:meth:`json_object`)."""
        cls.check_document(name)
        return cls.json_object(data, f"document {name}")

    @staticmethod
    def is_document_name(name: str) -> bool:
        """Whether ``name`` is a valid document name (:meth:`check_document`)."""
        from ..core.validate import is_valid_name

        return is_valid_name(name) and name.startswith("metrics-") and name != "metrics-"

    # -- what crosses the boundary: names and records -------------------------------------------
    @staticmethod
    def check_key(kind: str, key: object) -> str:
        """``key`` if it is a valid name for a record of ``kind`` (``task`` id, ``agent`` name,
        ``counter`` kind), else :class:`InvalidName` (exit 2): every backend calls it before it
        reads or writes the record, so no file or key is ever made from a bad name."""
        return check_name(key, _KEY_WHAT.get(kind, f"{kind} name"))

    @staticmethod
    def check_counter(kind: str, value: object) -> int:
        """The counter ``kind`` (:meth:`check_key`) and ``value`` as a plain ``int``;
        :class:`InvalidInput` (exit 2) unless ``value`` is a whole number."""
        check_name(kind, "counter")
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"a counter value must be a whole number, not {value!r}")
        return int(value)

    @staticmethod
    def json_value(value: object, what: str) -> Any:
        """``value`` as exactly the JSON value it encodes, in new containers: one round trip
        through JSON text (tuples become lists, subclasses of ``int``, ``float``, ``str``,
        ``dict`` and ``list`` plain ones, non-string keys strings). :class:`InvalidInput` (exit 2)
        for anything JSON cannot hold: NaN or infinities, sets and other objects, keys that
        are not scalars, text that is not UTF-8, nesting too deep."""
        import json

        return json.loads(json_data(value, what))

    @classmethod
    def json_object(cls, value: object, what: str) -> dict[str, Any]:
        """:meth:`json_value` of a JSON object (a ``dict``); :class:`InvalidInput` otherwise."""
        if not isinstance(value, dict):
            raise InvalidInput(f"{what} must hold a JSON object, not {type(value).__name__}")
        data: dict[str, Any] = cls.json_value(value, what)
        return data

    @classmethod
    def check_task(cls, task: object) -> Task:
        """``task`` as every backend stores it (``create_task``, an update's result, an archive
        import), changed in place and returned; :class:`InvalidInput` (exit 2) unless it is a
        :class:`~agentcoord.core.models.Task` whose id and names (project, agent, creator,
        dependencies) are valid and whose ``metrics`` are a JSON object.

        ``metrics`` become exactly their JSON value (:meth:`json_object`). The dependency
        snapshots (``dep_states``, ``dep_titles``: decoration for people, never decisions) keep
        what the task file's Dependencies lines can hold: entries for the task's own
        dependencies only, states that are task states, titles that are not empty."""
        from ..core.models import TASK_STATES, Task

        if not isinstance(task, Task):
            raise InvalidInput(f"expected a task (Task), not {type(task).__name__}")
        check_name(task.id, "task id")
        for value, what in (
            (task.project, "project"),
            (task.agent, "agent name"),
            (task.created_by, "agent name"),
        ):
            if value is not None:
                check_name(value, what)
        deps = {check_name(d, "dependency id") for d in task.depends_on}
        metrics = cls.json_object(task.metrics, "metrics")
        task.metrics = metrics
        # SPEC section 11: labels and required capabilities are names, each once, in order;
        # the parent is another task; the description is free text without surrounding blank
        # lines (what the ``## Description`` section holds).
        for attr, what in (("labels", "label"), ("requires", "capability")):
            values = getattr(task, attr)
            if not isinstance(values, list):
                raise InvalidInput(f"task {task.id}: {attr} must be a list of names")
            setattr(task, attr, list(dict.fromkeys(check_name(v, what) for v in values)))
        if task.parent is not None:
            check_name(task.parent, "parent id")
            if task.parent == task.id:
                raise InvalidInput(f"task {task.id} cannot be its own parent")
        if not isinstance(task.description, str):
            raise InvalidInput(f"task {task.id}: the description must be text")
        lines = normalize_block(task.description, "description").split("\n")
        while lines and not lines[0].strip():
            del lines[0]
        while lines and not lines[-1].strip():
            del lines[-1]
        task.description = "\n".join(lines)
        task.dep_states = {
            d: s for d, s in task.dep_states.items() if d in deps and s in TASK_STATES
        }
        task.dep_titles = {
            d: t for d, t in task.dep_titles.items() if d in deps and isinstance(t, str) and t
        }
        return task

    @classmethod
    def check_agent(cls, agent: object) -> Agent:
        """``agent`` as every backend stores it, changed in place and returned;
        :class:`InvalidInput` (exit 2) unless it is an :class:`~agentcoord.core.models.Agent`
        with a valid name. Its views (``active``, ``recent``, ``stats``) become exactly their
        JSON values (:meth:`json_value`)."""
        from ..core.models import Agent

        if not isinstance(agent, Agent):
            raise InvalidInput(f"expected an agent (Agent), not {type(agent).__name__}")
        check_name(agent.name, "agent name")
        if not isinstance(agent.active, list) or not isinstance(agent.recent, list):
            raise InvalidInput(f"agent {agent.name}: active and recent must be lists")
        active = cls.json_value(agent.active, f"agent {agent.name}'s active tasks")
        recent = cls.json_value(agent.recent, f"agent {agent.name}'s recent tasks")
        stats = cls.json_object(agent.stats, f"agent {agent.name}'s stats")
        agent.active, agent.recent, agent.stats = active, recent, stats
        return agent

    @classmethod
    def check_context(cls, doc: object) -> ContextDoc:
        """``doc`` as every backend stores it, changed in place and returned;
        :class:`InvalidInput` (exit 2) unless it is a
        :class:`~agentcoord.core.models.ContextDoc` with valid project and domain names whose
        ``data`` is a JSON object, which becomes exactly its JSON value (:meth:`json_object`)."""
        from ..core.models import ContextDoc

        if not isinstance(doc, ContextDoc):
            raise InvalidInput(f"expected a context document, not {type(doc).__name__}")
        cls.context_name(doc.project, doc.domain)
        doc.data = cls.json_object(doc.data, f"context {doc.project}/{doc.domain}")
        return doc

    @staticmethod
    def check_reservations(table: object) -> list[Reservation]:
        """``table`` as every backend stores it (a new list); :class:`InvalidInput` (exit 2)
        unless it is a list of :class:`~agentcoord.core.models.Reservation` with unique valid
        ids, valid agent and task names, at least one canonical pattern each
        (:func:`~agentcoord.core.paths.normalize` leaves it as it is), a known mode, an epoch
        that is a whole number (or None), a one-line reason (or None) and finite times (kept to the
        millisecond)."""
        from ..core.clock import round_ms
        from ..core.models import RESERVATION_MODES, Reservation
        from ..core.paths import normalize
        from ..core.validate import one_line, timestamp, whole

        if not isinstance(table, list):
            raise InvalidInput(f"expected a list of reservations, not {type(table).__name__}")
        seen: set[str] = set()
        out: list[Reservation] = []
        for r in table:
            if not isinstance(r, Reservation):
                raise InvalidInput(f"expected a reservation, not {type(r).__name__}")
            check_name(r.id, "reservation id")
            if r.id in seen:
                raise InvalidInput(f"reservation id {r.id!r} is given twice")
            seen.add(r.id)
            check_name(r.agent, "agent name")
            if not isinstance(r.patterns, list) or not r.patterns:
                raise InvalidInput(f"reservation {r.id}: patterns must be a non-empty list")
            for pattern in r.patterns:
                if normalize(pattern) != pattern:
                    raise InvalidInput(f"reservation {r.id}: {pattern!r} is not a canonical path")
            if r.mode not in RESERVATION_MODES:
                modes = ", ".join(RESERVATION_MODES)
                raise InvalidInput(f"reservation {r.id}: mode {r.mode!r} is not one of {modes}")
            if r.task is not None:
                check_name(r.task, "task id")
            if r.epoch is not None:
                whole(r.epoch, "epoch")
            timestamp(r.created, "created")
            if r.expires is not None:
                timestamp(r.expires, "expires")
            new = r.copy()
            new.patterns = list(dict.fromkeys(r.patterns))
            new.created = round_ms(float(r.created))  # every backend keeps milliseconds
            new.expires = None if r.expires is None else round_ms(float(r.expires))
            new.reason = None if r.reason is None else one_line(r.reason, "reason")
            out.append(new)
        return out

    @classmethod
    def updated_task(cls, task_id: str, new: object) -> Task:
        """What an update of task ``task_id`` stores when ``fn`` returned ``new`` (not None):
        :meth:`check_task`, and it must be the same task (:meth:`check_same_record`)."""
        task = cls.check_task(new)
        cls.check_same_record("task", task_id, task.id)
        return task

    @classmethod
    def updated_agent(cls, name: str, new: object) -> Agent:
        """Like :meth:`updated_task`, for agents (:meth:`check_agent`)."""
        agent = cls.check_agent(new)
        cls.check_same_record("agent", name, agent.name)
        return agent

    @classmethod
    def check_archived(cls, kind: str, name: str, record: object) -> Task | Agent:
        """What :meth:`import_archived` stores: :meth:`check_archive_kind`, then a task
        (:meth:`check_task`) for kind ``task``, an agent (:meth:`check_agent`) for ``agent``."""
        cls.check_archive_kind(kind, name)
        return cls.check_task(record) if kind == "task" else cls.check_agent(record)

    @staticmethod
    def record_order(names: Iterable[str]) -> list[str]:
        """Names in the order every listing uses: the markdown file-name order
        (``task-{id}.md``), so all backends list alike."""
        return sorted(names, key=lambda n: n + ".md")

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
with nothing written.

How each backend keeps each record is one table, in ``docs/architecture.md`` ("The backends"); the
key layout of Redis is in :mod:`agentcoord.store.redis.store`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

from ..core.validate import check_name
from ..errors import Conflict, InvalidInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Sequence
    from typing import Any, TypeVar

    from ..core.models import Agent, ContextDoc, Event, Task, TaskHead
    from ..errors import CorruptData

    TaskFn = Callable[[Task], "Task | None"]
    AgentFn = Callable[["Agent | None"], "Agent | None"]
    R = TypeVar("R")

#: Kinds of archived records (``archive/{kind}-{name}.md``).
ARCHIVE_KINDS = ("task", "agent")


class Change:
    """A hint that something in the store changed: re-read the state, do not trust the hint.

    ``kind``: task | agent | event | context | metrics | store; ``key``: task id, agent name,
    channel, "project-domain", document name without ``metrics-``, or ``*``; ``action``:
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
        """Atomically apply ``fn`` to the task and store the result; return the stored task.
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

    @abstractmethod
    def next_id(self, kind: str) -> int:
        """A number never returned before for ``kind`` in this workspace (generated ids)."""

    @abstractmethod
    def counters(self) -> dict[str, int]:
        """Every :meth:`next_id` counter: kind -> the last number handed out."""

    @abstractmethod
    def set_counter(self, kind: str, value: int) -> None:
        """Continue :meth:`next_id` for ``kind`` after ``value`` (never lowers the counter)."""

    # == agents ===============================================================================
    @abstractmethod
    def get_agent(self, name: str) -> Agent:
        """The agent, or :class:`NotFound`; :class:`CorruptData` if it cannot be read."""

    @abstractmethod
    def list_agents(self, *, errors: list[CorruptData] | None = None) -> list[Agent]:
        """Every live agent in :meth:`record_order`; unreadable ones go to ``errors``."""

    @abstractmethod
    def update_agent(self, name: str, fn: AgentFn, *, durable: bool = True) -> Agent | None:
        """Atomically apply ``fn`` to the agent (``None`` if it does not exist yet); store and
        return what ``fn`` returns. ``durable=False`` allows skipping the flush to stable storage
        for changes that can be rebuilt (the views of task records): still atomic."""

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
        migrate``), replacing an entry of that name. :class:`InvalidInput` for an unknown kind
        or a name that is not a valid archive name."""

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
        """Move the consumer's cursor forward to ``seq`` (never backwards); return the cursor."""

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
        """Store (replace) the document; :class:`Conflict` when another (project, domain) pair
        already holds its name (:meth:`check_context_slot`)."""

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
        for people, ``metrics-performance.md``)."""

    @abstractmethod
    def get_document(self, name: str) -> dict[str, Any] | None:
        """The document's data, or None; :class:`CorruptData` if it cannot be read."""

    @abstractmethod
    def list_documents(self) -> list[str]:
        """Names of the stored documents, sorted."""

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
        """The key of a context document: ``{project}-{domain}`` (``context-{p}-{d}.md``)."""
        return f"{project}-{domain}"

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

    @staticmethod
    def check_document(name: str, data: object = None) -> None:
        """Documents are reports named ``metrics-{type}`` (seed naming) holding a JSON object;
        anything else is :class:`InvalidInput` (exit 2)."""
        check_name(name, "document name")
        if not name.startswith("metrics-") or name == "metrics-":
            raise InvalidInput(f"document names start with 'metrics-', not {name!r}")
        if data is not None and not isinstance(data, dict):
            raise InvalidInput(f"document {name} must hold a JSON object")

    @staticmethod
    def record_order(names: Iterable[str]) -> list[str]:
        """Names in the order every listing uses: the markdown file-name order
        (``task-{id}.md``), so all backends list alike."""
        return sorted(names, key=lambda n: n + ".md")

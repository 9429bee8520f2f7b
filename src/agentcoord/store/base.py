"""The storage interface the domain logic is written against.

It is deliberately not file-shaped. The unit is a *record* (task, agent, context) addressed by kind
and key, read whole and changed only through :meth:`Store.update_task`-style atomic
read-modify-write calls, plus an append-only, per-channel *event log* with store-assigned sequence
numbers and per-consumer cursors. Every call is linearizable per key; nothing needs multi-key
transactions (derived views such as the agent file's task sections are rebuilt from task records).

How the two backends implement it (see ``docs/architecture.md``):

=====================  ===================================  ====================================
operation              markdown directory                   Redis
=====================  ===================================  ====================================
get / list             read + parse ``task-{id}.md``;       ``GET`` of a JSON value; list via a
                       list = scan with a stat-keyed cache   per-state ``SET`` index
update(key, fn)        ``flock`` ``.locks/task-{id}``, read, read, fn, Lua compare-and-set of the
                       fn, atomic replace, unlock           value + index moves; retry on a
                                                            lost race (then a short turn)
create                 lock, refuse if the file exists      Lua: check, ``SET``, index, publish
append_events          lock the channel, append, rotate     Lua: ``INCR`` seq, ``XADD``, trim to
                                                            an archive stream
cursors                ``.state/cursors-{channel}.json``    Lua: forward-only ``HSET``
=====================  ===================================  ====================================

``fn`` passed to an update may be called more than once (an optimistic backend re-runs it after
a conflicting write), so it must be a pure function of the record it is given; it returns the new
record, ``None`` for "no change", or raises a :class:`~agentcoord.errors.CoordError` to abort
with nothing written.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable

    from ..errors import CorruptData
    from ..models import Agent, ContextDoc, Event, Task, TaskHead

    TaskFn = Callable[[Task], "Task | None"]
    AgentFn = Callable[["Agent | None"], "Agent | None"]


class Change:
    """A hint that something in the store changed: re-read the state, do not trust the hint."""

    __slots__ = ("action", "key", "kind")

    def __init__(self, kind: str, key: str, action: str) -> None:
        self.kind = kind  # task | agent | event | context | metrics | store
        self.key = key  # task id, agent name, channel, "project-domain"
        self.action = action  # created | changed | archived | removed

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "key": self.key, "action": self.action}

    def __repr__(self) -> str:
        return f"Change({self.kind!r}, {self.key!r}, {self.action!r})"


class Store(ABC):
    """Backend-neutral storage. Implementations: :class:`~.markdown.MarkdownStore`, Redis."""

    #: Where the data lives, for messages (a directory, or a URL with the password hidden).
    location: str = ""

    # -- tasks ------------------------------------------------------------------------------
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
        """Tasks (optionally only those in ``statuses``). Unreadable records are skipped and
        appended to ``errors`` when given (so one bad file never hides the board)."""

    def list_task_heads(
        self,
        *,
        statuses: Iterable[str] | None = None,
        errors: list[CorruptData] | None = None,
    ) -> list[TaskHead]:
        """Like :meth:`list_tasks` but only the fields that order and filter tasks; backends
        override it to answer from an index without reading every task."""
        from ..models import TaskHead

        return [TaskHead.of(t) for t in self.list_tasks(statuses=statuses, errors=errors)]

    @abstractmethod
    def create_task(self, task: Task) -> None:
        """Store a new task; :class:`AlreadyExists` if the id is taken."""

    @abstractmethod
    def update_task(self, task_id: str, fn: TaskFn) -> Task:
        """Atomically apply ``fn`` to the task and store the result; return the stored task."""

    def try_update_task(self, task_id: str, fn: TaskFn) -> Task | None:
        """Like :meth:`update_task`, but return None instead of waiting when another writer is
        changing the task right now. ``claim`` uses it to move on to the next candidate rather
        than queue behind a claimer that will most likely win. (Default: just update.)"""
        return self.update_task(task_id, fn)

    @abstractmethod
    def archive_task(self, task_id: str, check: Callable[[Task], bool]) -> bool:
        """Move the task out of the live set if ``check(task)`` holds (under the task's lock)."""

    @abstractmethod
    def next_id(self, kind: str) -> int:
        """A number never returned before for ``kind`` in this workspace (generated ids)."""

    # -- agents -----------------------------------------------------------------------------
    @abstractmethod
    def get_agent(self, name: str) -> Agent:
        """The agent, or :class:`NotFound`."""

    @abstractmethod
    def list_agents(self, *, errors: list[CorruptData] | None = None) -> list[Agent]: ...

    @abstractmethod
    def update_agent(self, name: str, fn: AgentFn, *, durable: bool = True) -> Agent | None:
        """Atomically apply ``fn`` to the agent (``None`` if it does not exist yet); store and
        return what ``fn`` returns. ``durable=False`` allows skipping the flush to stable storage
        for changes that can be rebuilt (the views of task records): still atomic."""

    @abstractmethod
    def archive_agent(self, name: str, check: Callable[[Agent], bool]) -> bool: ...

    # -- events -----------------------------------------------------------------------------
    @abstractmethod
    def append_events(self, channel: str, events: list[Event], *, keep: int) -> list[Event]:
        """Append in order, assigning each the channel's next ``seq`` and keeping the newest
        ``keep`` in the live log (older ones move to the archive, never lost)."""

    @abstractmethod
    def rotate_events(self, channel: str, *, keep: int, dry_run: bool = False) -> int:
        """Move all but the newest ``keep`` live events to the archive now (``cleanup``);
        return how many moved (or would move)."""

    @abstractmethod
    def read_events(self, channel: str, *, after: int = 0, limit: int | None = None) -> list[Event]:
        """Events with ``seq > after`` in order, from the archive and the live log."""

    @abstractmethod
    def last_seq(self, channel: str) -> int: ...

    @abstractmethod
    def list_channels(self) -> list[str]: ...

    @abstractmethod
    def get_cursor(self, channel: str, consumer: str) -> int: ...

    @abstractmethod
    def advance_cursor(self, channel: str, consumer: str, seq: int) -> int:
        """Move the consumer's cursor forward to ``seq`` (never backwards); return the cursor."""

    # -- context ----------------------------------------------------------------------------
    @abstractmethod
    def put_context(self, doc: ContextDoc) -> None: ...

    @abstractmethod
    def get_context(self, project: str, domain: str) -> ContextDoc: ...

    @abstractmethod
    def list_contexts(self, *, errors: list[CorruptData] | None = None) -> list[ContextDoc]: ...

    # -- documents (rendered reports such as metrics-performance.md) -----------------------
    @abstractmethod
    def put_document(self, name: str, text: str) -> None: ...

    @abstractmethod
    def get_document(self, name: str) -> str | None: ...

    # -- maintenance ------------------------------------------------------------------------
    def remove_orphans(self, *, min_age: float, dry_run: bool = False) -> list[str]:
        """Remove leftovers of writers that died mid-write, older than ``min_age`` seconds;
        return their names. Only file-based stores leave any."""
        return []

    def record_path(self, kind: str, key: str) -> str | None:
        """Where a person can look at a record (a file path), if the store has one."""
        return None

    # -- change feed ------------------------------------------------------------------------
    @abstractmethod
    def watch(self, *, timeout: float | None = None) -> Generator[list[Change], None, None]:
        """Yield batches of change hints as they happen (until ``timeout`` of silence, if set).

        Changes after the call are never missed, so "watch, then read, then iterate" is safe.
        ``close()`` the generator to stop watching. Besides record kinds, a backend may yield
        ``Change("store", "*", "reconnected")`` after a connection loss: re-read everything."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and file handles."""

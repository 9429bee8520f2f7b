"""The markdown backend: one human-readable file per record in ``.claude/coordination/``.

Every change is a locked read-modify-write: ``flock`` the record's lock file in ``.locks/``, read
and parse the file, apply the domain's function, render, and atomically replace the file. A file
that does not parse is reported (:class:`CorruptData`, ``path:line: reason``) and never written.

Each record is parsed at most once per operation and rendered and encoded once: the directory's
:class:`~.directory.RecordCache` hands back the record parsed from (or rendered to) the exact
bytes on disk, so the update after a read, or the read after a write, parses nothing. Listing
many tasks uses the stat-validated head index (:mod:`.index`); events and cursors live in
:mod:`.events`, the change feed in :mod:`.watch`, the files' own checks in :mod:`.checks`.
"""

from __future__ import annotations

import os
import re
import time

from ...errors import AlreadyExists, BackendUnavailable, CorruptData, NotFound
from ...fs import decode
from ..base import Store
from .directory import ARCHIVE, STATE, Directory

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Sequence
    from typing import Any

    from ...core.models import Agent, ContextDoc, Event, Reservation, Task, TaskHead
    from ..base import AgentFn, Change, ReservationFn, TaskFn, Violation
    from .events import EventLogs
    from .index import TaskIndex

_BUSY = object()  # _update's answer when wait=False and the record is locked
INDEX = os.path.join(STATE, "index-task.json")
#: Files of a workspace that hold records (``clear`` removes these, nothing else).
_RECORD_PREFIXES = ("task-", "agent-", "events-", "context-", "metrics-", "reservations")
#: The file reservation table (SPEC section 13), one file: :mod:`.codec.reservation`.
RESERVATIONS = "reservations.md"
_ARCHIVED_EVENTS = re.compile(r"events-(.+)-\d{4}-\d{2}-\d{2}\.md")
_RECORD_FILES = {
    "task": "task-{}.md",
    "agent": "agent-{}.md",
    "event": "events-{}.md",
    "context": "context-{}.md",
    "metrics": "metrics-{}.md",
    "reservations": "reservations.md",  # one table: the key is ignored
}


def _named(path: str, kind: str, key: str, what: str) -> None:
    """A live record's file must be the one its own key names (``{kind}-{key}.md``): a file
    that says otherwise (renamed or copied by hand) is corrupt data, never read as another
    record (whose next write would make a second file for it)."""
    expected = os.path.basename(path)[len(kind) + 1 : -len(".md")]
    if key != expected:
        raise CorruptData(path, 1, f"file name says {kind} {expected!r} but {what} is {key!r}")


def _parse_agent(text: str, path: str) -> Agent:
    """A live agent file: its ``# Agent:`` heading must name the agent its name says."""
    from .codec.agent import parse_agent

    agent = parse_agent(text, path)
    _named(path, "agent", agent.name, "the '# Agent:' heading")
    return agent


def _parse_archived_agent(text: str, path: str) -> Agent:
    from .codec.agent import parse_agent  # archived files may carry a -stamp suffix

    return parse_agent(text, path)


def _parse_context(text: str, path: str) -> ContextDoc:
    """A context file: its **Project** and **Domain** must make the name it has."""
    from .codec.context import parse_context

    doc = parse_context(text, path)
    key = Store.context_name(doc.project, doc.domain)
    _named(path, "context", key, "**Project**-**Domain**")
    return doc


def _parse_task(text: str, path: str) -> Task:
    """A live task file: its ``**Task ID**`` must be the one its name says."""
    from .codec.task import parse_task

    task = parse_task(text, path)
    _named(path, "task", task.id, "**Task ID**")
    return task


class MarkdownStore(Store):
    """Records as seed-format markdown files in ``root`` (the coordination directory).

    ``durable`` (default on) fsyncs every write; ``lock_timeout`` (seconds) bounds every wait
    for a record's lock (then :class:`LockTimeout`, exit 5); ``clock`` stamps derived lines."""

    def __init__(
        self,
        root: str,
        *,
        durable: bool = True,
        lock_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.d = Directory(root, durable=durable, lock_timeout=lock_timeout, clock=clock)
        self.root = self.d.root
        self.location = self.root
        self.durable = durable
        self.lock_timeout = lock_timeout
        self.clock = clock
        self._events: EventLogs | None = None
        self._index: TaskIndex | None = None

    @property
    def events(self) -> EventLogs:
        """The event logs and cursors (:mod:`.events`), loaded on first use: most commands
        never touch an event."""
        if self._events is None:
            from .events import EventLogs

            self._events = EventLogs(self.d)
        return self._events

    # -- records: the locked read-modify-write -----------------------------------------------
    def path(self, name: str) -> str:
        return self.d.path(name)

    def _load(self, file: str, parse: Callable[[str, str], Any], *, cache: bool = True) -> Any:
        return self._parsed(file, self.d.read_bytes(file), parse, cache=cache)

    def _parsed(
        self, file: str, raw: bytes | None, parse: Callable[[str, str], Any], *, cache: bool = True
    ) -> Any:
        """The record in ``raw``, the bytes of ``file`` (None: no record); a record of its own
        (a copy from the cache, or parsed and cached)."""
        if raw is None:
            return None
        found = self.d.cache.get(file, raw)
        if found is not None:
            return found
        record = parse(decode(raw, self.d.path(file)), self.d.path(file))
        if cache:
            self.d.cache.put(file, raw, record)
        return record

    def _update(
        self,
        name: str,
        parse: Callable[[str, str], Any],
        render: Callable[[Any], str],
        fn: Callable[[Any], Any],
        *,
        wait: bool = True,
        durable: bool = True,
        written: Callable[[str, Any, bytes], None] | None = None,
    ) -> Any:
        lock = self.d.lock(name)
        if not lock.acquire(blocking=wait):
            return _BUSY
        try:
            file = name + ".md"
            before = self.d.read_bytes(file)
            current = self._parsed(file, before, parse)
            new = fn(current)
            if new is None:  # "no change": the record as stored, not what fn did to its copy
                return self._parsed(file, before, parse)  # a copy from the cache: no parse
            raw = render(new).encode("utf-8")
            self.d.write(file, raw, durable=durable)
            # What the file now says is what parsing it gives, not ``new`` (files keep times
            # to the second): the next read parses it.
            self.d.cache.drop(file)
            if written is not None:  # still under the lock: nobody else has written since
                written(name, new, raw)
            return new
        finally:
            lock.release()

    def _scan(
        self, prefix: str, parse: Callable[[str, str], Any], errors: list[CorruptData] | None
    ) -> list[Any]:
        out: list[Any] = []
        for file in self.d.names(regular=False):  # a planted link or FIFO is reported, not hidden
            if not (file.startswith(prefix) and file.endswith(".md")):
                continue
            try:
                record = self._load(file, parse, cache=False)
            except CorruptData as exc:
                if errors is not None:
                    errors.append(exc)
                continue
            if record is not None:
                out.append(record)
        return out

    def _archive(
        self, kind: str, key: str, parse: Callable[[str, str], Any], check: Callable[[Any], bool]
    ) -> bool:
        name = f"{kind}-{key}"
        with self.d.lock(name):
            record = self._load(name + ".md", parse)
            if record is None or not check(record):
                return False
            archive = self.d.ensure(ARCHIVE)
            entry = self.archive_name(
                key,
                lambda n: os.path.lexists(os.path.join(archive, f"{kind}-{n}.md")),
                self.clock(),
            )
            try:
                os.replace(self.d.path(name + ".md"), os.path.join(archive, f"{kind}-{entry}.md"))
                self.d.cache.drop(name + ".md")
                if self.durable:
                    from ...fs import fsync_dir

                    fsync_dir(archive)
                    fsync_dir(self.root)
            except OSError as exc:
                raise BackendUnavailable(f"cannot archive {name}: {exc.strerror}") from exc
            return True

    def _archived(
        self, kind: str, parse: Callable[[str, str], Any], errors: list[CorruptData] | None
    ) -> list[tuple[str, Any]]:
        from ...core.validate import is_valid_archive_name

        out: list[tuple[str, Any]] = []
        prefix = kind + "-"
        for file in self.d.names(ARCHIVE, regular=False):  # a planted FIFO is reported
            if not (file.startswith(prefix) and file.endswith(".md")):
                continue
            entry, path = file[len(prefix) : -3], os.path.join(ARCHIVE, file)
            try:
                if not is_valid_archive_name(entry):
                    raise CorruptData(self.d.path(path), 1, "archive file name is not valid")
                record = self._load(path, parse, cache=False)
            except CorruptData as exc:
                if errors is None:
                    raise
                errors.append(exc)
                continue
            if record is not None:
                out.append((entry, record))
        return out

    # -- tasks ------------------------------------------------------------------------------
    def _render_task(self, task: Task) -> str:
        from .codec.task import render_task

        return render_task(task, self.clock())

    def get_task(self, task_id: str) -> Task:
        self.check_key("task", task_id)
        task: Task | None = self._load(f"task-{task_id}.md", _parse_task)
        if task is None:
            raise NotFound(f"no task {task_id!r} in {self.root}", task=task_id)
        return task

    def get_task_head(self, task_id: str) -> TaskHead:
        """From the bytes this process last wrote when the file still holds exactly them (a
        read, no parse); else from the task."""
        file = f"task-{self.check_key('task', task_id)}.md"
        raw = self.d.read_bytes(file)
        if raw is not None:
            head: TaskHead | None = self.d.heads.get(file, raw)
            if head is not None:
                return head
        return super().get_task_head(task_id)

    def _task_bytes(self, file: str) -> bytes | None:
        return self.d.read_bytes(file)

    def _task_from_bytes(self, file: str, raw: bytes) -> Task:
        found: Task | None = self.d.cache.get(file, raw)
        if found is not None:
            return found
        return _parse_task(decode(raw, self.d.path(file)), self.d.path(file))

    def _task_index(self) -> TaskIndex:
        if self._index is None:
            from .index import TaskIndex

            self._index = TaskIndex(self.root, self.d.path(STATE))
        return self._index

    def list_task_heads(
        self,
        *,
        statuses: Iterable[str] | None = None,
        errors: list[CorruptData] | None = None,
    ) -> list[TaskHead]:
        wanted = frozenset(statuses) if statuses is not None else None
        heads, _ = self._task_index().scan(self._task_bytes, self._task_from_bytes, errors, wanted)
        return [head for _, head in heads]

    def list_tasks(
        self,
        *,
        statuses: Iterable[str] | None = None,
        errors: list[CorruptData] | None = None,
    ) -> list[Task]:
        wanted = frozenset(statuses) if statuses is not None else None
        heads, parsed = self._task_index().scan(
            self._task_bytes, self._task_from_bytes, errors, wanted
        )
        heads.sort(key=lambda pair: pair[0])
        tasks: list[Task] = []
        for file, _ in heads:
            task = parsed.get(file)
            if task is None:
                try:
                    task = self._load(file, _parse_task, cache=False)
                except CorruptData as exc:  # changed since the scan, and now unreadable
                    if errors is not None:
                        errors.append(exc)
                    continue
            if task is not None and (wanted is None or task.status in wanted):
                tasks.append(task)
        return tasks

    def create_task(self, task: Task) -> None:
        task = self.check_task(task)
        name = f"task-{task.id}"
        with self.d.lock(name):
            if os.path.lexists(self.d.path(name + ".md")):
                # An unreadable file is reported (CorruptData), never replaced.
                self._load(name + ".md", _parse_task)
                raise AlreadyExists(f"task {task.id!r} already exists", task=task.id)
            raw = self._render_task(task).encode("utf-8")
            self.d.write(name + ".md", raw)
            self.d.cache.drop(name + ".md")
            self._noted(name, task, raw)

    def update_task(self, task_id: str, fn: TaskFn) -> Task:
        self.check_key("task", task_id)
        task: Task = self._update(
            f"task-{task_id}",
            _parse_task,
            self._render_task,
            self._task_fn(task_id, fn),
            written=self._noted,
        )
        return task

    def try_update_task(self, task_id: str, fn: TaskFn) -> Task | None:
        self.check_key("task", task_id)
        got = self._update(
            f"task-{task_id}",
            _parse_task,
            self._render_task,
            self._task_fn(task_id, fn),
            wait=False,
            written=self._noted,
        )
        if got is _BUSY:
            return None
        task: Task = got
        return task

    def _task_fn(self, task_id: str, fn: TaskFn) -> Callable[[Task | None], Task | None]:
        def apply(current: Task | None) -> Task | None:
            if current is None:
                raise NotFound(f"no task {task_id!r} in {self.root}", task=task_id)
            new = fn(current)
            return None if new is None else self.updated_task(task_id, new)

        return apply

    def _noted(self, name: str, task: Task, raw: bytes) -> None:
        from .codec.task import written_head

        self.d.heads.put(name + ".md", raw, written_head(task))
        if self._index is not None:
            self._index.note(name + ".md", task, raw)

    def archive_task(self, task_id: str, check: Callable[[Task], bool]) -> bool:
        return self._archive("task", self.check_key("task", task_id), _parse_task, check)

    def list_archived_tasks(
        self, *, errors: list[CorruptData] | None = None
    ) -> list[tuple[str, Task]]:
        from .codec.task import parse_task  # archived files may carry a -stamp suffix

        return self._archived("task", parse_task, errors)

    def next_id(self, kind: str) -> int:
        self.check_key("counter", kind)
        with self.d.lock(f"counter-{kind}"):
            value = self._counter(kind) + 1
            self.d.ensure(STATE)
            self.d.write(os.path.join(STATE, f"counter-{kind}"), f"{value}\n")
            return value

    def _counter(self, kind: str) -> int:
        path = os.path.join(STATE, f"counter-{kind}")
        text = self.d.read_text(path)
        try:
            return int(text.strip()) if text and text.strip() else 0
        except ValueError:
            raise CorruptData(self.d.path(path), 1, "counter is not a number") from None

    def counters(self) -> dict[str, int]:
        from ...core.validate import is_valid_name

        out: dict[str, int] = {}
        for file in self.d.names(STATE, regular=False):  # a planted FIFO is reported
            kind = file[len("counter-") :]
            if file.startswith("counter-") and is_valid_name(kind):
                out[kind] = self._counter(kind)
        return out

    def set_counter(self, kind: str, value: int) -> None:
        value = self.check_counter(kind, value)
        with self.d.lock(f"counter-{kind}"):
            if self._counter(kind) < value:
                self.d.ensure(STATE)
                self.d.write(os.path.join(STATE, f"counter-{kind}"), f"{value}\n")

    # -- agents -----------------------------------------------------------------------------
    def get_agent(self, name: str) -> Agent:
        self.check_key("agent", name)
        agent: Agent | None = self._load(f"agent-{name}.md", _parse_agent)
        if agent is None:
            raise NotFound(f"no agent {name!r} in {self.root}", agent=name)
        return agent

    def list_agents(self, *, errors: list[CorruptData] | None = None) -> list[Agent]:
        agents: list[Agent] = self._scan("agent-", _parse_agent, errors)
        return agents

    def update_agent(self, name: str, fn: AgentFn, *, durable: bool = True) -> Agent | None:
        from .codec.agent import render_agent

        self.check_key("agent", name)

        def apply(current: Agent | None) -> Agent | None:
            new = fn(current)
            return None if new is None else self.updated_agent(name, new)

        agent: Agent | None = self._update(
            f"agent-{name}",
            _parse_agent,
            lambda a: render_agent(a, self.clock()),
            apply,
            durable=durable,
        )
        return agent

    def archive_agent(self, name: str, check: Callable[[Agent], bool]) -> bool:
        return self._archive("agent", self.check_key("agent", name), _parse_agent, check)

    def list_archived_agents(
        self, *, errors: list[CorruptData] | None = None
    ) -> list[tuple[str, Agent]]:
        return self._archived("agent", _parse_archived_agent, errors)

    def import_archived(self, kind: str, name: str, record: Task | Agent) -> None:
        from ...core.models import Task
        from .codec.agent import render_agent
        from .codec.task import render_task

        checked = self.check_archived(kind, name, record)
        text = (
            render_task(checked, self.clock())
            if isinstance(checked, Task)
            else render_agent(checked, self.clock())
        )
        self.d.ensure(ARCHIVE)
        self.d.write(os.path.join(ARCHIVE, f"{kind}-{name}.md"), text)

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
        from .codec.context import render_context

        doc = self.check_context(doc)

        def put(current: ContextDoc | None) -> ContextDoc:
            self.check_context_slot(current, doc)
            return doc

        self._update(
            f"context-{self.context_name(doc.project, doc.domain)}",
            _parse_context,
            render_context,
            put,
        )

    def get_context(self, project: str, domain: str) -> ContextDoc:
        file = f"context-{self.context_name(project, domain)}.md"
        doc: ContextDoc | None = self._load(file, _parse_context)
        if doc is None or (doc.project, doc.domain) != (project, domain):
            raise NotFound(f"no context for project {project!r}, domain {domain!r}")
        return doc

    def list_contexts(self, *, errors: list[CorruptData] | None = None) -> list[ContextDoc]:
        docs: list[ContextDoc] = self._scan("context-", _parse_context, errors)
        return docs

    # -- documents --------------------------------------------------------------------------
    def put_document(self, name: str, data: dict[str, Any]) -> None:
        from .codec.document import render_document

        data = self.document_data(name, data)
        with self.d.lock(name):
            self.d.write(name + ".md", render_document(name, data))

    def get_document(self, name: str) -> dict[str, Any] | None:
        from .codec.document import parse_document

        self.check_document(name)
        text = self.d.read_text(name + ".md")
        return None if text is None else parse_document(text, self.d.path(name + ".md"))

    def list_documents(self, *, errors: list[CorruptData] | None = None) -> list[str]:
        out: list[str] = []
        for file in self.d.names(regular=False):  # a planted FIFO is reported by its reader
            if not (file.startswith("metrics-") and file.endswith(".md")):
                continue
            if self.is_document_name(file[:-3]):
                out.append(file[:-3])
            elif errors is not None:
                errors.append(CorruptData(self.d.path(file), 1, "document file name is not valid"))
        return out

    # -- file reservations ------------------------------------------------------------------
    def _parse_reservations(self, text: str, path: str) -> list[Reservation]:
        from .codec.reservation import parse_reservations

        return parse_reservations(text, path)

    def get_reservations(self) -> list[Reservation]:
        table: list[Reservation] | None = self._load(RESERVATIONS, self._parse_reservations)
        return [] if table is None else table

    def update_reservations(self, fn: ReservationFn) -> list[Reservation]:
        """Under the table's lock: read, ``fn``, then write (or remove the file when the table
        becomes empty)."""
        from .codec.reservation import render_reservations

        with self.d.lock("reservations"):
            before = self.d.read_bytes(RESERVATIONS)
            current: list[Reservation] | None = self._parsed(
                RESERVATIONS, before, self._parse_reservations
            )
            got = fn([] if current is None else current)
            if got is None:  # "no change": the table as stored (a copy from the cache)
                again: list[Reservation] | None = self._parsed(
                    RESERVATIONS, before, self._parse_reservations
                )
                return [] if again is None else again
            new = self.check_reservations(got)
            self.d.cache.drop(RESERVATIONS)
            if new:
                self.d.write(RESERVATIONS, render_reservations(new, self.clock()))
            elif before is not None:
                try:
                    os.unlink(self.d.path(RESERVATIONS))
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise BackendUnavailable(
                        f"cannot remove {RESERVATIONS}: {exc.strerror}"
                    ) from exc
            return new

    # -- the workspace as a whole -----------------------------------------------------------
    def identity(self) -> tuple[str, ...]:
        return ("dir", os.path.realpath(self.root))

    def prepare(self) -> None:
        self.d.prepare()

    def _record_files(self) -> list[str]:
        """The files (relative paths) that hold records, cursors and counters: every entry
        under such a name, a FIFO or a link included (as a corrupt file is: its reader reports
        it, SPEC section 16)."""
        names = self.d.names(regular=False)
        out = [n for n in names if n.startswith(_RECORD_PREFIXES) and n.endswith(".md")]
        out += [f"{ARCHIVE}/{n}" for n in self.d.names(ARCHIVE, regular=False)]
        out += [
            f"{STATE}/{n}"
            for n in self.d.names(STATE, regular=False)
            if n.startswith(("counter-", "cursors-"))
        ]
        return out

    def record_names(self) -> list[str]:
        """The canonical names every backend gives (``task-{id}``, ``archive/task-{name}``,
        ``events-{channel}`` for a channel's live log and archive files alike,
        ``cursors-{channel}``, ``counter-{kind}``, a document's name), not file names."""
        out: set[str] = set()
        for file in self._record_files():
            if file.startswith(f"{STATE}/"):
                out.add(file[len(STATE) + 1 :].removesuffix(".json"))
                continue
            m = _ARCHIVED_EVENTS.fullmatch(file[len(ARCHIVE) + 1 :])
            if file.startswith(f"{ARCHIVE}/events-") and m:
                out.add(f"events-{m.group(1)}")
            else:
                out.add(file.removesuffix(".md"))
        return sorted(out)

    def clear(self) -> int:
        count = len(self.record_names())
        for name in [*self._record_files(), INDEX]:
            try:
                os.unlink(self.d.path(name))
            except FileNotFoundError:
                continue
            except IsADirectoryError:
                raise CorruptData(self.d.path(name), 1, "is a directory, not a file") from None
            except OSError as exc:
                raise BackendUnavailable(f"cannot remove {name}: {exc.strerror}") from exc
        self._index = None
        self.d.cache.clear()
        self.d.heads.clear()
        return count

    def check_storage(self) -> list[Violation]:
        """The files' own checks (:mod:`.checks`), and the reservation table, which no other
        check of the doctor reads."""
        from ..base import Violation as Found
        from . import checks

        found = checks.check_files(self.d)
        try:
            self.get_reservations()
        except CorruptData as exc:
            found.append(Found("corrupt", RESERVATIONS, exc.message, file=exc.path))
        return found

    def repair_storage(self, found: Sequence[Violation]) -> list[str]:
        from . import checks

        return checks.repair(found)

    def fresh(self) -> MarkdownStore:
        return MarkdownStore(
            self.root, durable=False, lock_timeout=self.lock_timeout, clock=self.clock
        )

    def index_granularity(self) -> int:
        """The file system's mtime granularity (ns) as the task index has learnt it."""
        return self._task_index().granularity

    def rebuild_index(self) -> bool:
        """Forget the task head index (on disk and in this process); the next listing
        rebuilds it from the files. Returns whether there was one on disk."""
        self._index = None
        try:
            os.unlink(self.d.path(INDEX))
        except FileNotFoundError:
            return False
        return True

    def remove_orphans(self, *, min_age: float, dry_run: bool = False) -> list[str]:
        """Temp files (``.name.tmp-PID-XXXX``) of atomic writes whose writer died
        (:func:`.checks.orphan_temp_files`); a live writer's file is never touched."""
        from . import checks

        found = checks.orphan_temp_files(self.d, min_age=min_age)
        return found if dry_run else checks.remove(found)

    def record_path(self, kind: str, key: str) -> str | None:
        pattern = _RECORD_FILES.get(kind)
        return None if pattern is None else self.d.path(pattern.format(key))

    # -- change feed ------------------------------------------------------------------------
    def watch(self, *, timeout: float | None = None) -> Generator[list[Change], None, None]:
        from .watch import watch

        return watch(self.root, timeout)

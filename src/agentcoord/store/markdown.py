"""The markdown backend: one human-readable file per record in ``.claude/coordination/``.

Every change is a locked read-modify-write: ``flock`` the record's lock file in ``.locks/``, read
and parse the file, apply the domain's function, render, and atomically replace the file. A file
that does not parse is reported (:class:`CorruptData`, ``path:line: reason``) and never written.

Event logs, cursors and the change feed live in :mod:`.md_events` and :mod:`.md_watch`.
"""

from __future__ import annotations

import os
import re
import time

from ..errors import AlreadyExists, BackendUnavailable, Conflict, CorruptData, NotFound
from ..procs import pid_alive
from .base import Store
from .fsutil import TMP_MARK, FileLock, atomic_write, ensure_dir, fsync_dir, read_text
from .md_events import EventFiles
from .md_watch import WatchFiles

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from ..models import Agent, ContextDoc, Task, TaskHead
    from .base import AgentFn, TaskFn
    from .md_index import TaskIndex

LOCKS = ".locks"
_BUSY = object()  # _update's answer when wait=False and the record is locked
STATE = ".state"
ARCHIVE = "archive"


class MarkdownStore(EventFiles, WatchFiles, Store):
    """Records as seed-format markdown files in ``root`` (the coordination directory)."""

    def __init__(
        self,
        root: str,
        *,
        durable: bool = True,
        lock_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = os.path.abspath(root)
        self.location = self.root
        self.durable = durable
        self.lock_timeout = lock_timeout
        self.clock = clock
        self._dirs_ready = False

    # -- paths and primitives ---------------------------------------------------------------
    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def lock(self, name: str) -> FileLock:
        if not self._dirs_ready:
            ensure_dir(os.path.join(self.root, LOCKS))
            self._dirs_ready = True
        return FileLock(os.path.join(self.root, LOCKS, name + ".lock"), self.lock_timeout)

    def write(self, name: str, text: str, *, durable: bool = True) -> None:
        atomic_write(self.path(name), text, durable=self.durable and durable)

    def _load(self, name: str, parse: Callable[[str, str], Any]) -> Any:
        path = self.path(name)
        text = read_text(path)
        if text is None:
            return None
        return parse(text, path)

    def _update(
        self,
        name: str,
        parse: Callable[[str, str], Any],
        render: Callable[[Any], str],
        fn: Callable[[Any], Any],
        *,
        wait: bool = True,
        durable: bool = True,
        written: Callable[[str, Any, str], None] | None = None,
    ) -> Any:
        lock = self.lock(name)
        if not lock.acquire(blocking=wait):
            return _BUSY
        try:
            current = self._load(name + ".md", parse)
            new = fn(current)
            if new is None:  # "no change"; a mutated-and-returned record is still written
                return current
            text = render(new)
            self.write(name + ".md", text, durable=durable)
            if written is not None:  # still under the lock: nobody else has written since
                written(name, new, text)
            return new
        finally:
            lock.release()

    def _scan(
        self,
        prefix: str,
        parse: Callable[[str, str], Any],
        errors: list[CorruptData] | None,
    ) -> list[Any]:
        out: list[Any] = []
        try:
            entries = os.scandir(self.root)
        except FileNotFoundError:
            return out
        with entries:
            names = sorted(
                e.name for e in entries if e.name.startswith(prefix) and e.name.endswith(".md")
            )
        for name in names:
            try:
                record = self._load(name, parse)
            except CorruptData as exc:
                if errors is not None:
                    errors.append(exc)
                continue
            if record is not None:
                out.append(record)
        return out

    def _archive(
        self, name: str, parse: Callable[[str, str], Any], check: Callable[[Any], bool]
    ) -> bool:
        with self.lock(name):
            record = self._load(name + ".md", parse)
            if record is None or not check(record):
                return False
            archive = self.path(ARCHIVE)
            ensure_dir(archive)
            target = os.path.join(archive, name + ".md")
            if os.path.exists(target):  # keep both: an id can be reused after archiving
                stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.clock()))
                target = os.path.join(archive, f"{name}-{stamp}.md")
            os.replace(self.path(name + ".md"), target)
            if self.durable:
                fsync_dir(archive)
                fsync_dir(self.root)
            return True

    # -- tasks ------------------------------------------------------------------------------
    def _render_task(self, task: Task) -> str:
        from ..codec.task import render_task

        return render_task(task, self.clock())

    def get_task(self, task_id: str) -> Task:
        task = self._load_task_file(f"task-{task_id}.md")
        if task is None:
            raise NotFound(f"no task {task_id!r} in {self.root}", task=task_id)
        return task

    @staticmethod
    def _parse_task(text: str, path: str) -> Task:
        from ..codec.task import parse_task

        task = parse_task(text, path)
        expected = os.path.basename(path)[len("task-") : -len(".md")]
        if task.id != expected:
            raise CorruptData(
                path, 1, f"file name says task {expected!r} but **Task ID** is {task.id!r}"
            )
        return task

    def _task_bytes(self, name: str) -> bytes | None:
        try:
            with open(self.path(name), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BackendUnavailable(f"cannot read {self.path(name)}: {exc.strerror}") from exc

    def _task_from_bytes(self, name: str, raw: bytes) -> Task:
        return self._parse_task(raw.decode("utf-8", errors="replace"), self.path(name))

    def _load_task_file(self, name: str) -> Task | None:
        task: Task | None = self._load(name, self._parse_task)
        return task

    def _task_index(self) -> TaskIndex:
        index: TaskIndex | None = self.__dict__.get("_index")
        if index is None:
            from .md_index import TaskIndex

            index = self._index = TaskIndex(self.root, self.path(STATE))
        return index

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
        tasks: list[Task] = []
        for name, _ in heads:
            task = parsed.get(name)
            if task is None:
                try:
                    task = self._load_task_file(name)
                except CorruptData as exc:  # changed since the scan, and now unreadable
                    if errors is not None:
                        errors.append(exc)
                    continue
            if task is not None and (wanted is None or task.status in wanted):
                tasks.append(task)
        return tasks

    def create_task(self, task: Task) -> None:
        name = f"task-{task.id}"
        with self.lock(name):
            if os.path.lexists(self.path(name + ".md")):
                # An unreadable file is reported (CorruptData), never replaced.
                self._load(name + ".md", self._parse_task)
                raise AlreadyExists(f"task {task.id!r} already exists", task=task.id)
            text = self._render_task(task)
            self.write(name + ".md", text)
            self._noted(name, task, text)

    def update_task(self, task_id: str, fn: TaskFn) -> Task:
        def apply(current: Task | None) -> Task | None:
            if current is None:
                raise NotFound(f"no task {task_id!r} in {self.root}", task=task_id)
            return fn(current)

        task: Task = self._update(
            f"task-{task_id}", self._parse_task, self._render_task, apply, written=self._noted
        )
        return task

    def drop_index(self) -> bool:
        """Forget the task head index (on disk and in this process); the next listing
        rebuilds it from the files. Returns whether there was one on disk."""
        self.__dict__.pop("_index", None)
        try:
            os.unlink(self.path(os.path.join(STATE, "index-task.json")))
        except FileNotFoundError:
            return False
        return True

    def _noted(self, name: str, task: Task, text: str) -> None:
        index: TaskIndex | None = self.__dict__.get("_index")
        if index is not None:
            index.note(name + ".md", task, text.encode("utf-8"))

    def try_update_task(self, task_id: str, fn: TaskFn) -> Task | None:
        def apply(current: Task | None) -> Task | None:
            if current is None:
                raise NotFound(f"no task {task_id!r} in {self.root}", task=task_id)
            return fn(current)

        got = self._update(
            f"task-{task_id}",
            self._parse_task,
            self._render_task,
            apply,
            wait=False,
            written=self._noted,
        )
        if got is _BUSY:
            return None
        task: Task = got
        return task

    def archive_task(self, task_id: str, check: Callable[[Task], bool]) -> bool:
        return self._archive(f"task-{task_id}", self._parse_task, check)

    def next_id(self, kind: str) -> int:
        ensure_dir(self.path(STATE))
        name = f"counter-{kind}"
        with self.lock(name):
            path = os.path.join(STATE, name)
            text = read_text(self.path(path))
            try:
                value = int(text.strip()) if text and text.strip() else 0
            except ValueError:
                raise CorruptData(self.path(path), 1, "counter is not a number") from None
            value += 1
            atomic_write(self.path(path), f"{value}\n", durable=self.durable)
            return value

    # -- agents -----------------------------------------------------------------------------
    def get_agent(self, name: str) -> Agent:
        from ..codec.agent import parse_agent

        agent: Agent | None = self._load(f"agent-{name}.md", parse_agent)
        if agent is None:
            raise NotFound(f"no agent {name!r} in {self.root}", agent=name)
        return agent

    def list_agents(self, *, errors: list[CorruptData] | None = None) -> list[Agent]:
        from ..codec.agent import parse_agent

        agents: list[Agent] = self._scan("agent-", parse_agent, errors)
        return agents

    def update_agent(self, name: str, fn: AgentFn, *, durable: bool = True) -> Agent | None:
        from ..codec.agent import parse_agent, render_agent

        agent: Agent | None = self._update(
            f"agent-{name}",
            parse_agent,
            lambda a: render_agent(a, self.clock()),
            fn,
            durable=durable,
        )
        return agent

    def archive_agent(self, name: str, check: Callable[[Agent], bool]) -> bool:
        from ..codec.agent import parse_agent

        return self._archive(f"agent-{name}", parse_agent, check)

    # -- context ----------------------------------------------------------------------------
    def put_context(self, doc: ContextDoc) -> None:
        from ..codec.context import parse_context, render_context

        def put(current: ContextDoc | None) -> ContextDoc:
            if current is not None and (current.project, current.domain) != (
                doc.project,
                doc.domain,
            ):
                raise Conflict(
                    f"context-{doc.project}-{doc.domain}.md already holds project "
                    f"{current.project!r}, domain {current.domain!r}; choose other names"
                )
            return doc

        self._update(f"context-{doc.project}-{doc.domain}", parse_context, render_context, put)

    def get_context(self, project: str, domain: str) -> ContextDoc:
        from ..codec.context import parse_context

        doc: ContextDoc | None = self._load(f"context-{project}-{domain}.md", parse_context)
        if doc is None or (doc.project, doc.domain) != (project, domain):
            raise NotFound(f"no context for project {project!r}, domain {domain!r}")
        return doc

    def list_contexts(self, *, errors: list[CorruptData] | None = None) -> list[ContextDoc]:
        from ..codec.context import parse_context

        docs: list[ContextDoc] = self._scan("context-", parse_context, errors)
        return docs

    # -- documents --------------------------------------------------------------------------
    def put_document(self, name: str, text: str) -> None:
        with self.lock(name):
            self.write(name + ".md", text)

    def get_document(self, name: str) -> str | None:
        return read_text(self.path(name + ".md"))

    # -- maintenance ------------------------------------------------------------------------
    def remove_orphans(self, *, min_age: float, dry_run: bool = False) -> list[str]:
        """Temp files (``.name.tmp-PID-XXXX``) of atomic writes whose writer died: older than
        ``min_age`` and their pid is gone (a live writer's file is never touched)."""
        now = time.time()
        out = []
        for sub in ("", ARCHIVE, STATE):
            directory = self.path(sub) if sub else self.root
            try:
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                m = _TMP.fullmatch(entry.name)
                if m is None:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if now - st.st_mtime < min_age or pid_alive(int(m.group(1))):
                    continue
                out.append(entry.path)
                if not dry_run:
                    try:
                        os.unlink(entry.path)
                    except FileNotFoundError:
                        pass
        return sorted(out)

    def record_path(self, kind: str, key: str) -> str | None:
        pattern = _RECORD_FILES.get(kind)
        return None if pattern is None else self.path(pattern.format(key))


_TMP = re.compile(r"\..+" + re.escape(TMP_MARK) + r"(\d+)-[0-9a-f]+")
_RECORD_FILES = {
    "task": "task-{}.md",
    "agent": "agent-{}.md",
    "event": "events-{}.md",
    "context": "context-{}.md",
    "metrics": "metrics-{}.md",
}

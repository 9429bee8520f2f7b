"""``coord migrate``: copy a whole workspace from one store to another, losslessly.

Copied with every field: live and archived tasks and agents (under the same archive names),
every event channel with its seqs and its live/archived split, consumer cursors, contexts,
documents (``metrics-performance``) and the id counters (see ``docs/redis.md``).

Live records go through the :class:`~agentcoord.store.base.Store` interface; what it does not
enumerate (archives, cursors, counters, documents, the live/archive split) goes through a *side*
per backend: :class:`_RedisSide` (the Redis store's migration methods) and :class:`_MarkdownSide`
(the directory, through the codecs and ``fsutil.atomic_write`` like the store itself).

The source is only read. Everything is read and checked (an unreadable record: exit 6) before
anything is written; the target must be empty unless ``force`` (which removes its records).
"""

from __future__ import annotations

import os
import re

from .errors import AlreadyExists, CorruptData, InvalidInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .models import Agent, ContextDoc, Event, Task
    from .store.base import Store
    from .store.markdown import MarkdownStore
    from .store.redis_store import RedisStore

#: Events per import call: bounds the size of one Redis script call or one file rewrite.
BATCH = 1000
KINDS = ("task", "agent")
_ARCHIVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ARCHIVED_EVENTS = re.compile(r"events-(.+)-\d{4}-\d{2}-\d{2}\.md")
#: Files of a markdown workspace that hold records (``force`` removes these, nothing else).
_RECORD_PREFIXES = ("task-", "agent-", "events-", "context-", "metrics-")


class Channel:
    """One event channel: every event (oldest first), how many of the newest are in the live
    log, and its last seq."""

    def __init__(self, events: list[Event], live: int, last_seq: int) -> None:
        self.events, self.live, self.last_seq = events, live, last_seq


class Snapshot:
    """Everything a workspace holds, read before anything is written."""

    def __init__(self) -> None:
        self.tasks: list[Task] = []
        self.agents: list[Agent] = []
        self.archived: dict[str, list[tuple[str, Any]]] = {k: [] for k in KINDS}
        self.channels: dict[str, Channel] = {}
        self.cursors: dict[str, dict[str, int]] = {}
        self.contexts: list[ContextDoc] = []
        self.documents: dict[str, str] = {}
        self.counters: dict[str, int] = {}

    def names(self) -> dict[str, list[str]]:
        """What would be copied, by kind (for ``--dry-run`` and the report)."""
        return {
            "tasks": sorted(t.id for t in self.tasks),
            "agents": sorted(a.name for a in self.agents),
            "archived_tasks": [n for n, _ in self.archived["task"]],
            "archived_agents": [n for n, _ in self.archived["agent"]],
            "channels": list(self.channels),
            "cursors": [f"{ch}/{c}" for ch, cs in self.cursors.items() for c in cs],
            "contexts": [f"{d.project}-{d.domain}" for d in self.contexts],
            "documents": list(self.documents),
            "counters": [f"{k}={v}" for k, v in self.counters.items()],
        }

    def counts(self) -> dict[str, int]:
        counts = {kind: len(names) for kind, names in self.names().items()}
        counts["events"] = sum(len(c.events) for c in self.channels.values())
        return counts


# -- the two backends' extra parts ------------------------------------------------------------
#: The Redis store's migration methods under the names :class:`_MarkdownSide` uses.
_REDIS_NAMES = {
    "channels": "list_channels",
    "archived": "archived_records",
    "live_count": "live_event_count",
    "cursors": "list_cursors",
    "documents": "list_documents",
    "present": "workspace_keys",
    "prepare": "ping",
    "clear": "drop_workspace",
}


class _RedisSide:
    """The Redis store's migration methods under the names of :class:`_MarkdownSide`."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, _REDIS_NAMES.get(name, name))


class _MarkdownSide:
    """The directory parts of a markdown workspace that the Store interface does not list."""

    def __init__(self, store: MarkdownStore) -> None:
        self.store = store
        self.root = store.root

    def _names(self, sub: str = "") -> list[str]:
        try:
            with os.scandir(os.path.join(self.root, sub)) as entries:
                return sorted(e.name for e in entries if e.is_file(follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _write(self, name: str, text: str) -> None:
        from .store.fsutil import atomic_write, ensure_dir

        ensure_dir(os.path.dirname(os.path.join(self.root, name)))
        atomic_write(os.path.join(self.root, name), text, durable=self.store.durable)

    def identity(self) -> tuple[str, ...]:
        return ("dir", os.path.realpath(self.root))

    def channels(self) -> list[str]:
        from .names import is_valid_name

        found = set(self.store.list_channels())
        for name in self._names("archive"):  # a channel whose live file was deleted
            m = _ARCHIVED_EVENTS.fullmatch(name)
            if m and is_valid_name(m.group(1)):
                found.add(m.group(1))
        return sorted(found)

    def archived(self, kind: str, errors: list[CorruptData]) -> list[tuple[str, Any]]:
        from .codec.agent import parse_agent
        from .codec.task import parse_task
        from .store.fsutil import read_text

        parse = parse_task if kind == "task" else parse_agent
        out: list[tuple[str, Any]] = []
        for file in self._names("archive"):
            if not (file.startswith(kind + "-") and file.endswith(".md")):
                continue
            name = file[len(kind) + 1 : -3]
            path = os.path.join(self.root, "archive", file)
            if not _ARCHIVE_NAME.fullmatch(name):
                errors.append(CorruptData(path, 1, "archive file name is not a valid name"))
                continue
            text = read_text(path)
            try:
                if text is not None:
                    out.append((name, parse(text, path)))
            except CorruptData as exc:
                errors.append(exc)
        return out

    def import_archived(self, kind: str, name: str, record: Any) -> None:
        from .codec.agent import render_agent
        from .codec.task import render_task

        if kind not in KINDS or not _ARCHIVE_NAME.fullmatch(name):
            raise InvalidInput(f"invalid archive entry {kind} {name!r}")
        render = render_task if kind == "task" else render_agent
        self._write(f"archive/{kind}-{name}.md", render(record, self.store.clock()))

    def _live(self, channel: str) -> Any:
        from .codec.event import parse_events
        from .store.fsutil import read_text

        path = os.path.join(self.root, f"events-{channel}.md")
        text = read_text(path)
        return None if text is None else parse_events(text, path, channel)

    def live_count(self, channel: str) -> int:
        log = self._live(channel)
        return 0 if log is None else len(log.events)

    def raise_last_seq(self, channel: str, seq: int) -> None:
        from .codec.event import EventLog, render_events

        with self.store.lock(f"events-{channel}"):
            log = self._live(channel) or EventLog([], 0)
            if log.last_seq < seq:
                now = self.store.clock()
                text = render_events(
                    channel, log.events, last_seq=seq, updated=now, archive=log.archive
                )
                self._write(f"events-{channel}.md", text)

    def _state(self, prefix: str, suffix: str = "") -> list[tuple[str, str, str]]:
        """(name, path, text) of the ``.state/{prefix}{name}{suffix}`` files."""
        from .names import is_valid_name
        from .store.fsutil import read_text

        out = []
        for file in self._names(".state"):
            name = file[len(prefix) : len(file) - len(suffix)]
            if file.startswith(prefix) and file.endswith(suffix) and is_valid_name(name):
                path = os.path.join(self.root, ".state", file)
                out.append((name, path, (read_text(path) or "").strip()))
        return out

    def cursors(self) -> dict[str, dict[str, int]]:
        import json

        out: dict[str, dict[str, int]] = {}
        for channel, path, text in self._state("cursors-", ".json"):
            try:
                consumers = json.loads(text or "{}")
            except ValueError:
                consumers = None
            if not isinstance(consumers, dict):
                raise CorruptData(path, 1, "cursor file must map consumer names to seqs")
            if consumers:  # get_cursor checks each name and value
                out[channel] = {c: self.store.get_cursor(channel, c) for c in sorted(consumers)}
        return out

    def counters(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for kind, path, text in self._state("counter-"):
            try:
                out[kind] = int(text) if text else 0
            except ValueError:
                raise CorruptData(path, 1, "counter is not a number") from None
        return out

    def set_counter(self, kind: str, value: int) -> None:
        from .names import check_name

        check_name(kind, "counter")
        with self.store.lock(f"counter-{kind}"):
            if self.counters().get(kind, 0) < value:
                self._write(f".state/counter-{kind}", f"{int(value)}\n")

    def documents(self) -> list[str]:
        return [n[:-3] for n in self._names() if n.startswith("metrics-") and n.endswith(".md")]

    def present(self) -> list[str]:
        """The record files here (relative names), which make the directory non-empty."""
        out = [n for n in self._names() if n.startswith(_RECORD_PREFIXES) and n.endswith(".md")]
        out += [f"archive/{n}" for n in self._names("archive")]
        out += [
            f".state/{n}" for n in self._names(".state") if n.startswith(("counter-", "cursors-"))
        ]
        return out

    def prepare(self) -> None:
        from .workspace import init_workspace

        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise InvalidInput(f"{self.root} exists and is not a directory")
        init_workspace(self.root)  # README.md, .gitkeep, archive/ (idempotent)

    def clear(self) -> int:
        names = [*self.present(), ".state/index-task.json"]
        removed = 0
        for name in names:
            try:
                os.unlink(os.path.join(self.root, name))
                removed += name != ".state/index-task.json"
            except FileNotFoundError:
                continue
            except OSError as exc:
                from .errors import BackendUnavailable

                raise BackendUnavailable(f"cannot remove {name}: {exc.strerror}") from exc
        return removed


def side(store: Store) -> _RedisSide | _MarkdownSide:
    from .store.markdown import MarkdownStore

    if isinstance(store, MarkdownStore):
        return _MarkdownSide(store)
    if hasattr(store, "drop_workspace"):
        return _RedisSide(store)  # type: ignore[arg-type]
    raise InvalidInput(f"cannot migrate {type(store).__name__} stores")


# -- reading and writing ----------------------------------------------------------------------
def read_snapshot(store: Store) -> Snapshot:
    """Everything in ``store``; :class:`CorruptData` (exit 6) if any record is unreadable,
    because a migration that skipped it would lose it."""
    extra = side(store)
    errors: list[CorruptData] = []
    snap = Snapshot()
    snap.tasks = store.list_tasks(errors=errors)
    snap.agents = store.list_agents(errors=errors)
    for kind in KINDS:
        snap.archived[kind] = extra.archived(kind, errors)
    snap.contexts = store.list_contexts(errors=errors)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        first = errors[0]
        raise CorruptData(first.path, first.line, f"{first.reason}{more}; fix it, then migrate")
    for channel in extra.channels():
        events = store.read_events(channel)
        live = min(extra.live_count(channel), len(events))
        snap.channels[channel] = Channel(events, live, store.last_seq(channel))
    snap.cursors = extra.cursors()
    for name in extra.documents():
        text = store.get_document(name)
        if text is not None:
            snap.documents[name] = text
    snap.counters = extra.counters()
    return snap


def check_target(source: Store, target: Store, *, force: bool) -> list[str]:
    """The target's records (empty when it is empty); refuse the source itself, and a
    non-empty target without ``force``."""
    if side(source).identity() == side(target).identity():
        raise InvalidInput(f"the target {target.location} is the workspace itself")
    present = side(target).present()
    if present and not force:
        shown = ", ".join(present[:5]) + (f" and {len(present) - 5} more" * (len(present) > 5))
        raise AlreadyExists(
            f"the target {target.location} is not empty ({shown}); "
            "pass --force to replace its contents",
            target=target.location,
            records=len(present),
        )
    return present


def _replace_with(agent: Agent) -> Callable[[Agent | None], Agent]:
    return lambda _current: agent


def write_snapshot(snap: Snapshot, target: Store) -> None:
    """Write ``snap`` into the (empty) ``target``."""
    extra = side(target)
    for doc in snap.contexts:
        target.put_context(doc)
    for name, text in snap.documents.items():
        target.put_document(name, text)
    for agent in snap.agents:
        target.update_agent(agent.name, _replace_with(agent))
    for task in snap.tasks:
        target.create_task(task)
    for kind in KINDS:
        for name, record in snap.archived[kind]:
            extra.import_archived(kind, name, record)
    import_events = getattr(target, "import_events", None)
    for name, channel in snap.channels.items():
        if import_events is None:
            raise InvalidInput(f"{type(target).__name__} cannot import events")
        split = len(channel.events) - channel.live
        old, live = channel.events[:split], channel.events[split:]
        # The archived part first with keep=0 (straight to the archive), then the live part:
        # the live log keeps exactly the events it had.
        for i in range(0, len(old), BATCH):
            import_events(name, old[i : i + BATCH], keep=0)
        if live:
            import_events(name, live, keep=len(live))
        if target.last_seq(name) < channel.last_seq:
            extra.raise_last_seq(name, channel.last_seq)
    for name, consumers in snap.cursors.items():
        for consumer, seq in consumers.items():
            target.advance_cursor(name, consumer, seq)
    for kind, value in snap.counters.items():
        extra.set_counter(kind, value)


def verify(snap: Snapshot, target: Store) -> None:
    """Cheap checks that everything landed (counts and seqs); a mismatch means someone wrote to
    the target during the migration."""
    checks = [
        ("tasks", len(target.list_task_heads()), len(snap.tasks)),
        ("agents", len(target.list_agents()), len(snap.agents)),
        ("contexts", len(target.list_contexts()), len(snap.contexts)),
    ]
    checks += [(f"{n} last seq", target.last_seq(n), c.last_seq) for n, c in snap.channels.items()]
    wrong = [f"{what} {got}, not {want}" for what, got, want in checks if got != want]
    if wrong:
        from .errors import Conflict

        raise Conflict(
            f"the target {target.location} changed during the migration ("
            + "; ".join(wrong)
            + "); stop every agent using it and rerun with --force"
        )


class Plan:
    """A checked migration: what will be copied, and what ``force`` will replace."""

    def __init__(self, source: Store, target: Store, snap: Snapshot, present: list[str]) -> None:
        self.source = source
        self.target = target
        self.snap = snap
        self.present = present

    def report(self, *, dry_run: bool) -> dict[str, Any]:
        return {
            "source": self.source.location,
            "target": self.target.location,
            "dry_run": dry_run,
            "counts": self.snap.counts(),
            "names": self.snap.names(),
            "replaced": len(self.present),
        }

    def execute(self) -> None:
        """Write: from here on a failure can leave the target partly written."""
        extra = side(self.target)
        extra.prepare()
        if self.present:
            extra.clear()
        write_snapshot(self.snap, self.target)
        verify(self.snap, self.target)


def plan(source: Store, target: Store, *, force: bool = False) -> Plan:
    """Read the source and check the target; writes nothing."""
    snap = read_snapshot(source)
    return Plan(source, target, snap, check_target(source, target, force=force))


def migrate(
    source: Store, target: Store, *, dry_run: bool = False, force: bool = False
) -> dict[str, Any]:
    """Copy everything from ``source`` to ``target``; returns the report (counts, names, what
    ``force`` removed). ``dry_run`` reads and checks but writes nothing."""
    checked = plan(source, target, force=force)
    if not dry_run:
        checked.execute()
    return checked.report(dry_run=dry_run)

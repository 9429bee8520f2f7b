"""``coord migrate``: copy a whole workspace from one store to another, losslessly.

Copied with every field: live and archived tasks and agents (under the same archive names),
every event channel with its seqs and its live/archived split, consumer cursors, contexts,
documents (``metrics-performance``), the id counters and the file reservation table (see
``docs/redis.md``).

Everything goes through the :class:`~agentcoord.store.base.Store` interface (which enumerates
archives, cursors, counters and documents and imports events with their seqs), so any two
backends migrate alike, the in-memory one included.

The source is only read. Everything is read and checked (an unreadable record: exit 6) before
anything is written; the target must be empty unless ``force`` (which removes its records).
"""

from __future__ import annotations

from ..errors import AlreadyExists, Conflict, CorruptData, InvalidInput
from ..store.base import ARCHIVE_KINDS as KINDS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..core.models import Agent, ContextDoc, Event, Reservation, Task
    from ..store.base import Store

#: Events per import call: bounds the size of one Redis script call or one file rewrite.
BATCH = 1000


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
        self.documents: dict[str, dict[str, Any]] = {}
        self.counters: dict[str, int] = {}
        self.reservations: list[Reservation] = []

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
            "reservations": [r.id for r in self.reservations],
        }

    def counts(self) -> dict[str, int]:
        counts = {kind: len(names) for kind, names in self.names().items()}
        counts["events"] = sum(len(c.events) for c in self.channels.values())
        return counts


# -- reading and writing ----------------------------------------------------------------------
def read_snapshot(store: Store) -> Snapshot:
    """Everything in ``store``; :class:`CorruptData` (exit 6) if any record is unreadable,
    because a migration that skipped it would lose it."""
    errors: list[CorruptData] = []
    snap = Snapshot()
    snap.tasks = store.list_tasks(errors=errors)
    snap.agents = store.list_agents(errors=errors)
    snap.archived["task"] = list(store.list_archived_tasks(errors=errors))
    snap.archived["agent"] = list(store.list_archived_agents(errors=errors))
    snap.contexts = store.list_contexts(errors=errors)
    snap.cursors = store.list_cursors(errors=errors)
    try:
        snap.reservations = store.get_reservations()
    except CorruptData as exc:
        errors.append(exc)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        first = errors[0]
        raise CorruptData(first.path, first.line, f"{first.reason}{more}; fix it, then migrate")
    for channel in store.list_channels():
        events = store.read_events(channel)
        live = min(store.live_event_count(channel), len(events))
        snap.channels[channel] = Channel(events, live, store.last_seq(channel))
    for name in store.list_documents():
        data = store.get_document(name)
        if data is not None:
            snap.documents[name] = data
    snap.counters = store.counters()
    return snap


def check_target(source: Store, target: Store, *, force: bool) -> list[str]:
    """The target's records (empty when it is empty); refuse the source itself, and a
    non-empty target without ``force``."""
    if source.identity() == target.identity():
        raise InvalidInput(f"the target {target.location} is the workspace itself")
    present = target.record_names()
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
    for doc in snap.contexts:
        target.put_context(doc)
    for name, data in snap.documents.items():
        target.put_document(name, data)
    for agent in snap.agents:
        target.update_agent(agent.name, _replace_with(agent))
    for task in snap.tasks:
        target.create_task(task)
    for kind in KINDS:
        for name, record in snap.archived[kind]:
            target.import_archived(kind, name, record)
    for name, channel in snap.channels.items():
        split = len(channel.events) - channel.live
        old, live = channel.events[:split], channel.events[split:]
        # The archived part first with keep=0 (straight to the archive), then the live part:
        # the live log keeps exactly the events it had.
        for i in range(0, len(old), BATCH):
            target.import_events(name, old[i : i + BATCH], keep=0)
        if live:
            target.import_events(name, live, keep=len(live))
        if target.last_seq(name) < channel.last_seq:
            target.raise_last_seq(name, channel.last_seq)
    for name, consumers in snap.cursors.items():
        for consumer, seq in consumers.items():
            target.advance_cursor(name, consumer, seq)
    for kind, value in snap.counters.items():
        target.set_counter(kind, value)
    if snap.reservations:
        table = snap.reservations
        target.update_reservations(lambda _current: [r.copy() for r in table])


def verify(snap: Snapshot, target: Store) -> None:
    """Cheap checks that everything landed (counts and seqs); a mismatch means someone wrote to
    the target during the migration."""
    checks = [
        ("tasks", len(target.list_task_heads()), len(snap.tasks)),
        ("agents", len(target.list_agents()), len(snap.agents)),
        ("contexts", len(target.list_contexts()), len(snap.contexts)),
        ("reservations", len(target.get_reservations()), len(snap.reservations)),
    ]
    checks += [(f"{n} last seq", target.last_seq(n), c.last_seq) for n, c in snap.channels.items()]
    wrong = [f"{what} {got}, not {want}" for what, got, want in checks if got != want]
    if wrong:
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
        self.target.prepare()
        if self.present:
            self.target.clear()
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

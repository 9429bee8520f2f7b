"""File reservations (SPEC section 13): who may edit which paths of the repository.

An agent reserves patterns (repo-relative globs, :mod:`agentcoord.core.paths`) exclusively (the
default: nobody else may reserve an overlapping pattern) or shared (readers: other shared
reservations may overlap, exclusive ones may not). The table is one small record that every
change rewrites atomically (:meth:`Store.update_reservations`), and every reservation is checked
against every live reservation of the other agents *inside* that update: two agents reserving
overlapping patterns at the same time get exactly one winner, the other a :class:`Conflict`
(exit 4) naming the holder, the pattern, the reason and the expiry.

Liveness is computed on read, so nothing needs a cleaner. A reservation has ended when

- ``ttl``: its ``expires`` time has passed;
- tied to a task: that task is no longer ``in_progress`` by the agent at the epoch it held when
  it reserved (completed, failed, released, reaped, reclaimed by another, archived), or its
  lease has run out;
- its agent is retired, offline (its session ended) or Gone: silent for ``monitor.gone``
  seconds (24 h by default), or no longer registered.

Ended reservations are dropped from the table by the next change. They are also released
eagerly: the Coordinator tells this area when a task changes hands or ends
(:meth:`Reservations.on_task_change`) and when an agent retires or signs off
(:meth:`Reservations.release` with ``all``).

Times are POSIX seconds kept to the millisecond on every backend.
"""

from __future__ import annotations

from ..core.clock import iso_ms, round_ms
from ..core.models import EXCLUSIVE, IN_PROGRESS, SHARED, Reservation
from ..core.paths import is_glob, matches, normalize_all, overlaps
from ..core.validate import check_name, one_line, seconds
from ..errors import Conflict, InvalidInput, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    from ..core.config import Config
    from ..core.models import Agent, Task, TaskHead
    from ..store.base import Store

    Table = list[Reservation]
    Ended = list[tuple[Reservation, "str | None"]]
    Conflicts = list["PathConflict"]

#: Longest reason kept (characters).
MAX_REASON = 300
#: Agent states whose reservations have ended.
_ENDED_STATES = frozenset({"retired", "offline"})


def _anyone(agent: str) -> None:
    return None


class ReservationHooks:
    """What the reservations area asks of the rest of the domain.

    - ``identify(agent)``: strict identity (SPEC section 11): raise for an agent that may not
      reserve (never registered: :class:`NotFound`, exit 3).
    """

    __slots__ = ("identify",)

    def __init__(self, *, identify: Callable[[str], None] = _anyone) -> None:
        self.identify = identify


class PathConflict:
    """One path (or pattern) that another agent's live reservation covers: ``path`` as given
    (canonical), the holder's ``reservation``, and the holder's ``pattern`` that covers it."""

    __slots__ = ("path", "pattern", "reservation")

    def __init__(self, path: str, pattern: str, reservation: Reservation) -> None:
        self.path = path
        self.pattern = pattern
        self.reservation = reservation

    @property
    def holder(self) -> str:
        return self.reservation.agent

    def to_dict(self) -> dict[str, Any]:
        """``{"path", "holder", "pattern", "mode", "reservation", "reason", "task",
        "expires"}`` (expires: ISO 8601 UTC with milliseconds, or None)."""
        r = self.reservation
        return {
            "path": self.path,
            "holder": r.agent,
            "pattern": self.pattern,
            "mode": r.mode,
            "reservation": r.id,
            "reason": r.reason,
            "task": r.task,
            "expires": None if r.expires is None else iso_ms(r.expires),
        }

    def describe(self) -> str:
        """One line for people: ``src/a.py is reserved by B (pattern 'src/**', exclusive, task
        t1, reason: ..., until 2025-...Z)``."""
        return f"{self.path} is reserved by {held_by(self.reservation, self.pattern)}"

    def __repr__(self) -> str:
        return f"PathConflict({self.path!r}, {self.pattern!r}, {self.reservation.id!r})"


def held_by(r: Reservation, pattern: str) -> str:
    """``B (pattern 'src/**', exclusive, task t1, reason: ..., until ...)``."""
    parts = [f"pattern {pattern!r}", r.mode]
    if r.task is not None:
        parts.append(f"task {r.task}")
    if r.reason:
        parts.append(f"reason: {r.reason}")
    if r.expires is not None:
        parts.append(f"until {iso_ms(r.expires)}")
    elif r.task is not None:
        parts.append("until the task's lease ends")
    else:
        parts.append("until released")
    return f"{r.agent} ({', '.join(parts)})"


class Reservations:
    """The file reservation operations, over a :class:`~agentcoord.store.base.Store`.

    ``config`` supplies ``monitor.gone`` (when a silent agent's reservations end), ``clock`` the
    time (POSIX seconds), ``hooks`` the link to the agents area (:class:`ReservationHooks`)."""

    def __init__(
        self,
        store: Store,
        config: Config,
        clock: Callable[[], float],
        hooks: ReservationHooks | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.hooks = hooks if hooks is not None else ReservationHooks()

    # -- liveness -----------------------------------------------------------------------------
    def _judge(self, now: float) -> Callable[[Reservation], str | None]:
        """A function telling why a reservation has ended (None: it is live), reading each task
        head and agent at most once."""
        from .agents import last_sign
        from .monitor import gone_after

        gone = gone_after(self.config)
        heads: dict[str, TaskHead | None] = {}
        agents: dict[str, Agent | None] = {}

        def head(task_id: str) -> TaskHead | None:
            if task_id not in heads:
                try:
                    heads[task_id] = self.store.get_task_head(task_id)
                except NotFound:
                    heads[task_id] = None
            return heads[task_id]

        def agent(name: str) -> Agent | None:
            if name not in agents:
                try:
                    agents[name] = self.store.get_agent(name)
                except NotFound:
                    agents[name] = None
            return agents[name]

        def ended(r: Reservation) -> str | None:
            if r.expires is not None and now >= r.expires:
                return f"expired at {iso_ms(r.expires)}"
            if r.task is not None:
                h = head(r.task)
                if h is None:
                    return f"task {r.task} is gone"
                if h.status != IN_PROGRESS or h.agent != r.agent or h.epoch != r.epoch:
                    return f"task {r.task} is no longer in progress by {r.agent}"
                if h.lease_expires is not None and now >= h.lease_expires:
                    return f"the lease of task {r.task} ran out"
            a = agent(r.agent)
            if a is None:
                return f"agent {r.agent} is not registered"
            if a.status in _ENDED_STATES:
                return f"agent {r.agent} is {a.status}"
            if now - last_sign(a) >= gone:
                return f"agent {r.agent} is Gone"
            return None

        return ended

    def table(self) -> Ended:
        """Every stored reservation and why it ended (None: live), in the table's order."""
        ended = self._judge(self.clock())
        return [(r, ended(r)) for r in self.store.get_reservations()]

    def list(self, agent: str | None = None) -> Table:
        """The live reservations (of ``agent`` only, when given), oldest first."""
        if agent is not None:
            check_name(agent, "agent name")
        return [r for r, why in self.table() if why is None and (agent is None or r.agent == agent)]

    # -- reserving ----------------------------------------------------------------------------
    def reserve(
        self,
        agent: str,
        patterns: Sequence[str],
        *,
        shared: bool = False,
        ttl: float | None = None,
        task: str | None = None,
        reason: str | None = None,
    ) -> Reservation:
        """Reserve ``patterns`` (paths or globs; normalised, :func:`normalize_all`) for
        ``agent``: exclusive, or ``shared``; ending after ``ttl`` seconds, with ``task`` (which
        the agent must hold: in progress by it, lease not run out), or when the agent goes.

        Raises :class:`InvalidInput` (exit 2) for a bad pattern, ttl or reason;
        :class:`NotFound` (exit 3) for an unknown agent or task; :class:`Conflict` (exit 4) when
        the agent is retired, offline or Gone, does not hold ``task``, or another agent's live
        reservation overlaps (exclusive against anything, shared against exclusive): the
        message names the holder, its pattern, reason and expiry. Returns the reservation."""
        check_name(agent, "agent name")
        wanted = normalize_all(patterns)
        if ttl is not None:
            ttl = seconds(ttl, "ttl", positive=True)
        if reason is not None:
            reason = one_line(reason, "reason", MAX_REASON) or None
        self.hooks.identify(agent)
        now = self.clock()
        epoch: int | None = None
        if task is not None:
            epoch = self._held(agent, check_name(task, "task id"), now)
        rid = f"res-{self.store.next_id('reservation')}"
        new = Reservation(
            rid,
            agent,
            wanted,
            mode=SHARED if shared else EXCLUSIVE,
            task=task,
            epoch=epoch,
            reason=reason,
            created=round_ms(now),
            expires=None if ttl is None else round_ms(now + ttl),
        )
        ended = self._judge(now)
        mine = ended(new)
        if mine is not None:
            raise Conflict(
                f"{agent} cannot reserve: {mine} (register or heartbeat first)",
                agent=agent,
                reason=mine,
            )

        def fn(table: Table) -> Table:
            kept = [r for r in table if ended(r) is None]
            for other in kept:
                if other.agent == agent:
                    continue
                clash = _clash(new, other)
                if clash is not None:
                    mine, theirs = clash
                    raise Conflict(
                        f"cannot reserve {mine!r}: it overlaps {held_by(other, theirs)}",
                        holder=other.agent,
                        pattern=theirs,
                        requested=mine,
                        mode=other.mode,
                        reservation=other.id,
                        reason=other.reason,
                        task=other.task,
                        expires=None if other.expires is None else iso_ms(other.expires),
                    )
            return [*kept, new]

        self.store.update_reservations(fn)
        return new

    def _held(self, agent: str, task_id: str, now: float) -> int:
        """The epoch at which ``agent`` holds ``task_id`` now; :class:`Conflict` otherwise."""
        head = self.store.get_task_head(task_id)
        if head.status != IN_PROGRESS or head.agent != agent:
            holder = f"held by {head.agent}" if head.agent else "held by nobody"
            raise Conflict(
                f"{agent} does not hold task {task_id} ({head.status}, {holder}): a "
                "reservation tied to a task needs its lease (claim it first)",
                task=task_id,
                agent=agent,
            )
        if head.lease_expires is not None and now >= head.lease_expires:
            raise Conflict(
                f"the lease of {agent} on task {task_id} ran out: claim it again first",
                task=task_id,
                agent=agent,
            )
        return head.epoch

    # -- releasing ----------------------------------------------------------------------------
    def release(
        self, agent: str, patterns: Sequence[str] | None = None, *, all: bool = False
    ) -> Table:
        """Give back ``agent``'s reservations: every one with ``all``, else the given patterns
        (normalised; each releases the agent's reserved patterns equal to it, and a reservation
        left without patterns goes). Returns what was released (each with the patterns it
        gave back); empty when nothing matched. :class:`InvalidInput` (exit 2) when neither
        patterns nor ``all`` are given, or both."""
        check_name(agent, "agent name")
        if all and patterns:
            raise InvalidInput("give patterns or --all, not both")
        if not all and not patterns:
            raise InvalidInput("give the paths or globs to release, or --all")
        wanted = None if all else set(normalize_all(patterns or []))
        released: list[Table] = []

        def fn(table: Table) -> Table | None:
            out: Table = []
            gone: Table = []
            for r in table:
                if r.agent != agent:
                    out.append(r)
                    continue
                drop = r.patterns if wanted is None else [p for p in r.patterns if p in wanted]
                if not drop:
                    out.append(r)
                    continue
                given = r.copy()
                given.patterns = list(drop)
                gone.append(given)
                left = [p for p in r.patterns if p not in drop]
                if left:
                    r.patterns = left
                    out.append(r)
            released[:] = [gone]
            return out if gone else None

        if wanted is None and not any(r.agent == agent for r in self.store.get_reservations()):
            return []  # nothing to do: no lock taken
        self.store.update_reservations(fn)
        return released[0] if released else []

    def on_task_change(self, task: Task) -> Table:
        """A task changed hands or ended (the board's follow-up): drop the reservations tied
        to it that its holder no longer holds it for (any but the current holder's at the
        current epoch while in progress). Returns what was dropped."""
        if not any(r.task == task.id for r in self.store.get_reservations()):
            return []

        def keep(r: Reservation) -> bool:
            if r.task != task.id:
                return True
            return task.status == IN_PROGRESS and task.agent == r.agent and task.epoch == r.epoch

        dropped: Table = []

        def fn(table: Table) -> Table | None:
            dropped[:] = [r for r in table if not keep(r)]
            return [r for r in table if keep(r)] if dropped else None

        self.store.update_reservations(fn)
        return dropped

    def prune(self) -> Table:
        """Drop every ended reservation from the table; return them."""
        ended = self._judge(self.clock())
        dropped: Table = []

        def fn(table: Table) -> Table | None:
            dropped[:] = [r for r in table if ended(r) is not None]
            return [r for r in table if ended(r) is None] if dropped else None

        if any(why is not None for _, why in self.table()):
            self.store.update_reservations(fn)
        return dropped

    # -- checking -----------------------------------------------------------------------------
    def conflicts_for(
        self, paths: Iterable[str], agent: str | None = None, *, literal: bool = False
    ) -> Conflicts:
        """The paths (repo-relative; a glob is checked as a pattern) that another agent's live
        *exclusive* reservation covers, one entry per (path, reservation), in the order given.
        With ``agent`` None every exclusive reservation counts (a caller nobody identified).
        Raises :class:`InvalidInput` (exit 2) for a bad path. ``literal``: the paths are file
        names as git lists them (any number, any characters; ``*`` or ``[`` in one is a
        character): never refused, never read as globs. For the pre-commit guard and the edit
        hook: an empty list means "go ahead"."""
        if agent is not None:
            check_name(agent, "agent name")
        if literal:
            wanted = [p.strip("/") for p in paths if isinstance(p, str) and p.strip("/")]
        else:
            wanted = normalize_all(list(paths))
        table = self.store.get_reservations()
        others = [r for r in table if r.exclusive and r.agent != agent]
        if not others:
            return []  # the common case: no liveness reads at all
        ended = self._judge(self.clock())
        live = [r for r in others if ended(r) is None]
        found: Conflicts = []
        for path in wanted:
            glob = not literal and any(is_glob(seg) for seg in path.split("/"))
            for r in live:
                for pattern in r.patterns:
                    if overlaps(pattern, path) if glob else matches(pattern, path):
                        found.append(PathConflict(path, pattern, r))
                        break
        return found

    def check(self, agent: str | None, paths: Iterable[str]) -> Conflicts:
        """:meth:`conflicts_for` (the CLI's ``coord files check``)."""
        return self.conflicts_for(paths, agent)


def _clash(new: Reservation, other: Reservation) -> tuple[str, str] | None:
    """(new pattern, other's pattern) of the first overlap that the two modes forbid, or None
    (two shared reservations never clash)."""
    if not (new.exclusive or other.exclusive):
        return None
    for mine in new.patterns:
        for theirs in other.patterns:
            if overlaps(mine, theirs):
                return mine, theirs
    return None

"""The records the coordination layer keeps: tasks, agents, events and context documents.

These are plain slotted classes rather than dataclasses on purpose: ``import dataclasses`` pulls
in ``inspect`` and costs ~9 ms, a third of the CLI's whole start-up budget (SPEC section 8). Each
model converts to and from a JSON-friendly dict (``to_dict``/``from_dict``): the encoding of the
Redis and in-memory stores. The markdown encoding lives in :mod:`agentcoord.store.markdown.codec`,
the ``--json`` / MCP shapes in :mod:`agentcoord.shapes`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal, TypeVar

    R = TypeVar("R", bound="_Record")

    TaskStatus = Literal[
        "pending", "assigned", "in_progress", "blocked", "complete", "failed", "cancelled"
    ]

# Task states (SPEC section 4).
PENDING = "pending"
ASSIGNED = "assigned"
IN_PROGRESS = "in_progress"
BLOCKED = "blocked"
COMPLETE = "complete"
FAILED = "failed"
CANCELLED = "cancelled"
TASK_STATES = (PENDING, ASSIGNED, IN_PROGRESS, BLOCKED, COMPLETE, FAILED, CANCELLED)
FINISHED_STATES = frozenset({COMPLETE, FAILED, CANCELLED})
OPEN_STATES = frozenset({PENDING, ASSIGNED, IN_PROGRESS, BLOCKED})

DEFAULT_LEASE_SECONDS = 600.0
DEFAULT_MAX_ATTEMPTS = 3
MAX_LOG_LINES = 50


class _Record:  # noqa: PLW1641 - mutable records are deliberately unhashable
    """Shared behaviour: equality, repr and copying over ``__slots__``."""

    __slots__: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({inner})"

    def copy(self: R) -> R:
        """An independent copy: containers (lists, dicts, nested records) are copied, scalars
        and tuples shared. Stores hand out copies, so a caller's change never reaches them."""
        new = object.__new__(type(self))
        for name in self.__slots__:
            setattr(new, name, _clone(getattr(self, name)))
        return new


def _clone(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return [_clone(v) for v in value]
    if kind is dict:
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, _Record):
        return value.copy()
    return value  # str, numbers, None, bool, tuples of those


class LogLine(_Record):
    __slots__ = ("message", "time")

    def __init__(self, time: float, message: str) -> None:
        self.time = time
        self.message = message


class Task(_Record):
    """One unit of work. The task record is the truth about who owns what."""

    __slots__ = (
        "agent",
        "assigned_at",
        "attempts",
        "blocked_reason",
        "completed_at",
        "context_refs",
        "created_at",
        "created_by",
        "dep_states",
        "dep_titles",
        "depends_on",
        "description",
        "epoch",
        "error",
        "eta",
        "extra_sections",
        "id",
        "labels",
        "lease_expires",
        "lease_grant",
        "lease_seconds",
        "logs",
        "max_attempts",
        "metrics",
        "next_steps",
        "parent",
        "percent",
        "priority",
        "progress_current",
        "progress_total",
        "progress_unit",
        "project",
        "requires",
        "result",
        "started_at",
        "status",
        "title",
        "updated_at",
    )

    def __init__(
        self,
        id: str,
        title: str,
        *,
        status: str = PENDING,
        project: str | None = None,
        agent: str | None = None,
        priority: int = 0,
        depends_on: list[str] | None = None,
        dep_titles: dict[str, str] | None = None,
        dep_states: dict[str, str] | None = None,
        epoch: int = 0,
        lease_expires: float | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        lease_grant: float | None = None,
        attempts: int = 0,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        created_at: float = 0.0,
        created_by: str | None = None,
        assigned_at: float | None = None,
        started_at: float | None = None,
        updated_at: float | None = None,
        completed_at: float | None = None,
        eta: float | None = None,
        progress_current: float | None = None,
        progress_total: float | None = None,
        progress_unit: str = "steps",
        percent: float | None = None,
        metrics: dict[str, Any] | None = None,
        context_refs: list[tuple[str, str]] | None = None,
        next_steps: list[str] | None = None,
        logs: list[LogLine] | None = None,
        result: str | None = None,
        error: str | None = None,
        blocked_reason: str | None = None,
        extra_sections: list[tuple[str, str]] | None = None,
        labels: list[str] | None = None,
        requires: list[str] | None = None,
        parent: str | None = None,
        description: str = "",
    ) -> None:
        self.id = id
        self.title = title
        self.status = status
        #: Free labels (names) for people and filters (``task list --label``).
        self.labels = labels if labels is not None else []
        #: Capabilities an agent must have registered to claim the task (SPEC section 11).
        self.requires = requires if requires is not None else []
        #: The parent task's id: a parent cannot complete while a child is open.
        self.parent = parent
        #: Free markdown (the ``## Description`` section); ``- [ ]`` items are its acceptance
        #: criteria (:mod:`agentcoord.core.checklist`).
        self.description = description
        self.project = project
        self.agent = agent
        self.priority = priority
        self.depends_on = depends_on if depends_on is not None else []
        #: Titles of dependencies as last seen, only to render the seed's Dependencies lines.
        self.dep_titles = dep_titles if dep_titles is not None else {}
        #: Dependency states as last seen by a writer: decoration for people, never decisions.
        self.dep_states = dep_states if dep_states is not None else {}
        self.epoch = epoch
        self.lease_expires = lease_expires
        #: The task's lease length: what every grant gets unless its claim asks for another.
        self.lease_seconds = lease_seconds
        #: The current grant's own lease length, when its claim asked for one (``--lease``);
        #: None otherwise. It ends with the grant (SPEC section 4).
        self.lease_grant = lease_grant
        self.attempts = attempts
        self.max_attempts = max_attempts
        self.created_at = created_at
        self.created_by = created_by
        self.assigned_at = assigned_at
        self.started_at = started_at
        self.updated_at = updated_at
        self.completed_at = completed_at
        self.eta = eta
        self.progress_current = progress_current
        self.progress_total = progress_total
        self.progress_unit = progress_unit
        self.percent = percent
        self.metrics = metrics if metrics is not None else {}
        self.context_refs = context_refs if context_refs is not None else []
        self.next_steps = next_steps if next_steps is not None else []
        self.logs = logs if logs is not None else []
        self.result = result
        self.error = error
        self.blocked_reason = blocked_reason
        #: Sections a person added by hand; kept verbatim so a rewrite loses nothing.
        self.extra_sections = extra_sections if extra_sections is not None else []

    # -- derived ---------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATES

    def lease_expired(self, now: float) -> bool:
        return (
            self.status == IN_PROGRESS
            and self.lease_expires is not None
            and self.lease_expires <= now
        )

    def progress_percent(self) -> float | None:
        if self.percent is not None:
            return self.percent
        if self.progress_current is not None and self.progress_total:
            return 100.0 * self.progress_current / self.progress_total
        return None

    def last_activity(self) -> float:
        return max(
            t
            for t in (self.updated_at, self.started_at, self.assigned_at, self.created_at)
            if t is not None
        )

    # -- dict form -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if name == "logs":
                value = [{"time": ln.time, "message": ln.message} for ln in value]
            elif name in ("context_refs", "extra_sections"):
                value = [list(pair) for pair in value]
            out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        kwargs = {k: v for k, v in data.items() if k in cls.__slots__ and k not in ("id", "title")}
        kwargs["logs"] = [LogLine(ln["time"], ln["message"]) for ln in data.get("logs", [])]
        kwargs["context_refs"] = [(a, b) for a, b in data.get("context_refs", [])]
        kwargs["extra_sections"] = [(a, b) for a, b in data.get("extra_sections", [])]
        return cls(data["id"], data["title"], **kwargs)


class TaskHead(_Record):
    """The fields that decide claim order, listing filters and ownership, without the body of
    the task.

    Backends can serve heads from an index (a stat-validated cache on files, state sets on
    Redis) so that ``claim`` and ``list --status`` need not read every task. Times are as the
    store keeps them (whole seconds on files)."""

    __slots__ = (
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

    def __init__(
        self,
        id: str,
        status: str,
        *,
        priority: int = 0,
        created_at: float = 0.0,
        updated_at: float | None = None,
        agent: str | None = None,
        project: str | None = None,
        lease_expires: float | None = None,
        depends_on: list[str] | None = None,
        epoch: int = 0,
        lease_length: float = DEFAULT_LEASE_SECONDS,
        labels: list[str] | None = None,
        parent: str | None = None,
        requires: list[str] | None = None,
    ) -> None:
        self.id = id
        self.status = status
        self.epoch = epoch
        #: Filters of ``task list --label/--parent`` and the capabilities a claim must have,
        #: answered from the index like the rest of the head.
        self.labels = labels if labels is not None else []
        self.parent = parent
        self.requires = requires if requires is not None else []
        #: Seconds the current grant's lease lasts (its claim's own, else the task's).
        self.lease_length = lease_length
        self.priority = priority
        self.created_at = created_at
        self.updated_at = updated_at
        self.agent = agent
        self.project = project
        self.lease_expires = lease_expires
        self.depends_on = depends_on if depends_on is not None else []

    @classmethod
    def of(cls, task: Task) -> TaskHead:
        return cls(
            task.id,
            task.status,
            priority=task.priority,
            created_at=task.created_at,
            updated_at=task.updated_at,
            agent=task.agent,
            project=task.project,
            lease_expires=task.lease_expires,
            depends_on=list(task.depends_on),
            epoch=task.epoch,
            lease_length=task.lease_grant if task.lease_grant is not None else task.lease_seconds,
            labels=list(task.labels),
            parent=task.parent,
            requires=list(task.requires),
        )

    def lease_expired(self, now: float) -> bool:
        return (
            self.status == IN_PROGRESS
            and self.lease_expires is not None
            and self.lease_expires <= now
        )

    def to_list(self) -> list[Any]:
        return [getattr(self, n) for n in self.__slots__]

    @classmethod
    def from_list(cls, row: list[Any]) -> TaskHead:
        values = dict(zip(cls.__slots__, row, strict=True))
        task_id, status = values.pop("id"), values.pop("status")
        for name in ("depends_on", "labels", "requires"):
            values[name] = list(values[name])  # never share the row's own lists
        return cls(task_id, status, **values)


# Agent states (the seed writes them upper-case: ``**Status**: BUSY``).
AGENT_STATES = ("idle", "busy", "blocked", "offline", "retired")

# Circuit breaker states.
BREAKER_CLOSED = "closed"
BREAKER_OPEN = "open"
BREAKER_HALF_OPEN = "half_open"
BREAKER_STATES = (BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN)
DEFAULT_BREAKER_THRESHOLD = 3
DEFAULT_BREAKER_COOLDOWN = 300.0


class Agent(_Record):
    """An agent's own state (status, heartbeat, workload, breaker) plus derived views.

    ``active``, ``recent`` and ``stats`` are views of the task records, rebuilt from them; the
    task records stay the truth about ownership.
    """

    __slots__ = (
        "active",
        "breaker_failures",
        "breaker_opened_at",
        "breaker_state",
        "breaker_threshold",
        "capabilities",
        "extra_sections",
        "generation",
        "last_failure",
        "last_failure_reason",
        "last_seen",
        "name",
        "notes",
        "recent",
        "registered_at",
        "session",
        "stats",
        "status",
        "workload",
    )

    def __init__(
        self,
        name: str,
        *,
        status: str = "idle",
        registered_at: float = 0.0,
        last_seen: float = 0.0,
        workload: int = 0,
        capabilities: list[str] | None = None,
        notes: str = "",
        breaker_state: str = BREAKER_CLOSED,
        breaker_failures: int = 0,
        breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD,
        breaker_opened_at: float | None = None,
        last_failure: float | None = None,
        last_failure_reason: str | None = None,
        active: list[dict[str, Any]] | None = None,
        recent: list[dict[str, Any]] | None = None,
        stats: dict[str, Any] | None = None,
        extra_sections: list[tuple[str, str]] | None = None,
        session: str = "",
        generation: int = 0,
    ) -> None:
        self.name = name
        self.status = status
        self.registered_at = registered_at
        self.last_seen = last_seen
        self.workload = workload
        self.capabilities = capabilities if capabilities is not None else []
        self.notes = notes
        self.breaker_state = breaker_state
        self.breaker_failures = breaker_failures
        self.breaker_threshold = breaker_threshold
        self.breaker_opened_at = breaker_opened_at
        self.last_failure = last_failure
        self.last_failure_reason = last_failure_reason
        #: View: one dict per task the agent holds (id, title, project, status, started, percent,
        #: current, total, unit, metrics).
        self.active = active if active is not None else []
        #: View: tasks finished in the last 24 h (id, title, completed, duration, success).
        self.recent = recent if recent is not None else []
        #: View: success_rate, succeeded, finished, average_duration, failed (24 h window).
        self.stats = stats if stats is not None else {}
        self.extra_sections = extra_sections if extra_sections is not None else []
        #: The token of the session that registered the name last ("" when none did: an
        #: implicit registration, or a record older than sessions), and how many sessions
        #: have held the name (SPEC section 11: one name = one agent).
        self.session = session
        self.generation = generation

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__slots__}
        out["extra_sections"] = [list(p) for p in self.extra_sections]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Agent:
        kwargs = {k: v for k, v in data.items() if k in cls.__slots__ and k != "name"}
        kwargs["extra_sections"] = [(a, b) for a, b in data.get("extra_sections", [])]
        return cls(data["name"], **kwargs)


class Event(_Record):
    """One event on a channel. ``seq`` is assigned by the store and never repeats per channel."""

    __slots__ = ("channel", "fields", "seq", "time", "type")

    def __init__(
        self,
        channel: str,
        type: str,
        *,
        seq: int = 0,
        time: float = 0.0,
        fields: list[tuple[str, str]] | None = None,
    ) -> None:
        self.channel = channel
        self.type = type
        self.seq = seq
        self.time = time
        #: Ordered key/value pairs, as the seed writes them (``**Step**: 3500``).
        self.fields = fields if fields is not None else []

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seq": self.seq,
            "type": self.type,
            "time": self.time,
            "channel": self.channel,
        }
        out["fields"] = dict(self.fields)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        fields = data.get("fields") or {}
        pairs = list(fields.items()) if isinstance(fields, dict) else [(a, b) for a, b in fields]
        return cls(data["channel"], data["type"], seq=data["seq"], time=data["time"], fields=pairs)


class ContextDoc(_Record):
    """Shared context: a validated json object plus optional free text (``context-{p}-{d}.md``)."""

    __slots__ = ("created_by", "data", "domain", "project", "text", "title", "updated_at")

    def __init__(
        self,
        project: str,
        domain: str,
        *,
        data: dict[str, Any] | None = None,
        title: str = "",
        text: str = "",
        updated_at: float = 0.0,
        created_by: str | None = None,
    ) -> None:
        self.project = project
        self.domain = domain
        self.data = data if data is not None else {}
        self.title = title
        self.text = text
        self.updated_at = updated_at
        self.created_by = created_by

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContextDoc:
        kwargs = {k: v for k, v in data.items() if k in cls.__slots__}
        project, domain = kwargs.pop("project"), kwargs.pop("domain")
        return cls(project, domain, **kwargs)


EXCLUSIVE = "exclusive"
SHARED = "shared"
RESERVATION_MODES = (EXCLUSIVE, SHARED)


class Reservation(_Record):
    """A file reservation (SPEC section 13): ``agent`` holds ``patterns`` (canonical repo-relative
    globs, :func:`agentcoord.core.paths.normalize`) in ``mode`` exclusive or shared.

    It ends at ``expires`` (POSIX seconds; None: no TTL), when the task it is tied to (``task``,
    held at ``epoch``) is no longer in progress by ``agent`` at that epoch, or when the agent is
    retired, offline or Gone; liveness is decided on read (:mod:`agentcoord.domain.reservations`).
    Times keep milliseconds on every backend."""

    __slots__ = ("agent", "created", "epoch", "expires", "id", "mode", "patterns", "reason", "task")

    def __init__(
        self,
        id: str,
        agent: str,
        patterns: list[str],
        *,
        mode: str = EXCLUSIVE,
        task: str | None = None,
        epoch: int | None = None,
        reason: str | None = None,
        created: float = 0.0,
        expires: float | None = None,
    ) -> None:
        self.id = id
        self.agent = agent
        self.patterns = patterns
        self.mode = mode
        self.task = task
        self.epoch = epoch
        self.reason = reason
        self.created = created
        self.expires = expires

    @property
    def exclusive(self) -> bool:
        return self.mode == EXCLUSIVE

    def to_dict(self) -> dict[str, Any]:
        return {name: _clone(getattr(self, name)) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reservation:
        kwargs = {k: v for k, v in data.items() if k in cls.__slots__}
        rid, agent, patterns = kwargs.pop("id"), kwargs.pop("agent"), kwargs.pop("patterns")
        return cls(rid, agent, list(patterns), **kwargs)


class ReservationTable(list[Reservation]):
    """The reservation table as a list whose :meth:`copy` copies every reservation (stores keep
    decoded records in caches and hand out copies: a shallow one would share them)."""

    def copy(self) -> ReservationTable:
        return ReservationTable(r.copy() for r in self)

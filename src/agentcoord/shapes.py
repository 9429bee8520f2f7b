"""The ``--json`` and MCP shapes of the records: what every interface prints for a task, an agent,
an event, a context document or a message between agents. One definition each, so the CLI, the
MCP server, the dashboard and the web page agree (SPEC section 6: "a task is an object with at
least ``id``, ``status``, ``agent``, ``epoch``; event streams are objects with at least ``seq``,
``type``, ``time``").

Pure functions of the models (and ``now`` for what counts down); no I/O. Times are ISO 8601 UTC
strings; durations are seconds. The results of the domain's own reports (``coord status``,
``coord monitor`` rows, maintenance actions, doctor violations) carry their shape on their
classes (``to_dict``).
"""

from __future__ import annotations

import json

from .core.clock import iso, iso_ms
from .core.models import IN_PROGRESS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .core.models import Agent, ContextDoc, Event, Reservation, Task
    from .domain.messages import Delivered, Inbox, Message


#: Every key :func:`task_summary` can have (the optional ones only when they apply).
TASK_SUMMARY_FIELDS = (
    "id",
    "title",
    "status",
    "agent",
    "epoch",
    "priority",
    "project",
    "percent",
    "depends_on",
    "lease_left",
    "attempts",
    "blocked_reason",
    "error",
    "labels",
    "parent",
    "requires",
)


def task_summary(task: Task, now: float) -> dict[str, Any]:
    """The compact task: what an agent needs, nothing more (lists, and every write's reply).

    ``{"id", "title", "status", "agent", "epoch", "priority"}`` plus, when they apply,
    ``project``, ``percent`` (0-100, one decimal), ``depends_on``, ``lease_left`` (seconds, for
    an in-progress task), ``attempts``, ``blocked_reason``, ``error``, ``labels``, ``parent``,
    ``requires`` (SPEC section 11)."""
    out: dict[str, Any] = {
        "id": task.id,
        "title": task.title,
        "status": task.status,
        "agent": task.agent,
        "epoch": task.epoch,
        "priority": task.priority,
    }
    if task.project:
        out["project"] = task.project
    pct = task.progress_percent()
    if pct is not None:
        out["percent"] = round(pct, 1)
    if task.depends_on:
        out["depends_on"] = list(task.depends_on)
    if task.status == IN_PROGRESS and task.lease_expires is not None:
        out["lease_left"] = round(task.lease_expires - now, 1)
    if task.attempts:
        out["attempts"] = task.attempts
    if task.blocked_reason:
        out["blocked_reason"] = task.blocked_reason
    if task.error:
        out["error"] = task.error
    if task.labels:
        out["labels"] = list(task.labels)
    if task.parent:
        out["parent"] = task.parent
    if task.requires:
        out["requires"] = list(task.requires)
    return out


#: ``task show`` and MCP ``show_task`` by default: the newest log lines, each cut to this size.
SHOW_LOG_LINES = 10
SHOW_LOG_CHARS = 500


class Bounded:
    """A task cut down for showing: at most ``lines`` newest log lines of at most ``chars``
    characters each (None: no bound). ``omitted`` older lines were left out and ``cut`` messages
    shortened; ``task`` is a copy (the record itself is untouched)."""

    __slots__ = ("cut", "omitted", "task")

    def __init__(self, task: Task, *, lines: int | None, chars: int | None) -> None:
        self.task = task.copy()
        logs = self.task.logs
        self.omitted = max(0, len(logs) - lines) if lines is not None else 0
        if self.omitted:
            del logs[: self.omitted]
        self.cut = 0
        if chars is not None:
            for line in logs:
                if len(line.message) > chars:
                    more = len(line.message) - chars
                    line.message = f"{line.message[:chars]}... ({more} more characters)"
                    self.cut += 1

    def note(self) -> str:
        """What was left out, for people ('' when nothing was)."""
        parts = []
        if self.omitted:
            parts.append(f"{self.omitted} older log line(s) left out")
        if self.cut:
            parts.append(f"{self.cut} long message(s) cut")
        return "; ".join(parts)


def task_full(task: Task, now: float | None = None) -> dict[str, Any]:
    """``task show --json``: every field of :meth:`Task.to_dict`, timestamps as ISO strings,
    logs as ``{"time", "message"}``, plus the derived ``percent``, ``lease_left`` (seconds
    until the lease ends, for an in-progress task when ``now`` is given; else null) and
    ``criteria`` (the description's acceptance criteria: ``[{"n", "done", "text"}]``)."""
    from .core.checklist import items

    data = task.to_dict()
    for key, value in list(data.items()):
        if key.endswith(("_at", "_expires")) or key == "eta":
            data[key] = iso(value) if value is not None else None
    data["logs"] = [{"time": iso(ln.time), "message": ln.message} for ln in task.logs]
    data["percent"] = task.progress_percent()
    left = None
    if now is not None and task.status == IN_PROGRESS and task.lease_expires is not None:
        left = round(task.lease_expires - now, 1)
    data["lease_left"] = left
    data["criteria"] = [
        {"n": n, "done": done, "text": what}
        for n, (done, what) in enumerate(items(task.description), start=1)
    ]
    return data


def task_shown(bounded: Bounded, now: float) -> dict[str, Any]:
    """:func:`task_full` of a :class:`Bounded` task, with ``logs_omitted`` and ``logs_cut``."""
    data = task_full(bounded.task, now)
    data["logs_omitted"] = bounded.omitted
    data["logs_cut"] = bounded.cut
    return data


def agent_summary(agent: Agent) -> dict[str, Any]:
    """``{"name", "status", "workload", "last_seen" (ISO), "capabilities", "active" (task ids),
    "breaker", "breaker_failures", "generation"}``: ``agent register|heartbeat|retire`` and
    list rows. ``generation`` counts the sessions that registered the name (SPEC section 11);
    the session token itself is only in ``register``'s reply and ``agent show``."""
    return {
        "name": agent.name,
        "status": agent.status,
        "workload": agent.workload,
        "last_seen": iso(agent.last_seen) if agent.last_seen else None,
        "capabilities": list(agent.capabilities),
        "active": [str(e.get("id")) for e in agent.active],
        "breaker": agent.breaker_state,
        "breaker_failures": agent.breaker_failures,
        "generation": agent.generation,
    }


def agent_full(agent: Agent) -> dict[str, Any]:
    """``agent show --json``: every field of :meth:`Agent.to_dict`, timestamps as ISO."""
    data = agent.to_dict()
    for key in ("last_seen", "registered_at", "breaker_opened_at", "last_failure"):
        value = data.get(key)
        data[key] = iso(value) if value else None
    return data


def event_row(event: Event) -> dict[str, Any]:
    """An event in a stream (``event tail --json``, NDJSON): ``seq``, ``type``, ``time`` (ISO
    8601 UTC with milliseconds when it has them), ``channel`` and ``fields`` (an object)."""
    return {
        "seq": event.seq,
        "type": event.type,
        "time": iso_ms(event.time),
        "channel": event.channel,
        "fields": dict(event.fields),
    }


def event_brief(event: Event) -> dict[str, Any]:
    """An event as MCP tools return it (the channel is the caller's argument): ``seq``,
    ``type``, ``time`` (ISO, whole seconds), ``fields``."""
    return {
        "seq": event.seq,
        "type": event.type,
        "time": iso(event.time),
        "fields": dict(event.fields),
    }


def context_row(doc: ContextDoc) -> dict[str, Any]:
    """A context document in a list: no data, only its size (``bytes`` of compact JSON) and
    number of top-level ``keys``."""
    return {
        "project": doc.project,
        "domain": doc.domain,
        "title": doc.title or None,
        "updated": iso(doc.updated_at) if doc.updated_at else None,
        "created_by": doc.created_by,
        "keys": len(doc.data),
        "bytes": len(json.dumps(doc.data, ensure_ascii=False, separators=(",", ":")).encode()),
    }


def context_full(doc: ContextDoc) -> dict[str, Any]:
    """``context get --json``: every field, ``updated_at`` as ISO."""
    out = doc.to_dict()
    out["updated_at"] = iso(doc.updated_at) if doc.updated_at else None
    return out


#: How many characters of a body an inbox or thread listing shows (``--full``: all of it).
BODY_PREVIEW = 500


def truncated_body(message: Message, chars: int | None) -> tuple[str, int]:
    """The body cut to ``chars`` characters (None: whole) with the marker ``... [truncated, N
    more characters: coord msg read ID]``, and N (0 when nothing was cut)."""
    body = message.body
    if chars is None or len(body) <= chars:
        return body, 0
    more = len(body) - chars
    return (
        f"{body[:chars]}... [truncated, {more} more characters: coord msg read {message.id}]",
        more,
    )


def message_row(
    message: Message,
    *,
    delivered: Delivered | None = None,
    chars: int | None = None,
    body: bool = True,
) -> dict[str, Any]:
    """A message (``coord msg send|read|ack|thread --json``, each ``inbox`` item, MCP):
    ``{"id", "from", "to" (names), "subject", "thread" (its thread: the ``--thread`` given, else
    the id as text), "importance" (low | normal | high), "ack_required", "sent" (ISO 8601 UTC,
    milliseconds), "body"}``; ``body`` is cut to ``chars`` characters with a marker (see
    :func:`truncated_body`), and then ``"truncated": N`` says how many characters were left out.
    For one recipient (``delivered``) also ``"read"`` and ``"acked"`` (true, false when an ack
    is required and missing, null when none is required). ``body=False`` (MCP replies to a
    send or an ack): no ``body`` at all."""
    text, more = truncated_body(message, chars)
    out: dict[str, Any] = {
        "id": message.id,
        "from": message.sender,
        "to": list(message.to),
        "subject": message.subject,
        "thread": message.thread_id,
        "importance": message.importance,
        "ack_required": message.ack_required,
        "sent": iso_ms(message.sent),
    }
    if body:
        out["body"] = text
        if more:
            out["truncated"] = more
    if delivered is not None:
        out["read"] = delivered.read
        out["acked"] = delivered.acked
    return out


def inbox_view(inbox: Inbox, chars: int | None = BODY_PREVIEW) -> dict[str, Any]:
    """``coord msg inbox --json`` and the MCP ``inbox`` tool: ``{"agent", "unread",
    "ack_required" (counts of the whole inbox), "messages" (:func:`message_row` items, oldest
    first), "more" (matching messages left out by the limit; null when not counted)}``."""
    return {
        "agent": inbox.agent,
        "unread": inbox.unread,
        "ack_required": inbox.ack_required,
        "messages": [message_row(d.message, delivered=d, chars=chars) for d in inbox.items],
        "more": inbox.more,
    }


def reservation_row(r: Reservation, now: float) -> dict[str, Any]:
    """A file reservation (SPEC section 13): ``{"id", "agent", "patterns", "mode", "task",
    "epoch", "reason", "created", "expires", "expires_in"}``; times ISO 8601 UTC with
    milliseconds (``expires`` None: no TTL), ``expires_in`` seconds left (None: no TTL)."""
    return {
        "id": r.id,
        "agent": r.agent,
        "patterns": list(r.patterns),
        "mode": r.mode,
        "task": r.task,
        "epoch": r.epoch,
        "reason": r.reason,
        "created": iso_ms(r.created),
        "expires": None if r.expires is None else iso_ms(r.expires),
        "expires_in": None if r.expires is None else round(max(0.0, r.expires - now), 3),
    }

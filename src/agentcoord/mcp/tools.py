"""The MCP tools: thin, typed wrappers over the Python API (``coord mcp``; docs/mcp.md).

Each public method of :class:`Tools` is one tool. Its signature is the tool's input schema (the
SDK derives a pydantic model from it and validates every call against it); its docstring is not
used: the one-line descriptions sent to clients live in :data:`DESCRIPTIONS`, because every token
of the tool list is paid by every agent on every turn. Methods are synchronous and return plain
JSON data; the server (:mod:`agentcoord.mcp.server`) runs them in a worker thread, serializes the
result compactly and turns exceptions into tool errors carrying the CLI's stable codes.

This module is imported only by ``coord mcp``, after the SDK itself, so it may import ``typing``
and ``pydantic`` at run time (the SDK needs the annotations evaluated).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

from .. import shapes
from ..core.validate import check_name
from ..errors import InvalidInput, NotFound

#: Default and largest number of rows in any list a tool returns (tasks, events, agents, alerts).
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
#: How many grants a server remembers the epoch of (see :attr:`Tools.epochs`).
MAX_EPOCHS = 1024
#: The identity source of an agent that is this server's own MCP session (no tool session).
OWN_SESSION = "mcp-session"

Outcome = Literal["complete", "fail", "release"]
AgentStatus = Literal["idle", "busy", "blocked", "offline"]
Action = Literal["retry", "reopen", "cancel"]
Importance = Literal["low", "normal", "high"]


def _id_text(value: object) -> object:
    """Generated task ids are numbers, and models send them as JSON numbers (issue 16):
    a whole number is the id it spells; anything else is left to validation."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


#: A task id: text, or a whole number (advertised as a string, so it costs no tokens).
TaskId = Annotated[str, BeforeValidator(_id_text)]


def _names(value: object) -> object:
    """Recipients: a list of names, or one text of comma-separated names (``"@all"``)."""
    return [value] if isinstance(value, str) else value


#: Message recipients: a list of names; one text is taken as a list of one.
Names = Annotated[list[str], BeforeValidator(_names)]

#: Tool name -> description. Order is the order of ``tools/list``. Keep them to one short line:
#: the parameter names and the output say the rest.
DESCRIPTIONS: dict[str, str] = {
    "register": "Register this session of the agent (repeats are safe); takeover: replace "
    "another live session using the name.",
    "heartbeat": "Sign of life; renews the agent's task leases.",
    "create_task": "Create a task.",
    "claim": "Claim task id, or the next ready task (highest priority, oldest first).",
    "progress": "Report progress and/or log a message on a task you hold; renews its lease.",
    "finish": "End your hold: complete (note=result), fail (note=error, required) "
    "or release (back to pending; note=reason).",
    "list_tasks": "List tasks in claim order. status: a state or 'open'; ready: what a claim "
    "takes now; text: search.",
    "show_task": "One task in full, with its newest log lines.",
    "edit_task": "action: retry (failed/blocked), reopen (complete/cancelled), cancel; and/or "
    "edit fields; check=N ticks criterion N.",
    "emit_event": "Append an event to a channel.",
    "read_events": "Events on a channel you have not read yet (advances your cursor); "
    "peek=true: the latest ones, no cursor.",
    "context": "Get a shared context document; with data or text, replace it.",
    "send_message": "Message agents (to: names or '@all'); thread groups replies.",
    "inbox": "Your messages, bodies cut (unread only by default); id=N: one in full, marked read.",
    "ack": "Acknowledge message id (marks it read).",
    "reserve": "Reserve repo paths/globs before editing (exclusive unless shared; ttl seconds, "
    "or until task's lease ends).",
    "release_files": "Release your file reservations: paths as reserved, or all=true.",
    "check_paths": "Whether another agent's exclusive reservation covers these paths "
    "(ok=false lists holders).",
    "status": "Workspace summary: task counts, agents by health, alerts.",
    "check_in": "Timer check-in: whether a new checkpoint arrived since your last check-in.",
}

#: Tools whose ``agent`` parameter is the acting agent (defaulted by ``--agent``); in
#: ``list_tasks`` it is a filter and stays.
ACTING = frozenset(
    {
        "register",
        "heartbeat",
        "claim",
        "progress",
        "finish",
        "emit_event",
        "read_events",
        "check_in",
        "send_message",
        "inbox",
        "ack",
        "reserve",
        "release_files",
        "check_paths",
    }
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..api import Coordinator
    from ..core.models import Task
    from ..sessions import Identity
    from ..workspace import RepoPaths


def _limit(value: int) -> int:
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, not {value}")
    return value


def _scalars(data: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """A flat object of JSON scalars (task metrics)."""
    out: dict[str, Any] = {}
    for key, value in (data or {}).items():
        if not isinstance(key, str) or not key.strip() or len(key) > 64:
            raise InvalidInput(f"{what}: keys must be 1-64 characters of text, not {key!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"{what}: {key} must be a finite number")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise InvalidInput(f"{what}: {key} must be text, a number or a boolean")
        out[key] = value
    return out


def _select(row: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    return {f: row.get(f) for f in fields} if fields else row


class Tools:
    """The tool implementations, bound to one workspace and an optional default agent."""

    def __init__(
        self,
        coord: Coordinator,
        agent: str | None = None,
        *,
        resolver: Callable[[], Identity] | None = None,
    ) -> None:
        self.coord = coord
        self._default = check_name(agent, "agent name") if agent is not None else None
        #: With no ``agent``: who this server's session is, asked at the first tool call that
        #: acts as an agent (by then the tool's session-start hook has left its session link:
        #: :func:`session_identity`). None: tools need their ``agent`` argument.
        self._resolver = resolver
        self._identity: Identity | None = None
        #: Agent -> the session token its ``register`` through this server got (SPEC section
        #: 11): a repeat is the same session, and a heartbeat learns when it was replaced.
        self.sessions: dict[str, str] = {}
        #: (agent, task id) -> the epoch of the grant this server's ``claim`` got: progress and
        #: finish are fenced with it, so a session whose task was claimed again under the same
        #: name (another session) is refused (``stale_epoch``) instead of writing over it.
        self.epochs: dict[tuple[str, str], int] = {}

    def _epoch(self, agent: str, task_id: object) -> int | None:
        return self.epochs.get((agent, str(task_id)))

    def _granted(self, agent: str, task: Task) -> None:
        if len(self.epochs) >= MAX_EPOCHS:  # a long-lived server: forget the oldest grants
            del self.epochs[next(iter(self.epochs))]
        self.epochs[(agent, task.id)] = task.epoch

    # -- helpers -------------------------------------------------------------------------------
    @property
    def has_default(self) -> bool:
        """Whether tools may omit ``agent`` (then it is not advertised)."""
        return self._default is not None or self._resolver is not None

    @property
    def default_agent(self) -> str | None:
        """The agent tools act as when they are not given one: ``--agent``, else the session's
        (resolved once; a tool-session identity is registered as that session on first use)."""
        if self._default is not None or self._resolver is None:
            return self._default
        if self._identity is None:
            ident = self._resolver()
            if ident.token is not None:  # errors (a live other session) reach the tool call
                self.coord.agents.register(ident.name, as_session=ident.token)
                self.sessions[ident.name] = ident.token
            self._identity = ident
        return self._identity.name

    def end_own_session(self) -> None:
        """When the client is gone: an agent of this server's own MCP session (no tool
        session behind it: ``mcp-...``) signs off like a session-end hook (offline; its tasks
        given back unless ``release_on_session_end`` is false). A tool session's agent is left
        to that tool's hooks. Never raises (the server is stopping)."""
        ident = self._identity
        if ident is None or ident.source != OWN_SESSION or ident.token is None:
            return
        try:
            self.coord.agents.sign_off(
                ident.name,
                session=ident.token,
                release=bool(self.coord.config["release_on_session_end"]),
            )
        except Exception as exc:  # shutting down: report, never raise
            import logging

            logging.getLogger("agentcoord.mcp").warning("sign-off of %s: %s", ident.name, exc)

    def _agent(self, agent: str | None) -> str:
        name = agent if agent is not None else self.default_agent
        if name is None:
            raise InvalidInput("agent is required (or start 'coord mcp --agent NAME')")
        return check_name(name, "agent name")

    def _task(self, task: Task) -> dict[str, Any]:
        return shapes.task_summary(task, self.coord.now())

    # -- agents --------------------------------------------------------------------------------
    def register(
        self,
        *,
        capabilities: list[str] | None = None,
        note: str | None = None,
        takeover: bool = False,
        agent: str | None = None,
    ) -> dict[str, Any]:
        who = self._agent(agent)
        changed: dict[str, list[str]] = {}
        found = self.coord.agents.register(
            who,
            capabilities=capabilities,
            note=note,
            session=self.sessions.get(who),
            takeover=takeover,
            changed=changed,
        )
        self.sessions[who] = found.session
        data = shapes.agent_summary(found)
        if changed:
            data["capabilities_changed"] = changed
        return data

    def heartbeat(
        self,
        *,
        status: AgentStatus | None = None,
        workload: int | None = None,
        note: str | None = None,
        agent: str | None = None,
    ) -> dict[str, Any]:
        who = self._agent(agent)
        found, renewed = self.coord.agents.heartbeat(
            who, status=status, workload=workload, note=note, session=self.sessions.get(who)
        )
        data = shapes.agent_summary(found)
        data["renewed"] = [t.id for t in renewed]
        data["lost"] = list(renewed.lost)
        return data

    # -- tasks ---------------------------------------------------------------------------------
    def create_task(
        self,
        *,
        title: str,
        id: TaskId | None = None,
        project: str | None = None,
        priority: int = 0,
        depends_on: list[TaskId] | None = None,
        assign: str | None = None,
        total: float | None = None,
        labels: list[str] | None = None,
        requires: list[str] | None = None,
        parent: TaskId | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        task = self.coord.tasks.create(
            title,
            id=id,
            project=project,
            priority=priority,
            depends_on=depends_on or (),
            assign=assign,
            total=total,
            created_by=self.default_agent,
            labels=labels or (),
            requires=requires or (),
            parent=parent,
            description=description,
        )
        return self._task(task)

    def claim(
        self,
        *,
        id: TaskId | None = None,
        project: str | None = None,
        lease_seconds: float | None = None,
        agent: str | None = None,
    ) -> dict[str, Any]:
        who = self._agent(agent)
        task = self.coord.tasks.claim(id, agent=who, lease_seconds=lease_seconds, project=project)
        self._granted(who, task)
        return self._task(task)

    def progress(
        self,
        *,
        id: TaskId,
        current: float | None = None,
        total: float | None = None,
        percent: float | None = None,
        message: str | None = None,
        metrics: dict[str, Any] | None = None,
        agent: str | None = None,
    ) -> dict[str, Any]:
        who = self._agent(agent)
        values = _scalars(metrics, "metrics")
        tasks = self.coord.tasks
        if current is None and percent is None and not values and message is not None:
            # a log line: the API's cheaper call
            task = tasks.log(id, message, agent=who, epoch=self._epoch(who, id))
        else:
            task = tasks.progress(
                id,
                agent=who,
                current=current,
                total=total,
                percent=percent,
                metrics=values or None,
                message=message,
                epoch=self._epoch(who, id),
            )
        return self._task(task)

    def finish(
        self,
        *,
        id: TaskId,
        outcome: Outcome,
        note: str | None = None,
        agent: str | None = None,
    ) -> dict[str, Any]:
        who = self._agent(agent)
        tasks = self.coord.tasks
        epoch = self._epoch(who, id)
        if outcome == "complete":
            task = tasks.complete(id, agent=who, result=note, epoch=epoch)
        elif outcome == "fail":
            if note is None:
                raise InvalidInput("outcome fail needs note: the error")
            task = tasks.fail(id, agent=who, error=note, epoch=epoch)
        else:
            task = tasks.release(id, agent=who, reason=note, epoch=epoch)
        self.epochs.pop((who, task.id), None)
        return self._task(task)

    def list_tasks(
        self,
        *,
        status: str | None = None,
        agent: str | None = None,
        project: str | None = None,
        ready: bool | None = None,
        limit: int = DEFAULT_LIMIT,
        fields: list[str] | None = None,
        text: str | None = None,
        label: str | None = None,
        parent: TaskId | None = None,
        archived: bool = False,
    ) -> dict[str, Any]:
        limit = _limit(limit)
        board = self.coord.tasks
        if text is not None:  # task search: id, title, description, labels
            if ready or agent is not None or project is not None or parent is not None:
                raise InvalidInput("text searches by status, label and archived only")
            found, total = board.search(
                text, label=label, status=status, archived=archived, limit=limit
            )
            return {"tasks": [_select(self._task(t), fields) for t in found], "total": total}
        if ready and agent is None:  # "what can I claim now": the acting agent's claim
            agent = self.default_agent
        tasks = board.list(
            status=status,
            agent=agent,
            project=project,
            ready=ready,
            label=label,
            parent=parent,
            archived=archived,
        )
        rows = [_select(self._task(t), fields) for t in tasks[:limit]]
        return {"tasks": rows, "total": len(tasks)}

    def show_task(self, *, id: TaskId, fields: list[str] | None = None) -> dict[str, Any]:
        task, archive = self.coord.tasks.show(id)
        shown = shapes.Bounded(task, lines=shapes.SHOW_LOG_LINES, chars=shapes.SHOW_LOG_CHARS)
        data = shapes.task_shown(shown, self.coord.now())
        data["archived"] = archive is not None
        return _select(data, fields)

    def edit_task(
        self,
        *,
        id: TaskId,
        action: Action | None = None,
        reason: str | None = None,
        title: str | None = None,
        priority: int | None = None,
        description: str | None = None,
        labels: list[str] | None = None,
        add_deps: list[TaskId] | None = None,
        remove_deps: list[TaskId] | None = None,
        parent: TaskId | None = None,
        check: int | None = None,
    ) -> dict[str, Any]:
        board = self.coord.tasks
        values = (title, priority, description, parent)
        given = any(v is not None for v in values) or bool(labels or add_deps or remove_deps)
        if action is None and not given and check is None:
            raise InvalidInput("edit_task: give an action, fields to change or check")
        if reason is not None and action is None:
            raise InvalidInput("reason goes with an action (retry, reopen or cancel)")
        task = None
        if given:  # fields first: "reopen with a new title" reopens what was edited
            task = board.edit(
                id,
                title=title,
                priority=priority,
                description=description,
                labels=labels or (),
                add_deps=add_deps or (),
                remove_deps=remove_deps or (),
                parent=parent,
            )
        if check is not None:
            task = board.check(id, check)
        if action == "retry":
            task = board.retry(id, reason=reason)
        elif action == "reopen":
            task = board.reopen(id, reason=reason)
        elif action == "cancel":
            task = board.cancel(id, reason=reason)
        assert task is not None
        return self._task(task)

    # -- events --------------------------------------------------------------------------------
    def emit_event(
        self,
        *,
        channel: str,
        type: str,
        fields: dict[str, Any] | None = None,
        agent: str | None = None,
    ) -> dict[str, Any]:
        who = agent if agent is not None else self.default_agent
        event = self.coord.events.emit(channel, type, fields or {}, agent=who)
        return shapes.event_brief(event)

    def read_events(
        self,
        *,
        channel: str,
        limit: int = DEFAULT_LIMIT,
        peek: bool = False,
        agent: str | None = None,
    ) -> dict[str, Any]:
        limit = _limit(limit)
        events = self.coord.events
        if peek:
            return {"events": [shapes.event_brief(e) for e in events.tail(channel, n=limit)]}
        consumer = self._agent(agent)
        batch = events.consume(channel, consumer, limit=limit)
        if batch:  # delivered as this tool's result: acknowledge at once
            events.ack(channel, consumer, batch[-1].seq)
        return {"events": [shapes.event_brief(e) for e in batch]}

    # -- messages ------------------------------------------------------------------------------
    def send_message(
        self,
        *,
        to: Names,
        subject: str,
        body: str = "",
        thread: str | None = None,
        ack_required: bool = False,
        importance: Importance = "normal",
        agent: str | None = None,
    ) -> dict[str, Any]:
        message = self.coord.messages.send(
            self._agent(agent),
            to,
            subject,
            body,
            thread=thread,
            ack_required=ack_required,
            importance=importance,
        )
        return shapes.message_row(message, body=False)

    def inbox(
        self,
        *,
        id: int | None = None,
        unread: bool = True,
        limit: int = DEFAULT_LIMIT,
        agent: str | None = None,
    ) -> dict[str, Any]:
        me = self._agent(agent)
        messages = self.coord.messages
        if id is not None:
            item = messages.read(id, me)
            return shapes.message_row(item.message, delivered=item)
        return shapes.inbox_view(messages.inbox(me, unread=unread, limit=_limit(limit)))

    def ack(self, *, id: int, agent: str | None = None) -> dict[str, Any]:
        item = self.coord.messages.ack(id, self._agent(agent))
        return shapes.message_row(item.message, delivered=item, body=False)

    # -- context -------------------------------------------------------------------------------
    def context(
        self,
        *,
        project: str,
        domain: str,
        data: dict[str, Any] | None = None,
        text: str | None = None,
        title: str | None = None,
    ) -> dict[str, Any]:
        contexts = self.coord.contexts
        if data is not None or text is not None:
            return shapes.context_row(
                contexts.put(
                    project,
                    domain,
                    data if data is not None else {},
                    title=title,
                    text=text,
                    created_by=self.default_agent,
                )
            )
        if title is not None:
            raise InvalidInput("title is only used with data or text (a put)")
        return shapes.context_full(contexts.get(project, domain))

    # -- file reservations (SPEC section 13) ---------------------------------------------------
    def _repo(self) -> RepoPaths:
        from ..workspace import RepoPaths

        ws = self.coord.workspace
        return RepoPaths.here(fallback=ws.project_root if ws is not None else None)

    def reserve(
        self,
        *,
        paths: list[str],
        shared: bool = False,
        ttl: float | None = None,
        task: TaskId | None = None,
        reason: str | None = None,
        agent: str | None = None,
    ) -> dict[str, Any]:
        who = self._agent(agent)
        patterns = self._repo().patterns(paths)
        r = self.coord.reservations.reserve(
            who, patterns, shared=shared, ttl=ttl, task=task, reason=reason
        )
        return shapes.reservation_row(r, self.coord.now())

    def release_files(
        self, *, paths: list[str] | None = None, all: bool = False, agent: str | None = None
    ) -> dict[str, Any]:
        who = self._agent(agent)
        patterns = self._repo().patterns(paths) if paths else None
        gone = self.coord.reservations.release(who, patterns, all=all)
        now = self.coord.now()
        return {"released": [shapes.reservation_row(r, now) for r in gone]}

    def check_paths(self, *, paths: list[str], agent: str | None = None) -> dict[str, Any]:
        who = agent if agent is not None else self.default_agent
        found = self.coord.reservations.conflicts_for(self._repo().patterns(paths), who)
        return {"ok": not found, "conflicts": [c.to_dict() for c in found]}

    # -- overview ------------------------------------------------------------------------------
    def status(self, *, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
        limit = _limit(limit)
        data = self.coord.reports.status()
        keep = ("agent", "class", "status", "workload", "active", "assigned", "reason")
        agents = [{k: row.get(k) for k in keep} for row in data["agents"]]
        out: dict[str, Any] = {
            "time": data["time"],
            "tasks": {k: v for k, v in data["tasks"].items() if v},
            "total_tasks": data["total_tasks"],
            "attention": data["attention"],
            "agents": agents[:limit],
            "alerts": data["alerts"][:limit],
        }
        for key, full in (("agents", agents), ("alerts", data["alerts"])):
            if len(full) > limit:
                out[f"more_{key}"] = len(full) - limit
        return out

    def check_in(self, *, timer: str | None = None, agent: str | None = None) -> dict[str, Any]:
        from ..timer.check import check, report_json, summarize
        from ..timer.files import TimerFiles

        workspace = self.coord.workspace
        if workspace is None:
            raise NotFound("no workspace directory: the timer's files live next to one (--dir)")
        who = agent if agent is not None else self.default_agent
        consumer = _timer_consumer(check_name(who, "agent name")) if who is not None else None
        result = check(TimerFiles(workspace.timer_dir, timer), consumer=consumer)
        summary = summarize(result, self.coord, agent=who) if result.new else None
        return report_json(result, summary)


def session_identity() -> Identity:
    """The agent of a stdio MCP server started by an agent tool without ``--agent``:
    ``COORD_AGENT``, else the session link the tool's session-start hook left (so the server
    and the hooks are one agent and one session), else a name of this server's own MCP session
    (``mcp-`` and 8 random hex digits, with a random session token)."""
    from ..domain.agents import new_session
    from ..sessions import Identity, resolve

    found = resolve(None)
    if found is not None:
        return found
    token = new_session()
    return Identity(f"mcp-{token[:8]}", OWN_SESSION, token=token)


def _timer_consumer(agent: str) -> str:
    """The agent's own last-check file, so agents never take each other's check-ins. Timer
    consumer names allow no dots (they would clash with file suffixes) and 48 characters."""
    name = agent.replace(".", "_")
    if name != agent or len(name) > 48:
        import hashlib

        name = f"{name[:39]}-{hashlib.sha1(agent.encode()).hexdigest()[:8]}"
    return name


def unknown_arguments(tool: str, given: dict[str, Any], known: set[str]) -> None:
    """Refuse arguments a tool does not take: a misspelt ``task_id`` must not turn ``claim``
    into "claim the next task"."""
    extra = sorted(set(given) - known)
    if extra:
        raise InvalidInput(
            f"{tool}: unknown argument(s) {', '.join(map(repr, extra))}; "
            f"it takes {', '.join(sorted(known))}"
        )

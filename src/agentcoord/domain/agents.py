"""Agents (``coord.agents``): registration, heartbeats, retirement, the circuit breaker and the
agent file's task views.

The task records are the truth about ownership. The agent record's ``active``/``recent``/``stats``
are views kept current on every ownership change of that agent's tasks (claim, complete, fail,
release, reclaim) and rebuildable from the tasks at any time (:meth:`Agents.rebuild_views`).
Progress figures in the view are refreshed at most every ``view_refresh`` seconds per task, so a
chatty progress loop costs one write, not two.

The area knows nothing of the board: :class:`AgentHooks` (wired by
:class:`agentcoord.api.Coordinator`) renews an agent's leases on a heartbeat and gives back its
tasks when it retires.
"""

from __future__ import annotations

import re

from ..core import breaker
from ..core.leases import Renewal
from ..core.models import AGENT_STATES, COMPLETE, FAILED, IN_PROGRESS, Agent, Task, TaskHead
from ..core.validate import check_name, normalize_block
from ..errors import BreakerOpen, Conflict, CorruptData, InvalidInput, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..core.config import Config
    from ..store.base import Store

    # Agents.list shadows the builtin inside the class body.
    Names = list[str]
    TaskList = list[Task]

RECENT_WINDOW = 24 * 3600.0
#: The agent file lists at most this many recent completions (and its 24 h figures are computed
#: over them): every claim and completion rewrites the file. ``coord metrics`` gives exact
#: figures over any window from the task records.
MAX_RECENT = 25
MAX_NOTE = 2000


def _status(value: str) -> str:
    norm = value.strip().lower()
    if norm not in AGENT_STATES:
        raise InvalidInput(f"unknown agent status {value!r}: one of {', '.join(AGENT_STATES)}")
    return norm


def _workload(value: object) -> int:
    if isinstance(value, str):
        text = value.strip().rstrip("%").strip()
        try:
            value = float(text)
        except ValueError:
            raise InvalidInput(f"workload must be a number from 0 to 100, not {text!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise InvalidInput(f"workload must be a number from 0 to 100, not {value!r}")
    return round(value)


def active_entry(task: Task, now: float) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": task.id,
        "title": task.title,
        "project": task.project,
        "status": task.status,
        "started": task.started_at,
        "percent": task.progress_percent(),
        "current": task.progress_current,
        "total": task.progress_total,
        "unit": task.progress_unit,
        "metrics": {k: v for k, v in task.metrics.items() if k not in ("step", "total_steps")},
        "updated": now,
    }
    return entry


def recent_entry(task: Task) -> dict[str, Any]:
    end = task.completed_at or task.updated_at or 0.0
    start = task.started_at if task.started_at is not None else end
    return {
        "id": task.id,
        "title": task.title,
        "completed": end,
        "duration": max(0, round(end - start)),  # whole seconds, as people read them
        "success": task.status == COMPLETE,
    }


def compute_stats(recent: list[dict[str, Any]]) -> dict[str, Any]:
    finished = len(recent)
    succeeded = sum(1 for r in recent if r.get("success"))
    durations = [float(r.get("duration") or 0.0) for r in recent]
    return {
        "success_rate": (100.0 * succeeded / finished) if finished else None,
        "succeeded": succeeded,
        "finished": finished,
        "failed": finished - succeeded,
        "average_duration": round(sum(durations) / finished) if finished else None,
    }


def new_session() -> str:
    """A fresh session token: 16 hex digits (``os.urandom``: no ``random``/``secrets`` import
    on the CLI's start-up path)."""
    import os

    raw = os.urandom(8)
    return raw.hex()


def _session(token: str) -> str:
    if not isinstance(token, str) or not re.fullmatch(r"[0-9a-f]{1,64}", token):
        raise InvalidInput(f"session must be the token register returned, not {token!r:.70}")
    return token


def _stuck_bound(config: Config) -> float:
    """The monitor's ``stuck`` bound (seconds): a name silent this long is no longer live."""
    table = config["monitor"]
    value = table.get("stuck", 300) if isinstance(table, dict) else 300
    return float(value)


def last_sign(agent: Agent) -> float:
    """The agent's newest sign of life its record knows: its heartbeat or registration, or an
    update of a task it holds (the view's ``updated`` times)."""
    seen = agent.last_seen
    for entry in agent.active:
        updated = entry.get("updated")
        if isinstance(updated, (int, float)) and not isinstance(updated, bool):
            seen = max(seen, float(updated))
    return seen


def _check_alive(agent: Agent, session: str | None) -> None:
    """A heartbeat's identity checks: retired agents and replaced sessions are refused."""
    if agent.status == "retired":
        raise Conflict(
            f"agent {agent.name} is retired: 'coord agent register {agent.name}' brings it back",
            agent=agent.name,
            status="retired",
        )
    if session is not None and agent.session and session != agent.session:
        raise Conflict(
            f"agent {agent.name} was taken over by another session (generation "
            f"{agent.generation}): this session was replaced; stop, or register again with "
            "--takeover",
            agent=agent.name,
            generation=agent.generation,
            replaced=True,
        )


def _renew_nothing(name: str) -> Renewal:
    return Renewal()


def _hold_nothing(name: str, reason: str) -> None:
    return None


class AgentHooks:
    """What the agents area asks of the board.

    - ``renew_leases(agent)``: renew every live lease the agent holds (a heartbeat); returns a
      :class:`~agentcoord.core.leases.Renewal` (the tasks renewed, and the ids ``lost``);
    - ``release_all(agent, reason)``: give back every task the agent holds (it retired, or its
      session ended).
    """

    __slots__ = ("release_all", "renew_leases")

    def __init__(
        self,
        *,
        renew_leases: Callable[[str], Renewal] = _renew_nothing,
        release_all: Callable[[str, str], None] = _hold_nothing,
    ) -> None:
        self.renew_leases = renew_leases
        self.release_all = release_all


class Agents:
    """The agent operations, over a :class:`~agentcoord.store.base.Store`.

    ``config`` supplies ``breaker_threshold`` and ``breaker_cooldown``, ``clock`` the time (POSIX
    seconds), ``hooks`` the link to the board (:class:`AgentHooks`)."""

    def __init__(
        self,
        store: Store,
        config: Config,
        clock: Callable[[], float],
        hooks: AgentHooks | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.hooks = hooks if hooks is not None else AgentHooks()

    # -- reading -----------------------------------------------------------------------------
    def get(self, name: str) -> Agent:
        return self.store.get_agent(check_name(name, "agent name"))

    def list(
        self,
        *,
        status: str | None = None,
        min_workload: object = None,
        include_retired: bool = False,
        errors: list[CorruptData] | None = None,
    ) -> list[Agent]:
        wanted = _status(status) if status is not None else None
        floor = _workload(min_workload) if min_workload is not None else None
        out = []
        for agent in self.store.list_agents(errors=errors):
            if wanted is not None and agent.status != wanted:
                continue
            if wanted is None and not include_retired and agent.status == "retired":
                continue
            if floor is not None and agent.workload < floor:
                continue
            out.append(agent)
        out.sort(key=lambda a: a.name)
        return out

    # -- the agent's own updates -----------------------------------------------------------
    def register(
        self,
        name: str,
        *,
        capabilities: Names | None = None,
        note: str | None = None,
        workload: object = None,
        session: str | None = None,
        takeover: bool = False,
        changed: dict[str, Names] | None = None,
        as_session: str | None = None,
    ) -> Agent:
        """Register ``name`` as a new session of the agent (or bring a retired one back) and
        return the agent; its ``session`` is the token of this registration (SPEC section 11).

        ``capabilities``: none given keeps the ones the agent has; given, they replace them,
        and ``changed`` (when passed) receives ``{"added": [...], "removed": [...]}`` if that
        changed an existing agent's capabilities (so the interface can say what changed).

        One name = one agent: when another session registered the name and it is live (not
        retired or offline, and a sign of life within the monitor's ``stuck`` bound, 300 s),
        this raises :class:`Conflict` (exit 4) unless ``takeover`` is given. Passing the
        ``session`` token a previous registration returned makes a repeat by that session safe
        (same session, nothing bumped). A new session bumps ``generation``, so the replaced
        one learns it at its next :meth:`heartbeat` with its token. ``as_session`` instead
        names the token itself (an agent tool's session, :mod:`agentcoord.core.identity`): the
        hooks and the MCP server of one tool session then register as one session of the name.
        :class:`InvalidInput` (exit 2) for a bad name, capability, note, workload or token."""
        check_name(name, "agent name")
        caps = list(dict.fromkeys(check_name(c, "capability") for c in capabilities or []))
        load = _workload(workload) if workload is not None else None
        text = self._note(note)
        own: str | None
        if as_session is not None:
            own = fresh = _session(as_session)
        else:
            own = _session(session) if session is not None else None
            fresh = new_session()
        now = self.clock()

        diff: dict[str, Names] = {}

        def fn(agent: Agent | None) -> Agent:
            diff.clear()
            if agent is None:
                agent = self._new(name, now)
            elif caps and caps != agent.capabilities:
                diff["added"] = [c for c in caps if c not in agent.capabilities]
                diff["removed"] = [c for c in agent.capabilities if c not in caps]
            if not (own and agent.session == own):  # a new session of the name
                if not takeover:
                    self._refuse_live(agent, now)
                agent.session = fresh
                agent.generation += 1
            if agent.status in ("retired", "offline"):
                agent.status = "idle"
            agent.last_seen = now
            if caps:
                agent.capabilities = caps
            if text is not None:
                agent.notes = text
            if load is not None:
                agent.workload = load
            return agent

        agent = self.store.update_agent(name, fn)
        assert agent is not None
        if changed is not None and (diff.get("added") or diff.get("removed")):
            changed.update(diff)
        return agent

    def _refuse_live(self, agent: Agent, now: float) -> None:
        """:class:`Conflict` when another session holds ``agent``'s name and is live."""
        if not agent.session or agent.status in ("retired", "offline"):
            return
        seen = last_sign(agent)
        bound = _stuck_bound(self.config)
        if now - seen >= bound:
            return
        ago = max(0, round(now - seen))
        raise Conflict(
            f"agent {agent.name} is live (last seen {ago}s ago, generation {agent.generation}): "
            "another session uses this name; pass --takeover (MCP: takeover) to replace it, "
            "or register under another name",
            agent=agent.name,
            generation=agent.generation,
            last_seen=ago,
        )

    def require(self, name: str, *, purpose: str = "claim", register: bool = False) -> Agent:
        """The registered agent ``name``, for ``purpose`` ("claim", "assign" or "act": a lease
        holder's update). Strict identity (SPEC section 11):

        - never registered: :class:`NotFound` (exit 3) saying how to register it, unless
          ``register`` or the workspace's ``auto_register`` setting is true (then it is
          registered here, without a session);
        - retired: :class:`Conflict` (exit 4) for a claim or an assignment."""
        check_name(name, "agent name")
        try:
            agent = self.store.get_agent(name)
        except NotFound:
            if not (register or bool(self.config.get("auto_register", False))):
                also = "" if purpose == "act" else ", or pass --register"
                raise NotFound(
                    f"unknown agent {name!r}: it is not registered (never was, or cleanup "
                    f"archived it); run 'coord agent register {name}' (MCP: the register "
                    f"tool) first{also}",
                    agent=name,
                ) from None
            agent = self._ensure(name)
        if agent.status == "retired" and purpose in ("claim", "assign"):
            verb = "claim" if purpose == "claim" else "be assigned"
            raise Conflict(
                f"agent {name} is retired and cannot {verb} tasks: 'coord agent register "
                f"{name}' brings it back",
                agent=name,
                status="retired",
            )
        return agent

    def _ensure(self, name: str) -> Agent:
        """Register ``name`` implicitly (``--register``, ``auto_register``): created if still
        missing, without a session; a concurrent registration wins and is kept."""
        now = self.clock()

        def fn(agent: Agent | None) -> Agent | None:
            return self._new(name, now) if agent is None else None

        agent = self.store.update_agent(name, fn)
        assert agent is not None
        return agent

    def _new(self, name: str, now: float) -> Agent:
        return Agent(
            name,
            registered_at=now,
            last_seen=now,
            breaker_threshold=int(self.config["breaker_threshold"]),
        )

    def _note(self, note: str | None) -> str | None:
        if note is None:
            return None
        if len(note) > MAX_NOTE:
            raise InvalidInput(f"note is {len(note)} characters; the limit is {MAX_NOTE}")
        return normalize_block(note)

    def heartbeat(
        self,
        name: str,
        *,
        status: str | None = None,
        workload: object = None,
        note: str | None = None,
        session: str | None = None,
    ) -> tuple[Agent, Renewal]:
        """Record a sign of life, optionally status/workload/note, and renew the agent's leases
        (refreshing their progress in the agent file's view in the same write). Returns the
        agent and the :class:`~agentcoord.core.leases.Renewal`: the tasks whose leases were
        renewed, and in ``.lost`` the ids of those it no longer holds (dropped from the view).

        :class:`NotFound` (exit 3) for an agent never registered (a heartbeat registers
        nothing); :class:`Conflict` (exit 4) for a retired agent (``register`` brings it back)
        and, when ``session`` is given, for a session another registration replaced (SPEC
        section 11): nothing is renewed then."""
        check_name(name, "agent name")
        new_status = _status(status) if status is not None else None
        load = _workload(workload) if workload is not None else None
        text = self._note(note)
        own = _session(session) if session is not None else None
        unknown = f"unknown agent {name!r}: run 'coord agent register {name}' first"
        try:
            current = self.store.get_agent(name)  # an unknown agent renews nothing
        except NotFound:
            raise NotFound(unknown, agent=name) from None
        _check_alive(current, own)
        renewed = self.hooks.renew_leases(name)
        now = self.clock()

        def fn(agent: Agent | None) -> Agent:
            if agent is None:
                raise NotFound(unknown, agent=name)
            _check_alive(agent, own)
            fresh = {t.id: active_entry(t, now) for t in renewed}
            gone = set(renewed.lost)
            agent.active = [
                fresh.pop(str(e.get("id")), e) for e in agent.active if e.get("id") not in gone
            ]
            agent.active.extend(fresh.values())
            agent.last_seen = now
            if new_status is not None:
                agent.status = new_status
            elif agent.status == "offline":
                agent.status = "idle"
            if load is not None:
                agent.workload = load
            if text is not None:
                agent.notes = text
            return agent

        agent = self.store.update_agent(name, fn)
        assert agent is not None
        return agent, renewed

    def retire(self, name: str) -> Agent:
        """Mark the agent retired and give back the tasks it holds (pending, no attempt used)."""
        check_name(name, "agent name")

        def fn(agent: Agent | None) -> Agent:
            if agent is None:
                raise NotFound(f"unknown agent {name!r}", agent=name)
            agent.status = "retired"
            agent.workload = 0
            return agent

        agent = self.store.update_agent(name, fn)
        assert agent is not None
        self.hooks.release_all(name, f"{name} retired")
        return self.get(name)

    def check_session(self, name: str, token: str) -> None:
        """:class:`Conflict` (exit 4) when another live session holds ``name`` (its registration
        token is not ``token``): an agent tool's session acting under a name that another
        session uses (the same ``COORD_AGENT`` in two sessions) is refused rather than sharing
        it (SPEC sections 11 and 12). An unknown agent, or one whose session is gone (offline,
        retired or silent past the ``stuck`` bound), passes."""
        own = _session(token)
        try:
            agent = self.store.get_agent(check_name(name, "agent name"))
        except NotFound:
            return
        if agent.session and agent.session != own:
            self._refuse_live(agent, self.clock())

    def sign_off(self, name: str, *, session: str | None = None, release: bool = True) -> Agent:
        """The end of an agent tool's session (SPEC section 12): the agent goes ``offline`` and,
        with ``release``, gives back the tasks it holds (pending, no attempt used) and those
        reserved for it; without, its leases run out as usual. Nothing happens, and
        :class:`Conflict` (exit 4) is raised, when ``session`` was replaced by another
        registration (that session now holds the name and its work)."""
        check_name(name, "agent name")
        own = _session(session) if session is not None else None
        now = self.clock()

        def fn(agent: Agent | None) -> Agent:
            if agent is None:
                raise NotFound(f"unknown agent {name!r}", agent=name)
            _check_alive(agent, own)
            agent.status = "offline"
            agent.workload = 0
            agent.last_seen = now
            return agent

        agent = self.store.update_agent(name, fn)
        assert agent is not None
        if release:
            self.hooks.release_all(name, f"the session of {name} ended")
            return self.get(name)
        return agent

    # -- hooks called by the task board ----------------------------------------------------
    def before_claim(self, name: str, register: bool = False) -> None:
        """Strict identity (:meth:`require`: an unknown agent is exit 3 unless ``register`` or
        ``auto_register``; a retired one exit 4), then the circuit breaker (raises
        :class:`BreakerOpen`, exit 4)."""
        agent = self.require(name, purpose="claim", register=register)
        now = self.clock()
        cooldown = self.config.float("breaker_cooldown")
        holds = bool(agent.active)
        if not breaker.check_claim(agent, now, cooldown, holds):
            return

        def to_half_open(current: Agent | None) -> Agent | None:
            if current is not None and current.breaker_state == "half_open":
                # A concurrent claim of this agent moved it first: the trial is taken.
                raise BreakerOpen(
                    f"circuit breaker of {name} is half-open: its one trial claim is taken",
                    agent=name,
                )
            if current is None or current.breaker_state != "open":
                return None
            breaker.check_claim(current, self.clock(), cooldown, bool(current.active))
            current.breaker_state = "half_open"
            return current

        self.store.update_agent(name, to_half_open)

    def on_task_change(
        self, task: Task, previous: str | None, *, progress_only: bool = False
    ) -> None:
        """Bring the views of the task's agent (and its previous holder) up to date."""
        now = self.clock()
        if previous and previous != task.agent:
            self._update_view(previous, task, now, holder=False)
        if task.agent:
            self._update_view(task.agent, task, now, holder=True, progress_only=progress_only)

    def _update_view(
        self, name: str, task: Task, now: float, *, holder: bool, progress_only: bool = False
    ) -> None:
        def fn(agent: Agent | None) -> Agent | None:
            if agent is None:
                return None  # views never register an agent (SPEC section 11)
            agent.active = [e for e in agent.active if e.get("id") != task.id]
            if holder and task.status == IN_PROGRESS:
                # Under the agent's lock, look at the task as stored now: if another agent took
                # it over since this update was decided, that agent's update removes it from
                # this view; adding it back here would leave a task in two agents' views.
                current = self._current(task.id)
                if current is not None and (current.agent, current.epoch, current.status) == (
                    name,
                    task.epoch,
                    IN_PROGRESS,
                ):
                    agent.active.append(active_entry(task, now))
                if agent.status == "idle":
                    agent.status = "busy"
            elif holder and task.status in (COMPLETE, FAILED) and not progress_only:
                agent.recent = [r for r in agent.recent if r.get("id") != task.id]
                agent.recent.insert(0, recent_entry(task))
                if task.status == COMPLETE:
                    breaker.record_success(agent)
                else:
                    breaker.record_failure(agent, now, task.error)
            agent.recent = [
                r for r in agent.recent if now - float(r.get("completed") or 0) <= RECENT_WINDOW
            ][:MAX_RECENT]
            agent.stats = compute_stats(agent.recent)
            if not agent.active and agent.status == "busy":
                agent.status = "idle"
            return agent

        self.store.update_agent(name, fn, durable=False)

    def _current(self, task_id: str) -> TaskHead | None:
        try:
            return self.store.get_task_head(task_id)  # an index lookup: no parse
        except (NotFound, CorruptData):
            return None

    def rebuild_views(self, name: str | None = None) -> Names:
        """Recompute every agent's views from the task records (repair after hand edits)."""
        now = self.clock()
        tasks = self.store.list_tasks()
        names = [name] if name else [a.name for a in self.store.list_agents()]
        for agent_name in names:
            mine = [t for t in tasks if t.agent == agent_name]

            def fn(agent: Agent | None, mine: TaskList = mine) -> Agent | None:
                if agent is None:
                    return None
                agent.active = [active_entry(t, now) for t in mine if t.status == IN_PROGRESS]
                done = [
                    t
                    for t in mine
                    if t.status in (COMPLETE, FAILED)
                    and now - (t.completed_at or 0) <= RECENT_WINDOW
                ]
                done.sort(key=lambda t: t.completed_at or 0, reverse=True)
                agent.recent = [recent_entry(t) for t in done][:MAX_RECENT]
                agent.stats = compute_stats(agent.recent)
                return agent

            self.store.update_agent(agent_name, fn, durable=False)
        return names

"""The monitor: tell busy from stuck from dead (SPEC section 4, Monitor).

An agent's *silence* is the time since its latest sign of life, the newest of:

- ``heartbeat``: the agent record's ``last_seen`` (``**Last Updated**`` in ``agent-{name}.md``,
  set by ``register``/``heartbeat``; a person's edit of that line counts as written);
- ``task``: an update the agent itself made to a task it holds or finished (claim, progress, log,
  lease renewal, complete, fail). A failure the store recorded because the agent's lease ran out
  is not the agent's doing and does not count;
- ``git``: a commit on any ref of the project's repository whose author name, author e-mail local
  part or ``Coord-Agent:`` trailer is the agent's name (:mod:`agentcoord.store.gitlog`).

The classes judge agents that hold work (SPEC section 4, Monitor): an agent *holds work* when a
task is ``in_progress`` with it, or ``assigned`` to it and claimable by it now (every dependency
complete, no open child: :func:`agentcoord.domain.tasks.claimable_now`, the rule ``claim``
uses). An assignment the agent cannot claim yet is not work it can be ignoring: the row lists it
(``assigned`` and ``waiting``) but it does not count. An agent that holds work falls into one of
the timer seed's "Monitoring Thresholds" classes by its silence, each with the seed's action; for
an agent whose work is only assigned (not yet claimed) the silence judged is at most the time
since that work became claimable (the assignment, or the last dependency or child to finish,
whichever is later), because a silence from before the work could start says nothing about how
the agent handles it.

An agent that holds no work is ``Idle`` however long it has been silent, up to the stale age
(``monitor.gone``, 24 h by default: the age ``coord cleanup`` archives silent agents at), and
``Gone`` past it (or with no sign of life at all). Idle and Gone raise no alert and never make
``coord monitor`` exit 1 or an ``--adaptive`` timer snap back. Each row still carries the class
the silence alone would give (``pace``): routing uses it to send new work only to agents seen
lately.

An agent that itself reports status ``blocked`` is classed Blocked whatever its silence or work:
it is asking for help. Retired agents are not monitored, nor are agents that reported ``offline``
and hold no work.

Config (``config.json``, key ``monitor``): ``normal`` 60, ``acceptable`` 120, ``concerning`` 180,
``stuck`` 300 (seconds; silence below each bound is that class, at/above ``stuck`` is Blocked),
``gone`` 86400 (seconds of silence after which an agent without work is Gone) and ``git`` (true)
to read commits.
"""

from __future__ import annotations

from ..core.clock import duration, iso
from ..core.models import ASSIGNED, BREAKER_OPEN, COMPLETE, FAILED, IN_PROGRESS
from ..errors import InvalidInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..core.config import Config
    from ..core.models import Agent, Task
    from ..errors import CorruptData
    from ..store.base import Store
    from ..store.gitlog import Commit

NORMAL, ACCEPTABLE, CONCERNING, STUCK, BLOCKED = (
    "Normal",
    "Acceptable",
    "Concerning",
    "Stuck",
    "Blocked",
)
IDLE, GONE = "Idle", "Gone"
#: The silence classes (timer seed), for agents that hold work, least to most urgent.
CLASSES = (NORMAL, ACCEPTABLE, CONCERNING, STUCK, BLOCKED)
#: The classes of agents that hold no work: never an alert.
RESTING = (IDLE, GONE)
#: Every class a row can have, in the order summaries list them.
ALL_CLASSES = (*CLASSES, *RESTING)
#: The seed table's "Action" column, and the same for Idle and Gone.
ACTIONS = {
    NORMAL: "Monitor only",
    ACCEPTABLE: "Check work log",
    CONCERNING: "Investigate",
    STUCK: "Intervene",
    BLOCKED: "Immediate action",
    IDLE: "None (holds no work)",
    GONE: "None (coord cleanup may archive it)",
}
HEALTHY = frozenset({NORMAL, ACCEPTABLE})
ATTENTION = frozenset({STUCK, BLOCKED})
BOUND_KEYS = ("normal", "acceptable", "concerning", "stuck")
#: Task states in which a task can be work its agent holds (``in_progress``: claimed;
#: ``assigned``: only while that agent can claim it now, see :class:`Readiness`).
WORK_STATES = frozenset({IN_PROGRESS, ASSIGNED})
#: Default stale age (``monitor.gone``): as ``coord cleanup``'s 24 h for silent agents.
GONE_AFTER = 24 * 3600.0
#: How far back git is read: older commits cannot change any class.
GIT_WINDOW = 24 * 3600.0


def thresholds(config: Any) -> tuple[float, float, float, float]:
    """The four class bounds from the config's ``monitor`` table, validated (exit 2 if bad)."""
    table = config["monitor"]
    if not isinstance(table, dict):
        raise InvalidInput(f"config 'monitor' must be an object, not {table!r}")
    out = []
    for key in BOUND_KEYS:
        value = table.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise InvalidInput(f"config monitor.{key} must be a number of seconds, not {value!r}")
        out.append(float(value))
    if out != sorted(out):
        shown = ", ".join(f"{k}={v:g}" for k, v in zip(BOUND_KEYS, out, strict=True))
        raise InvalidInput(f"config monitor thresholds must not decrease: {shown}")
    return out[0], out[1], out[2], out[3]


def gone_after(config: Any) -> float:
    """``monitor.gone``: seconds of silence after which an agent without work is Gone (exit 2
    if bad)."""
    table = config["monitor"]
    value = table.get("gone", GONE_AFTER) if isinstance(table, dict) else GONE_AFTER
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise InvalidInput(f"config monitor.gone must be a number of seconds, not {value!r}")
    return float(value)


def work_since(task: Task, became_ready: float | None = None) -> float | None:
    """Since when ``task`` has been work its agent holds (None if it is not work).
    ``became_ready``: for an assigned task, when its last dependency or child finished."""
    if task.status == IN_PROGRESS:
        return task.started_at or task.assigned_at or task.updated_at
    if task.status == ASSIGNED:
        since = task.assigned_at or task.updated_at or task.created_at
        if became_ready is not None and (since is None or became_ready > since):
            return became_ready
        return since
    return None


class Readiness:
    """Which assigned tasks of a snapshot their agent can claim now, and since when: the
    ``claim`` rule (:func:`agentcoord.domain.tasks.claimable_now`) over the tasks already read,
    computed once per pass."""

    __slots__ = ("children", "now", "parents", "states", "tasks")

    def __init__(self, tasks: list[Task], now: float) -> None:
        from .tasks import open_parents

        self.now = now
        self.tasks = {t.id: t for t in tasks}
        self.states = {t.id: t.status for t in tasks}
        self.parents = open_parents(tasks)
        self.children: dict[str, list[Task]] = {}
        for t in tasks:
            if t.parent:
                self.children.setdefault(t.parent, []).append(t)

    def claimable(self, task: Task) -> bool:
        from .tasks import claimable_now

        return claimable_now(task, self.states, self.parents, self.now, task.agent)

    def since(self, task: Task) -> float | None:
        """When the last of ``task``'s dependencies and children finished (None: none did)."""
        done = [self.tasks[d] for d in task.depends_on if d in self.tasks]
        done += self.children.get(task.id, [])
        times = [t.completed_at or t.updated_at for t in done]
        return max((x for x in times if x is not None), default=None)


def classify_silence(silence: float | None, bounds: tuple[float, ...]) -> str:
    """The seed class of ``silence`` seconds (None: never seen, Blocked)."""
    if silence is None:
        return BLOCKED
    for name, bound in zip(CLASSES, bounds, strict=False):
        if silence < bound:
            return name
    return BLOCKED


def own_update(task: Task, name: str) -> float | None:
    """When ``name`` last changed ``task`` itself (None if it holds or finished nothing here)."""
    if task.agent != name:
        return None
    if task.status == IN_PROGRESS:
        return task.updated_at or task.started_at
    if task.status == COMPLETE:
        return task.completed_at or task.updated_at
    if task.status == FAILED:
        last = task.logs[-1].message if task.logs else ""
        if last.startswith(f"lease of {name} expired"):
            return task.started_at  # the store failed it; the claim was the agent's last act
        return task.completed_at or task.updated_at
    return None


class AgentHealth:
    """One row of the monitor. ``to_dict`` is the ``coord monitor --json`` row shape."""

    __slots__ = (
        "action",
        "active",
        "agent",
        "assigned",
        "breaker",
        "breaker_retry",
        "expired",
        "health",
        "last_sign",
        "pace",
        "reason",
        "silence",
        "source",
        "status",
        "waiting",
        "workload",
    )

    def __init__(
        self,
        agent: str,
        *,
        health: str,
        silence: float | None,
        last_sign: float | None,
        source: str | None,
        status: str,
        workload: int,
        breaker: str,
        breaker_retry: float | None = None,
        active: list[str] | None = None,
        expired: list[str] | None = None,
        reason: str = "",
        assigned: list[str] | None = None,
        pace: str | None = None,
        waiting: list[str] | None = None,
    ) -> None:
        self.agent = agent
        self.health = health
        #: The class the silence alone gives (for Idle/Gone too): how recently it was seen.
        self.pace = pace if pace is not None else health
        self.action = ACTIONS[health]
        self.silence = silence
        self.last_sign = last_sign
        self.source = source
        self.status = status
        self.workload = workload
        self.breaker = breaker
        self.breaker_retry = breaker_retry
        self.active = active if active is not None else []
        self.expired = expired if expired is not None else []
        self.reason = reason
        #: Tasks assigned to the agent and not yet claimed.
        self.assigned = assigned if assigned is not None else []
        #: Those of ``assigned`` it cannot claim yet (a dependency or child still open): not
        #: work it holds.
        self.waiting = waiting if waiting is not None else []

    @property
    def attention(self) -> bool:
        """Stuck or Blocked: an agent that holds work (or reports BLOCKED) needs a person."""
        return self.health in ATTENTION

    @property
    def holds_work(self) -> bool:
        return bool(self.active or set(self.assigned) - set(self.waiting))

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "class": self.health,
            "action": self.action,
            "silence": round(self.silence, 1) if self.silence is not None else None,
            "last_sign": iso(self.last_sign) if self.last_sign is not None else None,
            "source": self.source,
            "status": self.status,
            "workload": self.workload,
            "breaker": self.breaker,
            "breaker_retry": iso(self.breaker_retry) if self.breaker_retry is not None else None,
            "active": list(self.active),
            "assigned": list(self.assigned),
            "waiting": list(self.waiting),
            "expired": list(self.expired),
            "reason": self.reason,
        }

    def __repr__(self) -> str:
        return f"AgentHealth({self.agent!r}, {self.health}, silence={self.silence!r})"


class Snapshot:
    """Everything one monitor pass reads, read once: agents, tasks, recent commits, and the
    records that could not be read (``errors``; those of agents also in ``agent_errors``)."""

    __slots__ = ("agent_errors", "agents", "commits", "errors", "now", "tasks")

    def __init__(
        self,
        now: float,
        agents: list[Agent],
        tasks: list[Task],
        commits: list[Commit],
        errors: list[CorruptData],
        *,
        agent_errors: list[CorruptData] | None = None,
    ) -> None:
        self.now = now
        self.agents = agents
        self.tasks = tasks
        self.commits = commits
        self.errors = errors
        self.agent_errors = agent_errors if agent_errors is not None else []


class Monitor:
    """``coord.monitor``: classify agents by silence, over a :class:`~agentcoord.store.base.Store`.

    ``git_root`` is the repository read for commits (None: no git signs); config ``monitor.git``
    false switches git off whatever is given."""

    def __init__(
        self,
        store: Store,
        config: Config,
        clock: Callable[[], float],
        *,
        git_root: str | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        table = config["monitor"]
        use_git = not (isinstance(table, dict) and table.get("git", True) is False)
        self.git_root = git_root if use_git else None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return thresholds(self.config)

    @property
    def gone(self) -> float:
        """Seconds of silence after which an agent without work is Gone (``monitor.gone``)."""
        return gone_after(self.config)

    def snapshot(self, now: float | None = None) -> Snapshot:
        """Read agents (all of them), tasks and recent commits; unreadable records are kept in
        ``errors``."""
        from ..store.gitlog import commits_since

        when = self.clock() if now is None else now
        agent_errors: list[CorruptData] = []
        task_errors: list[CorruptData] = []
        agents = sorted(self.store.list_agents(errors=agent_errors), key=lambda a: a.name)
        tasks = self.store.list_tasks(errors=task_errors)
        commits = commits_since(self.git_root, when - GIT_WINDOW) if self.git_root else []
        errors = agent_errors + task_errors
        return Snapshot(when, agents, tasks, commits, errors, agent_errors=agent_errors)

    def classify(
        self,
        now: float | None = None,
        *,
        errors: list[CorruptData] | None = None,
        include_inactive: bool = False,
    ) -> list[AgentHealth]:
        """One :class:`AgentHealth` per monitored agent, by name. Unreadable agent or task
        records are skipped and appended to ``errors``."""
        snap = self.snapshot(now)
        if errors is not None:
            errors.extend(snap.errors)
        return self.assess(snap, include_inactive=include_inactive)

    def assess(self, snap: Snapshot, *, include_inactive: bool = False) -> list[AgentHealth]:
        from ..store.gitlog import latest_by_agent

        bounds = self.bounds
        gone = self.gone
        names = [a.name for a in snap.agents]
        commits = latest_by_agent(snap.commits, names)
        by_agent: dict[str, list[Task]] = {}
        for task in snap.tasks:
            if task.agent:
                by_agent.setdefault(task.agent, []).append(task)
        ready = (
            Readiness(snap.tasks, snap.now)
            if any(t.status == ASSIGNED for t in snap.tasks)
            else None
        )
        out = []
        for agent in snap.agents:
            mine = by_agent.get(agent.name, [])
            work = [
                t
                for t in mine
                if t.status == IN_PROGRESS
                or (t.status == ASSIGNED and ready is not None and ready.claimable(t))
            ]
            if not include_inactive and (
                agent.status == "retired" or (agent.status == "offline" and not work)
            ):
                continue
            commit = commits.get(agent.name)
            out.append(
                self._health(
                    agent, mine, work, commit, snap.now, bounds=bounds, gone=gone, ready=ready
                )
            )
        return out

    def _health(
        self,
        agent: Agent,
        mine: list[Task],
        work: list[Task],
        commit: Commit | None,
        now: float,
        *,
        bounds: tuple[float, ...],
        gone: float,
        ready: Readiness | None = None,
    ) -> AgentHealth:
        signs: list[tuple[float, str]] = []
        if agent.last_seen:
            signs.append((agent.last_seen, "heartbeat"))
        task_times = [t for t in (own_update(task, agent.name) for task in mine) if t]
        if task_times:
            signs.append((max(task_times), "task"))
        if commit is not None:
            signs.append((commit.time, "git"))
        # A sign of life from the future is a clock's fault, not a sign of life: believing it
        # would keep a dead agent Normal until then (SPEC section 4, Monitor).
        skew = self.config.float("clock_skew")
        future = [s for s in signs if s[0] > now + skew]
        signs = [s for s in signs if s[0] <= now + skew]
        last, source = max(signs) if signs else (None, None)
        silence = max(0.0, now - last) if last is not None else None
        pace = classify_silence(silence, bounds)
        if silence is None:
            reason = "no sign of life recorded"
        else:
            reason = f"last sign of life {duration(silence)} ago ({source})"
        if future:
            ahead = max(future)
            reason += (
                f"; ignored a sign of life {duration(ahead[0] - now)} in the future "
                f"({ahead[1]}: a clock ahead?)"
            )
            if silence is None:
                pace = CONCERNING
        held = [t for t in work if t.status == IN_PROGRESS]
        assigned = [t for t in mine if t.status == ASSIGNED]
        claimable = {t.id for t in work if t.status == ASSIGNED}
        waiting = [t.id for t in assigned if t.id not in claimable]
        health = pace
        if not work:
            # Nothing to judge: silence without work is rest, not trouble (SPEC section 4).
            if silence is None:
                health = IDLE if future else GONE  # a sign from the future is still a sign
            else:
                health = GONE if silence >= gone else IDLE
            also = ""
            if waiting:
                also = f" it can start (assigned {', '.join(sorted(waiting))}: not ready yet)"
            reason = f"holds no work{also}; {reason}"
        else:
            starts = [
                s
                for s in (
                    work_since(t, ready.since(t) if ready and t.status == ASSIGNED else None)
                    for t in work
                )
                if s is not None
            ]
            since = min(starts) if starts else None
            # Judge only the silence since the work arrived: an assignment to an agent that was
            # resting is not yet an agent ignoring its work. (Only signs from the future: it
            # stays at least Concerning, as above.)
            longer = (silence is None and not future) or (
                silence is not None and since is not None and now - since < silence
            )
            if since is not None and since <= now and longer:
                health = classify_silence(now - since, bounds)
                reason += f"; given work {duration(now - since)} ago"
        if agent.status == "blocked":
            health, reason = BLOCKED, f"reports status BLOCKED; {reason}"
        expired = [t.id for t in held if t.lease_expired(now)]
        if expired:
            reason += f"; lease expired on {', '.join(expired)}"
        retry = None
        if agent.breaker_state == BREAKER_OPEN and agent.breaker_opened_at is not None:
            retry = agent.breaker_opened_at + self.config.float("breaker_cooldown")
        return AgentHealth(
            agent.name,
            health=health,
            silence=silence,
            last_sign=last,
            source=source,
            status=agent.status,
            workload=agent.workload,
            breaker=agent.breaker_state,
            breaker_retry=retry,
            active=sorted(t.id for t in held),
            expired=expired,
            reason=reason,
            assigned=sorted(t.id for t in assigned),
            pace=pace,
            waiting=sorted(waiting),
        )


def needs_attention(rows: list[AgentHealth]) -> bool:
    """Whether any row is Stuck or Blocked (``coord monitor`` exits 1): only agents that hold
    work or report BLOCKED can be; Idle and Gone never are."""
    return any(r.attention for r in rows)
